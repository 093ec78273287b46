"""Connections to an org database, with busy retries and explicit transactions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pyarrow as pa
from adbc_driver_sqlite import StatementOptions
from adbc_driver_sqlite import dbapi as adbc

from email_scheduler.errors import DatabaseBusyError, DatabaseError

BUSY_TIMEOUT_MS = 5_000
RETRIES = 5

T = TypeVar("T")


def _is_busy(exc: Exception) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def with_retries(action: Callable[[], T], what: str) -> T:
    """Return `action()`, retried with exponential backoff while the file is busy."""
    for attempt in range(RETRIES):
        try:
            return action()
        except (sqlite3.OperationalError, adbc.OperationalError) as exc:
            if not _is_busy(exc):
                raise
            if attempt == RETRIES - 1:
                raise DatabaseBusyError(
                    f"{what}: the database stayed locked by another writer; "
                    "try again when the sending system is idle"
                ) from exc
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def check_exists(path: Path) -> None:
    """Raise DatabaseError when `path` is not an existing SQLite file."""
    if not path.is_file():
        raise DatabaseError(
            f"no database at {path}; create one with 'email-scheduler init'"
        )
    with path.open("rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00" and path.stat().st_size > 0:
            raise DatabaseError(f"{path} is not a SQLite database")


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """Return a stdlib connection in autocommit mode (transactions are explicit)."""
    # A path is quoted into the URI: its '?', '#' or '%' would otherwise
    # open (and create) some other file.
    uri = f"file:{quote(str(path))}?mode={'ro' if read_only else 'rwc'}"
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


BATCH_ROWS = 1 << 16
"""Rows per Arrow batch a query hands over; the driver's default of 1,024
costs a tenth more per row at the run's millions of rows."""


def fetch_table(
    conn: adbc.Connection, sql: str, parameters: tuple[Any, ...] = ()
) -> pa.Table:
    """Return the result of `sql` through an ADBC connection, as Arrow."""
    with conn.cursor() as cursor:
        cursor.adbc_statement.set_options(
            **{StatementOptions.BATCH_ROWS.value: str(BATCH_ROWS)}
        )
        cursor.execute(sql, parameters or None)
        return cursor.fetch_arrow_table()


def connect_columnar(path: Path) -> adbc.Connection:
    """Return an ADBC connection, which reads and writes Arrow columns."""
    conn = adbc.connect(str(path))
    with conn.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


@contextmanager
def columnar_transaction(conn: adbc.Connection) -> Iterator[Any]:
    """Yield a cursor of an ADBC connection whose statements all commit
    together at the end of the block, or none of them."""
    with conn.cursor() as cursor:
        try:
            yield cursor
        except BaseException:
            conn.rollback()
            raise
    conn.commit()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction: all of it commits or none."""
    with_retries(lambda: conn.execute("BEGIN IMMEDIATE"), "starting a transaction")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
