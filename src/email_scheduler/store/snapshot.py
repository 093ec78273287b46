"""Schedule snapshots: each partition's rows as last read, kept in the database.

SQLite hands over an email_schedules row in about a microsecond, most of a
re-run's time at millions of rows, while from one run to the next only a
few rows change. So the rows of each partition, as the reader read them (a
schedule table), are kept in `schedule_snapshots` with the last entry of
the change log they include, and triggers log every change anyone makes to
email_schedules (`schema.CHANGE_TRIGGERS`). A partition is then read as its
snapshot without the rows logged since, plus those rows read afresh: the
rows a full read would give, for the cost of the changed ones.

A snapshot is used only while it can be trusted: every trigger is in place
(`schema.migrate` drops every snapshot when it has to restore one, since
changes went unlogged), the table has the columns the snapshot was read
with, and its partition is the run's. One change escapes the triggers: a
row SQLite deletes to make room for one that conflicts with it on a unique
index (INSERT OR REPLACE) fires no delete trigger. So a partition's rows
are also counted in the table, and a snapshot that holds more is not used.
Snapshots are written in the run's own transaction, with its writes: a
partition's rows as the run read them, through the log entry the run
started at (its own writes are logged after it). A bulk write inserts
without logging (millions of log entries would cost more than the insert),
and its partitions' snapshots then also hold the inserted rows as the
reader will read them (`as_read`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import Ints
from email_scheduler.identity import contains
from email_scheduler.store import reader, schema
from email_scheduler.store.database import fetch_table
from email_scheduler.store.reader import ContactRange
from email_scheduler.store.schema import CHANGE_TABLE, SNAPSHOT_TABLE

log = logging.getLogger("email_scheduler")

FORMAT = 1
"""The version of the snapshot encoding; a snapshot of another is ignored."""

REBUILD_SHARE = 0.01
"""A snapshot is built again once the rows changed since outnumber this
share of its rows: reading them one by one then costs more than it saves."""


def signature(columns: list[str]) -> str:
    """Return what a snapshot must have been read with to be used."""
    return f"{FORMAT}:" + ",".join(columns)


@dataclass(frozen=True)
class Encoded:
    """A schedule table as compressed Arrow IPC."""

    data: bytes
    rows: int


def encode(table: pa.Table) -> Encoded:
    """Return a schedule table encoded."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as stream:
        stream.write_table(table)
    return Encoded(bytes(sink.getvalue().to_pybytes()), table.num_rows)


def decode(data: bytes) -> pa.Table | None:
    """Return the schedule table encoded in `data`, or None if it is not one."""
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError):
        return None
    return table if table.schema.equals(reader.SCHEDULE_TABLE) else None


