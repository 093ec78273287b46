"""Campaign emails: one email per recipient of each campaign instance.

An instance plans emails while its type is active and today lies in its
active range. Its recipients are every eligible contact (a type that targets
all contacts) or the contacts enrolled in `contact_campaigns`, narrowed by
the instance's state and carrier lists. An enrolled contact outside the
targeting gets a skipped email that says why, so the enrollment's status
can say so too; a contact of unknown state is reached only by a universal
campaign, and only when the org allows it.

Send dates come in two shapes:

- spread evenly: the spread start plus the contact id modulo the number of
  days in the spread range (both ends included), so each day gets about the
  same share; a date already past is a catch-up until the spread end;
- from a trigger date T (the enrollment's, or for all-contacts campaigns
  the instance metadata's `trigger_date`, else the active start): T minus
  the type's `days_before_event`, which may be negative (after T) or zero.
  A date already past is a catch-up until T, or, once T has passed too,
  until the active end for all-contacts campaigns only.

The identity's event date is T, or the spread start. An active instance of
the type named `aep` whose spread range (or active range) overlaps the
September of the planned AEP replaces the fixed-date AEP email.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import MISSING, Days, Ints, from_days, to_days
from email_scheduler.constraints.underwriting import skip_failed_underwriting
from email_scheduler.geography import UNKNOWN_STATE, state_index
from email_scheduler.identity import contains, find, pack
from email_scheduler.plan import NONE, PRE_SCHEDULED, SKIPPED, Plan, Vocabulary
from email_scheduler.planners.anniversary import AEP, AnniversaryPlanner
from email_scheduler.planners.candidates import candidates
from email_scheduler.store.campaigns import (
    EMAIL_TYPE_PREFIX,
    ENROLLMENT_STATUSES,
    SCHEDULED,
    SENT,
    CampaignInstance,
    Campaigns,
    CampaignType,
)
from email_scheduler.store.campaigns import SKIPPED as ENROLLMENT_SKIPPED
from email_scheduler.store.reader import ExistingRows

log = logging.getLogger("email_scheduler")

Mask = npt.NDArray[np.bool_]

AEP_CAMPAIGN = "aep"
"""The campaign type that, when active, replaces the fixed-date AEP email."""

NO_KNOWN_STATE = "no known state for a targeted campaign"
NO_STATE_FOR_UNIVERSAL = "no known state, and send_without_zipcode_for_universal is off"
OTHER_STATES = "campaign targets other states"
OTHER_CARRIERS = "campaign targets other carriers"

OPEN_END = to_days(dt.date(9999, 12, 31))
"""The cut-off of a catch-up whose instance has no active end."""

_SENT = ENROLLMENT_STATUSES.index(SENT)


def planning(
    campaigns: Campaigns, today: dt.date
) -> list[tuple[CampaignType, CampaignInstance]]:
    """Return the instances that plan emails today, each with its type."""
    found = []
    for instance in campaigns.instances:
        kind = campaigns.types.get(instance.campaign_type)
        if kind is None or not kind.active or not instance.active_on(today):
            continue
        if not instance.problems:
            found.append((kind, instance))
    return found


def frozen_instances(campaigns: Campaigns, today: dt.date) -> frozenset[int]:
    """Return the instances whose rows a run leaves as they are.

    An instance that ended keeps its pending emails: they go out as planned.
    So does an instance whose stored values do not parse, until they are
    fixed. Rows of a deleted or deactivated type or instance are not frozen:
    the run removes them.
    """
    frozen = set()
    for instance in campaigns.instances:
        kind = campaigns.types.get(instance.campaign_type)
        if kind is None or not kind.active:
            continue
        if instance.problems or instance.ended_by(today):
            frozen.add(instance.id)
    return frozenset(frozen)


@dataclass(frozen=True)
class Recipients:
    """The contacts an instance reaches: one row per email to plan."""

    at: Ints
    """Position of the contact in the run's `Contacts` columns."""
    trigger: Days
    """The trigger date, or MISSING."""
    reason: Ints
    """Why the contact is outside the targeting, or NONE."""

    def take(self, index: Mask | Ints) -> Recipients:
        """Return the rows selected by a mask or positions."""
        return Recipients(self.at[index], self.trigger[index], self.reason[index])


Dated = tuple[Recipients, Days, Days, Days]
"""Recipients with each email's event date, ideal send date and cut-off."""


