"""One scheduler run: lock, plan the partitions, balance, write, record.

A run goes through its contacts in partitions of contact ids, so that its
memory stays bounded whatever the size of the org (see `passes`):

1. each partition is read (its contacts and their rows), planned,
   constrained and compared with its rows (see `pipeline`); its outgoing
   emails join the run's, and its changes are set aside on disk;
2. the outgoing emails of all partitions are balanced at once against the
   org's daily limits;
3. each partition's changes, with their balanced dates, are written in one
   transaction, with the run's records.

A run for the same day as the last one, on the same inputs, records that
the last plan stands instead (see `rerun`).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from email_scheduler import rerun
from email_scheduler.calendar import to_days
from email_scheduler.config import Settings
from email_scheduler.constraints.balancing import Limits
from email_scheduler.memory import release_freed_memory, return_large_blocks
from email_scheduler.partition import PARTITION_CONTACTS, Shelf
from email_scheduler.passes import (
    Balancing,
    Planning,
    Shared,
    planned_partitions,
    read_contacts_checksum,
    utc_now,
)
from email_scheduler.plan import Kinds
from email_scheduler.planners.followups import SECONDS_PER_DAY
from email_scheduler.report import Phases, Progress, RunReport
from email_scheduler.store import audit, reader, schema, snapshot
from email_scheduler.store.campaigns import read_campaigns
from email_scheduler.store.database import (
    check_exists,
    connect,
    connect_columnar,
    with_retries,
)
from email_scheduler.store.engagement import Engagement, read_engagement
from email_scheduler.store.reader import ContactRange
from email_scheduler.store.schema import table_columns
from email_scheduler.writing import Writing

log = logging.getLogger("email_scheduler")

ORG_TIME_ZONE = ZoneInfo("America/Chicago")

TALLY_KEYS = (
    "moved_by_smoothing",
    "not_smoothed",
    "moved_by_cap",
    "skipped_same_day",
    "skipped_frequency",
    "left_over_cap",
)


def org_today() -> dt.date:
    """Return today's date where the org operates (Central Time)."""
    return dt.datetime.now(ORG_TIME_ZONE).date()


def _new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{uuid.uuid4().hex[:8]}"


def run(
    path: Path,
    settings: Settings,
    today: dt.date,
    *,
    dry_run: bool = False,
    replan: bool = False,
    progress: Progress | None = None,
    partition_contacts: int = PARTITION_CONTACTS,
) -> RunReport:
    """Plan every contact's emails and write the plan (unless `dry_run`).

    A run for the same day as the latest one, on the same inputs, leaves
    that run's plan as it stands (see `rerun`), unless `replan`.
    """
    check_exists(path)
    return_large_blocks()
    started = time.perf_counter()
    report = RunReport(
        run_id=_new_run_id(),
        database=str(path),
        today=today.isoformat(),
        dry_run=dry_run,
        config_version=settings.version(),
    )
    with nullcontext() if dry_run else audit.run_lock(path):
        sqlite = connect(path, read_only=dry_run)
        try:
            reader.contact_columns(sqlite)
            _run_locked(
                path,
                sqlite,
                settings,
                today,
                report,
                progress,
                partition_contacts,
                replan,
            )
        finally:
            sqlite.close()
    log.info(
        "run %s done: %d contacts, rows %s, %.1fs",
        report.run_id,
        report.contacts_read,
        report.rows,
        time.perf_counter() - started,
    )
    return report


def _run_locked(
    path: Path,
    sqlite: sqlite3.Connection,
    settings: Settings,
    today: dt.date,
    report: RunReport,
    progress: Progress | None,
    partition_contacts: int,
    replan: bool,
) -> None:
    phase = Phases(report, progress)
    log.info("run %s starting on %s for %s", report.run_id, path, today)
    previous = None
    if not report.dry_run:
        if not replan and not schema.needs_migration(sqlite):
            previous = audit.latest_run(sqlite)
        schema.migrate(sqlite)
        report.interrupted_runs_before = audit.interrupted_runs(sqlite)
        config_id = audit.record_config(sqlite, settings, utc_now())
        audit.start_checkpoint(sqlite, report.run_id, today, utc_now(), config_id)
    columnar = connect_columnar(path)
    shelf = Shelf(path, dry_run=report.dry_run)
    try:
        _run_passes(path, sqlite, columnar, shelf, settings, today, report, phase,
                    partition_contacts, previous)  # fmt: skip
    except BaseException as exc:
        if not report.dry_run:
            audit.fail_checkpoint(
                sqlite, report.run_id, utc_now(), f"{type(exc).__name__}: {exc}"
            )
        raise
    finally:
        columnar.close()
        shelf.close()


