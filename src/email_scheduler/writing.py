"""The writing pass of a run: each partition's changes, then the run's records.

After balancing, each partition set aside by the planning pass (see
`passes`) gets the dates balancing gave its outgoing emails, and every
partition's changes are written in one transaction with the run's records.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from email_scheduler import rerun
from email_scheduler.contacts import DataQuality
from email_scheduler.memory import release_freed_memory
from email_scheduler.partition import SetAside
from email_scheduler.passes import Planning, send_time, utc_now
from email_scheduler.plan import Outgoing, Vocabulary
from email_scheduler.report import RunReport
from email_scheduler.store import audit, reader, snapshot, writer
from email_scheduler.store.campaigns import write_statuses
from email_scheduler.store.database import columnar_transaction, with_retries
from email_scheduler.store.reader import ContactRange
from email_scheduler.store.staging import Staging, definition


@dataclass(frozen=True)
class Kept:
    """What a partition's write does to its snapshot (see `store.snapshot`)."""

    snapshot: snapshot.Encoded | None
    """The snapshot to store, if any."""
    logged: tuple[int, int] | None
    """The first and last ids of new rows the snapshot cannot hold, which are
    logged instead, if any."""


@dataclass(frozen=True)
class ReadyPartition:
    """One partition's changes made ready to write."""

    changes: writer.Settled
    vocabulary: Vocabulary
    new: pa.Table
    """The rows to insert (see `writer.new_rows`); none where they are staged."""
    kept: Kept


NOTHING_NEW = pa.table({})
"""The rows a partition whose new rows are staged inserts itself."""

UNKEPT = Kept(None, None)
"""A write that leaves its partition's snapshot alone."""

DIRECT_SHARE = 0.5
"""The share of a bulk write's new rows the run's connection inserts itself,
in the first partitions; the rest are staged (see `store.staging`)."""


def _direct_partitions(inserts: list[int]) -> int:
    """Return how many of the first partitions, with `inserts` new rows each,
    the run's connection writes alone: about `DIRECT_SHARE` of the rows, and
    always at least one partition, as one is also staged."""
    reached = np.searchsorted(np.cumsum(inserts), DIRECT_SHARE * sum(inserts))
    return int(np.clip(reached + 1, 1, len(inserts) - 1))


class Stager:
    """The later partitions of a bulk write made ready and their new rows
    inserted into a staging database, on a thread of their own, while the
    run's connection writes the earlier ones."""

    def __init__(
        self,
        staging: Staging,
        make_ready: Callable[[int], ReadyPartition],
        numbers: range,
        stamped: dict[str, str],
    ) -> None:
        self._staging = staging
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="stager")
        self._kept = self._pool.submit(self._stage, make_ready, numbers, stamped)

    def _stage(
        self,
        make_ready: Callable[[int], ReadyPartition],
        numbers: range,
        stamped: dict[str, str],
    ) -> dict[int, Kept]:
        kept: dict[int, Kept] = {}
        try:
            for number in numbers:
                if self._stop.is_set():
                    break
                ready = make_ready(number)
                self._staging.insert(ready.new, stamped)
                kept[number] = ready.kept
                del ready
        except BaseException:
            self._staging.abandon()
            raise
        self._staging.finish()
        return kept

    def copy_into(self, cursor: Any) -> tuple[int, dict[int, Kept]]:
        """Wait for the staged partitions; copy their new rows in through the
        run's `cursor`. Return how many, and what each partition's write
        does to its snapshot."""
        kept = self._kept.result()
        return self._staging.copy_into(cursor), kept

    def close(self) -> None:
        """Stop staging (if it has not ended) and wait for the thread."""
        self._stop.set()
        self._pool.shutdown(wait=True)


@dataclass
class Tally:
    """What the writing pass has written so far: row counts, and checksums of
    email_schedules before and after (see `audit.ScheduleChecksum`)."""

    rows: Counter[str] = field(
        default_factory=lambda: Counter(
            inserted=0, updated=0, deleted=0, unchanged=0, conflicts=0
        )
    )
    before: np.uint64 = np.uint64(0)
    after: np.uint64 = np.uint64(0)

    def add(self, changes: writer.Settled, written: writer.Written) -> None:
        """Add one partition's changes as written."""
        was, will = changes.checksums
        with np.errstate(over="ignore"):
            self.before, self.after = self.before + was, self.after + will
        self.rows["inserted"] += written.inserted
        self.rows["updated"] += written.updated
        self.rows["deleted"] += written.deleted
        self.rows["unchanged"] += changes.unchanged
        self.rows["conflicts"] += written.conflicts


