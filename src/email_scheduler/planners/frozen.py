"""Pending emails a run does not plan, and what it still owes them.

Most rows of `email_schedules` are planned afresh by every run. Two kinds
of pending (`pre-scheduled`) rows are not:

- emails of a frozen campaign instance (one that ended, or whose stored
  values do not parse): they go out as planned, so a run leaves their date
  and content alone;
- emails of types the product does not plan (written by other systems).

Both will be sent, so both count toward the one-a-day rule, the frequency
limit and the daily volume, like the emails the sender already holds. A
frozen campaign email is still the product's own email, and the law wins
over "as planned": when its contact has become unreachable or its
enrollment was removed, the row is deleted; when its date now falls inside
one of the contact's exclusion windows (the contact moved, say), or the
org's underwriting rule withholds it, the row is rewritten as `skipped`
with the reason. Rows of other systems are counted and never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from email_scheduler.calendar import Ints, from_days
from email_scheduler.config import ANNIVERSARY_TYPES, FOLLOW_UP_TYPES
from email_scheduler.constraints.underwriting import skip_failed_underwriting
from email_scheduler.contacts import Contacts
from email_scheduler.plan import PRE_SCHEDULED, Plan, Vocabulary
from email_scheduler.planners.campaigns import frozen_instances
from email_scheduler.store.campaigns import EMAIL_TYPE_PREFIX, Campaigns
from email_scheduler.store.reader import ExistingRows

Mask = npt.NDArray[np.bool_]

PLANNED_TYPES = frozenset((*ANNIVERSARY_TYPES, *FOLLOW_UP_TYPES))
"""Email types whose every row the run plans: a pending row it lacks is stale."""


def planned_kinds(vocabulary: Vocabulary, campaigns: Campaigns, today: int) -> Mask:
    """Return, per kind code, whether the run plans every email of that kind.

    Campaign rows of deleted or deactivated types and instances count as
    planned: the plan lacks them, so the run removes them.
    """
    frozen = frozen_instances(campaigns, from_days(today))
    return np.array(
        [
            email_type in PLANNED_TYPES
            or (email_type.startswith(EMAIL_TYPE_PREFIX) and instance not in frozen)
            for email_type, instance in vocabulary.kinds
        ]
        or [False],
        dtype=bool,
    )


@dataclass(frozen=True)
class Unplanned:
    """The pending rows the run does not plan, sorted by what becomes of them."""

    left: Mask
    """Per existing row: goes out as it is; counts toward every limit."""
    released: Mask
    """Per existing row: a frozen email the run deletes."""
    withheld: Plan
    """Frozen emails rewritten as skipped (window or underwriting)."""
    owned: Mask
    """Per existing row: the run plans it, so the writer deletes it when the
    plan lacks it."""
    planned: Mask
    """Per kind code: the run plans every email of the kind."""


def _positions(contacts: Contacts, contact_id: Ints) -> Ints:
    """Return each contact id's position in the (sorted) contacts, or -1."""
    if not len(contacts):
        return np.full(len(contact_id), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(contacts.id, contact_id), len(contacts) - 1)
    return np.where(contacts.id[at] == contact_id, at, -1)


def _enrolled(campaigns: Campaigns, contact_id: Ints, instance: Ints) -> Mask:
    """Return whether each (contact, instance) pair has an enrollment."""
    enrollments = campaigns.enrollments
    keys = np.unique((enrollments.contact_id << 24) | enrollments.instance)
    query = (contact_id << 24) | instance
    if not len(keys):
        return np.zeros(len(query), dtype=bool)
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[at] == query


def _as_planned(existing: ExistingRows, rows: Ints, at: Ints, respects: Mask) -> Plan:
    """Return existing rows as plan rows with their content unchanged."""
    return Plan(
        contact=at,
        contact_id=existing.contact_id[rows],
        kind=existing.kind[rows],
        event=existing.event[rows],
        send=existing.send[rows],
        skipped=np.zeros(len(rows), dtype=bool),
        reason=existing.reason[rows],
        priority=existing.priority[rows],
        email_template=existing.email_template[rows],
        sms_template=existing.sms_template[rows],
        metadata=existing.metadata[rows],
        respects_windows=respects,
        kept=np.ones(len(rows), dtype=bool),
        latest=existing.send[rows],
        row=rows,
    )


def _pending(
    existing: ExistingRows, vocabulary: Vocabulary, planned: Mask, today: int
) -> Mask:
    """Return the pending rows, dated today or later, that the run does not plan."""
    pending = (existing.status == vocabulary.code(PRE_SCHEDULED)) & (
        existing.send >= today
    )
    if len(existing):
        pending &= ~planned[existing.kind]
    return pending


def _frozen(
    existing: ExistingRows,
    pending: Mask,
    contacts: Contacts,
    campaigns: Campaigns,
    vocabulary: Vocabulary,
) -> tuple[Plan, Mask]:
    """Return the frozen campaign emails as plan rows, and the rows released.

    A row is released when its contact is no longer reachable or its
    enrollment was removed; rows of contacts the table no longer holds are
    left alone, like every row of such a contact.
    """
    kinds = vocabulary.kinds
    kind_of = [campaigns.types.get(t.removeprefix(EMAIL_TYPE_PREFIX)) for t, _ in kinds]
    campaign = np.array([t.startswith(EMAIL_TYPE_PREFIX) for t, _ in kinds] or [False])
    rows = (
        np.flatnonzero(pending & campaign[existing.kind])
        if len(existing)
        else (np.zeros(0, dtype=np.int64))
    )
    at = _positions(contacts, existing.contact_id[rows])
    rows, at = rows[at >= 0], at[at >= 0]
    kind = existing.kind[rows]
    instance = np.array([i for _, i in kinds] or [0], dtype=np.int64)[kind]
    everyone = np.array([bool(k and k.target_all_contacts) for k in kind_of] or [False])
    kept = contacts.reachable[at] & (
        everyone[kind] | _enrolled(campaigns, existing.contact_id[rows], instance)
    )
    released = np.zeros(len(existing), dtype=bool)
    released[rows[~kept]] = True
    rows, at, kind = rows[kept], at[kept], kind[kept]
    respects = np.array(
        [not k or k.respect_exclusion_windows for k in kind_of] or [True]
    )
    part = _as_planned(existing, rows, at, respects[kind])
    skips = np.array(
        [bool(k and k.skip_failed_underwriting) for k in kind_of] or [False]
    )
    checked = skip_failed_underwriting(part.take(skips[kind]), contacts, vocabulary)
    return Plan.concat([part.take(~skips[kind]), checked]), released


def unplanned_rows(
    existing: ExistingRows,
    contacts: Contacts,
    campaigns: Campaigns,
    vocabulary: Vocabulary,
    today: int,
    withhold: Callable[[Plan], Plan],
) -> Unplanned:
    """Return what becomes of the pending rows the run does not plan.

    `withhold` applies the windows and the org's underwriting rule to plan
    rows, as for every planned email.
    """
    planned = planned_kinds(vocabulary, campaigns, today)
    pending = _pending(existing, vocabulary, planned, today)
    frozen, released = _frozen(existing, pending, contacts, campaigns, vocabulary)
    frozen = withhold(frozen)
    withheld = frozen.take(frozen.skipped)
    left = pending & ~released
    left[withheld.row] = False
    owned = released.copy()
    if len(existing):
        owned |= planned[existing.kind]
    return Unplanned(left, released, withheld, owned, planned)
