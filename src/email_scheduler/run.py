"""One scheduler run: lock, read, plan, constrain, balance, write, record.

A run goes through its contacts in partitions of contact ids, so that its
memory stays bounded whatever the size of the org:

1. each partition is read (its contacts and their rows), planned and
   constrained (see `pipeline`); its outgoing emails join the run's, and
   the rest is set aside on disk;
2. the outgoing emails of all partitions are balanced at once against the
   org's daily limits;
3. each partition's plan, with its balanced dates, is compared with its
   rows, and the changes of all partitions are written in one transaction,
   with the run's records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from email_scheduler.calendar import to_days
from email_scheduler.config import Settings
from email_scheduler.constraints.balancing import Limits
from email_scheduler.constraints.occupancy import Committed
from email_scheduler.contacts import (
    INVALID_EMAIL,
    SUPPRESSED,
    UNKNOWN_STATE_ISSUE,
    DataQuality,
    build_contacts,
)
from email_scheduler.memory import release_freed_memory, return_large_blocks
from email_scheduler.partition import PARTITION_CONTACTS, SetAside, Shelf
from email_scheduler.pipeline import (
    Context,
    Inputs,
    balance_outgoing,
    constrain,
    plan_emails,
)
from email_scheduler.plan import Kinds, Outgoing, Plan, Vocabulary
from email_scheduler.planners.campaigns import enrollment_statuses
from email_scheduler.planners.followups import SECONDS_PER_DAY
from email_scheduler.rules import BirthColumns, RuleBook
from email_scheduler.store import audit, reader, schema, writer
from email_scheduler.store.campaigns import Campaigns, read_campaigns, write_statuses
from email_scheduler.store.database import (
    check_exists,
    connect,
    connect_columnar,
    with_retries,
)
from email_scheduler.store.engagement import Engagement, read_engagement
from email_scheduler.store.reader import ContactRange
from email_scheduler.store.schema import table_columns

log = logging.getLogger("email_scheduler")

ORG_TIME_ZONE = ZoneInfo("America/Chicago")

TALLY_KEYS = (
    "moved_by_smoothing",
    "not_smoothed",
    "moved_by_cap",
    "skipped_same_day",
    "skipped_frequency",
    "left_over_cap",
)

WITHOUT_EMAIL = (INVALID_EMAIL, SUPPRESSED, UNKNOWN_STATE_ISSUE)
"""Data-quality issues that leave a contact without any email."""

Progress = Callable[[str], None]
"""Called with the name of each phase as it starts."""


def org_today() -> dt.date:
    """Return today's date where the org operates (Central Time)."""
    return dt.datetime.now(ORG_TIME_ZONE).date()


@dataclass
class RunReport:
    """What a run read, planned and wrote."""

    run_id: str
    database: str
    today: str
    dry_run: bool
    config_version: str
    contacts_read: int = 0
    contacts_eligible: int = 0
    contacts_without_email: dict[str, int] = field(default_factory=dict)
    data_quality: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    balancing: dict[str, int] = field(default_factory=dict)
    interrupted_runs_before: int = 0
    backup: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return asdict(self)


PHASES = ("read", "plan", "constrain", "balance", "write")


class _Phases:
    """Times the phases of a run; a phase met in every partition adds up."""

    def __init__(self, report: RunReport, progress: Progress | None) -> None:
        self.report = report
        self.progress = progress
        report.seconds = dict.fromkeys(PHASES, 0.0)

    @contextmanager
    def __call__(self, name: str, detail: str = "") -> Iterator[None]:
        if self.progress:
            self.progress(f"{name} {detail}".strip())
        started = time.perf_counter()
        yield
        spent = time.perf_counter() - started
        self.report.seconds[name] = round(self.report.seconds.get(name, 0) + spent, 3)


def _new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{uuid.uuid4().hex[:8]}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _reason_group(reason: str) -> str:
    """Return a reason without its window dates, for counting."""
    if reason.startswith("exclusion window:") and ".." in reason:
        return reason.rsplit(" ", 1)[0]
    return reason


