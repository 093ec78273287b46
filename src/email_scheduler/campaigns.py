"""Managing campaigns: campaign types, campaign instances and enrollments.

The `campaign` commands are a thin layer over these functions. Every value
is checked before anything is written, and a bad one raises `CampaignError`
naming the field and what would be accepted. Every change is recorded in
`campaign_change_log` (field, old value, new value, when, by whom) in the
same transaction as the change itself. A run reads the campaign tables
afresh, so the next run reschedules whatever a change affects.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import MISSING, Days, Ints, parse_dates
from email_scheduler.errors import CampaignError
from email_scheduler.store import schema
from email_scheduler.store.campaigns import (
    ALL,
    DATE_FIELDS,
    INSTANCE_FIELDS,
    PENDING,
    CampaignType,
    instance_of,
    split_targets,
    unknown_states,
)
from email_scheduler.store.database import check_exists, connect, transaction

REQUIRED_ON_CREATE = ("active_start_date", "active_end_date")
"""Fields a new instance must set; `update` may clear them (an open range)."""
ENROLL_COLUMNS = ("contact_id", "trigger_date", "metadata")
MAX_REPORTED_ROWS = 20

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_INTEGER = r"^[0-9]{1,18}$"

Values = Mapping[str, str | None]
Mask = npt.NDArray[np.bool_]

_ID_CHUNK = 10_000
"""Ids per lookup query; SQLite allows 32,766 parameters per statement."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def operator(by: str | None) -> str:
    """Return who makes a change: `by` when given, else the OS user."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@contextmanager
def org_database(path: Path) -> Iterator[sqlite3.Connection]:
    """Yield a connection to an existing org database with every table in place."""
    check_exists(path)
    conn = connect(path)
    try:
        schema.migrate(conn)
        yield conn
    finally:
        conn.close()


def _records(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Return the rows of a query as dicts by column name."""
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


_STAMPS = ("created_at", "updated_at")


def _log(
    conn: sqlite3.Connection,
    changes: list[tuple[str, object, object]],
    *,
    campaign_type: str,
    instance_id: int | None,
    by: str,
    now: str,
) -> None:
    conn.executemany(
        "INSERT INTO campaign_change_log (campaign_type, campaign_instance_id, "
        "field_changed, old_value, new_value, changed_at, changed_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (campaign_type, instance_id, name, old, new, now, by)
            for name, old, new in changes
        ],
    )


# -- campaign types ------------------------------------------------------


def add_type(conn: sqlite3.Connection, kind: CampaignType, *, by: str) -> CampaignType:
    """Create a campaign type; its name must be new."""
    if not _TYPE_NAME.match(kind.name):
        raise CampaignError(
            f"name {kind.name!r}: use lower-case letters, digits and underscores, "
            "starting with a letter (e.g. rate_increase)"
        )
    record = asdict(kind)
    now = _now()
    with transaction(conn):
        found = conn.execute(
            "SELECT 1 FROM campaign_types WHERE name = ?", (kind.name,)
        ).fetchone()
        if found:
            raise CampaignError(f"campaign type {kind.name!r} already exists")
        columns = [*record, "created_at", "updated_at"]
        conn.execute(
            f"INSERT INTO campaign_types ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})",
            [
                *(int(v) if isinstance(v, bool) else v for v in record.values()),
                now,
                now,
            ],
        )
        created = json.dumps(record, sort_keys=True)
        _log(
            conn,
            [("created", None, created)],
            campaign_type=kind.name,
            instance_id=None,
            by=by,
            now=now,
        )
    return kind


