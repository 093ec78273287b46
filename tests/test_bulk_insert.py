"""Bulk inserts: a first run builds the send-date index once, at the end.

The sending system finds its due rows through the send-date index, so the
index must be there, as it was defined, after every run; a run that adds
most of the table builds it once instead of growing it row by row.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from email_scheduler.generate import generate_org
from email_scheduler.store import writer
from helpers import CONTENT, copy_org, query, run_json, scalar

TODAY = dt.date(2026, 12, 3)
INDEX_SQL = "SELECT sql FROM sqlite_master WHERE name = ?"
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
    run_json(plain, TODAY)
    monkeypatch.setattr(writer, "bulk", lambda inserts, rows: True)
    report = run_json(bulky, TODAY)

    assert report["rows"]["inserted"] > 0
    content = (
        f"SELECT contact_id, {', '.join(CONTENT)} FROM email_schedules ORDER BY id"
    )
    assert query(bulky, content) == query(plain, content)
    name = (writer.SEND_DATE_INDEX,)
    assert query(bulky, INDEX_SQL, name) == query(plain, INDEX_SQL, name) != []
    assert scalar(bulky, "PRAGMA integrity_check") == "ok"
    assert writer.SEND_DATE_INDEX in str(query(bulky, DUE))