@dataclass
class _Totals:
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
        kinds, counts = np.unique(plan.kind[~plan.skipped], return_counts=True)
        for kind, count in zip(kinds.tolist(), counts.tolist(), strict=True):
            self.planned[types[kind]] += count
        reasons, counts = np.unique(plan.reason[plan.skipped], return_counts=True)
        for code, count in zip(reasons.tolist(), counts.tolist(), strict=True):
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
class _Balancing:
    """What balancing needs of every partition: outgoing emails and contacts."""

    outgoing: dict[str, list[np.ndarray]] = field(  # type: ignore[type-arg]
        default_factory=lambda: {f.name: [] for f in fields(Outgoing)}
    )
    state: list[npt.NDArray[np.int16]] = field(default_factory=list)
    dates: list[BirthColumns] = field(default_factory=list)
    committed: list[Committed] = field(default_factory=list)
    contacts: int = 0
    emails: int = 0

    def add(self, context: Context, plan: Plan) -> slice:
        """Add one partition's; return where its outgoing emails sit."""
        outgoing = plan.outgoing(self.contacts)
        for name, parts in self.outgoing.items():
            parts.append(getattr(outgoing, name))
        contacts = context.inputs.contacts
        self.state.append(contacts.state)
        self.dates.append(context.dates.narrowed())
        self.committed.append(context.committed)
        self.contacts += len(contacts)
        self.emails += len(outgoing)
        return slice(self.emails - len(outgoing), self.emails)

    def _emails(self) -> Outgoing:
        """Return the outgoing emails of every partition, letting go of the parts
        one column at a time (the whole set runs to hundreds of MB)."""
        columns = {}
        for name, parts in self.outgoing.items():
            columns[name] = np.concatenate(parts) if parts else np.zeros(0, int)
            parts.clear()
        return Outgoing(**columns)

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
class _Shared:
    """What every partition of a run reads."""

    settings: Settings
    today: int
    kinds: Kinds
    campaigns: Campaigns
    engagement: Engagement
    contact_columns: list[str]
    schedule_columns: list[str]


def run(
    path: Path,
    settings: Settings,
    today: dt.date,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    partition_contacts: int = PARTITION_CONTACTS,
) -> RunReport:
    """Plan every contact's emails and write the plan (unless `dry_run`)."""
    check_exists(path)
    return_large_blocks()
    report = RunReport(
        run_id=_new_run_id(),
        database=str(path),
        today=today.isoformat(),
        dry_run=dry_run,
        config_version=settings.version(),
    )
    with nullcontext() if dry_run else audit.run_lock(path):
        sqlite = connect(path, read_only=dry_run)
        try:
            reader.contact_columns(sqlite)
            _run_locked(
                path, sqlite, settings, today, report, progress, partition_contacts
            )
        finally:
            sqlite.close()
    log.info(
        "run %s done: %d contacts, rows %s, %.1fs",
        report.run_id,
        report.contacts_read,
        report.rows,
        sum(report.seconds.values()),
    )
    return report


def _run_locked(
    path: Path,
    sqlite: sqlite3.Connection,
    settings: Settings,
    today: dt.date,
    report: RunReport,
    progress: Progress | None,
    partition_contacts: int,
) -> None:
    phase = _Phases(report, progress)
    log.info("run %s starting on %s for %s", report.run_id, path, today)
    if not report.dry_run:
        schema.migrate(sqlite)
        report.interrupted_runs_before = audit.interrupted_runs(sqlite)
        config_id = audit.record_config(sqlite, settings, _now())
        audit.start_checkpoint(sqlite, report.run_id, today, _now(), config_id)
    columnar = connect_columnar(path)
    shelf = Shelf(path)
    try:
        _run_passes(path, sqlite, columnar, shelf, settings, today, report, phase,
                    partition_contacts)  # fmt: skip
    except BaseException as exc:
        if not report.dry_run:
            audit.fail_checkpoint(
                sqlite, report.run_id, _now(), f"{type(exc).__name__}: {exc}"
            )
        raise
    finally:
        columnar.close()
        shelf.close()


def _run_passes(
    path: Path,
    sqlite: sqlite3.Connection,
    columnar: Any,
    shelf: Shelf,
    settings: Settings,
    today: dt.date,
    report: RunReport,
    phase: _Phases,
    partition_contacts: int,
) -> None:
    day = to_days(today)
    with phase("read"):
        lookback = settings.timing.followup_lookback_days
        shared = _Shared(
            settings=settings,
            today=day,
            kinds=Kinds(),
            campaigns=read_campaigns(columnar, sqlite),
            engagement=read_engagement(
                columnar, sqlite, (day - lookback) * SECONDS_PER_DAY
            ),
            contact_columns=reader.contact_columns(sqlite),
            schedule_columns=table_columns(sqlite, "email_schedules"),
        )
        ranges = reader.partitions(columnar, partition_contacts)
        bad_ids = reader.rows_without_id(sqlite)
    planning = _Planning(settings, shared, shelf)
    with _prefetched(path, shared, ranges) as partitions:
        for number, (ids, read) in enumerate(zip(ranges, partitions, strict=True)):
            detail = f"(partition {number + 1} of {len(ranges)})"
            report.seconds["read"] = round(report.seconds["read"] + read.seconds, 3)
            context, plan = _plan_partition(read, shared, planning.tally, phase, detail)
            del read
            with phase("write", detail):
                planning.add(number, ids, context, plan)
            del context, plan
            release_freed_memory()
    planning.totals.report(report)
    limits = Limits.of(settings, planning.totals.contacts_eligible)
    with phase("balance"):
        balanced = planning.balancing.balance(
            settings, shared.kinds, limits, day, planning.tally
        )
        release_freed_memory()
    report.balancing = {
        "daily_cap": limits.daily_cap,
        "ed_soft_limit": limits.ed_soft_limit,
        **{key: planning.tally[key] for key in TALLY_KEYS},
    }
    _add_external_quality(report, bad_ids, shared.engagement)
    writing = _Writing(planning, balanced, report)
    with phase("write"):
        writing.run(path, columnar)


