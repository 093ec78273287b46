"""The tables the scheduler owns, and their idempotent migration.

Older org databases come in several shapes. Migration creates what is
missing (tables, columns, indexes) and never rewrites data it does not
own: the contacts table is only ever read. The one structural change is to
`email_schedules`: a legacy unique constraint on (contact, type, date)
forbids two campaign instances of one type on one day, so it is replaced by
a unique index on the identity of an email, and a table without an integer
`id` key gets one, since every write addresses rows by id. The campaign
tables are created or completed like the others: databases made before a
column existed get it with its default.

A failure rolls the whole migration back and is reported as a
`DatabaseError` that names the table (and column) and the fix.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from email_scheduler.errors import DatabaseError
from email_scheduler.store.database import transaction

log = logging.getLogger("email_scheduler")

CONTACTS = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    first_name TEXT,
    last_name TEXT,
    email TEXT NOT NULL,
    phone_number TEXT,
    state TEXT,
    zip_code TEXT,
    birth_date TEXT,
    effective_date TEXT,
    carrier TEXT,
    failed_underwriting INTEGER NOT NULL DEFAULT 0,
    status TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT DEFAULT CURRENT_TIMESTAMP
)"""

EMAIL_SCHEDULES_COLUMNS = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "contact_id": "INTEGER NOT NULL",
    "email_type": "TEXT NOT NULL",
    "scheduled_send_date": "TEXT NOT NULL",
    "scheduled_send_time": "TEXT DEFAULT '08:30:00'",
    "status": "TEXT NOT NULL DEFAULT 'pre-scheduled'",
    "skip_reason": "TEXT",
    "priority": "INTEGER DEFAULT 10",
    "campaign_instance_id": "INTEGER",
    "email_template": "TEXT",
    "sms_template": "TEXT",
    "scheduler_run_id": "TEXT",
    "event_year": "INTEGER",
    "event_month": "INTEGER",
    "event_day": "INTEGER",
    "metadata": "TEXT",
    "actual_send_datetime": "TEXT",
    "created_at": "TEXT DEFAULT CURRENT_TIMESTAMP",
    "updated_at": "TEXT DEFAULT CURRENT_TIMESTAMP",
}

CHECKPOINT_COLUMNS = {
    "id": "INTEGER PRIMARY KEY",
    "run_timestamp": "TEXT NOT NULL",
    "scheduler_run_id": "TEXT UNIQUE NOT NULL",
    "contacts_checksum": "TEXT NOT NULL",
    "schedules_before_checksum": "TEXT",
    "schedules_after_checksum": "TEXT",
    "contacts_processed": "INTEGER",
    "emails_scheduled": "INTEGER",
    "emails_skipped": "INTEGER",
    "status": "TEXT NOT NULL",
    "error_message": "TEXT",
    "completed_at": "TEXT",
    "run_date": "TEXT",
    "rows_inserted": "INTEGER",
    "rows_updated": "INTEGER",
    "rows_deleted": "INTEGER",
    "rows_unchanged": "INTEGER",
    "config_version_id": "INTEGER",
    "summary": "TEXT",
    "inputs_checksum": "TEXT",
}

CONFIG_VERSION_COLUMNS = {
    "id": "INTEGER PRIMARY KEY",
    "config_type": "TEXT NOT NULL",
    "config_data": "TEXT NOT NULL",
    "valid_from": "TEXT NOT NULL",
    "valid_to": "TEXT",
    "created_at": "TEXT NOT NULL",
    "created_by": "TEXT",
    "checksum": "TEXT",
}

DATA_QUALITY_COLUMNS = {
    "id": "INTEGER PRIMARY KEY",
    "scheduler_run_id": "TEXT NOT NULL",
    "contact_id": "INTEGER",
    "issue": "TEXT NOT NULL",
    "detail": "TEXT",
}

CAMPAIGN_TYPE_COLUMNS = {
    "name": "TEXT PRIMARY KEY",
    "respect_exclusion_windows": "INTEGER NOT NULL DEFAULT 1",
    "enable_followups": "INTEGER NOT NULL DEFAULT 1",
    "days_before_event": "INTEGER NOT NULL DEFAULT 0",
    "target_all_contacts": "INTEGER NOT NULL DEFAULT 0",
    "priority": "INTEGER NOT NULL DEFAULT 50",
    "active": "INTEGER NOT NULL DEFAULT 1",
    "spread_evenly": "INTEGER NOT NULL DEFAULT 0",
    "skip_failed_underwriting": "INTEGER NOT NULL DEFAULT 0",
    "created_at": "TEXT",
    "updated_at": "TEXT",
}

