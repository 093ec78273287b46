"""One scheduler run: lock, read, plan, constrain, write, record.

The pipeline is a sequence of stages over a columnar `Plan`:

    read -> plan -> constrain -> balance -> write

Planning proposes candidates, resolves them against existing rows and
withholds what the law or the org forbids (exclusion windows, failed
underwriting), adding the post-window emails a withheld email earns.
Constraining skips same-day conflicts and emails beyond the frequency
limit. Balancing moves emails to smooth and cap daily volume, never into a
window and never breaking the constraints.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from email_scheduler.calendar import to_days
from email_scheduler.config import Settings
from email_scheduler.constraints.balancing import (
    Limits,
    enforce_daily_cap,
    smooth_effective_dates,
)
from email_scheduler.constraints.conflicts import resolve_same_day
from email_scheduler.constraints.frequency import apply_frequency_limit
from email_scheduler.constraints.occupancy import Committed, MoveCheck
from email_scheduler.constraints.underwriting import apply_global_underwriting
from email_scheduler.constraints.windows import apply_windows
from email_scheduler.contacts import Contacts, DataQuality, build_contacts
from email_scheduler.plan import Plan, Vocabulary
from email_scheduler.planners.anniversary import AnniversaryPlanner
from email_scheduler.planners.campaigns import CampaignPlanner, enrollment_statuses
from email_scheduler.planners.candidates import resolve
from email_scheduler.planners.followups import SECONDS_PER_DAY, FollowUpPlanner
from email_scheduler.planners.frozen import Unplanned, unplanned_rows
from email_scheduler.planners.post_window import post_window_candidates
from email_scheduler.rules import BirthColumns, RuleBook
from email_scheduler.store import audit, reader, schema, writer
from email_scheduler.store.campaigns import Campaigns, read_campaigns, write_statuses
from email_scheduler.store.database import (
    check_exists,
    connect,
    connect_columnar,
    with_retries,
)
from email_scheduler.store.engagement import Engagement, read_engagement
from email_scheduler.store.reader import ExistingRows

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

Progress = Callable[[str], None]
"""Called with the name of each phase as it starts."""


def org_today() -> dt.date:
    """Return today's date where the org operates (Central Time)."""
    return dt.datetime.now(ORG_TIME_ZONE).date()


@dataclass
class RunReport:
    """What a run read, planned and wrote."""

    run_id: str
    database: str
    today: str
    dry_run: bool
    config_version: str
    contacts_read: int = 0
    contacts_eligible: int = 0
    contacts_without_email: dict[str, int] = field(default_factory=dict)
    data_quality: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    balancing: dict[str, int] = field(default_factory=dict)
    interrupted_runs_before: int = 0
    backup: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return asdict(self)


class _Phases:
    def __init__(self, report: RunReport, progress: Progress | None) -> None:
        self.report = report
        self.progress = progress

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name)
        started = time.perf_counter()
        yield
        self.report.seconds[name] = round(time.perf_counter() - started, 3)


@dataclass(frozen=True)
class Inputs:
    """Everything a plan is computed from, besides settings and today."""

    contacts: Contacts
    quality: DataQuality
    existing: ExistingRows
    vocabulary: Vocabulary
    campaigns: Campaigns = field(default_factory=Campaigns)
    engagement: Engagement = field(default_factory=Engagement.empty)


