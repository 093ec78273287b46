"""Follow-up emails, chosen by what the contact did after an email (SPEC 9).

A parent is a `sent` or `delivered` email of a type that earns follow-ups
(birthday, effective date, AEP, post-window, or a campaign whose type
enables them), sent in the last `followup_lookback_days`. It earns one
follow-up, whose type says how the contact engaged since the parent went
out: answered the health questions with medical conditions, answered
without, clicked a link, or nothing.

A follow-up's identity is its parent: the parent's row id is kept in the
follow-up's metadata as `parent_id`, and its event date is left empty. So a
pending follow-up whose contact engaged since the last run changes type in
place, and a parent whose follow-up the sender already took (or whose
follow-up was skipped on a past day) gets no other. Follow-ups written
without a `parent_id` (by older schedulers) count for every parent of their
contact sent on or before their own date.

The date is the parent's send day plus `followup_delay_days`; once that is
past, a pending follow-up dated today or later keeps its date, and one
planned for the first time goes out tomorrow. A follow-up takes its
parent's priority and, for a campaign parent, its campaign instance; its
templates come from the configuration, overridden per follow-up type by
the instance metadata's `followup_templates`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import MISSING, Ints
from email_scheduler.config import ANNIVERSARY_TYPES, FOLLOW_UP_TYPES, Settings
from email_scheduler.constraints.occupancy import follow_up_kinds
from email_scheduler.contacts import Contacts
from email_scheduler.plan import NONE, PRE_SCHEDULED, SKIPPED, Plan, Vocabulary
from email_scheduler.store.campaigns import EMAIL_TYPE_PREFIX, Campaigns
from email_scheduler.store.engagement import Engagement
from email_scheduler.store.reader import ExistingRows

BEHAVIOURS = ("cold", "clicked", "hq_no_yes", "hq_with_yes")
"""What the contact did, in the order of FOLLOW_UP_TYPES."""

PARENT_STATUSES = ("sent", "delivered")
TEMPLATE_OVERRIDES = "followup_templates"
"""The campaign instance metadata key that overrides follow-up templates."""

DEFAULT_PRIORITY = 50
SECONDS_PER_DAY = 86_400
Mask = np.ndarray  # type: ignore[type-arg]


class FollowUpPlanner:
    """Plans the follow-ups of the emails sent in the lookback period."""

    def __init__(
        self,
        existing: ExistingRows,
        contacts: Contacts,
        eligible: Mask,
        campaigns: Campaigns,
        engagement: Engagement,
        settings: Settings,
        vocabulary: Vocabulary,
        today: int,
    ) -> None:
        self.existing = existing
        self.contacts = contacts
        self.eligible = eligible
        self.campaigns = campaigns
        self.engagement = engagement
        self.settings = settings
        self.vocabulary = vocabulary
        self.today = today

    def _earns_follow_ups(self, email_type: str) -> bool:
        if email_type in ANNIVERSARY_TYPES:
            return True
        if not email_type.startswith(EMAIL_TYPE_PREFIX):
            return False
        kind = self.campaigns.types.get(email_type.removeprefix(EMAIL_TYPE_PREFIX))
        return kind is not None and kind.enable_followups

    def parents(self) -> Ints:
        """Return the positions of the existing rows that may earn a follow-up."""
        existing, vocabulary = self.existing, self.vocabulary
        earning = np.array(
            [self._earns_follow_ups(t) for t, _ in vocabulary.kinds] or [False],
            dtype=bool,
        )
        sent = np.isin(existing.status, [vocabulary.code(s) for s in PARENT_STATUSES])
        day = existing.sent_at // SECONDS_PER_DAY
        lookback = self.settings.timing.followup_lookback_days
        found = sent & (existing.sent_at >= 0) & (day >= self.today - lookback)
        found &= day <= self.today
        if len(existing):
            found &= earning[existing.kind]
        return np.flatnonzero(found)

    def _follow_ups(self) -> tuple[Mask, Mask]:
        """Return the existing follow-ups: (history or the sender's, still pending)."""
        existing, vocabulary = self.existing, self.vocabulary
        follow_up = (
            follow_up_kinds(vocabulary)[existing.kind]
            if len(existing)
            else np.zeros(0, dtype=bool)
        )
        pre, skip = vocabulary.code(PRE_SCHEDULED), vocabulary.code(SKIPPED)
        managed = (existing.status == pre) | (existing.status == skip)
        past_skip = (existing.status == skip) & (existing.send < self.today)
        return follow_up & (~managed | past_skip), follow_up & managed & ~past_skip

    def _pending_rows(self, parent_ids: Ints, pending: Mask) -> Ints:
        """Return, per parent, the position of its pending follow-up, or -1."""
        existing = self.existing
        rows = np.flatnonzero(pending & (existing.parent >= 0))
        rows = rows[np.argsort(existing.parent[rows], kind="stable")]
        keys = existing.parent[rows]
        at = np.minimum(np.searchsorted(keys, parent_ids), max(len(rows) - 1, 0))
        if not len(rows):
            return np.full(len(parent_ids), -1, dtype=np.int64)
        return np.where(keys[at] == parent_ids, rows[at], -1)

    def _taken(self, parents: Ints, taken: Mask) -> Mask:
        """Return, per parent, whether its follow-up is history or the sender's."""
        existing = self.existing
        by_parent = np.isin(existing.row_id[parents], existing.parent[taken])
        legacy = taken & (existing.parent < 0)
        contact, send = existing.contact_id[legacy], existing.send[legacy]
        order = np.lexsort((send, contact))
        contact, send = contact[order], send[order]
        last = np.searchsorted(contact, existing.contact_id[parents], "right") - 1
        at = np.maximum(last, 0)
        parent_day = existing.sent_at[parents] // SECONDS_PER_DAY
        by_contact = (
            (last >= 0)
            & (contact[at] == existing.contact_id[parents])
            & (send[at] >= parent_day)
            if len(contact)
            else np.zeros(len(parents), dtype=bool)
        )
        return by_parent | by_contact

    def behaviour(self, parents: Ints) -> Ints:
        """Return, per parent, the index of what its contact did since it went out."""
        sent_at = self.existing.sent_at[parents]
        clicked, answered, conditions = self.engagement.of(
            self.existing.contact_id[parents]
        )
        return np.select(
            [conditions >= sent_at, answered >= sent_at, clicked >= sent_at],
            [3, 2, 1],
            default=0,
        )

    def plan(self) -> Plan:
        """Return the follow-ups to plan, resolved against their existing rows."""
        existing, contacts, today = self.existing, self.contacts, self.today
        parents = self.parents()
        at = np.searchsorted(contacts.id, existing.contact_id[parents])
        at = np.minimum(at, max(len(contacts) - 1, 0))
        known = (
            (contacts.id[at] == existing.contact_id[parents]) & self.eligible[at]
            if len(contacts)
            else np.zeros(len(parents), dtype=bool)
        )
        taken, pending = self._follow_ups()
        known &= ~self._taken(parents, taken)
        parents, at = parents[known], at[known]

        row = self._pending_rows(existing.row_id[parents], pending)
        has_row = row >= 0
        row_send = np.where(has_row, existing.send[np.maximum(row, 0)], MISSING)
        ideal = (
            existing.sent_at[parents] // SECONDS_PER_DAY
            + self.settings.timing.followup_delay_days
        )
        overdue = ideal < today
        kept = overdue & has_row & (row_send >= today)
        send = np.where(overdue, np.where(kept, row_send, today + 1), ideal)

        behaviour = self.behaviour(parents)
        kind, email_template, sms_template = self._kinds_and_templates(
            parents, behaviour
        )
        n = len(parents)
        lookahead = self.settings.load_balancing.cap_lookahead_days
        return Plan(
            contact=at,
            contact_id=existing.contact_id[parents],
            kind=kind,
            event=np.full(n, MISSING, dtype=np.int64),
            send=send,
            skipped=np.zeros(n, dtype=bool),
            reason=np.full(n, NONE, dtype=np.int64),
            priority=self._priorities(parents),
            email_template=email_template,
            sms_template=np.where(contacts.has_phone[at], sms_template, NONE),
            metadata=self._metadata(parents, behaviour),
            respects_windows=np.ones(n, dtype=bool),
            kept=kept,
            latest=send + lookahead,
            row=row,
        )

    def _priorities(self, parents: Ints) -> Ints:
        """Return the parents' priorities; a row without one takes its type's."""
        existing, vocabulary = self.existing, self.vocabulary
        defaults = np.array(
            [self._type_priority(t) for t, _ in vocabulary.kinds] or [0],
            dtype=np.int64,
        )
        stored = existing.priority[parents]
        return np.where(stored >= 0, stored, defaults[existing.kind[parents]])

    def _type_priority(self, email_type: str) -> int:
        if email_type in self.settings.priorities:
            return self.settings.priorities[email_type]
        kind = self.campaigns.types.get(email_type.removeprefix(EMAIL_TYPE_PREFIX))
        return kind.priority if kind else DEFAULT_PRIORITY

    def _kinds_and_templates(
        self, parents: Ints, behaviour: Ints
    ) -> tuple[Ints, Ints, Ints]:
        """Return the follow-ups' kinds and their email and SMS template codes."""
        vocabulary = self.vocabulary
        instance_of = np.array([i for _, i in vocabulary.kinds] or [0], np.int64)
        instance = instance_of[self.existing.kind[parents]]
        pairs, inverse = np.unique((instance << 2) | behaviour, return_inverse=True)
        overrides = {i.id: i.metadata for i in self.campaigns.instances}
        kinds, emails, sms = [], [], []
        for pair in pairs.tolist():
            email_type = FOLLOW_UP_TYPES[pair & 3]
            instance_id = pair >> 2
            email, text = self._templates(email_type, overrides.get(instance_id, {}))
            kinds.append(vocabulary.kind(email_type, instance_id))
            emails.append(vocabulary.code(email))
            sms.append(vocabulary.code(text))
        inverse = inverse.reshape(-1)

        def column(values: list[int]) -> Ints:
            return np.array(values, dtype=np.int64)[inverse] if values else inverse

        return column(kinds), column(emails), column(sms)

    def _templates(
        self, email_type: str, metadata: Mapping[str, Any]
    ) -> tuple[str | None, str | None]:
        """Return the (email, SMS) templates of a follow-up type for an instance."""
        configured = self.settings.templates.get(email_type)
        email = configured.email if configured else email_type
        sms = configured.sms if configured else None
        overrides = metadata.get(TEMPLATE_OVERRIDES)
        override = overrides.get(email_type) if isinstance(overrides, dict) else None
        if isinstance(override, str):
            return override, sms
        if isinstance(override, dict):
            return override.get("email", email), override.get("sms", sms)
        return email, sms

    def _metadata(self, parents: Ints, behaviour: Ints) -> Ints:
        """Return the codes of each follow-up's metadata JSON.

        The text is what `json.dumps(..., sort_keys=True)` writes; it is
        put together column by column (each behaviour and parent type
        encoded once), as after the AEP every contact has a parent.
        """
        existing, vocabulary = self.existing, self.vocabulary
        if not len(parents):
            return np.zeros(0, dtype=np.int64)
        kinds, kind_at = np.unique(existing.kind[parents], return_inverse=True)
        types = [json.dumps(vocabulary.kinds[k][0]) for k in kinds.tolist()]
        quoted = [json.dumps(found) for found in BEHAVIOURS]

        def encoded(texts: list[str], at: Ints) -> pa.Array:
            return pa.array(texts, pa.string()).take(pa.array(at.reshape(-1)))

        text = pc.binary_join_element_wise(
            '{"behaviour": ',
            encoded(quoted, behaviour),
            ', "parent_id": ',
            pa.array(existing.row_id[parents]).cast(pa.string()),
            ', "parent_type": ',
            encoded(types, kind_at),
            "}",
            "",
        )
        return vocabulary.codes(text)
