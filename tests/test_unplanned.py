"""Pending emails a run does not plan, through the real CLI and real SQLite files.

An instance that ended keeps its pending emails: they go out as planned,
so later runs leave them alone and count them toward the one-a-day rule,
the frequency limit and the AEP. So do pending emails of types another
system wrote. The law still wins: a frozen email that falls inside a window
is rewritten as skipped, and one whose contact became unreachable or whose
enrollment was removed is deleted.

Each test makes an org with `email-scheduler init`, one Texas contact (no
windows) and a `promo` campaign whose emails go out on their trigger
dates. The instance plans while active (through January 20), then ends.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from helpers import cli, connection, query, run_json, schedules

ACTIVE = dt.date(2027, 1, 10)
ENDED = dt.date(2027, 1, 25)
TRIGGERS = ("2027-02-01", "2027-02-03", "2027-02-05")


def ok(*args: object) -> None:
    outcome = cli(*args)
    assert outcome.exit_code == 0, outcome.stderr


def one_contact(tmp_path: Path, birth_date: str | None = None) -> Path:
    """Return a new org database whose only contact, 1, lives in Texas."""
    path = tmp_path / "org.sqlite3"
    ok("init", path)
    with connection(path) as conn:
        conn.execute(
            "INSERT INTO contacts (id, email, zip_code, state, birth_date) "
            "VALUES (1, 'one@example.com', '75201', 'TX', ?)",
            (birth_date,),
        )
    return path


@pytest.fixture
def org(tmp_path: Path) -> Path:
    """An org whose contact 1 has three pending promo emails of an ended instance."""
    path = one_contact(tmp_path)
    ok("campaign", "add-type", path, "promo", "--priority", 60)
    ok(
        "campaign", "create", path, "promo", "winter",
        "--start", "2027-01-01", "--end", "2027-03-31",
    )  # fmt: skip
    enrollments = path.with_suffix(".csv")
    enrollments.write_text(
        "contact_id,trigger_date\n" + "".join(f"1,{day}\n" for day in TRIGGERS)
    )
    ok("campaign", "enroll", path, 1, enrollments)
    run_json(path, ACTIVE)
    ok("campaign", "update", path, 1, "--end", "2027-01-20")
    return path


def rows(path: Path, email_type: str) -> list[tuple[str, str, str | None]]:
    """Return (date, status, reason) of one type's rows, by date."""
    return query(
        path,
        "SELECT scheduled_send_date, status, skip_reason FROM email_schedules "
        "WHERE email_type = ? ORDER BY scheduled_send_date",
        (email_type,),
    )


def set_contact(path: Path, assignments: str) -> None:
    with connection(path) as conn:
        conn.execute(f"UPDATE contacts SET {assignments} WHERE id = 1")


PENDING = [(day, "pre-scheduled", None) for day in TRIGGERS]


class TestLeftAsPlanned:
    def test_a_later_run_changes_nothing(self, org: Path) -> None:
        before = schedules(org)
        report = run_json(org, ENDED)
        assert schedules(org) == before
        assert report["rows"]["updated"] == report["rows"]["deleted"] == 0
        assert rows(org, "campaign_promo") == PENDING

    def test_they_win_the_day(self, org: Path) -> None:
        # Born Feb 17: the birthday email falls on Feb 3, a promo day; the
        # promo email goes out as planned although its priority is lower.
        set_contact(org, "birth_date = '1950-02-17'")
        report = run_json(org, ENDED)
        assert rows(org, "campaign_promo") == PENDING
        assert rows(org, "birthday") == [
            (
                "2027-02-03",
                "skipped",
                "same-day conflict: campaign_promo goes out that day",
            )
        ]
        assert report["balancing"]["skipped_same_day"] == 1

    def test_they_count_toward_the_frequency_limit(self, org: Path) -> None:
        # Born Feb 20: the birthday email on Feb 6 would be the fourth
        # email in 30 days.
        set_contact(org, "birth_date = '1950-02-20'")
        report = run_json(org, ENDED)
        assert rows(org, "campaign_promo") == PENDING
        assert rows(org, "birthday") == [
            ("2027-02-06", "skipped", "frequency limit: 3 emails in 30 days")
        ]
        assert report["balancing"]["skipped_frequency"] == 1


class TestTheLawStillWins:
    def test_a_contact_who_moved_into_a_year_round_state(self, org: Path) -> None:
        set_contact(org, "zip_code = '10001', state = 'NY'")
        run_json(org, ENDED)
        skipped = "exclusion window: NY year-round"
        assert rows(org, "campaign_promo") == [
            (day, "skipped", skipped) for day in TRIGGERS
        ]

    def test_a_contact_who_unsubscribed(self, org: Path) -> None:
        set_contact(org, "status = 'unsubscribed'")
        run_json(org, ENDED)
        assert schedules(org) == {}  # its AEP email too

    def test_a_removed_enrollment(self, org: Path) -> None:
        with connection(org) as conn:
            conn.execute("DELETE FROM contact_campaigns")
        run_json(org, ENDED)
        assert rows(org, "campaign_promo") == []

    def test_a_skipped_row_stays_skipped(self, org: Path) -> None:
        set_contact(org, "zip_code = '10001', state = 'NY'")
        run_json(org, ENDED)
        set_contact(org, "zip_code = '75201', state = 'TX'")
        promo = "email_type = 'campaign_promo'"
        before = schedules(org, promo)
        run_json(org, ENDED + dt.timedelta(days=1))
        assert schedules(org, promo) == before


class TestOtherSystemsRows:
    def test_they_are_counted_and_never_touched(self, tmp_path: Path) -> None:
        path = one_contact(tmp_path, "1950-02-17")
        with connection(path) as conn:
            conn.execute(
                "INSERT INTO email_schedules (contact_id, email_type, "
                "scheduled_send_date, status) "
                "VALUES (1, 'newsletter', '2027-02-03', 'pre-scheduled')"
            )
        before = schedules(path, "email_type = 'newsletter'")
        run_json(path, ACTIVE)
        assert schedules(path, "email_type = 'newsletter'") == before
        assert rows(path, "birthday") == [
            ("2027-02-03", "skipped", "same-day conflict: newsletter goes out that day")
        ]


class TestEndedAepCampaign:
    def test_no_fixed_aep_while_its_emails_are_pending(self, tmp_path: Path) -> None:
        # The `aep` campaign spread its emails over Sep 20..30 and ended on
        # Sep 30; on Oct 1 the sender has not sent them yet. The fixed AEP
        # email (Sep 15, event Oct 15) would be a catch-up: a duplicate.
        path = one_contact(tmp_path)
        ok("campaign", "add-type", path, "aep", "--target-all", "--spread-evenly")
        ok(
            "campaign", "create", path, "aep", "aep_2027",
            "--start", "2027-08-01", "--end", "2027-09-30",
            "--spread", "2027-09-20", "2027-09-30",
        )  # fmt: skip
        run_json(path, dt.date(2027, 9, 1))
        assert len(rows(path, "campaign_aep")) == 1
        assert rows(path, "aep") == []
        run_json(path, dt.date(2027, 10, 1))
        assert rows(path, "aep") == []
