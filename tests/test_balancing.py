"""Daily volume (SPEC 8.3): the limits, effective-date smoothing, the daily cap.

Most cases use a cap of 5: `daily_cap_floor` 5 with a share of 1% (a
handful of contacts give a share of 0), so a day is balanced from 7 emails
on (floor(5 * 1.2) = 6). Every TX contact without dates gets exactly one
email, AEP on Sep 15, 2026; n such contacts crowd that day with n emails.
Among emails of one priority and type, the lowest contact ids stay.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest

from email_scheduler.calendar import to_days
from email_scheduler.config import LoadBalancing, Settings
from email_scheduler.constraints.balancing import Limits
from email_scheduler.constraints.occupancy import MoveCheck
from email_scheduler.pipeline import Context, balance
from test_anniversary import Contact, Row
from test_conflicts import (
    AEP_2026,
    MARCH_1,
    SEP_15,
    Email,
    hand_plan,
    inputs_of,
    plan_of,
)

D = dt.date
ONE_DAY = dt.timedelta(days=1)
SEP_16 = D(2026, 9, 16)
SEP_17 = D(2026, 9, 17)
PENDING = "pre-scheduled"


def capped(
    cap: int = 5, sections: dict[str, object] | None = None, **rules: object
) -> Settings:
    """Return settings whose daily cap is `cap` for an org of a few contacts.

    `rules` are more load_balancing keys; `sections` other configuration.
    """
    balancing = {"daily_cap_floor": cap, "daily_send_percentage_cap": 0.01, **rules}
    return Settings.model_validate({**(sections or {}), "load_balancing": balancing})


def aep_only(count: int, first: int = 1) -> list[Contact]:
    """Return contacts whose only email is AEP."""
    return [Contact(n) for n in range(first, first + count)]


def spread(*days: tuple[range, dt.date]) -> dict[int, dt.date]:
    """Return {contact id: date} from (contact ids, date) pairs."""
    return {n: day for ids, day in days for n in ids}


class TestLimits:
    @pytest.mark.parametrize(
        ("rules", "eligible", "expected"),
        [
            # an empty org still gets the floor
            ({}, 0, (100, 15, 120)),
            # 7% of 1,000 is 70, under the floor
            ({}, 1_000, (100, 15, 120)),
            # 7% of 1,428 is 99.96: floored to 99, under the floor
            ({}, 1_428, (100, 15, 120)),
            # 7% of 1,443 is 101.01 -> 101; 1.2 * 101 = 121.2 -> 121
            ({}, 1_443, (101, 15, 121)),
            # 7% of 10,000
            ({}, 10_000, (700, 15, 840)),
            # the largest org the SPEC plans for
            ({}, 3_000_000, (210_000, 15, 252_000)),
            # a small floor: soft limit 0.3 * 10 = 3, overage 12
            (
                {"daily_cap_floor": 10, "daily_send_percentage_cap": 0.01},
                99,
                (10, 3, 12),
            ),
            # a cap of 3: the soft limit floors 0.9 to 0; overage 3.6 -> 3
            ({"daily_cap_floor": 3, "daily_send_percentage_cap": 0.01}, 99, (3, 0, 3)),
            # the configured soft limit when it is the smaller
            ({"ed_daily_soft_limit": 2}, 1_000, (100, 2, 120)),
            # threshold 1.0: balanced as soon as over the cap
            ({"overage_threshold": 1.0}, 1_000, (100, 15, 100)),
            # threshold 1.5 on a cap of 7: 10.5 -> 10
            (
                {"daily_cap_floor": 7, "overage_threshold": 1.5},
                10,
                (7, 2, 10),
            ),
            # 29% of 100 contacts is 29, although 100 * 0.29 is 28.999... in
            # binary floating point; 0.3 * 29 = 8.7 -> 8; 1.2 * 29 = 34.8 -> 34
            (
                {"daily_cap_floor": 1, "daily_send_percentage_cap": 0.29},
                100,
                (29, 8, 34),
            ),
        ],
    )
    def test_table(
        self, rules: dict[str, object], eligible: int, expected: tuple[int, int, int]
    ) -> None:
        settings = Settings(load_balancing=LoadBalancing.model_validate(rules))
        limits = Limits.of(settings, eligible)
        assert (limits.daily_cap, limits.ed_soft_limit, limits.overage_limit) == (
            expected
        )


class TestDailyCap:
    @pytest.mark.parametrize(
        ("contacts", "rules", "sends", "moved", "left"),
        [
            # 5 emails: at the cap
            (5, {}, spread((range(1, 6), SEP_15)), 0, 0),
            # 6 emails: exactly floor(5 * 1.2), not balanced
            (6, {}, spread((range(1, 7), SEP_15)), 0, 0),
            # 7 emails: one over; the cap of 5 stays, two move a day on
            (7, {}, spread((range(1, 6), SEP_15), (range(6, 8), SEP_16)), 2, 0),
            # 12 emails: the next day takes 5, the day after 2
            (
                12,
                {},
                spread(
                    (range(1, 6), SEP_15),
                    (range(6, 11), SEP_16),
                    (range(11, 13), SEP_17),
                ),
                7,
                0,
            ),
            # threshold 1.0: 6 emails are already one too many
            (
                6,
                {"overage_threshold": 1.0},
                spread((range(1, 6), SEP_15), (range(6, 7), SEP_16)),
                1,
                0,
            ),
            # no lookahead: nowhere to go
            (7, {"cap_lookahead_days": 0}, spread((range(1, 8), SEP_15)), 0, 2),
            # one day of lookahead: 5 move, 2 are left over
            (
                12,
                {"cap_lookahead_days": 1},
                spread(
                    (range(1, 6), SEP_15),
                    (range(6, 11), SEP_16),
                    (range(11, 13), SEP_15),
                ),
                5,
                2,
            ),
        ],
    )
    def test_threshold_and_lookahead(
        self,
        contacts: int,
        rules: dict[str, object],
        sends: dict[int, dt.date],
        moved: int,
        left: int,
    ) -> None:
        outcome = plan_of(aep_only(contacts), MARCH_1, settings=capped(**rules))
        assert outcome.sends("aep") == sends
        assert all(r.status == "pre-scheduled" for r in outcome.rows)
        assert outcome.tally["moved_by_cap"] == moved
        assert outcome.tally["left_over_cap"] == left

    @pytest.mark.parametrize(
        ("send_date", "contacts", "sends", "left"),
        [
            # AEP sent on its event date: no day to move to
            ("10-15", 7, spread((range(1, 8), D(2026, 10, 15))), 2),
            # one day before the event: the overflow fits on the event date
            (
                "10-14",
                7,
                spread((range(1, 6), D(2026, 10, 14)), (range(6, 8), AEP_2026)),
                0,
            ),
            # ... but only 5 of 7 fit there
            (
                "10-14",
                12,
                spread(
                    (range(1, 6), D(2026, 10, 14)),
                    (range(6, 11), AEP_2026),
                    (range(11, 13), D(2026, 10, 14)),
                ),
                2,
            ),
            # two days before: the event date is the last day used
            (
                "10-13",
                12,
                spread(
                    (range(1, 6), D(2026, 10, 13)),
                    (range(6, 11), D(2026, 10, 14)),
                    (range(11, 13), AEP_2026),
                ),
                0,
            ),
        ],
    )
    def test_never_after_the_event_date(
        self, send_date: str, contacts: int, sends: dict[int, dt.date], left: int
    ) -> None:
        settings = capped(
            sections={"aep": {"send_date": send_date, "event_date": "10-15"}}
        )
        outcome = plan_of(aep_only(contacts), MARCH_1, settings=settings)
        assert outcome.sends("aep") == sends
        assert outcome.tally["left_over_cap"] == left

    @pytest.mark.parametrize(
        ("days_before", "moved_to"),
        [
            # birthday email on Dec 14: the overflow may use Dec 15
            (1, D(2026, 12, 15)),
            # birthday email on the birthday itself: it stays
            (0, None),
        ],
    )
    def test_birthday_never_after_the_birthday(
        self, days_before: int, moved_to: dt.date | None
    ) -> None:
        settings = capped(sections={"timing": {"birthday_days_before": days_before}})
        contacts = [Contact(n, birth="1950-12-15") for n in range(1, 8)]
        ideal = D(2026, 12, 15) - days_before * ONE_DAY
        sends = plan_of(contacts, MARCH_1, settings=settings).sends("birthday")
        assert sends == spread((range(1, 6), ideal), (range(6, 8), moved_to or ideal))

    def test_move_into_a_window_is_refused(self) -> None:
        # Contact 7 lives in CA and was born Dec 15: its window is
        # 2026-09-16..2027-02-13, so each of the 7 days after Sep 15 is
        # closed to its AEP email; contact 6 (TX) moves.
        contacts = [*aep_only(6), Contact(7, "CA", birth="1950-12-15")]
        outcome = plan_of(contacts, MARCH_1, settings=capped())
        assert outcome.sends("aep") == spread(
            (range(1, 6), SEP_15), (range(6, 7), SEP_16), (range(7, 8), SEP_15)
        )
        assert outcome.tally["moved_by_cap"] == 1
        assert outcome.tally["left_over_cap"] == 1

    def test_move_onto_the_contacts_other_email_is_refused(self) -> None:
        # Contact 7 was born Sep 30: its birthday email is due on Sep 16, so
        # its AEP email goes on to Sep 17.
        contacts = [*aep_only(6), Contact(7, birth="1950-09-30")]
        outcome = plan_of(contacts, MARCH_1, settings=capped())
        assert outcome.sends("aep") == spread(
            (range(1, 6), SEP_15), (range(6, 7), SEP_16), (range(7, 8), SEP_17)
        )
        assert outcome.sends("birthday") == {7: SEP_16}

    def test_move_that_breaks_the_frequency_limit_is_refused(self) -> None:
        # Limit 2 in 30 days. Contact 7 has a birthday email on Sep 20 and an
        # effective-date email on Oct 15. From any day of Sep 16..22 its AEP
        # email would be the third in Sep 16..Oct 15, so it stays on Sep 15.
        frequency = {"max_emails_per_period": 2, "period_days": 30}
        settings = capped(sections={"frequency": frequency})
        contacts = [
            *aep_only(6),
            Contact(7, birth="1950-10-04", effective="2020-11-14"),
        ]
        outcome = plan_of(contacts, MARCH_1, settings=settings)
        assert outcome.sends("aep") == spread(
            (range(1, 6), SEP_15), (range(6, 7), SEP_16), (range(7, 8), SEP_15)
        )
        assert outcome.sends("birthday") == {7: D(2026, 9, 20)}
        assert outcome.sends("effective_date") == {7: AEP_2026}
        assert outcome.tally["left_over_cap"] == 1

    def test_emails_the_sender_holds_fill_the_day(self) -> None:
        # Contacts 5-7 have a campaign email scheduled on Sep 15, which wins
        # over their AEP emails. Sep 15: 3 held + 4 AEP = 7 > 6; 5 may stay,
        # so only 2 AEP emails (contacts 1 and 2) do.
        held = [
            Row(n, "campaign_autumn", SEP_15, SEP_15, "scheduled") for n in (5, 6, 7)
        ]
        outcome = plan_of(aep_only(7), MARCH_1, held, capped())
        going = [r for r in outcome.of_type("aep") if r.status == "pre-scheduled"]
        assert {r.contact_id: r.send for r in going} == spread(
            (range(1, 3), SEP_15), (range(3, 5), SEP_16)
        )

    def test_follow_ups_the_sender_holds_fill_the_day(self) -> None:
        # Follow-ups are exempt from 8.1 and 8.2 but go out all the same:
        # Sep 15 holds 2 scheduled follow-ups and 5 AEP emails.
        held = [Row(n, "followup_1_cold", SEP_15, SEP_15, "scheduled") for n in (1, 2)]
        outcome = plan_of(aep_only(5), MARCH_1, held, capped())
        assert outcome.sends("aep") == spread(
            (range(1, 4), SEP_15), (range(4, 6), SEP_16)
        )

    @pytest.mark.parametrize(
        ("lookahead", "sends", "moved", "left"),
        [
            # Sep 16 is full already: contacts 2 and 3 have nowhere to go
            (1, spread((range(1, 4), SEP_15)), 0, 2),
            # Sep 17 has room for one of them
            (
                2,
                spread(
                    (range(1, 2), SEP_15), (range(2, 3), SEP_17), (range(3, 4), SEP_15)
                ),
                1,
                1,
            ),
        ],
    )
    def test_day_crowded_by_the_sender_at_the_end_of_the_plan(
        self, lookahead: int, sends: dict[int, dt.date], moved: int, left: int
    ) -> None:
        # Cap 1, run on Sep 15: the plan's last emails are the AEP emails of
        # today (contacts 1-3; 1 stays), and the sender holds 2 emails for
        # Sep 16, a day over the cap with no planned email to move.
        held = [Row(n, "campaign_autumn", SEP_16, SEP_16, "scheduled") for n in (1, 2)]
        settings = capped(1, cap_lookahead_days=lookahead)
        outcome = plan_of(aep_only(3), SEP_15, held, settings)
        assert outcome.sends("aep") == sends
        assert outcome.tally["moved_by_cap"] == moved
        assert outcome.tally["left_over_cap"] == left

    def test_catch_up_dates_are_not_moved(self) -> None:
        # Seen on Sep 16, 7 birthday emails due Sep 15 are catch-ups whose
        # rows from the last run say Sep 20: the dates stay, over the cap.
        today = SEP_16
        birthday = D(2026, 9, 29)
        rows = [Row(n, "birthday", birthday, D(2026, 9, 20)) for n in range(1, 8)]
        rows += [Row(n, "aep", AEP_2026, SEP_15, "sent") for n in range(1, 8)]
        contacts = [Contact(n, birth="1950-09-29") for n in range(1, 8)]
        outcome = plan_of(contacts, today, rows, capped())
        assert outcome.sends("birthday") == spread((range(1, 8), D(2026, 9, 20)))
        assert outcome.tally["moved_by_cap"] == 0
        assert outcome.tally["left_over_cap"] == 2

    def test_post_window_email_is_not_moved_into_another_window(self) -> None:
        # TX with two rules (birthday and effective date, 0 days before, 30
        # after). Contact 7: birthday Jun 15 -> window 2026-04-16..2026-07-15
        # and a post-window email on Jul 16; policy anniversary Sep 15 ->
        # window 2026-07-17..2026-10-15. Contacts 1-6 (FL, no rules) have
        # birthday emails on Jul 16 too. The post-window email (priority 40)
        # is the first to go, but every day of Jul 17..23 lies in the second
        # window, where 6.4 says no post-window email may land.
        rules = [
            {"state": "TX", "rule": "birthday", "days_after": 30},
            {"state": "TX", "rule": "effective_date", "days_after": 30},
        ]
        settings = capped(sections={"state_rules": rules})
        contacts = [Contact(n, "FL", birth="1950-07-30") for n in range(1, 7)]
        contacts.append(Contact(7, "TX", birth="1950-06-15", effective="2020-09-15"))
        outcome = plan_of(contacts, MARCH_1, settings=settings)
        jul_16 = D(2026, 7, 16)
        post_window = [r for r in outcome.of_type("post_window") if r.send < SEP_15]
        assert [(r.event, r.send) for r in post_window] == [(D(2026, 7, 15), jul_16)]
        assert outcome.sends("birthday")[6] == D(2026, 7, 17)


DAY = D(2026, 5, 4)
TODAY = D(2026, 4, 20)


def later(days: int) -> dt.date:
    return DAY + days * ONE_DAY


def balanced(
    emails: list[Email], contacts: int, settings: Settings | None = None
) -> tuple[list[int], Counter[str]]:
    """Return each email's day after balancing (days after DAY) and the tally."""
    settings = settings or capped()
    inputs = inputs_of(aep_only(contacts), TODAY, settings=settings)
    context = Context.of(inputs, settings, to_days(TODAY))
    plan = hand_plan(emails, inputs.vocabulary)
    tally: Counter[str] = Counter()
    result = balance(context, plan, tally)
    return [int(d) - to_days(DAY) for d in result.send], tally