CAMPAIGN_INSTANCE_COLUMNS = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "campaign_type": "TEXT NOT NULL",
    "instance_name": "TEXT NOT NULL",
    "email_template": "TEXT",
    "sms_template": "TEXT",
    "active_start_date": "TEXT",
    "active_end_date": "TEXT",
    "spread_start_date": "TEXT",
    "spread_end_date": "TEXT",
    "target_states": "TEXT",
    "target_carriers": "TEXT",
    "metadata": "TEXT",
    "created_at": "TEXT",
    "updated_at": "TEXT",
}

CONTACT_CAMPAIGN_COLUMNS = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "contact_id": "INTEGER NOT NULL",
    "campaign_instance_id": "INTEGER NOT NULL",
    "trigger_date": "TEXT",
    "status": "TEXT NOT NULL DEFAULT 'pending'",
    "metadata": "TEXT",
    "created_at": "TEXT",
    "updated_at": "TEXT",
}

CAMPAIGN_CHANGE_LOG_COLUMNS = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "campaign_type": "TEXT",
    "campaign_instance_id": "INTEGER",
    "field_changed": "TEXT NOT NULL",
    "old_value": "TEXT",
    "new_value": "TEXT",
    "changed_at": "TEXT NOT NULL",
    "changed_by": "TEXT",
}

SNAPSHOT_COLUMNS = {
    "first_contact": "INTEGER PRIMARY KEY",
    "last_contact": "INTEGER NOT NULL",
    "valid_through": "INTEGER NOT NULL",
    "signature": "TEXT NOT NULL",
    "row_count": "INTEGER NOT NULL",
    "data": "BLOB NOT NULL",
}
"""One row per partition of contacts: its email_schedules rows as the reader
read them, through change `valid_through` of the change log (see
`store.snapshot`)."""

CHANGE_COLUMNS = {
    "seq": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "row_id": "INTEGER",
    "contact_id": "INTEGER",
}
"""The change log: one entry per email_schedules row written by anyone,
added by the triggers of `CHANGE_TRIGGERS`."""

SNAPSHOT_TABLE = "schedule_snapshots"
CHANGE_TABLE = "email_schedule_changes"

_LOGGED = f"INSERT INTO {CHANGE_TABLE} (row_id, contact_id) VALUES"
CHANGE_TRIGGERS = {
    "email_schedules_logged_insert": (
        "CREATE TRIGGER email_schedules_logged_insert AFTER INSERT ON "
        f"email_schedules BEGIN {_LOGGED} (NEW.id, NEW.contact_id); END"
    ),
    "email_schedules_logged_update": (
        "CREATE TRIGGER email_schedules_logged_update AFTER UPDATE ON "
        f"email_schedules BEGIN {_LOGGED} (OLD.id, OLD.contact_id); "
        f"INSERT INTO {CHANGE_TABLE} (row_id, contact_id) SELECT NEW.id, "
        "NEW.contact_id WHERE NEW.id IS NOT OLD.id "
        "OR NEW.contact_id IS NOT OLD.contact_id; END"
    ),
    "email_schedules_logged_delete": (
        "CREATE TRIGGER email_schedules_logged_delete AFTER DELETE ON "
        f"email_schedules BEGIN {_LOGGED} (OLD.id, OLD.contact_id); END"
    ),
}
"""Triggers that log every change to email_schedules, whoever makes it."""

OWNED_TABLES = {
    "email_schedules": EMAIL_SCHEDULES_COLUMNS,
    "scheduler_checkpoints": CHECKPOINT_COLUMNS,
    "config_versions": CONFIG_VERSION_COLUMNS,
    "contact_data_quality": DATA_QUALITY_COLUMNS,
    "campaign_types": CAMPAIGN_TYPE_COLUMNS,
    "campaign_instances": CAMPAIGN_INSTANCE_COLUMNS,
    "contact_campaigns": CONTACT_CAMPAIGN_COLUMNS,
    "campaign_change_log": CAMPAIGN_CHANGE_LOG_COLUMNS,
    SNAPSHOT_TABLE: SNAPSHOT_COLUMNS,
    CHANGE_TABLE: CHANGE_COLUMNS,
}

