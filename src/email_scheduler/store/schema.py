"""The tables the scheduler owns, and their idempotent migration.

Older org databases come in several shapes. Migration creates what is
missing (tables, columns, indexes) and never rewrites data it does not
own: the contacts table is only ever read. The one structural change is to
`email_schedules`: a legacy unique constraint on (contact, type, date)
forbids two campaign instances of one type on one day, so it is replaced by
a unique index on the identity of an email. The campaign tables are created
or completed like the others: databases made before a column existed get it
with its default.
"""

from __future__ import annotations

import logging
import sqlite3

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

OWNED_TABLES = {
    "email_schedules": EMAIL_SCHEDULES_COLUMNS,
    "scheduler_checkpoints": CHECKPOINT_COLUMNS,
    "config_versions": CONFIG_VERSION_COLUMNS,
    "contact_data_quality": DATA_QUALITY_COLUMNS,
    "campaign_types": CAMPAIGN_TYPE_COLUMNS,
    "campaign_instances": CAMPAIGN_INSTANCE_COLUMNS,
    "contact_campaigns": CONTACT_CAMPAIGN_COLUMNS,
    "campaign_change_log": CAMPAIGN_CHANGE_LOG_COLUMNS,
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
IDENTITY_COLUMNS = (
    "contact_id, email_type, IFNULL(campaign_instance_id, 0), "
    "event_year, event_month, event_day"
)

INDEXES = {
    "idx_email_schedules_status_date": "email_schedules(status, scheduled_send_date)",
    "idx_email_schedules_run": "email_schedules(scheduler_run_id)",
    "idx_contact_data_quality_contact": "contact_data_quality(contact_id)",
    "idx_contact_campaigns_instance": "contact_campaigns(campaign_instance_id, status)",
    "idx_campaign_change_log_instance": "campaign_change_log(campaign_instance_id)",
}

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


def _addable(kind: str) -> str:
    # ALTER TABLE ADD COLUMN refuses PRIMARY KEY, UNIQUE and NOT NULL without
    # a default; those constraints only matter for tables created fresh.
    for word in ("PRIMARY KEY AUTOINCREMENT", "PRIMARY KEY", "UNIQUE", "NOT NULL"):
        kind = kind.replace(word, "")
    return " ".join(kind.split())


def _add_missing_columns(
    conn: sqlite3.Connection, table: str, columns: dict[str, str]
) -> None:
    present = set(table_columns(conn, table))
    for column, kind in columns.items():
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {_addable(kind)}")


def _foreign_unique_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Return (name, origin) of unique indexes on email_schedules other than ours."""
    rows = conn.execute("PRAGMA index_list(email_schedules)").fetchall()
    return [
        (row[1], row[3])
        for row in rows
        if row[2] and row[1] != IDENTITY_INDEX and row[3] != "pk"
    ]


def _column_definitions(conn: sqlite3.Connection) -> dict[str, str]:
    """Return our column definitions plus every other column the table has."""
    columns = dict(EMAIL_SCHEDULES_COLUMNS)
    for _, name, kind, notnull, default, _pk, _hidden in conn.execute(
        "PRAGMA table_xinfo(email_schedules)"
    ):
        if name not in columns:
            definition = kind or ""
            definition += " NOT NULL" if notnull else ""
            definition += f" DEFAULT {default}" if default is not None else ""
            columns[name] = definition.strip()
    return columns


def _rebuild_email_schedules(conn: sqlite3.Connection, dropped: set[str]) -> None:
    """Recreate email_schedules without its table-level unique constraint.

    Every column, row, id, index (but the dropped unique ones), trigger and
    the AUTOINCREMENT counter survive; only the constraint goes.
    """
    present = table_columns(conn, "email_schedules")
    columns = _column_definitions(conn)
    keep = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'email_schedules' "
        "AND type IN ('index', 'trigger') AND sql IS NOT NULL"
    ).fetchall()
    sequence = conn.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'email_schedules'"
    ).fetchone()
    conn.execute("ALTER TABLE email_schedules RENAME TO email_schedules_legacy")
    conn.execute(_create("email_schedules", columns))
    shared = ", ".join(present)
    conn.execute(
        f"INSERT INTO email_schedules ({shared}) "
        f"SELECT {shared} FROM email_schedules_legacy"
    )
    conn.execute("DROP TABLE email_schedules_legacy")
    for name, sql in keep:
        if name not in dropped:
            conn.execute(sql)
    if sequence:
        conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) "
            "WHERE name = 'email_schedules'",
            sequence,
        )


def _replace_legacy_uniques(conn: sqlite3.Connection) -> None:
    foreign = _foreign_unique_indexes(conn)
    for name, origin in foreign:
        if origin == "u":
            log.info("replacing the legacy unique constraint of email_schedules")
            _rebuild_email_schedules(conn, {index for index, _ in foreign})
            return
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


def migrate(conn: sqlite3.Connection) -> None:
    """Create or complete every table and index the scheduler owns."""
    with transaction(conn):
        for table, columns in OWNED_TABLES.items():
            conn.execute(_create(table, columns))
            _add_missing_columns(conn, table, columns)
        for table, columns in ENGAGEMENT_TABLES.items():
            conn.execute(_create(table, columns))
        _replace_legacy_uniques(conn)
        _ensure_identity_index(conn)
        _ensure_unique_indexes(conn)
        for name, target in INDEXES.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


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
    if _foreign_unique_indexes(conn):
        return True
    names = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    if not all(name in names or f"{name}_lookup" in names for name in UNIQUE_INDEXES):
        return True
    return IDENTITY_INDEX not in names or not set(INDEXES) <= names