def birthdays(ids: range, day: dt.date = DAY, kept: bool = False) -> list[Email]:
    """Return birthday emails useful for 30 days after DAY."""
    return [Email(n, "birthday", day, 10, latest=later(30), kept=kept) for n in ids]


class TestCapOnHandBuiltPlans:
    """Day DAY holds the emails; TODAY is two weeks earlier; cap 5."""

    @pytest.mark.parametrize(
        ("emails", "contacts", "expected", "moved", "left"),
        [
            # catch-ups among the overflow stay where they are
            (
                birthdays(range(1, 6)) + birthdays(range(6, 8), kept=True),
                7,
                [0, 0, 0, 0, 0, 0, 0],
                0,
                2,
            ),
            # catch-ups among the five that stay change nothing
            (
                birthdays(range(1, 3), kept=True) + birthdays(range(3, 8)),
                7,
                [0, 0, 0, 0, 0, 1, 1],
                2,
                0,
            ),
            # priority first: the AEP emails of contacts 2 and 3 move
            (
                [Email(n, "aep", DAY, 30, latest=later(30)) for n in (1, 2, 3)]
                + birthdays(range(4, 8)),
                7,
                [0, 1, 1, 0, 0, 0, 0],
                2,
                0,
            ),
            # follow-ups fill the day; "birthday" sorts before "followup_"
            (
                birthdays(range(1, 6))
                + [
                    Email(n, "followup_1_cold", DAY, 10, latest=later(7))
                    for n in (1, 2)
                ],
                5,
                [0, 0, 0, 0, 0, 1, 1],
                2,
                0,
            ),
            # the next day is full (5): the overflow goes on to the day after
            (
                birthdays(range(1, 8)) + birthdays(range(8, 13), later(1)),
                12,
                [0] * 5 + [2, 2] + [1] * 5,
                2,
                0,
            ),
            # the next day has room for one
            (
                birthdays(range(1, 8)) + birthdays(range(8, 12), later(1)),
                11,
                [0] * 5 + [1, 2] + [1] * 4,
                2,
                0,
            ),
            # two crowded days in a row both spill onto the third
            (
                birthdays(range(1, 8)) + birthdays(range(8, 15), later(1)),
                14,
                [0] * 5 + [2, 2] + [1] * 5 + [2, 2],
                4,
                0,
            ),
            # contact 7's email is useful on DAY only
            (
                birthdays(range(1, 7)) + [Email(7, "birthday", DAY, 10)],
                7,
                [0, 0, 0, 0, 0, 1, 0],
                1,
                1,
            ),
            # contact 7's email may wait two days: the third day is too late
            (
                birthdays(range(1, 7))
                + birthdays(range(8, 13), later(1))
                + birthdays(range(13, 18), later(2))
                + [Email(7, "birthday", DAY, 10, latest=later(2))],
                17,
                [0] * 5 + [3] + [1] * 5 + [2] * 5 + [0],
                1,
                1,
            ),
        ],
    )
    def test_table(
        self,
        emails: list[Email],
        contacts: int,
        expected: list[int],
        moved: int,
        left: int,
    ) -> None:
        sends, tally = balanced(emails, contacts)
        assert sends == expected
        assert tally["moved_by_cap"] == moved
        assert tally["left_over_cap"] == left

    def test_plan_given_is_left_as_it_was(self) -> None:
        settings = capped()
        inputs = inputs_of(aep_only(7), TODAY, settings=settings)
        context = Context.of(inputs, settings, to_days(TODAY))
        plan = hand_plan(birthdays(range(1, 8)), inputs.vocabulary)
        balance(context, plan, Counter())
        assert (plan.send == to_days(DAY)).all()


