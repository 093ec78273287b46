"""Planned email volume per day, read back from email_schedules."""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from dataclasses import dataclass, field

from email_scheduler.config import LoadBalancing
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
    """Balancing moves emails off a day with more than this many."""

    def to_dict(self) -> dict[str, object]:
        """Return the volume as JSON-ready data."""
        return {
            "from": self.start.isoformat(),
            "days": self.days,
            "daily_cap": self.daily_cap,
            "overage_limit": self.overage_limit,
            "by_day": self.by_day,
        }

    def over_limit(self, day: str) -> bool:
        """Return whether a day holds more emails than balancing allows."""
        limit = self.overage_limit
        return limit is not None and sum(self.by_day[day].values()) > limit


def daily_volume(conn: sqlite3.Connection, start: dt.date, days: int) -> DailyVolume:
    """Return the emails planned from `start` for `days` days, by day and type."""
    volume = DailyVolume(start, days)
    dates = [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]
    volume.by_day = {day: {} for day in dates}
    if not table_columns(conn, "email_schedules") or not dates:
        return volume

    # Legacy rows may carry a time ("2026-12-05 08:30:00"): compare against
    # the day after the range and group on the date part.
    after = (start + dt.timedelta(days=days)).isoformat()
    marks = ", ".join("?" for _ in UPCOMING_STATUSES)
    rows = conn.execute(
        "SELECT substr(scheduled_send_date, 1, 10), email_type, count(*) "
        f"FROM email_schedules WHERE status IN ({marks}) "
        "AND scheduled_send_date >= ? AND scheduled_send_date < ? "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        (*UPCOMING_STATUSES, dates[0], after),
    )
    for day, email_type, count in rows:
        if day in volume.by_day:
            volume.by_day[day][email_type] = int(count)
    volume.daily_cap, volume.overage_limit = _last_limits(conn)
    return volume


def overage_limit(daily_cap: int, threshold: float) -> int:
    """Return floor(cap * threshold), reading 119.99999999999999 as 120.

    The same rounding as balancing, so the limit shown is the one applied.
    """
    return math.floor(round(daily_cap * threshold, 9))


def _last_limits(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    """Return the daily cap and overage limit the last completed run used."""
    columns = table_columns(conn, "scheduler_checkpoints")
    if "summary" not in columns:
        return None, None
    version = "config_version_id" if "config_version_id" in columns else "NULL"
    found = conn.execute(
        f"SELECT summary, {version} FROM scheduler_checkpoints "
        "WHERE status = 'completed' AND summary IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if not found:
        return None, None
    cap = json.loads(found[0]).get("balancing", {}).get("daily_cap")
    if cap is None:
        return None, None
    return int(cap), overage_limit(int(cap), _overage_threshold(conn, found[1]))


def _overage_threshold(conn: sqlite3.Connection, version_id: int | None) -> float:
    """Return the overage threshold of a config version (default if unknown)."""
    default = LoadBalancing().overage_threshold
    if version_id is None or "config_data" not in table_columns(
        conn, "config_versions"
    ):
        return default
    found = conn.execute(
        "SELECT json_extract(config_data, '$.load_balancing.overage_threshold') "
        "FROM config_versions WHERE id = ?",
        (version_id,),
    ).fetchone()
    return float(found[0]) if found and found[0] is not None else default