@dataclass
class _Planning:
    """The planning pass: what it keeps of each partition for the rest of the run."""

    settings: Settings
    shared: _Shared
    shelf: Shelf
    totals: _Totals = field(default_factory=_Totals)
    balancing: _Balancing = field(default_factory=_Balancing)
    tally: Counter[str] = field(default_factory=Counter)
    quality: list[DataQuality] = field(default_factory=list)
    statuses: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = field(
        default_factory=list
    )
    places: list[slice] = field(default_factory=list)
    new_emails: int = 0
    existing_rows: int = 0
    digest: Any = field(default_factory=lambda: hashlib.blake2b(digest_size=16))

    def add(self, number: int, ids: ContactRange, context: Context, plan: Plan) -> None:
        """Keep what the rest of the run needs of one planned partition."""
        inputs, shared = context.inputs, self.shared
        self.totals.add(inputs, plan)
        self.quality.append(inputs.quality)
        self.statuses.append(
            enrollment_statuses(
                shared.campaigns,
                plan,
                inputs.existing,
                inputs.vocabulary,
                shared.today,
                ids,
            )
        )
        self.digest.update(audit.contacts_checksum(inputs.contacts).encode())
        self.places.append(self.balancing.add(context, plan))
        self.new_emails += int((plan.row < 0).sum())
        self.existing_rows += len(inputs.existing)
        changes = writer.diff(
            plan,
            inputs.existing,
            inputs.vocabulary,
            today=shared.today,
            send_time=_send_time(self.settings),
            contact_ids=inputs.contacts.id,
            owned=context.unplanned.owned,
            checksum=audit.ScheduleChecksum(shared.kinds),
        )
        self.shelf.put(number, SetAside(changes, inputs.vocabulary.strings))


def _send_time(settings: Settings) -> str:
    return settings.timing.send_time.strftime("%H:%M:%S")


@dataclass(frozen=True)
class _Read:
    """One partition as read from the database."""

    inputs: Inputs
    seconds: float


def _read_partition(columnar: Any, shared: _Shared, ids: ContactRange) -> _Read:
    """Return the contacts of `ids` and their rows."""
    started = time.perf_counter()
    settings = shared.settings
    raw = reader.read_contacts(columnar, shared.contact_columns, ids)
    contacts, quality = build_contacts(
        raw, shared.today, settings.suppressed_contact_statuses
    )
    del raw
    vocabulary = Vocabulary(shared.kinds)
    existing = reader.read_schedules(columnar, shared.schedule_columns, vocabulary, ids)
    inputs = Inputs(
        contacts, quality, existing, vocabulary, shared.campaigns, shared.engagement
    )
    return _Read(inputs, time.perf_counter() - started)


READERS = 1
"""Threads reading partitions ahead of the one being planned. One keeps the
second of two cores busy: a second thread won no time and cost memory."""


@contextmanager
def _prefetched(
    path: Path, shared: _Shared, ranges: list[ContactRange]
) -> Iterator[Iterator[_Read]]:
    """Yield the partitions in order, each read while those before are planned.

    Reading is SQLite work that leaves Python's lock free: `READERS`
    threads read, each with its own connection, while the caller plans.
    """
    local = threading.local()
    connections: list[Any] = []

    def read(ids: ContactRange) -> _Read:
        if not hasattr(local, "columnar"):
            local.columnar = connect_columnar(path)
            connections.append(local.columnar)
        return _read_partition(local.columnar, shared, ids)

    pool = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="reader")

    def partitions() -> Iterator[_Read]:
        pending = [pool.submit(read, ids) for ids in ranges[:READERS]]
        for after in [*ranges[READERS:], *([None] * READERS)]:
            if after is not None:
                pending.append(pool.submit(read, after))
            if pending:
                yield pending.pop(0).result()

    try:
        yield partitions()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for columnar in connections:
            columnar.close()


def _plan_partition(
    read: _Read, shared: _Shared, tally: Counter[str], phase: _Phases, detail: str
) -> tuple[Context, Plan]:
    """Return one partition's context and its planned, constrained emails."""
    with phase("plan", detail):
        context = Context.of(read.inputs, shared.settings, shared.today)
        plan = plan_emails(context)
    with phase("constrain", detail):
        plan = constrain(context, plan, tally)
    return context, plan