class TestMoveCheck:
    """Contact 1 has a birthday email on DAY (useful until DAY + 5)."""

    @pytest.mark.parametrize(
        ("others", "target", "allowed"),
        [
            # the next day is free
            ([], 1, True),
            # the last useful day
            ([], 5, True),
            # a day after the latest useful date
            ([], 6, False),
            # before today (TODAY is 14 days before DAY)
            ([], -15, False),
            # today itself
            ([], -14, True),
            # the contact's AEP email is on the target day
            ([Email(1, "aep", later(3), 30)], 3, False),
            # ... and on the day after it
            ([Email(1, "aep", later(3), 30)], 4, True),
            # a follow-up on the target day does not block
            ([Email(1, "followup_1_cold", later(3), 10)], 3, True),
            # another contact's email does not block
            ([Email(2, "aep", later(3), 30)], 3, True),
            # an email skipped earlier does not block
            ([Email(1, "aep", later(3), 30, skipped=True)], 3, True),
        ],
    )
    def test_table(self, others: list[Email], target: int, allowed: bool) -> None:
        assert self.allowed(others, target, capped()) == allowed

    @pytest.mark.parametrize(
        ("others", "target", "allowed"),
        [
            # one other email 9 days after the target: 2 in 30 days is fine
            ([10], 1, True),
            # two others within 29 days of the target: refused
            ([10, 25], 1, False),
            # the second one 30 days after the target is out of reach
            ([10, 31], 1, True),
            # refused although no 30-day window would hold all three: the
            # check looks 29 days either way at once (conservative)
            ([-20, 25], 1, False),
        ],
    )
    def test_frequency_table(
        self, others: list[int], target: int, allowed: bool
    ) -> None:
        frequency = {"max_emails_per_period": 2, "period_days": 30}
        settings = capped(sections={"frequency": frequency})
        emails = [Email(1, f"campaign_{n}", later(d), 50) for n, d in enumerate(others)]
        assert self.allowed(emails, target, settings) == allowed

    @staticmethod
    def allowed(others: list[Email], target: int, settings: Settings) -> bool:
        inputs = inputs_of(aep_only(2), TODAY, settings=settings)
        vocabulary = inputs.vocabulary
        moving = Email(1, "birthday", DAY, 10, latest=later(5))
        plan = hand_plan([moving, *others], vocabulary)
        context = Context.of(inputs, settings, to_days(TODAY))
        check = MoveCheck(
            plan,
            inputs.contacts.state,
            context.dates,
            context.rules,
            settings,
            vocabulary,
            context.committed,
            context.today,
        )
        rows = np.array([0])
        return bool(check.allowed(plan, rows, np.array([to_days(later(target))]))[0])