ENGAGEMENT_TABLES = {
    "tracking_clicks": {
        "id": "INTEGER PRIMARY KEY",
        "contact_id": "INTEGER NOT NULL",
        "email_schedule_id": "INTEGER",
        "url": "TEXT",
        "clicked_at": "TEXT NOT NULL",
    },
    "contact_events": {
        "id": "INTEGER PRIMARY KEY",
        "contact_id": "INTEGER NOT NULL",
        "event_type": "TEXT NOT NULL",
        "metadata": "TEXT",
        "created_at": "TEXT NOT NULL",
    },
}
"""Tables the tracking system writes and follow-ups read. They are created
when missing, so that a new database is complete, and never altered: an
older shape is read as it is."""

IDENTITY_INDEX = "idx_email_schedules_identity"
IDENTITY_FIELDS = (
    "email_type",
    "campaign_instance_id",
    "event_year",
    "event_month",
    "event_day",
)
"""The columns of an email's identity besides its contact."""
IDENTITY_COLUMNS = "contact_id, " + ", ".join(
    "IFNULL(campaign_instance_id, 0)" if c == "campaign_instance_id" else c
    for c in IDENTITY_FIELDS
)

INDEXES = {
    "idx_email_schedules_status_date": "email_schedules(status, scheduled_send_date)",
    "idx_contact_data_quality_contact": "contact_data_quality(contact_id)",
    "idx_contact_campaigns_instance": "contact_campaigns(campaign_instance_id, status)",
    "idx_campaign_change_log_instance": "campaign_change_log(campaign_instance_id)",
    "idx_email_schedule_changes_contact": f"{CHANGE_TABLE}(contact_id, seq)",
}

RETIRED_INDEXES = ("idx_email_schedules_run",)
"""Indexes earlier versions created and `migrate` drops. Nothing reads
email_schedules by `scheduler_run_id`, yet a run stamps its id on every row
it writes: at 3 million contacts the index cost a first run a fifth of its
write time and a daily run a third."""

UNIQUE_INDEXES = {
    "idx_campaign_instances_name": "campaign_instances(campaign_type, instance_name)",
    "idx_contact_campaigns_enrollment": (
        "contact_campaigns(contact_id, campaign_instance_id, trigger_date)"
    ),
}
"""Unique keys of the campaign tables; enrolling relies on the second one."""


def _create(name: str, columns: dict[str, str]) -> str:
    body = ",\n    ".join(f"{column} {kind}" for column, kind in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    {body}\n)"


def create_statement(table: str) -> str:
    """Return the CREATE TABLE statement of a table the scheduler owns."""
    return _create(table, OWNED_TABLES[table])


def table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """Return the column names of `table` (empty when it does not exist)."""
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


_NON_CONSTANT_DEFAULT = re.compile(r"\s*DEFAULT\s+(CURRENT_\w+|\(.*\))", re.I)


def _addable(kind: str) -> str:
    # ALTER TABLE ADD COLUMN refuses PRIMARY KEY, UNIQUE, NOT NULL without a
    # default and, on a table with rows, a default that is not a constant;
    # those only matter for tables created fresh (the writer sets the
    # timestamps itself).
    kind = _NON_CONSTANT_DEFAULT.sub("", kind)
    for word in ("PRIMARY KEY AUTOINCREMENT", "PRIMARY KEY", "UNIQUE", "NOT NULL"):
        kind = kind.replace(word, "")
    return " ".join(kind.split())


@contextmanager
def _reported(action: str, fix: str) -> Iterator[None]:
    """Turn a SQLite failure of `action` into a DatabaseError that says `fix`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DatabaseError(
            f"{action} failed: {exc}. Nothing was changed; {fix}, then run again"
        ) from exc


def _add_missing_columns(
    conn: sqlite3.Connection, table: str, columns: dict[str, str]
) -> None:
    present = set(table_columns(conn, table))
    for column, kind in columns.items():
        if column in present:
            continue
        definition = f"{column} {_addable(kind)}".strip()
        with _reported(
            f"adding column {column} to table {table}",
            f"add it yourself (ALTER TABLE {table} ADD COLUMN {definition})",
        ):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")


def _foreign_unique_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Return (name, origin) of unique indexes on email_schedules other than ours."""
    rows = conn.execute("PRAGMA index_list(email_schedules)").fetchall()
    return [
        (row[1], row[3])
        for row in rows
        if row[2] and row[1] != IDENTITY_INDEX and row[3] != "pk"
    ]


def _has_integer_id(conn: sqlite3.Connection) -> bool:
    """Return whether email_schedules is keyed by `id INTEGER PRIMARY KEY`."""
    keys = [
        (row[1].lower(), row[2].upper())
        for row in conn.execute("PRAGMA table_info(email_schedules)")
        if row[5]
    ]
    return keys == [("id", "INTEGER")]