def _run_passes(
    path: Path,
    sqlite: sqlite3.Connection,
    columnar: Any,
    shelf: Shelf,
    settings: Settings,
    today: dt.date,
    report: RunReport,
    phase: Phases,
    partition_contacts: int,
    previous: audit.Completed | None,
) -> None:
    day = to_days(today)
    with phase("read"), ThreadPoolExecutor(2, thread_name_prefix="aside") as aside:
        lookback = settings.timing.followup_lookback_days
        schedule_columns = table_columns(sqlite, "email_schedules")
        snapshots = snapshot.Catalog.of(sqlite, schedule_columns)
        counter = 0 if report.dry_run else snapshot.change_counter(sqlite)
        # At millions of contacts the partitions and the engagement take a
        # while to read: they are read aside, on connections of their own,
        # while the run reads the rest of what all partitions share.
        found = aside.submit(_partitions, path, partition_contacts, snapshots.ranges)
        since = (day - lookback) * SECONDS_PER_DAY
        engaged = aside.submit(_engagement, path, since)
        shared = Shared(
            settings=settings,
            today=day,
            kinds=Kinds(),
            campaigns=read_campaigns(columnar, sqlite),
            engagement=engaged.result(),
            contact_columns=reader.contact_columns(sqlite),
            schedule_columns=schedule_columns,
            snapshots=snapshots,
            rows_without_id=reader.rows_without_id(sqlite),
            change_counter=counter,
        )
        ranges = found.result()
    if previous and _repeats(path, columnar, shared, ranges, previous, report, phase):
        return
    planning = Planning(shared, shelf, Balancing(partitions=len(ranges)))
    with planned_partitions(path, shared, ranges, phase) as partitions:
        for number, (ids, part) in enumerate(zip(ranges, partitions, strict=True)):
            phase.add("read", part.read_seconds)
            started = time.perf_counter()
            planning.add(number, ids, part)  # sets the changes aside on disk
            phase.add("write", time.perf_counter() - started)
            del part
    release_freed_memory()
    planning.totals.report(report)
    limits = Limits.of(settings, planning.totals.contacts_eligible)
    with phase("balance"):
        balanced = planning.balancing.balance(
            settings, shared.kinds, limits, day, planning.tally
        )
        release_freed_memory()
    report.balancing = {
        "daily_cap": limits.daily_cap,
        "ed_soft_limit": limits.ed_soft_limit,
        **{key: planning.tally[key] for key in TALLY_KEYS},
    }
    _add_external_quality(report, shared.rows_without_id, shared.engagement)
    writing = Writing(planning, balanced, report)
    with phase("write"):
        writing.run(path, columnar)


def _repeats(
    path: Path,
    columnar: Any,
    shared: Shared,
    ranges: list[ContactRange],
    previous: audit.Completed,
    report: RunReport,
    phase: Phases,
) -> bool:
    """Record the run as a repeat of `previous` if none of its inputs changed
    (see `rerun`); return whether it was."""
    inputs = rerun.inputs_checksum(shared, shared.change_counter)
    if not rerun.same_inputs(previous, report.today, inputs):
        return False
    contacts = read_contacts_checksum(path, shared, ranges, phase)
    if contacts != previous.contacts_checksum:
        return False
    with phase("write"):
        with_retries(
            lambda: rerun.record_repeat(columnar, report, previous, inputs, utc_now()),
            "recording the run",
        )
    return True


def _partitions(
    path: Path, size: int, previous: list[ContactRange]
) -> list[ContactRange]:
    """Return the run's partitions (see `reader.partitions`), read through
    a connection of their own."""
    columnar = connect_columnar(path)
    try:
        return reader.partitions(columnar, size, previous)
    finally:
        columnar.close()


def _engagement(path: Path, since: int) -> Engagement:
    """Return the org's engagement from `since` on (see `read_engagement`),
    read through connections of its own."""
    columnar = connect_columnar(path)
    sqlite = connect(path, read_only=True)
    try:
        return read_engagement(columnar, sqlite, since)
    finally:
        sqlite.close()
        columnar.close()


def _add_external_quality(
    report: RunReport, bad_ids: int, engagement: Engagement
) -> None:
    """Add the data-quality counts that no partition sees."""
    extra = {
        "invalid_id": bad_ids,
        "invalid_event_metadata": engagement.invalid_metadata,
        "invalid_event_time": engagement.invalid_time,
    }
    report.data_quality.update({key: count for key, count in extra.items() if count})
