"""A run in many partitions writes exactly what a run in one partition writes.

Planning goes partition by partition of contact ids and balancing sees all
partitions at once, so the size of a partition must never show in the
plan: the same database gives the same rows, enrollment statuses and
report and, on the next days, the same changes, whether its contacts are
planned 40 at a time or all at once.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from email_scheduler import passes
from email_scheduler.config import Settings
from email_scheduler.generate import generate_org
from email_scheduler.run import run
from email_scheduler.store import reader
from email_scheduler.store.database import connect_columnar
from helpers import (
    CONTENT,
    HISTORY,
    connection,
    copy_org,
    planned_report,
    query,
    send_due,
)

CONTACTS = 900
TODAY = dt.date(2026, 9, 1)
"""Before the AEP: the September crunch makes the daily cap bind."""

SETTINGS = Settings.model_validate(
    {"load_balancing": {"daily_cap_floor": 60, "daily_send_percentage_cap": 0.01}}
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("partitions") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=5, campaigns=True, history_until=TODAY)
    return path


def rows(path: Path) -> list[tuple[Any, ...]]:
    """Return every row's identity and content, in a stable order."""
    columns = ", ".join(("contact_id", *CONTENT))
    with connection(path) as conn:
        found = conn.execute(f"SELECT {columns} FROM email_schedules")
        return sorted((tuple(row) for row in found), key=repr)


def enrollment_statuses(path: Path) -> list[tuple[Any, ...]]:
    """Return every enrollment's status, which a run keeps up to date."""
    with connection(path) as conn:
        return conn.execute(
            "SELECT id, status FROM contact_campaigns ORDER BY id"
        ).fetchall()


def report_of(path: Path, today: dt.date, partition: int) -> dict[str, Any]:
    return planned_report(path, SETTINGS, today, partition)


@pytest.mark.parametrize("partition", [40, 333])
def test_same_rows_and_report_on_consecutive_days(
    template: Path, tmp_path: Path, partition: int
) -> None:
    whole = copy_org(template, tmp_path / "whole.sqlite3")
    parts = copy_org(template, tmp_path / "parts.sqlite3")
    for offset in range(3):
        today = TODAY + dt.timedelta(days=offset)
        assert report_of(parts, today, partition) == report_of(whole, today, CONTACTS)
        assert rows(parts) == rows(whole)
        assert enrollment_statuses(parts) == enrollment_statuses(whole)
        send_due(whole, today)
        send_due(parts, today)


def test_a_first_partition_with_few_emails_plans_as_one_partition(
    template: Path, tmp_path: Path
) -> None:
    # Balancing reserves room for every partition's outgoing emails from
    # what the first partitions hold, and makes more as later ones need it.
    whole = copy_org(template, tmp_path / "whole.sqlite3")
    parts = copy_org(template, tmp_path / "parts.sqlite3")
    for org in (whole, parts):
        with connection(org) as conn:
            conn.execute(
                "UPDATE contacts SET email = '' WHERE id IN "
                "(SELECT id FROM contacts ORDER BY id LIMIT 39)"
            )
    report = report_of(parts, TODAY, 40)
    assert report == report_of(whole, TODAY, CONTACTS)
    assert report["data_quality"]["invalid_email"] >= 39
    assert rows(parts) == rows(whole)


def test_a_rerun_in_partitions_changes_nothing(template: Path, tmp_path: Path) -> None:
    org = copy_org(template, tmp_path / "org.sqlite3")
    first = report_of(org, TODAY, 100)
    again = report_of(org, TODAY, 100)
    assert first["rows"]["inserted"] > 0
    assert again["rows"] == {
        "inserted": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": first["rows"]["inserted"],
        "conflicts": 0,
    }


def test_each_run_ends_with_the_checksum_the_next_one_reads(
    template: Path, tmp_path: Path
) -> None:
    # Each run works out the table's checksum after its write from the one
    # before and its changes; the next run reads the table afresh.
    org = copy_org(template, tmp_path / "org.sqlite3")
    for offset in range(4):
        report_of(org, TODAY + dt.timedelta(days=offset), 40)
    with connection(org) as conn:
        checksums = conn.execute(
            "SELECT schedules_before_checksum, schedules_after_checksum "
            "FROM scheduler_checkpoints ORDER BY id"
        ).fetchall()
    assert len(checksums) == 4
    for (_, after), (before, _) in zip(checksums, checksums[1:], strict=False):
        assert before == after


