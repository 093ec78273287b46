"""A same-day re-run on unchanged inputs keeps the last run's plan.

A completed run records a digest of its inputs as they stand after its
write (see `rerun`). A run for the same day that finds the same digest and
the same contacts writes nothing but its checkpoint, and reports what
planning again would report. Any change to what a plan depends on, or
anything that makes the digest untrustworthy, makes the next run plan.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from email_scheduler import passes
from email_scheduler.generate import generate_org
from email_scheduler.rerun import REPEATED
from email_scheduler.store.schema import CHANGE_TRIGGERS
from helpers import (
    cli,
    connection,
    copy_org,
    query,
    run_json,
    scalar,
    table_rows,
    write_config,
)

CONTACTS = 400
TODAY = dt.date(2026, 9, 1)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rerun") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=5, campaigns=True, history_until=TODAY)
    return path


@pytest.fixture
def planned(template: Path, tmp_path: Path) -> Path:
    """An org database the day's first run has planned."""
    org = copy_org(template, tmp_path / "org.sqlite3")
    first = run_json(org, TODAY)
    assert first["repeat_of"] is None and first["rows"]["inserted"] > 0
    return org


def latest_checkpoint(path: Path) -> dict[str, Any]:
    with connection(path) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT * FROM scheduler_checkpoints ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return dict(row)


def changed_rows(report: dict[str, Any]) -> tuple[int, int, int]:
    rows = report["rows"]
    return rows["inserted"], rows["updated"], rows["deleted"]


class TestRepeat:
    def test_keeps_every_row_and_records_a_completed_run(self, planned: Path) -> None:
        first = latest_checkpoint(planned)
        schedules = table_rows(planned, "email_schedules")
        enrollments = table_rows(planned, "contact_campaigns")
        issues = scalar(planned, "SELECT count(*) FROM contact_data_quality")
        assert issues > 0

        report = run_json(planned, TODAY)

        assert report["repeat_of"] == first["scheduler_run_id"]
        assert changed_rows(report) == (0, 0, 0)
        # Untouched, down to each row's run id and update time.
        assert table_rows(planned, "email_schedules") == schedules
        assert table_rows(planned, "contact_campaigns") == enrollments
        checkpoint = latest_checkpoint(planned)
        assert checkpoint["scheduler_run_id"] == report["run_id"]
        assert checkpoint["status"] == "completed"
        assert checkpoint["rows_unchanged"] == report["rows"]["unchanged"] > 0
        for column in ("contacts_checksum", "inputs_checksum"):
            assert checkpoint[column] == first[column]
        after = first["schedules_after_checksum"]
        assert checkpoint["schedules_before_checksum"] == after
        assert checkpoint["schedules_after_checksum"] == after
        # The day's data-quality records now belong to the latest run.
        assert query(
            planned, "SELECT DISTINCT scheduler_run_id FROM contact_data_quality"
        ) == [(report["run_id"],)]
        assert scalar(planned, "SELECT count(*) FROM contact_data_quality") == issues

    def test_reports_what_planning_again_reports(self, planned: Path) -> None:
        repeat = run_json(planned, TODAY)
        replanned = run_json(planned, TODAY, "--replan")
        assert repeat["repeat_of"] and replanned["repeat_of"] is None
        for key in (*REPEATED, "rows"):
            assert repeat[key] == replanned[key], key

    def test_names_the_run_that_wrote_the_plan(self, planned: Path) -> None:
        first = latest_checkpoint(planned)["scheduler_run_id"]
        run_json(planned, TODAY)
        assert run_json(planned, TODAY)["repeat_of"] == first

    def test_text_summary_says_the_plan_stands(self, planned: Path) -> None:
        first = latest_checkpoint(planned)["scheduler_run_id"]
        outcome = cli("run", planned, "--today", TODAY)
        assert outcome.exit_code == 0, outcome.stderr
        assert f"inputs unchanged since run {first}" in outcome.stdout


