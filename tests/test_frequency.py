"""Frequency limit (SPEC 8.2): at most N non-follow-up emails in any P consecutive days.

The cases place a contact's birthday, effective-date and AEP emails at
chosen distances from the AEP email of Sep 15, 2026 (birthday email = birth
date - 14 days, effective-date email = policy anniversary - 30 days), and
count emails the sender already owns. Emails exactly P - 1 days apart share
a P-day window; P days apart they never do.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from email_scheduler.config import Frequency, Settings
from email_scheduler.constraints.frequency import apply_frequency_limit
from email_scheduler.constraints.occupancy import Committed
from email_scheduler.plan import Vocabulary
from test_anniversary import Contact, Row, existing_rows
from test_conflicts import (
    AEP_2026,
    MARCH_1,
    SEP_15,
    Email,
    hand_plan,
    plan_of,
    reasons,
)

D = dt.date
SEP_1 = D(2026, 9, 1)


def limit(emails: int, days: int) -> Settings:
    return Settings(frequency=Frequency(max_emails_per_period=emails, period_days=days))


def over(emails: int = 3, days: int = 30) -> str:
    return f"frequency limit: {emails} emails in {days} days"


def statuses(rows: list[Row]) -> dict[str, str]:
    """Return each email type's status, or its skip reason when skipped."""
    return {r.email_type: r.reason if r.status == "skipped" else "ok" for r in rows}


class TestWindowBoundaries:
    @pytest.mark.parametrize(
        ("birth", "birthday_send", "aep"),
        [
            # birthday email Oct 14, 29 days after AEP: one 30-day window
            ("1950-10-28", D(2026, 10, 14), over(1, 30)),
            # birthday email Oct 15, 30 days after AEP: never together
            ("1950-10-29", D(2026, 10, 15), "ok"),
            # birthday email Aug 17, 29 days before AEP
            ("1950-08-31", D(2026, 8, 17), over(1, 30)),
            # birthday email Aug 16, 30 days before AEP
            ("1950-08-30", D(2026, 8, 16), "ok"),
        ],
    )
    def test_one_email_in_30_days(
        self, birth: str, birthday_send: dt.date, aep: str
    ) -> None:
        # Birthday (10) is accepted first, whether it comes before or after.
        outcome = plan_of([Contact(1, birth=birth)], MARCH_1, settings=limit(1, 30))
        assert [r.send for r in outcome.of_type("birthday")] == [birthday_send]
        assert statuses(outcome.rows) == {"aep": aep, "birthday": "ok"}
        assert outcome.tally["skipped_frequency"] == (aep != "ok")

    @pytest.mark.parametrize(
        ("effective", "effective_send", "aep"),
        [
            # Sep 15, Sep 30, Oct 14: three emails in Sep 15..Oct 14;
            # AEP has the lowest priority and goes, although it is first
            ("2020-11-13", D(2026, 10, 14), over(2, 30)),
            # Sep 15, Sep 30, Oct 15: any 30-day window holds two of them
            ("2020-11-14", D(2026, 10, 15), "ok"),
        ],
    )
    def test_two_emails_in_30_days(
        self, effective: str, effective_send: dt.date, aep: str
    ) -> None:
        contact = Contact(1, birth="1950-10-14", effective=effective)
        outcome = plan_of([contact], MARCH_1, settings=limit(2, 30))
        assert outcome.sends("birthday") == {1: D(2026, 9, 30)}
        assert outcome.sends("effective_date") == {1: effective_send}
        assert statuses(outcome.rows) == {
            "aep": aep,
            "birthday": "ok",
            "effective_date": "ok",
        }

    @pytest.mark.parametrize(
        ("birth", "aep"),
        [
            # birthday email Sep 16, the next day: a 2-day window holds both
            ("1950-09-30", over(1, 2)),
            # birthday email Sep 17: two days apart
            ("1950-10-01", "ok"),
        ],
    )
    def test_two_day_period(self, birth: str, aep: str) -> None:
        outcome = plan_of([Contact(1, birth=birth)], MARCH_1, settings=limit(1, 2))
        assert statuses(outcome.rows) == {"aep": aep, "birthday": "ok"}

    def test_one_day_period_allows_one_email_a_day(self) -> None:
        outcome = plan_of(
            [Contact(1, birth="1950-09-30")], MARCH_1, settings=limit(1, 1)
        )
        assert statuses(outcome.rows) == {"aep": "ok", "birthday": "ok"}

    def test_same_day_loser_does_not_count(self) -> None:
        # Born Sep 29: the birthday email shares Sep 15 with AEP, which loses
        # that day; the effective-date email of Oct 1 is then the second of
        # two in the window and goes out.
        contact = Contact(1, birth="1950-09-29", effective="2020-10-31")
        outcome = plan_of([contact], MARCH_1, settings=limit(2, 30))
        assert statuses(outcome.rows) == {
            "aep": "same-day conflict: birthday goes out that day",
            "birthday": "ok",
            "effective_date": "ok",
        }
        assert outcome.tally["skipped_frequency"] == 0


def campaign(day: dt.date, status: str = "sent") -> Row:
    """A campaign email the sender already handled (event = send date)."""
    return Row(1, "campaign_newsletter", day, day, status)


