"""Withholding emails that fall inside a state exclusion window."""

from __future__ import annotations

import numpy as np

from email_scheduler.plan import Plan, Vocabulary
from email_scheduler.rules import BirthColumns, RuleBook


def apply_windows(
    plan: Plan,
    state: np.ndarray,  # type: ignore[type-arg]
    dates: BirthColumns,
    rules: RuleBook,
    vocabulary: Vocabulary,
) -> Plan:
    """Return the plan with every window-respecting email inside a window skipped.

    The skip reason names the rule, the state and the window's dates.
    """
    checked = np.flatnonzero(plan.respects_windows)
    found = rules.exclusions(state, dates, plan.contact[checked], plan.send[checked])
    hit = checked[found.hit]
    # A rule's windows all have one length, so (rule, start) names a window.
    rule, start = found.rule[found.hit], found.start[found.hit]
    end = found.end[found.hit]
    reasons = plan.reason.copy()
    skipped = plan.skipped.copy()
    if len(hit):
        keys = (rule << 32) | (start & 0xFFFFFFFF)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        codes = np.array(
            [
                vocabulary.code(rules.describe(int(r), int(s), int(e)))
                for r, s, e in zip(rule[first], start[first], end[first], strict=True)
            ]
        )
        reasons[hit] = codes[inverse.reshape(-1)]
        skipped[hit] = True
    return plan.with_(skipped=skipped, reason=reasons)
