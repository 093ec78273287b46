"""The writing pass of a run: each partition's changes, then the run's records.

After balancing, each partition set aside by the planning pass (see
`passes`) gets the dates balancing gave its outgoing emails, and every
partition's changes are written in one transaction with the run's records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ReadyPartition:
    """One partition's changes made ready to write."""

    changes: writer.Settled
    vocabulary: Vocabulary
    snapshot: snapshot.Encoded | None
    """The partition's rows as read, where the writing pass needs them."""
    new: pa.Table
    """The rows to insert (see `writer.new_rows`)."""
    added: pa.Table | None
    """In a bulk write, how a snapshot holds the new rows (see
    `snapshot.as_read`)."""


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
        aside = ThreadPoolExecutor(1, thread_name_prefix="aside")
        with columnar_transaction(columnar) as cursor, aside:
            # Changes logged since the run started are nobody's but its own
            # when the counter has not moved by the time it writes.
            alone = snapshot.change_counter(cursor) == planning.shared.change_counter
            if not planning.bulk:
                cursor.execute(f"PRAGMA cache_size = -{writer.SCATTERED_CACHE_KIB}")
            indexing = writer.indexes_rebuilt(cursor) if planning.bulk else None
            with indexing or nullcontext():
                rows, checksums = self._write_partitions(cursor, now, aside)
            snapshot.tidy(cursor, planning.ranges, planning.shared.snapshots)
            self.report.rows = dict(rows)
            counter = snapshot.change_counter(cursor) if alone else None
            self._record(cursor, now, *checksums, counter)

    def _write_partitions(
        self, cursor: Any, now: str, aside: ThreadPoolExecutor
    ) -> tuple[Counter[str], tuple[np.uint64, np.uint64]]:
        """Write each partition's changes; return the row counts and checksums.

        While SQLite writes one partition (without the GIL), the next one is
        made ready `aside`: at millions of new rows that takes seconds.
        """
        rows: Counter[str] = Counter(
            inserted=0, updated=0, deleted=0, unchanged=0, conflicts=0
        )
        before = after = np.uint64(0)
        planning = self.planning
        stamps = {
            "send_time": send_time(planning.shared.settings),
            "run_id": self.report.run_id,
            "now": now,
        }
        checksum = audit.ScheduleChecksum(planning.shared.kinds)
        # Nobody else writes while the transaction is open: the new rows of
        # partition after partition take the ids that follow.
        first_id = writer.next_id(cursor)
        ahead = aside.submit(self._ready, 0, first_id, checksum, stamps)
        for number, ids in enumerate(planning.ranges):
            ready = ahead.result()
            if number + 1 < len(planning.ranges):
                first_id += len(ready.new)
                ahead = aside.submit(
                    self._ready, number + 1, first_id, checksum, stamps
                )
            changes = ready.changes
            was, will = changes.checksums
            with np.errstate(over="ignore"):
                before, after = before + was, after + will
            written = writer.write(
                cursor,
                changes,
                ready.vocabulary,
                **stamps,
                new=ready.new,
                inserting=snapshot.unlogged(cursor) if planning.bulk else None,
            )
            self._store_snapshot(cursor, ids, ready.snapshot, ready.new, ready.added)
            rows["inserted"] += written.inserted
            rows["updated"] += written.updated
            rows["deleted"] += written.deleted
            rows["unchanged"] += changes.unchanged
            rows["conflicts"] += written.conflicts
            del ready, changes
            release_freed_memory()
        return rows, (before, after)

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
        added = snapshot.as_read(new) if self.planning.bulk else None
        return ReadyPartition(changes, vocabulary, part.snapshot, new, added)

    def _store_snapshot(
        self,
        cursor: Any,
        ids: ContactRange,
        read: snapshot.Encoded | None,
        new_rows: pa.Table,
        added: pa.Table | None,
    ) -> None:
        """Write a partition's snapshot where the run read its rows in full, or
        many changed since, or it inserted rows unlogged (a bulk write):
        `added` then says how the snapshot holds them."""
        catalog = self.planning.shared.snapshots
        if not catalog.signature:
            return  # changes are not being logged: a snapshot would go stale
        if not self.planning.bulk:
            if read is not None and ids in self.planning.stale_snapshots:
                snapshot.store(cursor, ids, read, catalog)
            return
        rows = snapshot.decode(read.data) if read is not None else None
        if added is not None and rows is not None:
            held = reader.by_id(pa.concat_tables([rows, added]))
            snapshot.store(cursor, ids, snapshot.encode(held), catalog)
            return
        if len(new_rows):
            # Rows the snapshot cannot hold as read are logged instead.
            found = new_rows.column("id").to_numpy()
            snapshot.log_rows(cursor, int(found.min()), int(found.max()))
        if read is not None:
            snapshot.store(cursor, ids, read, catalog)

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
