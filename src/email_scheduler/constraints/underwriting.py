"""Withholding emails from contacts who failed underwriting.

Two settings withhold them: the org's `exclude_failed_underwriting_global`
(every email but AEP, in its fixed-date or campaign form) and a campaign
type's `skip_failed_underwriting` (that campaign's emails only).
"""

from __future__ import annotations

import numpy as np

from email_scheduler.contacts import Contacts
from email_scheduler.plan import Plan, Vocabulary

FAILED_UNDERWRITING = "failed underwriting"

EXEMPT_TYPES = frozenset({"aep", "campaign_aep"})
"""AEP reaches every contact: enrollment is open to all of them."""


def apply_global_underwriting(
    plan: Plan, contacts: Contacts, vocabulary: Vocabulary
) -> Plan:
    """Return the plan with non-AEP emails of failed-underwriting contacts skipped."""
    exempt = np.array(
        [email_type in EXEMPT_TYPES for email_type, _ in vocabulary.kinds], dtype=bool
    )
    withheld = contacts.failed_underwriting[plan.contact] & ~exempt[plan.kind]
    withheld &= ~plan.skipped
    reason = np.where(withheld, vocabulary.code(FAILED_UNDERWRITING), plan.reason)
    return plan.with_(skipped=plan.skipped | withheld, reason=reason)


def skip_failed_underwriting(
    part: Plan, contacts: Contacts, vocabulary: Vocabulary
) -> Plan:
    """Return a campaign's candidates with failed-underwriting contacts skipped.

    The email never goes out, so it stops respecting windows: a window can
    neither withhold it nor earn a post-window email for it.
    """
    withheld = contacts.failed_underwriting[part.contact] & ~part.skipped
    reason = np.where(withheld, vocabulary.code(FAILED_UNDERWRITING), part.reason)
    return part.with_(
        skipped=part.skipped | withheld,
        reason=reason,
        respects_windows=part.respects_windows & ~withheld,
    )
