"""The campaign tables: campaign types, campaign instances and enrollments.

Types and instances are few and are read as Python records. Enrollments
(`contact_campaigns`) can number millions and are read through ADBC as
integer columns, every value cast to one type in SQL like the other reads.
Stored values are parsed leniently: an instance whose dates, targeting or
metadata do not parse carries the problems found, and plans nothing.
Older databases may lack some columns; a missing column reads as its default.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import MISSING, Days, Ints
from email_scheduler.geography import state_index
from email_scheduler.store.database import fetch_table
from email_scheduler.store.schema import table_columns

EMAIL_TYPE_PREFIX = "campaign_"
ALL = "ALL"

PENDING, SCHEDULED, SKIPPED, SENT = "pending", "scheduled", "skipped", "sent"
ENROLLMENT_STATUSES = (PENDING, SCHEDULED, SKIPPED, SENT)
"""Statuses of a `contact_campaigns` row; its `status` column holds their index."""

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True)
class CampaignType:
    """A reusable campaign configuration (a row of `campaign_types`)."""

    name: str
    respect_exclusion_windows: bool = True
    enable_followups: bool = True
    days_before_event: int = 0
    target_all_contacts: bool = False
    priority: int = 50
    active: bool = True
    spread_evenly: bool = False
    skip_failed_underwriting: bool = False

    @property
    def email_type(self) -> str:
        """Return the `email_type` of this campaign's emails."""
        return f"{EMAIL_TYPE_PREFIX}{self.name}"


