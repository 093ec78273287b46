"""Matching planned emails to existing rows by identity.

An email's identity is (contact, kind, event date), where the kind is the
email type with its campaign instance. Identities are packed into one
64-bit integer so that a whole plan is matched with one sort and a binary
search. Rows written by older schedulers may lack a full event date: they
are matched on the event year when they have one, else on the send date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from email_scheduler.calendar import MISSING, Days, Ints, civil

if TYPE_CHECKING:
    from email_scheduler.store.reader import ExistingRows

_EVENT_BITS = 17
_KIND_BITS = 10
_EVENT_BASE = -25_567  # 1900-01-01: events up to 2258 fit in 17 bits
MAX_KINDS = 1 << _KIND_BITS


def pack(contact_id: Ints, kind: Ints, value: Ints) -> Ints:
    """Return one integer key per (contact, kind, value) triple."""
    if len(kind) and int(kind.max()) >= MAX_KINDS:
        raise ValueError(f"more than {MAX_KINDS} email kinds in one database")
    offset = np.clip(value - _EVENT_BASE, 0, (1 << _EVENT_BITS) - 1)
    return (contact_id << (_KIND_BITS + _EVENT_BITS)) | (kind << _EVENT_BITS) | offset


def _insertion_points(sorted_keys: Ints, query: Ints) -> Ints:
    """Return where each query key sits in non-empty ascending `sorted_keys`.

    A key past the last one gets the last position: that key is smaller,
    so comparing the key there still tells whether the query key is held.
    """
    return np.minimum(np.searchsorted(sorted_keys, query), len(sorted_keys) - 1)


def contains(sorted_keys: Ints, query: Ints) -> npt.NDArray[np.bool_]:
    """Return, for each query key, whether ascending `sorted_keys` holds it.

    Unlike `np.isin`, which sorts both sides on every call, this leaves the
    sorting to the caller, once for any number of queries.
    """
    if not len(sorted_keys):
        return np.zeros(len(query), dtype=bool)
    if np.all(query[1:] >= query[:-1]):
        return sorted_keys[_insertion_points(sorted_keys, query)] == query
    # Searching in key order keeps memory access local: several times faster.
    order = np.argsort(query)
    held = np.empty(len(query), dtype=bool)
    held[order] = contains(sorted_keys, query[order])
    return held


class _Sorted:
    """Keys of some rows, sorted, with the rows they belong to."""

    def __init__(self, keys: Ints, candidates: npt.NDArray[np.bool_]) -> None:
        positions = np.flatnonzero(candidates)
        order = positions[np.argsort(keys[positions], kind="stable")]
        self.keys = keys[order]
        self.rows = order

    def lookup(self, query: Ints) -> Ints:
        """Return, for each query key, the row of an equal key, or -1."""
        if not len(self.keys):
            return np.full(len(query), -1, dtype=np.int64)
        at = _insertion_points(self.keys, query)
        return np.where(self.keys[at] == query, self.rows[at], -1)


def find(keys: Ints, query: Ints) -> Ints:
    """Return, for each query key, the position of an equal key in `keys`, or -1."""
    return _Sorted(keys, np.ones(len(keys), dtype=bool)).lookup(query)


def _first_claim(found: Ints) -> Ints:
    """Keep only the first plan row that claims each existing row."""
    claimed = np.flatnonzero(found >= 0)
    _, first = np.unique(found[claimed], return_index=True)
    keep = np.full(len(found), -1, dtype=np.int64)
    keep[claimed[first]] = found[claimed[first]]
    return keep


class Identities:
    """The existing rows sorted by identity, once for any number of lookups.

    Rows written by older schedulers without a full event date are
    matched on the event year when they have one, else on the send date.
    """

    def __init__(self, existing: ExistingRows) -> None:
        dated = existing.event != MISSING
        self._dated = _Sorted(
            pack(existing.contact_id, existing.kind, existing.event), dated
        )
        self._legacy = not dated.all()
        if self._legacy:
            has_year = existing.event_year >= 0
            self._by_year = _Sorted(
                pack(existing.contact_id, existing.kind, existing.event_year),
                ~dated & has_year,
            )
            self._by_date = _Sorted(
                pack(existing.contact_id, existing.kind, existing.send),
                ~dated & ~has_year & (existing.send != MISSING),
            )

    def match(self, contact_id: Ints, kind: Ints, event: Days, send: Days) -> Ints:
        """Return, for each planned email, the position of its existing row or -1."""
        found = self._dated.lookup(pack(contact_id, kind, event))
        if not self._legacy:
            return _first_claim(found)
        # Only the emails no dated row matched are looked for among the rest.
        left = np.flatnonzero(found < 0)
        found[left] = self._by_year.lookup(
            pack(contact_id[left], kind[left], civil(event[left])[0])
        )
        left = left[found[left] < 0]
        found[left] = self._by_date.lookup(
            pack(contact_id[left], kind[left], send[left])
        )
        return _first_claim(found)


def match(
    existing: ExistingRows, contact_id: Ints, kind: Ints, event: Days, send: Days
) -> Ints:
    """Return, for each planned email, the position of its existing row or -1."""
    return existing.identities.match(contact_id, kind, event, send)
