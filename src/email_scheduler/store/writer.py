"""The smart update: write only what changed, and never touch the sender's rows.

The diff compares the plan with the existing rows by identity:

- a planned email without a row: insert;
- a row whose content is the same: leave it alone (it keeps its run id);
- a row whose content changed: update it in place (a follow-up's type is
  content, since its identity is its parent);
- a pending or skipped row, dated today or later, that the run plans (see
  `owned`), whose contact was read and whose identity the plan no longer
  holds: delete.

Rows dated before today are history, except overdue pre-scheduled rows whose
identity the plan still holds (catch-ups and follow-ups): those are moved.
Every statement is guarded by the status, so a row the sending system marked
`sent` between our read and our write is never changed; such rows are
counted as conflicts.
The changed rows travel to SQLite as Arrow tables through ADBC bulk ingest,
then one set-based statement per kind of change applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from email_scheduler.calendar import MISSING, Ints, civil, from_days
from email_scheduler.plan import PRE_SCHEDULED, SKIPPED, Plan, Vocabulary
from email_scheduler.store.reader import ExistingRows

_GUARD = f"status IN ('{PRE_SCHEDULED}', '{SKIPPED}')"

_CONTENT = (
    "email_type",
    "campaign_instance_id",
    "scheduled_send_date",
    "scheduled_send_time",
    "status",
    "skip_reason",
    "priority",
    "email_template",
    "sms_template",
    "metadata",
    "event_year",
    "event_month",
    "event_day",
)


@dataclass(frozen=True)
class Changes:
    """What the plan changes in email_schedules."""

    inserts: Plan
    updates: Plan
    """Planned rows whose existing row (`Plan.row`) must change."""
    deletes: Ints
    """Row ids to delete."""
    unchanged: int


@dataclass(frozen=True)
class Written:
    """Row counts of a write."""

    inserted: int
    updated: int
    deleted: int
    conflicts: int
    """Rows the sending system took over between our read and our write."""


def diff(
    plan: Plan,
    existing: ExistingRows,
    vocabulary: Vocabulary,
    *,
    today: int,
    send_time: str,
    contact_ids: Ints,
    owned: npt.NDArray[np.bool_],
) -> Changes:
    """Return the inserts, updates and deletes that turn the table into the plan.

    `owned` says, per existing row, whether the run plans it, so that such
    a row the plan lacks is stale.
    """
    matched = plan.row >= 0
    rows = plan.row[matched]
    part = plan.take(matched)
    status = np.where(
        part.skipped, vocabulary.code(SKIPPED), vocabulary.code(PRE_SCHEDULED)
    )
    same = (
        (existing.kind[rows] == part.kind)
        & (existing.send[rows] == part.send)
        & (existing.time[rows] == vocabulary.code(send_time))
        & (existing.status[rows] == status)
        & (existing.reason[rows] == part.reason)
        & (existing.priority[rows] == part.priority)
        & (existing.email_template[rows] == part.email_template)
        & (existing.sms_template[rows] == part.sms_template)
        & (existing.metadata[rows] == part.metadata)
        & (existing.event[rows] == part.event)
    )
    return Changes(
        inserts=plan.take(~matched),
        updates=part.take(~same),
        deletes=existing.row_id[
            _stale(existing, vocabulary, rows, today, contact_ids, owned)
        ],
        unchanged=int(same.sum()),
    )


def _stale(
    existing: ExistingRows,
    vocabulary: Vocabulary,
    matched_rows: Ints,
    today: int,
    contact_ids: Ints,
    owned: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Return the rows the plan no longer holds and the scheduler may delete."""
    managed = np.isin(
        existing.status, [vocabulary.code(PRE_SCHEDULED), vocabulary.code(SKIPPED)]
    )
    stale = managed & (existing.send != MISSING) & (existing.send >= today) & owned
    stale &= np.isin(existing.contact_id, contact_ids)
    stale[matched_rows] = False
    return stale


def _date_strings(days: Ints) -> pa.Array:
    unique, inverse = np.unique(days, return_inverse=True)
    text = pa.array([from_days(int(d)).isoformat() for d in unique], type=pa.string())
    return text.take(pa.array(inverse.reshape(-1)))


