"""End-to-end tests of anniversary planning through `run.build_plan`.

Each test builds a handful of contacts, optionally some rows already in
`email_schedules`, fixes today, and reads the plan back as plain tuples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pytest

from email_scheduler.calendar import MISSING, from_days, to_days
from email_scheduler.config import Organization, Settings
from email_scheduler.contacts import build_contacts
from email_scheduler.pipeline import Inputs, build_plan
from email_scheduler.plan import Vocabulary
from email_scheduler.store.reader import ExistingRows

D = dt.date
DEFAULTS = Settings()

_TEXT_COLUMNS = (
    "email",
    "zip_code",
    "state",
    "birth_date",
    "effective_date",
    "carrier",
    "failed_underwriting",
    "phone_number",
    "status",
)


class Contact(NamedTuple):
    id: int
    state: str = "TX"
    birth: str = ""
    effective: str = ""
    status: str = ""
    email: str = "someone@example.com"


class Row(NamedTuple):
    """A row of `email_schedules`, planned or already there."""

    contact_id: int
    email_type: str
    event: dt.date | None
    send: dt.date
    status: str = "pre-scheduled"
    reason: str = ""
    legacy_year: int | None = None
    """For rows of older schedulers: an event year without month and day."""


def contacts_table(contacts: list[Contact]) -> pa.Table:
    values = {
        "email": [c.email for c in contacts],
        "state": [c.state for c in contacts],
        "birth_date": [c.birth for c in contacts],
        "effective_date": [c.effective for c in contacts],
        "status": [c.status for c in contacts],
    }
    columns = {"id": pa.array([c.id for c in contacts], pa.int64())}
    for name in _TEXT_COLUMNS:
        column = values.get(name, [""] * len(contacts))
        columns[name] = pa.array(column, pa.string())
    return pa.table(columns)


def existing_rows(rows: Sequence[Any], vocabulary: Vocabulary) -> ExistingRows:
    """Return rows as the store reads them. A row may name a campaign
    instance (`instance`) or, from an older scheduler, only an event year."""

    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    n = len(rows)
    return ExistingRows(
        row_id=ints(list(range(1, n + 1))),
        contact_id=ints([r.contact_id for r in rows]),
        kind=ints(
            [vocabulary.kind(r.email_type, getattr(r, "instance", 0)) for r in rows]
        ),
        event=ints([to_days(r.event) if r.event else int(MISSING) for r in rows]),
        event_year=ints(
            [
                r.event.year if r.event else getattr(r, "legacy_year", None) or -1
                for r in rows
            ]
        ),
        send=ints([to_days(r.send) for r in rows]),
        status=ints([vocabulary.code(r.status) for r in rows]),
        time=ints([vocabulary.code("08:30:00")] * n),
        reason=ints([vocabulary.code(r.reason) for r in rows]),
        priority=ints([-1] * n),
        email_template=ints([vocabulary.code(r.email_type) for r in rows]),
        sms_template=ints([0] * n),
        metadata=ints([0] * n),
        parent=ints([-1] * n),
        sent_at=ints([-1] * n),
    )


def plan_rows(
    contacts: list[Contact],
    today: dt.date,
    existing: Sequence[Row] = (),
    settings: Settings = DEFAULTS,
) -> list[Row]:
    """Return the plan of one run, one `Row` per planned email, sorted."""
    vocabulary = Vocabulary()
    day = to_days(today)
    typed, quality = build_contacts(
        contacts_table(contacts), day, settings.suppressed_contact_statuses
    )
    inputs = Inputs(
        typed, quality, existing_rows(list(existing), vocabulary), vocabulary
    )
    plan = build_plan(inputs, settings, day)
    rows = [
        Row(
            contact_id=int(plan.contact_id[i]),
            email_type=vocabulary.kinds[int(plan.kind[i])][0],
            event=from_days(int(plan.event[i])),
            send=from_days(int(plan.send[i])),
            status="skipped" if plan.skipped[i] else "pre-scheduled",
            reason=vocabulary.strings[int(plan.reason[i])],
        )
        for i in range(len(plan))
    ]
    return sorted(rows, key=lambda r: (r.contact_id, r.email_type, r.event))


def of_type(rows: list[Row], email_type: str) -> list[Row]:
    return [r for r in rows if r.email_type == email_type]


def months_setting(months: int) -> Settings:
    return Settings(organization=Organization(effective_date_first_email_months=months))


class TestBirthday:
    @pytest.mark.parametrize(
        ("birth", "today", "event", "send"),
        [
            # 14 days before a birthday later this year
            ("1950-06-15", D(2026, 3, 1), D(2026, 6, 15), D(2026, 6, 1)),
            # today is exactly the ideal send date
            ("1950-06-15", D(2026, 6, 1), D(2026, 6, 15), D(2026, 6, 1)),
            # the birthday has passed: next year's
            ("1950-06-15", D(2026, 6, 16), D(2027, 6, 15), D(2027, 6, 1)),
            # a January birthday: the email goes out the December before
            ("1950-01-05", D(2026, 12, 1), D(2027, 1, 5), D(2026, 12, 22)),
            # a leap-day birthday in a non-leap year: Feb 28
            ("1952-02-29", D(2026, 1, 10), D(2026, 2, 28), D(2026, 2, 14)),
            # ... and in a leap year: Feb 29
            ("1952-02-29", D(2028, 1, 10), D(2028, 2, 29), D(2028, 2, 15)),
            # the birth date may carry a time
            ("1950-06-15 00:00:00", D(2026, 3, 1), D(2026, 6, 15), D(2026, 6, 1)),
            ("1950-06-15T00:00:00", D(2026, 3, 1), D(2026, 6, 15), D(2026, 6, 1)),
        ],
    )
    def test_table(
        self, birth: str, today: dt.date, event: dt.date, send: dt.date
    ) -> None:
        rows = of_type(plan_rows([Contact(1, birth=birth)], today), "birthday")
        assert rows == [Row(1, "birthday", event, send)]

    @pytest.mark.parametrize(
        "birth",
        [
            "",  # missing
            "bad",  # malformed
            "2023-02-30",  # not a calendar date
            "2026-06-15",  # after today
        ],
    )
    def test_no_birth_date_no_email(self, birth: str) -> None:
        rows = plan_rows([Contact(1, birth=birth)], D(2026, 3, 1))
        assert of_type(rows, "birthday") == []
        assert len(of_type(rows, "aep")) == 1  # the contact still gets AEP


class TestEffectiveDate:
    @pytest.mark.parametrize(
        ("effective", "today", "months", "expected"),
        [
            # first anniversary, default 11 months: 30 days before it
            ("2025-07-01", D(2026, 3, 1), 11, (D(2026, 7, 1), D(2026, 6, 1))),
            # mid-month: Jul 15 2025 -> Jun 15 2026 is 11 whole months
            ("2025-07-15", D(2026, 3, 1), 11, (D(2026, 7, 15), D(2026, 6, 15))),
            # a later anniversary with the default
            ("2020-05-20", D(2026, 3, 1), 11, (D(2026, 5, 20), D(2026, 4, 20))),
            # 23 months: the first anniversary gets nothing
            ("2025-07-01", D(2026, 3, 1), 23, None),
            # ... the second does (23 months on 2027-06-01)
            ("2025-07-01", D(2026, 7, 2), 23, (D(2027, 7, 1), D(2027, 6, 1))),
            # 35 months: the second anniversary gets nothing
            ("2024-07-01", D(2026, 3, 1), 35, None),
            # ... the third does
            ("2023-07-01", D(2026, 3, 1), 35, (D(2026, 7, 1), D(2026, 6, 1))),
            # the effective date itself is not an anniversary
            ("2026-04-01", D(2026, 3, 1), 0, None),
            # a March policy: 30 days before Mar 15 is Feb 13, only 10 whole
            # months after the effective date, so the default 11 skips it
            ("2025-03-15", D(2026, 1, 1), 11, None),
            # ... while the second anniversary is well past the threshold
            ("2025-03-15", D(2026, 3, 16), 11, (D(2027, 3, 15), D(2027, 2, 13))),
            # January anniversary: ideal date in December
            ("2025-01-20", D(2025, 12, 1), 11, (D(2026, 1, 20), D(2025, 12, 21))),
            # a Feb 29 policy: Feb 28 anniversary, Jan 29 send
            ("2024-02-29", D(2025, 1, 2), 11, (D(2025, 2, 28), D(2025, 1, 29))),
        ],
    )
    def test_table(
        self,
        effective: str,
        today: dt.date,
        months: int,
        expected: tuple[dt.date, dt.date] | None,
    ) -> None:
        contact = Contact(1, effective=effective)
        rows = of_type(
            plan_rows([contact], today, settings=months_setting(months)),
            "effective_date",
        )
        if expected is None:
            assert rows == []
        else:
            assert rows == [Row(1, "effective_date", *expected)]


class TestAep:
    @pytest.mark.parametrize(
        ("today", "event", "send"),
        [
            # early in the year: this year's AEP
            (D(2026, 3, 1), D(2026, 10, 15), D(2026, 9, 15)),
            # the send day itself
            (D(2026, 9, 15), D(2026, 10, 15), D(2026, 9, 15)),
            # AEP opens today: the catch-up is capped at the event date
            (D(2026, 10, 15), D(2026, 10, 15), D(2026, 10, 15)),
            # the day after AEP opened: next year's
            (D(2026, 10, 16), D(2027, 10, 15), D(2027, 9, 15)),
            # the last day of the year
            (D(2026, 12, 31), D(2027, 10, 15), D(2027, 9, 15)),
        ],
    )
    def test_table(self, today: dt.date, event: dt.date, send: dt.date) -> None:
        rows = of_type(plan_rows([Contact(1)], today), "aep")
        assert rows == [Row(1, "aep", event, send)]

    def test_catch_up_between_today_and_event(self) -> None:
        # A contact added after Sept 15 still gets this year's AEP email.
        today = D(2026, 9, 20)
        rows = of_type(plan_rows([Contact(n) for n in range(1, 30)], today), "aep")
        assert len(rows) == 29
        for row in rows:
            assert row.event == D(2026, 10, 15)
            assert today <= row.send <= today + dt.timedelta(days=6)


BIRTHDAY_IN_5_DAYS = Contact(1, birth="1950-06-15")
TODAY = D(2026, 6, 10)
BIRTHDAY = D(2026, 6, 15)


def birthday_row(send: dt.date, status: str = "pre-scheduled") -> Row:
    return Row(1, "birthday", BIRTHDAY, send, status)


class TestCatchUp:
    def test_between_today_and_birthday(self) -> None:
        rows = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], TODAY), "birthday")
        assert len(rows) == 1
        assert rows[0].event == BIRTHDAY
        assert TODAY <= rows[0].send <= BIRTHDAY
        assert rows[0].status == "pre-scheduled"

    def test_never_after_the_birthday(self) -> None:
        # One day left: whatever the hash says, the email is due by the event.
        contacts = [Contact(n, birth="1950-06-15") for n in range(1, 40)]
        rows = of_type(plan_rows(contacts, D(2026, 6, 14)), "birthday")
        assert len(rows) == 39
        assert {r.send for r in rows} <= {D(2026, 6, 14), D(2026, 6, 15)}

    def test_birthday_today(self) -> None:
        rows = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], BIRTHDAY), "birthday")
        assert rows == [birthday_row(BIRTHDAY)]

    @pytest.mark.parametrize(
        ("status", "send", "expected"),
        [
            # a pending row between today and the birthday keeps its date
            ("pre-scheduled", D(2026, 6, 12), D(2026, 6, 12)),
            # ... also when it is dated today
            ("pre-scheduled", D(2026, 6, 10), D(2026, 6, 10)),
            # ... or on the birthday
            ("pre-scheduled", D(2026, 6, 15), D(2026, 6, 15)),
            # a skipped row dated today or later keeps its date as well
            ("skipped", D(2026, 6, 13), D(2026, 6, 13)),
        ],
    )
    def test_existing_date_kept(
        self, status: str, send: dt.date, expected: dt.date
    ) -> None:
        existing = [birthday_row(send, status)]
        rows = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], TODAY, existing), "birthday")
        assert [r.send for r in rows] == [expected]

    @pytest.mark.parametrize(
        "send",
        [
            D(2026, 6, 1),  # overdue pending row: moved, not kept
            D(2026, 6, 20),  # dated after the birthday: not kept
        ],
    )
    def test_existing_date_outside_range_replaced(self, send: dt.date) -> None:
        existing = [birthday_row(send)]
        rows = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], TODAY, existing), "birthday")
        fresh = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], TODAY), "birthday")
        assert [r.send for r in rows] == [r.send for r in fresh]

    def test_date_stays_put_day_after_day(self) -> None:
        """Each run sees the previous run's row; the date must not creep."""
        contacts = [Contact(n, birth="1950-06-15") for n in range(1, 30)]
        first = of_type(plan_rows(contacts, TODAY), "birthday")
        for days in range(1, 6):
            today = TODAY + dt.timedelta(days=days)
            pending = [r for r in first if r.send >= today]
            again = of_type(plan_rows(contacts, today, pending), "birthday")
            planned = {r.contact_id: r.send for r in again}
            for row in pending:
                assert planned[row.contact_id] == row.send

    @pytest.mark.parametrize(
        "status",
        ["sent", "delivered", "processing", "scheduled"],
    )
    def test_sent_or_in_flight_plans_nothing(self, status: str) -> None:
        existing = [birthday_row(D(2026, 6, 1), status)]
        rows = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], TODAY, existing), "birthday")
        assert rows == []

    def test_sent_early_plans_nothing(self) -> None:
        # The identity, not the date, decides: sent ahead of its ideal date.
        existing = [birthday_row(D(2026, 5, 1), "sent")]
        rows = plan_rows([BIRTHDAY_IN_5_DAYS], D(2026, 5, 20), existing)
        assert of_type(rows, "birthday") == []

    def test_skipped_before_today_plans_nothing(self) -> None:
        existing = [birthday_row(D(2026, 6, 1), "skipped")]
        rows = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], TODAY, existing), "birthday")
        assert rows == []

    def test_sent_row_of_last_year_does_not_count(self) -> None:
        existing = [Row(1, "birthday", D(2025, 6, 15), D(2025, 6, 1), "sent")]
        rows = of_type(plan_rows([BIRTHDAY_IN_5_DAYS], TODAY, existing), "birthday")
        assert [r.event for r in rows] == [BIRTHDAY]

    def test_legacy_row_matches_by_event_year(self) -> None:
        # Older schedulers wrote only the event year: match on it.
        existing = [Row(1, "birthday", None, D(2026, 5, 1), "sent", legacy_year=2026)]
        rows = plan_rows([BIRTHDAY_IN_5_DAYS], D(2026, 5, 20), existing)
        assert of_type(rows, "birthday") == []

    def test_legacy_row_without_event_matches_by_date(self) -> None:
        # Older schedulers wrote no event date: match on the send date.
        existing = [Row(1, "birthday", None, D(2026, 6, 1), "sent")]
        rows = plan_rows([BIRTHDAY_IN_5_DAYS], D(2026, 5, 20), existing)
        assert of_type(rows, "birthday") == []


