"""Planned email volume per day, read back from email_schedules."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, field

from email_scheduler.plan import PRE_SCHEDULED
from email_scheduler.store.schema import table_columns

UPCOMING_STATUSES = (PRE_SCHEDULED, "scheduled", "processing")
"""Statuses of emails still to go out."""


@dataclass
class DailyVolume:
    """Emails still to go out per day and type, with the cap of the last run."""

    start: dt.date
    days: int
    by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    daily_cap: int | None = None
    overage_limit: int | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the volume as JSON-ready data."""
        return {
            "from": self.start.isoformat(),
            "days": self.days,
            "daily_cap": self.daily_cap,
            "by_day": self.by_day,
        }


def daily_volume(conn: sqlite3.Connection, start: dt.date, days: int) -> DailyVolume:
    """Return the emails planned from `start` for `days` days, by day and type."""
    volume = DailyVolume(start, days)
    dates = [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]
    volume.by_day = {day: {} for day in dates}
    if not table_columns(conn, "email_schedules") or not dates:
        return volume
    marks = ", ".join("?" for _ in UPCOMING_STATUSES)
    rows = conn.execute(
        "SELECT scheduled_send_date, email_type, count(*) FROM email_schedules "
        f"WHERE status IN ({marks}) AND scheduled_send_date BETWEEN ? AND ? "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        (*UPCOMING_STATUSES, dates[0], dates[-1]),
    )
    for day, email_type, count in rows:
        if day in volume.by_day:
            volume.by_day[day][email_type] = int(count)
    volume.daily_cap = _last_daily_cap(conn)
    return volume


def _last_daily_cap(conn: sqlite3.Connection) -> int | None:
    """Return the daily cap the last completed run balanced with, if any."""
    if "summary" not in table_columns(conn, "scheduler_checkpoints"):
        return None
    found = conn.execute(
        "SELECT summary FROM scheduler_checkpoints WHERE status = 'completed' "
        "AND summary IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if not found:
        return None
    cap = json.loads(found[0]).get("balancing", {}).get("daily_cap")
    return int(cap) if cap is not None else None
