"""Post-window emails: one catch-up the day after a window that withheld mail.

A dated window W (birthday or effective-date, not year-round) earns one
post-window email, on W.end + 1 (event date W.end), when that day is today
or later and W holds either an email of this run's plan that W withholds,
or the ideal send date of the latest past birthday, effective-date or AEP
email that the contact did not get (not sent, and not sent now as a
catch-up). The second case keeps the email in the plan from
the first run that sees the window until it is sent, even after the
withheld email has become history. When W.end + 1 lies in another dated
window, the email moves to the day after that window too.
"""

from __future__ import annotations

import numpy as np

from email_scheduler.calendar import Days, Ints
from email_scheduler.config import Settings
from email_scheduler.contacts import Contacts
from email_scheduler.identity import contains, match, pack
from email_scheduler.plan import PRE_SCHEDULED, SKIPPED, Plan, Vocabulary
from email_scheduler.planners.anniversary import AnniversaryPlanner, Occurrences
from email_scheduler.planners.candidates import candidates
from email_scheduler.rules import BirthColumns, RuleBook
from email_scheduler.store.reader import ExistingRows

POST_WINDOW = "post_window"
_MAX_HOPS = 8
_DAY_BASE = -(2**31)


def _owed(
    occurrences: Occurrences,
    email_type: str,
    planned: Ints,
    contacts: Contacts,
    existing: ExistingRows,
    vocabulary: Vocabulary,
) -> Occurrences:
    """Return the past occurrences whose email the contact did not get.

    An occurrence is not owed when its email was sent (or handed to the
    sender), or when this run's plan sends it as a catch-up: `planned` holds
    the sorted identity keys of the emails the plan sends.
    """
    at = occurrences.at
    kind = np.full(len(at), vocabulary.kind(email_type), dtype=np.int64)
    row = match(existing, contacts.id[at], kind, occurrences.event, occurrences.ideal)
    status = np.where(
        row >= 0, existing.status[np.maximum(row, 0)] if len(existing) else -1, -1
    )
    owed = (row < 0) | np.isin(
        status, [vocabulary.code(PRE_SCHEDULED), vocabulary.code(SKIPPED)]
    )
    owed &= ~contains(planned, pack(contacts.id[at], kind, occurrences.event))
    return Occurrences(at[owed], occurrences.event[owed], occurrences.ideal[owed])


def post_window_candidates(
    plan: list[Plan],
    planner: AnniversaryPlanner,
    existing: ExistingRows,
    rules: RuleBook,
    dates: BirthColumns,
    settings: Settings,
    vocabulary: Vocabulary,
    today: int,
) -> Plan:
    """Return unresolved post-window candidates for the windows that withheld mail.

    `plan` is the plan so far, in parts (they are not copied into one).
    """
    contacts = planner.contacts
    at_parts: list[Ints] = []
    on_parts: list[Days] = []
    going_keys: list[Ints] = []
    for part in plan:
        withheld = part.respects_windows & part.skipped
        at_parts.append(part.contact[withheld])
        on_parts.append(part.send[withheld])
        going = ~part.skipped
        going_keys.append(
            pack(part.contact_id[going], part.kind[going], part.event[going])
        )
    planned = np.sort(np.concatenate(going_keys))
    # Only a contact in a state with a dated rule has a date in a dated window.
    dated = rules.in_dated_states(contacts.state)
    past = {
        "birthday": planner.birthdays(past=True, among=dated),
        "effective_date": planner.effective_dates(past=True, among=dated),
        "aep": planner.aeps(past=True, among=dated),
    }
    for email_type, occurrences in past.items():
        owed = _owed(occurrences, email_type, planned, contacts, existing, vocabulary)
        at_parts.append(owed.at)
        on_parts.append(owed.ideal)
    at = np.concatenate(at_parts)
    on = np.concatenate(on_parts)

    found = rules.exclusions(contacts.state, dates, at, on, dated_only=True)
    due = found.hit & (found.end + 1 >= today)
    # One email per (contact, window end); positions and days fit in 32 bits.
    pairs = np.unique((at[due] << 32) | (found.end[due] - _DAY_BASE))
    at, window_end = pairs >> 32, (pairs & 0xFFFFFFFF) + _DAY_BASE
    send = _after_windows(at, window_end + 1, contacts, dates, rules)

    templates = settings.templates[POST_WINDOW]
    sms = vocabulary.code(templates.sms)
    return candidates(
        contact=at,
        contact_id=contacts.id[at],
        kind=vocabulary.kind(POST_WINDOW),
        event=window_end,
        ideal=send,
        cutoff=send,
        priority=settings.priority(POST_WINDOW),
        email_template=vocabulary.code(templates.email),
        sms_template=np.where(contacts.has_phone[at], sms, 0),
        respects_windows=False,
    )


def _after_windows(
    at: Ints, send: Days, contacts: Contacts, dates: BirthColumns, rules: RuleBook
) -> Days:
    """Return each date moved past any dated window that holds it."""
    for _ in range(_MAX_HOPS):
        found = rules.exclusions(contacts.state, dates, at, send, dated_only=True)
        if not found.hit.any():
            break
        send = np.where(found.hit, found.end + 1, send)
    return send
