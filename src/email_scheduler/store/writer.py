"""The smart update: write only what changed, and never touch the sender's rows.

The diff compares the plan with the existing rows by identity:

- a planned email without a row: insert;
- a row whose content is the same: leave it alone (it keeps its run id);
- a row whose content changed: update it in place (a follow-up's type is
  content, since its identity is its parent);
- a pending or skipped row, dated today or later, that the run plans (see
  `owned`), whose contact was read and whose identity the plan no longer
  holds: delete.

Rows dated before today are history, except overdue pre-scheduled rows whose
identity the plan still holds (catch-ups and follow-ups): those are moved.
Every statement is guarded by the status, so a row the sending system marked
`sent` between our read and our write is never changed; such rows are
counted as conflicts.
The changed rows travel to SQLite as Arrow tables through ADBC bulk ingest,
then one set-based statement per kind of change applies them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from email_scheduler.calendar import MISSING, Days, Ints, civil, from_days
from email_scheduler.plan import (
    PRE_SCHEDULED,
    SKIPPED,
    Outgoing,
    Plan,
    PlannedRows,
    Vocabulary,
)
from email_scheduler.store.audit import ScheduleChecksum
from email_scheduler.store.reader import ExistingRows
from email_scheduler.store.schema import IDENTITY_FIELDS

_GUARD = f"+email_schedules.status IN ('{PRE_SCHEDULED}', '{SKIPPED}')"
"""The status guard of every write. The `+` keeps SQLite from reaching the
rows through the send-date index (every pending row) instead of by id."""

_CONTENT = (
    "email_type",
    "campaign_instance_id",
    "scheduled_send_date",
    "scheduled_send_time",
    "status",
    "skip_reason",
    "priority",
    "email_template",
    "sms_template",
    "metadata",
    "event_year",
    "event_month",
    "event_day",
)


@dataclass(frozen=True)
class Redated:
    """Rows whose content the plan keeps, and whose date balancing may move."""

    row_id: Ints
    written: Days
    """The row's date."""
    place: Ints
    """The email's position among its partition's outgoing emails."""


@dataclass(frozen=True)
class Changes:
    """What a partition's plan changes in email_schedules, before balancing.

    Balancing may still move outgoing emails; `settle` gives them their
    dates. Every other decision of the smart update is already made.
    """

    inserts: PlannedRows
    updates: PlannedRows
    """Planned emails whose row's content changed."""
    update_ids: Ints
    """The ids of those rows."""
    identity_kept: npt.NDArray[np.bool_]
    """Per update: the row keeps its identity (type, instance, event date);
    a follow-up whose type changed, or an old row given its full event
    date, does not."""
    deletes: Ints
    """Row ids to delete."""
    redated: Redated
    unchanged: int
    """Rows left as they are whatever balancing does."""
    places: tuple[Ints, Ints]
    """Outgoing positions of the inserts and the updates (-1: skipped)."""
    checksums: tuple[np.uint64, np.uint64]
    """Checksums of the partition's rows, and of those deleted or updated."""


@dataclass(frozen=True)
class Settled:
    """The changes of a partition once balancing has dated every email."""

    inserts: PlannedRows
    updates: PlannedRows
    update_ids: Ints
    identity_kept: npt.NDArray[np.bool_]
    deletes: Ints
    redated_ids: Ints
    """Rows whose only change is their date."""
    redated_send: Days
    unchanged: int
    checksums: tuple[np.uint64, np.uint64]
    """Checksums of the partition's rows before and after the changes."""


@dataclass(frozen=True)
class Written:
    """Row counts of a write."""

    inserted: int
    updated: int
    deleted: int
    conflicts: int
    """Rows the sending system took over between our read and our write."""


def _places(plan: Plan) -> Ints:
    """Return each email's position among the plan's outgoing emails, or -1."""
    going = ~plan.skipped
    return np.where(going, np.cumsum(going) - 1, -1)


