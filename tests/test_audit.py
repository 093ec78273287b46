"""Tests of the run records: the contacts checksum and interrupted runs."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from email_scheduler.contacts import Contacts
from email_scheduler.generate import generate_org
from email_scheduler.store.audit import contacts_checksum, interrupted_runs
from email_scheduler.store.schema import create_statement
from helpers import cli, connection, copy_org, query, run_json

LARGE = 300_000
STARTED, COMPLETED, FAILED = "started", "completed", "failed"
TODAY = dt.date(2026, 12, 3)
CARRIERS = ["aetna", "humana", "cigna", None, "", "anthem"]


def contacts_with(carrier: pa.ChunkedArray) -> Contacts:
    """Return contacts that differ in nothing but their carriers."""
    size = len(carrier)
    zeros = np.zeros(size, dtype=np.int64)
    return Contacts(
        id=np.arange(1, size + 1, dtype=np.int64),
        state=np.zeros(size, dtype=np.int16),
        birth=zeros,
        effective=zeros,
        carrier=carrier,
        failed_underwriting=np.zeros(size, dtype=bool),
        has_phone=np.zeros(size, dtype=bool),
        reachable=np.ones(size, dtype=bool),
    )


def checksum(*chunks: list[str | None]) -> str:
    column = pa.chunked_array([pa.array(c, pa.string()) for c in chunks], pa.string())
    return contacts_checksum(contacts_with(column))


def large_carriers() -> list[str | None]:
    return [CARRIERS[i % len(CARRIERS)] for i in range(LARGE)]


class TestContactsChecksum:
    def test_one_carrier_changed_in_the_middle_of_a_large_column(self) -> None:
        carriers = large_carriers()
        before = checksum(carriers)
        carriers[LARGE // 2] = "mutual of omaha"
        assert checksum(carriers) != before

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            # a null carrier is not an empty one
            ([None, "aetna"], ["", "aetna"]),
            # a letter moved from one contact to the next
            (["ab", "c"], ["a", "bc"]),
            # two contacts swapped their carriers
            (["aetna", "cigna"], ["cigna", "aetna"]),
            # one letter changed
            (["aetna", "cigna"], ["aetna", "cignb"]),
        ],
    )
    def test_different_carriers_differ(
        self, first: list[str | None], second: list[str | None]
    ) -> None:
        assert checksum(first) != checksum(second)

    def test_chunking_does_not_matter(self) -> None:
        carriers = large_carriers()
        middle = LARGE // 3
        assert checksum(carriers) == checksum(carriers[:middle], carriers[middle:])

    def test_a_sliced_column_hashes_only_its_own_values(self) -> None:
        whole = pa.chunked_array([pa.array(["x", "aetna", "cigna", "y"])])
        sliced = whole.slice(1, 2)
        assert contacts_checksum(contacts_with(sliced)) == checksum(["aetna", "cigna"])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "org.sqlite3"
    generate_org(path, 1_500, seed=11)
    return path


@pytest.fixture
def org(template: Path, tmp_path: Path) -> Path:
    return copy_org(template, tmp_path / "org.sqlite3")


def contacts_checksums(path: Path) -> list[str]:
    rows = query(
        path,
        "SELECT contacts_checksum FROM scheduler_checkpoints "
        "WHERE status = 'completed' ORDER BY id",
    )
    return [row[0] for row in rows]


class TestRecordedChecksum:
    def test_follows_one_carrier_changed_between_runs(self, org: Path) -> None:
        run_json(org, TODAY)
        run_json(org, TODAY, "--replan")
        with connection(org) as conn:
            conn.execute(
                "UPDATE contacts SET current_carrier = 'Mutual of Omaha' WHERE id = 750"
            )
        run_json(org, TODAY)
        first, unchanged, changed = contacts_checksums(org)
        assert first == unchanged != changed


class TestInterruptedRuns:
    @pytest.mark.parametrize(
        ("statuses", "interrupted"),
        [
            # a new database
            ([], 0),
            ([COMPLETED], 0),
            # killed before any run completed
            ([STARTED], 1),
            ([STARTED, FAILED, STARTED], 2),
            # killed after the last completed run
            ([COMPLETED, STARTED], 1),
            # a completed run after a crash did the whole job
            ([STARTED, COMPLETED], 0),
            ([STARTED, STARTED, COMPLETED, COMPLETED], 0),
            # only the crashes since the latest completed run count
            ([STARTED, COMPLETED, STARTED, STARTED], 2),
            # a failed run recorded its end; it was not interrupted
            ([COMPLETED, FAILED], 0),
        ],
    )
    def test_counted_since_the_latest_completed_run(
        self, statuses: list[str], interrupted: int
    ) -> None:
        with closing(sqlite3.connect(":memory:")) as conn:
            conn.execute(create_statement("scheduler_checkpoints"))
            conn.executemany(
                "INSERT INTO scheduler_checkpoints (run_timestamp, "
                "scheduler_run_id, contacts_checksum, status) "
                "VALUES ('2026-12-03 08:00:00', ?, '', ?)",
                [(f"run-{i}", status) for i, status in enumerate(statuses)],
            )
            assert interrupted_runs(conn) == interrupted

    def test_warned_about_once(
        self, org: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COLUMNS", "200")
        run_json(org, TODAY)
        with connection(org) as conn:
            # What a run killed before its commit leaves behind.
            conn.execute(
                "INSERT INTO scheduler_checkpoints (run_timestamp, "
                "scheduler_run_id, contacts_checksum, status, run_date) "
                "VALUES ('2026-12-03 09:00:00', 'killed', '', 'started', ?)",
                (TODAY.isoformat(),),
            )
        warned = cli("run", org, "--today", TODAY)
        assert warned.exit_code == 0, warned.stderr
        assert "1 earlier run(s) never completed" in warned.stdout
        assert run_json(org, TODAY)["interrupted_runs_before"] == 0
        quiet = cli("run", org, "--today", TODAY)
        assert "never completed" not in quiet.stdout