POLICY = "2020-12-01"
"""A policy anniversary of Dec 1: its email is due on Nov 1, 2026."""
NOV_1 = D(2026, 11, 1)


def policies(count: int, state: str = "TX", birth: str = "") -> list[Contact]:
    return [
        Contact(n, state, birth=birth, effective=POLICY) for n in range(1, count + 1)
    ]


class TestSmoothing:
    """A cap of 10 makes the soft limit min(15, 0.3 * 10) = 3."""

    def test_at_the_soft_limit_nothing_moves(self) -> None:
        outcome = plan_of(policies(3), MARCH_1, settings=capped(10))
        assert outcome.sends("effective_date") == spread((range(1, 4), NOV_1))
        assert outcome.tally["moved_by_smoothing"] == 0

    @pytest.mark.parametrize(
        ("count", "width"),
        [
            # one over the soft limit, the default window of 5 days
            (4, 5),
            # a window of 3 days: at most one day either way
            (4, 3),
            # a window of 4 days reaches as far as one of 5 (w // 2 = 2)
            (8, 4),
            # many more
            (12, 7),
        ],
    )
    def test_one_over_spreads_within_half_the_window(
        self, count: int, width: int
    ) -> None:
        settings = capped(10, ed_smoothing_window_days=width)
        outcome = plan_of(policies(count), MARCH_1, settings=settings)
        sends = outcome.sends("effective_date")
        reach = (width // 2) * ONE_DAY
        assert set(sends) == set(range(1, count + 1))
        assert all(NOV_1 - reach <= day <= NOV_1 + reach for day in sends.values())
        moved = sum(day != NOV_1 for day in sends.values())
        assert moved > 0
        assert outcome.tally["moved_by_smoothing"] == moved

    def test_configured_soft_limit(self) -> None:
        # Cap 100, soft limit 2: three emails on one day are one too many.
        settings = Settings(load_balancing=LoadBalancing(ed_daily_soft_limit=2))
        two = plan_of(policies(2), MARCH_1, settings=settings)
        three = plan_of(policies(3), MARCH_1, settings=settings)
        assert set(two.sends("effective_date").values()) == {NOV_1}
        assert three.tally["moved_by_smoothing"] > 0

    def test_window_of_one_day_moves_nothing(self) -> None:
        settings = capped(10, ed_smoothing_window_days=1)
        outcome = plan_of(policies(8), MARCH_1, settings=settings)
        assert set(outcome.sends("effective_date").values()) == {NOV_1}
        assert outcome.tally["moved_by_smoothing"] == 0

    def test_offsets_are_stable(self) -> None:
        # An email's offset depends on its identity alone, not on the others.
        settings = capped(10)
        four = plan_of(policies(4), MARCH_1, settings=settings)
        eight = plan_of(policies(8), MARCH_1, settings=settings)
        first = eight.sends("effective_date")
        assert four.sends("effective_date") == {n: first[n] for n in range(1, 5)}

    def test_never_before_today(self) -> None:
        today = D(2026, 10, 31)
        outcome = plan_of(policies(12), today, settings=capped(10))
        sends = outcome.sends("effective_date").values()
        assert min(sends) == today
        assert max(sends) <= NOV_1 + 2 * ONE_DAY

    def test_never_into_a_window(self) -> None:
        # CA, born Jan 31: the window of the 2027 birthday starts Nov 2, 2026,
        # the day after the effective-date emails; none may move later.
        contacts = policies(12, "CA", birth="1950-01-31")
        outcome = plan_of(contacts, MARCH_1, settings=capped(10))
        sends = outcome.sends("effective_date").values()
        assert max(sends) == NOV_1
        assert min(sends) < NOV_1
        assert outcome.tally["moved_by_smoothing"] == sum(d != NOV_1 for d in sends)

    def test_a_crowded_day_stays_crowded_while_its_emails_go_out(self) -> None:
        # Seen on Oct 30, six Nov 1 emails crowd that day (soft limit 3) and
        # spread over Oct 30 .. Nov 3. By Nov 1 the sender took the three of
        # Oct 30 and 31: they still crowd Nov 1, so the other three keep
        # their days, although three alone would be no crowd.
        settings = capped(10)
        first = plan_of(policies(6), D(2026, 10, 30), settings=settings)
        sends = first.sends("effective_date")
        taken = {n for n, day in sends.items() if day < NOV_1}
        assert len(taken) == 3
        event = D(2026, 12, 1)
        rows = [
            Row(n, "effective_date", event, day, "sent" if n in taken else PENDING)
            for n, day in sends.items()
        ]
        later = plan_of(policies(6), NOV_1, rows, settings)
        kept = {n: day for n, day in sends.items() if n not in taken}
        assert later.sends("effective_date") == kept
        assert set(kept.values()) != {NOV_1}

    def test_a_move_that_is_refused_is_reported(self) -> None:
        # As in the window case above, without the window where none is.
        contacts = policies(12, "CA", birth="1950-01-31")
        outcome = plan_of(contacts, MARCH_1, settings=capped(10))
        free = plan_of(policies(12), MARCH_1, settings=capped(10))
        later = sum(day > NOV_1 for day in free.sends("effective_date").values())
        assert outcome.tally["not_smoothed"] == later > 0

    def test_kept_catch_ups_are_not_smoothed(self) -> None:
        # Seen on Nov 2, the Nov 1 emails are catch-ups kept on Nov 3.
        today = D(2026, 11, 2)
        rows = [
            Row(n, "effective_date", D(2026, 12, 1), D(2026, 11, 3))
            for n in range(1, 9)
        ]
        outcome = plan_of(policies(8), today, rows, capped(10))
        assert set(outcome.sends("effective_date").values()) == {D(2026, 11, 3)}
        assert outcome.tally["moved_by_smoothing"] == 0