def _needs_rebuild(conn: sqlite3.Connection) -> bool:
    """Return whether email_schedules must be rebuilt rather than altered."""
    in_table = any(origin == "u" for _, origin in _foreign_unique_indexes(conn))
    return in_table or not _has_integer_id(conn)


_TOKENS = re.compile(
    r"""--[^\n]*|/\*.*?(?:\*/|\Z)|'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`"""
    r"""|\[[^\]]*\]|\s+|[(),]|[^\s(),'"`\[]+""",
    re.S,
)
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}
_COLUMN_CONSTRAINTS = {
    *_TABLE_CONSTRAINTS,
    *("NOT", "NULL", "DEFAULT", "COLLATE", "REFERENCES", "GENERATED", "AS"),
}
_REBUILT = "email_schedules_rebuilt"

Tokens = list[str]


def _words(tokens: Tokens) -> list[str]:
    return [token.upper() for token in tokens if not token.isspace()]


def _table_items(sql: str) -> tuple[list[Tokens], str]:
    """Return the definitions in a CREATE TABLE, as tokens, and its table options.

    Definitions are columns and table constraints; the options are what
    follows the closing parenthesis (WITHOUT ROWID, STRICT). Comments go.
    """
    tokens = [t for t in _TOKENS.findall(sql) if not t.startswith(("--", "/*"))]
    start = tokens.index("(") + 1
    items: list[Tokens] = [[]]
    depth = 1
    for at, token in enumerate(tokens[start:], start):
        depth += (token == "(") - (token == ")")
        if depth == 0:
            return items, "".join(tokens[at + 1 :])
        if token == "," and depth == 1:
            items.append([])
        else:
            items[-1].append(token)
    raise DatabaseError(f"cannot read the definition of email_schedules: {sql}")


def _kind(tokens: Tokens) -> str:
    """Return the keyword a constraint starts with, past its CONSTRAINT name."""
    words = _words(tokens)
    return words[2] if words[0] == "CONSTRAINT" and len(words) > 2 else words[0]


def _clauses(column: Tokens) -> list[Tokens]:
    """Split a column definition into its name and type, then its constraints."""
    clauses: list[Tokens] = [[]]
    depth = 0
    for token in column:
        depth += (token == "(") - (token == ")")
        words = _words(clauses[-1])
        named = words[:1] == ["CONSTRAINT"] and len(words) <= 2
        if depth == 0 and words and not named and token.upper() in _COLUMN_CONSTRAINTS:
            clauses.append([])
        clauses[-1].append(token)
    return clauses


def _without(column: Tokens, dropped: set[str]) -> str:
    """Return a column definition without its constraints of the `dropped` kinds."""
    name, *constraints = _clauses(column)
    kept = [name, *(c for c in constraints if _kind(c) not in dropped)]
    return "".join(token for clause in kept for token in clause).strip()


def _column_name(column: Tokens) -> str:
    name = next(token for token in column if not token.isspace())
    return (name[1:-1] if name[0] in "\"'`[" else name).lower()


def _rebuilt_table(conn: sqlite3.Connection, keyed: bool) -> str:
    """Return the CREATE TABLE of email_schedules rebuilt under another name.

    Every column and table constraint keeps its own definition, but unique
    constraints go. A table without an integer key (not `keyed`) gets ours,
    in place of any other primary key and of a plain `id` column (one an
    older migration added).
    """
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
        ("email_schedules",),
    ).fetchone()
    items, options = _table_items(sql)
    dropped = {"UNIQUE"} if keyed else {"UNIQUE", "PRIMARY"}
    key = [] if keyed else [f"id {EMAIL_SCHEDULES_COLUMNS['id']}"]
    columns = [
        _without(item, dropped)
        for item in items
        if _kind(item) not in _TABLE_CONSTRAINTS
        and (keyed or _column_name(item) != "id")
    ]
    constraints = [
        "".join(item).strip()
        for item in items
        if _kind(item) in _TABLE_CONSTRAINTS - dropped
    ]
    body = ",\n    ".join(key + columns + constraints)
    return f"CREATE TABLE {_REBUILT} (\n    {body}\n){options}"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _usable_ids(conn: sqlite3.Connection) -> bool:
    """Return whether every row has an integer id of its own (keyed or not)."""
    columns = {c.lower() for c in table_columns(conn, "email_schedules")}
    if "id" not in columns:
        return False
    (usable,) = conn.execute(
        "SELECT count(*) = sum(typeof(id) = 'integer') "
        "AND count(*) = count(DISTINCT id) FROM email_schedules"
    ).fetchone()
    return bool(usable)