@dataclass(frozen=True)
class Context:
    """What every stage of one run's pipeline reads."""

    inputs: Inputs
    settings: Settings
    today: int
    dates: BirthColumns
    rules: RuleBook
    eligible: np.ndarray  # type: ignore[type-arg]
    unplanned: Unplanned
    committed: Committed
    limits: Limits

    @staticmethod
    def of(inputs: Inputs, settings: Settings, today: int) -> Context:
        """Return the context of a run over `inputs`."""
        contacts, vocabulary = inputs.contacts, inputs.vocabulary
        eligible = contacts.reachable & contacts.known_state
        dates = BirthColumns.of(contacts)
        rules = RuleBook(
            settings.state_rules, settings.timing.pre_window_exclusion_days
        )

        def withhold(part: Plan) -> Plan:
            part = apply_windows(part, contacts.state, dates, rules, vocabulary)
            if settings.organization.exclude_failed_underwriting_global:
                part = apply_global_underwriting(part, contacts, vocabulary)
            return part

        unplanned = unplanned_rows(
            inputs.existing, contacts, inputs.campaigns, vocabulary, today, withhold
        )
        return Context(
            inputs=inputs,
            settings=settings,
            today=today,
            dates=dates,
            rules=rules,
            eligible=eligible,
            unplanned=unplanned,
            committed=Committed.of(inputs.existing, vocabulary, unplanned.left),
            limits=Limits.of(settings, int(eligible.sum())),
        )


def build_plan(
    inputs: Inputs, settings: Settings, today: int, tally: Counter[str] | None = None
) -> Plan:
    """Return the full plan: a pure function of inputs, settings and today."""
    context = Context.of(inputs, settings, today)
    tally = Counter() if tally is None else tally
    plan = plan_emails(context)
    plan = constrain(context, plan, tally)
    return balance(context, plan, tally)


def constrain(context: Context, plan: Plan, tally: Counter[str]) -> Plan:
    """Return the plan with same-day conflicts and frequency limits applied."""
    vocabulary = context.inputs.vocabulary
    plan = resolve_same_day(plan, context.committed, vocabulary, tally)
    return apply_frequency_limit(
        plan, context.committed, context.settings, vocabulary, tally
    )


def balance(context: Context, plan: Plan, tally: Counter[str]) -> Plan:
    """Return the plan with daily volume smoothed and capped."""
    inputs, settings = context.inputs, context.settings
    check = MoveCheck(
        plan,
        inputs.contacts,
        context.dates,
        context.rules,
        settings,
        inputs.vocabulary,
        context.committed,
        context.today,
    )
    plan = smooth_effective_dates(
        plan,
        check,
        context.limits,
        context.committed,
        settings,
        inputs.vocabulary,
        tally,
    )
    return enforce_daily_cap(
        plan,
        check,
        context.limits,
        context.committed,
        settings,
        inputs.vocabulary,
        tally,
    )


def plan_emails(context: Context) -> Plan:
    """Return the planners' emails, with windows and underwriting applied.

    Follow-ups come last: a window that withholds one earns no post-window
    email.
    """
    inputs, settings, today = context.inputs, context.settings, context.today
    contacts, vocabulary = inputs.contacts, inputs.vocabulary
    dates, rules = context.dates, context.rules
    planner = AnniversaryPlanner(
        contacts, dates, context.eligible, settings, vocabulary, today
    )
    spread = settings.timing.catch_up_spread_days

    def resolved(part: Plan) -> Plan:
        return resolve(part, inputs.existing, vocabulary, today, spread)

    campaigns = CampaignPlanner(
        inputs.campaigns, planner, inputs.existing, context.unplanned.planned
    )
    parts = [*campaigns.keep_fixed_aep(planner.plan()), *campaigns.plan()]
    plan = Plan.concat([resolved(part) for part in parts])
    plan = apply_windows(plan, contacts.state, dates, rules, vocabulary)
    plan = Plan.concat([plan, context.unplanned.withheld])
    if settings.organization.enable_post_window_emails:
        extra = post_window_candidates(
            plan, planner, inputs.existing, rules, dates, settings, vocabulary, today
        )
        extra = resolved(extra)
        lookahead = settings.load_balancing.cap_lookahead_days
        plan = Plan.concat([plan, extra.with_(latest=extra.send + lookahead)])
    follow_ups = FollowUpPlanner(
        inputs.existing,
        contacts,
        context.eligible,
        inputs.campaigns,
        inputs.engagement,
        settings,
        vocabulary,
        today,
    ).plan()
    follow_ups = apply_windows(follow_ups, contacts.state, dates, rules, vocabulary)
    plan = Plan.concat([plan, follow_ups])
    if settings.organization.exclude_failed_underwriting_global:
        plan = apply_global_underwriting(plan, contacts, vocabulary)
    return plan