def rows_table(
    part: Plan, vocabulary: Vocabulary, *, send_time: str, run_id: str, now: str
) -> pa.Table:
    """Return planned rows as the Arrow table of email_schedules columns."""
    dated = part.event != MISSING
    year, month, day = civil(np.where(dated, part.event, 0))
    n = len(part)
    kinds = vocabulary.kinds
    type_of = np.array([vocabulary.code(t) for t, _ in kinds], dtype=np.int64)
    instance_of = np.array([i for _, i in kinds], dtype=np.int64)
    instance = instance_of[part.kind] if n else np.zeros(0, dtype=np.int64)
    status = np.where(
        part.skipped, vocabulary.code(SKIPPED), vocabulary.code(PRE_SCHEDULED)
    )
    return pa.table(
        {
            "id": pa.array(np.zeros(n, dtype=np.int64)),
            "contact_id": pa.array(part.contact_id),
            "email_type": vocabulary.text(type_of[part.kind] if n else part.kind),
            "campaign_instance_id": pa.array(instance, mask=instance == 0),
            "scheduled_send_date": _date_strings(part.send),
            "scheduled_send_time": pa.array([send_time] * n, type=pa.string()),
            "status": vocabulary.text(status),
            "skip_reason": vocabulary.text(part.reason),
            "priority": pa.array(part.priority),
            "email_template": vocabulary.text(part.email_template),
            "sms_template": vocabulary.text(part.sms_template),
            "metadata": vocabulary.text(part.metadata),
            "event_year": pa.array(year, mask=~dated),
            "event_month": pa.array(month, mask=~dated),
            "event_day": pa.array(day, mask=~dated),
            "scheduler_run_id": pa.array([run_id] * n, type=pa.string()),
            "now": pa.array([now] * n, type=pa.string()),
        }
    )


def _changes(cursor: object) -> int:
    cursor.execute("SELECT changes()")  # type: ignore[attr-defined]
    return int(cursor.fetchone()[0])  # type: ignore[attr-defined]


def _ingest(cursor: object, name: str, table: pa.Table) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS temp.{name}")  # type: ignore[attr-defined]
    cursor.adbc_ingest(name, table, mode="create", temporary=True)  # type: ignore[attr-defined]


def write(
    cursor: object,
    changes: Changes,
    existing: ExistingRows,
    vocabulary: Vocabulary,
    *,
    send_time: str,
    run_id: str,
    now: str,
) -> Written:
    """Apply the changes through an ADBC cursor, inside the caller's transaction."""
    run = cursor.execute  # type: ignore[attr-defined]
    deleted = 0
    if len(changes.deletes):
        _ingest(
            cursor, "stale_rows", pa.table({"id": pa.array(np.sort(changes.deletes))})
        )
        run(
            f"DELETE FROM email_schedules WHERE {_GUARD} "
            "AND id IN (SELECT id FROM temp.stale_rows)"
        )
        deleted = _changes(cursor)

    updated = 0
    if len(changes.updates):
        table = rows_table(
            changes.updates, vocabulary, send_time=send_time, run_id=run_id, now=now
        )
        row_ids = existing.row_id[changes.updates.row]
        table = table.set_column(0, "id", pa.array(row_ids)).sort_by("id")
        _ingest(cursor, "changed_rows", table)
        assignments = ", ".join(f"{c} = u.{c}" for c in _CONTENT)
        run(
            f"UPDATE email_schedules SET {assignments}, "
            "scheduler_run_id = u.scheduler_run_id, updated_at = u.now "
            f"FROM temp.changed_rows AS u WHERE email_schedules.id = u.id "
            f"AND email_schedules.{_GUARD}"
        )
        updated = _changes(cursor)

    inserted = 0
    if len(changes.inserts):
        table = rows_table(
            changes.inserts, vocabulary, send_time=send_time, run_id=run_id, now=now
        ).sort_by([("contact_id", "ascending"), ("scheduled_send_date", "ascending")])
        _ingest(cursor, "new_rows", table)
        columns = ", ".join(["contact_id", *_CONTENT, "scheduler_run_id"])
        run(
            f"INSERT INTO email_schedules ({columns}, created_at, updated_at) "
            f"SELECT {columns}, now, now FROM temp.new_rows"
        )
        inserted = _changes(cursor)

    for name in ("stale_rows", "changed_rows", "new_rows"):
        run(f"DROP TABLE IF EXISTS temp.{name}")
    conflicts = (len(changes.deletes) - deleted) + (len(changes.updates) - updated)
    return Written(inserted, updated, deleted, conflicts)
