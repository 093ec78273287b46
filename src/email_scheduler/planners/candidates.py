"""Candidate emails, and their resolution against rows already written.

A planner proposes candidates: an identity, an ideal send date and a
cut-off (the last day the email is still useful). Resolution applies the
catch-up rules:

- an identity already sent or in flight (any status the sender owns), or
  skipped on a day before today, is history: nothing is planned;
- an ideal date of today or later is kept;
- an ideal date before today with a cut-off of today or later is a
  catch-up: an existing pending row dated from today to the cut-off keeps
  its date (so dates do not creep forward day after day); otherwise the
  date is today plus a stable hash of the identity, at most the cut-off;
- a cut-off before today leaves nothing to plan.
"""

from __future__ import annotations

import numpy as np

from email_scheduler.calendar import Days, Ints, stable_offset
from email_scheduler.identity import match
from email_scheduler.plan import NONE, PRE_SCHEDULED, SKIPPED, Plan, Vocabulary
from email_scheduler.store.reader import ExistingRows


def candidates(
    *,
    contact: Ints,
    contact_id: Ints,
    kind: int,
    event: Days,
    ideal: Days,
    cutoff: Days,
    priority: int,
    email_template: int,
    sms_template: Ints,
    respects_windows: bool,
    metadata: Ints | None = None,
) -> Plan:
    """Return unresolved candidates of one kind (send date = ideal date)."""
    n = len(contact)
    return Plan(
        contact=contact,
        contact_id=contact_id,
        kind=np.full(n, kind, dtype=np.int64),
        event=event,
        send=ideal,
        skipped=np.zeros(n, dtype=bool),
        reason=np.full(n, NONE, dtype=np.int64),
        priority=np.full(n, priority, dtype=np.int64),
        email_template=np.full(n, email_template, dtype=np.int64),
        sms_template=sms_template,
        metadata=np.full(n, NONE, dtype=np.int64) if metadata is None else metadata,
        respects_windows=np.full(n, respects_windows, dtype=bool),
        kept=np.zeros(n, dtype=bool),
        latest=cutoff,
        row=np.full(n, -1, dtype=np.int64),
    )


def resolve(
    part: Plan,
    existing: ExistingRows,
    vocabulary: Vocabulary,
    today: int,
    spread_days: int,
) -> Plan:
    """Return the candidates still to plan, with their send dates and rows."""
    row = match(existing, part.contact_id, part.kind, part.event, part.send)
    has = row >= 0
    at = np.where(has, row, 0)
    status = np.where(has, existing.status[at] if len(existing) else 0, -1)
    row_send = np.where(has, existing.send[at] if len(existing) else 0, 0)
    pre, skip = vocabulary.code(PRE_SCHEDULED), vocabulary.code(SKIPPED)
    managed = (status == pre) | (status == skip)
    history = has & (~managed | ((status == skip) & (row_send < today)))

    ideal, cutoff = part.send, part.latest
    catch_up = ideal < today
    keep = catch_up & has & managed & (row_send >= today) & (row_send <= cutoff)
    spread = np.zeros(len(part), dtype=np.int64)
    for kind in np.unique(part.kind[catch_up]):
        rows = catch_up & (part.kind == kind)
        email_type = vocabulary.kinds[int(kind)][0]
        spread[rows] = stable_offset(
            part.contact_id[rows], email_type, part.event[rows], spread_days
        )
    send = np.where(
        catch_up, np.where(keep, row_send, np.minimum(today + spread, cutoff)), ideal
    )
    alive = ~history & (cutoff >= today)
    # Balancing never moves a catch-up: its date is already spread, and a run
    # that finds the row written must treat it exactly as the run that wrote it.
    return part.with_(send=send, kept=catch_up, row=row).take(alive)