def diff(
    plan: Plan,
    existing: ExistingRows,
    vocabulary: Vocabulary,
    *,
    today: int,
    send_time: str,
    contact_ids: Ints,
    owned: npt.NDArray[np.bool_],
    checksum: ScheduleChecksum,
) -> Changes:
    """Return the inserts, updates and deletes that turn the table into the plan.

    `owned` says, per existing row, whether the run plans it, so that such
    a row the plan lacks is stale. An outgoing email whose row differs at
    most in its date is left for `settle`: balancing decides its date.
    """
    places = _places(plan)
    matched = plan.row >= 0
    rows = plan.row[matched]
    status = np.where(
        plan.skipped[matched], vocabulary.code(SKIPPED), vocabulary.code(PRE_SCHEDULED)
    )
    same_kind = existing.kind[rows] == plan.kind[matched]
    same_event = existing.event[rows] == plan.event[matched]
    # Without a full event date the row's stored event columns may hold
    # anything: only a dated identity is known to be kept as it is.
    identity = same_kind & same_event & (plan.event[matched] != MISSING)
    same = (
        same_kind
        & same_event
        & (existing.time[rows] == vocabulary.code(send_time))
        & (existing.status[rows] == status)
        & (existing.reason[rows] == plan.reason[matched])
        & (existing.priority[rows] == plan.priority[matched])
        & (existing.email_template[rows] == plan.email_template[matched])
        & (existing.sms_template[rows] == plan.sms_template[matched])
        & (existing.metadata[rows] == plan.metadata[matched])
    )
    going = ~plan.skipped[matched]
    redated = same & going
    unchanged = same & ~going & (existing.send[rows] == plan.send[matched])
    changed = ~redated & ~unchanged
    at = np.flatnonzero(matched)
    stale = _stale(existing, vocabulary, rows, today, contact_ids, owned)
    replaced = np.concatenate([np.flatnonzero(stale), rows[changed]])
    return Changes(
        inserts=plan.rows(~matched),
        updates=plan.rows(at[changed]),
        update_ids=existing.row_id[rows[changed]],
        identity_kept=identity[changed],
        deletes=existing.row_id[stale],
        redated=Redated(
            existing.row_id[rows[redated]],
            existing.send[rows[redated]].astype(np.int32),
            places[at[redated]].astype(np.int32),
        ),
        unchanged=int(unchanged.sum()),
        places=(places[~matched], places[at[changed]]),
        checksums=(
            checksum.existing(existing, vocabulary),
            checksum.existing(existing.take(replaced), vocabulary),
        ),
    )


def settle(changes: Changes, outgoing: Outgoing, checksum: ScheduleChecksum) -> Settled:
    """Return the changes with the dates balancing gave the outgoing emails.

    `outgoing` holds the partition's balanced outgoing emails, in place
    order.
    """

    def dated(part: PlannedRows, places: Ints) -> PlannedRows:
        going = places >= 0
        send = part.send.copy()
        send[going] = outgoing.send[places[going]]
        return part.with_(send=send)

    inserts = dated(changes.inserts, changes.places[0])
    updates = dated(changes.updates, changes.places[1])
    redated = changes.redated
    emails = outgoing.take(redated.place)
    moved = emails.send != redated.written
    before, removed = changes.checksums
    with np.errstate(over="ignore"):
        after = (
            before
            - removed
            - checksum.outgoing(emails.take(moved), redated.written[moved])
            + checksum.outgoing(emails.take(moved))
            + checksum.planned(updates)
            + checksum.planned(inserts)
        )
    return Settled(
        inserts=inserts,
        updates=updates,
        update_ids=changes.update_ids,
        identity_kept=changes.identity_kept,
        deletes=changes.deletes,
        redated_ids=redated.row_id[moved],
        redated_send=emails.send[moved],
        unchanged=changes.unchanged + int((~moved).sum()),
        checksums=(before, after),
    )


