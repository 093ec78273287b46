"""Frequency limit (SPEC 8.2): at most N non-follow-up emails in any P days.

Emails the sender already owns (`scheduled`, `processing`, `sent`,
`delivered`) count and are fixed. Planned emails are accepted per contact
in priority order; one that would put more than `max_emails_per_period`
emails into some `period_days`-day window is skipped. Most contacts get a
handful of emails spread over a year, so a vectorized pass first finds the
contacts that could break the limit; only those are walked one by one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter

import numpy as np

from email_scheduler.calendar import Ints
from email_scheduler.config import Settings
from email_scheduler.constraints.occupancy import (
    Committed,
    follow_up_kinds,
    sorting_rank,
)
from email_scheduler.plan import Plan, Vocabulary


def _crowded(contact: Ints, day: Ints, limit: int, period: int) -> Ints:
    """Return the contacts with more than `limit` emails within `period` days."""
    order = np.lexsort((day, contact))
    contact, day = contact[order], day[order]
    if len(contact) <= limit:
        return np.zeros(0, dtype=np.int64)
    same = contact[limit:] == contact[:-limit]
    close = day[limit:] - day[:-limit] < period
    return np.unique(contact[limit:][same & close])


def _fits(accepted: list[int], day: int, limit: int, period: int) -> bool:
    """Return whether one more email on `day` keeps every window within the limit.

    Sliding a window that holds `day` to the right only gains an email when
    its end reaches one, so the fullest such window starts at
    day - period + 1 or ends on an accepted email within period - 1 days
    after `day`.
    """
    later = accepted[
        bisect_right(accepted, day) : bisect_right(accepted, day + period - 1)
    ]
    for start in [day - period + 1] + [email - period + 1 for email in later]:
        end = start + period - 1
        inside = bisect_right(accepted, end) - bisect_left(accepted, start)
        if inside + 1 > limit:
            return False
    return True


def apply_frequency_limit(
    plan: Plan,
    committed: Committed,
    settings: Settings,
    vocabulary: Vocabulary,
    tally: Counter[str],
) -> Plan:
    """Return the plan with emails beyond the frequency limit skipped."""
    limit = settings.frequency.max_emails_per_period
    period = settings.frequency.period_days
    if not len(plan):
        return plan
    rows = np.flatnonzero(~plan.skipped & ~follow_up_kinds(vocabulary)[plan.kind])
    crowded = _crowded(
        np.concatenate([plan.contact_id[rows], committed.contact_id]),
        np.concatenate([plan.send[rows], committed.day]),
        limit,
        period,
    )
    if not len(crowded):
        return plan
    rows = rows[np.isin(plan.contact_id[rows], crowded)]
    rank = sorting_rank(vocabulary)
    rows = rows[
        np.lexsort(
            (
                plan.send[rows],
                rank[plan.kind[rows]],
                plan.priority[rows],
                plan.contact_id[rows],
            )
        )
    ]
    fixed_at = np.isin(committed.contact_id, crowded)
    fixed: dict[int, list[int]] = {}
    for contact, day in zip(
        committed.contact_id[fixed_at].tolist(),
        committed.day[fixed_at].tolist(),
        strict=True,
    ):
        fixed.setdefault(contact, []).append(day)

    rejected: list[int] = []
    current, accepted = -1, []
    for row, contact, day in zip(
        rows.tolist(),
        plan.contact_id[rows].tolist(),
        plan.send[rows].tolist(),
        strict=True,
    ):
        if contact != current:
            current, accepted = contact, sorted(fixed.get(contact, []))
        if _fits(accepted, day, limit, period):
            insort(accepted, day)
        else:
            rejected.append(row)
    if not rejected:
        return plan
    skipped, reason = plan.skipped.copy(), plan.reason.copy()
    skipped[rejected] = True
    reason[rejected] = vocabulary.code(
        f"frequency limit: {limit} emails in {period} days"
    )
    tally["skipped_frequency"] += len(rejected)
    return plan.with_(skipped=skipped, reason=reason)
