"""The plan: every email a run wants to exist, as columns.

A plan row is one email with its identity (contact, kind, event date) and
its content (send date, status, skip reason, priority, templates,
metadata). Text content is held as integer codes into a `Vocabulary`
shared with the rows read from the database, so comparing the plan with
the table compares integers, and strings are built only for rows written.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace
from typing import Protocol, Self, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import Days, Ints

PRE_SCHEDULED = "pre-scheduled"
SKIPPED = "skipped"
MANAGED_STATUSES = (PRE_SCHEDULED, SKIPPED)
"""Statuses the scheduler owns; every other status belongs to the sender."""

NONE = 0
"""The code of the empty string: no reason, no template, no metadata."""


class Kinds:
    """The email kinds of one run, shared by every partition of its contacts.

    A kind is an (email_type, campaign_instance_id) pair: the part of an
    identity that is neither the contact nor the event date. Codes are
    given in order of first sight.
    """

    def __init__(self) -> None:
        self._codes: dict[tuple[str, int], int] = {}
        self.pairs: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def code(self, email_type: str, instance_id: int = 0) -> int:
        """Return the code of an email kind, registering it on first sight.

        Partitions are read on another thread than they are planned, and
        both register kinds.
        """
        key = (email_type, instance_id)
        found = self._codes.get(key)
        if found is None:
            with self._lock:
                found = self._codes.get(key)
                if found is None:
                    found = len(self.pairs)
                    self.pairs.append(key)
                    self._codes[key] = found
        return found


class Vocabulary:
    """Interned strings and email kinds of one run (or one partition of it).

    Strings are interned per vocabulary; the kinds may be shared between
    vocabularies, so that kind codes mean the same in every partition.
    """

    def __init__(self, kinds: Kinds | None = None) -> None:
        self._codes: dict[str, int] = {"": NONE}
        self.strings: list[str] = [""]
        self.shared_kinds = Kinds() if kinds is None else kinds
        self.kinds = self.shared_kinds.pairs
        self._arrow: pa.Array | None = None

    @staticmethod
    def restore(strings: list[str], kinds: Kinds) -> Vocabulary:
        """Return a vocabulary holding `strings` with their codes, over `kinds`."""
        vocabulary = Vocabulary(kinds)
        vocabulary.strings = strings
        vocabulary._codes = {text: code for code, text in enumerate(strings)}
        return vocabulary

    def code(self, text: str | None) -> int:
        """Return the code of `text`, interning it on first sight."""
        text = text or ""
        found = self._codes.get(text)
        if found is None:
            found = self._codes[text] = len(self.strings)
            self.strings.append(text)
        return found

    def codes(self, column: pa.ChunkedArray | pa.Array) -> Ints:
        """Return the codes of a text column (nulls are the empty string)."""
        if len(column) == 0:
            return np.zeros(0, dtype=np.int64)
        encoded = pc.dictionary_encode(column.fill_null(""))
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.unify_dictionaries().combine_chunks()
        mapping = np.array([self.code(s) for s in encoded.dictionary.to_pylist()])
        return mapping[encoded.indices.to_numpy(zero_copy_only=False)].astype(np.int64)

    def text(self, codes: Ints) -> pa.DictionaryArray:
        """Return the strings of `codes` as a dictionary array, NONE as null.

        The strings are not copied per row: the writer hands the codes and
        the vocabulary to SQLite as they are.
        """
        if self._arrow is None or len(self._arrow) != len(self.strings):
            self._arrow = pa.array(self.strings, type=pa.string())
        indices = pa.array(codes.astype(np.int32), mask=codes == NONE)
        return pa.DictionaryArray.from_arrays(indices, self._arrow)

    def kind(self, email_type: str, instance_id: int = 0) -> int:
        """Return the code of an email kind, registering it on first sight."""
        return self.shared_kinds.code(email_type, instance_id)

    def kind_codes(self, email_type: pa.ChunkedArray, instance: Ints) -> Ints:
        """Return the kind codes of (email_type, instance) columns."""
        types = self.codes(email_type)
        pairs, inverse = np.unique((types << 32) | instance, return_inverse=True)
        mapping = np.array(
            [self.kind(self.strings[p >> 32], p & 0xFFFFFFFF) for p in pairs.tolist()],
            dtype=np.int64,
        )
        return mapping[inverse.reshape(-1)] if len(mapping) else types


@dataclass(frozen=True)
class Plan:
    """Planned emails as columns of equal length."""

    contact: Ints
    """Position of the contact in the run's `Contacts` columns."""
    contact_id: Ints
    kind: Ints
    event: Days
    send: Days
    skipped: npt.NDArray[np.bool_]
    reason: Ints
    priority: Ints
    email_template: Ints
    sms_template: Ints
    metadata: Ints
    respects_windows: npt.NDArray[np.bool_]
    kept: npt.NDArray[np.bool_]
    """The date was set by the catch-up rule (kept from an existing row, or
    spread by hash); balancing never moves it, so re-runs agree and dates
    do not creep."""
    latest: Days
    """The latest useful send date of the email."""
    row: Ints
    """Position of the existing row with the same identity, or -1."""

    def __len__(self) -> int:
        return len(self.contact)

    def take(self, index: npt.NDArray[np.bool_] | Ints) -> Plan:
        """Return the rows selected by a mask or positions."""
        return Plan(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def with_(self, **columns: object) -> Plan:
        """Return a copy with some columns replaced."""
        return replace(self, **columns)  # type: ignore[arg-type]

    def rows(self, index: npt.NDArray[np.bool_] | Ints) -> PlannedRows:
        """Return the emails selected by a mask or positions, as rows to write."""
        return PlannedRows(
            contact_id=self.contact_id[index],
            kind=self.kind[index].astype(np.int16),
            event=self.event[index],
            send=self.send[index].astype(np.int32),
            skipped=self.skipped[index],
            reason=self.reason[index].astype(np.int32),
            priority=self.priority[index].astype(np.int32),
            email_template=self.email_template[index].astype(np.int32),
            sms_template=self.sms_template[index].astype(np.int32),
            metadata=self.metadata[index].astype(np.int32),
        )

    def outgoing_into(self, room: Outgoing, offset: int = 0) -> None:
        """Write the emails that go out into `room`, which has a row for each,
        as balancing sees them: in `room`'s narrower columns, with `offset`
        added to the contact positions (for a partition of a run's contacts).

        Columns are written in place: copies of a partition's own on the
        way took longer than the copy into the room.
        """
        going = np.flatnonzero(~self.skipped)
        for f in fields(Outgoing):
            source, target = getattr(self, f.name), getattr(room, f.name)
            if source.dtype == target.dtype:
                np.take(source, going, out=target)
            else:
                target[:] = source[going]
        np.add(room.contact, offset, out=room.contact)

    @staticmethod
    def concat(parts: list[Plan]) -> Plan:
        """Return the rows of all parts, in order."""
        if not parts:
            return empty_plan()
        return Plan(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in fields(Plan)
            }
        )


