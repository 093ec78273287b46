"""Tests of the migration of legacy org databases and of `email-scheduler init`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from email_scheduler.errors import DatabaseError
from email_scheduler.generate import generate_org
from email_scheduler.store import schema
from email_scheduler.store.database import connect
from helpers import (
    cli,
    duplicate_identities,
    query,
    run_json,
    scalar,
    schedules,
    schema_snapshot,
    table_rows,
)

TODAY = "2026-12-03"
LEGACY_COLUMNS = (
    "id, contact_id, email_type, scheduled_send_date, scheduled_send_time, "
    "status, skip_reason, priority, campaign_instance_id, email_template, "
    "sms_template, scheduler_run_id, actual_send_datetime, created_at, updated_at"
)
NEW_COLUMNS = ("event_year", "event_month", "event_day", "metadata")
OWNED_TABLES = {
    "email_schedules",
    "scheduler_checkpoints",
    "config_versions",
    "contact_data_quality",
}

# The legacy table without its table-level UNIQUE; the "index" shape adds
# the same constraint as a separate CREATE UNIQUE INDEX.
INDEX_SHAPE_DDL = """
CREATE TABLE email_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT NOT NULL DEFAULT 'pre-scheduled',
    skip_reason TEXT,
    priority INTEGER DEFAULT 10,
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT,
    actual_send_datetime TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT DEFAULT CURRENT_TIMESTAMP
)
"""
LEGACY_UNIQUE_INDEX = (
    "CREATE UNIQUE INDEX idx_schedules_contact_type_date "
    "ON email_schedules(contact_id, email_type, scheduled_send_date)"
)

# An older scheduler's table from before rows carried timestamps.
NO_TIMESTAMPS_DDL = """
CREATE TABLE email_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT NOT NULL DEFAULT 'pre-scheduled',
    skip_reason TEXT,
    priority INTEGER DEFAULT 10,
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT
)
"""

# The legacy unique in the table, on a table of the sending system's own
# definitions: status may be NULL, priorities are checked, contacts referenced.
LOOSE_DDL = """
CREATE TABLE email_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL, -- the day it goes out
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT,
    skip_reason TEXT,
    priority INTEGER DEFAULT 10 CHECK (priority > 0),
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT,
    created_at TEXT,
    updated_at TEXT,
    UNIQUE(contact_id, email_type, scheduled_send_date)
)
"""

# A table with no id column at all; its legacy unique is a separate index.
NO_ID_DDL = """
CREATE TABLE email_schedules (
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT NOT NULL DEFAULT 'pre-scheduled',
    skip_reason TEXT,
    priority INTEGER DEFAULT 10,
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT,
    created_at TEXT,
    updated_at TEXT
)
"""

# That table as an earlier migration left it: a plain id, NULL on every row.
NULL_ID_DDL = """
CREATE TABLE email_schedules (
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT NOT NULL DEFAULT 'pre-scheduled',
    skip_reason TEXT,
    priority INTEGER DEFAULT 10,
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT,
    created_at TEXT,
    updated_at TEXT,
    id INTEGER
)
"""

# A table keyed by (contact, type, date) itself instead of an id.
COMPOSITE_KEY_DDL = """
CREATE TABLE email_schedules (
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT NOT NULL DEFAULT 'pre-scheduled',
    skip_reason TEXT,
    priority INTEGER DEFAULT 10,
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT,
    created_at TEXT,
    updated_at TEXT,
    PRIMARY KEY (contact_id, email_type, scheduled_send_date)
)
"""

# A table whose id is INT, not INTEGER: a primary key, but no alias of the
# rowid, so rows inserted without an id get NULL.
INT_KEY_DDL = """
CREATE TABLE email_schedules (
    id INT PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT NOT NULL DEFAULT 'pre-scheduled',
    skip_reason TEXT,
    priority INTEGER DEFAULT 10,
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT,
    created_at TEXT,
    updated_at TEXT
)
"""

# The tracking system's click log: its foreign key names email_schedules and
# would delete the clicks of a deleted schedule.
CLICKS_DDL = """
CREATE TABLE tracking_clicks (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    email_schedule_id INTEGER REFERENCES email_schedules(id) ON DELETE CASCADE,
    url TEXT,
    clicked_at TEXT NOT NULL
)
"""
# A reporting tool's view of the emails still to send.
PENDING_VIEW = (
    "CREATE VIEW pending AS SELECT * FROM email_schedules "
    "WHERE status = 'pre-scheduled'"
)

# A sending system that keeps its own queue and shows it to the scheduler as
# a view named email_schedules, which ALTER TABLE cannot complete.
SENDER_QUEUE_DDL = """
CREATE TABLE sender_queue (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    status TEXT NOT NULL
)
"""
SENDER_QUEUE_VIEW = "CREATE VIEW email_schedules AS SELECT * FROM sender_queue"

SHAPES = {
    "no timestamps": (NO_TIMESTAMPS_DDL,),
    "loose definitions": (LOOSE_DDL,),
    "no id": (NO_ID_DDL, LEGACY_UNIQUE_INDEX),
    "null id": (NULL_ID_DDL,),
    "composite key": (COMPOSITE_KEY_DDL,),
    "int key": (INT_KEY_DDL,),
}
UNKEYED = ["no id", "null id", "composite key", "int key"]

# Rows an older scheduler and the sending system left behind.
LEGACY_ROWS = [
    # (contact, type, date, status, reason, campaign instance)
    (1, "birthday", "2025-04-20", "sent", None, None),
    (1, "aep", "2025-09-15", "delivered", None, None),
    (2, "birthday", "2026-06-01", "skipped", "exclusion window: CA birthday", None),
    (3, "effective_date", "2026-11-01", "pre-scheduled", None, None),
    (4, "birthday", "2027-02-10", "pre-scheduled", None, None),
    (5, "campaign_rate_increase", "2026-12-10", "pre-scheduled", None, 7),
    (6, "aep", "2026-09-15", "sent", None, None),
    (7, "birthday", "2026-12-24", "pre-scheduled", None, None),
]


def _insert_legacy_rows(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO email_schedules (contact_id, email_type, "
            "scheduled_send_date, status, skip_reason, campaign_instance_id, "
            "scheduler_run_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 'legacy-run-1', '2025-01-02 03:04:05', "
            "'2025-01-02 03:04:05')",
            LEGACY_ROWS,
        )
        # Two later rows were deleted: AUTOINCREMENT must not hand out their ids.
        conn.execute(
            "INSERT INTO email_schedules (contact_id, email_type, "
            "scheduled_send_date) VALUES (8, 'birthday', '2027-03-01'), "
            "(9, 'birthday', '2027-03-02')"
        )
        conn.execute("DELETE FROM email_schedules WHERE contact_id IN (8, 9)")


def make_legacy(path: Path, shape: str) -> Path:
    """Return a legacy org database whose unique lives in the table or an index."""
    generate_org(path, 200, seed=5)
    if shape == "index":
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("DROP TABLE email_schedules")
            conn.execute(INDEX_SHAPE_DDL)
            conn.execute(LEGACY_UNIQUE_INDEX)
    _insert_legacy_rows(path)
    return path


def make_shape(path: Path, ddl: str, *statements: str) -> Path:
    """Return an org database whose email_schedules is `ddl`, with LEGACY_ROWS."""
    generate_org(path, 200, seed=5)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE email_schedules")
        for sql in (ddl, *statements):
            conn.execute(sql)
        conn.executemany(
            "INSERT INTO email_schedules (contact_id, email_type, "
            "scheduled_send_date, status, skip_reason, campaign_instance_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            LEGACY_ROWS,
        )
    return path


def migrate(path: Path) -> None:
    conn = connect(path)
    try:
        schema.migrate(conn)
    finally:
        conn.close()


def needs_migration(path: Path) -> bool:
    conn = connect(path)
    try:
        return schema.needs_migration(conn)
    finally:
        conn.close()


def columns(path: Path, table: str) -> list[str]:
    return [row[1] for row in query(path, f"PRAGMA table_info({table})")]


def unique_indexes(path: Path) -> dict[str, list[str]]:
    """Return every unique index on email_schedules with its key columns."""
    found = {}
    for _, name, unique, origin, _ in query(path, "PRAGMA index_list(email_schedules)"):
        if unique and origin != "pk":
            keys = query(path, f"PRAGMA index_xinfo({name})")
            found[name] = [key[2] for key in keys if key[5]]  # key columns only
    return found


def legacy_rows(path: Path) -> list[tuple[object, ...]]:
    return query(path, f"SELECT {LEGACY_COLUMNS} FROM email_schedules ORDER BY id")


@pytest.fixture(params=["table", "index"])
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A legacy org database with rows; its legacy unique in the table or an index."""
    return make_legacy(tmp_path / "org.sqlite3", request.param)


