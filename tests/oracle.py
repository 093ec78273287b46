"""A second, deliberately plain implementation of the date rules.

The engine computes on numpy columns; this module works one contact and one
date at a time with `datetime.date`, straight from SPEC sections 5 and 6, so
the tests can compare the two. It imports nothing from the package except
the configuration (the `StateRule` record and the default rule table).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from email_scheduler.config import DEFAULT_STATE_RULES, StateRule

PRE_WINDOW_DAYS = 60

YEAR_ROUND: Literal["year-round"] = "year-round"

Window = tuple[dt.date, dt.date]
Verdict = Window | Literal["year-round"] | None


def is_leap(year: int) -> bool:
    """Return whether `year` has a Feb 29."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def anniversary(event: dt.date, year: int) -> dt.date:
    """Return the anniversary of `event` in `year` (Feb 29 -> Feb 28)."""
    if (event.month, event.day) == (2, 29) and not is_leap(year):
        return dt.date(year, 2, 28)
    return dt.date(year, event.month, event.day)


def next_anniversary(event: dt.date, today: dt.date) -> dt.date:
    """Return the first anniversary of `event` that is `today` or later."""
    this_year = anniversary(event, today.year)
    return this_year if this_year >= today else anniversary(event, today.year + 1)


def months_elapsed(start: dt.date, end: dt.date) -> int:
    """Return whole months from `start` to `end`, as SPEC 5.3 defines them."""
    months = 12 * (end.year - start.year) + (end.month - start.month)
    return months - (1 if end.day < start.day else 0)


def age_on(birth: dt.date, day: dt.date) -> int:
    """Return the age in whole years on `day`."""
    had_birthday = (day.month, day.day) >= (birth.month, birth.day)
    return day.year - birth.year - (0 if had_birthday else 1)


def _applies(rule: StateRule, birth: dt.date | None, day: dt.date) -> bool:
    if rule.valid_from is not None and day < rule.valid_from:
        return False
    if rule.valid_to is not None and day > rule.valid_to:
        return False
    if birth is None:
        return True
    age = age_on(birth, day)
    if rule.min_age is not None and age < rule.min_age:
        return False
    return rule.max_age is None or age <= rule.max_age


def rule_window(
    rule: StateRule,
    birth: dt.date | None,
    effective: dt.date | None,
    year: int,
    pre_window: int = PRE_WINDOW_DAYS,
) -> Window | None:
    """Return the window of a dated rule anchored in `year`, if it has one."""
    base = birth if rule.rule == "birthday" else effective
    if base is None:
        return None
    if rule.rule == "effective_date" and year <= base.year:
        return None  # the effective date itself is not an anniversary
    anchor = anniversary(base, year)
    if rule.anchor == "month_start":
        anchor = anchor.replace(day=1)
    start = anchor - dt.timedelta(days=rule.days_before + pre_window)
    return start, anchor + dt.timedelta(days=rule.days_after)


def exclusion(
    state: str | None,
    birth: dt.date | None,
    effective: dt.date | None,
    day: dt.date,
    rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES,
    pre_window: int = PRE_WINDOW_DAYS,
) -> Verdict:
    """Return the first window of the contact's state holding `day`, if any."""
    for rule in rules:
        if rule.state != state or not _applies(rule, birth, day):
            continue
        if rule.rule == "year_round":
            return YEAR_ROUND
        for year in (day.year - 1, day.year, day.year + 1):
            window = rule_window(rule, birth, effective, year, pre_window)
            if window is not None and window[0] <= day <= window[1]:
                return window
    return None


def excluded(
    state: str | None,
    birth: dt.date | None,
    effective: dt.date | None,
    day: dt.date,
    rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES,
    pre_window: int = PRE_WINDOW_DAYS,
) -> bool:
    """Return whether `day` lies in any exclusion window of the contact."""
    return exclusion(state, birth, effective, day, rules, pre_window) is not None
