"""Tests of `email-scheduler calendar` and of the balancing figures of `run`.

The calendar reads email_schedules back: emails still to go out
(`pre-scheduled`, `scheduled`, `processing`) per day and type, against the
daily cap of the last completed run. Every count is checked against a SQL
count of the same real SQLite file, written by a real run.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from email_scheduler.generate import generate_org
from email_scheduler.run import org_today
from helpers import cli, cli_process, copy_org, query, run_json, sha256, write_config

CONTACTS = 1_500
TODAY = dt.date(2026, 12, 3)
UPCOMING = ("pre-scheduled", "scheduled", "processing")
BALANCING_KEYS = {
    "daily_cap",
    "ed_soft_limit",
    "moved_by_smoothing",
    "not_smoothed",
    "moved_by_cap",
    "skipped_same_day",
    "skipped_frequency",
    "left_over_cap",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calendar_template") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=11)
    return path


@pytest.fixture(scope="module")
def planned(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """An org database after one run on TODAY (read only), and the run's report."""
    path = copy_org(template, tmp_path_factory.mktemp("calendar") / "org.sqlite3")
    return path, run_json(path, TODAY)


@pytest.fixture
def org(planned: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """A private copy of the planned database, for tests that change it."""
    return copy_org(planned[0], tmp_path / "org.sqlite3")


def dates(start: dt.date, days: int) -> list[str]:
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]


def counted(path: Path, start: dt.date, days: int) -> dict[str, dict[str, int]]:
    """Return the SQL count of emails to go out per day and type."""
    last = start + dt.timedelta(days=days - 1)
    rows = query(
        path,
        "SELECT scheduled_send_date, email_type, count(*) FROM email_schedules "
        "WHERE status IN (?, ?, ?) AND scheduled_send_date BETWEEN ? AND ? "
        "GROUP BY 1, 2",
        (*UPCOMING, start.isoformat(), last.isoformat()),
    )
    found: dict[str, dict[str, int]] = {day: {} for day in dates(start, days)}
    for day, email_type, count in rows:
        found[day][email_type] = count
    return found


def calendar_json(path: Path, *options: object) -> dict[str, Any]:
    outcome = cli("calendar", path, "--json", *options)
    assert outcome.exit_code == 0, outcome.stderr
    return outcome.json()


def table_cells(stdout: str) -> tuple[list[str], list[list[str]]]:
    """Return the header and the body rows of the calendar table."""
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    body = [line for line in lines if line.startswith("│")]

    def cells(line: str, bar: str) -> list[str]:
        return [cell.strip() for cell in line.strip(bar).split(bar)]

    return cells(header, "┃"), [cells(line, "│") for line in body]


