"""The planning pass of a run over the partitions of its contacts.

The planning pass reads each partition, plans and constrains it and
compares it with its rows, two partitions at a time on threads of their
own; in partition order, it sets each one's changes aside and keeps what
balancing needs of every partition. After balancing, the writing pass
(see `writing`) writes them. A same-day re-run that may keep the last plan
(see `rerun`) first reads only the contacts of every partition, for their
checksum.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from email_scheduler.config import Settings
from email_scheduler.constraints.balancing import Limits
from email_scheduler.constraints.occupancy import Committed
from email_scheduler.contacts import (
    INVALID_EMAIL,
    SUPPRESSED,
    UNKNOWN_STATE_ISSUE,
    Contacts,
    DataQuality,
    build_contacts,
)
from email_scheduler.memory import release_freed_memory
from email_scheduler.partition import SetAside, Shelf
from email_scheduler.pipeline import (
    Context,
    Inputs,
    balance_outgoing,
    constrain,
    plan_emails,
)
from email_scheduler.plan import Kinds, Outgoing, Plan, Vocabulary
from email_scheduler.planners.campaigns import enrollment_statuses
from email_scheduler.report import Phases, RunReport
from email_scheduler.rules import BirthColumns, RuleBook
from email_scheduler.store import audit, reader, snapshot, writer
from email_scheduler.store.campaigns import Campaigns
from email_scheduler.store.engagement import Engagement
from email_scheduler.store.reader import ContactRange
from email_scheduler.workers import in_order

WITHOUT_EMAIL = (INVALID_EMAIL, SUPPRESSED, UNKNOWN_STATE_ISSUE)
"""Data-quality issues that leave a contact without any email."""


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@lru_cache(maxsize=1 << 16)
def _reason_group(reason: str) -> str:
    """Return a reason without its window dates, for counting."""
    if reason.startswith("exclusion window:") and ".." in reason:
        return reason.rsplit(" ", 1)[0]
    return reason


def _counts(codes: npt.NDArray[np.int64]) -> Iterator[tuple[int, int]]:
    """Yield each code that occurs, with how often it does."""
    counts = np.bincount(codes)
    present = np.flatnonzero(counts)
    return zip(present.tolist(), counts[present].tolist(), strict=True)


@dataclass
class Totals:
    """The counts of a run's report, added up partition by partition."""

    contacts_read: int = 0
    contacts_eligible: int = 0
    quality: Counter[str] = field(default_factory=Counter)
    planned: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, inputs: Inputs, plan: Plan) -> None:
        contacts, vocabulary = inputs.contacts, inputs.vocabulary
        self.contacts_read += len(contacts)
        self.contacts_eligible += int((contacts.reachable & contacts.known_state).sum())
        self.quality.update(inputs.quality.counts())
        types = [t for t, _ in vocabulary.kinds]
        for kind, count in _counts(plan.kind[~plan.skipped]):
            self.planned[types[kind]] += count
        for code, count in _counts(plan.reason[plan.skipped]):
            self.skipped[_reason_group(vocabulary.strings[code])] += count

    def report(self, report: RunReport) -> None:
        report.contacts_read = self.contacts_read
        report.contacts_eligible = self.contacts_eligible
        report.data_quality = dict(sorted(self.quality.items()))
        report.contacts_without_email = {
            issue: self.quality[issue] for issue in WITHOUT_EMAIL if self.quality[issue]
        }
        report.planned = dict(sorted(self.planned.items()))
        report.skipped = dict(sorted(self.skipped.items()))