def _stale(
    existing: ExistingRows,
    vocabulary: Vocabulary,
    matched_rows: Ints,
    today: int,
    contact_ids: Ints,
    owned: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Return the rows the plan no longer holds and the scheduler may delete."""
    managed = np.isin(
        existing.status, [vocabulary.code(PRE_SCHEDULED), vocabulary.code(SKIPPED)]
    )
    stale = managed & (existing.send != MISSING) & (existing.send >= today) & owned
    stale &= np.isin(existing.contact_id, contact_ids)
    stale[matched_rows] = False
    return stale


def _date_strings(days: Ints) -> pa.DictionaryArray:
    """Return days as `YYYY-MM-DD` text, each distinct day formatted once."""
    unique, inverse = np.unique(days, return_inverse=True)
    text = pa.array([from_days(int(d)).isoformat() for d in unique], type=pa.string())
    indices = pa.array(inverse.reshape(-1).astype(np.int32))
    return pa.DictionaryArray.from_arrays(indices, text)


def _constant(value: str, n: int) -> pa.DictionaryArray:
    """Return `n` times the same text, stored once."""
    indices = pa.array(np.zeros(n, dtype=np.int8))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


def rows_table(
    part: PlannedRows, vocabulary: Vocabulary, *, send_time: str, run_id: str, now: str
) -> pa.Table:
    """Return planned rows as an Arrow table of email_schedules columns.

    Text columns are dictionary arrays over the vocabulary: SQLite reads
    each row's text straight from it.
    """
    dated = part.event != MISSING
    year, month, day = civil(np.where(dated, part.event, 0))
    n = len(part)
    kinds = vocabulary.kinds
    type_of = np.array([vocabulary.code(t) for t, _ in kinds] or [0], dtype=np.int64)
    instance_of = np.array([i for _, i in kinds] or [0], dtype=np.int64)
    instance = instance_of[part.kind]
    status = np.where(
        part.skipped, vocabulary.code(SKIPPED), vocabulary.code(PRE_SCHEDULED)
    )
    return pa.table(
        {
            "contact_id": pa.array(part.contact_id),
            "email_type": vocabulary.text(type_of[part.kind]),
            "campaign_instance_id": pa.array(instance, mask=instance == 0),
            "scheduled_send_date": _date_strings(part.send),
            "scheduled_send_time": _constant(send_time, n),
            "status": vocabulary.text(status),
            "skip_reason": vocabulary.text(part.reason),
            "priority": pa.array(part.priority),
            "email_template": vocabulary.text(part.email_template),
            "sms_template": vocabulary.text(part.sms_template),
            "metadata": vocabulary.text(part.metadata),
            "event_year": pa.array(year, mask=~dated),
            "event_month": pa.array(month, mask=~dated),
            "event_day": pa.array(day, mask=~dated),
            "scheduler_run_id": _constant(run_id, n),
            "updated_at": _constant(now, n),
        }
    )


SEND_DATE_INDEX = "idx_email_schedules_status_date"
"""The sending system's way to its due rows."""

SORT_THREADS = 2
"""Threads SQLite may sort with when it builds an index: the run's own
threads wait for it, so the machine's second core is free."""


BULK_MINIMUM = 100_000
"""Fewer new rows than this are never a bulk write."""

SCATTERED_CACHE_KIB = 32 << 10
"""SQLite's page cache for a write that is not bulk. Its rows lie all over
the table and its indexes, and with the default 2 MB cache each row reads
again the index pages above it: at 3M contacts, 32 MB took the next day's
write of 55,000 rows from 3.4-3.9 s to 2.9-3.2 s. A bulk write keeps the
default, as its index builds were slower with a larger cache."""


def bulk(inserts: int, rows: int) -> bool:
    """Return whether inserting `inserts` rows into a table of `rows` is bulk.

    Growing the table's indexes row by row costs more than building them
    again once the new rows outnumber a quarter of the table's (a first run).
    """
    return inserts >= max(BULK_MINIMUM, rows // 4)


@contextmanager
def indexes_rebuilt(cursor: Any) -> Iterator[None]:
    """Drop the indexes of email_schedules for the block, then build them again.

    Building an index from sorted rows is about twice as fast as growing
    it row by row. The indexes are rebuilt inside the caller's transaction,
    so nobody ever sees the table without them, and each keeps the
    definition the database has, other systems' indexes included. A
    unique index that no longer holds fails the rebuild, and with it the
    transaction, as the insert would have failed with the index in place.
    """
    cursor.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'email_schedules' AND sql IS NOT NULL ORDER BY name"
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    cursor.execute(f"PRAGMA threads = {SORT_THREADS}")
    for _, sql in indexes:
        cursor.execute(sql)


def _changes(cursor: Any) -> int:
    """Return the rows the last statement changed (not counting the change
    log's entries, which its triggers add)."""
    cursor.execute("SELECT changes()")
    return int(cursor.fetchone()[0])


def _ingest(cursor: object, name: str, table: pa.Table) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS temp.{name}")  # type: ignore[attr-defined]
    cursor.adbc_ingest(name, table, mode="create", temporary=True)  # type: ignore[attr-defined]


def next_id(cursor: Any) -> int:
    """Return an id above every id email_schedules has or, by its
    AUTOINCREMENT counter, ever had."""
    cursor.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name = 'sqlite_sequence'"
    )
    counted = (
        "(SELECT seq FROM sqlite_sequence WHERE name = 'email_schedules')"
        if cursor.fetchall()
        else "0"
    )
    cursor.execute(
        f"SELECT max(IFNULL({counted}, 0), "
        "IFNULL((SELECT max(id) FROM email_schedules), 0)) + 1"
    )
    return int(cursor.fetchone()[0])


def new_rows(
    inserts: PlannedRows,
    vocabulary: Vocabulary,
    *,
    first_id: int,
    send_time: str,
    run_id: str,
    now: str,
) -> pa.Table:
    """Return the rows to insert as an Arrow table of email_schedules columns,
    in contact order (the identity index then grows at its end), numbered
    from `first_id` (see `next_id`)."""
    inserts = inserts.take(np.argsort(inserts.contact_id, kind="stable"))
    table = rows_table(inserts, vocabulary, send_time=send_time, run_id=run_id, now=now)
    table = table.append_column("created_at", table.column("updated_at"))
    ids = np.arange(first_id, first_id + len(inserts), dtype=np.int64)
    return table.append_column("id", pa.array(ids))


def stamps(*, send_time: str, run_id: str, now: str) -> dict[str, str]:
    """Return the columns every row a run inserts holds the same text in."""
    return {
        "scheduled_send_time": send_time,
        "scheduler_run_id": run_id,
        "updated_at": now,
        "created_at": now,
    }


def insert_rows(cursor: Any, new: pa.Table, stamped: dict[str, str]) -> int:
    """Insert the rows of `new` (see `new_rows`) into email_schedules; return
    how many.

    The `stamped` columns (see `stamps`) hold one text for every row: they
    are written into the statement rather than bound row by row, which takes
    a tenth off a first run's insert of millions of rows.
    """
    bound = new.drop_columns(list(stamped))
    columns = ", ".join([*bound.column_names, *stamped])
    texts = ["'" + text.replace("'", "''") + "'" for text in stamped.values()]
    values = ", ".join(["?"] * bound.num_columns + texts)
    cursor.executemany(
        f"INSERT INTO email_schedules ({columns}) VALUES ({values})", bound
    )
    return int(cursor.rowcount)


def write(
    cursor: Any,
    changes: Settled,
    vocabulary: Vocabulary,
    *,
    send_time: str,
    run_id: str,
    now: str,
    new: pa.Table,
    inserting: AbstractContextManager[None] | None = None,
) -> Written:
    """Apply the changes through an ADBC cursor, inside the caller's transaction.

    The inserts go in as `new` holds them (see `new_rows`), inside
    `inserting` when given (see `snapshot.unlogged`).
    """
    run = cursor.execute
    deleted = 0
    if len(changes.deletes):
        _ingest(cursor, "stale_rows", pa.table({"id": np.sort(changes.deletes)}))
        run(
            f"DELETE FROM email_schedules WHERE {_GUARD} "
            "AND id IN (SELECT id FROM temp.stale_rows)"
        )
        deleted = _changes(cursor)

    updated = 0
    if len(changes.updates):
        table = rows_table(
            changes.updates, vocabulary, send_time=send_time, run_id=run_id, now=now
        )
        table = table.append_column("id", pa.array(changes.update_ids))
        kept = changes.identity_kept
        # Leaving the identity columns out of an update spares SQLite the
        # identity index: about half the cost of the statement.
        content = tuple(c for c in _CONTENT if c not in IDENTITY_FIELDS)
        for subset, columns in ((kept, content), (~kept, _CONTENT)):
            if not subset.any():
                continue
            _ingest(
                cursor, "changed_rows", table.filter(pa.array(subset)).sort_by("id")
            )
            assignments = ", ".join(
                f"{c} = u.{c}" for c in (*columns, "scheduler_run_id", "updated_at")
            )
            run(
                f"UPDATE email_schedules SET {assignments} "
                f"FROM temp.changed_rows AS u WHERE email_schedules.id = u.id "
                f"AND {_GUARD}"
            )
            updated += _changes(cursor)

    redated = 0
    if len(changes.redated_ids):
        order = np.argsort(changes.redated_ids)
        table = pa.table(
            {
                "id": changes.redated_ids[order],
                "scheduled_send_date": _date_strings(changes.redated_send[order]),
            }
        )
        _ingest(cursor, "redated_rows", table)
        run(
            "UPDATE email_schedules SET scheduled_send_date = u.scheduled_send_date, "
            f"scheduler_run_id = '{run_id}', updated_at = '{now}' "
            f"FROM temp.redated_rows AS u WHERE email_schedules.id = u.id "
            f"AND {_GUARD}"
        )
        redated = _changes(cursor)

    inserted = 0
    if len(new):
        stamped = stamps(send_time=send_time, run_id=run_id, now=now)
        with inserting or nullcontext():
            inserted = insert_rows(cursor, new, stamped)

    for name in ("stale_rows", "changed_rows", "redated_rows"):
        run(f"DROP TABLE IF EXISTS temp.{name}")
    conflicts = (len(changes.deletes) - deleted) + (
        len(changes.updates) + len(changes.redated_ids) - updated - redated
    )
    return Written(inserted, updated + redated, deleted, conflicts)