class TestJson:
    def test_structure_and_counts(self, planned: tuple[Path, dict[str, Any]]) -> None:
        path, report = planned
        data = calendar_json(path, "--from", TODAY, "--days", 30)
        assert set(data) == {"from", "days", "daily_cap", "overage_limit", "by_day"}
        assert data["from"] == "2026-12-03"
        assert data["days"] == 30
        assert data["daily_cap"] == report["balancing"]["daily_cap"]
        # SPEC 8.3: balancing acts above floor(cap * overage_threshold (1.2)).
        assert data["overage_limit"] == report["balancing"]["daily_cap"] * 6 // 5
        assert list(data["by_day"]) == dates(TODAY, 30)
        assert data["by_day"] == counted(path, TODAY, 30)

    def test_totals_equal_a_sql_count(
        self, planned: tuple[Path, dict[str, Any]]
    ) -> None:
        path, _ = planned
        data = calendar_json(path, "--from", "2027-01-01", "--days", 365)
        total = sum(sum(day.values()) for day in data["by_day"].values())
        (expected,) = query(
            path,
            "SELECT count(*) FROM email_schedules WHERE status = 'pre-scheduled' "
            "AND scheduled_send_date BETWEEN '2027-01-01' AND '2027-12-31'",
        )
        assert total == expected[0] > 0

    @pytest.mark.parametrize(
        ("options", "first", "days"),
        [
            # one day
            (("--from", "2027-09-15", "--days", 1), "2027-09-15", 1),
            # across a month end
            (("--from", "2027-01-30", "--days", 3), "2027-01-30", 3),
            # across a leap day
            (("--from", "2028-02-28", "--days", 3), "2028-02-28", 3),
            # across New Year
            (("--from", "2026-12-30", "--days", 4), "2026-12-30", 4),
            # the longest range
            (("--from", "2026-12-03", "--days", 800), "2026-12-03", 800),
        ],
    )
    def test_from_and_days(
        self,
        planned: tuple[Path, dict[str, Any]],
        options: tuple[str, ...],
        first: str,
        days: int,
    ) -> None:
        path, _ = planned
        data = calendar_json(path, *options)
        start = dt.date.fromisoformat(first)
        assert data["from"] == first
        assert list(data["by_day"]) == dates(start, days)
        assert data["by_day"] == counted(path, start, days)

    def test_defaults_to_30_days_from_today(
        self, planned: tuple[Path, dict[str, Any]]
    ) -> None:
        data = calendar_json(planned[0])
        assert data["from"] == org_today().isoformat()
        assert len(data["by_day"]) == data["days"] == 30

    def test_days_before_any_email(self, planned: tuple[Path, dict[str, Any]]) -> None:
        data = calendar_json(planned[0], "--from", "2001-01-01", "--days", 2)
        assert data["by_day"] == {"2001-01-01": {}, "2001-01-02": {}}

    @pytest.mark.parametrize(
        ("status", "counts"),
        [
            # the sender picked them up: still to go out
            ("scheduled", True),
            ("processing", True),
            # gone out, or never going
            ("sent", False),
            ("delivered", False),
            ("skipped", False),
        ],
    )
    def test_statuses(self, org: Path, status: str, counts: bool) -> None:
        day = "2026-12-10"
        before = calendar_json(org, "--from", day, "--days", 1)["by_day"][day]
        assert before
        with sqlite3.connect(org) as conn:
            conn.execute(
                "UPDATE email_schedules SET status = ? "
                "WHERE status = 'pre-scheduled' AND scheduled_send_date = ?",
                (status, day),
            )
        conn.close()
        after = calendar_json(org, "--from", day, "--days", 1)["by_day"][day]
        assert after == (before if counts else {})

    def test_cap_of_the_last_completed_run(self, org: Path, tmp_path: Path) -> None:
        config = write_config(
            tmp_path / "cap.yaml",
            "load_balancing:\n  daily_cap_floor: 500\n  overage_threshold: 1.5\n",
        )
        report = run_json(org, TODAY, "--config", config)
        assert report["balancing"]["daily_cap"] == 500
        data = calendar_json(org, "--from", TODAY, "--days", 1)
        assert (data["daily_cap"], data["overage_limit"]) == (500, 750)

    @pytest.mark.parametrize(
        ("threshold", "limit"),
        [
            # the default: 200 * 1.2
            (1.2, 240),
            # no slack at all: balancing acts above the cap itself
            (1.0, 200),
            # 200 * 1.15 is 229.99999999999997 in floating point
            (1.15, 230),
            # 200 * 1.1 is 220.00000000000003 in floating point
            (1.1, 220),
            # 200.5: half an email is no email
            (1.0025, 200),
        ],
    )
    def test_overage_limit_is_floor_of_cap_times_threshold(
        self, org: Path, tmp_path: Path, threshold: float, limit: int
    ) -> None:
        config = write_config(
            tmp_path / "limit.yaml",
            "load_balancing:\n  daily_cap_floor: 200\n"
            f"  overage_threshold: {threshold}\n",
        )
        assert run_json(org, TODAY, "--config", config)["balancing"]["daily_cap"] == 200
        data = calendar_json(org, "--from", TODAY, "--days", 1)
        assert data["overage_limit"] == limit

    @pytest.mark.parametrize(
        ("stored", "counted_on"),
        [
            # a legacy time on the last day of the range
            ("2026-12-05 08:30:00", "2026-12-05"),
            # on a day inside the range
            ("2026-12-04 08:30:00", "2026-12-04"),
            # ISO with a T on the first day
            ("2026-12-03T08:30:00", "2026-12-03"),
            # the first second after the range
            ("2026-12-06 00:00:00", None),
            # the last second before it
            ("2026-12-02 23:59:59", None),
        ],
    )
    def test_send_dates_with_a_time_count_on_their_day(
        self, org: Path, stored: str, counted_on: str | None
    ) -> None:
        with sqlite3.connect(org) as conn:
            conn.execute(
                "INSERT INTO email_schedules (contact_id, email_type, "
                "scheduled_send_date, status) VALUES (1, 'legacy', ?, 'pre-scheduled')",
                (stored,),
            )
        conn.close()
        by_day = calendar_json(org, "--from", TODAY, "--days", 3)["by_day"]
        found = {day for day, counts in by_day.items() if "legacy" in counts}
        assert found == ({counted_on} if counted_on else set())
        assert all(counts.get("legacy", 1) == 1 for counts in by_day.values())

    def test_before_any_run(self, template: Path, tmp_path: Path) -> None:
        fresh = copy_org(template, tmp_path / "fresh.sqlite3")
        data = calendar_json(fresh, "--from", TODAY, "--days", 2)
        assert data == {
            "from": "2026-12-03",
            "days": 2,
            "daily_cap": None,
            "overage_limit": None,
            "by_day": {"2026-12-03": {}, "2026-12-04": {}},
        }

    def test_without_an_email_schedules_table(self, tmp_path: Path) -> None:
        path = tmp_path / "bare.sqlite3"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)")
        conn.close()
        data = calendar_json(path, "--from", TODAY, "--days", 1)
        assert data["by_day"] == {"2026-12-03": {}}
        assert data["daily_cap"] is None
        assert data["overage_limit"] is None

    def test_reads_without_writing(self, org: Path) -> None:
        digest = sha256(org)
        calendar_json(org, "--from", TODAY, "--days", 60)
        assert cli("calendar", org, "--days", 5).exit_code == 0
        assert sha256(org) == digest

    def test_installed_script(self, planned: tuple[Path, dict[str, Any]]) -> None:
        path, _ = planned
        outcome = cli_process("calendar", path, "--from", TODAY, "--days", 3, "--json")
        assert outcome.exit_code == 0, outcome.stderr
        assert outcome.json()["by_day"] == counted(path, TODAY, 3)


