"""Tests of the sample org database generator."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import zipcodes

from email_scheduler.generate import generate_org
from helpers import copy_org, run_json, write_config

CONTACTS = 2_000

LEGACY_CONTACT_COLUMNS = [
    "id", "first_name", "last_name", "email", "current_carrier", "plan_type",
    "effective_date", "birth_date", "tobacco_user", "gender", "state",
    "zip_code", "phone_number", "status", "failed_underwriting", "created_at",
    "updated_at",
]  # fmt: skip
SCHEDULE_COLUMNS = [
    "id", "contact_id", "email_type", "scheduled_send_date",
    "scheduled_send_time", "status", "skip_reason", "priority",
    "campaign_instance_id", "email_template", "sms_template",
    "scheduler_run_id", "actual_send_datetime", "created_at", "updated_at",
]  # fmt: skip
ZIP_FORMAT = re.compile(r"\d{5}(-\d{4})?")


@pytest.fixture(scope="module")
def org_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legacy org database with seed 7, shared by the read-only tests."""
    path = tmp_path_factory.mktemp("org") / "org.db"
    generate_org(path, CONTACTS, seed=7)
    return path


@pytest.fixture
def org(org_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(org_path)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def zip_states() -> dict[str, str]:
    """Every ZIP code the bundled database knows, mapped to its state."""
    entries = zipcodes.list_all()  # type: ignore[no-untyped-call]
    return {entry["zip_code"]: entry["state"] for entry in entries}


def columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def share(connection: sqlite3.Connection, condition: str) -> float:
    """Return the fraction of contacts for which the SQL `condition` holds."""
    sql = f"SELECT avg(CASE WHEN {condition} THEN 1.0 ELSE 0 END) FROM contacts"
    value: float = connection.execute(sql).fetchone()[0]
    return value


def parse_date(value: str) -> date | None:
    """Return the ISO date in `value`, or None if it does not parse."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def all_rows(path: Path) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT * FROM contacts ORDER BY id").fetchall()
    finally:
        connection.close()


class TestShape:
    def test_report_counts_contacts(self, tmp_path: Path) -> None:
        report = generate_org(tmp_path / "org.db", 10)
        assert report.contacts == 10
        assert report.seconds >= 0

    def test_only_the_two_legacy_tables(self, org: sqlite3.Connection) -> None:
        # sqlite_sequence is SQLite's own bookkeeping for AUTOINCREMENT.
        tables = org.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        assert tables == [("contacts",), ("email_schedules",)]

    def test_legacy_columns(self, org: sqlite3.Connection) -> None:
        assert columns(org, "contacts") == LEGACY_CONTACT_COLUMNS
        assert columns(org, "email_schedules") == SCHEDULE_COLUMNS

    def test_email_schedules_is_empty(self, org: sqlite3.Connection) -> None:
        count = org.execute("SELECT count(*) FROM email_schedules").fetchone()
        assert count == (0,)

    def test_ids_are_dense(self, org: sqlite3.Connection) -> None:
        row = org.execute("SELECT min(id), max(id), count(*) FROM contacts")
        assert row.fetchone() == (1, CONTACTS, CONTACTS)

    def test_emails_are_unique(self, org: sqlite3.Connection) -> None:
        duplicates = org.execute(
            "SELECT email FROM contacts WHERE email LIKE '%@%'"
            " GROUP BY email HAVING count(*) > 1"
        ).fetchall()
        assert duplicates == []

    def test_modern_shape(self, tmp_path: Path) -> None:
        path = tmp_path / "org.db"
        generate_org(path, CONTACTS, seed=7, legacy=False)
        connection = sqlite3.connect(path)
        names = columns(connection, "contacts")
        failed = share(connection, "failed_underwriting = 1")
        connection.close()

        assert "carrier" in names and "failed_underwriting" in names
        assert "current_carrier" not in names
        assert 0.02 < failed < 0.09

    def test_zero_contacts(self, tmp_path: Path) -> None:
        path = tmp_path / "org.db"
        assert generate_org(path, 0).contacts == 0
        assert all_rows(path) == []


class TestRefusals:
    def test_existing_file_is_refused_and_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "org.db"
        path.write_bytes(b"somebody's data")
        with pytest.raises(FileExistsError):
            generate_org(path, 10)
        assert path.read_bytes() == b"somebody's data"

    def test_negative_count_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError):
            generate_org(tmp_path / "org.db", -1)
        assert not (tmp_path / "org.db").exists()


class TestDeterminism:
    def test_same_seed_same_bytes(self, tmp_path: Path, org_path: Path) -> None:
        again = tmp_path / "again.db"
        generate_org(again, CONTACTS, seed=7)
        assert again.read_bytes() == org_path.read_bytes()

    def test_other_seed_other_rows(self, tmp_path: Path, org_path: Path) -> None:
        other = tmp_path / "other.db"
        generate_org(other, CONTACTS, seed=8)
        same = sum(
            a == b for a, b in zip(all_rows(other), all_rows(org_path), strict=True)
        )
        assert same < CONTACTS // 100


class TestLocations:
    def test_zips_belong_to_their_state(
        self, org: sqlite3.Connection, zip_states: dict[str, str]
    ) -> None:
        rows = org.execute("SELECT zip_code, state FROM contacts").fetchall()
        usable = [(z, s) for z, s in rows if z and ZIP_FORMAT.fullmatch(z)]
        agree = sum(zip_states.get(z[:5]) == s for z, s in usable)
        assert len(usable) > 0.97 * CONTACTS
        # About 0.5% disagree on purpose (the state-mismatch case).
        assert 0.98 < agree / len(usable) < 1.0

    def test_states_are_us_codes(
        self, org: sqlite3.Connection, zip_states: dict[str, str]
    ) -> None:
        states = {row[0] for row in org.execute("SELECT DISTINCT state FROM contacts")}
        assert states - {None} <= set(zip_states.values())
        assert len(states) > 40

    def test_big_states_dominate(self, org: sqlite3.Connection) -> None:
        assert share(org, "state = 'CA'") > share(org, "state = 'WY'") * 5

    def test_zip_plus4_share(self, org: sqlite3.Connection) -> None:
        assert 0.06 < share(org, "zip_code GLOB '[0-9]*-[0-9]*'") < 0.14

    def test_some_zips_missing_or_malformed(self, org: sqlite3.Connection) -> None:
        missing = share(org, "zip_code IS NULL OR zip_code = ''")
        malformed = share(
            org,
            "zip_code <> '' AND NOT (zip_code GLOB '[0-9][0-9][0-9][0-9][0-9]'"
            " OR zip_code GLOB '[0-9][0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9]')",
        )
        assert 0.001 < missing < 0.015
        assert 0.001 < malformed < 0.015


class TestContactFields:
    def test_bad_email_share(self, org: sqlite3.Connection) -> None:
        bad = share(org, "email IS NULL OR email NOT LIKE '%_@_%'")
        assert 0.001 < bad < 0.015

    def test_first_of_month_share(self, org: sqlite3.Connection) -> None:
        on_first = share(org, "substr(effective_date, 9, 2) = '01'")
        assert 0.33 < on_first < 0.50

    def test_effective_dates(self, org: sqlite3.Connection) -> None:
        assert 0.01 < share(org, "effective_date IS NULL") < 0.06
        assert 0.06 < share(org, "length(effective_date) = 19") < 0.14
        bounds = org.execute(
            "SELECT min(substr(effective_date, 1, 10)),"
            " max(substr(effective_date, 1, 10)) FROM contacts"
        ).fetchone()
        assert bounds[0] >= "2010-01-01" and bounds[1] <= "2026-11-01"

    def test_birth_dates_are_medicare_age(self, org: sqlite3.Connection) -> None:
        values = [row[0] for row in org.execute("SELECT birth_date FROM contacts")]
        parsed = [day for day in map(parse_date, values) if day is not None]
        assert len(values) - len(parsed) < 0.01 * CONTACTS
        assert min(parsed) >= date(1931, 12, 1)
        assert max(parsed) <= date(1961, 12, 1)

    def test_status_mix(self, org: sqlite3.Connection) -> None:
        assert share(org, "status IS NULL OR status = 'active'") > 0.97
        assert 0.002 < share(org, "status = 'unsubscribed'") < 0.03

    def test_phone_share(self, org: sqlite3.Connection) -> None:
        assert 0.5 < share(org, "phone_number IS NOT NULL") < 0.7

    def test_failed_underwriting_share(self, org: sqlite3.Connection) -> None:
        # About 5% failed; the legacy shape has the column too.
        assert 0.035 < share(org, "failed_underwriting = 1") < 0.065
        assert share(org, "failed_underwriting IN (0, 1)") == 1.0

    def test_a_run_withholds_emails_from_failed_underwriting(
        self, org_path: Path, tmp_path: Path
    ) -> None:
        config = write_config(
            tmp_path / "uw.yaml",
            "organization:\n  exclude_failed_underwriting_global: true\n",
        )
        path = copy_org(org_path, tmp_path / "org.db")
        report = run_json(path, UNTIL, "--config", config)
        assert report["skipped"].get("failed underwriting", 0) > 0


UNTIL = date(2026, 12, 3)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An org database with the sent history of the 60 days before UNTIL."""
    path = tmp_path_factory.mktemp("history") / "org.db"
    generate_org(path, CONTACTS, seed=7, history_until=UNTIL)
    return path


class TestSentHistory:
    def test_birthday_emails_of_the_last_sixty_days_were_sent(
        self, history: Path
    ) -> None:
        with sqlite3.connect(history) as connection:
            rows = connection.execute(
                "SELECT min(scheduled_send_date), max(scheduled_send_date), "
                "count(*), count(DISTINCT status) FROM email_schedules "
                "WHERE email_type = 'birthday'"
            ).fetchone()
            window_states = connection.execute(
                "SELECT count(*) FROM email_schedules JOIN contacts "
                "ON contacts.id = contact_id WHERE contacts.state IN ('CA', 'NY')"
            ).fetchone()[0]
        first, last, count, statuses = rows
        assert first >= "2026-10-04" and last <= "2026-12-02"
        # About 60/365 of the contacts outside window states.
        assert 0.08 * CONTACTS < count < 0.2 * CONTACTS
        assert statuses == 1
        assert window_states == 0

    def test_engagement_and_follow_ups_were_left_behind(self, history: Path) -> None:
        with sqlite3.connect(history) as connection:
            sent = connection.execute(
                "SELECT count(*) FROM email_schedules WHERE email_type = 'birthday'"
            ).fetchone()[0]
            clicks = connection.execute("SELECT count(*) FROM tracking_clicks")
            answers = connection.execute("SELECT count(*) FROM contact_events")
            follow_ups = connection.execute(
                "SELECT count(*) FROM email_schedules WHERE status = 'sent' "
                "AND email_type = 'followup_1_cold'"
            )
            assert 0.15 * sent < clicks.fetchone()[0] < 0.35 * sent
            assert 0.04 * sent < answers.fetchone()[0] < 0.16 * sent
            assert 0.6 * sent < follow_ups.fetchone()[0] < 0.9 * sent

    def test_row_stamps_follow_the_send_dates(self, history: Path) -> None:
        # Stamps from the clock made the file's bytes depend on when it was
        # generated; created before the send day, updated when it went out.
        with sqlite3.connect(history) as connection:
            wrong = connection.execute(
                "SELECT count(*) FROM email_schedules WHERE created_at IS NULL "
                "OR created_at >= scheduled_send_date "
                "OR substr(updated_at, 1, 10) != scheduled_send_date"
            ).fetchone()[0]
        assert wrong == 0

    def test_same_seed_same_history(self, tmp_path: Path, history: Path) -> None:
        again = tmp_path / "again.db"
        generate_org(again, CONTACTS, seed=7, history_until=UNTIL)
        assert again.read_bytes() == history.read_bytes()

    def test_a_run_plans_follow_ups_from_it(
        self, tmp_path: Path, history: Path
    ) -> None:
        report = run_json(copy_org(history, tmp_path / "org.db"), UNTIL)
        follow_ups = {
            email_type: count
            for email_type, count in report["planned"].items()
            if email_type.startswith("followup_")
        }
        assert follow_ups.get("followup_1_cold", 0) > 0
        assert len(follow_ups) >= 2
        assert report["data_quality"]["invalid_event_metadata"] > 0