def _new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{uuid.uuid4().hex[:8]}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _summarize(report: RunReport, inputs: Inputs, plan: Plan) -> None:
    contacts, vocabulary = inputs.contacts, inputs.vocabulary
    report.contacts_read = len(contacts)
    report.contacts_eligible = int((contacts.reachable & contacts.known_state).sum())
    report.data_quality = inputs.quality.counts()
    without = Counter(
        issue
        for issue in inputs.quality.issue
        if issue in ("invalid_email", "suppressed_status", "unknown_state")
    )
    report.contacts_without_email = dict(sorted(without.items()))
    types = [t for t, _ in vocabulary.kinds]
    planned = Counter(types[k] for k in plan.kind[~plan.skipped].tolist())
    report.planned = dict(sorted(planned.items()))
    reasons, counts = np.unique(plan.reason[plan.skipped], return_counts=True)
    skipped: Counter[str] = Counter()
    for code, count in zip(reasons.tolist(), counts.tolist(), strict=True):
        skipped[_reason_group(vocabulary.strings[code])] += count
    report.skipped = dict(sorted(skipped.items()))


def _reason_group(reason: str) -> str:
    """Return a reason without its window dates, for counting."""
    if reason.startswith("exclusion window:") and ".." in reason:
        return reason.rsplit(" ", 1)[0]
    return reason


