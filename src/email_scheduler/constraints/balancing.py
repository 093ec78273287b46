"""Daily volume (SPEC 8.3): effective-date smoothing and the daily cap.

The daily cap is a share of the org's eligible contacts, with a floor so a
small org is not balanced into nonsense. Two stages move emails:

- Smoothing: on a day that is the ideal date of more effective-date emails
  than the soft limit, each of them moves by a stable offset within half
  the smoothing window either way (never before today): policies cluster
  on the first of the month, and so do their anniversary emails.
- Cap enforcement: on a day with more than cap * overage_threshold emails,
  the `cap` highest-priority emails stay and the rest move forward to the
  next days with spare capacity, at most `cap_lookahead_days` ahead.

Every move is checked by `MoveCheck` (windows, one email a day, frequency
limit, latest useful date); an email that cannot move stays, and is
counted (`not_smoothed`, `left_over_cap`). Dates kept from an existing
row (catch-ups) never move, so dates do not creep from run to run. Ties
are broken by kind and contact id, so the same inputs always give the
same dates.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from email_scheduler.calendar import MISSING, Ints, stable_offset
from email_scheduler.config import Settings
from email_scheduler.constraints.occupancy import Committed, MoveCheck, sorting_rank
from email_scheduler.plan import M, Movable, Vocabulary

EFFECTIVE_DATE = "effective_date"


def _floor(value: float) -> int:
    """Return floor(value), reading 28.999999999999996 (100 * 0.29) as 29."""
    return math.floor(round(value, 9))


@dataclass(frozen=True)
class Limits:
    """The daily limits in force for a run."""

    daily_cap: int
    ed_soft_limit: int
    overage_limit: int
    """Days with more emails than this are balanced."""

    @staticmethod
    def of(settings: Settings, eligible_contacts: int) -> Limits:
        """Return the limits for an org with this many eligible contacts."""
        rules = settings.load_balancing
        cap = max(
            _floor(eligible_contacts * rules.daily_send_percentage_cap),
            rules.daily_cap_floor,
        )
        return Limits(
            daily_cap=cap,
            ed_soft_limit=min(rules.ed_daily_soft_limit, _floor(0.3 * cap)),
            overage_limit=_floor(cap * rules.overage_threshold),
        )


def _move(plan: Movable, check: MoveCheck, rows: Ints, target: Ints) -> None:
    """Move emails in place; `plan.send` must be this stage's own copy."""
    check.record(plan, rows, target)
    plan.send[rows] = target