class TestMigration:
    def test_legacy_database_needs_migration(self, legacy: Path) -> None:
        assert needs_migration(legacy)
        migrate(legacy)
        assert not needs_migration(legacy)

    def test_missing_columns_are_added(self, legacy: Path) -> None:
        assert not set(NEW_COLUMNS) & set(columns(legacy, "email_schedules"))
        migrate(legacy)
        assert set(NEW_COLUMNS) <= set(columns(legacy, "email_schedules"))

    def test_rows_and_ids_are_kept(self, legacy: Path) -> None:
        before = legacy_rows(legacy)
        migrate(legacy)
        assert legacy_rows(legacy) == before
        new = query(
            legacy, f"SELECT DISTINCT {', '.join(NEW_COLUMNS)} FROM email_schedules"
        )
        assert new == [(None, None, None, None)]

    def test_owned_tables_are_created(self, legacy: Path) -> None:
        migrate(legacy)
        tables = {row[0] for row in query(legacy, "SELECT name FROM sqlite_master")}
        assert tables >= OWNED_TABLES | {"contacts"}

    def test_legacy_unique_is_replaced_by_the_identity_index(
        self, legacy: Path
    ) -> None:
        assert list(unique_indexes(legacy).values()) == [
            ["contact_id", "email_type", "scheduled_send_date"]
        ]
        migrate(legacy)
        assert unique_indexes(legacy) == {
            "idx_email_schedules_identity": [
                "contact_id",
                "email_type",
                None,  # IFNULL(campaign_instance_id, 0) is an expression
                "event_year",
                "event_month",
                "event_day",
            ]
        }

    def test_two_instances_of_one_campaign_type_fit_on_one_day(
        self, legacy: Path
    ) -> None:
        migrate(legacy)
        row = (
            "INSERT INTO email_schedules (contact_id, email_type, "
            "scheduled_send_date, campaign_instance_id, event_year, event_month, "
            "event_day) VALUES (10, 'campaign_rate_increase', '2027-01-05', ?, "
            "2027, 1, 5)"
        )
        with closing(sqlite3.connect(legacy)) as conn:
            conn.execute(row, (1,))
            conn.execute(row, (2,))  # the legacy unique refused this
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(row, (2,))  # same identity twice

    def test_second_migration_changes_nothing(self, legacy: Path) -> None:
        migrate(legacy)
        tables = sorted(OWNED_TABLES | {"contacts"})
        master = schema_snapshot(legacy)
        data = {table: table_rows(legacy, table) for table in tables}
        migrate(legacy)
        assert schema_snapshot(legacy) == master
        assert {table: table_rows(legacy, table) for table in tables} == data

    def test_contacts_table_is_untouched(self, legacy: Path) -> None:
        sql = "SELECT sql FROM sqlite_master WHERE name = 'contacts'"
        before = (query(legacy, sql), table_rows(legacy, "contacts"))
        migrate(legacy)
        assert (query(legacy, sql), table_rows(legacy, "contacts")) == before
        assert "current_carrier" in columns(legacy, "contacts")

    def test_deleted_ids_are_never_handed_out_again(self, legacy: Path) -> None:
        # Ids 9 and 10 were used and deleted; the sender may still log them.
        migrate(legacy)
        with closing(sqlite3.connect(legacy)) as conn, conn:
            cursor = conn.execute(
                "INSERT INTO email_schedules (contact_id, email_type, "
                "scheduled_send_date) VALUES (11, 'birthday', '2027-04-01')"
            )
            assert cursor.lastrowid == len(LEGACY_ROWS) + 3

    def test_columns_the_sender_added_survive(self, legacy: Path) -> None:
        with closing(sqlite3.connect(legacy)) as conn, conn:
            conn.execute("ALTER TABLE email_schedules ADD COLUMN provider_ref TEXT")
            conn.execute("UPDATE email_schedules SET provider_ref = 'msg-' || id")
        migrate(legacy)
        assert query(legacy, "SELECT id, provider_ref FROM email_schedules") == [
            (i, f"msg-{i}") for i in range(1, len(LEGACY_ROWS) + 1)
        ]

    def test_non_unique_indexes_of_the_sender_survive(self, legacy: Path) -> None:
        with closing(sqlite3.connect(legacy)) as conn, conn:
            conn.execute(
                "CREATE INDEX idx_sender_pickup ON email_schedules(status, contact_id)"
            )
        migrate(legacy)
        names = {row[1] for row in query(legacy, "PRAGMA index_list(email_schedules)")}
        assert "idx_sender_pickup" in names

    def test_the_retired_run_index_is_dropped(self, legacy: Path) -> None:
        migrate(legacy)
        with closing(sqlite3.connect(legacy)) as conn, conn:
            conn.execute(
                "CREATE INDEX idx_email_schedules_run "
                "ON email_schedules(scheduler_run_id)"
            )
        assert needs_migration(legacy)
        migrate(legacy)
        names = {row[1] for row in query(legacy, "PRAGMA index_list(email_schedules)")}
        assert "idx_email_schedules_run" not in names
        assert not needs_migration(legacy)

    def test_triggers_of_the_sender_survive(self, legacy: Path) -> None:
        with closing(sqlite3.connect(legacy)) as conn, conn:
            conn.execute("CREATE TABLE status_log (schedule_id INTEGER, status TEXT)")
            conn.execute(
                "CREATE TRIGGER log_status AFTER UPDATE OF status ON email_schedules "
                "BEGIN INSERT INTO status_log VALUES (new.id, new.status); END"
            )
        migrate(legacy)
        with closing(sqlite3.connect(legacy)) as conn, conn:
            conn.execute("UPDATE email_schedules SET status = 'sent' WHERE id = 4")
        assert query(legacy, "SELECT * FROM status_log") == [(4, "sent")]

    def test_run_migrates_then_keeps_the_schema(self, legacy: Path) -> None:
        before = legacy_rows(legacy)
        run_json(legacy, TODAY)
        master = schema_snapshot(legacy)
        assert "idx_email_schedules_identity" in unique_indexes(legacy)
        assert set(NEW_COLUMNS) <= set(columns(legacy, "email_schedules"))
        # The run leaves history alone; it may only move its own future rows.
        kept = {row[0]: row for row in legacy_rows(legacy)}
        for row in before:
            if row[5] in ("sent", "delivered") or row[3] < TODAY:
                assert kept[row[0]] == row
        run_json(legacy, TODAY)
        assert schema_snapshot(legacy) == master
        assert duplicate_identities(legacy) == []


