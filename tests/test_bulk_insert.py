"""Bulk inserts: a first run builds the indexes of email_schedules once, at the end.

The sending system finds its due rows through the send-date index and the
identity index keeps one row per email, so every index must be there, as
it was defined, after every run; a run that adds most of the table builds
them once instead of growing them row by row.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from email_scheduler.config import Settings
from email_scheduler.generate import generate_org
from email_scheduler.run import run
from email_scheduler.store import staging, writer
from email_scheduler.store.database import connect_columnar
from helpers import CONTENT, HISTORY, copy_org, query, run_json, scalar

TODAY = dt.date(2026, 12, 3)
INDEXES = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
    "AND tbl_name = 'email_schedules' ORDER BY name"
)
PARTITION = 400
ROWS = f"SELECT id, contact_id, {', '.join(CONTENT)} FROM email_schedules ORDER BY id"
DUE = (
    "EXPLAIN QUERY PLAN SELECT id FROM email_schedules "
    "WHERE status = 'pre-scheduled' AND scheduled_send_date <= '2026-12-05'"
)


@pytest.mark.parametrize(
    ("inserts", "rows", "expected"),
    [
        (99_999, 0, False),  # a small org's first run: not worth it
        (100_000, 0, True),  # a large org's first run
        (100_000, 400_000, True),  # a quarter of the table
        (100_000, 400_004, False),  # just under a quarter
        (30_000, 9_000_000, False),  # a daily run
    ],
)
def test_bulk_threshold(inserts: int, rows: int, expected: bool) -> None:
    assert writer.bulk(inserts, rows) is expected


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "org.sqlite3"
    generate_org(path, 2_000, seed=4, history_until=TODAY)
    return path


def test_bulk_writes_the_same_rows_and_keeps_the_index(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = copy_org(template, tmp_path / "plain.sqlite3")
    bulky = copy_org(template, tmp_path / "bulk.sqlite3")
    for path in (plain, bulky):
        # An index of the operator's own is rebuilt like the scheduler's.
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(
                "CREATE INDEX ops_rows_by_run ON email_schedules(scheduler_run_id)"
            )
    run_json(plain, TODAY)
    monkeypatch.setattr(writer, "bulk", lambda inserts, rows: True)
    report = run_json(bulky, TODAY)

    assert report["rows"]["inserted"] > 0
    content = (
        f"SELECT contact_id, {', '.join(CONTENT)} FROM email_schedules ORDER BY id"
    )
    assert query(bulky, content) == query(plain, content)
    indexes = query(bulky, INDEXES)
    assert indexes == query(plain, INDEXES)
    assert {name for name, _ in indexes} >= {
        writer.SEND_DATE_INDEX,
        "idx_email_schedules_identity",
        "ops_rows_by_run",
    }
    assert scalar(bulky, "PRAGMA integrity_check") == "ok"
    assert writer.SEND_DATE_INDEX in str(query(bulky, DUE))


def test_a_rebuilt_unique_index_that_no_longer_holds_fails_the_transaction(
    template: Path, tmp_path: Path
) -> None:
    path = copy_org(template, tmp_path / "org.sqlite3")
    run_json(path, TODAY)
    before = query(path, INDEXES)
    rows = scalar(path, "SELECT count(*) FROM email_schedules")
    columnar = connect_columnar(path)
    try:
        with (
            columnar.cursor() as cursor,
            pytest.raises(Exception, match="UNIQUE"),
            writer.indexes_rebuilt(cursor),
        ):
            cursor.execute(
                "INSERT INTO email_schedules (contact_id, email_type, "
                "scheduled_send_date, event_year, event_month, event_day) "
                "SELECT contact_id, email_type, scheduled_send_date, "
                "event_year, event_month, event_day FROM email_schedules "
                "WHERE event_year IS NOT NULL LIMIT 1"
            )
        columnar.rollback()
    finally:
        columnar.close()
    assert query(path, INDEXES) == before
    assert scalar(path, "SELECT count(*) FROM email_schedules") == rows


def test_staged_partitions_write_what_one_connection_writes(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In partitions, a bulk write's later partitions are inserted into a
    # staging database by a second writer, then copied in.
    plain = copy_org(template, tmp_path / "plain.sqlite3")
    # The staging database lies in a folder named after the org database.
    staged = copy_org(template, tmp_path / "org's #1?.sqlite3")
    expected = run(plain, Settings(), TODAY, partition_contacts=PARTITION)
    copies: list[int] = []
    copy_into = staging.Staging.copy_into

    def counted(self: staging.Staging, cursor: object) -> int:
        copies.append(copy_into(self, cursor))
        return copies[-1]

    monkeypatch.setattr(staging.Staging, "copy_into", counted)
    monkeypatch.setattr(writer, "bulk", lambda inserts, rows: True)
    report = run(staged, Settings(), TODAY, partition_contacts=PARTITION)

    assert report.rows == expected.rows
    assert 0 < copies[0] < report.rows["inserted"]
    assert query(staged, ROWS) == query(plain, ROWS)
    assert query(staged, INDEXES) == query(plain, INDEXES)
    counter = "SELECT seq FROM sqlite_sequence WHERE name = 'email_schedules'"
    assert query(staged, counter) == query(plain, counter)
    assert scalar(staged, "PRAGMA integrity_check") == "ok"
    left = {p.name for p in tmp_path.iterdir()} - {plain.name, staged.name}
    assert left <= {f"{plain.name}.lock", f"{staged.name}.lock"}


def test_a_failing_second_writer_leaves_the_table_as_before(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_org(template, tmp_path / "org.sqlite3")
    before = query(path, HISTORY)
    inserts = []

    def failing(self: staging.Staging, new: object, stamped: object) -> None:
        inserts.append(new)
        raise OSError("disk full")

    monkeypatch.setattr(staging.Staging, "insert", failing)
    monkeypatch.setattr(writer, "bulk", lambda inserts, rows: True)
    with pytest.raises(OSError, match="disk full"):
        run(path, Settings(), TODAY, partition_contacts=PARTITION)

    assert len(inserts) == 1  # the second writer stopped at its first error
    assert query(path, HISTORY) == before
    assert query(path, "SELECT status FROM scheduler_checkpoints") == [("failed",)]
    assert list(tmp_path.glob(".org.sqlite3.run-*")) == []
