"""Tests of the state exclusion windows in `email_scheduler.rules`.

Every table row is one contact and one checked date; each row is also run
through the scalar oracle, so the tables pin both implementations.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import oracle
from email_scheduler.calendar import MISSING, from_days, to_days
from email_scheduler.config import DEFAULT_STATE_RULES, StateRule
from email_scheduler.contacts import state_position
from email_scheduler.rules import BirthColumns, Exclusions, RuleBook

D = dt.date
PRE_WINDOW = 60
YEAR_ROUND = oracle.YEAR_ROUND


def _split(days: list[dt.date | None]) -> tuple[np.ndarray, ...]:
    year = np.array([d.year if d else -1 for d in days], dtype=np.int64)
    month = np.array([d.month if d else -1 for d in days], dtype=np.int64)
    day = np.array([d.day if d else -1 for d in days], dtype=np.int64)
    return year, month, day


def check(
    state: str | None,
    birth: dt.date | None,
    effective: dt.date | None,
    day: dt.date,
    rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES,
    *,
    dated_only: bool = False,
) -> tuple[RuleBook, Exclusions]:
    """Return the rule book and its verdict for one contact on one day."""
    book = RuleBook(rules, PRE_WINDOW)
    states = np.array([state_position(state) if state else -1], dtype=np.int16)
    dates = BirthColumns(*_split([birth]), *_split([effective]))
    at = np.zeros(1, dtype=np.int64)
    on = np.array([to_days(day)], dtype=np.int64)
    return book, book.exclusions(states, dates, at, on, dated_only=dated_only)


def verdict(found: Exclusions) -> oracle.Verdict:
    """Return the engine's verdict in the oracle's terms."""
    if not found.hit[0]:
        return None
    if found.start[0] == MISSING:
        return YEAR_ROUND
    return from_days(int(found.start[0])), from_days(int(found.end[0]))


def assert_verdict(
    state: str | None,
    birth: dt.date | None,
    effective: dt.date | None,
    day: dt.date,
    expected: oracle.Verdict,
    rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES,
) -> None:
    _, found = check(state, birth, effective, day, rules)
    assert verdict(found) == expected
    assert oracle.exclusion(state, birth, effective, day, rules) == expected


class TestWindowEdges:
    """Each dated default rule: first and last excluded day and their neighbours."""

    @pytest.mark.parametrize(
        ("state", "birth", "effective", "start", "end"),
        [
            # CA: June 15 - 30 - 60 .. June 15 + 60 (the SPEC's example)
            ("CA", D(1950, 6, 15), None, D(2026, 3, 17), D(2026, 8, 14)),
            # ID: Apr 10 - 60 .. Apr 10 + 63
            ("ID", D(1951, 4, 10), None, D(2026, 2, 9), D(2026, 6, 12)),
            # KY: Sep 1 - 60 .. Sep 1 + 60
            ("KY", D(1952, 9, 1), None, D(2026, 7, 3), D(2026, 10, 31)),
            # MD: Nov 30 - 60 .. Nov 30 + 30
            ("MD", D(1953, 11, 30), None, D(2026, 10, 1), D(2026, 12, 30)),
            # NV: anchor Jul 1 (birth month start, not Jul 20) - 60 .. + 60
            ("NV", D(1954, 7, 20), None, D(2026, 5, 2), D(2026, 8, 30)),
            # OK: Feb 14 - 60 .. + 60, starting the previous December
            ("OK", D(1955, 2, 14), None, D(2025, 12, 16), D(2026, 4, 15)),
            # OR: Aug 31 - 60 .. + 31
            ("OR", D(1956, 8, 31), None, D(2026, 7, 2), D(2026, 10, 1)),
            # VA: May 5 - 60 .. + 30
            ("VA", D(1957, 5, 5), None, D(2026, 3, 6), D(2026, 6, 4)),
            # MO: effective-date anniversary May 20 - 30 - 60 .. + 33
            ("MO", D(1950, 1, 1), D(2020, 5, 20), D(2026, 2, 19), D(2026, 6, 22)),
        ],
    )
    def test_edges(
        self,
        state: str,
        birth: dt.date,
        effective: dt.date | None,
        start: dt.date,
        end: dt.date,
    ) -> None:
        window = (start, end)
        one = dt.timedelta(days=1)
        assert_verdict(state, birth, effective, start - one, None)
        assert_verdict(state, birth, effective, start, window)
        assert_verdict(state, birth, effective, end, window)
        assert_verdict(state, birth, effective, end + one, None)


class TestYearRound:
    @pytest.mark.parametrize(
        ("state", "birth", "day"),
        [
            ("CT", D(1950, 6, 15), D(2026, 1, 1)),  # first day of a year
            ("MA", D(1950, 6, 15), D(2026, 6, 15)),  # on the birthday
            ("NY", D(1950, 6, 15), D(2026, 12, 31)),  # last day of a year
            ("WA", None, D(2026, 9, 15)),  # no birth date needed
            ("NY", None, D(2028, 2, 29)),  # leap day
        ],
    )
    def test_every_day_excluded(
        self, state: str, birth: dt.date | None, day: dt.date
    ) -> None:
        assert_verdict(state, birth, None, day, YEAR_ROUND)

    def test_ignored_when_dated_only(self) -> None:
        # Post-window emails look for dated windows only.
        _, found = check("NY", D(1950, 6, 15), None, D(2026, 6, 1), dated_only=True)
        assert not found.hit[0]


class TestNoWindow:
    @pytest.mark.parametrize(
        ("state", "birth", "effective", "day"),
        [
            ("TX", D(1950, 6, 15), D(2020, 5, 20), D(2026, 6, 15)),  # no rule
            (None, D(1950, 6, 15), None, D(2026, 6, 15)),  # unknown state
            ("CA", None, D(2020, 6, 15), D(2026, 6, 15)),  # no birth date
            ("NV", None, None, D(2026, 6, 1)),  # no birth date
            ("MO", D(1950, 6, 15), None, D(2026, 6, 15)),  # no effective date
            ("CA", D(1950, 6, 15), None, D(2026, 2, 1)),  # outside the window
        ],
    )
    def test_table(
        self,
        state: str | None,
        birth: dt.date | None,
        effective: dt.date | None,
        day: dt.date,
    ) -> None:
        assert_verdict(state, birth, effective, day, None)


class TestNevadaMonthStart:
    @pytest.mark.parametrize(
        ("birth", "day", "expected"),
        [
            # born Jul 31: anchor Jul 1, so the window ends Aug 30, not Sep 29
            (D(1954, 7, 31), D(2026, 8, 30), (D(2026, 5, 2), D(2026, 8, 30))),
            (D(1954, 7, 31), D(2026, 8, 31), None),  # a day after it
            # born Jul 1: the anchor is the birthday itself
            (D(1954, 7, 1), D(2026, 5, 2), (D(2026, 5, 2), D(2026, 8, 30))),
            (D(1954, 7, 1), D(2026, 5, 1), None),  # a day before it
            # born Feb 29: anchor Feb 1 in leap and non-leap years alike
            (D(1952, 2, 29), D(2025, 12, 3), (D(2025, 12, 3), D(2026, 4, 2))),
            (D(1952, 2, 29), D(2026, 4, 3), None),  # after the 2026 window
            (D(1952, 2, 29), D(2028, 4, 1), (D(2027, 12, 3), D(2028, 4, 1))),
            # born Jan 20: anchor Jan 1, window starts in early November
            (D(1954, 1, 20), D(2025, 11, 2), (D(2025, 11, 2), D(2026, 3, 2))),
            (D(1954, 1, 20), D(2025, 11, 1), None),  # a day before it
        ],
    )
    def test_table(
        self, birth: dt.date, day: dt.date, expected: oracle.Verdict
    ) -> None:
        assert_verdict("NV", birth, None, day, expected)


class TestEffectiveDateWindow:
    @pytest.mark.parametrize(
        ("effective", "day", "expected"),
        [
            # policy from 2025-09-01: the effective date itself has no window
            (D(2025, 9, 1), D(2025, 9, 1), None),
            (D(2025, 9, 1), D(2025, 7, 1), None),  # before the policy began
            (D(2025, 9, 1), D(2025, 10, 4), None),  # 33 days after it
            (D(2025, 9, 1), D(2026, 6, 2), None),  # day before the first window
            # first anniversary 2026-09-01: window Jun 3 .. Oct 4
            (D(2025, 9, 1), D(2026, 6, 3), (D(2026, 6, 3), D(2026, 10, 4))),
            (D(2025, 9, 1), D(2026, 10, 4), (D(2026, 6, 3), D(2026, 10, 4))),
            (D(2025, 9, 1), D(2026, 10, 5), None),  # day after it
            # policy from 2025-01-20: the first window starts in 2025
            (D(2025, 1, 20), D(2025, 10, 22), (D(2025, 10, 22), D(2026, 2, 22))),
            (D(2025, 1, 20), D(2025, 10, 21), None),  # day before it
            # policy from 2025-12-01: nothing around the effective date itself
            (D(2025, 12, 1), D(2025, 12, 15), None),
            (D(2025, 12, 1), D(2026, 1, 3), None),
            # ... but the first anniversary's window crosses New Year
            (D(2025, 12, 1), D(2027, 1, 3), (D(2026, 9, 2), D(2027, 1, 3))),
            (D(2025, 12, 1), D(2027, 1, 4), None),  # day after it
            # a policy of Feb 29: Feb 28 anniversaries outside leap years
            (D(2024, 2, 29), D(2025, 4, 2), (D(2024, 11, 30), D(2025, 4, 2))),
            (D(2024, 2, 29), D(2025, 4, 3), None),  # day after it
        ],
    )
    def test_table(
        self, effective: dt.date, day: dt.date, expected: oracle.Verdict
    ) -> None:
        assert_verdict("MO", D(1950, 6, 15), effective, day, expected)


class TestNewYear:
    @pytest.mark.parametrize(
        ("state", "birth", "day", "expected"),
        [
            # CA born Jan 10: the window starts 90 days before, in October
            ("CA", D(1950, 1, 10), D(2025, 10, 11), None),
            ("CA", D(1950, 1, 10), D(2025, 10, 12), (D(2025, 10, 12), D(2026, 3, 11))),
            ("CA", D(1950, 1, 10), D(2025, 12, 31), (D(2025, 10, 12), D(2026, 3, 11))),
            ("CA", D(1950, 1, 10), D(2026, 1, 1), (D(2025, 10, 12), D(2026, 3, 11))),
            ("CA", D(1950, 1, 10), D(2026, 3, 12), None),  # day after it
            # ... and in October 2026 the 2027 window has begun
            ("CA", D(1950, 1, 10), D(2026, 10, 12), (D(2026, 10, 12), D(2027, 3, 11))),
            # OK born Jan 10: the 60-day pre-window starts in November
            ("OK", D(1950, 1, 10), D(2026, 11, 10), None),
            ("OK", D(1950, 1, 10), D(2026, 11, 11), (D(2026, 11, 11), D(2027, 3, 11))),
            # MD born Dec 20: the window ends in January of the next year
            ("MD", D(1950, 12, 20), D(2027, 1, 19), (D(2026, 10, 21), D(2027, 1, 19))),
            ("MD", D(1950, 12, 20), D(2027, 1, 20), None),  # day after it
            ("MD", D(1950, 12, 20), D(2026, 1, 19), (D(2025, 10, 21), D(2026, 1, 19))),
        ],
    )
    def test_table(
        self, state: str, birth: dt.date, day: dt.date, expected: oracle.Verdict
    ) -> None:
        assert_verdict(state, birth, None, day, expected)


class TestLeapDayBirthday:
    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            # 2026 has no Feb 29: anchor Feb 28, window 2025-11-30 .. 2026-04-29
            (D(2025, 11, 29), None),
            (D(2025, 11, 30), (D(2025, 11, 30), D(2026, 4, 29))),
            (D(2026, 4, 29), (D(2025, 11, 30), D(2026, 4, 29))),
            (D(2026, 4, 30), None),
            # 2028 has one: anchor Feb 29, window 2027-12-01 .. 2028-04-29
            (D(2027, 11, 30), None),
            (D(2027, 12, 1), (D(2027, 12, 1), D(2028, 4, 29))),
            (D(2028, 2, 29), (D(2027, 12, 1), D(2028, 4, 29))),
            (D(2028, 4, 29), (D(2027, 12, 1), D(2028, 4, 29))),
            (D(2028, 4, 30), None),
            # 2100 is not a leap year: anchor Feb 28
            (D(2100, 4, 29), (D(2099, 11, 30), D(2100, 4, 29))),
            (D(2100, 4, 30), None),
        ],
    )
    def test_california(self, day: dt.date, expected: oracle.Verdict) -> None:
        assert_verdict("CA", D(1952, 2, 29), None, day, expected)


def _rule(**fields: object) -> tuple[StateRule, ...]:
    return (StateRule.model_validate({"state": "TX", **fields}),)


UNDER_65 = _rule(rule="year_round", max_age=64)
FROM_65 = _rule(rule="year_round", min_age=65)
AGED_65_TO_70 = _rule(rule="birthday", days_after=30, min_age=65, max_age=70)
FROM_2027 = _rule(rule="year_round", valid_from=D(2027, 1, 1))
UNTIL_JUNE = _rule(rule="year_round", valid_to=D(2026, 6, 30))
FROM_JUNE = _rule(rule="birthday", days_after=30, valid_from=D(2026, 6, 1))


class TestAgeRange:
    @pytest.mark.parametrize(
        ("rules", "birth", "day", "expected"),
        [
            # up to 64: excluded the day before turning 65
            (UNDER_65, D(1961, 6, 15), D(2026, 6, 14), YEAR_ROUND),
            # ... and free from the 65th birthday on
            (UNDER_65, D(1961, 6, 15), D(2026, 6, 15), None),
            # a contact without birth date is treated as in range
            (UNDER_65, None, D(2026, 6, 15), YEAR_ROUND),
            # from 65: not yet on the eve of the birthday
            (FROM_65, D(1961, 6, 15), D(2026, 6, 14), None),
            # ... from the birthday on
            (FROM_65, D(1961, 6, 15), D(2026, 6, 15), YEAR_ROUND),
            # ... and without birth date
            (FROM_65, None, D(2026, 1, 1), YEAR_ROUND),
            # birthday window for 65..70: aged 66 on the checked date
            (
                AGED_65_TO_70,
                D(1960, 6, 15),
                D(2026, 6, 20),
                (D(2026, 4, 16), D(2026, 7, 15)),
            ),
            # ... aged 71 on the checked date: out of range
            (AGED_65_TO_70, D(1955, 6, 15), D(2026, 6, 20), None),
            # ... aged 64 on the checked date, inside the window of the
            # birthday on which the contact turns 65: the age that counts is
            # the age on the checked date
            (AGED_65_TO_70, D(1961, 6, 15), D(2026, 6, 1), None),
            # ... aged 65 from the birthday on
            (
                AGED_65_TO_70,
                D(1961, 6, 15),
                D(2026, 6, 15),
                (D(2026, 4, 16), D(2026, 7, 15)),
            ),
        ],
    )
    def test_table(
        self,
        rules: tuple[StateRule, ...],
        birth: dt.date | None,
        day: dt.date,
        expected: oracle.Verdict,
    ) -> None:
        assert_verdict("TX", birth, None, day, expected, rules)


class TestValidity:
    @pytest.mark.parametrize(
        ("rules", "day", "expected"),
        [
            # a law starting on 2027-01-01, configured ahead of time: not yet
            (FROM_2027, D(2026, 12, 31), None),
            # ... in force on its first day
            (FROM_2027, D(2027, 1, 1), YEAR_ROUND),
            # a law ending on 2026-06-30: its last day is included
            (UNTIL_JUNE, D(2026, 6, 30), YEAR_ROUND),
            # ... and it is gone the day after
            (UNTIL_JUNE, D(2026, 7, 1), None),
            # a birthday window whose law starts in the middle of the window
            (FROM_JUNE, D(2026, 5, 31), None),
            # ... holds from that day on
            (FROM_JUNE, D(2026, 6, 1), (D(2026, 4, 16), D(2026, 7, 15))),
        ],
    )
    def test_table(
        self, rules: tuple[StateRule, ...], day: dt.date, expected: oracle.Verdict
    ) -> None:
        assert_verdict("TX", D(1950, 6, 15), None, day, expected, rules)

    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            # the old 30-day window still holds on its last valid day
            (D(2026, 12, 31), (D(2026, 11, 1), D(2027, 1, 30))),
            # from 2027 the new 10-day window replaces it
            (D(2027, 1, 10), (D(2026, 11, 1), D(2027, 1, 10))),
            # inside the old window, outside the new one
            (D(2027, 1, 11), None),
        ],
    )
    def test_law_change(self, day: dt.date, expected: oracle.Verdict) -> None:
        old = StateRule(
            state="TX", rule="birthday", days_after=30, valid_to=D(2026, 12, 31)
        )
        new = StateRule(
            state="TX", rule="birthday", days_after=10, valid_from=D(2027, 1, 1)
        )
        assert_verdict("TX", D(1950, 12, 31), None, day, expected, (old, new))


class TestDescribe:
    @pytest.mark.parametrize(
        ("state", "birth", "effective", "day", "reason"),
        [
            # the SPEC's example
            (
                "CA",
                D(1950, 6, 15),
                None,
                D(2026, 6, 1),
                "exclusion window: CA birthday 2026-03-17..2026-08-14",
            ),
            # a window crossing New Year names both years
            (
                "MD",
                D(1950, 12, 20),
                None,
                D(2027, 1, 1),
                "exclusion window: MD birthday 2026-10-21..2027-01-19",
            ),
            # an effective-date window
            (
                "MO",
                D(1950, 1, 1),
                D(2020, 5, 20),
                D(2026, 4, 20),
                "exclusion window: MO effective_date 2026-02-19..2026-06-22",
            ),
            # a year-round rule has no dates
            (
                "NY",
                D(1950, 6, 15),
                None,
                D(2026, 6, 1),
                "exclusion window: NY year-round",
            ),
            ("WA", None, None, D(2026, 6, 1), "exclusion window: WA year-round"),
        ],
    )
    def test_table(
        self,
        state: str,
        birth: dt.date | None,
        effective: dt.date | None,
        day: dt.date,
        reason: str,
    ) -> None:
        book, found = check(state, birth, effective, day)
        assert found.hit[0]
        described = book.describe(
            int(found.rule[0]), int(found.start[0]), int(found.end[0])
        )
        assert described == reason


class TestColumns:
    def test_many_contacts_at_once(self) -> None:
        """Checking a column gives the same answers as checking row by row."""
        people = [
            ("CA", D(1950, 6, 15), None),
            ("NV", D(1952, 2, 29), None),
            ("MO", D(1950, 1, 1), D(2024, 12, 31)),
            ("NY", None, None),
            ("TX", D(1950, 6, 15), None),
            ("MD", D(1950, 12, 20), None),
        ]
        days = [D(2025, 1, 1) + dt.timedelta(days=17 * i) for i in range(60)]
        at = np.repeat(np.arange(len(people)), len(days))
        on = np.array([to_days(d) for d in days] * len(people), dtype=np.int64)
        states = np.array([state_position(s) for s, _, _ in people], dtype=np.int16)
        dates = BirthColumns(
            *_split([b for _, b, _ in people]), *_split([e for _, _, e in people])
        )
        found = RuleBook(DEFAULT_STATE_RULES, PRE_WINDOW).exclusions(
            states, dates, at, on
        )
        expected = [
            oracle.excluded(state, birth, effective, day)
            for state, birth, effective in people
            for day in days
        ]
        assert found.hit.tolist() == expected
