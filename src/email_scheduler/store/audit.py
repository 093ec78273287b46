"""Run records: the run lock, checkpoints, configuration versions,
data-quality records, checksums and backups."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from filelock import FileLock, Timeout

from email_scheduler.calendar import Days, Ints, mix64, text_salt
from email_scheduler.config import Settings
from email_scheduler.contacts import Contacts, DataQuality
from email_scheduler.errors import DatabaseError, RunLockedError
from email_scheduler.plan import (
    PRE_SCHEDULED,
    SKIPPED,
    Kinds,
    Outgoing,
    Plan,
    PlannedRows,
    Vocabulary,
)
from email_scheduler.report import RunReport
from email_scheduler.store.database import transaction, with_retries
from email_scheduler.store.reader import ExistingRows

log = logging.getLogger("email_scheduler")


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold the database's run lock, or raise RunLockedError at once.

    The lock is an OS file lock on `<database>.lock`, so it is released
    when the process ends, however it ends.
    """
    lock = FileLock(f"{path}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise RunLockedError(
            f"another scheduler run is working on {path}; wait for it to finish"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def record_config(conn: sqlite3.Connection, settings: Settings, now: str) -> int:
    """Return the id of the settings' config version, adding a row when new."""
    checksum = settings.version()
    with transaction(conn):
        found = conn.execute(
            "SELECT id FROM config_versions WHERE checksum = ? AND valid_to IS NULL",
            (checksum,),
        ).fetchone()
        if found:
            return int(found[0])
        conn.execute(
            "UPDATE config_versions SET valid_to = ? "
            "WHERE config_type = 'scheduler' AND valid_to IS NULL",
            (now,),
        )
        cursor = conn.execute(
            "INSERT INTO config_versions "
            "(config_type, config_data, valid_from, created_at, created_by, checksum) "
            "VALUES ('scheduler', ?, ?, ?, 'email-scheduler', ?)",
            (settings.to_json(), now, now, checksum),
        )
        return int(cursor.lastrowid or 0)


def start_checkpoint(
    conn: sqlite3.Connection, run_id: str, today: dt.date, now: str, config_id: int
) -> None:
    """Record that a run started; a crash leaves this row saying `started`."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO scheduler_checkpoints (run_timestamp, scheduler_run_id, "
            "contacts_checksum, status, run_date, config_version_id) "
            "VALUES (?, ?, '', 'started', ?, ?)",
            (now, run_id, today.isoformat(), config_id),
        )


def interrupted_runs(conn: sqlite3.Connection) -> int:
    """Return how many runs never completed since the latest one that did.

    A completed run wrote the whole plan, so the runs killed before it no
    longer matter.
    """
    (count,) = conn.execute(
        "SELECT count(*) FROM scheduler_checkpoints WHERE status = 'started' "
        "AND id > (SELECT IFNULL(max(id), 0) FROM scheduler_checkpoints "
        "WHERE status = 'completed')"
    ).fetchone()
    return int(count)


@dataclass(frozen=True)
class Checksums:
    """What a completed run records of its inputs and its plan (hex digests)."""

    contacts: str
    schedules_before: str
    schedules_after: str
    inputs: str | None
    """The digest of every other input (see `rerun`); None when another
    writer changed email_schedules during the run."""


def complete_checkpoint(
    cursor: Any, report: RunReport, now: str, checksums: Checksums
) -> None:
    """Mark the run completed with its counts, inside the write transaction."""
    rows = report.rows
    cursor.execute(
        "UPDATE scheduler_checkpoints SET status = 'completed', completed_at = ?, "
        "contacts_checksum = ?, schedules_before_checksum = ?, "
        "schedules_after_checksum = ?, contacts_processed = ?, emails_scheduled = ?, "
        "emails_skipped = ?, rows_inserted = ?, rows_updated = ?, rows_deleted = ?, "
        "rows_unchanged = ?, summary = ?, inputs_checksum = ? "
        "WHERE scheduler_run_id = ?",
        (
            now,
            checksums.contacts,
            checksums.schedules_before,
            checksums.schedules_after,
            report.contacts_read,
            sum(report.planned.values()),
            sum(report.skipped.values()),
            rows["inserted"],
            rows["updated"],
            rows["deleted"],
            rows["unchanged"],
            json.dumps(report.to_dict(), sort_keys=True),
            checksums.inputs,
            report.run_id,
        ),
    )


@dataclass(frozen=True)
class Completed:
    """What a completed run recorded of its inputs and its plan."""

    run_id: str
    run_date: str
    inputs_checksum: str
    contacts_checksum: str
    schedules_checksum: str
    summary: dict[str, Any]


def latest_run(conn: sqlite3.Connection) -> Completed | None:
    """Return the latest run's record if it completed with a digest of its
    inputs (see `rerun`), else None."""
    found = conn.execute(
        "SELECT scheduler_run_id, run_date, inputs_checksum, contacts_checksum, "
        "schedules_after_checksum, summary, status FROM scheduler_checkpoints "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if found is None or found[6] != "completed" or not found[2] or not found[5]:
        return None
    try:
        summary = json.loads(found[5])
    except ValueError:
        return None
    if not isinstance(summary, dict):
        return None
    run_id, run_date, inputs, contacts, schedules = (str(value) for value in found[:5])
    return Completed(run_id, run_date, inputs, contacts, schedules, summary)


def relabel_data_quality(cursor: Any, run_id: str) -> None:
    """Give the kept data-quality records to run `run_id`, which found the
    same contacts (inside the write transaction)."""
    cursor.execute("UPDATE contact_data_quality SET scheduler_run_id = ?", (run_id,))


def fail_checkpoint(
    conn: sqlite3.Connection, run_id: str, now: str, error: str
) -> None:
    """Mark the run failed with its error message."""
    try:
        with transaction(conn):
            conn.execute(
                "UPDATE scheduler_checkpoints SET status = 'failed', completed_at = ?, "
                "error_message = ? WHERE scheduler_run_id = ?",
                (now, error, run_id),
            )
    except (sqlite3.Error, DatabaseError):
        log.exception("could not record the failure of run %s", run_id)


def replace_data_quality(cursor: Any, run_id: str, quality: DataQuality) -> None:
    """Keep only this run's data-quality records (inside the write transaction)."""
    cursor.execute("DELETE FROM contact_data_quality")
    if not len(quality.contact_id):
        return
    table = pa.table(
        {
            "scheduler_run_id": pa.array(
                [run_id] * len(quality.contact_id), pa.string()
            ),
            "contact_id": pa.array(quality.contact_id),
            "issue": pa.array(quality.issue, pa.string()),
            "detail": pa.array(quality.detail, pa.string()),
        }
    )
    cursor.adbc_ingest("contact_data_quality", table, mode="append")


def contacts_checksum(contacts: Contacts) -> str:
    """Return a checksum of every contact field the plan depends on."""
    digest = hashlib.blake2b(digest_size=16)
    for column in (
        contacts.id,
        contacts.state,
        contacts.birth,
        contacts.effective,
        contacts.failed_underwriting,
        contacts.has_phone,
        contacts.reachable,
    ):
        digest.update(np.ascontiguousarray(column).tobytes())
    _update_with_text(digest, contacts.carrier)
    return digest.hexdigest()


class ContactsDigest:
    """A run's contacts checksum: its partitions' checksums (see
    `contacts_checksum`), fed in partition order."""

    def __init__(self) -> None:
        self._digest = hashlib.blake2b(digest_size=16)

    def add(self, partition_checksum: str) -> None:
        self._digest.update(partition_checksum.encode())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _update_with_text(digest: Any, column: pa.ChunkedArray) -> None:
    """Feed every value of a text column to `digest`, a null apart from ''.

    The lengths and the value bytes are hashed straight from the Arrow
    buffers, so the digest does not depend on how the column is chunked.
    """
    text = column.cast(pa.string())
    lengths = pc.binary_length(text).fill_null(-1).to_numpy()
    digest.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    for chunk in text.fill_null("").chunks:
        digest.update(_value_bytes(chunk))


def _value_bytes(chunk: pa.StringArray) -> memoryview:
    """Return the bytes of a string array's values, end to end."""
    if not len(chunk):
        return memoryview(b"")
    _, offsets, data = chunk.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)
    first = int(bounds[chunk.offset])
    last = int(bounds[chunk.offset + len(chunk)])
    return memoryview(data)[first:last] if data is not None else memoryview(b"")


