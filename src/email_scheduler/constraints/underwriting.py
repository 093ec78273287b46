"""Withholding emails from contacts who failed underwriting."""

from __future__ import annotations

import numpy as np

from email_scheduler.contacts import Contacts
from email_scheduler.plan import Plan, Vocabulary

FAILED_UNDERWRITING = "failed underwriting"

EXEMPT_TYPES = frozenset({"aep"})
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