class TestWindows:
    def test_california_post_window(self) -> None:
        # Birthday June 15: window 2026-03-17..2026-08-14 withholds June 1.
        rows = plan_rows([Contact(1, "CA", birth="1950-06-15")], D(2026, 3, 1))
        reason = "exclusion window: CA birthday 2026-03-17..2026-08-14"
        assert rows == [
            Row(1, "aep", D(2026, 10, 15), D(2026, 9, 15)),
            Row(1, "birthday", D(2026, 6, 15), D(2026, 6, 1), "skipped", reason),
            Row(1, "post_window", D(2026, 8, 14), D(2026, 8, 15)),
        ]

    def test_missouri_birthday_withheld_by_effective_date_window(self) -> None:
        # Effective May 20: window 2026-02-19..2026-06-22 holds the birthday
        # email of June 1 and the effective-date email of April 20.
        contact = Contact(1, "MO", birth="1950-06-15", effective="2020-05-20")
        rows = plan_rows([contact], D(2026, 1, 1))
        reason = "exclusion window: MO effective_date 2026-02-19..2026-06-22"
        assert rows == [
            Row(1, "aep", D(2026, 10, 15), D(2026, 9, 15)),
            Row(1, "birthday", D(2026, 6, 15), D(2026, 6, 1), "skipped", reason),
            Row(1, "effective_date", D(2026, 5, 20), D(2026, 4, 20), "skipped", reason),
            Row(1, "post_window", D(2026, 6, 22), D(2026, 6, 23)),
        ]

    def test_missouri_before_the_first_anniversary(self) -> None:
        # Policy of 2026-01-10: no window in 2026, so the June birthday email
        # goes out; the first anniversary's window (2026-10-12..2027-02-12)
        # withholds the effective-date email of 2026-12-11.
        contact = Contact(1, "MO", birth="1950-06-15", effective="2026-01-10")
        rows = plan_rows([contact], D(2026, 3, 1))
        reason = "exclusion window: MO effective_date 2026-10-12..2027-02-12"
        assert rows == [
            Row(1, "aep", D(2026, 10, 15), D(2026, 9, 15)),
            Row(1, "birthday", D(2026, 6, 15), D(2026, 6, 1)),
            Row(
                1, "effective_date", D(2027, 1, 10), D(2026, 12, 11), "skipped", reason
            ),
            Row(1, "post_window", D(2027, 2, 12), D(2027, 2, 13)),
        ]

    def test_window_that_started_before_today(self) -> None:
        # Inside the 2026 window, after the birthday: the 2026 post-window
        # email is still due, and next year's birthday is withheld too.
        rows = plan_rows([Contact(1, "CA", birth="1950-06-15")], D(2026, 7, 1))
        assert of_type(rows, "post_window") == [
            Row(1, "post_window", D(2026, 8, 14), D(2026, 8, 15)),
            Row(1, "post_window", D(2027, 8, 14), D(2027, 8, 15)),
        ]
        assert [r.status for r in of_type(rows, "birthday")] == ["skipped"]

    def test_post_window_on_the_day_after_the_window(self) -> None:
        rows = plan_rows([Contact(1, "CA", birth="1950-06-15")], D(2026, 8, 15))
        assert Row(1, "post_window", D(2026, 8, 14), D(2026, 8, 15)) in rows

    def test_post_window_gone_once_past(self) -> None:
        rows = plan_rows([Contact(1, "CA", birth="1950-06-15")], D(2026, 8, 16))
        assert D(2026, 8, 14) not in [r.event for r in of_type(rows, "post_window")]

    def test_no_post_window_when_past_email_was_sent(self) -> None:
        sent = Row(1, "birthday", D(2026, 6, 15), D(2026, 3, 1), "sent")
        rows = plan_rows([Contact(1, "CA", birth="1950-06-15")], D(2026, 7, 1), [sent])
        events = [r.event for r in of_type(rows, "post_window")]
        assert D(2026, 8, 14) not in events

    def test_no_post_window_for_an_aep_catch_up_outside_the_window(self) -> None:
        # Policy of 2025-08-16 with a 23-month threshold: its first window
        # (2026-05-18..2026-09-18) has no effective-date email to withhold.
        # Seen first on Sep 17, the AEP catch-up goes out on Sep 21, after
        # the window: nothing was withheld, so no post-window email is due
        # (the AEP occurrence before the planned one is 2025's).
        contact = Contact(1, "MO", effective="2025-08-16")
        rows = plan_rows([contact], D(2026, 9, 17), settings=months_setting(23))
        assert of_type(rows, "aep") == [Row(1, "aep", D(2026, 10, 15), D(2026, 9, 21))]
        events = [r.event for r in of_type(rows, "post_window")]
        assert D(2026, 9, 18) not in events

    def test_no_post_window_for_a_birthday_catch_up_outside_the_window(self) -> None:
        # Same with a birthday: the window 2026-02-02..2026-06-05 holds the
        # ideal date (Jun 1) but not the catch-up date (Jun 9) of the birthday
        # email, which goes out; a post-window email on Jun 6 would be a
        # second email for nothing withheld.
        contact = Contact(1, "MO", birth="1950-06-15", effective="2025-05-03")
        rows = plan_rows([contact], D(2026, 6, 4), settings=months_setting(23))
        assert of_type(rows, "birthday") == [
            Row(1, "birthday", D(2026, 6, 15), D(2026, 6, 9))
        ]
        events = [r.event for r in of_type(rows, "post_window")]
        assert D(2026, 6, 5) not in events

    def test_post_window_kept_after_the_withheld_email_became_history(self) -> None:
        # The birthday email was skipped on Jun 1 (inside the window); a run
        # on Jun 20 still owes the post-window email of Aug 15.
        skipped = Row(1, "birthday", D(2026, 6, 15), D(2026, 6, 1), "skipped")
        contact = Contact(1, "CA", birth="1950-06-15")
        rows = plan_rows([contact], D(2026, 6, 20), [skipped])
        assert Row(1, "post_window", D(2026, 8, 14), D(2026, 8, 15)) in rows

    def test_no_post_window_when_disabled(self) -> None:
        settings = Settings(organization=Organization(enable_post_window_emails=False))
        contact = Contact(1, "CA", birth="1950-06-15")
        rows = plan_rows([contact], D(2026, 3, 1), settings=settings)
        assert of_type(rows, "post_window") == []

    def test_post_window_moves_past_a_second_window(self) -> None:
        # The birthday window ends Jul 15; Jul 16 lies in the effective-date
        # window (Jun 2..Aug 31), so the email goes out on Sep 1.
        rules = (
            {"state": "TX", "rule": "birthday", "days_after": 30},
            {"state": "TX", "rule": "effective_date", "days_after": 30},
        )
        settings = Settings.model_validate({"state_rules": rules})
        contact = Contact(1, "TX", birth="1950-06-15", effective="2020-08-01")
        rows = plan_rows([contact], D(2026, 3, 1), settings=settings)
        assert of_type(rows, "post_window") == [
            Row(1, "post_window", D(2026, 7, 15), D(2026, 9, 1))
        ]

    def test_new_york_year_round(self) -> None:
        contact = Contact(1, "NY", birth="1950-06-15", effective="2020-05-20")
        rows = plan_rows([contact], D(2026, 3, 1))
        reason = "exclusion window: NY year-round"
        assert rows == [
            Row(1, "aep", D(2026, 10, 15), D(2026, 9, 15), "skipped", reason),
            Row(1, "birthday", D(2026, 6, 15), D(2026, 6, 1), "skipped", reason),
            Row(1, "effective_date", D(2026, 5, 20), D(2026, 4, 20), "skipped", reason),
        ]

    def test_aep_outside_window_goes_out(self) -> None:
        rows = plan_rows([Contact(1, "CA", birth="1950-06-15")], D(2026, 3, 1))
        assert of_type(rows, "aep") == [Row(1, "aep", D(2026, 10, 15), D(2026, 9, 15))]