@dataclass
class Writing:
    """The writing pass: each partition's changes, then the run's records."""

    planning: Planning
    balanced: Outgoing
    report: RunReport

    def _settled(
        self, number: int, checksum: audit.ScheduleChecksum
    ) -> tuple[writer.Settled, Vocabulary, SetAside]:
        """Return one partition's changes, dated by balancing."""
        part = self.planning.shelf.get(number)
        outgoing = self.balanced.take(self.planning.places[number])
        settled = writer.settle(part.changes, outgoing, checksum)
        return (
            settled,
            Vocabulary.restore(part.strings, self.planning.shared.kinds),
            part,
        )

    def _partitions(self) -> Iterator[writer.Settled]:
        """Yield each partition's changes, dated by balancing."""
        checksum = audit.ScheduleChecksum(self.planning.shared.kinds)
        for number in range(len(self.planning.places)):
            yield self._settled(number, checksum)[0]
            release_freed_memory()

    def run(self, path: Path, columnar: Any) -> None:
        """Write every change (or, in a dry run, only count them)."""
        settings = self.planning.shared.settings
        if self.report.dry_run:
            rows: Counter[str] = Counter(inserted=0, updated=0, deleted=0, unchanged=0)
            for changes in self._partitions():
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
        now = utc_now()
        planning = self.planning
        staging: Staging | None = None
        aside = ThreadPoolExecutor(1, thread_name_prefix="aside")
        try:
            with columnar_transaction(columnar) as cursor, aside:
                # Changes logged since the run started are nobody's but its own
                # when the counter has not moved by the time it writes.
                alone = (
                    snapshot.change_counter(cursor) == planning.shared.change_counter
                )
                if not planning.bulk:
                    cursor.execute(f"PRAGMA cache_size = -{writer.SCATTERED_CACHE_KIB}")
                elif len(planning.ranges) > 1:
                    path = planning.shelf.folder / "staged.sqlite3"
                    staging = Staging(path, *definition(cursor))
                indexing = writer.indexes_rebuilt(cursor) if planning.bulk else None
                with indexing or nullcontext():
                    tally = self._write_partitions(cursor, now, aside, staging)
                snapshot.tidy(cursor, planning.ranges, planning.shared.snapshots)
                self.report.rows = dict(tally.rows)
                counter = snapshot.change_counter(cursor) if alone else None
                self._record(cursor, now, tally.before, tally.after, counter)
        finally:
            if staging is not None:
                staging.detach(columnar)

    def _write_partitions(
        self,
        cursor: Any,
        now: str,
        aside: ThreadPoolExecutor,
        staging: Staging | None,
    ) -> Tally:
        """Write each partition's changes; return what was written.

        While SQLite writes one partition (without the GIL), the next one is
        made ready `aside`: at millions of new rows that takes seconds. With
        `staging`, the later partitions' new rows are inserted there by a
        second writer meanwhile, and copied in once the earlier ones are
        written.
        """
        planning, tally = self.planning, Tally()
        stamps = {
            "send_time": send_time(planning.shared.settings),
            "run_id": self.report.run_id,
            "now": now,
        }
        checksum = audit.ScheduleChecksum(planning.shared.kinds)
        # Nobody else writes while the transaction is open: the new rows of
        # partition after partition take the ids that follow.
        firsts = np.cumsum([writer.next_id(cursor), *planning.inserts]).tolist()

        def ready(number: int) -> ReadyPartition:
            return self._ready(number, firsts[number], checksum, stamps)

        count = len(planning.ranges)
        direct = count if staging is None else _direct_partitions(planning.inserts)
        stager = None
        if staging is not None:
            stamped = writer.stamps(**stamps)
            stager = Stager(staging, ready, range(direct, count), stamped)
        try:
            ahead = aside.submit(ready, 0)
            for number in range(direct):
                made = ahead.result()
                if number + 1 < direct:
                    ahead = aside.submit(ready, number + 1)
                self._write_partition(cursor, number, made, stamps, tally)
                del made
                release_freed_memory()
            if stager is not None:
                # The staged partitions' other changes are written while the
                # second writer finishes; their new rows come with the copy,
                # and their snapshots after it.
                for number in range(direct, count):
                    changes, vocabulary, _ = self._settled(number, checksum)
                    made = ReadyPartition(changes, vocabulary, NOTHING_NEW, UNKEPT)
                    self._write_partition(cursor, number, made, stamps, tally)
                    del made
                    release_freed_memory()
                with snapshot.unlogged(cursor):
                    copied, staged = stager.copy_into(cursor)
                tally.rows["inserted"] += copied
                for number, kept in staged.items():
                    self._store_snapshot(cursor, planning.ranges[number], kept)
        finally:
            if stager is not None:
                stager.close()
        return tally

    def _write_partition(
        self,
        cursor: Any,
        number: int,
        made: ReadyPartition,
        stamps: dict[str, str],
        tally: Tally,
    ) -> None:
        """Write one partition's changes, and add them to `tally`."""
        bulk = self.planning.bulk
        written = writer.write(
            cursor,
            made.changes,
            made.vocabulary,
            **stamps,
            new=made.new,
            inserting=snapshot.unlogged(cursor) if bulk else None,
        )
        self._store_snapshot(cursor, self.planning.ranges[number], made.kept)
        tally.add(made.changes, written)

    def _ready(
        self,
        number: int,
        first_id: int,
        checksum: audit.ScheduleChecksum,
        stamps: dict[str, str],
    ) -> ReadyPartition:
        """Return one partition ready to write, its new rows numbered from
        `first_id`."""
        changes, vocabulary, part = self._settled(number, checksum)
        new = writer.new_rows(changes.inserts, vocabulary, first_id=first_id, **stamps)
        kept = self._kept(self.planning.ranges[number], part.snapshot, new)
        return ReadyPartition(changes, vocabulary, new, kept)

    def _kept(
        self, ids: ContactRange, read: snapshot.Encoded | None, new: pa.Table
    ) -> Kept:
        """Return what a partition's write does to its snapshot: it is written
        where the run read the rows in full, or many changed since, or it
        inserts rows unlogged (a bulk write), which the snapshot then holds
        as the reader will read them, or which are logged instead."""
        planning = self.planning
        if not planning.shared.snapshots.signature:
            return UNKEPT  # changes are not being logged: it would go stale
        if not planning.bulk:
            stale = read is not None and ids in planning.stale_snapshots
            return Kept(read if stale else None, None)
        rows = snapshot.decode(read.data) if read is not None else None
        added = snapshot.as_read(new) if rows is not None else None
        if rows is not None and added is not None:
            held = reader.by_id(pa.concat_tables([rows, added]))
            return Kept(snapshot.encode(held), None)
        found = new.column("id").to_numpy() if len(new) else None
        span = None if found is None else (int(found.min()), int(found.max()))
        return Kept(read, span)

    def _store_snapshot(self, cursor: Any, ids: ContactRange, kept: Kept) -> None:
        """Do to a partition's snapshot what `kept` says (after its new rows
        are written)."""
        if kept.logged is not None:
            snapshot.log_rows(cursor, *kept.logged)
        if kept.snapshot is not None:
            snapshot.store(cursor, ids, kept.snapshot, self.planning.shared.snapshots)

    def _record(
        self,
        cursor: Any,
        now: str,
        before: np.uint64,
        after: np.uint64,
        counter: int | None,
    ) -> None:
        """Write the enrollment statuses, data quality and completed checkpoint.

        `counter` is the change log's counter once the plan is written, or
        None when somebody else changed email_schedules during the run.
        """
        report, planning = self.report, self.planning
        statuses = planning.statuses
        ids = np.concatenate([ids for ids, _ in statuses] or [np.zeros(0, int)])
        new = np.concatenate([s for _, s in statuses] or [np.zeros(0, int)])
        written = (ids.astype(np.int64), new.astype(np.int64))
        write_statuses(cursor, *written, now)
        audit.replace_data_quality(
            cursor, report.run_id, DataQuality.concat(planning.quality)
        )
        shared = planning.shared
        audit.complete_checkpoint(
            cursor,
            report,
            now,
            audit.Checksums(
                contacts=planning.digest.hexdigest(),
                schedules_before=audit.hex64(before),
                schedules_after=audit.hex64(after),
                inputs=None
                if counter is None
                else rerun.inputs_checksum(shared, counter, written),
            ),
        )