def _first_of_each(at: Ints, event: Days) -> Ints:
    """Return the positions of the first row of each (contact, event) pair."""
    order = np.lexsort((event, at))
    at, event = at[order], event[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (at[1:] != at[:-1]) | (event[1:] != event[:-1])
    return np.sort(order[first])


class CampaignPlanner:
    """Plans the emails of every campaign instance active today."""

    def __init__(
        self,
        campaigns: Campaigns,
        anniversary: AnniversaryPlanner,
        existing: ExistingRows,
        planned: Mask,
    ) -> None:
        """`planned` says, per kind code, whether the run plans that kind."""
        self.campaigns = campaigns
        self.contacts = anniversary.contacts
        self.settings = anniversary.settings
        self.vocabulary = anniversary.vocabulary
        self.today = anniversary.today
        self.existing = existing
        self.planned = planned
        self.aep_year = anniversary.aep_year()
        self.active = planning(campaigns, from_days(self.today))
        self._by_id = np.argsort(self.contacts.id, kind="stable")
        self._warn_about_problems()

    def _warn_about_problems(self) -> None:
        for instance in self.campaigns.instances:
            if instance.problems and instance.campaign_type in self.campaigns.types:
                log.warning(
                    "campaign instance %d (%s) plans nothing until fixed: %s",
                    instance.id,
                    instance.instance_name,
                    "; ".join(instance.problems),
                )

    # -- AEP -------------------------------------------------------------

    def replaces_aep(self, instance: CampaignInstance) -> bool:
        """Return whether an active `aep` instance covers the planned AEP."""
        if instance.campaign_type != AEP_CAMPAIGN:
            return False
        first, last = instance.spread or (instance.active_start, instance.active_end)
        september = dt.date(self.aep_year, 9, 1), dt.date(self.aep_year, 9, 30)
        return (first is None or first <= september[1]) and (
            last is None or last >= september[0]
        )

    def _aep_replaced(self) -> bool:
        return any(self.replaces_aep(instance) for _, instance in self.active)

    def _had_aep(self, contact_id: Ints, email_type: str) -> Mask:
        """Return which contacts got an `email_type` email for the AEP year.

        Sent and in-flight emails count, and so do pending emails the run
        leaves as they are (those of an ended `aep` instance): the sender
        will send them.
        """
        existing, vocabulary = self.existing, self.vocabulary
        if len(existing) == 0:
            return np.zeros(len(contact_id), dtype=bool)
        of_type = np.array([t == email_type for t, _ in vocabulary.kinds])
        pending = existing.status == vocabulary.code(PRE_SCHEDULED)
        given = ~pending & (existing.status != vocabulary.code(SKIPPED))
        given |= pending & ~self.planned[existing.kind]
        had = of_type[existing.kind] & given
        had &= existing.event_year == self.aep_year
        return np.isin(contact_id, existing.contact_id[had])

    def keep_fixed_aep(self, parts: list[Plan]) -> list[Plan]:
        """Return anniversary candidates without the AEP emails a campaign covers.

        With an `aep` campaign covering the planned AEP, no fixed-date AEP is
        planned; without one, a contact who was already sent the AEP
        campaign's email for that year gets no fixed-date one either.
        """
        aep = self.vocabulary.kind(AEP)
        if self._aep_replaced():
            return [part.take(part.kind != aep) for part in parts]
        email_type = f"{EMAIL_TYPE_PREFIX}{AEP_CAMPAIGN}"
        return [
            part.take((part.kind != aep) | ~self._had_aep(part.contact_id, email_type))
            for part in parts
        ]

    # -- recipients ------------------------------------------------------

    def _positions(self, contact_id: Ints) -> Ints:
        """Return the position of each contact id in the contacts, or -1."""
        ids = self.contacts.id
        if len(ids) == 0:
            return np.full(len(contact_id), -1, dtype=np.int64)
        at = np.searchsorted(ids, contact_id, sorter=self._by_id)
        at = self._by_id[np.minimum(at, len(ids) - 1)]
        return np.where(ids[at] == contact_id, at, -1)

    def _reasons(self, instance: CampaignInstance, at: Ints) -> Ints:
        """Return why each contact is outside the targeting (NONE where inside)."""
        contacts, code = self.contacts, self.vocabulary.code
        state = contacts.state[at]
        allowed = self.settings.organization.send_without_zipcode_for_universal
        reached = (state != UNKNOWN_STATE) | (instance.universal and allowed)
        in_states = np.ones(len(at), dtype=bool)
        if instance.target_states:
            codes = [state_index()[s] for s in instance.target_states]
            in_states = np.isin(state, codes)
        in_carriers = np.ones(len(at), dtype=bool)
        if instance.target_carriers:
            carriers = contacts.carrier.take(pa.array(at))
            chosen = pa.array(instance.target_carriers, type=pa.string())
            in_carriers = np.asarray(
                pc.is_in(carriers, value_set=chosen).to_numpy(zero_copy_only=False),
                dtype=bool,
            )
        unknown = NO_STATE_FOR_UNIVERSAL if instance.universal else NO_KNOWN_STATE
        return np.select(
            [~reached, ~in_states, ~in_carriers],
            [code(unknown), code(OTHER_STATES), code(OTHER_CARRIERS)],
            NONE,
        ).astype(np.int64)

    def _everyone(self, instance: CampaignInstance) -> Recipients:
        """Return the targeted eligible contacts, with the instance's trigger."""
        at = np.flatnonzero(self.contacts.reachable)
        at = at[self._reasons(instance, at) == NONE]
        trigger = instance.trigger
        if trigger is None and not instance.spread:
            log.warning(
                "campaign instance %d has no trigger date: set active_start_date "
                "or metadata trigger_date",
                instance.id,
            )
        day = to_days(trigger) if trigger else int(MISSING)
        return Recipients(
            at,
            np.full(len(at), day, dtype=np.int64),
            np.full(len(at), NONE, dtype=np.int64),
        )

    def _enrolled(self, instance: CampaignInstance) -> Recipients:
        """Return the eligible enrolled contacts (not sent), with their triggers."""
        enrollments = self.campaigns.enrollments
        rows = (enrollments.instance == instance.id) & (enrollments.status != _SENT)
        at = self._positions(enrollments.contact_id[rows])
        trigger = enrollments.trigger[rows]
        keep = at >= 0
        keep[keep] = self.contacts.reachable[at[keep]]
        at, trigger = at[keep], trigger[keep]
        return Recipients(at, trigger, self._reasons(instance, at))

    # -- send dates ------------------------------------------------------

    def _spread(self, found: Recipients, first: int, last: int) -> Dated:
        """Return one email per contact, spread by contact id over the range."""
        _, unique = np.unique(found.at, return_index=True)
        found = found.take(unique)
        days = last - first + 1
        event = np.full(len(found.at), first, dtype=np.int64)
        ideal = first + self.contacts.id[found.at] % days
        return found, event, ideal, np.full(len(found.at), last, dtype=np.int64)

    def _triggered(
        self, kind: CampaignType, instance: CampaignInstance, found: Recipients
    ) -> Dated:
        """Return one email per (contact, trigger), `days_before_event` earlier."""
        dated = found.trigger != MISSING
        if not dated.all() and not kind.target_all_contacts:
            log.warning(
                "campaign instance %d: %d enrolled contacts have no trigger date",
                instance.id,
                int((~dated).sum()),
            )
        found = found.take(dated)
        found = found.take(_first_of_each(found.at, found.trigger))
        ideal = found.trigger - kind.days_before_event
        return found, found.trigger, ideal, self._cutoffs(kind, instance, found, ideal)

    def _cutoffs(
        self,
        kind: CampaignType,
        instance: CampaignInstance,
        found: Recipients,
        ideal: Days,
    ) -> Days:
        """Return the latest useful send date of trigger-based emails.

        Before or on the trigger: the trigger. After it: the ideal date plus
        the balancing lookahead. A past ideal date is caught up until the
        trigger, or once that passed, until the active end of an
        all-contacts campaign; otherwise the cut-off is before today and
        nothing is planned.
        """
        today, trigger = self.today, found.trigger
        if kind.target_all_contacts:
            end = to_days(instance.active_end) if instance.active_end else OPEN_END
        else:
            end = today - 1
        lookahead = self.settings.load_balancing.cap_lookahead_days
        upcoming = trigger if kind.days_before_event >= 0 else ideal + lookahead
        overdue = np.where(trigger >= today, trigger, end)
        return np.where(ideal >= today, upcoming, overdue)

    # -- candidates ------------------------------------------------------

    def plan(self) -> list[Plan]:
        """Return unresolved candidates of every instance active today."""
        return [self.candidates(kind, instance) for kind, instance in self.active]

    def candidates(self, kind: CampaignType, instance: CampaignInstance) -> Plan:
        """Return the unresolved candidates of one instance."""
        if kind.target_all_contacts:
            found = self._everyone(instance)
        else:
            found = self._enrolled(instance)
        if self.replaces_aep(instance):
            found = found.take(~self._had_aep(self.contacts.id[found.at], AEP))
        spread = instance.spread if kind.spread_evenly else None
        if spread is None:
            dated = self._triggered(kind, instance, found)
        else:
            dated = self._spread(found, to_days(spread[0]), to_days(spread[1]))
        part = self._part(kind, instance, *dated)
        if kind.skip_failed_underwriting:
            part = skip_failed_underwriting(part, self.contacts, self.vocabulary)
        return part

    def _part(
        self,
        kind: CampaignType,
        instance: CampaignInstance,
        found: Recipients,
        event: Days,
        ideal: Days,
        cutoff: Days,
    ) -> Plan:
        """Return the candidates, skipped where the contact is outside the targeting.

        A skipped email never goes out, so it has no window to respect and
        earns no post-window email.
        """
        at = found.at
        sms = self.vocabulary.code(instance.sms_template)
        part = candidates(
            contact=at,
            contact_id=self.contacts.id[at],
            kind=self.vocabulary.kind(kind.email_type, instance.id),
            event=event,
            ideal=ideal,
            cutoff=cutoff,
            priority=kind.priority,
            email_template=self.vocabulary.code(instance.email_template),
            sms_template=np.where(self.contacts.has_phone[at], sms, NONE),
            respects_windows=kind.respect_exclusion_windows,
        )
        outside = found.reason != NONE
        return part.with_(
            skipped=outside,
            reason=found.reason,
            respects_windows=part.respects_windows & ~outside,
        )


def enrollment_statuses(
    campaigns: Campaigns,
    plan: Plan,
    existing: ExistingRows,
    vocabulary: Vocabulary,
    today: int,
    ids: tuple[int, int] = (-(2**63), 2**63 - 1),
) -> tuple[Ints, Ints]:
    """Return (enrollment ids, status) for enrollments whose email's status changed.

    Only enrollments of contact ids from `ids[0]` to `ids[1]` are decided:
    the contacts whose emails `plan` holds.

    An enrollment of an instance active today takes the status of its email
    in the plan: `scheduled` or `skipped`. One whose email the plan does
    not hold is `skipped` (its contact became unreachable, say), unless a
    row of that email is still pending or was handed to the sender (sent,
    or history). Enrollments already `sent` are never changed.
    """
    enrollments = campaigns.enrollments
    first, last = ids
    ours = (enrollments.contact_id >= first) & (enrollments.contact_id <= last)
    ours &= enrollments.status != _SENT
    rows_parts, key_parts, codes = [], [], []
    for kind, instance in planning(campaigns, from_days(today)):
        rows = np.flatnonzero(ours & (enrollments.instance == instance.id))
        event = enrollments.trigger[rows]
        if kind.spread_evenly and instance.spread:
            event = np.full(len(rows), to_days(instance.spread[0]), dtype=np.int64)
        elif kind.target_all_contacts:
            trigger = instance.trigger
            day = to_days(trigger) if trigger else int(MISSING)
            event = np.full(len(rows), day, dtype=np.int64)
        dated = event != MISSING
        rows, event = rows[dated], event[dated]
        codes.append(vocabulary.kind(kind.email_type, instance.id))
        code = np.full(len(rows), codes[-1])
        rows_parts.append(rows)
        key_parts.append(pack(enrollments.contact_id[rows], code, event))
    if not rows_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows = np.concatenate(rows_parts)
    keys = np.concatenate(key_parts)
    # Only the emails of these instances can match: the rest are left out
    # before the sorts.
    emails = np.flatnonzero(np.isin(plan.kind, codes))
    found = find(
        pack(plan.contact_id[emails], plan.kind[emails], plan.event[emails]), keys
    )
    hit = found >= 0
    status = np.full(len(rows), ENROLLMENT_STATUSES.index(ENROLLMENT_SKIPPED))
    status[hit] = np.where(
        plan.skipped[emails[found[hit]]],
        ENROLLMENT_STATUSES.index(ENROLLMENT_SKIPPED),
        ENROLLMENT_STATUSES.index(SCHEDULED),
    )
    settled = (existing.status != vocabulary.code(SKIPPED)) & np.isin(
        existing.kind, codes
    )
    mine = np.flatnonzero(settled)
    written = np.sort(
        pack(existing.contact_id[mine], existing.kind[mine], existing.event[mine])
    )
    decided = hit | ~contains(written, keys)
    changed = decided & (status != enrollments.status[rows])
    return enrollments.id[rows[changed]], status[changed].astype(np.int64)