def run(
    path: Path,
    settings: Settings,
    today: dt.date,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Plan every contact's emails and write the plan (unless `dry_run`)."""
    check_exists(path)
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
            _run_locked(path, sqlite, settings, today, report, progress)
        finally:
            sqlite.close()
    log.info(
        "run %s done: %d contacts, rows %s, %.1fs",
        report.run_id,
        report.contacts_read,
        report.rows,
        sum(report.seconds.values()),
    )
    return report


def _run_locked(
    path: Path,
    sqlite: Any,
    settings: Settings,
    today: dt.date,
    report: RunReport,
    progress: Progress | None,
) -> None:
    phase = _Phases(report, progress)
    log.info("run %s starting on %s for %s", report.run_id, path, today)
    if not report.dry_run:
        schema.migrate(sqlite)
        report.interrupted_runs_before = audit.interrupted_runs(sqlite)
        config_id = audit.record_config(sqlite, settings, _now())
        audit.start_checkpoint(sqlite, report.run_id, today, _now(), config_id)
    columnar = connect_columnar(path)
    try:
        day = to_days(today)
        with phase("read"):
            vocabulary = Vocabulary()
            raw, bad_ids = reader.read_contacts(columnar, sqlite)
            contacts, quality = build_contacts(
                raw, day, settings.suppressed_contact_statuses
            )
            existing = reader.read_schedules(columnar, sqlite, vocabulary)
            campaigns = read_campaigns(columnar, sqlite)
            lookback = settings.timing.followup_lookback_days
            engagement = read_engagement(
                columnar, sqlite, (day - lookback) * SECONDS_PER_DAY
            )
            inputs = Inputs(
                contacts, quality, existing, vocabulary, campaigns, engagement
            )
        tally: Counter[str] = Counter()
        with phase("plan"):
            context = Context.of(inputs, settings, day)
            plan = plan_emails(context)
        with phase("constrain"):
            plan = constrain(context, plan, tally)
        with phase("balance"):
            plan = balance(context, plan, tally)
        _summarize(report, inputs, plan)
        report.balancing = {
            "daily_cap": context.limits.daily_cap,
            "ed_soft_limit": context.limits.ed_soft_limit,
            **{key: tally[key] for key in TALLY_KEYS},
        }
        if bad_ids:
            report.data_quality["invalid_id"] = bad_ids
        if engagement.invalid_metadata:
            report.data_quality["invalid_event_metadata"] = engagement.invalid_metadata
        if engagement.invalid_time:
            report.data_quality["invalid_event_time"] = engagement.invalid_time
        with phase("write"):
            owned = context.unplanned.owned
            _write(path, columnar, report, inputs, plan, owned, settings, day)
    except BaseException as exc:
        columnar.close()
        if not report.dry_run:
            audit.fail_checkpoint(
                sqlite, report.run_id, _now(), f"{type(exc).__name__}: {exc}"
            )
        raise
    columnar.close()


def _write(
    path: Path,
    columnar: Any,
    report: RunReport,
    inputs: Inputs,
    plan: Plan,
    owned: np.ndarray,  # type: ignore[type-arg]
    settings: Settings,
    today: int,
) -> None:
    send_time = settings.timing.send_time.strftime("%H:%M:%S")
    changes = writer.diff(
        plan,
        inputs.existing,
        inputs.vocabulary,
        today=today,
        send_time=send_time,
        contact_ids=inputs.contacts.id,
        owned=owned,
    )
    checksum = audit.ScheduleChecksum(inputs.vocabulary)
    before = checksum.existing(inputs.existing)
    gone = np.isin(inputs.existing.row_id, changes.deletes)
    replaced = inputs.existing.take(
        np.concatenate([np.flatnonzero(gone), changes.updates.row])
    )
    with np.errstate(over="ignore"):
        after = (
            before
            - checksum.existing(replaced)
            + checksum.planned(changes.updates)
            + checksum.planned(changes.inserts)
        )
    report.rows = {
        "inserted": len(changes.inserts),
        "updated": len(changes.updates),
        "deleted": len(changes.deletes),
        "unchanged": changes.unchanged,
    }
    if report.dry_run:
        return
    if settings.backup.enabled:
        target = audit.backup(path, settings, report.run_id)
        report.backup = str(target) if target else None
    statuses = enrollment_statuses(
        inputs.campaigns, plan, inputs.existing, inputs.vocabulary, today
    )
    with_retries(
        lambda: _commit(
            columnar, report, inputs, changes, send_time, (before, after), statuses
        ),
        "writing the plan",
    )


def _commit(
    columnar: Any,
    report: RunReport,
    inputs: Inputs,
    changes: writer.Changes,
    send_time: str,
    checksums: tuple[np.uint64, np.uint64],
    statuses: tuple[np.ndarray, np.ndarray],  # type: ignore[type-arg]
) -> None:
    """Write the changes and all the run's records in one transaction."""
    before, after = checksums
    now = _now()
    with columnar.cursor() as cursor:
        try:
            written = writer.write(
                cursor,
                changes,
                inputs.existing,
                inputs.vocabulary,
                send_time=send_time,
                run_id=report.run_id,
                now=now,
            )
            report.rows = {
                "inserted": written.inserted,
                "updated": written.updated,
                "deleted": written.deleted,
                "unchanged": changes.unchanged,
                "conflicts": written.conflicts,
            }
            write_statuses(cursor, *statuses, now)
            audit.replace_data_quality(cursor, report.run_id, inputs.quality)
            audit.complete_checkpoint(
                cursor,
                report.run_id,
                now,
                {
                    "contacts_checksum": audit.contacts_checksum(inputs.contacts),
                    "schedules_before_checksum": audit.hex64(before),
                    "schedules_after_checksum": audit.hex64(after),
                    "contacts_processed": report.contacts_read,
                    "emails_scheduled": sum(report.planned.values()),
                    "emails_skipped": sum(report.skipped.values()),
                    "rows_inserted": written.inserted,
                    "rows_updated": written.updated,
                    "rows_deleted": written.deleted,
                    "rows_unchanged": changes.unchanged,
                    "summary": report.to_dict(),
                },
            )
        except BaseException:
            columnar.rollback()
            raise
    columnar.commit()
