"""Reading an org database into Arrow columns.

Contacts and existing schedules are read through ADBC, which hands SQLite
rows over as Arrow columns without building a Python object per row. Every
selected value is cast to one type in SQL (text with '' for null, or an
integer with a sentinel), because ADBC infers a column's type from its first
rows and a legacy database mixes types freely.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import MISSING, Days, Ints, civil, date_days, plain_dates
from email_scheduler.errors import DatabaseError
from email_scheduler.identity import Identities
from email_scheduler.plan import Vocabulary
from email_scheduler.store.database import fetch_table
from email_scheduler.store.schema import CHANGE_TABLE, table_columns

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
    table = fetch_table(conn, sql)  # type: ignore[arg-type]
    if table.num_rows == 0:
        return schema.empty_table()
    return table.cast(schema)


Mask = npt.NDArray[np.bool_]

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


ROWID_PLAN = "EXPLAIN QUERY PLAN SELECT id FROM contacts WHERE id = 1"
"""How SQLite would find a contact by id: through the table's own key
("USING INTEGER PRIMARY KEY") exactly when the id is the table's rowid."""


def _ids_are_rowids(plan: list[str]) -> bool:
    """Return whether contacts.id is the table's rowid (an INTEGER PRIMARY
    KEY), going by `ROWID_PLAN`'s lines: every id is then an integer, and
    SQLite counts a range of ids by its key alone."""
    return any("USING INTEGER PRIMARY KEY" in line for line in plan)


def rows_without_id(sqlite: sqlite3.Connection) -> int:
    """Return how many contacts rows have no integer id (they are skipped)."""
    plan = [str(row[-1]) for row in sqlite.execute(ROWID_PLAN)]
    if _ids_are_rowids(plan):
        return 0
    (count,) = sqlite.execute(
        "SELECT count(*) FROM contacts WHERE typeof(id) != 'integer'"
    ).fetchone()
    return int(count)


def partitions(
    conn: object, size: int, previous: list[ContactRange] | None = None
) -> list[ContactRange]:
    """Return contact-id ranges that cover every id, about `size` contacts each.

    The first range starts, and the last ends, at the extremes of 64-bit
    integers, so that rows of every contact id fall in some range. The
    `previous` ranges (those of the schedule snapshots) are kept while
    each still holds from half to twice `size` contacts, so that contacts
    coming and going do not shift every range and void every snapshot.
    """
    if previous and _counted_fit(conn, previous, size):
        return previous
    ids = (
        fetch(
            conn,
            "SELECT id FROM contacts WHERE typeof(id) = 'integer' ORDER BY id",
            pa.schema([("id", pa.int64())]),
        )
        .column("id")
        .to_numpy()
    )
    if previous and _still_fit(ids, previous, size):
        return previous
    starts = ids[::size][1:].tolist()
    firsts = [EVERY_CONTACT[0], *starts]
    lasts = [start - 1 for start in starts] + [EVERY_CONTACT[1]]
    return list(zip(firsts, lasts, strict=True))


def _counted_fit(conn: object, ranges: list[ContactRange], size: int) -> bool:
    """Return whether `ranges` still fit (see `_fits`), counting each one's
    contacts in SQLite, where the ids are the table's rowids: reading every
    id of millions of contacts takes several times longer."""
    plan = fetch_table(conn, ROWID_PLAN).column("detail").to_pylist()  # type: ignore[arg-type]
    if not _ids_are_rowids([str(line) for line in plan]):
        return False
    counts = [
        fetch_table(
            conn,  # type: ignore[arg-type]
            "SELECT count(*) FROM contacts WHERE id BETWEEN ? AND ?",
            (first, last),
        )
        .column(0)[0]
        .as_py()
        for first, last in ranges
    ]
    return _fits(ranges, np.array(counts), size)


def _still_fit(ids: Ints, ranges: list[ContactRange], size: int) -> bool:
    """Return whether `ranges` still fit (see `_fits`) the sorted `ids`."""
    lasts = [last for _, last in ranges]
    ends = np.searchsorted(ids, lasts, "right")
    return _fits(ranges, np.diff(np.concatenate([[0], ends])), size)