@dataclass(frozen=True)
class CampaignInstance:
    """One run of a campaign type (a row of `campaign_instances`)."""

    id: int
    campaign_type: str
    instance_name: str
    email_template: str | None = None
    sms_template: str | None = None
    active_start: dt.date | None = None
    active_end: dt.date | None = None
    spread_start: dt.date | None = None
    spread_end: dt.date | None = None
    target_states: tuple[str, ...] = ()
    """Upper-case state codes; empty means every state."""
    target_carriers: tuple[str, ...] = ()
    """Lower-case carrier names; empty means every carrier."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """Stored values that did not parse; such an instance plans nothing."""

    @property
    def universal(self) -> bool:
        """Return whether the instance restricts neither states nor carriers."""
        return not self.target_states and not self.target_carriers

    @property
    def spread(self) -> tuple[dt.date, dt.date] | None:
        """Return the spread range when both of its dates are set."""
        if self.spread_start is None or self.spread_end is None:
            return None
        return self.spread_start, self.spread_end

    @property
    def trigger(self) -> dt.date | None:
        """Return the trigger date of an all-contacts campaign.

        The metadata's `trigger_date` wins over the active range's start.
        """
        value = self.metadata.get("trigger_date")
        return parse_date(value) if isinstance(value, str) else self.active_start

    def active_on(self, day: dt.date) -> bool:
        """Return whether `day` lies in the active range (missing bounds are open)."""
        started = self.active_start is None or self.active_start <= day
        return started and (self.active_end is None or day <= self.active_end)

    def ended_by(self, day: dt.date) -> bool:
        """Return whether the active range ended before `day`."""
        return self.active_end is not None and self.active_end < day


@dataclass(frozen=True)
class Enrollments:
    """The rows of `contact_campaigns`, as columns."""

    id: Ints
    contact_id: Ints
    instance: Ints
    trigger: Days
    """Trigger date, or MISSING where it is empty or not a date."""
    status: Ints
    """Index into ENROLLMENT_STATUSES, or -1 for any other value."""

    def __len__(self) -> int:
        return len(self.id)

    @staticmethod
    def empty() -> Enrollments:
        """Return no enrollments."""
        none = np.zeros(0, dtype=np.int64)
        return Enrollments(*(none for _ in fields(Enrollments)))

    def by_contact(self) -> Enrollments:
        """Return the enrollments ordered by contact id (each contact's in
        the order they had)."""
        order = np.argsort(self.contact_id, kind="stable")
        return Enrollments(*(getattr(self, f.name)[order] for f in fields(self)))

    def of_contacts(self, first: int, last: int) -> Enrollments:
        """Return the enrollments of contact ids `first` to `last`; they must
        be ordered by contact id (see `by_contact`)."""
        start = np.searchsorted(self.contact_id, first, side="left")
        end = np.searchsorted(self.contact_id, last, side="right")
        return Enrollments(*(getattr(self, f.name)[start:end] for f in fields(self)))


@dataclass(frozen=True)
class Campaigns:
    """Every campaign type, instance and enrollment of an org database."""

    types: Mapping[str, CampaignType] = field(default_factory=dict)
    instances: tuple[CampaignInstance, ...] = ()
    enrollments: Enrollments = field(default_factory=Enrollments.empty)
    """Ordered by contact id when read from a database."""

    def of_contacts(self, first: int, last: int) -> Campaigns:
        """Return the campaigns with the enrollments of contact ids `first`
        to `last` only: what one partition of a run needs of them."""
        return replace(self, enrollments=self.enrollments.of_contacts(first, last))


def parse_date(value: object) -> dt.date | None:
    """Return a `YYYY-MM-DD` date (a time after it is ignored), or None."""
    if not isinstance(value, str) or not _DATE.match(value.strip()[:10]):
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def split_targets(text: str | None) -> tuple[str, ...]:
    """Return the items of a comma-separated target list; `ALL` means none.

    An empty list and `ALL` both mean no restriction, so both return ().
    """
    items = tuple(item.strip() for item in (text or "").split(",") if item.strip())
    if any(item.upper() == ALL for item in items):
        return ()
    return items


def unknown_states(states: tuple[str, ...]) -> list[str]:
    """Return the items of a state list that are not US state codes."""
    known = state_index()
    return [state for state in states if state.upper() not in known]


# -- reading ----------------------------------------------------------------

_TRUE = "('1', 'true', 't', 'yes', 'y')"
_FALSE = "('0', 'false', 'f', 'no', 'n')"


def _flag(column: str, default: bool) -> str:
    text = f"lower(trim(CAST({column} AS TEXT)))"
    return (
        f"CASE WHEN {text} IN {_TRUE} THEN 1 WHEN {text} IN {_FALSE} THEN 0 "
        f"ELSE {int(default)} END"
    )


def _select(present: set[str], column: str, expression: str, default: str) -> str:
    return f"{expression if column in present else default} AS {column}"


def read_types(conn: sqlite3.Connection) -> dict[str, CampaignType]:
    """Return every campaign type by name (none when the table is missing)."""
    present = set(table_columns(conn, "campaign_types"))
    if "name" not in present:
        return {}
    defaults = {
        spec.name: getattr(CampaignType(name=""), spec.name)
        for spec in fields(CampaignType)[1:]
    }
    selected = ["CAST(name AS TEXT) AS name"]
    for column, default in defaults.items():
        if isinstance(default, bool):
            expression = _flag(column, default)
        else:
            expression = f"COALESCE(CAST({column} AS INTEGER), {default})"
        selected.append(_select(present, column, expression, str(int(default))))
    rows = conn.execute(
        f"SELECT {', '.join(selected)} FROM campaign_types WHERE name IS NOT NULL"
    )
    found = {}
    for name, *values in rows:
        typed = {
            column: type(default)(value)
            for (column, default), value in zip(defaults.items(), values, strict=True)
        }
        found[name] = CampaignType(name, **typed)
    return found


INSTANCE_FIELDS = (
    "instance_name",
    "email_template",
    "sms_template",
    "active_start_date",
    "active_end_date",
    "spread_start_date",
    "spread_end_date",
    "target_states",
    "target_carriers",
    "metadata",
)
"""The columns of a campaign instance besides its id and campaign type: what
`campaign create` sets and `campaign update` changes."""
DATE_FIELDS = INSTANCE_FIELDS[3:7]


def read_instances(conn: sqlite3.Connection) -> tuple[CampaignInstance, ...]:
    """Return every campaign instance, in id order (none when the table is missing)."""
    present = set(table_columns(conn, "campaign_instances"))
    if not {"id", "campaign_type"} <= present:
        return ()
    selected = ["id", "CAST(campaign_type AS TEXT)"]
    selected += [
        _select(present, name, f"CAST({name} AS TEXT)", "NULL")
        for name in INSTANCE_FIELDS
    ]
    rows = conn.execute(
        f"SELECT {', '.join(selected)} FROM campaign_instances "
        "WHERE typeof(id) = 'integer' ORDER BY id"
    )
    names = ("id", "campaign_type", *INSTANCE_FIELDS)
    return tuple(instance_of(dict(zip(names, row, strict=True))) for row in rows)


def instance_of(row: Mapping[str, Any]) -> CampaignInstance:
    """Return the instance stored in a row, noting every value that does not parse."""
    problems: list[str] = []

    def day(column: str) -> dt.date | None:
        value = row.get(column)
        if value is None or not str(value).strip():
            return None
        parsed = parse_date(str(value))
        if parsed is None:
            problems.append(f"{column} {value!r} is not a date")
        return parsed

    dates = [day(name) for name in DATE_FIELDS]
    if dates[2] and dates[3] and dates[3] < dates[2]:
        problems.append("spread_end_date is before spread_start_date")
    states = tuple(s.upper() for s in split_targets(row.get("target_states")))
    if bad := unknown_states(states):
        problems.append(f"target_states holds {', '.join(bad)}, not state codes")
    carriers = tuple(c.lower() for c in split_targets(row.get("target_carriers")))
    metadata = _metadata(row.get("metadata"), problems)
    trigger = metadata.get("trigger_date")
    if trigger is not None and parse_date(trigger) is None:
        problems.append(f"metadata trigger_date {trigger!r} is not a date")
    return CampaignInstance(
        id=int(row["id"]),
        campaign_type=str(row["campaign_type"] or ""),
        instance_name=str(row.get("instance_name") or ""),
        email_template=row.get("email_template") or None,
        sms_template=row.get("sms_template") or None,
        active_start=dates[0],
        active_end=dates[1],
        spread_start=dates[2],
        spread_end=dates[3],
        target_states=states,
        target_carriers=carriers,
        metadata=metadata,
        problems=tuple(problems),
    )


def _metadata(text: object, problems: list[str]) -> dict[str, Any]:
    if text is None or not str(text).strip():
        return {}
    try:
        value = json.loads(str(text))
    except ValueError:
        problems.append("metadata is not JSON")
        return {}
    if not isinstance(value, dict):
        problems.append("metadata is not a JSON object")
        return {}
    return value


_TRIGGER = "substr(trim(CAST(trigger_date AS TEXT)), 1, 10)"

_ENROLLMENT_QUERY = f"""
SELECT
    id,
    CAST(contact_id AS INTEGER) AS contact_id,
    CAST(campaign_instance_id AS INTEGER) AS instance,
    CASE WHEN date(julianday({_TRIGGER})) = {_TRIGGER}
        THEN CAST(julianday({_TRIGGER}) - 2440587.5 AS INTEGER)
        ELSE {MISSING} END AS trigger,
    lower(trim(COALESCE(CAST(status AS TEXT), ''))) AS status