CHANGES = {
    "a contact's birth date": (
        "UPDATE contacts SET birth_date = '1950-02-03' "
        "WHERE id = (SELECT min(id) FROM contacts)"
    ),
    "a new contact": (
        "INSERT INTO contacts (id, email, zip_code, state, birth_date, "
        "effective_date) VALUES (900000, 'new@example.com', '75201', 'TX', "
        "'1955-03-04', '2020-05-01')"
    ),
    "a row the sender sent": (
        "UPDATE email_schedules SET status = 'sent' WHERE id = "
        "(SELECT min(id) FROM email_schedules WHERE status = 'pre-scheduled')"
    ),
    "an enrollment's trigger date": (
        "UPDATE contact_campaigns SET trigger_date = '2026-10-01' "
        "WHERE id = (SELECT min(id) FROM contact_campaigns)"
    ),
    "an enrollment's status": (
        "UPDATE contact_campaigns SET status = 'skipped' "
        "WHERE id = (SELECT min(id) FROM contact_campaigns)"
    ),
    "a campaign instance": (
        "UPDATE campaign_instances SET active_end_date = '2027-05-31' "
        "WHERE id = (SELECT min(id) FROM campaign_instances)"
    ),
    "a click": (
        "INSERT INTO tracking_clicks (contact_id, email_schedule_id, url, "
        "clicked_at) SELECT contact_id, id, 'https://example.com', "
        "'2026-08-31 10:00:00' FROM email_schedules WHERE status = 'sent' LIMIT 1"
    ),
    "an answer": (
        "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) "
        "SELECT min(id), 'eligibility_answered', "
        """'{"has_medical_conditions": true}', '2026-08-31 10:00:00' FROM contacts"""
    ),
}


class TestPlansAgain:
    @pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
    def test_after_a_change_to(self, planned: Path, change: str) -> None:
        with connection(planned) as conn:
            assert conn.execute(change).rowcount == 1
        report = run_json(planned, TODAY)
        assert report["repeat_of"] is None
        # That run recorded the new inputs: the next one repeats it.
        assert run_json(planned, TODAY)["repeat_of"] == report["run_id"]

    def test_on_another_day(self, planned: Path) -> None:
        assert run_json(planned, TODAY + dt.timedelta(days=1))["repeat_of"] is None

    def test_with_another_configuration(self, planned: Path) -> None:
        config = write_config(
            planned.with_name("c.yaml"), "timing:\n  send_time: '09:00'\n"
        )
        report = run_json(planned, TODAY, "--config", config)
        assert report["repeat_of"] is None
        assert changed_rows(report)[1] > 0

    def test_when_asked_to(self, planned: Path) -> None:
        report = run_json(planned, TODAY, "--replan")
        assert report["repeat_of"] is None
        assert changed_rows(report) == (0, 0, 0)

    def test_after_an_interrupted_run(self, planned: Path) -> None:
        with connection(planned) as conn:
            conn.execute(
                "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, "
                "contacts_checksum, status, run_date) VALUES "
                f"('2026-09-01 08:00:00', 'run-killed', '', 'started', '{TODAY}')"
            )
        report = run_json(planned, TODAY)
        assert report["repeat_of"] is None
        assert report["interrupted_runs_before"] == 1

    def test_when_a_change_trigger_went_missing(self, planned: Path) -> None:
        name = next(iter(CHANGE_TRIGGERS))
        with connection(planned) as conn:
            conn.execute(f"DROP TRIGGER {name}")
        assert run_json(planned, TODAY)["repeat_of"] is None
        assert scalar(
            planned, "SELECT count(*) FROM sqlite_master WHERE name = ?", (name,)
        )

    def test_a_dry_run_always_plans(self, planned: Path) -> None:
        report = run_json(planned, TODAY, "--dry-run")
        assert report["repeat_of"] is None
        assert changed_rows(report) == (0, 0, 0)

    def test_after_a_run_another_writer_overlapped(
        self, planned: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_balance = passes.Balancing.balance

        def sender_writes_meanwhile(self: Any, *args: Any) -> Any:
            with connection(planned) as conn:
                conn.execute(CHANGES["a row the sender sent"])
            return real_balance(self, *args)

        monkeypatch.setattr(passes.Balancing, "balance", sender_writes_meanwhile)
        overlapped = run_json(planned, TODAY, "--replan")
        monkeypatch.undo()
        # The run planned without the sender's change: its inputs digest is
        # not recorded, and the next run plans with the change.
        assert latest_checkpoint(planned)["inputs_checksum"] is None
        assert run_json(planned, TODAY)["repeat_of"] is None
        assert overlapped["repeat_of"] is None
