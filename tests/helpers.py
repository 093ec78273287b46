"""Shared helpers of the CLI, schema and simulation tests.

They drive the real `email-scheduler` command (in process through Click's
runner, or as a subprocess of the installed script), read org databases
with the stdlib `sqlite3` module, and play the sending system.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from email_scheduler.cli import main
from email_scheduler.config import Settings
from email_scheduler.run import run

SCRIPT = Path(sys.executable).with_name("email-scheduler")

IDENTITY = (
    "contact_id, email_type, IFNULL(campaign_instance_id, 0), "
    "event_year, event_month, event_day"
)
CONTENT = (
    "scheduled_send_date",
    "scheduled_send_time",
    "status",
    "skip_reason",
    "priority",
    "email_template",
    "sms_template",
    "metadata",
    "event_year",
    "event_month",
    "event_day",
)

HISTORY = (
    "SELECT id, contact_id, email_type, scheduled_send_date, status "
    "FROM email_schedules ORDER BY id"
)
"""The rows of email_schedules, in the columns a generated (legacy) table
has before a run migrates it."""

Row = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What one command printed and how it ended."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """Return stdout parsed as the one JSON object it must hold."""
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        return data


def cli(*args: object) -> Outcome:
    """Run the real Click command in this process."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def cli_process(*args: object, timeout: float = 120) -> Outcome:
    """Run the installed `email-scheduler` script in a child process."""
    done = subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_json(path: Path, today: dt.date | str, *extra: object) -> dict[str, Any]:
    """Run the scheduler with `--json`, insist on exit 0, return the report."""
    outcome = cli("run", path, "--today", str(today), "--json", *extra)
    assert outcome.exit_code == 0, outcome.stderr
    return outcome.json()


def planned_report(
    path: Path, settings: Settings, today: dt.date, partition: int
) -> dict[str, Any]:
    """Run the scheduler in partitions of `partition` contacts, planning even
    on a day another run planned; return its report without the fields that
    differ from run to run."""
    report = run(
        path, settings, today, replan=True, partition_contacts=partition
    ).to_dict()
    for key in ("run_id", "database", "seconds", "backup"):
        report.pop(key)
    return report


def copy_org(template: Path, target: Path) -> Path:
    """Return a private copy of a generated org database."""
    shutil.copyfile(template, target)
    return target


def sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_next_to(path: Path) -> set[str]:
    """Return the names of the database's companion files (-wal, -journal...)."""
    return {p.name for p in path.parent.glob(f"{path.name}*")} - {path.name}


@contextmanager
def connection(path: Path) -> Iterator[sqlite3.Connection]:
    """Yield a connection that commits on success and is closed afterwards."""
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        with conn:
            yield conn


def query(
    path: Path, sql: str, params: tuple[object, ...] = ()
) -> list[tuple[Any, ...]]:
    """Return every row of a query, as plain tuples."""
    with connection(path) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def scalar(path: Path, sql: str, params: tuple[object, ...] = ()) -> Any:
    """Return the single value of a query."""
    (row,) = query(path, sql, params)
    return row[0]


def schedules(
    path: Path, where: str = "1", params: tuple[object, ...] = ()
) -> dict[int, Row]:
    """Return email_schedules rows (all columns) by id."""
    with connection(path) as conn:
        rows = conn.execute(f"SELECT * FROM email_schedules WHERE {where}", params)
        return {row["id"]: dict(row) for row in rows}


def schema_snapshot(path: Path) -> list[tuple[Any, ...]]:
    """Return sqlite_master, sorted, for comparing schemas."""
    return query(
        path,
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
    )


def table_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Return every row of a table in rowid order."""
    return query(path, f"SELECT * FROM {table} ORDER BY rowid")


def duplicate_identities(path: Path) -> list[tuple[Any, ...]]:
    """Return identities held by more than one email_schedules row.

    A follow-up's identity is its parent (metadata `parent_id`), not its
    type and event date.
    """
    follow_up = "email_type LIKE 'followup%'"
    return query(
        path,
        f"SELECT {IDENTITY}, count(*) FROM email_schedules WHERE NOT {follow_up} "
        f"GROUP BY {IDENTITY} HAVING count(*) > 1",
    ) + query(
        path,
        "SELECT contact_id, json_extract(metadata, '$.parent_id'), count(*) "
        f"FROM email_schedules WHERE {follow_up} "
        "GROUP BY 1, 2 HAVING count(*) > 1",
    )


def send_due(path: Path, today: dt.date) -> int:
    """Play the sending system: mark pre-scheduled rows due by `today` sent."""
    with connection(path) as conn:
        cursor = conn.execute(
            "UPDATE email_schedules SET status = 'sent', "
            "actual_send_datetime = scheduled_send_date || ' ' || scheduled_send_time "
            "WHERE status = 'pre-scheduled' AND scheduled_send_date <= ?",
            (today.isoformat(),),
        )
        return cursor.rowcount


def write_config(path: Path, text: str) -> Path:
    """Write a YAML configuration file and return its path."""
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class RowChanges:
    """How email_schedules differs between two snapshots."""

    inserted: set[int]
    deleted: set[int]
    restamped: set[int]
    """Existing rows whose run id or updated_at changed."""
    changed: set[int]
    """Existing rows whose content changed."""
    altered: set[int]
    """Existing rows with any column changed."""


def compare(before: dict[int, Row], after: dict[int, Row]) -> RowChanges:
    """Return the row-level differences between two `schedules` snapshots."""
    kept = before.keys() & after.keys()
    return RowChanges(
        inserted=set(after.keys() - before.keys()),
        deleted=set(before.keys() - after.keys()),
        restamped={
            i
            for i in kept
            if (before[i]["scheduler_run_id"], before[i]["updated_at"])
            != (after[i]["scheduler_run_id"], after[i]["updated_at"])
        },
        changed={i for i in kept if any(before[i][c] != after[i][c] for c in CONTENT)},
        altered={i for i in kept if before[i] != after[i]},
    )
