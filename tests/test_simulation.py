"""Thirty daily runs on one org, with a stand-in sending system in between.

Each day the scheduler runs, the checks below look at the whole
email_schedules table, and then the "sender" marks the day's due
pre-scheduled rows sent. The exclusion windows are recomputed here one
contact and one date at a time with `datetime.date` (SPEC 3.2, 6.1, 6.2),
independently of the package's column arithmetic.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import zipcodes

from email_scheduler.config import Settings
from email_scheduler.generate import generate_org
from email_scheduler.run import run
from helpers import Row, compare, duplicate_identities, query, schedules, send_due

CONTACTS = 3_000
FIRST_DAY = dt.date(2026, 12, 3)
DAYS = 30
PRE_WINDOW = dt.timedelta(days=60)
ONE_DAY = dt.timedelta(days=1)

# SPEC 6.1: state -> (date the rule is based on, days before, days after,
# anchored on the first day of the anniversary's month).
DATED_RULES = {
    "CA": ("birthday", 30, 60, False),
    "ID": ("birthday", 0, 63, False),
    "KY": ("birthday", 0, 60, False),
    "MD": ("birthday", 0, 30, False),
    "NV": ("birthday", 0, 60, True),
    "OK": ("birthday", 0, 60, False),
    "OR": ("birthday", 0, 31, False),
    "VA": ("birthday", 0, 30, False),
    "MO": ("effective_date", 30, 33, False),
}
YEAR_ROUND = {"CT", "MA", "NY", "WA"}
MILITARY = {"AA", "AE", "AP"}
ZIP = re.compile(r"[0-9]{5}(-[0-9]{4})?")

Window = tuple[dt.date, dt.date]
Rows = dict[int, Row]


# -- the oracle --------------------------------------------------------------


def parse_date(text: str | None) -> dt.date | None:
    """Return the date in a contact field, or None when it does not parse."""
    text = (text or "").strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        if len(text) == 19 and text[10] in " T":
            return dt.datetime.fromisoformat(text.replace(" ", "T")).date()
    except ValueError:
        return None
    return None


@cache
def zip_table() -> dict[str, str]:
    return {entry["zip_code"]: entry["state"] for entry in zipcodes.list_all()}


def resolve_state(zip_code: str | None, state: str | None) -> str | None:
    """Return the contact's state: the ZIP's, else a valid state column."""
    zip_code = (zip_code or "").strip()
    if ZIP.fullmatch(zip_code) and zip_code[:5] in zip_table():
        return zip_table()[zip_code[:5]]
    column = (state or "").strip().upper()
    valid = set(zip_table().values()) - MILITARY
    return column if column in valid else None


def anniversary(event: dt.date, year: int) -> dt.date:
    """Return the anniversary of `event` in `year` (Feb 29 -> Feb 28)."""
    try:
        return event.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


@dataclass(frozen=True)
class Contact:
    state: str | None
    birth: dt.date | None
    effective: dt.date | None

    def window(self, year: int) -> Window | None:
        """Return the dated window of the contact's state anchored in `year`."""
        if self.state not in DATED_RULES:
            return None
        based_on, before, after, month_start = DATED_RULES[self.state]
        base = self.birth if based_on == "birthday" else self.effective
        if base is None or (based_on == "effective_date" and year <= base.year):
            return None
        anchor = anniversary(base, year)
        if month_start:
            anchor = anchor.replace(day=1)
        return anchor - dt.timedelta(days=before) - PRE_WINDOW, anchor + dt.timedelta(
            days=after
        )

    def dated_window_holding(self, day: dt.date) -> Window | None:
        for year in (day.year - 1, day.year, day.year + 1):
            window = self.window(year)
            if window and window[0] <= day <= window[1]:
                return window
        return None

    def excluded(self, day: dt.date) -> bool:
        return self.state in YEAR_ROUND or self.dated_window_holding(day) is not None


def load_contacts(path: Path) -> dict[int, Contact]:
    rows = query(
        path,
        "SELECT id, zip_code, state, birth_date, effective_date FROM contacts",
    )
    return {
        row[0]: Contact(
            resolve_state(row[1], row[2]), parse_date(row[3]), parse_date(row[4])
        )
        for row in rows
    }


# -- the simulation ----------------------------------------------------------


def event_of(row: Row) -> dt.date:
    return dt.date(row["event_year"], row["event_month"], row["event_day"])


@dataclass
class Day:
    """One day's run: its figures and whatever broke a promise."""

    today: dt.date
    plan: int
    inserted: int
    updated: int
    deleted: int
    sent: int = 0
    confirmed_skips: int = 0
    problems: dict[str, list[object]] = field(default_factory=dict)

    @property
    def touched(self) -> int:
        return self.inserted + self.updated + self.deleted

    def problem(self, kind: str, what: object) -> None:
        self.problems.setdefault(kind, []).append(what)