class TestNobody:
    @pytest.mark.parametrize(
        "contact",
        [
            Contact(1, state="", birth="1950-06-15"),  # no state, no ZIP
            Contact(1, state="ZZ", birth="1950-06-15"),  # not a state
            Contact(1, status="unsubscribed", birth="1950-06-15"),  # suppressed
            Contact(1, status="bounced", birth="1950-06-15"),  # suppressed
            Contact(1, status="Complained", birth="1950-06-15"),  # any case
            Contact(1, status="deleted", birth="1950-06-15"),  # suppressed
            Contact(1, email="", birth="1950-06-15"),  # no email
            Contact(1, email="not-an-address", birth="1950-06-15"),  # bad email
        ],
    )
    def test_gets_nothing(self, contact: Contact) -> None:
        assert plan_rows([contact], D(2026, 3, 1)) == []

    def test_others_unaffected(self) -> None:
        contacts = [
            Contact(1, state="", birth="1950-06-15"),
            Contact(2, birth="1950-06-15"),
            Contact(3, status="unsubscribed", birth="1950-06-15"),
        ]
        rows = plan_rows(contacts, D(2026, 3, 1))
        assert {r.contact_id for r in rows} == {2}

    def test_active_status_is_not_suppressed(self) -> None:
        rows = plan_rows(
            [Contact(1, status="active", birth="1950-06-15")], D(2026, 3, 1)
        )
        assert len(rows) == 2