def _copy_rows(conn: sqlite3.Connection) -> None:
    """Copy every row into the rebuilt table, keeping the ids the rows have.

    Rows without usable ids (none, NULL or repeated) get their rowid, the
    number SQLite already gave each row.
    """
    columns = [c for c in table_columns(conn, "email_schedules") if c.lower() != "id"]
    names = ", ".join(["id", *map(_quoted, columns)])
    key = "id" if _usable_ids(conn) else "rowid"
    values = ", ".join([key, *map(_quoted, columns)])
    conn.execute(
        f"INSERT INTO {_REBUILT} ({names}) SELECT {values} FROM email_schedules"
    )


def _carry_sequence(conn: sqlite3.Connection, seq: int | None) -> None:
    # Ids of deleted rows may still be in the sender's logs: the counter keeps
    # its old value when that is above every id copied.
    if seq is None:
        return
    conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (_REBUILT,))
    conn.execute(
        "INSERT INTO sqlite_sequence (name, seq) "
        f"SELECT ?, max(?, IFNULL(max(id), 0)) FROM {_REBUILT}",
        (_REBUILT, seq),
    )


def _rename_into_place(conn: sqlite3.Connection) -> None:
    # The modern RENAME re-checks every view and trigger, and those naming the
    # dropped email_schedules would fail it; the legacy one leaves their text
    # and the foreign keys of other tables naming email_schedules as they are.
    (legacy,) = conn.execute("PRAGMA legacy_alter_table").fetchone()
    conn.execute("PRAGMA legacy_alter_table = ON")
    try:
        conn.execute(f"ALTER TABLE {_REBUILT} RENAME TO email_schedules")
    finally:
        conn.execute(f"PRAGMA legacy_alter_table = {int(legacy)}")


def _foreign_key_violations(conn: sqlite3.Connection) -> int:
    return len(conn.execute("PRAGMA foreign_key_check").fetchall())


def _rebuild_email_schedules(
    conn: sqlite3.Connection, dropped: set[str], enforced: bool
) -> None:
    """Recreate email_schedules with an integer id and no legacy unique constraint.

    This is SQLite's procedure for schema changes ALTER TABLE cannot make:
    create the new table under another name, copy, drop the old, rename the
    new into place, then recreate indexes and triggers. Every column keeps
    its own definition; every row, id, index (but the dropped unique ones),
    trigger and the AUTOINCREMENT counter survive. `enforced` says the
    connection enforced foreign keys, so they are checked before commit.
    """
    keyed = _has_integer_id(conn)
    keep = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'email_schedules' "
        "AND type IN ('index', 'trigger') AND sql IS NOT NULL"
    ).fetchall()
    sequence = conn.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'email_schedules'"
    ).fetchone()
    violations = _foreign_key_violations(conn) if enforced else 0

    conn.execute(_rebuilt_table(conn, keyed))
    _copy_rows(conn)
    _carry_sequence(conn, sequence[0] if sequence else None)
    conn.execute("DROP TABLE email_schedules")
    _rename_into_place(conn)
    for name, sql in keep:
        if name not in dropped:
            conn.execute(sql)

    if enforced and _foreign_key_violations(conn) > violations:
        raise DatabaseError(
            "rebuilding table email_schedules failed: rows of other tables "
            "would lose the schedule they reference. Nothing was changed; fix "
            "the rows PRAGMA foreign_key_check lists, then run again"
        )


def _replace_legacy_constraints(conn: sqlite3.Connection, enforced: bool) -> None:
    """Give email_schedules an integer id and drop its legacy unique keys."""
    foreign = _foreign_unique_indexes(conn)
    if _needs_rebuild(conn):
        log.info("rebuilding email_schedules with an id key and no legacy unique")
        with _reported(
            "rebuilding table email_schedules",
            "fix what the error names in the definition or rows of email_schedules",
        ):
            _rebuild_email_schedules(conn, {name for name, _ in foreign}, enforced)
        conn.execute(f"DELETE FROM {SNAPSHOT_TABLE}")  # rows may have new ids
        return
    for name, _ in foreign:
        log.info("dropping legacy unique index %s of email_schedules", name)
        conn.execute(f"DROP INDEX {name}")


