"""A partition read from its snapshot and the change log holds exactly the
rows a full read of email_schedules gives, whoever changed the table.

Runs keep each partition's rows in `schedule_snapshots` and triggers log
every change to email_schedules; the next run reads a partition as its
snapshot plus the rows logged since. Nothing about the plan may depend on
which way the rows were read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from email_scheduler.config import Settings
from email_scheduler.generate import generate_org
from email_scheduler.store import reader, snapshot, writer
from email_scheduler.store.database import connect_columnar
from email_scheduler.store.schema import table_columns
from helpers import (
    CONTENT,
    connection,
    copy_org,
    planned_report,
    query,
    scalar,
    send_due,
)

CONTACTS = 600
PARTITION = 100
TODAY = dt.date(2026, 9, 1)
SETTINGS = Settings()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshot") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=11, campaigns=True, history_until=TODAY)
    return path


def run_on(path: Path, today: dt.date) -> dict[str, Any]:
    return planned_report(path, SETTINGS, today, PARTITION)


def assert_snapshots_agree(path: Path) -> int:
    """Assert that each partition read through its snapshot is the full read;
    return how many partitions were compared."""
    with connection(path) as sqlite:
        columns = table_columns(sqlite, "email_schedules")
        catalog = snapshot.Catalog.of(sqlite, columns)
    columnar = connect_columnar(path)
    try:
        for ids in catalog.ranges:
            found = snapshot.read(columnar, catalog, columns, ids)
            full = reader.schedule_table(columnar, columns, ids)
            # Text is compared by value: dictionaries may list it in any order.
            assert found.table.to_pydict() == full.to_pydict(), ids
    finally:
        columnar.close()
    return len(catalog.ranges)


def rows(path: Path) -> list[tuple[Any, ...]]:
    columns = ", ".join(("id", "contact_id", *CONTENT))
    return query(path, f"SELECT {columns} FROM email_schedules ORDER BY id")


def change_like_other_systems(path: Path, today: dt.date) -> None:
    """Send what is due, and change, add, move and delete rows by hand."""
    send_due(path, today)
    with connection(path) as conn:
        ids = [
            row_id
            for (row_id,) in conn.execute(
                "SELECT id FROM email_schedules WHERE status = 'pre-scheduled' "
                "ORDER BY id LIMIT 4"
            )
        ]
        conn.execute("DELETE FROM email_schedules WHERE id = ?", (ids[0],))
        conn.execute(
            "UPDATE email_schedules SET metadata = '{\"note\": 1}', priority = 3 "
            "WHERE id = ?",
            (ids[1],),
        )
        far = conn.execute("SELECT max(id) + 1000 FROM contacts").fetchone()[0]
        conn.execute(
            "UPDATE email_schedules SET contact_id = ? WHERE id = ?", (far, ids[2])
        )
        conn.execute(
            "INSERT INTO email_schedules (contact_id, email_type, "
            "scheduled_send_date, status) VALUES (1, 'manual', ?, 'scheduled')",
            ((today + dt.timedelta(days=3)).isoformat(),),
        )
        conn.commit()


def test_snapshots_hold_what_a_full_read_gives_day_after_day(
    template: Path, tmp_path: Path
) -> None:
    org = copy_org(template, tmp_path / "org.sqlite3")
    for offset in range(3):
        today = TODAY + dt.timedelta(days=offset)
        run_on(org, today)
        assert assert_snapshots_agree(org) == CONTACTS // PARTITION
        change_like_other_systems(org, today)
        assert assert_snapshots_agree(org) == CONTACTS // PARTITION
    # The log keeps only the entries some snapshot does not hold yet.
    oldest = scalar(org, "SELECT min(valid_through) FROM schedule_snapshots")
    assert scalar(org, "SELECT count(*) FROM email_schedule_changes") > 0
    assert (
        scalar(
            org, "SELECT count(*) FROM email_schedule_changes WHERE seq <= ?", (oldest,)
        )  # fmt: skip
        == 0
    )


def test_runs_from_snapshots_write_what_runs_reading_every_row_write(
    template: Path, tmp_path: Path
) -> None:
    kept = copy_org(template, tmp_path / "kept.sqlite3")
    fresh = copy_org(template, tmp_path / "fresh.sqlite3")
    for offset in range(3):
        today = TODAY + dt.timedelta(days=offset)
        with connection(fresh) as conn:
            if offset:
                conn.execute("DELETE FROM schedule_snapshots")
                conn.commit()
        assert run_on(kept, today) == run_on(fresh, today)
        assert rows(kept) == rows(fresh)
        change_like_other_systems(kept, today)
        change_like_other_systems(fresh, today)


def test_a_rerun_reads_its_rows_from_the_snapshots(
    template: Path, tmp_path: Path
) -> None:
    org = copy_org(template, tmp_path / "org.sqlite3")
    first = run_on(org, TODAY)
    # The first run's own rows went into the log; the second reads them
    # again and, as they are most of each partition, writes the snapshots
    # anew with them.
    run_on(org, TODAY)
    assert scalar(org, "SELECT count(*) FROM email_schedule_changes") == 0
    data = query(org, "SELECT first_contact, data FROM schedule_snapshots")
    again = run_on(org, TODAY)
    assert again["rows"]["unchanged"] == first["rows"]["inserted"] > 0
    assert again["rows"]["inserted"] == again["rows"]["updated"] == 0
    # Nothing changed, so no snapshot was written again.
    assert query(org, "SELECT first_contact, data FROM schedule_snapshots") == data


def test_a_bulk_write_goes_unlogged_into_the_snapshots(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first run on a large org inserts millions of rows: logging each one
    # would cost more than the insert, so the snapshots take them instead.
    monkeypatch.setattr(writer, "BULK_MINIMUM", 0)
    org = copy_org(template, tmp_path / "org.sqlite3")
    first = run_on(org, TODAY)
    assert first["rows"]["inserted"] > 0
    follow_ups = "SELECT count(*) FROM email_schedules WHERE status = 'pre-scheduled'"
    assert scalar(org, f"{follow_ups} AND email_type LIKE 'followup%'") > 0
    assert scalar(org, "SELECT count(*) FROM email_schedule_changes") == 0
    assert assert_snapshots_agree(org) == CONTACTS // PARTITION
    again = run_on(org, TODAY)
    assert again["rows"]["unchanged"] == first["rows"]["inserted"]
    change_like_other_systems(org, TODAY)
    assert assert_snapshots_agree(org) == CONTACTS // PARTITION


def replace_through_the_identity(path: Path, today: dt.date) -> None:
    """Play a sync tool that writes rows with INSERT OR REPLACE: a pending
    row goes out under a new id, and SQLite deletes the old one to make
    room without firing any delete trigger."""
    with connection(path) as conn:
        old = conn.execute(
            "SELECT id, contact_id, email_type, campaign_instance_id, event_year, "
            "event_month, event_day, scheduled_send_date FROM email_schedules "
            "WHERE status = 'pre-scheduled' AND event_year IS NOT NULL "
            "ORDER BY id LIMIT 1"
        ).fetchone()
        conn.execute(
            "INSERT OR REPLACE INTO email_schedules (contact_id, email_type, "
            "campaign_instance_id, event_year, event_month, event_day, "
            "scheduled_send_date, status, actual_send_datetime) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'sent', ?)",
            (*tuple(old)[1:], f"{today.isoformat()} 13:30:00"),
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM email_schedules WHERE id = ?", (old["id"],)
            ).fetchone()[0]
            == 0
        )


def test_a_row_replaced_under_a_new_id_leaves_the_snapshot(
    template: Path, tmp_path: Path
) -> None:
    kept = copy_org(template, tmp_path / "kept.sqlite3")
    run_on(kept, TODAY)
    run_on(kept, TODAY)  # the snapshots now hold the first run's rows
    fresh = copy_org(kept, tmp_path / "fresh.sqlite3")
    for org in (kept, fresh):
        replace_through_the_identity(org, TODAY)
    assert assert_snapshots_agree(kept) == CONTACTS // PARTITION
    with connection(fresh) as conn:
        conn.execute("DELETE FROM schedule_snapshots")
    tomorrow = TODAY + dt.timedelta(days=1)
    assert run_on(kept, tomorrow) == run_on(fresh, tomorrow)
    assert rows(kept) == rows(fresh)


def test_changes_made_without_the_triggers_void_every_snapshot(
    template: Path, tmp_path: Path
) -> None:
    org = copy_org(template, tmp_path / "org.sqlite3")
    run_on(org, TODAY)
    with connection(org) as conn:
        conn.execute("DROP TRIGGER email_schedules_logged_update")
        conn.execute("UPDATE email_schedules SET priority = 1")
        conn.commit()
        columns = table_columns(conn, "email_schedules")
        assert snapshot.Catalog.of(conn, columns).ranges == []
    report = run_on(org, TODAY)
    assert report["rows"]["updated"] > 0  # the run saw every changed row
    assert assert_snapshots_agree(org) == CONTACTS // PARTITION


def test_a_new_column_voids_the_snapshots_read_without_it(
    template: Path, tmp_path: Path
) -> None:
    org = copy_org(template, tmp_path / "org.sqlite3")
    first = run_on(org, TODAY)
    with connection(org) as conn:
        conn.execute("ALTER TABLE email_schedules ADD COLUMN sender_note TEXT")
        conn.commit()
        columns = table_columns(conn, "email_schedules")
        assert snapshot.Catalog.of(conn, columns).ranges == []
    again = run_on(org, TODAY)
    assert again["rows"]["unchanged"] == first["rows"]["inserted"]
    assert assert_snapshots_agree(org) == CONTACTS // PARTITION


def test_rows_the_snapshot_cannot_hold_as_read_are_logged_instead(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "BULK_MINIMUM", 0)
    monkeypatch.setattr(snapshot, "as_read", lambda written: None)
    org = copy_org(template, tmp_path / "org.sqlite3")
    first = run_on(org, TODAY)
    logged = scalar(org, "SELECT count(DISTINCT row_id) FROM email_schedule_changes")
    assert logged == first["rows"]["inserted"]
    assert assert_snapshots_agree(org) == CONTACTS // PARTITION


@pytest.mark.parametrize(
    ("ids", "dropped", "kept"),
    [
        ([1, 3, 5, 7], [3, 7], [1, 5]),
        ([1, 3, 5, 7], [0, 2, 8], [1, 3, 5, 7]),  # none of them there
        ([1, 3, 5, 7], [], [1, 3, 5, 7]),
        ([], [4], []),
        ([7, 1, 5, 3], [3, 7], [1, 5]),  # not in id order
    ],
)
def test_rows_logged_since_are_dropped_from_a_snapshot(
    ids: list[int], dropped: list[int], kept: list[int]
) -> None:
    found = np.array(ids, dtype=np.int64)
    keep = snapshot._without(found, np.array(dropped, dtype=np.int64))
    assert sorted(found[keep].tolist()) == kept


def test_a_parent_read_apart_by_python_and_sqlite_is_not_guessed() -> None:
    written = pa.table(
        {
            "id": [1, 2],
            "contact_id": [7, 7],
            "email_type": ["followup_1_cold", "followup_1_cold"],
            "metadata": ['{"parent_id": 12}', '{"parent_id": "12"}'],
            "scheduled_send_date": ["2027-01-01", "2027-01-02"],
            **{
                name: pa.nulls(2, pa.int64())
                for name in ("event_year", "event_month", "event_day")
            },
        }
    )
    assert snapshot.as_read(written) is None
    parents = snapshot.as_read(written.slice(0, 1))
    assert parents is not None
    assert parents.column("parent").to_pylist() == [12]
