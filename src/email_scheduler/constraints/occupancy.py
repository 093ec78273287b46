"""Who gets mail on which day: the bookkeeping behind every move.

An `Occupancy` holds, per contact, the days of the non-follow-up emails
that will go out: planned `pre-scheduled` emails and emails the sender
already owns (`scheduled`, `processing`, `sent`, `delivered`). Balancing
asks it whether an email may move to another day without breaking the
promises that hold for every plan:

- 6.3: an email that respects windows never lands inside one, and a
  post-window email, placed after every window, is not moved into one;
- 8.1: at most one non-follow-up email per contact per day;
- 8.2: at most `max_emails_per_period` non-follow-up emails in any
  `period_days` consecutive days;
- never before today and never after the email's latest useful date.

The frequency check is conservative: a move is allowed when the contact
has fewer than the limit of other emails within `period_days - 1` days on
either side of the target, which guarantees every window holding the
target stays within the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from email_scheduler.calendar import MISSING, Days, Ints
from email_scheduler.config import Settings
from email_scheduler.plan import Movable, Vocabulary
from email_scheduler.rules import BirthColumns, RuleBook
from email_scheduler.store.reader import ExistingRows

Mask = npt.NDArray[np.bool_]

COMMITTED_STATUSES = ("scheduled", "processing", "sent", "delivered")
"""Statuses of emails the sender owns that count toward limits (SPEC 8.2)."""

FOLLOW_UP_PREFIX = "followup_"
POST_WINDOW = "post_window"

CHECK_SLICE = 1 << 16
"""Emails checked at once by `MoveCheck.allowed`."""

_DAY_BITS = 22
_DAY_SHIFT = 1 << (_DAY_BITS - 1)


def _key(contact_id: Ints, day: Days) -> Ints:
    return (contact_id << _DAY_BITS) | (day + _DAY_SHIFT)


def follow_up_kinds(vocabulary: Vocabulary) -> Mask:
    """Return, per kind code, whether the kind is a follow-up."""
    return np.array(
        [t.startswith(FOLLOW_UP_PREFIX) for t, _ in vocabulary.kinds] or [False],
        dtype=bool,
    )


def sorting_rank(vocabulary: Vocabulary) -> Ints:
    """Return, per kind code, its rank by (email_type, instance id)."""
    order = sorted(range(len(vocabulary.kinds)), key=lambda k: vocabulary.kinds[k])
    rank = np.zeros(max(len(order), 1), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


@dataclass(frozen=True)
class Committed:
    """Emails the sender already owns or will send as they are: fixed points."""

    contact_id: Ints
    day: Days
    kind: Ints
    """Non-follow-up emails, which count toward 8.1 and 8.2."""
    event: Days
    """Their event dates (MISSING where a row has none)."""
    volume: Days
    """Days of every owned email, follow-ups too, which count in daily volume."""

    @staticmethod
    def of(
        existing: ExistingRows, vocabulary: Vocabulary, left: Mask | None = None
    ) -> Committed:
        """Return the existing rows whose status counts toward limits.

        `left` marks the pending rows the run leaves as they are (emails it
        does not plan): they will be sent, so they count too.
        """
        codes = [vocabulary.code(status) for status in COMMITTED_STATUSES]
        owned = np.isin(existing.status, codes) & (existing.send != MISSING)
        if left is not None:
            owned |= left
        counted = owned.copy()
        if len(existing):
            counted &= ~follow_up_kinds(vocabulary)[existing.kind]
        return Committed(
            existing.contact_id[counted],
            existing.send[counted],
            existing.kind[counted],
            existing.event[counted],
            existing.send[owned],
        )

    @staticmethod
    def concat(parts: list[Committed]) -> Committed:
        """Return the emails of every part, in order."""
        return Committed(
            *(
                np.concatenate(
                    [getattr(p, f.name) for p in parts] or [np.zeros(0, int)]
                )
                for f in fields(Committed)
            )
        )


class Occupancy:
    """Days of each contact's non-follow-up emails, updated as emails move."""

    def __init__(self, parts: list[tuple[Ints, Days]]) -> None:
        """Take (contact ids, days) columns: the keys are built in place, as
        an org's millions of emails make every copy count."""
        keys = np.empty(sum(len(ids) for ids, _ in parts), dtype=np.int64)
        at = 0
        for contact_id, day in parts:
            block = keys[at : at + len(contact_id)]
            block[:] = contact_id
            block <<= _DAY_BITS
            block |= day + _DAY_SHIFT
            at += len(contact_id)
        # A partition's emails come in runs of ascending keys, and partitions
        # in ascending contact ids: the stable sort, which merges runs, takes
        # a third of a quicksort's time on them.
        keys.sort(kind="stable")
        self._base = keys
        self._removed = np.zeros(0, dtype=np.int64)
        self._added = np.zeros(0, dtype=np.int64)

    def count(self, contact_id: Ints, day: Days, reach: int) -> tuple[Ints, Ints]:
        """Return each contact's number of emails on `day`, and within `reach`
        days of it either way."""
        lo, hi = _key(contact_id, day - reach), _key(contact_id, day + reach)
        on = _key(contact_id, day)
        # Searching in key order keeps memory access local: several times faster.
        order = np.argsort(lo, kind="stable")
        lo, hi, on = lo[order], hi[order], on[order]
        same = np.zeros(len(contact_id), dtype=np.int64)
        near = np.zeros(len(contact_id), dtype=np.int64)
        for keys, sign in ((self._base, 1), (self._removed, -1), (self._added, 1)):
            if len(keys):
                _count_from(keys, lo, hi, on, sign, same, near)
        same_day, nearby = np.empty_like(same), np.empty_like(near)
        same_day[order], nearby[order] = same, near
        return same_day, nearby

    def move(self, contact_id: Ints, old: Days, new: Days) -> None:
        """Record that emails moved from `old` to `new`."""
        # Moves come in runs of ascending contact ids, and sorted runs merge
        # in linear time under the stable sort.
        removed = np.sort(_key(contact_id, old), kind="stable")
        added = np.sort(_key(contact_id, new), kind="stable")
        self._removed = np.sort(np.concatenate([self._removed, removed]), kind="stable")
        self._added = np.sort(np.concatenate([self._added, added]), kind="stable")


