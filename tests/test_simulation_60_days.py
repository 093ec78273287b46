"""Sixty daily runs under a daily cap that binds, with a stand-in sender.

The org has 2,000 generated contacts and a cap of 1% (about 19 emails a
day), far below what the AEP day and the first days of the months bring,
so every run smooths and caps. After each run the whole email_schedules
table is checked: the window rules against the scalar oracle of
`test_simulation` (SPEC 6.3), one non-follow-up email per contact per day
(8.1) and the frequency limit (8.2), both counting the rows already sent,
no duplicate identity, no pending row before today. Then the "sender"
marks the day's due pre-scheduled rows sent. The window covers AEP on
Sep 15.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from email_scheduler.config import Settings
from email_scheduler.generate import generate_org
from email_scheduler.run import run
from helpers import compare, duplicate_identities, query, schedules, send_due
from test_simulation import Day, Rows, check_day, load_contacts, problems

CONTACTS = 2_000
FIRST_DAY = dt.date(2026, 8, 27)
DAYS = 60
ONE_DAY = dt.timedelta(days=1)
SETTINGS = Settings.model_validate(
    {"load_balancing": {"daily_send_percentage_cap": 0.01, "daily_cap_floor": 10}}
)
GOING = ("pre-scheduled", "scheduled", "processing", "sent", "delivered")


def going_rows(path: Path) -> dict[int, list[dt.date]]:
    """Return each contact's days of non-follow-up emails sent or to be sent."""
    marks = ", ".join("?" for _ in GOING)
    rows = query(
        path,
        "SELECT contact_id, scheduled_send_date FROM email_schedules "
        f"WHERE status IN ({marks}) AND email_type NOT LIKE 'followup%'",
        GOING,
    )
    days: dict[int, list[dt.date]] = defaultdict(list)
    for contact, day in rows:
        days[contact].append(dt.date.fromisoformat(day))
    return days


def check_constraints(day: Day, path: Path) -> None:
    """Record every contact with two emails on a day or too many in a period."""
    limit = SETTINGS.frequency.max_emails_per_period
    period = SETTINGS.frequency.period_days
    for contact, days in going_rows(path).items():
        days.sort()
        for i, first in enumerate(days):
            if i + 1 < len(days) and days[i + 1] == first:
                day.problem("two emails on one day", (contact, first))
            last = first + (period - 1) * ONE_DAY
            inside = sum(first <= d <= last for d in days[i:])
            if inside > limit:
                day.problem("frequency limit broken", (contact, first))


class Figures(list[Day]):
    balancing: list[dict[str, int]]
    next_aep: list[int]
    """Per day: rows inserted for the AEP of next year (new occurrences)."""
    new_follow_ups: list[int]
    """Per day: follow-ups inserted for emails sent since the last run."""


def follow_ups_inserted(before: Rows, after: Rows) -> int:
    """Return how many inserted rows are follow-ups."""
    return sum(
        1
        for row_id in compare(before, after).inserted
        if after[row_id]["email_type"].startswith("followup_")
    )


def next_aep_inserted(today: dt.date, before: Rows, after: Rows) -> int:
    """Return how many inserted rows are AEP emails of next year's AEP."""
    return sum(
        1
        for row_id in compare(before, after).inserted
        if after[row_id]["email_type"] == "aep"
        and after[row_id]["event_year"] == today.year + 1
    )


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Figures:
    """Run the scheduler on 60 consecutive days and check each one."""
    path = tmp_path_factory.mktemp("simulation_60") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=5)
    contacts = load_contacts(path)
    record = Figures()
    record.balancing = []
    record.next_aep = []
    record.new_follow_ups = []
    for offset in range(DAYS):
        today = FIRST_DAY + offset * ONE_DAY
        before = schedules(path)
        report = run(path, SETTINGS, today)
        after = schedules(path)
        day = Day(
            today,
            plan=sum(report.planned.values()) + sum(report.skipped.values()),
            inserted=report.rows["inserted"],
            updated=report.rows["updated"],
            deleted=report.rows["deleted"],
        )
        check_day(day, contacts, before, after)
        check_constraints(day, path)
        if duplicate_identities(path):
            day.problem("duplicate identities", duplicate_identities(path))
        day.sent = send_due(path, today)
        record.append(day)
        record.balancing.append(report.balancing)
        record.next_aep.append(next_aep_inserted(today, before, after))
        record.new_follow_ups.append(follow_ups_inserted(before, after))
    return record