def list_types(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Return every campaign type with its number of instances, by name."""
    rows = conn.execute(
        "SELECT t.*, (SELECT count(*) FROM campaign_instances i "
        "WHERE i.campaign_type = t.name) AS instances "
        "FROM campaign_types t ORDER BY t.name"
    )
    return [
        {k: v for k, v in record.items() if k not in _STAMPS}
        for record in _records(rows)
    ]


# -- checking instance values ----------------------------------------------


def _date(name: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if not re.match(_DATE, text):
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise CampaignError(
            f"{name}: {value!r} is not a date written YYYY-MM-DD"
        ) from None


def _states(value: str | None) -> str | None:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    if not items:
        return None
    if [item.upper() for item in items] == [ALL]:
        return ALL
    if bad := unknown_states(tuple(items)):
        shown = ", ".join(repr(item) for item in bad)
        raise CampaignError(
            f"target_states: {shown} not a US state code; write codes separated "
            "by commas (e.g. CA,TX) or ALL"
        )
    return ",".join(item.upper() for item in items)


def _carriers(value: str | None) -> str | None:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    if not items:
        return None
    return ALL if not split_targets(",".join(items)) else ",".join(items)


def _metadata(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise CampaignError(f"metadata: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CampaignError('metadata: must be a JSON object, e.g. {"year": 2027}')
    trigger = data.get("trigger_date")
    if trigger is not None:
        if not isinstance(trigger, str):
            raise CampaignError("metadata: trigger_date must be a string YYYY-MM-DD")
        _date("metadata trigger_date", trigger)
    return json.dumps(data, sort_keys=True)


def _text(name: str, value: str | None) -> str | None:
    text = (value or "").strip()
    if name == "instance_name" and not text:
        raise CampaignError("instance_name: must not be empty")
    return text or None


def normalize(name: str, value: str | None) -> str | None:
    """Return an instance field's value as stored, or raise CampaignError."""
    if name in DATE_FIELDS:
        return _date(name, value)
    if name == "target_states":
        return _states(value)
    if name == "target_carriers":
        return _carriers(value)
    if name == "metadata":
        return _metadata(value)
    if name in INSTANCE_FIELDS:
        return _text(name, value)
    raise CampaignError(
        f"{name!r} is not a field of a campaign instance; "
        f"fields: {', '.join(INSTANCE_FIELDS)}"
    )


def check_ranges(record: Values) -> None:
    """Raise CampaignError unless the active and spread ranges fit together."""
    start, end = record.get("active_start_date"), record.get("active_end_date")
    if start and end and end < start:
        raise CampaignError(
            f"active_end_date {end} is before active_start_date {start}"
        )
    first, last = record.get("spread_start_date"), record.get("spread_end_date")
    if bool(first) != bool(last):
        raise CampaignError(
            "spread_start_date and spread_end_date: set both, or neither"
        )
    if not (first and last):
        return
    if last < first:
        raise CampaignError(
            f"spread_end_date {last} is before spread_start_date {first}"
        )
    if (start and first < start) or (end and last > end):
        raise CampaignError(
            f"spread range {first}..{last} lies outside the active range "
            f"{start or '(open)'}..{end or '(open)'}"
        )


def check_required(record: Values) -> None:
    """Raise CampaignError unless a new instance sets its active range."""
    for name in REQUIRED_ON_CREATE:
        if not record.get(name):
            raise CampaignError(f"{name}: required, a date written YYYY-MM-DD")


# -- campaign instances ----------------------------------------------------


def _instance_row(conn: sqlite3.Connection, instance_id: int) -> dict[str, Any]:
    found = _records(
        conn.execute("SELECT * FROM campaign_instances WHERE id = ?", (instance_id,))
    )
    if not found:
        raise CampaignError(
            f"campaign instance {instance_id} does not exist; "
            "see 'email-scheduler campaign list'"
        )
    return found[0]


def _name_taken(
    conn: sqlite3.Connection, campaign_type: str, name: str, instance_id: int
) -> None:
    found = conn.execute(
        "SELECT id FROM campaign_instances WHERE campaign_type = ? "
        "AND instance_name = ? AND id != ?",
        (campaign_type, name, instance_id),
    ).fetchone()
    if found:
        raise CampaignError(
            f"instance_name: {campaign_type} already has an instance named {name!r} "
            f"(id {found[0]})"
        )


def create_instance(
    conn: sqlite3.Connection, campaign_type: str, values: Values, *, by: str
) -> dict[str, Any]:
    """Create a campaign instance of an existing type and return its row."""
    record = {name: normalize(name, values.get(name)) for name in INSTANCE_FIELDS}
    check_required(record)
    check_ranges(record)
    now = _now()
    with transaction(conn):
        if not conn.execute(
            "SELECT 1 FROM campaign_types WHERE name = ?", (campaign_type,)
        ).fetchone():
            raise CampaignError(
                f"campaign type {campaign_type!r} does not exist; create it with "
                "'email-scheduler campaign add-type' or see 'campaign types'"
            )
        _name_taken(conn, campaign_type, str(record["instance_name"]), -1)
        columns = ["campaign_type", *record, "created_at", "updated_at"]
        cursor = conn.execute(
            f"INSERT INTO campaign_instances ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})",
            [campaign_type, *record.values(), now, now],
        )
        instance_id = int(cursor.lastrowid or 0)
        _log(
            conn,
            [("created", None, json.dumps(record, sort_keys=True))],
            campaign_type=campaign_type,
            instance_id=instance_id,
            by=by,
            now=now,
        )
        return _instance_row(conn, instance_id)


@dataclass(frozen=True)
class Change:
    """One field of a campaign instance that an update changed."""

    field: str
    old: str | None
    new: str | None


def update_instance(
    conn: sqlite3.Connection, instance_id: int, values: Values, *, by: str
) -> list[Change]:
    """Change fields of a campaign instance; return the changes actually made.

    Changes come in the order of INSTANCE_FIELDS. A field given its current
    value is no change and is not logged.
    """
    if not values:
        raise CampaignError("nothing to change: give at least one field and value")
    wanted = {name: normalize(name, value) for name, value in values.items()}
    now = _now()
    with transaction(conn):
        row = _instance_row(conn, instance_id)
        changes = [
            Change(name, row.get(name), wanted[name])
            for name in INSTANCE_FIELDS
            if name in wanted and row.get(name) != wanted[name]
        ]
        if not changes:
            return []
        merged = {**{name: row.get(name) for name in INSTANCE_FIELDS}, **wanted}
        check_ranges(merged)
        if "instance_name" in wanted:
            _name_taken(
                conn, row["campaign_type"], str(wanted["instance_name"]), instance_id
            )
        assignments = ", ".join(f"{c.field} = ?" for c in changes)
        conn.execute(
            f"UPDATE campaign_instances SET {assignments}, updated_at = ? WHERE id = ?",
            [*(c.new for c in changes), now, instance_id],
        )
        _log(
            conn,
            [(c.field, c.old, c.new) for c in changes],
            campaign_type=row["campaign_type"],
            instance_id=instance_id,
            by=by,
            now=now,
        )
    return changes


def list_instances(
    conn: sqlite3.Connection, active_on: dt.date | None = None
) -> list[dict[str, Any]]:
    """Return campaign instances with their enrollment counts, by id.

    With `active_on`, only the instances that plan emails on that day: an
    active type and an active range that holds the day.
    """
    rows = conn.execute(
        "SELECT i.*, t.active AS type_active, "
        "(SELECT count(*) FROM contact_campaigns c "
        "WHERE c.campaign_instance_id = i.id) AS enrolled "
        "FROM campaign_instances i LEFT JOIN campaign_types t "
        "ON t.name = i.campaign_type ORDER BY i.id"
    )
    found = []
    for record in _records(rows):
        type_active = record.pop("type_active")
        if active_on is not None:
            instance = instance_of(record)
            if not (type_active and instance.active_on(active_on)):
                continue
        found.append({k: v for k, v in record.items() if k not in _STAMPS})
    return found


# -- enrollment -------------------------------------------------------------


@dataclass(frozen=True)
class BadRow:
    """A CSV row that cannot be enrolled, by line number (the header is line 1)."""

    line: int
    problem: str


@dataclass(frozen=True)
class EnrollReport:
    """What an enrollment read and wrote."""

    instance_id: int
    rows: int
    enrolled: int
    already_enrolled: int
    bad_rows: tuple[BadRow, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        data = asdict(self)
        data["bad_rows"] = [asdict(bad) for bad in self.bad_rows]
        return data


@dataclass(frozen=True)
class _Csv:
    lines: list[int]
    contact_id: list[str]
    trigger_date: list[str]
    metadata: list[str]
    bad: list[BadRow]


def _read_csv(path: Path) -> _Csv:
    """Return the CSV's columns as text, with each record's line number."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CampaignError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        if header not in (list(ENROLL_COLUMNS[:2]), list(ENROLL_COLUMNS)):
            found = ",".join(header) or "nothing"
            raise CampaignError(
                f"{path}: the header must be contact_id,trigger_date or "
                f"contact_id,trigger_date,metadata (found {found})"
            )
        parsed = _Csv([], [], [], [], [])
        try:
            for record in reader:
                if not record or record == [""]:
                    continue
                if len(record) not in (2, len(header)):
                    parsed.bad.append(
                        BadRow(
                            reader.line_num,
                            f"{len(record)} fields; expected {len(header)}",
                        )
                    )
                    continue
                parsed.lines.append(reader.line_num)
                parsed.contact_id.append(record[0].strip())
                parsed.trigger_date.append(record[1].strip())
                parsed.metadata.append(record[2].strip() if len(record) > 2 else "")
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CampaignError(f"{path}: not a readable CSV file ({exc})") from None
    return parsed


def _integers(text: list[str]) -> tuple[Ints, Mask]:
    """Return the whole numbers of a text column, and where they are valid."""
    valid = _flags(pc.match_substring_regex(pa.array(text, pa.string()), _INTEGER))
    ids = np.zeros(len(text), dtype=np.int64)
    if valid.any():
        ids[valid] = np.asarray(text, dtype=object)[valid].astype(np.int64)
    return ids, valid


def _dates(text: list[str]) -> tuple[Days, Mask]:
    """Return the days of a column of YYYY-MM-DD dates, and where they are valid."""
    column = pa.array(text, pa.string())
    days, _ = parse_dates(pa.chunked_array([column]))
    valid = _flags(pc.match_substring_regex(column, _DATE)) & (days != MISSING)
    return days, valid


def _flags(array: pa.Array) -> Mask:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), bool)


def _known_contacts(conn: sqlite3.Connection, ids: Ints, valid: Mask) -> Mask:
    """Return which ids are in the contacts table."""
    unique = np.unique(ids[valid])
    found: list[int] = []
    for first in range(0, len(unique), _ID_CHUNK):
        chunk = unique[first : first + _ID_CHUNK].tolist()
        marks = ", ".join("?" * len(chunk))
        found += [
            row[0]
            for row in conn.execute(
                f"SELECT id FROM contacts WHERE id IN ({marks})", chunk
            )
        ]
    return valid & np.isin(ids, np.array(found, dtype=np.int64))


def _first_lines(ids: Ints, days: Days, usable: Mask, lines: Ints) -> Ints:
    """Return, for each usable row, the line of the first row with its key."""
    first = lines.copy()
    at = np.flatnonzero(usable)
    if len(at):
        keys = np.stack([ids[at], days[at]], axis=1)
        _, index, inverse = np.unique(
            keys, axis=0, return_index=True, return_inverse=True
        )
        first[at] = lines[at][index][inverse.reshape(-1)]
    return first


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _check_rows(conn: sqlite3.Connection, rows: _Csv) -> tuple[Ints, list[BadRow]]:
    """Return the contact id of each row, and the rows that cannot be enrolled."""
    lines = np.asarray(rows.lines, dtype=np.int64)
    ids, numeric = _integers(rows.contact_id)
    days, dated = _dates(rows.trigger_date)
    known = _known_contacts(conn, ids, numeric)
    first = _first_lines(ids, days, numeric & dated, lines)
    metadata_ok = np.array(
        [not value or _json_object(value) for value in rows.metadata], dtype=bool
    )
    checks: list[tuple[Mask, Callable[[int], str]]] = [
        (~numeric, lambda i: f"contact_id {rows.contact_id[i]!r} is not a number"),
        (numeric & ~known, lambda i: f"contact_id {ids[i]} is not a contact"),
        (
            ~dated,
            lambda i: f"trigger_date {rows.trigger_date[i]!r} is not YYYY-MM-DD",
        ),
        (first != lines, lambda i: f"repeats line {first[i]} (same contact and date)"),
        (~metadata_ok, lambda i: "metadata is not a JSON object"),
    ]
    problems: dict[int, list[str]] = {}
    for mask, describe in checks:
        for i in np.flatnonzero(mask).tolist():
            problems.setdefault(i, []).append(describe(i))
    bad = [BadRow(rows.lines[i], "; ".join(found)) for i, found in problems.items()]
    return ids, bad


def _refusal(path: Path, bad: list[BadRow]) -> CampaignError:
    shown = [f"  line {b.line}: {b.problem}" for b in bad[:MAX_REPORTED_ROWS]]
    if len(bad) > MAX_REPORTED_ROWS:
        shown.append(f"  ... and {len(bad) - MAX_REPORTED_ROWS} more")
    return CampaignError(
        f"{path}: {len(bad)} bad row(s), nothing enrolled; fix them or pass "
        "--skip-bad-rows to enroll the others:\n" + "\n".join(shown)
    )


def enroll(
    conn: sqlite3.Connection,
    instance_id: int,
    path: Path,
    *,
    skip_bad_rows: bool = False,
    by: str,
) -> EnrollReport:
    """Enroll the contacts of a CSV file (contact_id,trigger_date[,metadata]).

    Every row is checked first: a contact id that is not a contact, a date
    that is not YYYY-MM-DD, a row repeating an earlier one, metadata that
    is not a JSON object. Any bad row stops the enrollment, with nothing
    written, unless `skip_bad_rows`. Rows already enrolled are left as they
    are, so enrolling the same file twice changes nothing.
    """
    started = time.perf_counter()
    row = _instance_row(conn, instance_id)
    kind = conn.execute(
        "SELECT target_all_contacts FROM campaign_types WHERE name = ?",
        (row["campaign_type"],),
    ).fetchone()
    if kind is not None and str(kind[0]).lower() in ("1", "true"):
        raise CampaignError(
            f"campaign instance {instance_id}: type {row['campaign_type']!r} targets "
            "all contacts, so enrolling contacts would change nothing"
        )
    rows = _read_csv(path)
    ids, bad = _check_rows(conn, rows)
    bad = sorted(rows.bad + bad, key=lambda b: b.line)
    if bad and not skip_bad_rows:
        raise _refusal(path, bad)
    bad_lines = {b.line for b in bad}
    good = [i for i, line in enumerate(rows.lines) if line not in bad_lines]
    enrolled = _insert(conn, row, rows, ids[good], good, by, path)
    return EnrollReport(
        instance_id=instance_id,
        rows=len(rows.lines) + len(rows.bad),
        enrolled=enrolled,
        already_enrolled=len(good) - enrolled,
        bad_rows=tuple(bad),
        seconds=round(time.perf_counter() - started, 3),
    )


def _insert(
    conn: sqlite3.Connection,
    instance: Mapping[str, Any],
    rows: _Csv,
    ids: Ints,
    good: list[int],
    by: str,
    path: Path,
) -> int:
    """Insert the rows not yet enrolled and log the change; return how many."""
    instance_id = int(instance["id"])
    now = _now()
    with transaction(conn):
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS enroll_rows "
            "(contact_id INTEGER, trigger_date TEXT, metadata TEXT)"
        )
        conn.execute("DELETE FROM temp.enroll_rows")
        conn.executemany(
            "INSERT INTO temp.enroll_rows VALUES (?, ?, ?)",
            (
                (contact, rows.trigger_date[i], rows.metadata[i] or None)
                for contact, i in zip(ids.tolist(), good, strict=True)
            ),
        )
        (before,) = conn.execute(
            "SELECT count(*) FROM contact_campaigns WHERE campaign_instance_id = ?",
            (instance_id,),
        ).fetchone()
        cursor = conn.execute(
            "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, "
            "trigger_date, status, metadata, created_at, updated_at) "
            "SELECT r.contact_id, ?, r.trigger_date, ?, r.metadata, ?, ? "
            "FROM temp.enroll_rows AS r WHERE NOT EXISTS (SELECT 1 FROM "
            "contact_campaigns AS c WHERE c.contact_id = r.contact_id "
            "AND c.campaign_instance_id = ? AND c.trigger_date = r.trigger_date)",
            (instance_id, PENDING, now, now, instance_id),
        )
        enrolled = cursor.rowcount
        conn.execute("DROP TABLE temp.enroll_rows")
        if enrolled:
            _log(
                conn,
                [("enrollments", str(before), f"{before + enrolled} ({path.name})")],
                campaign_type=instance["campaign_type"],
                instance_id=instance_id,
                by=by,
                now=now,
            )
    return enrolled
