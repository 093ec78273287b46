"""Tests of the `email-scheduler` command against real SQLite org databases.

Most commands run in process through Click's runner, which calls the same
command objects as the installed script; a few run the script itself in a
child process. Every org database is a copy of one generated sample.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from email_scheduler.generate import generate_org
from email_scheduler.store import writer
from helpers import (
    cli,
    cli_process,
    compare,
    copy_org,
    duplicate_identities,
    files_next_to,
    query,
    run_json,
    scalar,
    schedules,
    send_due,
    sha256,
    write_config,
)

CONTACTS = 1_500
TODAY = dt.date(2026, 12, 3)
DAY = dt.timedelta(days=1)
BIRTHDAY_10 = "timing:\n  birthday_days_before: 10\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=11)
    return path


@pytest.fixture
def org(template: Path, tmp_path: Path) -> Path:
    """A fresh legacy-shape org database with 1,500 contacts and no schedules."""
    return copy_org(template, tmp_path / "org.sqlite3")


@pytest.fixture
def planned_org(org: Path) -> Path:
    """The org database after one run on TODAY."""
    run_json(org, TODAY)
    return org


def count(path: Path, where: str = "1", params: tuple[object, ...] = ()) -> int:
    return int(
        scalar(path, f"SELECT count(*) FROM email_schedules WHERE {where}", params)
    )


def written(report: dict[str, object]) -> tuple[int, int, int]:
    rows = report["rows"]
    assert isinstance(rows, dict)
    return rows["inserted"], rows["updated"], rows["deleted"]


class TestSummary:
    def test_prints_a_summary(self, org: Path) -> None:
        outcome = cli_process("run", org, "--today", TODAY)
        assert outcome.exit_code == 0, outcome.stderr
        text = " ".join(outcome.stdout.split())  # rich wraps narrow tables
        assert f"{org} for 2026-12-03" in text
        assert f"contacts read {CONTACTS:,}" in text
        for heading in ("Emails planned", "Emails skipped", "Rows written"):
            assert heading in text
        assert "birthday" in text and "inserted" in text

    def test_json_is_one_object_with_the_counts(self, org: Path) -> None:
        outcome = cli_process("run", org, "--today", TODAY, "--json")
        assert outcome.exit_code == 0, outcome.stderr
        assert outcome.stdout.strip().count("\n") == 0
        report = outcome.json()
        assert report["contacts_read"] == CONTACTS
        assert report["today"] == "2026-12-03"
        assert report["dry_run"] is False
        assert {"birthday", "effective_date", "aep"} <= set(report["planned"])
        assert report["skipped"]
        assert {"inserted", "updated", "deleted", "unchanged"} <= set(report["rows"])
        assert {"read", "plan", "write"} <= set(report["seconds"])
        assert all(
            isinstance(s, float | int) and s >= 0 for s in report["seconds"].values()
        )

    def test_counts_agree_with_the_table(self, org: Path) -> None:
        report = run_json(org, TODAY)
        assert report["rows"]["inserted"] == count(org)
        assert sum(report["planned"].values()) == count(org, "status = 'pre-scheduled'")
        assert sum(report["skipped"].values()) == count(org, "status = 'skipped'")
        assert duplicate_identities(org) == []

    def test_same_day_rerun_changes_no_row(self, planned_org: Path) -> None:
        before = schedules(planned_org)
        report = run_json(planned_org, TODAY, "--replan")
        assert written(report) == (0, 0, 0)
        assert report["rows"]["unchanged"] == len(before)
        assert schedules(planned_org) == before


class TestConsecutiveDays:
    DAYS = 8

    def test_little_churn_and_post_window_emails_are_kept(self, org: Path) -> None:
        first = run_json(org, TODAY)
        plan_size = sum(first["planned"].values()) + sum(first["skipped"].values())
        last = TODAY + (self.DAYS - 1) * DAY
        # A window ends on the event date and lasts at least 90 days, so these
        # post-window emails belong to windows that started before TODAY.
        started = schedules(
            org,
            "email_type = 'post_window' AND status = 'pre-scheduled' "
            "AND date(printf('%04d-%02d-%02d', event_year, event_month, event_day))"
            " < ?",
            ((TODAY + 90 * DAY).isoformat(),),
        )
        assert len(started) > 10
        print(f"\nday 1 {TODAY}: {first['rows']}")
        send_due(org, TODAY)
        day = TODAY
        for number in range(2, self.DAYS + 1):
            day += DAY
            before = schedules(org)
            report = run_json(org, day)
            changes = compare(before, schedules(org))
            inserted, updated, deleted = written(report)
            print(f"day {number} {day}: {report['rows']}")

            assert len(changes.inserted) == inserted
            assert len(changes.deleted) == deleted
            assert changes.restamped == changes.changed == changes.altered
            assert len(changes.changed) == updated
            assert inserted + updated + deleted <= 0.02 * plan_size
            assert duplicate_identities(org) == []
            send_due(org, day)

        now = schedules(org, "email_type = 'post_window'")
        for row_id, row in started.items():
            if row["scheduled_send_date"] > last.isoformat():
                assert now[row_id] == row
            else:
                assert now[row_id]["status"] == "sent"


class TestSenderRows:
    def test_sent_rows_are_never_touched(self, planned_org: Path) -> None:
        send_due(planned_org, TODAY)
        # A sender that also sends some future birthday emails early.
        with closing(sqlite3.connect(planned_org)) as conn, conn:
            conn.execute(
                "UPDATE email_schedules SET status = 'sent' WHERE id IN ("
                "SELECT id FROM email_schedules WHERE email_type = 'birthday' "
                "AND status = 'pre-scheduled' AND scheduled_send_date > ? "
                "ORDER BY id LIMIT 25)",
                (TODAY.isoformat(),),
            )
        sent = schedules(planned_org, "status = 'sent'")
        assert len(sent) > 25
        config = write_config(planned_org.with_name("c.yaml"), BIRTHDAY_10)

        report = run_json(planned_org, TODAY, "--config", config)
        assert report["rows"]["updated"] > 0
        run_json(planned_org, TODAY + DAY, "--config", config)

        assert schedules(planned_org, "status = 'sent'") == sent
        assert duplicate_identities(planned_org) == []

    def test_rows_sent_during_the_run_are_not_overwritten(
        self, planned_org: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_write = writer.write
        taken: list[int] = []

        def sender_races_the_write(cursor: Any, changes: Any, *a: Any, **k: Any) -> Any:
            # The sender takes over rows after the run read them.
            ids = changes.update_ids[:10].tolist()
            marks = ", ".join("?" * len(ids))
            cursor.execute(
                f"UPDATE email_schedules SET status = 'sent' WHERE id IN ({marks})",
                ids,
            )
            taken.extend(ids)
            return real_write(cursor, changes, *a, **k)

        monkeypatch.setattr(writer, "write", sender_races_the_write)
        config = write_config(planned_org.with_name("c.yaml"), BIRTHDAY_10)
        before = schedules(planned_org)

        report = run_json(planned_org, TODAY, "--config", config)

        assert len(taken) == 10
        after = schedules(planned_org)
        for row_id in taken:
            assert after[row_id] == {**before[row_id], "status": "sent"}
        assert report["rows"]["conflicts"] == 10
        assert duplicate_identities(planned_org) == []

    def test_history_is_never_touched(self, planned_org: Path) -> None:
        later = dt.date(2026, 12, 20)
        with closing(sqlite3.connect(planned_org)) as conn, conn:
            # The sender ran every day up to `later`.
            conn.execute(
                "UPDATE email_schedules SET status = 'sent' "
                "WHERE status = 'pre-scheduled' AND scheduled_send_date < ?",
                (later.isoformat(),),
            )
            # An old pending row of an older scheduler, for an identity no
            # longer planned.
            conn.execute(
                "INSERT INTO email_schedules (contact_id, email_type, "
                "scheduled_send_date, status, event_year, event_month, event_day) "
                "VALUES (1, 'birthday', '2025-03-01', 'pre-scheduled', 2025, 3, 15)"
            )
        history = schedules(
            planned_org, "scheduled_send_date < ?", (later.isoformat(),)
        )
        assert {row["status"] for row in history.values()} == {
            "sent",
            "skipped",
            "pre-scheduled",
        }
        config = write_config(planned_org.with_name("c.yaml"), BIRTHDAY_10)

        run_json(planned_org, later, "--config", config)

        after = schedules(planned_org)
        assert {i: after.get(i) for i in history} == history


class TestDryRun:
    def test_legacy_database_is_left_byte_identical(self, org: Path) -> None:
        digest = sha256(org)
        outcome = cli("run", org, "--today", TODAY, "--json", "--dry-run")
        assert outcome.exit_code == 0, outcome.stderr
        report = outcome.json()
        assert report["dry_run"] is True
        assert report["rows"]["inserted"] > 3 * CONTACTS // 2
        assert sha256(org) == digest
        assert not {f for f in files_next_to(org) if not f.endswith(".lock")}

        real = run_json(org, TODAY)
        assert written(real) == written(report)

    def test_reports_the_rows_it_would_change(self, planned_org: Path) -> None:
        config = write_config(planned_org.with_name("c.yaml"), BIRTHDAY_10)
        digest = sha256(planned_org)
        preview = run_json(planned_org, TODAY, "--config", config, "--dry-run")
        assert preview["rows"]["updated"] > 0
        assert sha256(planned_org) == digest

        real = run_json(planned_org, TODAY, "--config", config)
        assert written(real) == written(preview)

    def test_text_summary_says_nothing_was_written(self, org: Path) -> None:
        outcome = cli("run", org, "--today", TODAY, "--dry-run")
        assert outcome.exit_code == 0, outcome.stderr
        text = " ".join(outcome.stdout.split())  # rich wraps narrow tables
        assert "dry run" in text
        assert "Rows that would change" in text


BAD_CONFIGS = [
    # (YAML text, what the message must name)
    ("timing:\n  birthday_days_befor: 10\n", "timing.birthday_days_befor"),
    ("timming:\n  send_time: '09:00:00'\n", "timming"),
    ("timing:\n  birthday_days_before: soon\n", "timing.birthday_days_before"),
    ("frequency: 3\n", "frequency"),
    ("organization:\n  enable_post_window_emails: [1]\n", "enable_post_window_emails"),
    (
        "state_rules:\n  - state: ZZ\n    rule: birthday\n    days_after: 30\n",
        "state_rules.0.state",
    ),
    (
        "state_rules:\n  - state: XY\n    rule: year_round\n",
        "state_rules.0.state",
    ),
    ("timing: [\n  birthday_days_before: 3\n", "YAML"),
    # a misspelt email type
    ("priorities:\n  birthdy: 5\n", "priorities.birthdy"),
    # follow-ups take their parent's priority
    ("priorities:\n  followup_1_cold: 5\n", "priorities.followup_1_cold"),
    # a campaign's priority belongs to its campaign type
    ("priorities:\n  campaign_rate_increase: 5\n", "priorities.campaign_rate_increase"),
    ("templates:\n  birthdy: {email: bday}\n", "templates.birthdy"),
    # a campaign's templates belong to its instance
    ("templates:\n  campaign_aep: {email: aep}\n", "templates.campaign_aep"),
]


class TestBadConfig:
    @pytest.mark.parametrize(("text", "named"), BAD_CONFIGS)
    def test_refused_with_exit_2_and_nothing_written(
        self, planned_org: Path, text: str, named: str
    ) -> None:
        config = write_config(planned_org.with_name("bad.yaml"), text)
        digest = sha256(planned_org)
        outcome = cli("run", planned_org, "--today", TODAY, "--config", config)
        assert outcome.exit_code == 2
        assert outcome.stderr.startswith("Error: ")
        assert named in outcome.stderr
        assert str(config) in outcome.stderr
        assert outcome.stdout == ""
        assert sha256(planned_org) == digest

    def test_unmigrated_database_is_not_migrated(self, org: Path) -> None:
        config = write_config(org.with_name("bad.yaml"), BAD_CONFIGS[0][0])
        digest = sha256(org)
        assert cli("run", org, "--today", TODAY, "--config", config).exit_code == 2
        assert sha256(org) == digest

    def test_missing_config_file(self, org: Path) -> None:
        missing = org.with_name("nowhere.yaml")
        outcome = cli("run", org, "--today", TODAY, "--config", missing)
        assert outcome.exit_code == 2
        assert str(missing) in outcome.stderr


@contextmanager
def lock_held_elsewhere(database: Path) -> Iterator[None]:
    """Hold the database's run lock from another process."""
    code = (
        "import sys\n"
        "from filelock import FileLock\n"
        "lock = FileLock(sys.argv[1])\n"
        "lock.acquire()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, f"{database}.lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


class TestRunLock:
    def test_second_run_exits_3_and_writes_nothing(self, planned_org: Path) -> None:
        digest = sha256(planned_org)
        with lock_held_elsewhere(planned_org):
            outcome = cli_process("run", planned_org, "--today", TODAY + DAY)
        assert outcome.exit_code == 3
        assert "another scheduler run" in outcome.stderr
        assert str(planned_org) in outcome.stderr
        assert sha256(planned_org) == digest

    def test_runs_again_once_the_lock_is_released(self, planned_org: Path) -> None:
        with lock_held_elsewhere(planned_org):
            assert cli("run", planned_org, "--today", TODAY).exit_code == 3
        assert cli("run", planned_org, "--today", TODAY).exit_code == 0


class TestUsageErrors:
    def test_missing_database(self, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere.sqlite3"
        outcome = cli_process("run", missing, "--today", TODAY)
        assert outcome.exit_code == 1
        assert str(missing) in outcome.stderr
        assert not missing.exists()

    def test_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.sqlite3"
        path.write_text("not a database\n")
        outcome = cli("run", path, "--today", TODAY)
        assert outcome.exit_code == 1
        assert str(path) in outcome.stderr
        assert path.read_text() == "not a database\n"

    @pytest.mark.parametrize("name", ["org #2.sqlite3", "org?.sqlite3", "o%41.sqlite3"])
    def test_a_database_named_with_uri_characters(
        self, template: Path, tmp_path: Path, name: str
    ) -> None:
        # '#', '?' and '%' mean something in a SQLite URI: the run must open
        # this very file, not some other one it would create.
        path = copy_org(template, tmp_path / name)
        report = run_json(path, TODAY)
        assert report["rows"]["inserted"] == count(path) > 0
        assert {p.name for p in tmp_path.iterdir()} == {name, f"{name}.lock"}

    @pytest.mark.parametrize("today", ["2026-13-03", "tomorrow", "03/12/2026"])
    def test_bad_today(self, planned_org: Path, today: str) -> None:
        digest = sha256(planned_org)
        outcome = cli("run", planned_org, "--today", today)
        assert outcome.exit_code == 2
        assert today in outcome.stderr
        assert sha256(planned_org) == digest


class TestConfigChange:
    def test_birthday_days_before_updates_rows_in_place(
        self, planned_org: Path
    ) -> None:
        birthdays = schedules(planned_org, "email_type = 'birthday'")
        config = write_config(planned_org.with_name("c.yaml"), BIRTHDAY_10)

        report = run_json(planned_org, TODAY, "--config", config)

        assert report["rows"]["updated"] > 0
        after = schedules(planned_org, "email_type = 'birthday'")
        assert after.keys() == birthdays.keys()
        assert duplicate_identities(planned_org) == []
        moved = 0
        for row_id, row in after.items():
            event = dt.date(row["event_year"], row["event_month"], row["event_day"])
            ideal = event - 10 * DAY
            if row["status"] == "pre-scheduled" and ideal >= TODAY:
                assert row["scheduled_send_date"] == ideal.isoformat(), row
                moved += row["scheduler_run_id"] == report["run_id"]
            if row["scheduled_send_date"] != birthdays[row_id]["scheduled_send_date"]:
                assert row["scheduler_run_id"] == report["run_id"]
        assert moved > 0

        versions = query(
            planned_org, "SELECT id, config_data, valid_to FROM config_versions"
        )
        assert len(versions) == 2
        (current,) = [v for v in versions if v[2] is None]
        assert json.loads(current[1])["timing"]["birthday_days_before"] == 10
        (used,) = query(
            planned_org,
            "SELECT config_version_id FROM scheduler_checkpoints "
            "WHERE scheduler_run_id = ?",
            (report["run_id"],),
        )
        assert used == (current[0],)

    def test_one_completed_checkpoint_per_run(self, org: Path) -> None:
        reports = [
            run_json(org, TODAY),
            run_json(org, TODAY),
            run_json(org, TODAY + DAY),
        ]
        rows = query(
            org,
            "SELECT scheduler_run_id, status, run_date, contacts_processed, "
            "emails_scheduled, emails_skipped, rows_inserted, rows_updated, "
            "rows_deleted, rows_unchanged, contacts_checksum, "
            "schedules_before_checksum, schedules_after_checksum, "
            "config_version_id, completed_at FROM scheduler_checkpoints ORDER BY id",
        )
        assert [row[:10] for row in rows] == [
            (
                r["run_id"],
                "completed",
                r["today"],
                CONTACTS,
                sum(r["planned"].values()),
                sum(r["skipped"].values()),
                r["rows"]["inserted"],
                r["rows"]["updated"],
                r["rows"]["deleted"],
                r["rows"]["unchanged"],
            )
            for r in reports
        ]
        for row in rows:
            assert all(row[10:]), row
        first, second, _ = rows
        assert len({row[10] for row in rows}) == 1  # the contacts did not change
        assert second[11] == first[12]  # nothing wrote between the two runs
        assert second[11] == second[12]  # and the second run changed nothing
        assert len({row[13] for row in rows}) == 1
        assert scalar(org, "SELECT count(*) FROM config_versions") == 1


CONTACTS_DDL = """
CREATE TABLE contacts (
    id,
    email TEXT,
    zip_code TEXT,
    state TEXT,
    birthday TEXT,
    effective_date TEXT,
    current_carrier TEXT,
    phone_number TEXT,
    status TEXT
)
"""

MESSY_CONTACTS = [
    # (id, email, zip, state, birthday, effective date, status)
    (1, "ok@example.com", "75201", "TX", "1955-03-10", "2015-06-01", None),
    (2, "no-at-sign.example.com", "75201", "TX", "1955-03-10", None, None),
    (3, "", "75201", "TX", "1955-03-10", None, None),
    (4, None, "75201", "TX", "1955-03-10", None, None),
    (5, "b5@example.com", "75201", "TX", "not a date", None, None),
    (6, "b6@example.com", "75201", "TX", "1950-02-30", None, None),
    (7, "b7@example.com", "75201", "TX", "2030-01-01", None, None),
    (8, "b8@example.com", "75201", "TX", "1955-03-10", "yesterday", None),
    (9, "b9@example.com", "00000", None, "1955-03-10", None, None),
    (10, "b10@example.com", "ABCDE", None, "1955-03-10", None, None),
    (11, "b11@example.com", "1234", "FL", "1955-03-10", None, None),
    (12, "b12@example.com", "75201", "CA", "1955-03-10", None, None),
    (
        13,
        "b13@example.com",
        "",
        "tx",
        "1952-07-04 00:00:00",
        "2016-01-01T00:00:00",
        None,
    ),
    (14, "b14@example.com", "75201", "TX", "1955-03-10", None, "Unsubscribed"),
    ("abc", "b15@example.com", "75201", "TX", "1955-03-10", None, None),
    (2.5, "b16@example.com", "75201", "TX", "1955-03-10", None, None),
    (None, "b17@example.com", "75201", "TX", "1955-03-10", None, None),
]

EXPECTED_ISSUES = {
    "invalid_email": 3,  # 2, 3, 4
    "invalid_birth_date": 2,  # 5, 6
    "future_birth_date": 1,  # 7
    "invalid_effective_date": 1,  # 8
    "unknown_state": 2,  # 9 (unknown ZIP), 10 (malformed ZIP)
    "invalid_zip_code": 2,  # 10, 11
    "state_mismatch": 1,  # 12
    "suppressed_status": 1,  # 14
    "invalid_id": 3,  # 'abc', 2.5, NULL
}


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """An org database of odd contacts and no email_schedules table."""
    path = tmp_path / "messy.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(CONTACTS_DDL)
        conn.executemany(
            "INSERT INTO contacts (id, email, zip_code, state, birthday, "
            "effective_date, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
            MESSY_CONTACTS,
        )
    return path


class TestDataQuality:
    def test_counted_and_never_fatal(self, messy: Path) -> None:
        report = run_json(messy, TODAY)
        assert report["contacts_read"] == 14
        assert report["data_quality"] == EXPECTED_ISSUES
        assert report["contacts_without_email"] == {
            "invalid_email": 3,
            "suppressed_status": 1,
            "unknown_state": 2,
        }
        receivers = {
            row[0] for row in query(messy, "SELECT contact_id FROM email_schedules")
        }
        assert receivers == {1, 5, 6, 7, 8, 11, 12, 13}
        assert duplicate_identities(messy) == []

    def test_bad_dates_are_treated_as_missing(self, messy: Path) -> None:
        run_json(messy, TODAY)
        types: dict[int, set[str]] = {}
        for contact_id, email_type in query(
            messy, "SELECT contact_id, email_type FROM email_schedules"
        ):
            types.setdefault(contact_id, set()).add(email_type)
        assert {i: types[i] for i in (1, 5, 7, 8, 13)} == {
            1: {"aep", "birthday", "effective_date"},
            5: {"aep"},  # unparseable birth date
            7: {"aep"},  # birth date after today
            8: {"aep", "birthday"},  # unparseable effective date
            13: {"aep", "birthday", "effective_date"},  # timestamps parse
        }

    def test_only_the_latest_run_is_recorded(self, messy: Path) -> None:
        run_json(messy, TODAY)
        with closing(sqlite3.connect(messy)) as conn, conn:
            conn.execute("UPDATE contacts SET email = 'fixed@example.com' WHERE id = 2")
        report = run_json(messy, TODAY + DAY)

        records = query(
            messy,
            "SELECT scheduler_run_id, contact_id, issue FROM contact_data_quality",
        )
        assert {record[0] for record in records} == {report["run_id"]}
        recorded = sum(report["data_quality"].values()) - report["data_quality"].get(
            "invalid_id", 0
        )
        assert len(records) == recorded
        assert (report["run_id"], 2, "invalid_email") not in records
        assert (report["run_id"], 3, "invalid_email") in records

    def test_generated_sample_issues(self, org: Path) -> None:
        report = run_json(org, TODAY)
        issues = report["data_quality"]
        assert issues["invalid_email"] > 0 and issues["unknown_state"] > 0
        recorded = scalar(org, "SELECT count(*) FROM contact_data_quality")
        assert recorded == sum(issues.values()) - issues.get("invalid_id", 0)


class TestConfigShow:
    def test_defaults(self) -> None:
        outcome = cli_process("config", "show")
        assert outcome.exit_code == 0, outcome.stderr
        settings = outcome.json()
        assert settings["timing"]["birthday_days_before"] == 14
        assert settings["timing"]["effective_date_days_before"] == 30
        assert settings["timing"]["pre_window_exclusion_days"] == 60
        assert settings["frequency"]["max_emails_per_period"] == 3
        assert settings["organization"]["enable_post_window_emails"] is True
        ca = [rule for rule in settings["state_rules"] if rule["state"] == "CA"]
        assert [(r["days_before"], r["days_after"]) for r in ca] == [(30, 60)]

    def test_reflects_an_override(self, tmp_path: Path) -> None:
        config = write_config(
            tmp_path / "c.yaml", "timing:\n  birthday_days_before: 21\n"
        )
        outcome = cli("config", "show", "--config", config)
        assert outcome.exit_code == 0, outcome.stderr
        settings = outcome.json()
        assert settings["timing"]["birthday_days_before"] == 21
        assert settings["timing"]["effective_date_days_before"] == 30

    @pytest.mark.parametrize(("text", "named"), BAD_CONFIGS)
    def test_refuses_a_bad_config(self, tmp_path: Path, text: str, named: str) -> None:
        config = write_config(tmp_path / "c.yaml", text)
        outcome = cli("config", "show", "--config", config)
        assert outcome.exit_code == 2
        assert named in outcome.stderr
        assert outcome.stdout == ""

    def test_unknown_mapping_key_names_the_accepted_ones(self, tmp_path: Path) -> None:
        config = write_config(tmp_path / "c.yaml", "priorities:\n  birthdy: 5\n")
        outcome = cli("config", "show", "--config", config)
        assert "priorities.birthdy: unknown key; expected one of birthday," in (
            outcome.stderr
        )
        assert "[key]" not in outcome.stderr

    def test_every_known_priority_and_template_key(self, tmp_path: Path) -> None:
        text = (
            "priorities: {birthday: 1, effective_date: 2, aep: 3, post_window: 4}\n"
            "templates:\n  post_window: {email: pw, sms: pw_sms}\n"
            "  followup_4_hq_with_yes: {email: fu4}\n"
        )
        outcome = cli(
            "config", "show", "--config", write_config(tmp_path / "c.yaml", text)
        )
        assert outcome.exit_code == 0, outcome.stderr
        settings = outcome.json()
        assert settings["priorities"] == {
            "birthday": 1,
            "effective_date": 2,
            "aep": 3,
            "post_window": 4,
        }
        assert settings["templates"]["post_window"] == {"email": "pw", "sms": "pw_sms"}
        assert settings["templates"]["followup_4_hq_with_yes"]["email"] == "fu4"
        assert settings["templates"]["birthday"]["email"] == "birthday"
