"""Reading email_schedules rows written by anyone, exactly as they are.

The reader joins a row's text columns into one value and splits it again;
these rows hold what could confuse that: the separator itself, numbers
stored as text, text where numbers belong, nulls before values.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from email_scheduler.plan import Vocabulary
from email_scheduler.store import reader
from email_scheduler.store.database import connect_columnar
from email_scheduler.store.schema import create_statement, table_columns

SEPARATOR = "\x1f"

ROWS = [
    # contact, type, instance, send date, status, reason, priority, metadata
    (1, "birthday", None, "2027-01-02", "pre-scheduled", None, 10, None),
    (2, "campaign_promo", 7, "2027-01-03 08:30:00", "skipped", "why", "5", None),
    (3, "birthday", None, "2027-01-04", "pre-scheduled", f"a{SEPARATOR}b", 10, None),
    (4, "followup_1_cold", None, "2027-01-05", "sent", None, 12.0, '{"x": 1}'),
    (5, "aep", "3", "2027-01-06", "pre-scheduled", None, None, f"{SEPARATOR}"),
]


def database(tmp_path: Path) -> Path:
    path = tmp_path / "org.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(create_statement("email_schedules"))
        conn.executemany(
            "INSERT INTO email_schedules (contact_id, email_type, "
            "campaign_instance_id, scheduled_send_date, status, skip_reason, "
            "priority, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ROWS,
        )
    return path


def test_every_value_reads_back_exactly(tmp_path: Path) -> None:
    path = database(tmp_path)
    with closing(sqlite3.connect(path)) as conn:
        columns = table_columns(conn, "email_schedules")
    columnar = connect_columnar(path)
    try:
        vocabulary = Vocabulary()
        rows = reader.read_schedules(columnar, columns, vocabulary)
    finally:
        columnar.close()
    text = vocabulary.strings
    assert rows.contact_id.tolist() == [1, 2, 3, 4, 5]
    assert [vocabulary.kinds[k] for k in rows.kind.tolist()] == [
        ("birthday", 0),
        ("campaign_promo", 7),
        ("birthday", 0),
        ("followup_1_cold", 0),
        ("aep", 3),  # an instance stored as text
    ]
    assert [text[c] for c in rows.status.tolist()] == [row[4] for row in ROWS]
    assert [text[c] for c in rows.reason.tolist()] == ["", "why", "a\x1fb", "", ""]
    assert rows.priority.tolist() == [10, 5, 10, 12, -1]
    assert [text[c] for c in rows.metadata.tolist()] == ["", "", "", '{"x": 1}', "\x1f"]
    assert (rows.send[1:] - rows.send[:-1]).tolist() == [1, 1, 1, 1]  # time ignored
