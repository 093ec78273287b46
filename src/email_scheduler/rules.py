"""State exclusion rules turned into windows over columns of dates.

A window rule of a state has an anchor date each year: the anniversary of
the contact's birth date (for Nevada, the first day of that anniversary's
month) or of the policy's effective date. Its exclusion window is the
closed interval

    [anchor - days_before - pre_window_exclusion_days, anchor + days_after]

The pre-window keeps a policy bought just before the statutory window from
starting inside it. Windows can cross New Year, so a date D is checked
against the windows anchored in D.year - 1, D.year and D.year + 1.
Effective-date windows exist only from the policy's first anniversary on.
A year-round rule excludes every date. A rule may be limited to an age range
(age on the checked date; a contact without birth date is in range) and to
the dates from `valid_from` to `valid_to`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from email_scheduler.calendar import (
    MISSING,
    Days,
    Ints,
    age_on,
    anniversary,
    civil,
    date_days,
    from_days,
    to_days,
)
from email_scheduler.config import StateRule
from email_scheduler.contacts import Contacts
from email_scheduler.geography import state_index

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BirthColumns:
    """Birth and effective dates split into year, month and day columns."""

    birth_year: Ints
    birth_month: Ints
    birth_day: Ints
    effective_year: Ints
    effective_month: Ints
    effective_day: Ints

    @staticmethod
    def of(contacts: Contacts) -> BirthColumns:
        """Return the split dates of every contact (missing dates give -1)."""
        by, bm, bd = _split(contacts.birth)
        ey, em, ed = _split(contacts.effective)
        return BirthColumns(by, bm, bd, ey, em, ed)

    def narrowed(self) -> BirthColumns:
        """Return the columns as 16-bit integers, to hold a whole org's."""
        return BirthColumns(
            *(getattr(self, f.name).astype(np.int16) for f in fields(BirthColumns))
        )

    @staticmethod
    def concat(parts: list[BirthColumns]) -> BirthColumns:
        """Return the columns of every part, in order."""
        return BirthColumns(
            *(
                np.concatenate(
                    [getattr(p, f.name) for p in parts] or [np.zeros(0, int)]
                )
                for f in fields(BirthColumns)
            )
        )


def _split(days: Days) -> tuple[Ints, Ints, Ints]:
    present = days != MISSING
    year, month, day = civil(np.where(present, days, 0))
    return (
        np.where(present, year, -1),
        np.where(present, month, -1),
        np.where(present, day, -1),
    )


@dataclass(frozen=True)
class Exclusions:
    """For each checked date: the first window holding it, if any."""

    hit: Mask
    rule: Ints
    """Index of the rule in the rule table, -1 where no window holds the date."""
    start: Days
    end: Days
    """Window bounds; MISSING for year-round rules and where nothing holds."""


class RuleBook:
    """The configured state rules, checked against columns of dates."""

    def __init__(self, rules: tuple[StateRule, ...], pre_window_days: int) -> None:
        self.rules = rules
        self.pre_window_days = pre_window_days
        index = state_index()
        self._state = [index.get(rule.state, -1) for rule in rules]

    def in_dated_states(self, state: npt.NDArray[np.int16]) -> Mask:
        """Return which contacts live in a state with a dated (birthday or
        effective-date) rule: no other contact's date is ever in a dated window."""
        codes = [
            code
            for code, rule in zip(self._state, self.rules, strict=True)
            if rule.rule != "year_round"
        ]
        return np.isin(state, codes)

    def window(
        self, number: int, dates: BirthColumns, at: Ints, year: Ints
    ) -> tuple[Days, Days, Mask]:
        """Return (start, end, exists) of rule `number`'s window anchored in `year`.

        `at` selects the contacts (positions into `dates`).
        """
        rule = self.rules[number]
        if rule.rule == "birthday":
            month, day = dates.birth_month[at], dates.birth_day[at]
            exists = month > 0
        else:
            month, day = dates.effective_month[at], dates.effective_day[at]
            exists = (month > 0) & (year > dates.effective_year[at])
        month = np.where(exists, month, 1)
        day = np.where(exists, day, 1)
        if rule.anchor == "month_start":
            anchor = date_days(year, month, np.ones_like(day))
        else:
            anchor = anniversary(month, day, year)
        start = anchor - rule.days_before - self.pre_window_days
        return start, anchor + rule.days_after, exists

    def _applies(self, number: int, dates: BirthColumns, at: Ints, on: Days) -> Mask:
        rule = self.rules[number]
        applies = np.ones(len(at), dtype=bool)
        if rule.valid_from is not None:
            applies &= on >= to_days(rule.valid_from)
        if rule.valid_to is not None:
            applies &= on <= to_days(rule.valid_to)
        if rule.min_age is not None or rule.max_age is not None:
            born = dates.birth_year[at] > 0
            age = age_on(
                dates.birth_year[at],
                np.where(born, dates.birth_month[at], 1),
                np.where(born, dates.birth_day[at], 1),
                on,
            )
            if rule.min_age is not None:
                applies &= ~born | (age >= rule.min_age)
            if rule.max_age is not None:
                applies &= ~born | (age <= rule.max_age)
        return applies

    def exclusions(
        self,
        state: npt.NDArray[np.int16],
        dates: BirthColumns,
        at: Ints,
        on: Days,
        *,
        dated_only: bool = False,
    ) -> Exclusions:
        """Return which dates `on` fall inside a window of contact `at`.

        `state` is the state column of all contacts; `at[i]` is the contact
        whose date `on[i]` is checked. With `dated_only`, year-round rules
        are ignored (used to place post-window emails).
        """
        n = len(at)
        hit = np.zeros(n, dtype=bool)
        rule_of = np.full(n, -1, dtype=np.int64)
        start = np.full(n, MISSING, dtype=np.int64)
        end = np.full(n, MISSING, dtype=np.int64)
        # Dates grouped by state (a stable sort keeps each group in order),
        # so that each rule looks only at the dates of its own state.
        states = state[at]
        by_state = np.argsort(states, kind="stable")
        states = states[by_state]
        for number, rule in enumerate(self.rules):
            if dated_only and rule.rule == "year_round":
                continue
            code = self._state[number]
            lo, hi = np.searchsorted(states, [code, code + 1])
            rows = by_state[lo:hi]
            rows = rows[~hit[rows]]
            if len(rows) == 0:
                continue
            rows = rows[self._applies(number, dates, at[rows], on[rows])]
            if rule.rule == "year_round":
                hit[rows] = True
                rule_of[rows] = number
                continue
            check_year = civil(on[rows])[0]
            for shift in (-1, 0, 1):
                first, last, exists = self.window(
                    number, dates, at[rows], check_year + shift
                )
                inside = exists & (first <= on[rows]) & (on[rows] <= last) & ~hit[rows]
                chosen = rows[inside]
                hit[chosen] = True
                rule_of[chosen] = number
                start[chosen] = first[inside]
                end[chosen] = last[inside]
        return Exclusions(hit, rule_of, start, end)

    def describe(self, number: int, start: int, end: int) -> str:
        """Return the skip reason naming a rule, its state and the window."""
        rule = self.rules[number]
        return _reason(rule.state, rule.rule, start, end)


@lru_cache(maxsize=1 << 16)
def _reason(state: str, rule: str, start: int, end: int) -> str:
    """Return the skip reason of a window. The same few thousand windows
    recur in every partition of a run, so the texts are kept."""
    if rule == "year_round":
        return f"exclusion window: {state} year-round"
    return (
        f"exclusion window: {state} {rule} "
        f"{from_days(start).isoformat()}..{from_days(end).isoformat()}"
    )