def _fits(ranges: list[ContactRange], counts: Ints, size: int) -> bool:
    """Return whether `ranges` cover every id in order, with `counts`
    contacts each, about `size`."""
    firsts = [first for first, _ in ranges]
    lasts = [last for _, last in ranges]
    if firsts[0] != EVERY_CONTACT[0] or lasts[-1] != EVERY_CONTACT[1]:
        return False
    if any(last + 1 != first for last, first in zip(lasts, firsts[1:], strict=False)):
        return False
    if len(ranges) == 1:
        return int(counts.sum()) <= 2 * size
    return bool(np.all((counts >= size // 2) & (counts <= 2 * size)))


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

    @cached_property
    def identities(self) -> Identities:
        """Return the rows sorted by identity (built on first use)."""
        return Identities(self)

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


CONTENT_FIELDS = (
    "email_type",
    "campaign_instance_id",
    "status",
    "scheduled_send_time",
    "skip_reason",
    "priority",
    "email_template",
    "sms_template",
    "metadata",
)
"""Columns read joined into one text value per row (see `schedules_query`)."""

SEPARATOR = "\x1f"
_INTEGER_FIELDS = ("campaign_instance_id", "priority")
_TEXT_FIELDS = (
    "status",
    "scheduled_send_time",
    "skip_reason",
    "email_template",
    "sms_template",
    "metadata",
)


def _content(present: set[str]) -> str:
    """Return SQL joining the content columns into one text, unit-separated.

    SQLite's cost is per value handed over, and the columns repeat a few
    thousand combinations across millions of rows: one value, dictionary
    encoded, then split once per combination, is a third cheaper. A column
    holding the separator itself shows as a wrong number of parts (see
    `_split_content`).
    """
    parts = []
    for column in CONTENT_FIELDS:
        if column not in present:
            parts.append("''")
        elif column in _INTEGER_FIELDS:
            parts.append(f"COALESCE(CAST(CAST({column} AS INTEGER) AS TEXT), '')")
        else:
            parts.append(f"COALESCE(CAST({column} AS TEXT), '')")
    return " || char(31) || ".join(parts)


def schedules_query(
    columns: list[str], ids: ContactRange = EVERY_CONTACT, changed_since: int = -1
) -> str:
    """Return the SELECT that reads email_schedules; absent columns read as empty.

    With `changed_since` at 0 or more, only the rows the change log names
    after that entry are read (see `store.snapshot`).
    """
    present = set(columns)
    send = (
        "COALESCE(CAST(scheduled_send_date AS TEXT), '')"
        if "scheduled_send_date" in present
        else "''"
    )
    parent = _FOLLOW_UP_PARENT if {"email_type", "metadata"} <= present else "-1"
    sent_at = (
        _sent_at(present) if {"status", "scheduled_send_date"} <= present else "-1"
    )
    selected = [
        "id",
        "CAST(contact_id AS INTEGER) AS contact_id",
        f"{_event(present)} AS event",
        f"{send} AS scheduled_send_date",
        f"{_content(present)} AS content",
        f"{parent} AS parent",
        f"{sent_at} AS sent_at",
    ]
    first, last = ids
    within = f"contact_id BETWEEN {first} AND {last}"
    changed = (
        f" AND id IN (SELECT row_id FROM {CHANGE_TABLE} "
        f"WHERE {within} AND seq > {changed_since})"
        if changed_since >= 0
        else ""
    )
    return f"SELECT {', '.join(selected)} FROM email_schedules WHERE {within}{changed}"


_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("contact_id", pa.int64()),
        ("event", pa.int64()),
        ("scheduled_send_date", pa.string()),
        ("content", pa.string()),
        ("parent", pa.int64()),
        ("sent_at", pa.int64()),
    ]
)

_TEXT = pa.dictionary(pa.int32(), pa.string())
SCHEDULE_TABLE = pa.schema(
    [
        field.with_type(_TEXT) if field.type == pa.string() else field
        for field in _SCHEMA
    ]
)
"""A schedule table: the rows of email_schedules as `schedules_query` reads
them, text dictionary-encoded (a few thousand distinct values over millions
of rows), sorted by id."""


def by_id(table: pa.Table) -> pa.Table:
    """Return a schedule table's rows sorted by id, in one chunk per column.

    The rows' order is the reader's, whichever way they were read."""
    table = table.unify_dictionaries().combine_chunks()
    ids = table.column("id").to_numpy()
    if np.all(ids[1:] > ids[:-1]):
        return table
    return table.take(np.argsort(ids, kind="stable"))


def schedule_table(
    conn: object,
    columns: list[str],
    ids: ContactRange = EVERY_CONTACT,
    changed_since: int = -1,
) -> pa.Table:
    """Return the rows of email_schedules of contacts in `ids` as a schedule table.

    `columns` are the table's columns (none when it does not exist).
    """
    if not columns:
        return SCHEDULE_TABLE.empty_table()
    table = fetch(conn, schedules_query(columns, ids, changed_since), _SCHEMA)
    encoded = {
        name: pc.dictionary_encode(table.column(name)).cast(_TEXT)
        for name in ("scheduled_send_date", "content")
    }
    for name, column in encoded.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return by_id(table)


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


def _send_days(column: pa.DictionaryArray) -> Days:
    """Return the days of send dates, reading the first ten characters."""
    text = column.dictionary
    days, valid, length = plain_dates(text)
    if (length != 10).any():
        days, valid, _ = plain_dates(pc.utf8_slice_codeunits(text, 0, 10))
    at = column.indices.to_numpy(zero_copy_only=False)
    return np.where(valid, days, MISSING)[at]


def _integer(text: str, empty: int) -> int:
    return int(text) if text else empty


@dataclass(frozen=True)
class _Content:
    """Per distinct content text: the codes of its fields."""

    kind: Ints
    status: Ints
    time: Ints
    reason: Ints
    priority: Ints
    email_template: Ints
    sms_template: Ints
    metadata: Ints


def _split_content(texts: pa.Array, vocabulary: Vocabulary) -> tuple[_Content, Mask]:
    """Return the field codes of each distinct content text, and which are unclear.

    A text with more parts than fields had the separator inside a value:
    its rows are read again column by column (their codes here are those
    of empty fields).
    """
    parts = pc.split_pattern(texts, SEPARATOR)
    count = len(CONTENT_FIELDS)
    unclear = pc.list_value_length(parts).to_numpy(zero_copy_only=False) != count
    if unclear.any():
        empty = pa.array([[""] * count], type=parts.type)
        parts = pc.if_else(pa.array(unclear), empty.take([0] * len(parts)), parts)
    values = pc.list_flatten(parts)
    field = {
        name: values.take(np.arange(at, len(values), count))
        for at, name in enumerate(CONTENT_FIELDS)
    }
    code = {name: vocabulary.codes(field[name]) for name in _TEXT_FIELDS}
    instance = _integers(field["campaign_instance_id"], 0)
    found = _Content(
        kind=_kinds(field["email_type"], instance, vocabulary),
        status=code["status"],
        time=code["scheduled_send_time"],
        reason=code["skip_reason"],
        priority=_integers(field["priority"], -1),
        email_template=code["email_template"],
        sms_template=code["sms_template"],
        metadata=code["metadata"],
    )
    return found, unclear


def _integers(texts: pa.Array, empty: int) -> Ints:
    """Return the integers of texts of integers, `empty` for an empty one."""
    blank = pc.equal(texts, "")
    numbers = pc.cast(
        pc.if_else(blank, pa.scalar(None, pa.string()), texts), pa.int64()
    )
    return np.asarray(numbers.fill_null(empty).to_numpy(zero_copy_only=False))


def _kinds(email_type: pa.Array, instance: Ints, vocabulary: Vocabulary) -> Ints:
    """Return the kind codes of (email type, instance id) pairs."""
    if not len(instance):
        return instance
    types = pc.dictionary_encode(email_type)
    names = types.dictionary.to_pylist()
    index = types.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    pairs, at = np.unique(np.stack([index, instance]), axis=1, return_inverse=True)
    kinds = [vocabulary.kind(names[t], i) for t, i in pairs.T.tolist()]
    return np.array(kinds, dtype=np.int64)[at.reshape(-1)]


def read_schedules(
    conn: object,
    columns: list[str],
    vocabulary: Vocabulary,
    ids: ContactRange = EVERY_CONTACT,
) -> ExistingRows:
    """Return the rows of email_schedules of contacts in `ids` as integer columns.

    `columns` are the table's columns (none when it does not exist).
    """
    table = schedule_table(conn, columns, ids)
    return existing_rows(conn, columns, vocabulary, ids, table)


def existing_rows(
    conn: object,
    columns: list[str],
    vocabulary: Vocabulary,
    ids: ContactRange,
    table: pa.Table,
) -> ExistingRows:
    """Return the rows of a schedule table of contacts in `ids` as integer columns."""
    content = table.column("content").chunk(0) if table.num_rows else None
    texts = content.dictionary if content is not None else pa.array([], pa.string())
    fields, unclear = _split_content(texts, vocabulary)
    at = (
        content.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        if content is not None
        else np.zeros(0, dtype=np.int64)
    )
    rows = _rows(table, fields, at, vocabulary)
    if not unclear.any():
        return rows
    return _reread_unclear(conn, columns, ids, vocabulary, rows, unclear[at])


def _rows(
    table: pa.Table, fields: _Content, at: Ints, vocabulary: Vocabulary
) -> ExistingRows:
    def ints(name: str) -> Ints:
        return table.column(name).to_numpy().astype(np.int64)

    event, year = _event_days(ints("event"))
    return ExistingRows(
        row_id=ints("id"),
        contact_id=ints("contact_id"),
        kind=fields.kind[at],
        event=event,
        event_year=year,
        send=_send_days(table.column("scheduled_send_date").chunk(0))
        if len(table)
        else np.zeros(0, dtype=np.int64),
        status=fields.status[at],
        time=fields.time[at],
        reason=fields.reason[at],
        priority=fields.priority[at],
        email_template=fields.email_template[at],
        sms_template=fields.sms_template[at],
        metadata=fields.metadata[at],
        parent=ints("parent"),
        sent_at=ints("sent_at"),
    )


def _reread_unclear(
    conn: object,
    columns: list[str],
    ids: ContactRange,
    vocabulary: Vocabulary,
    rows: ExistingRows,
    unclear: Mask,
) -> ExistingRows:
    """Return the rows, with those whose content text was unclear read again.

    Those rows hold the separator in a text value; their columns are read
    one by one, which is slow and rare.
    """
    positions = np.flatnonzero(unclear)
    wanted = rows.row_id[positions]
    present = set(columns)
    parts = _content(present).split(" || char(31) || ")
    selected = ", ".join(
        f"{part} AS {name}" for part, name in zip(parts, CONTENT_FIELDS, strict=True)
    )
    listed = ", ".join(str(i) for i in wanted.tolist())
    with conn.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            f"SELECT id, {selected} FROM email_schedules WHERE id IN ({listed})"
        )
        found = {
            row[0]: dict(zip(CONTENT_FIELDS, row[1:], strict=True))
            for row in cursor.fetchall()
        }
    columns_of: dict[str, Ints] = {
        name: getattr(rows, name).copy() for name in _Content.__dataclass_fields__
    }
    for position, row_id in zip(positions.tolist(), wanted.tolist(), strict=True):
        row = found[row_id]
        columns_of["kind"][position] = vocabulary.kind(
            row["email_type"], _integer(row["campaign_instance_id"], 0)
        )
        columns_of["priority"][position] = _integer(row["priority"], -1)
        columns_of["status"][position] = vocabulary.code(row["status"])
        columns_of["time"][position] = vocabulary.code(row["scheduled_send_time"])
        columns_of["reason"][position] = vocabulary.code(row["skip_reason"])
        for name in ("email_template", "sms_template", "metadata"):
            columns_of[name][position] = vocabulary.code(row[name])
    return replace(rows, **columns_of)