@dataclass(frozen=True)
class Catalog:
    """The snapshots a run may use."""

    signature: str
    """The signature a snapshot needs; empty when none may be used."""
    ranges: list[ContactRange]
    """The partitions that have one, in order."""
    last_change: int
    """The log's last entry when the run started (see `last_change`)."""

    @staticmethod
    def of(sqlite: sqlite3.Connection, columns: list[str]) -> Catalog:
        """Return the usable snapshots of a database whose email_schedules has
        `columns` (none while its change log is not complete)."""
        tables = {
            name
            for (name,) in sqlite.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        if not {SNAPSHOT_TABLE, CHANGE_TABLE} <= tables or not columns:
            return Catalog("", [], 0)
        if not schema.change_triggers_intact(sqlite):
            return Catalog("", [], 0)
        wanted = signature(columns)
        rows = sqlite.execute(
            f"SELECT first_contact, last_contact FROM {SNAPSHOT_TABLE} "
            "WHERE signature = ? ORDER BY first_contact",
            (wanted,),
        ).fetchall()
        ranges = [(int(first), int(last)) for first, last in rows]
        return Catalog(wanted, ranges, last_change(sqlite))


@dataclass(frozen=True)
class PartitionRows:
    """A partition's rows, and whether its snapshot is to be built again."""

    table: pa.Table
    rebuild: bool


def read(
    conn: Any, catalog: Catalog, columns: list[str], ids: ContactRange
) -> PartitionRows:
    """Return the schedule table of the contacts in `ids`, from their snapshot
    and the rows changed since when it can be used, else read in full."""
    first, last = ids
    found = (
        fetch_table(
            conn,
            f"SELECT valid_through, data FROM {SNAPSHOT_TABLE} "
            "WHERE first_contact = ? AND last_contact = ? AND signature = ?",
            (first, last, catalog.signature),
        )
        if catalog.signature
        else None
    )
    kept = decode(found.column("data")[0].as_py()) if found and found.num_rows else None
    if found is None or kept is None:
        return PartitionRows(reader.schedule_table(conn, columns, ids), True)
    valid_through = int(found.column("valid_through")[0].as_py())
    changed = (
        fetch_table(
            conn,
            f"SELECT DISTINCT row_id FROM {CHANGE_TABLE} "
            "WHERE contact_id BETWEEN ? AND ? AND seq > ?",
            (first, last, valid_through),
        )
        .column("row_id")
        .to_numpy(zero_copy_only=False)
    )
    table = kept
    if len(changed):
        fresh = reader.schedule_table(conn, columns, ids, changed_since=valid_through)
        unchanged = _without(kept.column("id").to_numpy(), changed)
        table = reader.by_id(pa.concat_tables([kept.filter(unchanged), fresh]))
    if table.num_rows != _row_count(conn, ids):
        log.warning(
            "email_schedules lost rows of contacts %d to %d without logging "
            "them (as INSERT OR REPLACE does to the rows it replaces); reading "
            "their rows in full",
            first,
            last,
        )
        return PartitionRows(reader.schedule_table(conn, columns, ids), True)
    return PartitionRows(table, len(changed) > REBUILD_SHARE * len(kept))


def _without(ids: Ints, dropped: Ints) -> npt.NDArray[np.bool_]:
    """Return which of the ascending `ids` are not in `dropped`: a few
    hundred changed rows among a partition's hundred thousand are looked up
    in them, rather than both sorted together."""
    if np.any(ids[1:] <= ids[:-1]):  # not as a snapshot keeps them
        return np.isin(ids, dropped, invert=True)
    keep = np.ones(len(ids), dtype=bool)
    held = dropped[contains(ids, dropped)]
    keep[np.searchsorted(ids, held)] = False
    return keep


def _row_count(conn: Any, ids: ContactRange) -> int:
    """Return how many rows of email_schedules belong to the contacts in `ids`.

    Every row a partition's snapshot and log give is in the table but for
    one kind: a row SQLite deleted to make room for a row that conflicts
    with it on a unique index (INSERT OR REPLACE), which fires no delete
    trigger. Such rows are exactly those beyond this count.
    """
    found = fetch_table(
        conn,
        "SELECT count(*) FROM email_schedules WHERE contact_id BETWEEN ? AND ?",
        ids,
    )
    return int(found.column(0)[0].as_py())


def _parents(email_type: pa.Array, metadata: pa.Array) -> Ints | None:
    """Return the parent of each follow-up as `reader._FOLLOW_UP_PARENT` reads
    it, or None where a metadata value is one Python and SQLite might read
    apart (the run writes none such)."""
    parent = np.full(len(email_type), -1, dtype=np.int64)
    types = email_type.cast(pa.string())
    follow_up = pc.starts_with(types, "followup_").fill_null(False)
    follow_up = pc.and_(follow_up, pc.is_valid(metadata))
    at = np.flatnonzero(follow_up.to_numpy(zero_copy_only=False))
    texts = metadata.cast(pa.string()).take(pa.array(at)).to_pylist()
    for position, text in zip(at.tolist(), texts, strict=True):
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, dict):
            continue
        found = value.get("parent_id")
        if found is None and "parent_id" not in value:
            continue
        if type(found) is not int:
            return None
        parent[position] = found
    return parent


def _packed_event(table: pa.Table) -> Ints:
    """Return the event dates packed as `reader._event` packs them."""

    def part(name: str, empty: int) -> Ints:
        column = table.column(name).fill_null(empty).to_numpy()
        return np.asarray(column, dtype=np.int64)

    year = part("event_year", -1)
    month, day = (
        np.clip(part(name, 0), 0, 1023) for name in ("event_month", "event_day")
    )
    return (year << 20) | (month << 10) | day


