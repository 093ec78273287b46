"""A second writer for a bulk write: new rows staged in a database of their own.

SQLite lets one connection at a time write a database, and a first run's
millions of inserts keep that one busy while the machine's other core
waits. So a bulk write hands the new rows of its later partitions to a
second connection, on a thread of its own, which inserts them into a
staging database: a file in the run's private folder, whose email_schedules
is made by the org database's own definition of the table. Meanwhile the
run's connection inserts the earlier partitions' rows. One
`INSERT ... SELECT *` then copies the staged rows into email_schedules,
inside the run's transaction: two tables defined alike, with no trigger or
index in the way (a bulk write drops them while it inserts), let SQLite
copy each row's record as it is, about a fifth of the cost of inserting it.
Where that does not apply, the same statement inserts the rows one by one.

The staging database is a scratch file: no journal and no sync, since the
run's transaction, not the file, is what a crash must leave intact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from adbc_driver_sqlite import dbapi as adbc

from email_scheduler.store.writer import insert_rows

SCHEMA = "staged"
"""The name the staging database is attached under on the run's connection."""


def definition(cursor: Any) -> tuple[str, str]:
    """Return the org database's text encoding and its statement creating
    email_schedules, through an ADBC cursor."""
    cursor.execute("PRAGMA encoding")
    (encoding,) = cursor.fetchone()
    cursor.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' "
        "AND name = 'email_schedules'"
    )
    (sql,) = cursor.fetchone()
    return str(encoding), str(sql)


class Staging:
    """A staging database, filled through a connection of its own on one
    thread, then copied into email_schedules through the run's connection."""

    def __init__(self, path: Path, encoding: str, table: str) -> None:
        """Create the database at `path` with the org database's text
        `encoding` (attached databases must share it) and `table`, the
        statement that creates its email_schedules."""
        self.path = path
        self._connection = adbc.connect(str(path), autocommit=True)
        self._attached = False
        try:
            with self._connection.cursor() as cursor:
                for pragma in (
                    "journal_mode = OFF",
                    "synchronous = OFF",
                    f"encoding = '{encoding}'",
                ):
                    cursor.execute(f"PRAGMA {pragma}")
                    cursor.fetchall()
                # The staged rows come with their ids: the AUTOINCREMENT
                # counter, whose upkeep costs a third of each insert, is the
                # org table's.
                cursor.execute(re.sub(r"\s+AUTOINCREMENT\b", "", table, flags=re.I))
                cursor.execute("BEGIN")
        except BaseException:
            self._connection.close()
            raise

    def insert(self, new: pa.Table, stamped: dict[str, str]) -> None:
        """Insert new rows (see `writer.insert_rows`) into the staging database."""
        with self._connection.cursor() as cursor:
            insert_rows(cursor, new, stamped)

    def finish(self) -> None:
        """Commit the staged rows and close the staging connection."""
        with self._connection.cursor() as cursor:
            cursor.execute("COMMIT")
        self._connection.close()

    def abandon(self) -> None:
        """Close the staging connection, leaving whatever it staged."""
        self._connection.close()

    def copy_into(self, cursor: Any) -> int:
        """Copy every staged row into email_schedules through the run's
        `cursor`, inside its transaction; return how many.

        The run's connection attaches the file read-only and immutable (it
        takes no lock on it and never reads it again), and once the rows are
        copied the file is emptied: pages the kernel has not written to disk
        yet, about a GB at 3 million contacts, are dropped instead of
        competing with the run's own writes.
        """
        uri = f"file:{quote(str(self.path))}?mode=ro&immutable=1"
        cursor.execute(f"ATTACH DATABASE '{uri}' AS {SCHEMA}")
        self._attached = True
        cursor.execute(
            f"INSERT INTO main.email_schedules SELECT * FROM {SCHEMA}.email_schedules"
        )
        cursor.execute("SELECT changes()")
        copied = int(cursor.fetchone()[0])
        os.truncate(self.path, 0)
        return copied

    def detach(self, connection: Any) -> None:
        """Detach the staging database from the run's connection, once its
        transaction has ended, and remove the file."""
        if self._attached:
            with connection.cursor() as cursor:
                cursor.execute(f"DETACH DATABASE {SCHEMA}")
            self._attached = False
        self.path.unlink(missing_ok=True)
