"""A run killed at any moment leaves every contact's rows as before or as planned.

The run is a real child process killed with SIGKILL at chosen points of the
write phase (after the deletes, after the updates, after the inserts, just
before the commit, after a bulk write copied its staged rows in), by
wrapping the writer in the child only.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from email_scheduler.generate import generate_org
from helpers import connection, copy_org, query, run_json, scalar

DAY_ONE = dt.date(2026, 12, 3)
LATER = DAY_ONE + dt.timedelta(days=1)

# Everything but run ids and timestamps, which differ between two runs.
STATE = (
    "SELECT id, contact_id, email_type, scheduled_send_date, status, skip_reason, "
    "priority, event_year, event_month, event_day FROM email_schedules ORDER BY id"
)

CHECKPOINT = "SELECT status FROM scheduler_checkpoints WHERE run_date = ?"

CHILD = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from pathlib import Path
    from email_scheduler import run as run_module
    from email_scheduler.config import Settings
    from email_scheduler.store import writer

    kill_after = int(sys.argv[2])  # statements of the write phase to let through
    seen = 0
    original = writer._changes

    def counting(cursor, *since):
        global seen
        count = original(cursor, *since)
        seen += 1
        if seen > kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return count

    writer._changes = counting
    run_module.run(Path(sys.argv[1]), Settings(), dt.date.fromisoformat(sys.argv[3]))
    os.kill(os.getpid(), signal.SIGKILL)  # after the commit: the run is complete
    """
)


CHILD_STAGED = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from pathlib import Path
    from email_scheduler import run as run_module
    from email_scheduler.config import Settings
    from email_scheduler.store import staging, writer

    writer.BULK_MINIMUM = 0  # a first run of 3,000 contacts writes in bulk
    copy_into = staging.Staging.copy_into

    def copy_then_die(self, cursor):
        copy_into(self, cursor)
        os.kill(os.getpid(), signal.SIGKILL)

    staging.Staging.copy_into = copy_then_die
    run_module.run(
        Path(sys.argv[1]), Settings(), dt.date.fromisoformat(sys.argv[2]),
        partition_contacts=500,
    )
    """
)


@pytest.fixture(scope="module")
def planned_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An org planned on day one, then edited so the next day's run must
    insert (moved birthdays), update (overdue catch-ups move) and delete
    (unsubscribed contacts)."""
    path = tmp_path_factory.mktemp("crash") / "org.sqlite3"
    generate_org(path, 3_000, seed=11)
    run_json(path, DAY_ONE)
    with connection(path) as conn:
        conn.execute("UPDATE contacts SET status = 'unsubscribed' WHERE id % 97 = 0")
        conn.execute("UPDATE contacts SET birth_date = '1950-04-02' WHERE id % 89 = 0")
    return path


def _kill_during_write(path: Path, statements: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(statements), LATER.isoformat()],
        capture_output=True,
        check=False,
        timeout=120,
    )
    return done.returncode


@pytest.mark.parametrize("statements", [0, 1, 2])
def test_killed_mid_write_leaves_the_table_as_before(
    planned_org: Path, tmp_path: Path, statements: int
) -> None:
    # 0: killed after the deletes, 1: after the updates, 2: after the inserts.
    path = copy_org(planned_org, tmp_path / "org.sqlite3")
    before = query(path, STATE)
    expected = copy_org(planned_org, tmp_path / "expected.sqlite3")
    report = run_json(expected, LATER)
    assert min(report["rows"][k] for k in ("inserted", "updated", "deleted")) > 0

    assert _kill_during_write(path, statements) == -signal.SIGKILL

    assert scalar(path, "PRAGMA quick_check") == "ok"
    assert query(path, STATE) == before
    status = query(path, CHECKPOINT, (str(LATER),))
    assert status == [("started",)]

    # The next run does the whole job.
    run_json(path, LATER)
    assert query(path, STATE) == query(expected, STATE)


def test_killed_after_commit_leaves_the_plan(planned_org: Path, tmp_path: Path) -> None:
    path = copy_org(planned_org, tmp_path / "org.sqlite3")
    expected = copy_org(planned_org, tmp_path / "expected.sqlite3")
    run_json(expected, LATER)

    assert _kill_during_write(path, 99) == -signal.SIGKILL

    assert query(path, STATE) == query(expected, STATE)
    status = query(path, CHECKPOINT, (str(LATER),))
    assert status == [("completed",)]


def test_backup_before_writing(planned_org: Path, tmp_path: Path) -> None:
    path = copy_org(planned_org, tmp_path / "org.sqlite3")
    before = query(path, STATE)
    config = tmp_path / "scheduler.yaml"
    backups = tmp_path / "backups"
    config.write_text(f"backup:\n  enabled: true\n  directory: {backups}\n")

    report = run_json(path, LATER, "--config", config)

    (copy,) = backups.glob("org.sqlite3.*.backup")
    assert report["backup"] == str(copy)
    assert scalar(copy, "PRAGMA quick_check") == "ok"
    assert query(copy, STATE) == before
    assert query(path, STATE) != before


def test_killed_after_the_staged_rows_are_copied_in_leaves_the_table_as_before(
    tmp_path: Path,
) -> None:
    path = tmp_path / "org.sqlite3"
    generate_org(path, 3_000, seed=11)
    expected = copy_org(path, tmp_path / "expected.sqlite3")
    run_json(expected, DAY_ONE)

    done = subprocess.run(
        [sys.executable, "-c", CHILD_STAGED, str(path), DAY_ONE.isoformat()],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr

    assert scalar(path, "PRAGMA quick_check") == "ok"
    assert scalar(path, "SELECT count(*) FROM email_schedules") == 0
    assert query(path, CHECKPOINT, (str(DAY_ONE),)) == [("started",)]
    # The killed run's folder, with its staging database, is left behind;
    # the next run removes it, and does the whole job.
    (left,) = tmp_path.glob(".org.sqlite3.run-*")
    assert (left / "staged.sqlite3").exists()
    run_json(path, DAY_ONE)
    assert query(path, STATE) == query(expected, STATE)
    assert list(tmp_path.glob(".org.sqlite3.run-*")) == []