def backup(path: Path, settings: Settings, run_id: str) -> Path | None:
    """Copy the database before writing, verify the copy, prune old copies."""
    if not settings.backup.enabled:
        return None
    directory = settings.backup.directory or path.parent
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{path.name}.{run_id}.backup"
    source = sqlite3.connect(path)
    try:
        with_retries(lambda: source.execute("VACUUM INTO ?", (str(target),)), "backup")
    finally:
        source.close()
    copy = sqlite3.connect(target)
    try:
        (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
    finally:
        copy.close()
    if verdict != "ok":
        raise DatabaseError(f"backup {target} failed its integrity check: {verdict}")
    _prune(directory, path.name, settings.backup.retention_days)
    return target


def _prune(directory: Path, name: str, retention_days: int) -> None:
    cutoff = dt.datetime.now().timestamp() - retention_days * 86_400
    for old in directory.glob(f"{name}.*.backup"):
        if old.stat().st_mtime < cutoff:
            old.unlink()


def _row_hashes(
    contact_id: np.ndarray,  # type: ignore[type-arg]
    type_salt: np.ndarray,  # type: ignore[type-arg]
    event: np.ndarray,  # type: ignore[type-arg]
    send: np.ndarray,  # type: ignore[type-arg]
    status_salt: np.ndarray,  # type: ignore[type-arg]
) -> np.uint64:
    with np.errstate(over="ignore"):
        x = mix64(contact_id.astype(np.uint64) ^ type_salt)
        x = mix64(x ^ event.astype(np.uint64))
        x = mix64(x ^ (send.astype(np.uint64) << np.uint64(20)) ^ status_salt)
        return np.uint64(x.sum(dtype=np.uint64)) if len(x) else np.uint64(0)


class ScheduleChecksum:
    """An order-independent checksum of email_schedules, updated by the diff.

    Each row hashes its contact, type, event date, send date and status;
    the table's checksum is the sum of its rows' hashes (mod 2**64), so the
    checksum after the write follows from the one before and the changes,
    and the sum over partitions is the table's.
    """

    def __init__(self, kinds: Kinds) -> None:
        self.kinds = kinds
        self._types = np.zeros(0, dtype=np.uint64)
        self._statuses = {
            skipped: text_salt(SKIPPED if skipped else PRE_SCHEDULED)
            for skipped in (False, True)
        }

    def _type_salts(self, kind: Ints) -> npt.NDArray[np.uint64]:
        pairs = self.kinds.pairs
        if len(self._types) < len(pairs):
            self._types = np.array([text_salt(t) for t, _ in pairs], dtype=np.uint64)
        return self._types[kind] if len(kind) else np.zeros(0, np.uint64)

    def existing(self, rows: ExistingRows, vocabulary: Vocabulary) -> np.uint64:
        """Return the summed hash of existing rows."""
        # Status codes are a few small integers: salt each one present once.
        salts = np.zeros(int(rows.status.max(initial=0)) + 1, dtype=np.uint64)
        for code in np.flatnonzero(np.bincount(rows.status)).tolist():
            salts[code] = text_salt(vocabulary.strings[code])
        return _row_hashes(
            rows.contact_id,
            self._type_salts(rows.kind),
            rows.event,
            rows.send,
            salts[rows.status],
        )

    def planned(self, plan: Plan | PlannedRows) -> np.uint64:
        """Return the summed hash of planned rows as they will be written."""
        status = np.where(
            plan.skipped, self._statuses[True], self._statuses[False]
        ).astype(np.uint64)
        return _row_hashes(
            plan.contact_id,
            self._type_salts(plan.kind.astype(np.int64)),
            plan.event,
            plan.send,
            status,
        )

    def outgoing(self, emails: Outgoing, send: Days | None = None) -> np.uint64:
        """Return the summed hash of outgoing emails (dated `send`, if given)."""
        return _row_hashes(
            emails.contact_id,
            self._type_salts(emails.kind.astype(np.int64)),
            emails.event,
            emails.send if send is None else send,
            np.full(len(emails), self._statuses[False], dtype=np.uint64),
        )


def hex64(value: np.uint64) -> str:
    """Return a checksum as 16 hex digits."""
    return f"{int(value):016x}"
