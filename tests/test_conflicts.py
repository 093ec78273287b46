"""Same-day conflicts (SPEC 8.1): at most one non-follow-up email per contact per day.

Most cases run the whole plan through `run.build_plan` on one or two
contacts whose email dates were picked to collide; the AEP email goes out
on Sep 15, so a birthday of Sep 29 (14 days before) or a policy anniversary
of Oct 15 (30 days before) lands on the same day. Campaign instances and
follow-ups have no planner yet, so their cases call `resolve_same_day` on a
hand-built plan.

This module also holds the two builders the other constraint tests share:
`plan_of` (a run's plan as rows, with the run's tally) and `hand_plan`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pytest

from email_scheduler.calendar import from_days, to_days
from email_scheduler.config import Settings
from email_scheduler.constraints.conflicts import resolve_same_day
from email_scheduler.constraints.occupancy import Committed
from email_scheduler.contacts import build_contacts
from email_scheduler.pipeline import Inputs, build_plan
from email_scheduler.plan import NONE, Plan, Vocabulary
from test_anniversary import Contact, Row, contacts_table, existing_rows

D = dt.date
DEFAULTS = Settings()
MARCH_1 = D(2026, 3, 1)
SEP_15 = D(2026, 9, 15)
"""The AEP send date of 2026."""
AEP_2026 = D(2026, 10, 15)
"""The AEP event date of 2026."""


# -- builders ---------------------------------------------------------------


class Outcome(NamedTuple):
    """One run's plan as sorted rows, and the counts its stages reported."""

    rows: list[Row]
    tally: Counter[str]

    def of_type(self, email_type: str) -> list[Row]:
        return [r for r in self.rows if r.email_type == email_type]

    def sends(self, email_type: str) -> dict[int, dt.date]:
        """Return the send date of each contact's email of one type."""
        return {r.contact_id: r.send for r in self.of_type(email_type)}


def inputs_of(
    contacts: Sequence[Contact],
    today: dt.date,
    existing: Sequence[Row] = (),
    settings: Settings = DEFAULTS,
) -> Inputs:
    """Return the inputs of a run; contact i of the list sits at position i."""
    vocabulary = Vocabulary()
    typed, quality = build_contacts(
        contacts_table(list(contacts)),
        to_days(today),
        settings.suppressed_contact_statuses,
    )
    return Inputs(typed, quality, existing_rows(list(existing), vocabulary), vocabulary)


def as_rows(plan: Plan, vocabulary: Vocabulary) -> list[Row]:
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


def plan_of(
    contacts: Sequence[Contact],
    today: dt.date,
    existing: Sequence[Row] = (),
    settings: Settings = DEFAULTS,
) -> Outcome:
    """Return the plan of one run over `contacts`, with its tally."""
    inputs = inputs_of(contacts, today, existing, settings)
    tally: Counter[str] = Counter()
    plan = build_plan(inputs, settings, to_days(today), tally)
    return Outcome(as_rows(plan, inputs.vocabulary), tally)


class Email(NamedTuple):
    """One email of a hand-built plan.

    Contact ids are 1..n and contact `k` sits at position `k - 1` of the
    run's contacts. The event date defaults to the send date and the latest
    useful date to the event date.
    """

    contact_id: int
    email_type: str
    send: dt.date
    priority: int = 10
    instance: int = 0
    event: dt.date | None = None
    latest: dt.date | None = None
    kept: bool = False
    respects_windows: bool = True
    skipped: bool = False


def hand_plan(emails: Sequence[Email], vocabulary: Vocabulary) -> Plan:
    """Return a plan holding exactly `emails`, in order."""

    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    def flags(values: list[bool]) -> np.ndarray:
        return np.array(values, dtype=bool)

    events = [e.event or e.send for e in emails]
    n = len(emails)
    return Plan(
        contact=ints([e.contact_id - 1 for e in emails]),
        contact_id=ints([e.contact_id for e in emails]),
        kind=ints([vocabulary.kind(e.email_type, e.instance) for e in emails]),
        event=ints([to_days(day) for day in events]),
        send=ints([to_days(e.send) for e in emails]),
        skipped=flags([e.skipped for e in emails]),
        reason=ints([vocabulary.code("withheld" if e.skipped else "") for e in emails]),
        priority=ints([e.priority for e in emails]),
        email_template=ints([NONE] * n),
        sms_template=ints([NONE] * n),
        metadata=ints([NONE] * n),
        respects_windows=flags([e.respects_windows for e in emails]),
        kept=flags([e.kept for e in emails]),
        latest=ints(
            [to_days(e.latest or day) for e, day in zip(emails, events, strict=True)]
        ),
        row=ints([-1] * n),
    )