def _ensure_identity_index(conn: sqlite3.Connection) -> None:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
        (IDENTITY_INDEX,),
    ).fetchone()
    if exists:
        return
    try:
        conn.execute(
            f"CREATE UNIQUE INDEX {IDENTITY_INDEX} "
            f"ON email_schedules({IDENTITY_COLUMNS})"
        )
    except sqlite3.IntegrityError:
        # Older schedulers left duplicate identities; a plain index keeps
        # lookups fast, and the run tries the unique one again next time.
        log.warning(
            "email_schedules holds duplicate identities; identity index not unique"
        )
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {IDENTITY_INDEX}_lookup "
            f"ON email_schedules({IDENTITY_COLUMNS})"
        )


def _ensure_unique_indexes(conn: sqlite3.Connection) -> None:
    for name, target in UNIQUE_INDEXES.items():
        try:
            conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {target}")
        except sqlite3.IntegrityError:
            # Rows written before the product managed campaigns repeat a key;
            # a plain index keeps lookups fast and nothing is deleted.
            log.warning("%s holds duplicate keys; index %s not unique", target, name)
            conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_lookup ON {target}")


@contextmanager
def _foreign_keys_off(conn: sqlite3.Connection) -> Iterator[bool]:
    """Suspend foreign key enforcement around a transaction; yield whether it was on.

    Dropping a referenced table with enforcement on would delete (or cascade
    to) the rows that reference it; the pragma is a no-op inside a
    transaction, so it is set around one.
    """
    (enforced,) = conn.execute("PRAGMA foreign_keys").fetchone()
    if enforced:
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield bool(enforced)
    finally:
        if enforced:
            conn.execute("PRAGMA foreign_keys = ON")


def migrate(conn: sqlite3.Connection) -> None:
    """Create or complete every table and index the scheduler owns."""
    with (
        _reported(
            "migrating the scheduler's tables",
            "check that the database file is writable and intact",
        ),
        _foreign_keys_off(conn) as enforced,
        transaction(conn),
    ):
        for table, columns in OWNED_TABLES.items():
            conn.execute(_create(table, columns))
            _add_missing_columns(conn, table, columns)
        for table, columns in ENGAGEMENT_TABLES.items():
            conn.execute(_create(table, columns))
        _replace_legacy_constraints(conn, enforced)
        _ensure_identity_index(conn)
        _ensure_unique_indexes(conn)
        for name, target in INDEXES.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")
        for name in RETIRED_INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        _ensure_change_triggers(conn)


def _triggers(conn: sqlite3.Connection) -> dict[str, str]:
    """Return the SQL of the change triggers the database has, by name."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name = 'email_schedules'"
    ).fetchall()
    return {name: sql for name, sql in rows if name in CHANGE_TRIGGERS}


def change_triggers_intact(conn: sqlite3.Connection) -> bool:
    """Return whether every change to email_schedules is being logged."""
    return _triggers(conn) == CHANGE_TRIGGERS


def _ensure_change_triggers(conn: sqlite3.Connection) -> None:
    """Create the change triggers where missing or altered.

    Changes made while a trigger was missing went unlogged, so every
    snapshot is dropped with them: the next run reads every row.
    """
    if change_triggers_intact(conn):
        return
    for name in _triggers(conn):
        conn.execute(f"DROP TRIGGER {name}")
    for sql in CHANGE_TRIGGERS.values():
        conn.execute(sql)
    conn.execute(f"DELETE FROM {SNAPSHOT_TABLE}")
    conn.execute(f"DELETE FROM {CHANGE_TABLE}")


def initialize(conn: sqlite3.Connection) -> None:
    """Create a complete empty org database: contacts plus the owned tables."""
    with transaction(conn):
        conn.execute(CONTACTS)
    migrate(conn)


def needs_migration(conn: sqlite3.Connection) -> bool:
    """Return whether `migrate` would change anything."""
    for table, columns in OWNED_TABLES.items():
        if set(columns) - set(table_columns(conn, table)):
            return True
    if not all(table_columns(conn, table) for table in ENGAGEMENT_TABLES):
        return True
    if _foreign_unique_indexes(conn) or not _has_integer_id(conn):
        return True
    names = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    if not all(name in names or f"{name}_lookup" in names for name in UNIQUE_INDEXES):
        return True
    if IDENTITY_INDEX not in names or not set(INDEXES) <= names:
        return True
    if names & set(RETIRED_INDEXES):
        return True
    return not change_triggers_intact(conn)
