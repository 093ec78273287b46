"""Same-day conflicts (SPEC 8.1): one non-follow-up email per contact per day.

On a day with several emails for one contact, the email with the lowest
priority number goes out (ties: email type, then campaign instance); the
others are skipped with a reason naming the winner. An email the sender
already owns for that day always wins: it cannot be taken back.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from email_scheduler.constraints.occupancy import (
    Committed,
    follow_up_kinds,
    sorting_rank,
)
from email_scheduler.plan import Plan, Vocabulary

SAME_DAY = "same-day conflict"


def resolve_same_day(
    plan: Plan, committed: Committed, vocabulary: Vocabulary, tally: Counter[str]
) -> Plan:
    """Return the plan with every same-day loser skipped."""
    if not len(plan):
        return plan
    rows = np.flatnonzero(~plan.skipped & ~follow_up_kinds(vocabulary)[plan.kind])
    rank = sorting_rank(vocabulary)
    n_plan, n_fixed = len(rows), len(committed.contact_id)
    contact = np.concatenate([plan.contact_id[rows], committed.contact_id])
    day = np.concatenate([plan.send[rows], committed.day])
    kind = np.concatenate([plan.kind[rows], committed.kind])
    source = np.concatenate([np.ones(n_plan, np.int64), np.zeros(n_fixed, np.int64)])
    priority = np.concatenate([plan.priority[rows], np.zeros(n_fixed, np.int64)])
    order = np.lexsort((rank[kind], priority, source, day, contact))
    contact, day = contact[order], day[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (contact[1:] != contact[:-1]) | (day[1:] != day[:-1])
    winner = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    losers = ~starts & (source[order] == 1)
    lost_rows = rows[order[losers]]
    if not len(lost_rows):
        return plan
    winner_kind = kind[winner[losers]]
    reasons = np.array(
        [
            vocabulary.code(f"{SAME_DAY}: {vocabulary.kinds[k][0]} goes out that day")
            for k in range(len(vocabulary.kinds))
        ]
    )
    skipped, reason = plan.skipped.copy(), plan.reason.copy()
    skipped[lost_rows] = True
    reason[lost_rows] = reasons[winner_kind]
    tally["skipped_same_day"] += len(lost_rows)
    return plan.with_(skipped=skipped, reason=reason)