class TestLegacyShapes:
    """Every legacy shape migrates once, and then is current."""

    @pytest.fixture(params=list(SHAPES))
    def shaped(self, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
        return make_shape(tmp_path / "org.sqlite3", *SHAPES[request.param])

    def test_needs_migration_until_migrated(self, shaped: Path) -> None:
        assert needs_migration(shaped)
        migrate(shaped)
        assert not needs_migration(shaped)

    def test_second_migration_changes_nothing(self, shaped: Path) -> None:
        migrate(shaped)
        master = schema_snapshot(shaped)
        rows = table_rows(shaped, "email_schedules")
        migrate(shaped)
        assert schema_snapshot(shaped) == master
        assert table_rows(shaped, "email_schedules") == rows


class TestTimestampsAreAdded:
    """A table with rows gets created_at and updated_at without a default."""

    @pytest.fixture
    def untimed(self, tmp_path: Path) -> Path:
        return make_shape(tmp_path / "org.sqlite3", NO_TIMESTAMPS_DDL)

    def test_rows_are_kept_without_timestamps(self, untimed: Path) -> None:
        legacy = ", ".join(columns(untimed, "email_schedules"))
        before = query(untimed, f"SELECT {legacy} FROM email_schedules ORDER BY id")
        migrate(untimed)
        after = query(untimed, f"SELECT {legacy} FROM email_schedules ORDER BY id")
        assert after == before
        stamps = "SELECT DISTINCT created_at, updated_at FROM email_schedules"
        assert query(untimed, stamps) == [(None, None)]

    def test_rows_a_run_writes_are_timestamped(self, untimed: Path) -> None:
        report = run_json(untimed, TODAY)
        rows = report["rows"]
        assert rows["inserted"] > 0
        mine = "SELECT count(*) FROM email_schedules WHERE scheduler_run_id = ?"
        run_id = (report["run_id"],)
        assert scalar(untimed, mine, run_id) == rows["inserted"] + rows["updated"]
        assert scalar(untimed, f"{mine} AND updated_at IS NULL", run_id) == 0
        # Only the older rows the run moved were written before timestamps.
        unstamped = scalar(untimed, f"{mine} AND created_at IS NULL", run_id)
        assert unstamped == rows["updated"]


class TestFailures:
    def test_name_the_table_the_column_and_the_fix(self, tmp_path: Path) -> None:
        path = tmp_path / "org.sqlite3"
        generate_org(path, 200, seed=5)
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("DROP TABLE email_schedules")
            conn.execute(SENDER_QUEUE_DDL)
            conn.execute(SENDER_QUEUE_VIEW)
        before = schema_snapshot(path)
        message = (
            "adding column scheduled_send_time to table email_schedules failed: "
            "Cannot add a column to a view. Nothing was changed; add it yourself "
            "(ALTER TABLE email_schedules ADD COLUMN scheduled_send_time TEXT "
            "DEFAULT '08:30:00'), then run again"
        )
        with pytest.raises(DatabaseError) as caught:
            migrate(path)
        assert str(caught.value) == message
        assert schema_snapshot(path) == before
        outcome = cli("run", path, "--today", TODAY)
        assert (outcome.exit_code, outcome.stderr) == (1, f"Error: {message}\n")


class TestRebuildKeepsReferences:
    """Views and other tables' foreign keys still name email_schedules."""

    @pytest.fixture
    def referenced(self, tmp_path: Path) -> Path:
        path = make_legacy(tmp_path / "org.sqlite3", "table")
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(CLICKS_DDL)
            conn.execute(PENDING_VIEW)
            conn.execute(
                "INSERT INTO tracking_clicks (contact_id, email_schedule_id, "
                "clicked_at) VALUES (1, 1, '2025-04-20 14:00:00')"
            )
        return path

    @pytest.mark.parametrize("enforced", [False, True], ids=["fk off", "fk on"])
    def test_foreign_keys_and_views_work(
        self, referenced: Path, enforced: bool
    ) -> None:
        definitions = (
            "SELECT name, sql FROM sqlite_master "
            "WHERE name IN ('tracking_clicks', 'pending') ORDER BY name"
        )
        before = query(referenced, definitions)
        click = (
            "INSERT INTO tracking_clicks (contact_id, email_schedule_id, "
            "clicked_at) VALUES (2, ?, '2026-06-01 09:00:00')"
        )
        conn = connect(referenced)
        try:
            conn.execute(f"PRAGMA foreign_keys = {int(enforced)}")
            schema.migrate(conn)
            assert conn.execute("PRAGMA foreign_keys").fetchone() == (enforced,)
            conn.execute("PRAGMA foreign_keys = ON")
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            conn.execute(click, (3,))
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(click, (999,))  # no such schedule
        finally:
            conn.close()
        assert query(referenced, definitions) == before
        assert query(referenced, "SELECT email_schedule_id FROM tracking_clicks") == [
            (1,),  # the click from before the rebuild
            (3,),
        ]
        pending = [
            (i + 1,) for i, r in enumerate(LEGACY_ROWS) if r[3] == "pre-scheduled"
        ]
        assert query(referenced, "SELECT id FROM pending ORDER BY id") == pending


class TestRebuildKeepsDefinitions:
    """Only the legacy unique goes; every column keeps its own definition."""

    @pytest.fixture
    def loose(self, tmp_path: Path) -> Path:
        path = make_shape(tmp_path / "org.sqlite3", LOOSE_DDL)
        with closing(sqlite3.connect(path)) as conn, conn:
            # The sending system cleared the status of one row.
            conn.execute("UPDATE email_schedules SET status = NULL WHERE id = 8")
        return path

    def test_rows_without_status_are_kept(self, loose: Path) -> None:
        legacy = ", ".join(columns(loose, "email_schedules"))
        before = query(loose, f"SELECT {legacy} FROM email_schedules ORDER BY id")
        migrate(loose)
        after = query(loose, f"SELECT {legacy} FROM email_schedules ORDER BY id")
        assert after == before
        assert scalar(loose, "SELECT status FROM email_schedules WHERE id = 8") is None

    def test_columns_keep_their_definitions(self, loose: Path) -> None:
        definitions = "PRAGMA table_info(email_schedules)"
        before = query(loose, definitions)
        migrate(loose)
        assert query(loose, definitions)[: len(before)] == before
        assert query(loose, "PRAGMA foreign_key_list(email_schedules)")[0][2:5] == (
            "contacts",
            "contact_id",
            "id",
        )
        with (
            closing(sqlite3.connect(loose)) as conn,
            pytest.raises(sqlite3.IntegrityError, match="CHECK"),
        ):
            conn.execute("UPDATE email_schedules SET priority = 0 WHERE id = 1")
        assert list(unique_indexes(loose)) == ["idx_email_schedules_identity"]


class TestIntegerKey:
    """A table without an integer id gets one: every write addresses rows by id."""

    @pytest.fixture(params=UNKEYED)
    def unkeyed(self, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
        return make_shape(tmp_path / "org.sqlite3", *SHAPES[request.param])

    def test_rows_get_their_rowid_as_id(self, unkeyed: Path) -> None:
        fields = "contact_id, email_type, scheduled_send_date, status"
        before = query(
            unkeyed, f"SELECT rowid, {fields} FROM email_schedules ORDER BY rowid"
        )
        migrate(unkeyed)
        assert (
            query(unkeyed, f"SELECT id, {fields} FROM email_schedules ORDER BY id")
            == before
        )
        keys = [
            row[1:3]
            for row in query(unkeyed, "PRAGMA table_info(email_schedules)")
            if row[5]
        ]
        assert keys == [("id", "INTEGER")]
        with closing(sqlite3.connect(unkeyed)) as conn, conn:
            cursor = conn.execute(
                "INSERT INTO email_schedules (contact_id, email_type, "
                "scheduled_send_date) VALUES (11, 'birthday', '2027-04-01')"
            )
            assert cursor.lastrowid == len(LEGACY_ROWS) + 1

    def test_ids_the_rows_have_are_kept(self, tmp_path: Path) -> None:
        path = make_shape(tmp_path / "org.sqlite3", INT_KEY_DDL)
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE email_schedules SET id = 100 + rowid")
        ids = "SELECT id, contact_id FROM email_schedules ORDER BY id"
        before = query(path, ids)
        migrate(path)
        assert query(path, ids) == before

    def test_a_second_run_changes_nothing(self, unkeyed: Path) -> None:
        assert run_json(unkeyed, TODAY)["rows"]["inserted"] > 0
        outcome = cli("run", unkeyed, "--today", TODAY, "--json")
        assert outcome.exit_code == 0, outcome.stderr
        rows = outcome.json()["rows"]
        changes = ("inserted", "updated", "deleted", "conflicts")
        assert {key: rows[key] for key in changes} == dict.fromkeys(changes, 0)
        assert duplicate_identities(unkeyed) == []
        nulls = "SELECT count(*) FROM email_schedules WHERE id IS NULL"
        assert scalar(unkeyed, nulls) == 0


class TestLegacyRowsAreAdopted:
    """A run matches rows older schedulers wrote without a full event date."""

    @pytest.fixture
    def planned(self, tmp_path: Path) -> Iterator[tuple[Path, dict[str, object]]]:
        """A fresh legacy database and one birthday row a run plans on it."""
        probe = generate_org(tmp_path / "probe.sqlite3", 200, seed=5)
        assert probe.contacts == 200
        run_json(tmp_path / "probe.sqlite3", TODAY)
        rows = schedules(
            tmp_path / "probe.sqlite3",
            "email_type = 'birthday' AND status = 'pre-scheduled' "
            "AND scheduled_send_date > ?",
            (TODAY,),
        )
        row = rows[min(rows)]
        path = tmp_path / "org.sqlite3"
        generate_org(path, 200, seed=5)
        yield path, row

    def _insert(self, path: Path, row: dict[str, object], **values: object) -> int:
        fields = {
            "contact_id": row["contact_id"],
            "email_type": "birthday",
            "scheduled_send_date": row["scheduled_send_date"],
            "scheduler_run_id": "legacy-run",
            **values,
        }
        names = ", ".join(fields)
        marks = ", ".join("?" * len(fields))
        with closing(sqlite3.connect(path)) as conn, conn:
            if "event_year" in fields:
                conn.execute(
                    "ALTER TABLE email_schedules ADD COLUMN event_year INTEGER"
                )
            cursor = conn.execute(
                f"INSERT INTO email_schedules ({names}) VALUES ({marks})",
                tuple(fields.values()),
            )
            return int(cursor.lastrowid or 0)

    def _birthday_rows(self, path: Path, contact_id: object) -> dict[int, dict]:
        return schedules(
            path, "contact_id = ? AND email_type = 'birthday'", (contact_id,)
        )

    def test_matched_on_the_send_date(
        self, planned: tuple[Path, dict[str, object]]
    ) -> None:
        path, row = planned
        legacy_id = self._insert(path, row)
        run_json(path, TODAY)
        rows = self._birthday_rows(path, row["contact_id"])
        assert list(rows) == [legacy_id]
        event = (row["event_year"], row["event_month"], row["event_day"])
        adopted = rows[legacy_id]
        assert (
            adopted["event_year"],
            adopted["event_month"],
            adopted["event_day"],
        ) == (event)

    def test_matched_on_the_event_year(
        self, planned: tuple[Path, dict[str, object]]
    ) -> None:
        path, row = planned
        # An older scheduler stored the year only, and chose another day.
        legacy_id = self._insert(
            path, row, scheduled_send_date="2099-01-01", event_year=row["event_year"]
        )
        run_json(path, TODAY)
        rows = self._birthday_rows(path, row["contact_id"])
        assert list(rows) == [legacy_id]
        assert rows[legacy_id]["scheduled_send_date"] == row["scheduled_send_date"]
        assert scalar(path, "SELECT count(*) FROM email_schedules") == scalar(
            path.with_name("probe.sqlite3"), "SELECT count(*) FROM email_schedules"
        )

    def test_a_sent_legacy_row_is_history(
        self, planned: tuple[Path, dict[str, object]]
    ) -> None:
        path, row = planned
        legacy_id = self._insert(path, row, status="sent")
        sent = schedules(path)[legacy_id]
        run_json(path, TODAY)
        rows = self._birthday_rows(path, row["contact_id"])
        assert list(rows) == [legacy_id]
        assert {name: rows[legacy_id][name] for name in sent} == sent


class TestInit:
    def test_init_creates_every_table(self, tmp_path: Path) -> None:
        path = tmp_path / "new.sqlite3"
        outcome = cli("init", path)
        assert outcome.exit_code == 0, outcome.stderr
        assert str(path) in outcome.stdout
        tables = {
            row[0]
            for row in query(path, "SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert tables >= OWNED_TABLES | {"contacts"}
        assert "idx_email_schedules_identity" in unique_indexes(path)
        assert {"carrier", "failed_underwriting", "birth_date"} <= set(
            columns(path, "contacts")
        )
        assert set(NEW_COLUMNS) <= set(columns(path, "email_schedules"))
        assert not needs_migration(path)

    def test_run_on_an_initialized_database(self, tmp_path: Path) -> None:
        path = tmp_path / "new.sqlite3"
        assert cli("init", path).exit_code == 0
        master = schema_snapshot(path)
        report = run_json(path, TODAY)
        assert report["contacts_read"] == 0
        assert report["planned"] == {}
        assert {k: report["rows"][k] for k in ("inserted", "updated", "deleted")} == {
            "inserted": 0,
            "updated": 0,
            "deleted": 0,
        }
        assert query(path, "SELECT status FROM scheduler_checkpoints") == [
            ("completed",)
        ]
        assert schema_snapshot(path) == master