def _add_external_quality(
    report: RunReport, bad_ids: int, engagement: Engagement
) -> None:
    """Add the data-quality counts that no partition sees."""
    extra = {
        "invalid_id": bad_ids,
        "invalid_event_metadata": engagement.invalid_metadata,
        "invalid_event_time": engagement.invalid_time,
    }
    report.data_quality.update({key: count for key, count in extra.items() if count})


@dataclass
class _Writing:
    """The writing pass: each partition's changes, then the run's records."""

    planning: _Planning
    balanced: Outgoing
    report: RunReport

    def _partitions(self) -> Iterator[tuple[writer.Settled, Vocabulary]]:
        """Yield each partition's changes, dated by balancing."""
        kinds = self.planning.shared.kinds
        checksum = audit.ScheduleChecksum(kinds)
        for number, place in enumerate(self.planning.places):
            part = self.planning.shelf.get(number)
            outgoing = self.balanced.take(place)
            settled = writer.settle(part.changes, outgoing, checksum)
            yield settled, Vocabulary.restore(part.strings, kinds)
            del part, settled
            release_freed_memory()

    def run(self, path: Path, columnar: Any) -> None:
        """Write every change (or, in a dry run, only count them)."""
        settings = self.planning.settings
        if self.report.dry_run:
            rows: Counter[str] = Counter(inserted=0, updated=0, deleted=0, unchanged=0)
            for changes, _ in self._partitions():
                rows["inserted"] += len(changes.inserts)
                rows["updated"] += len(changes.updates) + len(changes.redated_ids)
                rows["deleted"] += len(changes.deletes)
                rows["unchanged"] += changes.unchanged
            self.report.rows = dict(rows)
            return
        if settings.backup.enabled:
            target = audit.backup(path, settings, self.report.run_id)
            self.report.backup = str(target) if target else None
        with_retries(lambda: self._commit(columnar), "writing the plan")

    def _commit(self, columnar: Any) -> None:
        """Write the changes and all the run's records in one transaction."""
        now = _now()
        planning = self.planning
        bulk = writer.bulk(planning.new_emails, planning.existing_rows)
        with columnar.cursor() as cursor:
            try:
                indexing = (
                    writer.send_date_index_rebuilt(cursor) if bulk else nullcontext()
                )
                with indexing:
                    rows, checksums = self._write_partitions(cursor, now)
                self.report.rows = dict(rows)
                self._record(cursor, now, *checksums)
            except BaseException:
                columnar.rollback()
                raise
        columnar.commit()

    def _write_partitions(
        self, cursor: Any, now: str
    ) -> tuple[Counter[str], tuple[np.uint64, np.uint64]]:
        """Write each partition's changes; return the row counts and checksums."""
        rows: Counter[str] = Counter(
            inserted=0, updated=0, deleted=0, unchanged=0, conflicts=0
        )
        before = after = np.uint64(0)
        for changes, vocabulary in self._partitions():
            was, will = changes.checksums
            with np.errstate(over="ignore"):
                before, after = before + was, after + will
            written = writer.write(
                cursor,
                changes,
                vocabulary,
                send_time=_send_time(self.planning.settings),
                run_id=self.report.run_id,
                now=now,
            )
            rows["inserted"] += written.inserted
            rows["updated"] += written.updated
            rows["deleted"] += written.deleted
            rows["unchanged"] += changes.unchanged
            rows["conflicts"] += written.conflicts
        return rows, (before, after)

    def _record(
        self, cursor: Any, now: str, before: np.uint64, after: np.uint64
    ) -> None:
        """Write the enrollment statuses, data quality and completed checkpoint."""
        report, planning = self.report, self.planning
        statuses = planning.statuses
        ids = np.concatenate([ids for ids, _ in statuses] or [np.zeros(0, int)])
        new = np.concatenate([s for _, s in statuses] or [np.zeros(0, int)])
        write_statuses(cursor, ids.astype(np.int64), new.astype(np.int64), now)
        audit.replace_data_quality(
            cursor, report.run_id, DataQuality.concat(planning.quality)
        )
        rows = report.rows
        audit.complete_checkpoint(
            cursor,
            report.run_id,
            now,
            {
                "contacts_checksum": planning.digest.hexdigest(),
                "schedules_before_checksum": audit.hex64(before),
                "schedules_after_checksum": audit.hex64(after),
                "contacts_processed": report.contacts_read,
                "emails_scheduled": sum(report.planned.values()),
                "emails_skipped": sum(report.skipped.values()),
                "rows_inserted": rows["inserted"],
                "rows_updated": rows["updated"],
                "rows_deleted": rows["deleted"],
                "rows_unchanged": rows["unchanged"],
                "summary": report.to_dict(),
            },
        )