def as_read(written: pa.Table) -> pa.Table | None:
    """Return rows the run writes (`writer.rows_table` with their ids) as the
    reader will read them: a schedule table, or None if it cannot say."""
    if not written.num_rows:
        return reader.SCHEDULE_TABLE.empty_table()
    written = written.combine_chunks()

    def text(name: str) -> pa.Array:
        if name not in written.column_names:
            return pa.nulls(written.num_rows, pa.string())
        return written.column(name).chunk(0).cast(pa.string())

    parent = _parents(written.column("email_type").chunk(0), text("metadata"))
    if parent is None:
        return None
    content = pc.binary_join_element_wise(
        *(text(name) for name in reader.CONTENT_FIELDS),
        reader.SEPARATOR,
        null_handling="replace",
        null_replacement="",
    )
    n = written.num_rows
    table = pa.table(
        {
            "id": written.column("id").cast(pa.int64()),
            "contact_id": written.column("contact_id").cast(pa.int64()),
            "event": _packed_event(written),
            "scheduled_send_date": text("scheduled_send_date").dictionary_encode(),
            "content": content.dictionary_encode(),
            "parent": parent,
            "sent_at": np.full(n, -1, dtype=np.int64),
        }
    )
    return reader.by_id(table.cast(reader.SCHEDULE_TABLE))


@contextmanager
def unlogged(cursor: Any) -> Iterator[None]:
    """Write without logging, inside the caller's transaction.

    The triggers are dropped and created again inside the transaction, so
    nobody else's write ever goes unlogged.
    """
    for name in schema.CHANGE_TRIGGERS:
        cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
    yield
    for sql in schema.CHANGE_TRIGGERS.values():
        cursor.execute(sql)


def log_rows(cursor: Any, first_id: int, last_id: int) -> None:
    """Log the rows with ids from `first_id` to `last_id`, written unlogged."""
    cursor.execute(
        f"INSERT INTO {CHANGE_TABLE} (row_id, contact_id) SELECT id, contact_id "
        f"FROM email_schedules WHERE id BETWEEN {first_id} AND {last_id}"
    )


def last_change(sqlite: sqlite3.Connection) -> int:
    """Return the log's last entry (0 for none): a run reads every change
    up to it, and snapshots it writes hold the rows through it."""
    (last,) = sqlite.execute(
        f"SELECT IFNULL(max(seq), 0) FROM {CHANGE_TABLE}"
    ).fetchone()
    return int(last)


def change_counter(conn: sqlite3.Connection | Any) -> int:
    """Return how many changes to email_schedules were ever logged, through
    an sqlite3 connection or an ADBC cursor. Unlike the log's last entry,
    it never goes back when entries are dropped."""
    query = f"SELECT seq FROM sqlite_sequence WHERE name = '{CHANGE_TABLE}'"
    if isinstance(conn, sqlite3.Connection):
        found = conn.execute(query).fetchone()
    else:
        conn.execute(query)
        found = conn.fetchone()
    return int(found[0]) if found else 0


def store(cursor: Any, ids: ContactRange, rows: Encoded, catalog: Catalog) -> None:
    """Write a partition's rows as the run read them (through the log entry
    it started at), inside the caller's transaction."""
    cursor.execute(
        f"INSERT OR REPLACE INTO {SNAPSHOT_TABLE} (first_contact, last_contact, "
        "valid_through, signature, row_count, data) VALUES (?, ?, ?, ?, ?, ?)",
        (*ids, catalog.last_change, catalog.signature, rows.rows, rows.data),
    )


def tidy(cursor: Any, ranges: list[ContactRange], catalog: Catalog) -> None:
    """Drop the snapshots of other partitions or columns, and the log entries
    every snapshot left already holds, inside the caller's transaction."""
    wanted = catalog.signature
    cursor.execute(
        f"SELECT first_contact, last_contact, signature FROM {SNAPSHOT_TABLE}"
    )
    current = set(ranges)
    for first, last, kind in cursor.fetchall():
        if (first, last) not in current or kind != wanted:
            cursor.execute(
                f"DELETE FROM {SNAPSHOT_TABLE} WHERE first_contact = {int(first)}"
            )
    cursor.execute(
        f"DELETE FROM {CHANGE_TABLE} WHERE seq <= IFNULL("
        f"(SELECT min(valid_through) FROM {SNAPSHOT_TABLE}), "
        f"(SELECT max(seq) FROM {CHANGE_TABLE}))"
    )
