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

from email_scheduler.generate import generate_org
from email_scheduler.store import writer
from email_scheduler.store.database import connect_columnar
from helpers import CONTENT, copy_org, query, run_json, scalar

TODAY = dt.date(2026, 12, 3)
INDEXES = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
    "AND tbl_name = 'email_schedules' ORDER BY name"
)
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