@dataclass
class Balancing:
    """What balancing needs of every partition: outgoing emails and contacts."""

    partitions: int = 1
    """How many partitions the run plans (to reserve room for their emails)."""
    room: Outgoing | None = None
    """Every partition's outgoing emails so far, then room for the rest."""
    state: list[npt.NDArray[np.int16]] = field(default_factory=list)
    dates: list[BirthColumns] = field(default_factory=list)
    committed: list[Committed] = field(default_factory=list)
    contacts: int = 0
    emails: int = 0

    def add(self, context: Context, plan: Plan) -> slice:
        """Add one partition's; return where its outgoing emails sit."""
        end = self.emails + int(np.count_nonzero(~plan.skipped))
        if self.room is None or end > len(self.room):
            self._reserve(end)
        assert self.room is not None
        plan.outgoing_into(self.room.take(slice(self.emails, end)), self.contacts)
        contacts = context.inputs.contacts
        self.state.append(contacts.state)
        self.dates.append(context.dates.narrowed())
        self.committed.append(context.committed)
        self.contacts += len(contacts)
        start, self.emails = self.emails, end
        return slice(start, end)

    def _reserve(self, end: int) -> None:
        """Make room for twice the emails the partitions so far suggest.

        The whole org's emails are copied in as each partition is planned,
        while the planners work, rather than all at once when balancing
        starts; room not yet written to takes no memory (the system gives
        a page only once it is written), so reserving generously is free.
        """
        size = max(2 * end * self.partitions // (len(self.state) + 1), end)
        room = Outgoing.empty(size)
        if self.room is not None:
            for f in fields(Outgoing):
                column = getattr(room, f.name)
                column[: self.emails] = getattr(self.room, f.name)[: self.emails]
        self.room = room

    def _emails(self) -> Outgoing:
        """Return the outgoing emails of every partition."""
        if self.room is None:
            return Outgoing.empty(0)
        emails, self.room = self.room.take(slice(0, self.emails)), None
        return emails

    def balance(
        self,
        settings: Settings,
        kinds: Kinds,
        limits: Limits,
        today: int,
        tally: Counter[str],
    ) -> Outgoing:
        """Return every partition's outgoing emails, balanced."""
        rules = RuleBook(
            settings.state_rules, settings.timing.pre_window_exclusion_days
        )
        emails = self._emails()
        release_freed_memory()
        return balance_outgoing(
            emails,
            np.concatenate(self.state or [np.zeros(0, dtype=np.int16)]),
            BirthColumns.concat(self.dates),
            rules,
            settings,
            Vocabulary(kinds),
            Committed.concat(self.committed),
            limits,
            today,
            tally,
        )


@dataclass(frozen=True)
class Shared:
    """What every partition of a run reads."""

    settings: Settings
    today: int
    kinds: Kinds
    campaigns: Campaigns
    engagement: Engagement
    contact_columns: list[str]
    schedule_columns: list[str]
    snapshots: snapshot.Catalog
    rows_without_id: int
    change_counter: int
    """The change log's counter when the run started (see `rerun`)."""


@dataclass
class Planning:
    """The planning pass: what it keeps of each partition for the rest of the run."""

    shared: Shared
    shelf: Shelf
    balancing: Balancing
    totals: Totals = field(default_factory=Totals)
    tally: Counter[str] = field(default_factory=Counter)
    quality: list[DataQuality] = field(default_factory=list)
    statuses: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = field(
        default_factory=list
    )
    places: list[slice] = field(default_factory=list)
    ranges: list[ContactRange] = field(default_factory=list)
    stale_snapshots: set[ContactRange] = field(default_factory=set)
    """Partitions whose snapshot the write replaces with the rows as read."""
    inserts: list[int] = field(default_factory=list)
    """Each partition's rows to insert."""
    existing_rows: int = 0
    digest: audit.ContactsDigest = field(default_factory=audit.ContactsDigest)

    @property
    def bulk(self) -> bool:
        """Whether the run's write is a bulk one (see `writer.bulk`)."""
        return writer.bulk(sum(self.inserts), self.existing_rows)

    def add(self, number: int, ids: ContactRange, part: PlannedPartition) -> None:
        """Keep what the rest of the run needs of one planned partition."""
        context, plan = part.context, part.plan
        inputs, shared = context.inputs, self.shared
        self.tally.update(part.tally)
        self.totals.add(inputs, plan)
        self.quality.append(inputs.quality)
        self.statuses.append(
            enrollment_statuses(
                inputs.campaigns,
                plan,
                inputs.existing,
                inputs.vocabulary,
                shared.today,
                ids,
            )
        )
        self.digest.add(part.contacts_checksum)
        self.places.append(self.balancing.add(context, plan))
        self.inserts.append(len(part.changes.inserts))
        self.existing_rows += len(inputs.existing)
        self.ranges.append(ids)
        if part.stale_snapshot:
            self.stale_snapshots.add(ids)
        self.shelf.put(
            number, SetAside(part.changes, inputs.vocabulary.strings, part.snapshot)
        )


def send_time(settings: Settings) -> str:
    """Return the time of day every email goes out, as email_schedules holds it."""
    return settings.timing.send_time.strftime("%H:%M:%S")


@dataclass(frozen=True)
class PlannedPartition:
    """One partition read, planned, constrained and compared with its rows."""

    context: Context
    plan: Plan
    changes: writer.Changes
    tally: Counter[str]
    """What constraining did to the partition's emails."""
    read_seconds: float
    snapshot: snapshot.Encoded | None
    """The partition's rows as read, encoded, where the writing pass may
    need them."""
    stale_snapshot: bool
    contacts_checksum: str


def read_contacts(
    columnar: Any, shared: Shared, ids: ContactRange
) -> tuple[Contacts, DataQuality]:
    """Return the contacts of `ids`, typed, and their data-quality issues."""
    raw = reader.read_contacts(columnar, shared.contact_columns, ids)
    return build_contacts(
        raw, shared.today, shared.settings.suppressed_contact_statuses
    )


def read_contacts_checksum(
    path: Path, shared: Shared, ranges: list[ContactRange], phase: Phases
) -> str:
    """Return the run's contacts checksum, reading the contacts of every
    partition (two at a time, on threads) and nothing else."""

    def work(columnar: Any, number: int, ids: ContactRange) -> str:
        with phase("read", f"(contacts of partition {number + 1} of {len(ranges)})"):
            return audit.contacts_checksum(read_contacts(columnar, shared, ids)[0])

    digest = audit.ContactsDigest()
    with in_order(path, work, ranges, "checker") as checksums:
        for checksum in checksums:
            digest.add(checksum)
    return digest.hexdigest()


def _read_partition(
    columnar: Any, shared: Shared, ids: ContactRange
) -> tuple[Inputs, snapshot.PartitionRows]:
    """Return the contacts of `ids` and their rows, and the rows as read."""
    contacts, quality = read_contacts(columnar, shared, ids)
    vocabulary = Vocabulary(shared.kinds)
    columns = shared.schedule_columns
    rows = snapshot.read(columnar, shared.snapshots, columns, ids)
    existing = reader.existing_rows(columnar, columns, vocabulary, ids, rows.table)
    campaigns = shared.campaigns.of_contacts(*ids)
    inputs = Inputs(
        contacts, quality, existing, vocabulary, campaigns, shared.engagement
    )
    return inputs, rows


def plan_partition(
    columnar: Any, shared: Shared, ids: ContactRange, phase: Phases, detail: str
) -> PlannedPartition:
    """Return one partition read, planned, constrained and compared with its rows."""
    started = time.perf_counter()
    inputs, rows = _read_partition(columnar, shared, ids)
    read_seconds = time.perf_counter() - started
    tally: Counter[str] = Counter()
    with phase("plan", detail):
        context = Context.of(inputs, shared.settings, shared.today)
        plan = plan_emails(context)
    with phase("constrain", detail):
        plan = constrain(context, plan, tally)
    with phase("write", detail):
        changes = writer.diff(
            plan,
            inputs.existing,
            inputs.vocabulary,
            today=shared.today,
            send_time=send_time(shared.settings),
            contact_ids=inputs.contacts.id,
            owned=context.unplanned.owned,
            checksum=audit.ScheduleChecksum(shared.kinds),
        )
        # The writing pass needs the rows as read for a new snapshot: where the
        # old one is stale, and where a bulk write may insert unlogged.
        growing = len(changes.inserts) >= len(inputs.existing) // 4
        kept = snapshot.encode(rows.table) if rows.rebuild or growing else None
    checksum = audit.contacts_checksum(inputs.contacts)
    return PlannedPartition(
        context, plan, changes, tally, read_seconds, kept, rows.rebuild, checksum
    )


def planned_partitions(
    path: Path, shared: Shared, ranges: list[ContactRange], phase: Phases
) -> AbstractContextManager[Iterator[PlannedPartition]]:
    """Yield the partitions planned, in order, two at a time on threads."""

    def work(columnar: Any, number: int, ids: ContactRange) -> PlannedPartition:
        detail = f"(partition {number + 1} of {len(ranges)})"
        return plan_partition(columnar, shared, ids, phase, detail)

    return in_order(path, work, ranges, "planner")