def empty_plan() -> Plan:
    """Return a plan with no rows."""
    ints = np.zeros(0, dtype=np.int64)
    flags = np.zeros(0, dtype=bool)
    columns: dict[str, object] = {f.name: ints for f in fields(Plan)}
    for name in ("skipped", "respects_windows", "kept"):
        columns[name] = flags
    return Plan(**columns)  # type: ignore[arg-type]


class Movable(Protocol):
    """The columns balancing reads, and the one it changes: a plan, or its
    outgoing emails."""

    @property
    def contact(self) -> Ints: ...

    @property
    def contact_id(self) -> Ints: ...

    @property
    def kind(self) -> Ints: ...

    @property
    def event(self) -> Days: ...

    @property
    def send(self) -> Days: ...

    @property
    def priority(self) -> Ints: ...

    @property
    def kept(self) -> npt.NDArray[np.bool_]: ...

    @property
    def latest(self) -> Days: ...

    @property
    def respects_windows(self) -> npt.NDArray[np.bool_]: ...

    @property
    def skipped(self) -> npt.NDArray[np.bool_]: ...

    def __len__(self) -> int: ...

    def with_(self, **columns: object) -> Self: ...


@dataclass(frozen=True)
class Outgoing:
    """The emails of a plan that go out, with the columns balancing reads."""

    contact: Ints
    """Position of the contact in the run's contacts (all partitions)."""
    contact_id: Ints
    kind: Ints
    event: Days
    send: Days
    priority: Ints
    kept: npt.NDArray[np.bool_]
    latest: Days
    respects_windows: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.contact)

    @staticmethod
    def empty(size: int) -> Outgoing:
        """Return room for `size` emails, in columns narrowed to hold a whole
        org's emails at once (written by `Plan.outgoing_into`)."""
        return Outgoing(
            contact=np.empty(size, dtype=np.int32),
            contact_id=np.empty(size, dtype=np.int64),
            kind=np.empty(size, dtype=np.int16),
            event=np.empty(size, dtype=np.int64),
            send=np.empty(size, dtype=np.int32),
            priority=np.empty(size, dtype=np.int16),
            kept=np.empty(size, dtype=bool),
            latest=np.empty(size, dtype=np.int32),
            respects_windows=np.empty(size, dtype=bool),
        )

    @property
    def skipped(self) -> npt.NDArray[np.bool_]:
        """Return all False: every outgoing email goes out."""
        return np.zeros(len(self), dtype=bool)

    def with_(self, **columns: object) -> Outgoing:
        """Return a copy with some columns replaced."""
        return replace(self, **columns)  # type: ignore[arg-type]

    def take(self, index: npt.NDArray[np.bool_] | Ints | slice) -> Outgoing:
        """Return the emails selected by a mask, positions or a slice (a view)."""
        return Outgoing(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Outgoing]) -> Outgoing:
        """Return the emails of all parts, in order."""
        return Outgoing(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in fields(Outgoing)
            }
        )


M = TypeVar("M", bound=Movable)


@dataclass(frozen=True)
class PlannedRows:
    """Planned emails as the rows to write: the columns a row is made of,
    narrowed, since a first run sets millions of them aside."""

    contact_id: Ints
    kind: Ints
    event: Days
    send: Days
    skipped: npt.NDArray[np.bool_]
    reason: Ints
    priority: Ints
    email_template: Ints
    sms_template: Ints
    metadata: Ints

    def __len__(self) -> int:
        return len(self.contact_id)

    def take(self, index: npt.NDArray[np.bool_] | Ints) -> PlannedRows:
        """Return the rows selected by a mask or positions."""
        return PlannedRows(
            **{f.name: getattr(self, f.name)[index] for f in fields(self)}
        )

    def with_(self, **columns: object) -> PlannedRows:
        """Return a copy with some columns replaced."""
        return replace(self, **columns)  # type: ignore[arg-type]