FROM contact_campaigns
WHERE typeof(id) = 'integer' AND contact_id IS NOT NULL
    AND campaign_instance_id IS NOT NULL
ORDER BY id
"""

_ENROLLMENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("contact_id", pa.int64()),
        ("instance", pa.int64()),
        ("trigger", pa.int64()),
        ("status", pa.string()),
    ]
)


def read_enrollments(columnar: Any, conn: sqlite3.Connection) -> Enrollments:
    """Return every `contact_campaigns` row as columns, ordered by contact id
    (none without the table)."""
    present = set(table_columns(conn, "contact_campaigns"))
    if not {"id", "contact_id", "campaign_instance_id"} <= present:
        return Enrollments.empty()
    query = _ENROLLMENT_QUERY
    for column, default in (("trigger_date", "NULL"), ("status", "''")):
        if column not in present:
            query = query.replace(f"CAST({column} AS TEXT)", default)
    table = fetch_table(columnar, query)
    if table.num_rows == 0:
        return Enrollments.empty()
    table = table.cast(_ENROLLMENT_SCHEMA)

    def ints(name: str) -> Ints:
        return table.column(name).to_numpy().astype(np.int64)

    status = pc.index_in(
        table.column("status"), value_set=pa.array(ENROLLMENT_STATUSES)
    )
    return Enrollments(
        id=ints("id"),
        contact_id=ints("contact_id"),
        instance=ints("instance"),
        trigger=ints("trigger"),
        status=status.fill_null(-1).to_numpy().astype(np.int64),
    ).by_contact()


def read_campaigns(columnar: Any, conn: sqlite3.Connection) -> Campaigns:
    """Return the campaign types, instances and enrollments of an org database."""
    return Campaigns(
        types=read_types(conn),
        instances=read_instances(conn),
        enrollments=read_enrollments(columnar, conn),
    )


# -- writing ----------------------------------------------------------------


def write_statuses(cursor: Any, ids: Ints, statuses: Ints, now: str) -> int:
    """Set enrollment statuses (indexes into ENROLLMENT_STATUSES); never touch `sent`.

    Runs through an ADBC cursor inside the caller's transaction and returns
    the number of rows changed.
    """
    if len(ids) == 0:
        return 0
    table = pa.table(
        {
            "id": pa.array(ids),
            "status": pa.array(ENROLLMENT_STATUSES).take(pa.array(statuses)),
            "now": pa.array([now] * len(ids), type=pa.string()),
        }
    ).sort_by("id")
    cursor.execute("DROP TABLE IF EXISTS temp.enrollment_statuses")
    cursor.adbc_ingest("enrollment_statuses", table, mode="create", temporary=True)
    cursor.execute(
        "UPDATE contact_campaigns SET status = u.status, updated_at = u.now "
        "FROM temp.enrollment_statuses AS u WHERE contact_campaigns.id = u.id "
        f"AND lower(trim(contact_campaigns.status)) IS NOT '{SENT}' "
        "AND contact_campaigns.status IS NOT u.status"
    )
    cursor.execute("SELECT changes()")
    changed = int(cursor.fetchone()[0])
    cursor.execute("DROP TABLE IF EXISTS temp.enrollment_statuses")
    return changed