def reasons(plan: Plan, vocabulary: Vocabulary) -> list[str]:
    """Return each email's skip reason, or "" for an email that goes out."""
    return [
        vocabulary.strings[int(plan.reason[i])] if plan.skipped[i] else ""
        for i in range(len(plan))
    ]


def lost_to(email_type: str) -> str:
    return f"same-day conflict: {email_type} goes out that day"


# -- through whole runs -----------------------------------------------------

BIRTHDAY_ON_AEP_DAY = "1950-09-29"
"""A birthday of Sep 29: its email is due on Sep 15, with the AEP email."""
POLICY_ON_AEP_DAY = "2020-10-15"
"""A policy anniversary of Oct 15: its email is due on Sep 15 as well."""


def aep(status: str = "pre-scheduled", reason: str = "") -> Row:
    return Row(1, "aep", AEP_2026, SEP_15, status, reason)


def birthday(status: str = "pre-scheduled", reason: str = "") -> Row:
    return Row(1, "birthday", D(2026, 9, 29), SEP_15, status, reason)


def effective_date(status: str = "pre-scheduled", reason: str = "") -> Row:
    return Row(1, "effective_date", AEP_2026, SEP_15, status, reason)


class TestPriority:
    @pytest.mark.parametrize(
        ("contact", "priorities", "expected"),
        [
            # birthday (10) beats AEP (30)
            (
                Contact(1, birth=BIRTHDAY_ON_AEP_DAY),
                {},
                [aep("skipped", lost_to("birthday")), birthday()],
            ),
            # effective date (20) beats AEP (30)
            (
                Contact(1, effective=POLICY_ON_AEP_DAY),
                {},
                [aep("skipped", lost_to("effective_date")), effective_date()],
            ),
            # three on one day: both losers name the winner, not each other
            (
                Contact(1, birth=BIRTHDAY_ON_AEP_DAY, effective=POLICY_ON_AEP_DAY),
                {},
                [
                    aep("skipped", lost_to("birthday")),
                    birthday(),
                    effective_date("skipped", lost_to("birthday")),
                ],
            ),
            # a configured priority turns the order round
            (
                Contact(1, birth=BIRTHDAY_ON_AEP_DAY),
                {"aep": 5},
                [aep(), birthday("skipped", lost_to("aep"))],
            ),
            # equal priorities: "aep" sorts before "birthday"
            (
                Contact(1, birth=BIRTHDAY_ON_AEP_DAY),
                {"birthday": 30},
                [aep(), birthday("skipped", lost_to("aep"))],
            ),
            # equal priorities: "aep" sorts before "effective_date"
            (
                Contact(1, effective=POLICY_ON_AEP_DAY),
                {"aep": 20},
                [aep(), effective_date("skipped", lost_to("aep"))],
            ),
            # all three equal: "aep" first by type, twice named
            (
                Contact(1, birth=BIRTHDAY_ON_AEP_DAY, effective=POLICY_ON_AEP_DAY),
                {"birthday": 1, "effective_date": 1, "aep": 1},
                [
                    aep(),
                    birthday("skipped", lost_to("aep")),
                    effective_date("skipped", lost_to("aep")),
                ],
            ),
        ],
    )
    def test_table(
        self, contact: Contact, priorities: dict[str, int], expected: list[Row]
    ) -> None:
        settings = Settings(priorities=priorities)
        outcome = plan_of([contact], MARCH_1, settings=settings)
        assert outcome.rows == expected
        skipped = sum(r.status == "skipped" for r in expected)
        assert outcome.tally["skipped_same_day"] == skipped

    # A CA birthday of Jul 16 has the window 2026-04-17..2026-09-14: the
    # birthday email (Jul 2) is withheld and earns a post-window email on
    # Sep 15, the AEP day.
    WINDOW = "exclusion window: CA birthday 2026-04-17..2026-09-14"

    @pytest.mark.parametrize(
        ("priorities", "aep_reason", "post_window_reason"),
        [
            # AEP (30) beats post-window (40)
            ({}, "", lost_to("aep")),
            # a tie: "aep" sorts before "post_window"
            ({"post_window": 30}, "", lost_to("aep")),
            # post-window first by priority
            ({"post_window": 25}, lost_to("post_window"), ""),
        ],
    )
    def test_post_window_email_takes_part(
        self, priorities: dict[str, int], aep_reason: str, post_window_reason: str
    ) -> None:
        contact = Contact(1, "CA", birth="1950-07-16")
        outcome = plan_of([contact], MARCH_1, settings=Settings(priorities=priorities))

        def status(reason: str) -> str:
            return "skipped" if reason else "pre-scheduled"

        assert outcome.rows == [
            aep(status(aep_reason), aep_reason),
            Row(1, "birthday", D(2026, 7, 16), D(2026, 7, 2), "skipped", self.WINDOW),
            Row(
                1,
                "post_window",
                D(2026, 9, 14),
                SEP_15,
                status(post_window_reason),
                post_window_reason,
            ),
        ]

    def test_only_the_same_contact_conflicts(self) -> None:
        contacts = [Contact(n, birth=BIRTHDAY_ON_AEP_DAY) for n in (1, 2)]
        outcome = plan_of(contacts, MARCH_1)
        assert [(r.contact_id, r.status) for r in outcome.of_type("birthday")] == [
            (1, "pre-scheduled"),
            (2, "pre-scheduled"),
        ]
        assert [r.reason for r in outcome.of_type("aep")] == [lost_to("birthday")] * 2
        assert outcome.tally["skipped_same_day"] == 2

    def test_one_day_apart_is_no_conflict(self) -> None:
        # Born Sep 30: the birthday email is due Sep 16, the day after AEP.
        outcome = plan_of([Contact(1, birth="1950-09-30")], MARCH_1)
        assert {r.email_type: r.status for r in outcome.rows} == {
            "aep": "pre-scheduled",
            "birthday": "pre-scheduled",
        }
        assert outcome.tally["skipped_same_day"] == 0