def smooth_effective_dates(
    plan: M,
    check: MoveCheck,
    limits: Limits,
    committed: Committed,
    settings: Settings,
    vocabulary: Vocabulary,
    tally: Counter[str],
) -> M:
    """Return the plan with clustered effective-date emails spread out.

    A day is crowded when more effective-date emails than the soft limit
    have it as their ideal date, counting those the sender already holds
    (sent early by an earlier run's smoothing, say): so a day stays crowded
    while its emails go out, and the ones still planned keep their offsets
    from run to run. Kept dates (catch-ups) are never moved.
    """
    kind = vocabulary.kind(EFFECTIVE_DATE)
    movable = (plan.kind == kind) & ~plan.skipped & ~plan.kept
    handed = committed.event[committed.kind == kind]
    handed = handed[handed != MISSING] - settings.timing.effective_date_days_before
    ideal = np.concatenate([plan.send[movable], handed[handed >= check.today]])
    days, counts = np.unique(ideal, return_counts=True)
    crowded = days[counts > limits.ed_soft_limit]
    rows = np.flatnonzero(movable & np.isin(plan.send, crowded))
    if not len(rows):
        return plan
    width = settings.load_balancing.ed_smoothing_window_days
    offset = stable_offset(
        plan.contact_id[rows], EFFECTIVE_DATE, plan.event[rows], 2 * (width // 2) + 1
    )
    target = np.maximum(plan.send[rows] + offset - width // 2, check.today)
    moving = target != plan.send[rows]
    rows, target = rows[moving], target[moving]
    allowed = check.allowed(plan, rows, target)
    tally["moved_by_smoothing"] += int(allowed.sum())
    tally["not_smoothed"] += int((~allowed).sum())
    plan = plan.with_(send=plan.send.copy())
    _move(plan, check, rows[allowed], target[allowed])
    return plan


def _first_movable(
    plan: Movable, check: MoveCheck, overflow: Ints, day: int, spare: int
) -> Ints:
    """Return the first `spare` emails of `overflow` (in order) that may move
    to `day`, at most one per contact: two could not share the day.

    Overflow is checked a slice at a time, since a day's spare room is
    usually filled long before the overflow of a crowded day is exhausted.
    """
    chosen: list[Ints] = []
    seen = np.zeros(0, dtype=np.int64)
    found = 0
    size = max(2 * spare, 1024)
    for at in range(0, len(overflow), size):
        rows = overflow[at : at + size]
        rows = rows[check.allowed(plan, rows, np.full(len(rows), day))]
        contact = plan.contact_id[rows]
        _, first = np.unique(contact, return_index=True)
        first = np.sort(first)
        rows, contact = rows[first], contact[first]
        fresh = ~np.isin(contact, seen)
        rows = rows[fresh][: spare - found]
        chosen.append(rows)
        found += len(rows)
        if found >= spare:
            break
        seen = np.concatenate([seen, contact[fresh]])
    return np.concatenate(chosen or [np.zeros(0, dtype=np.int64)])


def enforce_daily_cap(
    plan: M,
    check: MoveCheck,
    limits: Limits,
    committed: Committed,
    settings: Settings,
    vocabulary: Vocabulary,
    tally: Counter[str],
) -> M:
    """Return the plan with overflow of over-full days moved to later days."""
    going = np.flatnonzero(~plan.skipped)
    if not len(going):
        return plan
    today = check.today
    lookahead = settings.load_balancing.cap_lookahead_days
    fixed = committed.volume[committed.volume >= today] - today
    last = max(int(plan.send[going].max()) - today, int(fixed.max(initial=0)))
    horizon = last + lookahead
    load = np.bincount(plan.send[going] - today, minlength=horizon + 1)
    load += np.bincount(fixed, minlength=horizon + 1)
    overfull = np.flatnonzero(load > limits.overage_limit)
    if not len(overfull):
        return plan

    # Only the emails of over-full days are ever moved: sort those alone.
    days = overfull + today
    on = going[np.isin(plan.send[going], days)]
    rank = sorting_rank(vocabulary)
    order = on[
        np.lexsort(
            (
                plan.contact_id[on],
                rank[plan.kind[on]],
                plan.priority[on],
                plan.send[on],
            )
        )
    ]
    sorted_days = plan.send[order]
    bounds = zip(
        np.searchsorted(sorted_days, days).tolist(),
        np.searchsorted(sorted_days, days, side="right").tolist(),
        strict=True,
    )
    plan = plan.with_(send=plan.send.copy())
    for offset, (start, end) in zip(overfull.tolist(), bounds, strict=True):
        rows = order[start:end]
        keep = max(limits.daily_cap - (int(load[offset]) - len(rows)), 0)
        overflow = rows[keep:]
        tally["left_over_cap"] += int(plan.kept[overflow].sum())
        overflow = overflow[~plan.kept[overflow]]
        for step in range(1, lookahead + 1):
            spare = limits.daily_cap - int(load[offset + step])
            if spare <= 0 or not len(overflow):
                continue
            day = today + offset + step
            chosen = _first_movable(plan, check, overflow, day, spare)
            _move(plan, check, chosen, np.full(len(chosen), day))
            load[offset] -= len(chosen)
            load[offset + step] += len(chosen)
            tally["moved_by_cap"] += len(chosen)
            overflow = overflow[~np.isin(overflow, chosen)]
        tally["left_over_cap"] += len(overflow)
    return plan
