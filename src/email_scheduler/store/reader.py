"""Reading an org database into Arrow columns.

Contacts and existing schedules are read through ADBC, which hands SQLite
rows over as Arrow columns without building a Python object per row. Every
selected value is cast to one type in SQL (text with '' for null, or an
integer with a sentinel), because ADBC infers a column's type from its first
rows and a legacy database mixes types freely.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import MISSING, Days, Ints, civil, date_days, plain_dates
from email_scheduler.errors import DatabaseError
from email_scheduler.plan import Vocabulary
from email_scheduler.store.schema import table_columns

# Each contact field and the column names accepted for it, in order of preference.
CONTACT_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "zip_code": ("zip_code",),
    "state": ("state",),
    "birth_date": ("birth_date", "birthday"),
    "effective_date": ("effective_date",),
    "carrier": ("carrier", "current_carrier"),
    "failed_underwriting": ("failed_underwriting",),
    "phone_number": ("phone_number",),
    "status": ("status",),
}


def fetch(conn: object, sql: str, schema: pa.Schema) -> pa.Table:
    """Return the result of `sql` as an Arrow table of `schema`."""
    with conn.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(sql)
        table = cursor.fetch_arrow_table()
    if table.num_rows == 0:
        return schema.empty_table()
    return table.cast(schema)


ContactRange = tuple[int, int]
"""Contact ids from the first to the last, both included."""

EVERY_CONTACT: ContactRange = (-(2**63), 2**63 - 1)


def contacts_query(columns: list[str], ids: ContactRange = EVERY_CONTACT) -> str:
    """Return the SELECT that reads contacts by column name with aliases.

    Text is read as bytes: a value that is not UTF-8 must not stop the run
    (see `contacts.decode_text`).
    """
    present = set(columns)
    if "id" not in present:
        raise DatabaseError("the contacts table has no id column")
    selected = ["id"]
    for field, aliases in CONTACT_FIELDS.items():
        source = next((name for name in aliases if name in present), None)
        value = f"COALESCE(CAST({source} AS BLOB), x'')" if source else "x''"
        selected.append(f"{value} AS {field}")
    first, last = ids
    return (
        f"SELECT {', '.join(selected)} FROM contacts "
        f"WHERE typeof(id) = 'integer' AND id BETWEEN {first} AND {last} "
        "ORDER BY id"
    )


def contact_columns(sqlite: sqlite3.Connection) -> list[str]:
    """Return the columns of the contacts table; refuse a database without one."""
    columns = table_columns(sqlite, "contacts")
    if not columns:
        raise DatabaseError(
            "the database has no contacts table; is this an org database?"
        )
    return columns


def read_contacts(
    conn: object, columns: list[str], ids: ContactRange = EVERY_CONTACT
) -> pa.Table:
    """Return the contacts with ids in `ids`, as binary text columns."""
    schema = pa.schema(
        [("id", pa.int64())] + [(field, pa.binary()) for field in CONTACT_FIELDS]
    )
    return fetch(conn, contacts_query(columns, ids), schema)


def rows_without_id(sqlite: sqlite3.Connection) -> int:
    """Return how many contacts rows have no integer id (they are skipped)."""
    (count,) = sqlite.execute(
        "SELECT count(*) FROM contacts WHERE typeof(id) != 'integer'"
    ).fetchone()
    return int(count)


def partitions(conn: object, size: int) -> list[ContactRange]:
    """Return contact-id ranges that cover every id, about `size` contacts each.

    The first range starts, and the last ends, at the extremes of 64-bit
    integers, so that rows of every contact id fall in some range.
    """
    ids = fetch(
        conn,
        "SELECT id FROM contacts WHERE typeof(id) = 'integer' ORDER BY id",
        pa.schema([("id", pa.int64())]),
    )
    starts = ids.column("id").to_numpy()[::size][1:].tolist()
    firsts = [EVERY_CONTACT[0], *starts]
    lasts = [start - 1 for start in starts] + [EVERY_CONTACT[1]]
    return list(zip(firsts, lasts, strict=True))


@dataclass(frozen=True)
class ExistingRows:
    """The rows of email_schedules, as integer columns."""

    row_id: Ints
    contact_id: Ints
    kind: Ints
    event: Days
    """Event date, or MISSING for rows written without a full event date."""
    event_year: Ints
    send: Days
    status: Ints
    time: Ints
    reason: Ints
    priority: Ints
    email_template: Ints
    sms_template: Ints
    metadata: Ints
    parent: Ints
    """For a follow-up, the row id of its parent (metadata `parent_id`), else -1."""
    sent_at: Ints
    """For a sent or delivered row, when it went out (seconds since the epoch,
    from `actual_send_datetime`, else the start of its send date), else -1."""

    def __len__(self) -> int:
        return len(self.row_id)

    def take(self, index: np.ndarray) -> ExistingRows:  # type: ignore[type-arg]
        """Return the rows selected by a mask or positions."""
        return ExistingRows(
            **{f.name: getattr(self, f.name)[index] for f in fields(self)}
        )


_DAY = "substr(scheduled_send_date, 1, 10)"


def epoch_seconds(column: str) -> str:
    """Return SQL for a timestamp column as seconds since the epoch, or NULL.

    Text is read as SQLite date-time text (`YYYY-MM-DD[ HH:MM[:SS]]`, a `T`,
    a `Z` or an offset allowed); numbers are taken as Unix seconds.
    """
    return (
        f"CASE WHEN typeof({column}) IN ('integer', 'real') "
        f"THEN CAST({column} AS INTEGER) "
        f"ELSE CAST(strftime('%s', {column}) AS INTEGER) END"
    )


_FOLLOW_UP_PARENT = (
    "CASE WHEN metadata IS NOT NULL AND substr(email_type, 1, 9) = 'followup_' "
    "AND json_valid(metadata) "
    "THEN COALESCE(CAST(json_extract(metadata, '$.parent_id') AS INTEGER), -1) "
    "ELSE -1 END"
)


def _event(present: set[str]) -> str:
    """Return SQL for the packed event date (year -1 where there is none)."""

    def part(column: str, empty: str) -> str:
        if column not in present:
            return empty
        return f"COALESCE(CAST({column} AS INTEGER), {empty})"

    def field(column: str) -> str:
        return f"min(max({part(column, '0')}, 0), 1023)"

    year = part("event_year", "-1")
    return f"(({year} << 20) | ({field('event_month')} << 10) | {field('event_day')})"


def _sent_at(present: set[str]) -> str:
    """Return SQL for when a sent row went out; older tables lack the actual time."""
    actual = (
        epoch_seconds("actual_send_datetime")
        if "actual_send_datetime" in present
        else "NULL"
    )
    return (
        "CASE WHEN status IN ('sent', 'delivered') THEN "
        f"COALESCE({actual}, CAST(strftime('%s', {_DAY}) AS INTEGER), -1) "
        "ELSE -1 END"
    )


# Each column read: its SQL, its Arrow type, and the columns it needs (a
# column whose sources are absent reads as its empty value).
_SCHEDULE_COLUMNS: dict[str, tuple[str, pa.DataType, tuple[str, ...]]] = {
    "id": ("id", pa.int64(), ("id",)),
    "contact_id": ("CAST(contact_id AS INTEGER)", pa.int64(), ("contact_id",)),
    "email_type": ("COALESCE(email_type, '')", pa.string(), ("email_type",)),
    "campaign_instance_id": (
        "COALESCE(CAST(campaign_instance_id AS INTEGER), 0)",
        pa.int64(),
        ("campaign_instance_id",),
    ),
    # The event date in one integer: year << 20 | month << 10 | day, each
    # part clamped to its field, so that one column travels instead of three.
    "event": ("", pa.int64(), ()),
    # Parsed from the text (see `_send_days`): cheaper than SQL date functions.
    "scheduled_send_date": (
        "COALESCE(CAST(scheduled_send_date AS TEXT), '')",
        pa.string(),
        ("scheduled_send_date",),
    ),
    "scheduled_send_time": (
        "COALESCE(CAST(scheduled_send_time AS TEXT), '')",
        pa.string(),
        ("scheduled_send_time",),
    ),
    "status": ("COALESCE(status, '')", pa.string(), ("status",)),
    "skip_reason": ("COALESCE(skip_reason, '')", pa.string(), ("skip_reason",)),
    "priority": ("COALESCE(CAST(priority AS INTEGER), -1)", pa.int64(), ("priority",)),
    "email_template": (
        "COALESCE(email_template, '')",
        pa.string(),
        ("email_template",),
    ),
    "sms_template": ("COALESCE(sms_template, '')", pa.string(), ("sms_template",)),
    "metadata": ("COALESCE(metadata, '')", pa.string(), ("metadata",)),
    "parent": (_FOLLOW_UP_PARENT, pa.int64(), ("email_type", "metadata")),
    "sent_at": ("", pa.int64(), ("status", "scheduled_send_date")),
}


def schedules_query(columns: list[str], ids: ContactRange = EVERY_CONTACT) -> str:
    """Return the SELECT that reads email_schedules; absent columns read as empty."""
    present = set(columns)
    selected = []
    for name, (expression, kind, sources) in _SCHEDULE_COLUMNS.items():
        if name == "sent_at":
            expression = _sent_at(present)
        if name == "event":
            expression = _event(present)
        if not present.issuperset(sources):
            expression = "-1" if kind == pa.int64() else "''"
            if name == "campaign_instance_id":
                expression = "0"
        selected.append(f"{expression} AS {name}")
    first, last = ids
    return (
        f"SELECT {', '.join(selected)} FROM email_schedules "
        f"WHERE contact_id BETWEEN {first} AND {last}"
    )


def _event_days(packed: Ints) -> tuple[Days, Ints]:
    """Return (event date or MISSING, event year or -1) of packed event dates."""
    year, month, day = packed >> 20, (packed >> 10) & 1023, packed & 1023
    plausible = (year >= 1900) & (year <= 2200) & (month >= 1) & (month <= 12)
    plausible &= (day >= 1) & (day <= 31)
    days = date_days(
        np.where(plausible, year, 2000),
        np.where(plausible, month, 1),
        np.where(plausible, day, 1),
    )
    y, m, d = civil(days)
    exact = plausible & (y == year) & (m == month) & (d == day)
    return np.where(exact, days, MISSING), np.maximum(year, -1)


def _send_days(column: pa.ChunkedArray) -> Days:
    """Return the days of send dates, reading the first ten characters."""
    text = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    days, valid, length = plain_dates(text)
    if (length != 10).any():
        days, valid, _ = plain_dates(pc.utf8_slice_codeunits(text, 0, 10))
    return np.where(valid, days, MISSING)


def read_schedules(
    conn: object,
    columns: list[str],
    vocabulary: Vocabulary,
    ids: ContactRange = EVERY_CONTACT,
) -> ExistingRows:
    """Return the rows of email_schedules of contacts in `ids` as integer columns.

    `columns` are the table's columns (none when it does not exist).
    """
    schema = pa.schema(
        [(name, kind) for name, (_, kind, _) in _SCHEDULE_COLUMNS.items()]
    )
    if columns:
        table = fetch(conn, schedules_query(columns, ids), schema)
    else:
        table = schema.empty_table()

    def ints(name: str) -> Ints:
        return table.column(name).to_numpy().astype(np.int64)

    event, year = _event_days(ints("event"))
    return ExistingRows(
        row_id=ints("id"),
        contact_id=ints("contact_id"),
        kind=vocabulary.kind_codes(
            table.column("email_type"), ints("campaign_instance_id")
        ),
        event=event,
        event_year=year,
        send=_send_days(table.column("scheduled_send_date")),
        status=vocabulary.codes(table.column("status")),
        time=vocabulary.codes(table.column("scheduled_send_time")),
        reason=vocabulary.codes(table.column("skip_reason")),
        priority=ints("priority"),
        email_template=vocabulary.codes(table.column("email_template")),
        sms_template=vocabulary.codes(table.column("sms_template")),
        metadata=vocabulary.codes(table.column("metadata")),
        parent=ints("parent"),
        sent_at=ints("sent_at"),
    )