def test_a_partition_that_fails_stops_the_run_before_any_write(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Partitions are planned two at a time on threads of their own: an error
    # in one of them must end the run as any error does, with nothing written.
    org = copy_org(template, tmp_path / "org.sqlite3")
    before = query(org, HISTORY)
    assert before  # the sent history
    planned = 0
    original = passes.plan_emails

    def failing(context: Any) -> Any:
        nonlocal planned
        planned += 1
        if int(context.inputs.contacts.id.min()) >= 400:
            raise RuntimeError("planning failed")
        return original(context)

    monkeypatch.setattr(passes, "plan_emails", failing)
    with pytest.raises(RuntimeError, match="planning failed"):
        run(org, SETTINGS, TODAY, partition_contacts=40)
    assert planned < CONTACTS // 40 + 1
    assert query(org, HISTORY) == before
    with connection(org) as conn:
        (status, error) = conn.execute(
            "SELECT status, error_message FROM scheduler_checkpoints"
        ).fetchone()
    assert status == "failed"
    assert "planning failed" in error
    assert not list(tmp_path.glob(".org.sqlite3.run-*"))


def test_a_run_that_writes_removes_the_folders_killed_runs_left(
    template: Path, tmp_path: Path
) -> None:
    # A run killed outright leaves its folder of set-aside partitions; only a
    # run holding the lock may take another run's folder for a leftover.
    org = copy_org(template, tmp_path / "org.sqlite3")
    left = tmp_path / ".org.sqlite3.run-killed"
    left.mkdir()
    (left / "0.pickle").write_bytes(b"x" * 1000)
    run(org, SETTINGS, TODAY, dry_run=True, partition_contacts=100)
    assert (left / "0.pickle").exists()
    run(org, SETTINGS, TODAY, partition_contacts=100)
    assert not left.exists()
    assert not list(tmp_path.glob(".org.sqlite3.*run-*"))


@pytest.mark.parametrize(
    ("table", "bad_ids"),
    [
        # The ids are the table's rowids: each range's contacts are counted.
        ("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)", []),
        # Any value may be an id: every id is read.
        ("CREATE TABLE contacts (id INT, email TEXT)", ["abc", 2.5]),
    ],
)
def test_partitions_are_kept_while_each_holds_half_to_twice_its_size(
    tmp_path: Path, table: str, bad_ids: list[object]
) -> None:
    path = tmp_path / "org.sqlite3"
    ids = list(range(10, 4001, 10))  # 400 contacts
    with connection(path) as conn:
        conn.execute(table)
        conn.executemany("INSERT INTO contacts (id) VALUES (?)", [(i,) for i in ids])
        conn.executemany(
            "INSERT INTO contacts (id) VALUES (?)", [(i,) for i in bad_ids]
        )
        assert reader.rows_without_id(conn) == len(bad_ids)

    def partitions(previous: list[tuple[int, int]] | None) -> list[tuple[int, int]]:
        columnar = connect_columnar(path)
        try:
            return reader.partitions(columnar, 100, previous)
        finally:
            columnar.close()

    first = partitions(None)
    assert [last for _, last in first[:-1]] == [1009, 2009, 3009]
    assert partitions(first) == first
    with connection(path) as conn:
        # 99 more contacts in the second range: 199, under twice its size.
        more = [i for i in range(1011, 2009) if i % 10][:99]
        conn.executemany("INSERT INTO contacts (id) VALUES (?)", [(i,) for i in more])
    assert partitions(first) == first
    with connection(path) as conn:
        conn.execute("INSERT INTO contacts (id) VALUES (1999)")  # 200: still fits
        conn.execute("INSERT INTO contacts (id) VALUES (1998)")  # 201: too many
    grown = partitions(first)
    assert len(grown) == 6
    assert partitions(grown) == grown
    with connection(path) as conn:
        # The last range down to 49 contacts: too few.
        conn.execute("DELETE FROM contacts WHERE id > 3490 AND id <= 4000")
        assert reader.rows_without_id(conn) == len(bad_ids)
    assert partitions(grown) != grown
