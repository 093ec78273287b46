"""Contacts tables that other systems filled: odd bytes, repeated ids, none.

A malformed contact row is counted and reported, never a crash; a database
that is not an org database is refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path

from helpers import cli, query, run_json, schema_snapshot

TODAY = dt.date(2026, 3, 1)

LEGACY_CONTACTS = """
CREATE TABLE contacts (
    id INTEGER,  -- no primary key: nothing stops a repeated id
    email TEXT,
    zip_code TEXT,
    birth_date TEXT,
    current_carrier TEXT
)"""


def org(tmp_path: Path, *rows: tuple[object, ...]) -> Path:
    path = tmp_path / "org.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(LEGACY_CONTACTS)
        conn.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?)", rows)
    return path


def types_of(path: Path, contact_id: int) -> list[str]:
    return [
        email_type
        for (email_type,) in query(
            path,
            "SELECT email_type FROM email_schedules WHERE contact_id = ? "
            "ORDER BY email_type",
            (contact_id,),
        )
    ]


class TestTextThatIsNotUtf8:
    def test_counted_and_read_as_empty(self, tmp_path: Path) -> None:
        latin1 = "Générale".encode("latin-1")
        path = org(
            tmp_path,
            (1, "one@example.com", "75201", "1950-06-15", "Aetna"),
            # A carrier in Latin-1: the contact still gets its emails.
            (2, "two@example.com", "75201", "1950-06-15", latin1),
            # An email in Latin-1 is no email: the contact gets nothing.
            (3, "trois@exemple.fr".encode("latin-1") + b"\xe9", "75201", None, None),
        )
        report = run_json(path, TODAY)
        assert report["data_quality"]["invalid_text"] == 2
        assert report["contacts_without_email"]["invalid_email"] == 1
        assert types_of(path, 2) == types_of(path, 1) == ["aep", "birthday"]
        assert types_of(path, 3) == []
        issues = query(
            path, "SELECT contact_id, detail FROM contact_data_quality "
            "WHERE issue = 'invalid_text' ORDER BY contact_id",
        )  # fmt: skip
        assert issues == [
            (2, "carrier is not UTF-8 text"),
            (3, "email is not UTF-8 text"),
        ]


class TestRepeatedIds:
    def test_the_first_row_counts(self, tmp_path: Path) -> None:
        path = org(
            tmp_path,
            (1, "one@example.com", "75201", "1950-06-15", None),
            (1, "again@example.com", "10001", "1960-01-01", None),
            (2, "two@example.com", "75201", "1950-06-15", None),
        )
        report = run_json(path, TODAY)
        assert report["contacts_read"] == 2
        assert report["data_quality"]["duplicate_id"] == 1
        assert types_of(path, 1) == types_of(path, 2) == ["aep", "birthday"]
        again = run_json(path, TODAY, "--replan")
        assert again["rows"]["inserted"] == again["rows"]["updated"] == 0


class TestNotAnOrgDatabase:
    def test_refused_before_anything_is_written(self, tmp_path: Path) -> None:
        path = tmp_path / "other.sqlite3"
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        before = schema_snapshot(path)
        outcome = cli("run", path, "--today", TODAY.isoformat())
        assert outcome.exit_code == 1
        assert "no contacts table" in outcome.stderr
        assert schema_snapshot(path) == before