class TestTable:
    @pytest.fixture(autouse=True)
    def wide_terminal(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COLUMNS", "120")

    def test_counts_per_day_and_type(
        self, planned: tuple[Path, dict[str, Any]]
    ) -> None:
        path, report = planned
        outcome = cli("calendar", path, "--from", TODAY, "--days", 7)
        assert outcome.exit_code == 0, outcome.stderr
        cap = report["balancing"]["daily_cap"]
        title = f"Emails to go out (daily cap: {cap}, overage limit: {cap * 6 // 5})"
        assert title in " ".join(outcome.stdout.split("┏")[0].split())
        header, body = table_cells(outcome.stdout)
        expected = counted(path, TODAY, 7)
        types = sorted({t for day in expected.values() for t in day})
        assert header == ["day", *types, "total", ""]
        assert [row[0] for row in body] == dates(TODAY, 7)
        for row in body:
            day = expected[row[0]]
            assert row[1:-2] == [f"{day.get(t, 0):,}" for t in types]
            assert row[-2] == f"{sum(day.values()):,}"

    def test_days_over_the_overage_limit_are_marked(
        self, planned: tuple[Path, dict[str, Any]]
    ) -> None:
        # AEP of 2027 brings far more than the cap to Sep 15; what balancing
        # could not move stays there.
        path, report = planned
        limit = report["balancing"]["daily_cap"] * 6 // 5
        outcome = cli("calendar", path, "--from", "2027-09-10", "--days", 14)
        _, body = table_cells(outcome.stdout)
        totals = {row[0]: int(row[-2].replace(",", "")) for row in body}
        flags = {row[0]: row[-1] for row in body}
        assert totals["2027-09-15"] > limit
        assert flags == {
            day: "over limit" if total > limit else "" for day, total in totals.items()
        }

    @pytest.mark.parametrize(
        ("emails", "flag"),
        [
            # at the cap (200)
            (200, ""),
            # over the cap, but balancing leaves a day alone up to 240
            (201, ""),
            (240, ""),
            # over the overage limit: emails balancing could not move
            (241, "over limit"),
        ],
    )
    def test_flag_against_cap_and_limit(
        self, org: Path, tmp_path: Path, emails: int, flag: str
    ) -> None:
        config = write_config(
            tmp_path / "cap.yaml", "load_balancing:\n  daily_cap_floor: 200\n"
        )
        run_json(org, TODAY, "--config", config)
        day = "2001-01-01"  # long before any planned email
        with sqlite3.connect(org) as conn:
            conn.executemany(
                "INSERT INTO email_schedules (contact_id, email_type, "
                "scheduled_send_date, status) VALUES (?, 'birthday', ?, 'scheduled')",
                [(contact, day) for contact in range(1, emails + 1)],
            )
        conn.close()
        outcome = cli("calendar", org, "--from", day, "--days", 1)
        _, body = table_cells(outcome.stdout)
        assert body == [[day, f"{emails:,}", f"{emails:,}", flag]]

    def test_before_any_run(self, template: Path, tmp_path: Path) -> None:
        fresh = copy_org(template, tmp_path / "fresh.sqlite3")
        outcome = cli("calendar", fresh, "--from", TODAY, "--days", 2)
        assert outcome.exit_code == 0
        # The title wraps to the width of the narrow table.
        title = " ".join(outcome.stdout.split("┏")[0].split())
        assert title == "Emails to go out (daily cap: no run yet)"
        _, body = table_cells(outcome.stdout)
        assert body == [["2026-12-03", "0", ""], ["2026-12-04", "0", ""]]


class TestUsageErrors:
    def test_missing_database(self, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere.sqlite3"
        outcome = cli("calendar", missing, "--from", TODAY)
        assert outcome.exit_code == 1
        assert outcome.stderr.startswith("Error: ")
        assert str(missing) in outcome.stderr
        assert outcome.stdout == ""
        assert not missing.exists()

    def test_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.sqlite3"
        path.write_text("not a database\n")
        outcome = cli("calendar", path, "--from", TODAY)
        assert outcome.exit_code == 1
        assert str(path) in outcome.stderr
        assert path.read_text() == "not a database\n"

    @pytest.mark.parametrize(
        "start",
        [
            "2026-13-01",  # no month 13
            "2027-02-29",  # not a leap year
            "tomorrow",
            "12/03/2026",
        ],
    )
    def test_bad_date(self, planned: tuple[Path, dict[str, Any]], start: str) -> None:
        outcome = cli("calendar", planned[0], "--from", start)
        assert outcome.exit_code == 2
        assert start in outcome.stderr
        assert outcome.stdout == ""

    @pytest.mark.parametrize("days", ["0", "801", "-3", "seven"])
    def test_bad_days(self, planned: tuple[Path, dict[str, Any]], days: str) -> None:
        outcome = cli("calendar", planned[0], "--days", days)
        assert outcome.exit_code == 2
        assert "--days" in outcome.stderr


class TestRunSummary:
    def test_json_has_the_balancing_figures(
        self, planned: tuple[Path, dict[str, Any]]
    ) -> None:
        _, report = planned
        balancing = report["balancing"]
        assert set(balancing) == BALANCING_KEYS
        assert all(isinstance(v, int) and v >= 0 for v in balancing.values())
        # SPEC 8.3 with the defaults: 7% of eligible contacts, at least 100.
        cap = max(report["contacts_eligible"] * 7 // 100, 100)
        assert balancing["daily_cap"] == cap
        assert balancing["ed_soft_limit"] == min(15, cap * 3 // 10)

    def test_figures_kept_with_the_checkpoint(
        self, planned: tuple[Path, dict[str, Any]]
    ) -> None:
        path, report = planned
        ((summary,),) = query(
            path,
            "SELECT json_extract(summary, '$.balancing') FROM scheduler_checkpoints "
            "WHERE scheduler_run_id = ?",
            (report["run_id"],),
        )
        assert json.loads(summary) == report["balancing"]

    def test_skips_counted_in_balancing_agree_with_the_table(
        self, planned: tuple[Path, dict[str, Any]]
    ) -> None:
        path, report = planned
        reasons: dict[str, int] = defaultdict(int)
        for reason, count in query(
            path,
            "SELECT skip_reason, count(*) FROM email_schedules "
            "WHERE status = 'skipped' GROUP BY 1",
        ):
            reasons[reason.split(":")[0]] += count
        balancing = report["balancing"]
        assert reasons["same-day conflict"] == balancing["skipped_same_day"]
        assert reasons["frequency limit"] == balancing["skipped_frequency"]

    def test_text_summary_shows_them(
        self, org: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COLUMNS", "120")
        outcome = cli("run", org, "--today", TODAY)
        assert outcome.exit_code == 0, outcome.stderr
        assert "Balancing" in outcome.stdout
        for key in BALANCING_KEYS:
            assert key in outcome.stdout