def check_day(
    day: Day, contacts: dict[int, Contact], before: Rows, after: Rows
) -> None:
    """Record every way the table after a run breaks a promise."""
    today = day.today.isoformat()
    changes = compare(before, after)
    if (len(changes.inserted), len(changes.changed), len(changes.deleted)) != (
        day.inserted,
        day.updated,
        day.deleted,
    ):
        day.problem("report disagrees with the table", changes)
    if changes.restamped != changes.changed or changes.altered != changes.changed:
        day.problem(
            "rows re-stamped without a change", changes.altered - changes.changed
        )
    for row_id, row in before.items():
        owned = row["status"] in ("pre-scheduled", "skipped")
        history = (
            row["scheduled_send_date"] < today and row["status"] != "pre-scheduled"
        )
        if (not owned or history) and after.get(row_id) != row:
            day.problem("sent or history row changed", row_id)

    for row_id, row in after.items():
        contact = contacts[row["contact_id"]]
        send = dt.date.fromisoformat(row["scheduled_send_date"])
        pending = row["status"] == "pre-scheduled"
        post_window = row["email_type"] == "post_window"
        if pending and send < day.today:
            day.problem("pending email dated before today", row_id)
        if pending and not post_window and contact.excluded(send):
            day.problem("pending email inside a window", (row_id, row))
        if pending and post_window:
            event = event_of(row)
            ends = {contact.window(event.year + k) for k in (-1, 0, 1)}
            if event not in {w[1] for w in ends if w} or send <= event:
                day.problem("post-window email without its window", (row_id, row))
            elif contact.dated_window_holding(send):
                day.problem("post-window email inside a window", (row_id, row))
        reason = row["skip_reason"] or ""
        if row["status"] == "skipped" and reason.startswith("exclusion window"):
            check_skip_reason(day, contact, send, (row_id, row))


def check_skip_reason(
    day: Day, contact: Contact, send: dt.date, row: tuple[int, Row]
) -> None:
    """Check that a row skipped for a window names the window the oracle finds."""
    reason = row[1]["skip_reason"]
    if contact.state in YEAR_ROUND:
        expected = f"exclusion window: {contact.state} year-round"
        agrees = reason == expected
    else:
        window = contact.dated_window_holding(send)
        agrees = window is not None and (
            reason.startswith(f"exclusion window: {contact.state} ")
            and reason.endswith(f" {window[0]}..{window[1]}")
        )
    if agrees:
        day.confirmed_skips += 1
    else:
        day.problem("skip reason the oracle disagrees with", row)


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> list[Day]:
    """Run the scheduler on 30 consecutive days and check each one."""
    path = tmp_path_factory.mktemp("simulation") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=3)
    contacts = load_contacts(path)
    settings = Settings()
    record = []
    for offset in range(DAYS):
        today = FIRST_DAY + offset * ONE_DAY
        before = schedules(path)
        report = run(path, settings, today)
        after = schedules(path)
        day = Day(
            today,
            plan=sum(report.planned.values()) + sum(report.skipped.values()),
            inserted=report.rows["inserted"],
            updated=report.rows["updated"],
            deleted=report.rows["deleted"],
        )
        check_day(day, contacts, before, after)
        if duplicate_identities(path):
            day.problem("duplicate identities", duplicate_identities(path))
        day.sent = send_due(path, today)
        record.append(day)
    return record


def problems(days: list[Day], kind: str) -> dict[str, list[object]]:
    return {
        day.today.isoformat(): day.problems[kind][:3]
        for day in days
        if kind in day.problems
    }


class TestDailyRuns:
    def test_churn_stays_small(self, days: list[Day]) -> None:
        print("\nday         plan  inserted updated deleted  touched  sent")
        for day in days:
            print(
                f"{day.today}  {day.plan:5d}  {day.inserted:8d} {day.updated:7d} "
                f"{day.deleted:7d}  {day.touched / day.plan:6.2%}  {day.sent:4d}"
            )
        later = [day.touched / day.plan for day in days[1:]]
        mean = statistics.mean(later)
        print(f"days 2-{DAYS}: touched max {max(later):.2%}, mean {mean:.2%}")
        assert days[0].inserted == days[0].plan
        assert max(later) <= 0.02
        assert mean <= 0.01

    def test_the_sender_had_work_every_day(self, days: list[Day]) -> None:
        assert all(day.sent > 0 for day in days)

    @pytest.mark.parametrize(
        "kind",
        [
            "pending email inside a window",
            "duplicate identities",
            "pending email dated before today",
            "sent or history row changed",
            "report disagrees with the table",
            "rows re-stamped without a change",
            "post-window email without its window",
            "post-window email inside a window",
            "skip reason the oracle disagrees with",
        ],
    )
    def test_promise_kept_every_day(self, days: list[Day], kind: str) -> None:
        assert problems(days, kind) == {}

    def test_the_oracle_confirms_the_skips(self, days: list[Day]) -> None:
        # Guards the checks above against an oracle that never sees a window.
        assert all(day.confirmed_skips > 1_000 for day in days)