class TestSixtyDays:
    def test_the_cap_binds(self, days: Figures) -> None:
        first = days.balancing[0]
        print(f"\nfirst run: {first}")
        assert first["daily_cap"] == 19
        assert first["moved_by_cap"] > 0
        assert first["moved_by_smoothing"] > 0
        assert all(b["daily_cap"] == first["daily_cap"] for b in days.balancing)

    def test_churn_stays_small(self, days: Figures) -> None:
        """Rows written per day, apart from new emails coming in.

        Once AEP opens (Oct 15) the next AEP is next year's, so the run of
        Oct 16 plans one new email per eligible contact; and every email
        sent earns a follow-up. Those are new emails, not changes to the
        plan. A follow-up whose type changes is an update, and counts.
        """
        print("\nday         plan  inserted updated deleted  churn  next AEP  sent")
        new_emails = [
            aep + follow_ups
            for aep, follow_ups in zip(days.next_aep, days.new_follow_ups, strict=True)
        ]
        churn = [day.touched - new for day, new in zip(days, new_emails, strict=True)]
        for day, changed, new in zip(days, churn, days.next_aep, strict=True):
            print(
                f"{day.today}  {day.plan:5d}  {day.inserted:8d} {day.updated:7d} "
                f"{day.deleted:7d}  {changed / day.plan:6.2%}  {new:8d}  {day.sent:4d}"
            )
        later = churn[1:]
        shares = [n / day.plan for n, day in zip(later, days[1:], strict=True)]
        print(
            f"days 2-{DAYS}: rows written max {max(later)} ({max(shares):.2%}), "
            f"mean {statistics.mean(later):.1f} ({statistics.mean(shares):.2%}); "
            f"next year's AEP: {sum(days.next_aep)} rows"
        )
        assert days[0].inserted == days[0].plan
        assert max(shares) <= 0.02
        assert statistics.mean(shares) <= 0.01

    def test_sent_emails_earn_follow_ups(self, days: Figures) -> None:
        """The day after the AEP emails go out, their follow-ups come in."""
        by_day = dict(zip([d.today for d in days], days.new_follow_ups, strict=True))
        aep_sent = days[[d.today for d in days].index(dt.date(2026, 9, 15))].sent
        assert by_day[dt.date(2026, 9, 16)] >= 0.9 * aep_sent
        assert sum(1 for n in days.new_follow_ups[1:] if n) >= DAYS // 2

    def test_next_aep_comes_in_once(self, days: Figures) -> None:
        by_day = {day.today: n for day, n in zip(days, days.next_aep, strict=True)}
        assert {day for day, n in by_day.items() if n} == {dt.date(2026, 10, 16)}
        assert by_day[dt.date(2026, 10, 16)] > 0.9 * CONTACTS

    @pytest.mark.parametrize(
        "kind",
        [
            "pending email inside a window",
            "pending email dated before today",
            "post-window email without its window",
            "post-window email inside a window",
            "skip reason the oracle disagrees with",
            "two emails on one day",
            "frequency limit broken",
            "duplicate identities",
            "sent or history row changed",
            "report disagrees with the table",
            "rows re-stamped without a change",
        ],
    )
    def test_promise_kept_every_day(self, days: Figures, kind: str) -> None:
        assert problems(days, kind) == {}

    def test_the_sender_had_work_every_day(self, days: Figures) -> None:
        assert all(day.sent > 0 for day in days)
