"""What contacts did after an email: link clicks and health-question answers.

The tracking system writes `tracking_clicks` and `contact_events`; the
scheduler only reads them, with one grouped query per table for all
contacts at once. Each contact gets the time of its latest click, latest
answer to the health questions, and latest answer with medical conditions,
since a given moment; a follow-up compares them with its parent's send time.

An answer has medical conditions when its metadata JSON says
`has_medical_conditions` true or `main_questions_yes_count` above zero.
Metadata that is not a JSON object is counted as a data-quality issue, and
the answer counts as one without conditions. Older databases may lack a
column: without `metadata` every answer is one without conditions; without
a contact or time column the table tells nothing and is skipped with a
warning.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from email_scheduler.calendar import Ints
from email_scheduler.store.reader import epoch_seconds, fetch
from email_scheduler.store.schema import table_columns

log = logging.getLogger("email_scheduler")

ANSWERED = "eligibility_answered"
"""The `contact_events.event_type` of an answer to the health questions."""

NEVER = -1
"""The time of something that did not happen."""

_CONTACT = f"COALESCE(CAST(contact_id AS INTEGER), {NEVER})"

_WITH_CONDITIONS = (
    "CASE WHEN metadata IS NULL OR trim(CAST(metadata AS TEXT)) = '' THEN 0 "
    "WHEN NOT json_valid(metadata) OR json_type(metadata) != 'object' THEN -1 "
    "WHEN lower(CAST(json_extract(metadata, '$.has_medical_conditions') AS TEXT)) "
    "IN ('1', 'true', 'yes') THEN 1 "
    "WHEN CAST(json_extract(metadata, '$.main_questions_yes_count') AS INTEGER) > 0 "
    "THEN 1 ELSE 0 END"
)


@dataclass(frozen=True)
class Engagement:
    """Per contact, the latest click and answers since a moment (epoch seconds)."""

    contact_id: Ints
    """Sorted, unique."""
    clicked: Ints
    answered: Ints
    answered_with_conditions: Ints
    invalid_metadata: int
    """Answers whose metadata is not a JSON object."""
    invalid_time: int
    """Clicks and answers whose time is not a date-time."""

    @staticmethod
    def empty() -> Engagement:
        """Return the engagement of a database with no clicks and no answers."""
        none = np.zeros(0, dtype=np.int64)
        return Engagement(none, none, none, none, 0, 0)

    def of(self, contact_id: Ints) -> tuple[Ints, Ints, Ints]:
        """Return (clicked, answered, answered with conditions) for each contact."""
        at = np.searchsorted(self.contact_id, contact_id)
        at = np.minimum(at, max(len(self.contact_id) - 1, 0))
        if not len(self.contact_id):
            never = np.full(len(contact_id), NEVER, dtype=np.int64)
            return never, never, never
        known = self.contact_id[at] == contact_id

        def latest(column: Ints) -> Ints:
            return np.where(known, column[at], NEVER)

        return (
            latest(self.clicked),
            latest(self.answered),
            latest(self.answered_with_conditions),
        )


_SCHEMA = pa.schema(
    [
        ("contact_id", pa.int64()),
        ("clicked", pa.int64()),
        ("answered", pa.int64()),
        ("answered_with_conditions", pa.int64()),
        ("invalid_metadata", pa.int64()),
        ("invalid_time", pa.int64()),
    ]
)


def _clicks_query(columns: set[str], since: int) -> str | None:
    if not {"contact_id", "clicked_at"} <= columns:
        return None
    return (
        f"SELECT contact_id, COALESCE(max(at), {NEVER}) AS clicked, "
        f"{NEVER} AS answered, "
        f"{NEVER} AS answered_with_conditions, 0 AS invalid_metadata, "
        "sum(at IS NULL) AS invalid_time FROM ("
        f"SELECT {_CONTACT} AS contact_id, "
        f"{epoch_seconds('clicked_at')} AS at FROM tracking_clicks"
        f") WHERE at IS NULL OR at >= {since} GROUP BY contact_id"
    )


def _answers_query(columns: set[str], since: int) -> str | None:
    if not {"contact_id", "event_type", "created_at"} <= columns:
        return None
    conditions = _WITH_CONDITIONS if "metadata" in columns else "0"
    return (
        f"SELECT contact_id, {NEVER} AS clicked, "
        f"COALESCE(max(at), {NEVER}) AS answered, "
        f"COALESCE(max(CASE WHEN conditions = 1 THEN at END), {NEVER}) "
        "AS answered_with_conditions, "
        "sum(conditions = -1 AND at IS NOT NULL) AS invalid_metadata, "
        "sum(at IS NULL) AS invalid_time FROM ("
        f"SELECT {_CONTACT} AS contact_id, "
        f"{epoch_seconds('created_at')} AS at, {conditions} AS conditions "
        f"FROM contact_events WHERE event_type = '{ANSWERED}'"
        f") WHERE at IS NULL OR at >= {since} GROUP BY contact_id"
    )


def read_engagement(conn: object, sqlite: sqlite3.Connection, since: int) -> Engagement:
    """Return every contact's engagement from `since` (epoch seconds) on."""
    parts = []
    for table, query in (
        ("tracking_clicks", _clicks_query),
        ("contact_events", _answers_query),
    ):
        columns = table_columns(sqlite, table)
        if not columns:
            continue
        sql = query(set(columns), since)
        if sql is None:
            log.warning("table %s lacks the columns follow-ups read; ignored", table)
            continue
        parts.append(fetch(conn, sql, _SCHEMA))
    if not parts:
        return Engagement.empty()
    table = pa.concat_tables(parts)

    def ints(name: str) -> Ints:
        return table.column(name).to_numpy().astype(np.int64)

    invalid_metadata, invalid_time = ints("invalid_metadata"), ints("invalid_time")
    contact_id = ints("contact_id")
    keep = contact_id >= 0
    unique, inverse = np.unique(contact_id[keep], return_inverse=True)

    def latest(name: str) -> Ints:
        found = np.full(len(unique), NEVER, dtype=np.int64)
        np.maximum.at(found, inverse, ints(name)[keep])
        return found

    return Engagement(
        contact_id=unique,
        clicked=latest("clicked"),
        answered=latest("answered"),
        answered_with_conditions=latest("answered_with_conditions"),
        invalid_metadata=int(invalid_metadata.sum()),
        invalid_time=int(invalid_time.sum()),
    )