class TestEmailsTheSenderOwns:
    """A row the sender holds for the day cannot be taken back: it wins."""

    @pytest.mark.parametrize("status", ["scheduled", "processing", "sent", "delivered"])
    def test_aep_row_beats_a_birthday(self, status: str) -> None:
        # The run is on Sep 15 itself; the AEP row of the day is the sender's,
        # so no AEP email is planned, and the birthday email (priority 10)
        # loses to it although AEP has priority 30.
        existing = [aep(status)]
        contact = Contact(1, birth=BIRTHDAY_ON_AEP_DAY)
        outcome = plan_of([contact], SEP_15, existing)
        assert outcome.rows == [birthday("skipped", lost_to("aep"))]

    def test_campaign_row_is_named(self) -> None:
        existing = [Row(1, "campaign_autumn", SEP_15, SEP_15, "scheduled")]
        contact = Contact(1, birth=BIRTHDAY_ON_AEP_DAY)
        outcome = plan_of([contact], SEP_15, existing)
        assert outcome.rows == [
            aep("skipped", lost_to("campaign_autumn")),
            birthday("skipped", lost_to("campaign_autumn")),
        ]
        assert outcome.tally["skipped_same_day"] == 2

    @pytest.mark.parametrize(
        ("row", "expected"),
        [
            # the sender's row is on another day: no conflict
            (
                Row(1, "campaign_autumn", D(2026, 9, 16), D(2026, 9, 16), "sent"),
                [aep("skipped", lost_to("birthday")), birthday()],
            ),
            # a follow-up the sender holds is exempt from the rule
            (
                Row(1, "followup_1_cold", SEP_15, SEP_15, "scheduled"),
                [aep("skipped", lost_to("birthday")), birthday()],
            ),
            # a skipped row is nobody's email
            (
                Row(1, "campaign_autumn", SEP_15, SEP_15, "skipped"),
                [aep("skipped", lost_to("birthday")), birthday()],
            ),
            # another contact's row
            (
                Row(2, "campaign_autumn", SEP_15, SEP_15, "sent"),
                [aep("skipped", lost_to("birthday")), birthday()],
            ),
        ],
    )
    def test_rows_that_do_not_block(self, row: Row, expected: list[Row]) -> None:
        contact = Contact(1, birth=BIRTHDAY_ON_AEP_DAY)
        assert plan_of([contact], SEP_15, [row]).rows == expected