def _count_from(
    keys: Ints, lo: Ints, hi: Ints, on: Ints, sign: int, same: Ints, near: Ints
) -> None:
    """Add `sign` times the keys from `lo` to `hi` to `near`, and those equal
    to `on` to `same`, for ascending `keys`.

    One search finds where each range starts; the few keys a contact has
    within it are then stepped through, for all ranges at once.
    """
    at = np.searchsorted(keys, lo)
    rows = np.arange(len(lo))
    while len(rows):
        inside = at < len(keys)
        rows, at = rows[inside], at[inside]
        key = keys[at]
        inside = key <= hi[rows]
        rows, at, key = rows[inside], at[inside], key[inside]
        near[rows] += sign
        same[rows] += sign * (key == on[rows])
        at = at + 1


class MoveCheck:
    """Decides whether planned emails may move to target days."""

    def __init__(
        self,
        plan: Movable,
        state: npt.NDArray[np.int16],
        dates: BirthColumns,
        rules: RuleBook,
        settings: Settings,
        vocabulary: Vocabulary,
        committed: Committed,
        today: int,
    ) -> None:
        self.state = state
        self.dates = dates
        self.rules = rules
        self.today = today
        self.period = settings.frequency.period_days
        self.limit = settings.frequency.max_emails_per_period
        self.follow_up = (
            follow_up_kinds(vocabulary)[plan.kind]
            if len(plan)
            else (np.zeros(0, dtype=bool))
        )
        # A post-window email may go out in no window either (SPEC 6.4).
        post_window = np.array(
            [t == POST_WINDOW for t, _ in vocabulary.kinds] or [False], dtype=bool
        )
        self.guarded = plan.respects_windows | post_window[plan.kind]
        counted = ~plan.skipped & ~self.follow_up
        self.occupancy = Occupancy(
            [
                (plan.contact_id[counted], plan.send[counted]),
                (committed.contact_id, committed.day),
            ]
        )

    def allowed(self, plan: Movable, rows: Ints, target: Days) -> Mask:
        """Return whether each planned email `rows[i]` may move to `target[i]`.

        Millions of emails are checked a slice at a time, which bounds the
        memory of the checks' intermediate columns.
        """
        return np.concatenate(
            [
                self._allowed(
                    plan, rows[at : at + CHECK_SLICE], target[at : at + CHECK_SLICE]
                )
                for at in range(0, len(rows), CHECK_SLICE)
            ]
            or [np.zeros(0, dtype=bool)]
        )

    def _allowed(self, plan: Movable, rows: Ints, target: Days) -> Mask:
        ok = (target >= self.today) & (target <= plan.latest[rows])
        found = self.rules.exclusions(
            self.state, self.dates, plan.contact[rows], target
        )
        ok &= ~(self.guarded[rows] & found.hit)
        counted = ~self.follow_up[rows]
        contact_id, current = plan.contact_id[rows], plan.send[rows]
        reach = self.period - 1
        same_day, nearby = self.occupancy.count(contact_id, target, reach)
        ok &= ~counted | (same_day == 0)
        nearby -= (np.abs(current - target) <= reach).astype(np.int64)
        ok &= ~counted | (nearby <= self.limit - 1)
        return ok

    def record(self, plan: Movable, rows: Ints, target: Days) -> None:
        """Record moves about to be applied to `plan` (call before changing it)."""
        counted = ~self.follow_up[rows]
        self.occupancy.move(
            plan.contact_id[rows][counted], plan.send[rows][counted], target[counted]
        )