class TestEmailsTheSenderOwns:
    """Run on Sep 1 for a contact whose only planned email is AEP on Sep 15."""

    @pytest.mark.parametrize(
        ("rows", "aep"),
        [
            # Aug 17, 20, 25 and Sep 15: four emails within Aug 17..Sep 15
            ([campaign(D(2026, 8, d)) for d in (17, 20, 25)], over()),
            # Aug 16 is 30 days before Sep 15: the window holds three
            ([campaign(D(2026, 8, d)) for d in (16, 20, 25)], "ok"),
            # delivered, processing and scheduled count like sent
            (
                [
                    campaign(D(2026, 8, 20), "delivered"),
                    campaign(D(2026, 8, 31), "processing"),
                    campaign(D(2026, 9, 10), "scheduled"),
                ],
                over(),
            ),
            # emails the sender holds for later days count too
            (
                [
                    campaign(D(2026, 8, 25)),
                    campaign(D(2026, 9, 3), "scheduled"),
                    campaign(D(2026, 9, 20), "scheduled"),
                ],
                over(),
            ),
            # all three after Sep 15: four emails within Sep 15..Oct 14
            (
                [
                    campaign(D(2026, m, d), "scheduled")
                    for m, d in ((9, 20), (9, 25), (10, 1))
                ],
                over(),
            ),
            # ... but not 30 days after
            (
                [
                    campaign(D(2026, 8, 25)),
                    campaign(D(2026, 9, 3), "scheduled"),
                    campaign(D(2026, 10, 15), "scheduled"),
                ],
                "ok",
            ),
            # two emails are within the limit of three
            ([campaign(D(2026, 8, d)) for d in (20, 25)], "ok"),
            # skipped rows were never sent
            ([campaign(D(2026, 8, d), "skipped") for d in (17, 20, 25)], "ok"),
            # follow-ups are exempt from the limit
            (
                [
                    Row(1, f"followup_{n}_cold", D(2026, 8, d), D(2026, 8, d), "sent")
                    for n, d in ((1, 17), (1, 20), (1, 25))
                ],
                "ok",
            ),
            # another contact's emails
            (
                [
                    Row(2, "campaign_newsletter", D(2026, 8, d), D(2026, 8, d), "sent")
                    for d in (17, 20, 25)
                ],
                "ok",
            ),
        ],
    )
    def test_table(self, rows: list[Row], aep: str) -> None:
        outcome = plan_of([Contact(1)], SEP_1, rows)
        assert statuses(outcome.rows) == {"aep": aep}

    def test_priority_order_after_them(self) -> None:
        # Sent Aug 25 and Sep 1; planned: AEP Sep 15 and birthday Sep 20.
        # Four in Aug 25..Sep 23: the birthday email (10) is accepted, AEP
        # (30) is not.
        rows = [campaign(D(2026, 8, 25)), campaign(SEP_1)]
        outcome = plan_of([Contact(1, birth="1950-10-04")], SEP_1, rows)
        assert outcome.rows == [
            Row(1, "aep", AEP_2026, SEP_15, "skipped", over()),
            Row(1, "birthday", D(2026, 10, 4), D(2026, 9, 20)),
        ]
        assert outcome.tally["skipped_frequency"] == 1


DAY = D(2026, 5, 4)


def days_later(days: int) -> dt.date:
    return DAY + dt.timedelta(days=days)


class TestApplyFrequencyLimit:
    """One email in 30 days, on hand-built plans."""

    SETTINGS = limit(1, 30)

    @pytest.mark.parametrize(
        ("emails", "expected"),
        [
            # same priority: the type that sorts first is accepted first
            (
                [
                    Email(1, "campaign_summer", DAY, 50),
                    Email(1, "campaign_spring", days_later(10), 50),
                ],
                [over(1, 30), ""],
            ),
            # same type and priority: the lower instance id first
            (
                [
                    Email(1, "campaign_spring", DAY, 50, instance=7),
                    Email(1, "campaign_spring", days_later(10), 50, instance=3),
                ],
                [over(1, 30), ""],
            ),
            # priority comes before type
            (
                [
                    Email(1, "campaign_spring", DAY, 50),
                    Email(1, "campaign_summer", days_later(10), 40),
                ],
                [over(1, 30), ""],
            ),
            # follow-ups are neither limited nor counted
            (
                [
                    Email(1, "birthday", DAY, 10),
                    Email(1, "followup_1_cold", days_later(1), 10),
                    Email(1, "followup_2_clicked_no_hq", days_later(2), 10),
                    Email(1, "aep", days_later(3), 30),
                ],
                ["", "", "", over(1, 30)],
            ),
            # an email skipped earlier takes no room
            (
                [
                    Email(1, "birthday", DAY, 10, skipped=True),
                    Email(1, "aep", days_later(3), 30),
                ],
                ["withheld", ""],
            ),
            # each contact has its own windows
            (
                [Email(1, "birthday", DAY, 10), Email(2, "aep", days_later(3), 30)],
                ["", ""],
            ),
            # a chain 29 days apart: the middle one breaks both windows
            (
                [
                    Email(1, "aep", DAY, 30),
                    Email(1, "birthday", days_later(29), 10),
                    Email(1, "effective_date", days_later(58), 20),
                ],
                [over(1, 30), "", over(1, 30)],
            ),
        ],
    )
    def test_table(self, emails: list[Email], expected: list[str]) -> None:
        vocabulary = Vocabulary()
        plan = hand_plan(emails, vocabulary)
        nothing = Committed.of(existing_rows([], vocabulary), vocabulary)
        tally: Counter[str] = Counter()
        limited = apply_frequency_limit(plan, nothing, self.SETTINGS, vocabulary, tally)
        assert reasons(limited, vocabulary) == expected
        assert tally["skipped_frequency"] == sum(r.startswith("freq") for r in expected)