# -- on hand-built plans ----------------------------------------------------

DAY = D(2026, 5, 4)
NEXT_DAY = D(2026, 5, 5)


class TestResolveSameDay:
    @pytest.mark.parametrize(
        ("emails", "expected"),
        [
            # same type and priority: the lower instance id wins
            (
                [
                    Email(1, "campaign_spring", DAY, 50, instance=2),
                    Email(1, "campaign_spring", DAY, 50, instance=1),
                ],
                [lost_to("campaign_spring"), ""],
            ),
            # same priority: the type that sorts first wins
            (
                [
                    Email(1, "campaign_summer", DAY, 50, instance=1),
                    Email(1, "campaign_spring", DAY, 50, instance=2),
                ],
                [lost_to("campaign_spring"), ""],
            ),
            # priority comes before type and instance
            (
                [
                    Email(1, "campaign_spring", DAY, 50, instance=1),
                    Email(1, "campaign_summer", DAY, 5, instance=2),
                ],
                [lost_to("campaign_summer"), ""],
            ),
            # follow-ups are exempt: both go out beside the birthday email
            (
                [
                    Email(1, "birthday", DAY, 10),
                    Email(1, "followup_1_cold", DAY, 10),
                    Email(1, "followup_2_clicked_no_hq", DAY, 30),
                ],
                ["", "", ""],
            ),
            # a follow-up does not take a day from a lower-priority email
            (
                [Email(1, "followup_4_hq_with_yes", DAY, 1), Email(1, "aep", DAY, 30)],
                ["", ""],
            ),
            # an email already skipped wins nothing
            (
                [Email(1, "birthday", DAY, 10, skipped=True), Email(1, "aep", DAY, 30)],
                ["withheld", ""],
            ),
            # other days and other contacts do not conflict
            (
                [
                    Email(1, "birthday", DAY, 10),
                    Email(1, "aep", NEXT_DAY, 30),
                    Email(2, "aep", DAY, 30),
                ],
                ["", "", ""],
            ),
        ],
    )
    def test_table(self, emails: list[Email], expected: list[str]) -> None:
        vocabulary = Vocabulary()
        plan = hand_plan(emails, vocabulary)
        tally: Counter[str] = Counter()
        nothing = Committed.of(existing_rows([], vocabulary), vocabulary)
        resolved = resolve_same_day(plan, nothing, vocabulary, tally)
        assert reasons(resolved, vocabulary) == expected
        assert tally["skipped_same_day"] == sum(
            r.startswith("same-day") for r in expected
        )

    def test_plan_left_as_it_was(self) -> None:
        vocabulary = Vocabulary()
        plan = hand_plan(
            [Email(1, "birthday", DAY, 10), Email(1, "aep", DAY, 30)], vocabulary
        )
        nothing = Committed.of(existing_rows([], vocabulary), vocabulary)
        resolve_same_day(plan, nothing, vocabulary, Counter())
        assert not plan.skipped.any()
        assert reasons(plan, vocabulary) == ["", ""]

    def test_committed_row_wins_over_any_priority(self) -> None:
        vocabulary = Vocabulary()
        plan = hand_plan([Email(1, "birthday", DAY, 0)], vocabulary)
        sent = [Row(1, "campaign_winter", DAY, DAY, "sent")]
        committed = Committed.of(existing_rows(sent, vocabulary), vocabulary)
        resolved = resolve_same_day(plan, committed, vocabulary, Counter())
        assert reasons(resolved, vocabulary) == [lost_to("campaign_winter")]

    def test_empty_plan(self) -> None:
        vocabulary = Vocabulary()
        plan = hand_plan([], vocabulary)
        nothing = Committed.of(existing_rows([], vocabulary), vocabulary)
        assert len(resolve_same_day(plan, nothing, vocabulary, Counter())) == 0
