"""Tests of the `email-scheduler campaign` commands against real SQLite files.

Every org database is a copy of one generated sample (modern shape, so
contacts have carriers and failed-underwriting flags). The commands run in
process through Click's runner; runs go through `email-scheduler run`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from email_scheduler.generate import generate_org
from helpers import (
    Outcome,
    cli,
    copy_org,
    duplicate_identities,
    query,
    run_json,
    scalar,
    schedules,
    table_rows,
)

CONTACTS = 300
TODAY = dt.date(2027, 1, 10)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "org.sqlite3"
    generate_org(path, CONTACTS, seed=21, legacy=False)
    return path


@pytest.fixture
def org(template: Path, tmp_path: Path) -> Path:
    """A fresh org database with 300 contacts and no campaign tables yet."""
    return copy_org(template, tmp_path / "org.sqlite3")


def ok(*args: object) -> Outcome:
    outcome = cli(*args)
    assert outcome.exit_code == 0, outcome.stderr
    return outcome


def refused(*args: object, code: int = 2) -> str:
    """Run a command that must fail; return its one-line error."""
    outcome = cli(*args)
    assert outcome.exit_code == code, (outcome.stdout, outcome.stderr)
    return outcome.stderr


def change_log(path: Path) -> list[tuple[Any, ...]]:
    return query(
        path,
        "SELECT campaign_type, campaign_instance_id, field_changed, old_value, "
        "new_value, changed_by FROM campaign_change_log ORDER BY id",
    )


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def promo(org: Path, *extra: object) -> int:
    """Add a `promo` type (14 days before) and an instance; return its id."""
    ok("campaign", "add-type", org, "promo", "--days-before", 14, "--priority", 5)
    created = ok(
        "campaign", "create", org, "promo", "spring", "--start", "2027-01-01",
        "--end", "2027-06-30", "--email-template", "promo_v1", "--json", *extra,
    )  # fmt: skip
    return int(json.loads(created.stdout)["id"])


class TestAddType:
    def test_defaults(self, org: Path) -> None:
        outcome = ok("campaign", "add-type", org, "rate_increase")
        assert outcome.stdout == (
            "added campaign type rate_increase (emails: campaign_rate_increase)\n"
        )
        (record,) = json.loads(ok("campaign", "types", org, "--json").stdout)
        assert record == {
            "name": "rate_increase",
            "active": 1,
            "days_before_event": 0,
            "enable_followups": 1,
            "instances": 0,
            "priority": 50,
            "respect_exclusion_windows": 1,
            "skip_failed_underwriting": 0,
            "spread_evenly": 0,
            "target_all_contacts": 0,
        }

    def test_every_option(self, org: Path) -> None:
        ok(
            "campaign", "add-type", org, "aep", "--days-before", "-3",
            "--priority", 30, "--ignore-windows", "--no-followups",
            "--target-all", "--spread-evenly", "--skip-failed-underwriting",
        )  # fmt: skip
        (record,) = json.loads(ok("campaign", "types", org, "--json").stdout)
        assert record | {"instances": 0} == {
            "name": "aep",
            "active": 1,
            "days_before_event": -3,
            "enable_followups": 0,
            "instances": 0,
            "priority": 30,
            "respect_exclusion_windows": 0,
            "skip_failed_underwriting": 1,
            "spread_evenly": 1,
            "target_all_contacts": 1,
        }

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("Rate Increase", "name 'Rate Increase': use lower-case letters"),
            ("9lives", "name '9lives'"),
            ("rate-increase", "name 'rate-increase'"),
        ],
    )
    def test_bad_name(self, org: Path, name: str, message: str) -> None:
        stderr = refused("campaign", "add-type", org, name)
        assert stderr.startswith(f"Error: {message}")
        assert json.loads(ok("campaign", "types", org, "--json").stdout) == []

    def test_duplicate(self, org: Path) -> None:
        ok("campaign", "add-type", org, "promo")
        stderr = refused("campaign", "add-type", org, "promo", "--priority", 1)
        assert stderr == "Error: campaign type 'promo' already exists\n"
        assert len(change_log(org)) == 1

    def test_logged_with_the_operator(self, org: Path) -> None:
        ok("campaign", "add-type", org, "promo", "--by", "alice")
        ok("campaign", "add-type", org, "other")
        log = change_log(org)
        assert [row[:3] for row in log] == [
            ("promo", None, "created"),
            ("other", None, "created"),
        ]
        assert json.loads(log[0][4])["name"] == "promo"
        assert [row[5] for row in log] == ["alice", getpass.getuser()]

    def test_missing_database(self, tmp_path: Path) -> None:
        stderr = refused(
            "campaign", "add-type", tmp_path / "nope.sqlite3", "promo", code=1
        )
        assert "no database at" in stderr


class TestTypesAndList:
    def test_empty(self, org: Path) -> None:
        assert ok("campaign", "types", org).stdout == "(no campaign types)\n"
        assert ok("campaign", "list", org).stdout == "(no campaign instances)\n"
        assert ok("campaign", "list", org, "--json").stdout == "[]\n"

    def test_tables(self, org: Path) -> None:
        promo(org, "--states", "CA,TX")
        types = ok("campaign", "types", org).stdout
        assert "campaign types" in types and "promo" in types
        listed = ok("campaign", "list", org).stdout
        for text in ("campaign instances", "promo", "spring", "2027-01-01", "CA,"):
            assert text in listed

    def test_json_list_counts_enrolled_contacts(
        self, org: Path, tmp_path: Path
    ) -> None:
        instance = promo(org)
        csv = write_csv(tmp_path / "e.csv", "contact_id,trigger_date\n1,2027-03-01\n")
        ok("campaign", "enroll", org, instance, csv)
        (record,) = json.loads(ok("campaign", "list", org, "--json").stdout)
        assert record == {
            "id": instance,
            "campaign_type": "promo",
            "instance_name": "spring",
            "email_template": "promo_v1",
            "sms_template": None,
            "active_start_date": "2027-01-01",
            "active_end_date": "2027-06-30",
            "spread_start_date": None,
            "spread_end_date": None,
            "target_states": None,
            "target_carriers": None,
            "metadata": None,
            "enrolled": 1,
        }

    @pytest.mark.parametrize(
        ("day", "listed"),
        [
            ("2026-12-31", []),  # before the first instance starts
            ("2027-01-01", ["spring"]),
            ("2027-06-30", ["spring"]),  # the last day
            ("2027-07-01", ["summer"]),
            ("2027-09-01", []),  # the summer instance's type is inactive then
        ],
    )
    def test_active_on(self, org: Path, day: str, listed: list[str]) -> None:
        promo(org)
        ok(
            "campaign", "create", org, "promo", "summer",
            "--start", "2027-07-01", "--end", "2027-09-30",
        )  # fmt: skip
        if day == "2027-09-01":
            with closing(sqlite3.connect(org)) as conn, conn:
                conn.execute("UPDATE campaign_types SET active = 0")
        out = ok("campaign", "list", org, "--active-on", day, "--json").stdout
        assert [r["instance_name"] for r in json.loads(out)] == listed

    def test_bad_active_on(self, org: Path) -> None:
        stderr = refused("campaign", "list", org, "--active-on", "tomorrow")
        assert "'tomorrow' is not a date written YYYY-MM-DD" in stderr


class TestCreate:
    def test_created(self, org: Path) -> None:
        ok("campaign", "add-type", org, "aep", "--target-all", "--spread-evenly")
        outcome = ok(
            "campaign", "create", org, "aep", "aep_2027", "--start", "2027-08-01",
            "--end", "2027-09-30", "--spread", "2027-09-01", "2027-09-30",
            "--states", "ca, tx", "--carriers", "Aetna,  Humana",
            "--email-template", "aep27", "--sms-template", "aep27_sms",
            "--metadata", '{"year": 2027}', "--by", "bob",
        )  # fmt: skip
        assert outcome.stdout == "created campaign instance 1 (aep/aep_2027)\n"
        (record,) = json.loads(ok("campaign", "list", org, "--json").stdout)
        assert record["target_states"] == "CA,TX"
        assert record["target_carriers"] == "Aetna,Humana"
        assert record["metadata"] == '{"year": 2027}'
        assert (record["spread_start_date"], record["spread_end_date"]) == (
            "2027-09-01",
            "2027-09-30",
        )
        (entry,) = [row for row in change_log(org) if row[1] == 1]
        assert entry[:3] == ("aep", 1, "created") and entry[5] == "bob"
        assert json.loads(entry[4])["instance_name"] == "aep_2027"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ("nope", "x", "--start", "2027-01-01", "--end", "2027-02-01"),
                "campaign type 'nope' does not exist",
            ),
            (
                ("promo", "x", "--start", "2027-02-01", "--end", "2027-01-01"),
                "active_end_date 2027-01-01 is before active_start_date 2027-02-01",
            ),
            (
                ("promo", "x", "--start", "2027-13-01", "--end", "2027-12-01"),
                "active_start_date: '2027-13-01' is not a date written YYYY-MM-DD",
            ),
            (
                ("promo", "x", "--start", "2027-01-01", "--end", "01/02/2027"),
                "active_end_date: '01/02/2027' is not a date",
            ),
            (
                ("promo", "x", "--start", "2027-09-01", "--end", "2027-09-30",
                 "--spread", "2027-08-25", "2027-09-30"),
                "spread range 2027-08-25..2027-09-30 lies outside the active "
                "range 2027-09-01..2027-09-30",
            ),
            (
                ("promo", "x", "--start", "2027-09-01", "--end", "2027-09-30",
                 "--spread", "2027-09-20", "2027-09-10"),
                "spread_end_date 2027-09-10 is before spread_start_date 2027-09-20",
            ),
            (
                ("promo", "x", "--start", "2027-01-01", "--end", "2027-02-01",
                 "--states", "CA;TX"),
                "target_states: 'CA;TX' not a US state code",
            ),
            (
                ("promo", "x", "--start", "2027-01-01", "--end", "2027-02-01",
                 "--states", "CA,Texas"),
                "target_states: 'Texas' not a US state code",
            ),
            (
                ("promo", "x", "--start", "2027-01-01", "--end", "2027-02-01",
                 "--metadata", "{year: 2027}"),
                "metadata: not valid JSON",
            ),
            (
                ("promo", "x", "--start", "2027-01-01", "--end", "2027-02-01",
                 "--metadata", "[1, 2]"),
                "metadata: must be a JSON object",
            ),
            (
                ("promo", "x", "--start", "2027-01-01", "--end", "2027-02-01",
                 "--metadata", '{"trigger_date": "March"}'),
                "metadata trigger_date: 'March' is not a date",
            ),
            (
                ("promo", " ", "--start", "2027-01-01", "--end", "2027-02-01"),
                "instance_name: must not be empty",
            ),
            # an empty start or end would store an open range
            (
                ("promo", "x", "--start", "", "--end", "2027-02-01"),
                "active_start_date: required",
            ),
            (
                ("promo", "x", "--start", "2027-01-01", "--end", ""),
                "active_end_date: required",
            ),
            # blanks are empty too
            (
                ("promo", "x", "--start", "  ", "--end", "2027-02-01"),
                "active_start_date: required",
            ),
        ],
    )  # fmt: skip
    def test_bad_input_names_the_field(
        self, org: Path, args: tuple[str, ...], message: str
    ) -> None:
        ok("campaign", "add-type", org, "promo")
        stderr = refused("campaign", "create", org, *args)
        assert stderr.startswith("Error: ")
        assert message in stderr
        assert scalar(org, "SELECT count(*) FROM campaign_instances") == 0
        assert len(change_log(org)) == 1

    def test_duplicate_name_within_a_type(self, org: Path) -> None:
        promo(org)
        stderr = refused(
            "campaign", "create", org, "promo", "spring",
            "--start", "2027-01-01", "--end", "2027-02-01",
        )  # fmt: skip
        assert "instance_name: promo already has an instance named 'spring'" in stderr
        ok("campaign", "add-type", org, "other")
        ok(
            "campaign", "create", org, "other", "spring",
            "--start", "2027-01-01", "--end", "2027-02-01",
        )  # fmt: skip

    def test_start_and_end_are_required(self, org: Path) -> None:
        ok("campaign", "add-type", org, "promo")
        stderr = refused("campaign", "create", org, "promo", "x", "--end", "2027-01-01")
        assert "Missing option '--start'" in stderr


class TestUpdate:
    def test_changes_are_logged(self, org: Path) -> None:
        instance = promo(org)
        outcome = ok(
            "campaign", "update", org, instance, "--end", "2027-05-31",
            "--states", "tx,ca", "--sms-template", "promo_sms", "--by", "carol",
        )  # fmt: skip
        assert outcome.stdout.splitlines() == [
            "sms_template: None -> promo_sms",
            "active_end_date: 2027-06-30 -> 2027-05-31",
            "target_states: None -> TX,CA",
        ]
        updates = [row for row in change_log(org) if row[2] != "created"]
        assert updates == [
            ("promo", instance, "sms_template", None, "promo_sms", "carol"),
            ("promo", instance, "active_end_date", "2027-06-30", "2027-05-31", "carol"),
            ("promo", instance, "target_states", None, "TX,CA", "carol"),
        ]
        (record,) = json.loads(ok("campaign", "list", org, "--json").stdout)
        assert record["active_end_date"] == "2027-05-31"

    def test_empty_value_clears_and_spread_sets_both(self, org: Path) -> None:
        instance = promo(org, "--states", "CA")
        out = ok(
            "campaign", "update", org, instance, "--states", "",
            "--spread", "2027-02-01", "2027-02-28", "--json",
        ).stdout  # fmt: skip
        assert json.loads(out) == [
            {"field": "spread_start_date", "old": None, "new": "2027-02-01"},
            {"field": "spread_end_date", "old": None, "new": "2027-02-28"},
            {"field": "target_states", "old": "CA", "new": None},
        ]

    def test_same_values_change_nothing(self, org: Path) -> None:
        instance = promo(org)
        log = change_log(org)
        outcome = ok("campaign", "update", org, instance, "--end", "2027-06-30")
        assert outcome.stdout == (
            f"campaign instance {instance} already had these values\n"
        )
        assert change_log(org) == log

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--end", "2026-12-01"), "active_end_date 2026-12-01 is before"),
            (("--spread-start", "2027-02-01"), "set both, or neither"),
            (("--spread", "2027-06-01", "2027-07-15"), "lies outside the active"),
            (("--states", "XX"), "target_states: 'XX' not a US state code"),
            (("--metadata", "nope"), "metadata: not valid JSON"),
            (("--name", ""), "instance_name: must not be empty"),
        ],
    )
    def test_bad_update_changes_nothing(
        self, org: Path, args: tuple[str, ...], message: str
    ) -> None:
        instance = promo(org)
        before = table_rows(org, "campaign_instances"), change_log(org)
        stderr = refused("campaign", "update", org, instance, *args)
        assert message in stderr
        assert (table_rows(org, "campaign_instances"), change_log(org)) == before

    def test_unknown_instance_and_no_options(self, org: Path) -> None:
        promo(org)
        stderr = refused("campaign", "update", org, 99, "--end", "2027-02-01")
        assert "campaign instance 99 does not exist" in stderr
        assert "nothing to change" in refused("campaign", "update", org, 1)


class TestEnroll:
    GOOD = (
        "contact_id,trigger_date,metadata\n"
        "1,2027-03-01,\n"
        '2,2027-03-15,"{""new_rate"": 1.07, ""plan"": ""G""}"\n'
        "3,2027-04-01\n"
    )

    def test_enrolls_and_is_idempotent(self, org: Path, tmp_path: Path) -> None:
        instance = promo(org)
        csv = write_csv(tmp_path / "rates.csv", self.GOOD)
        outcome = ok("campaign", "enroll", org, instance, csv)
        assert outcome.stdout.startswith(
            f"enrolled 3 contacts in campaign instance {instance} "
            "(0 already enrolled, 0 bad rows skipped)"
        )
        rows = query(
            org,
            "SELECT contact_id, campaign_instance_id, trigger_date, status, metadata "
            "FROM contact_campaigns ORDER BY id",
        )
        assert rows == [
            (1, instance, "2027-03-01", "pending", None),
            (2, instance, "2027-03-15", "pending", '{"new_rate": 1.07, "plan": "G"}'),
            (3, instance, "2027-04-01", "pending", None),
        ]
        before = table_rows(org, "contact_campaigns"), change_log(org)
        again = json.loads(
            ok("campaign", "enroll", org, instance, csv, "--json").stdout
        )
        assert (again["enrolled"], again["already_enrolled"], again["rows"]) == (
            0,
            3,
            3,
        )
        assert (table_rows(org, "contact_campaigns"), change_log(org)) == before
        entry = change_log(org)[-1]
        assert entry[1:5] == (instance, "enrollments", "0", "3 (rates.csv)")

    def test_bad_rows_are_listed_and_nothing_is_written(
        self, org: Path, tmp_path: Path
    ) -> None:
        instance = promo(org)
        csv = write_csv(
            tmp_path / "bad.csv",
            "contact_id,trigger_date,metadata\n"
            "1,2027-03-01,\n"  # line 2: good
            "abc,2027-03-01,\n"  # line 3
            "99999,2027-03-01,\n"  # line 4: no such contact
            "4,2027-02-30,\n"  # line 5: no such day
            "1,2027-03-01,\n"  # line 6: repeats line 2
            "5,2027-03-01,[1]\n"  # line 7: metadata is no object
            "6,3/1/2027\n"  # line 8
            "7,2027-03-01,{},extra\n"  # line 9: too many fields
            "8,2027-03-01,\n",  # line 10: good
        )
        stderr = refused("campaign", "enroll", org, instance, csv)
        assert stderr.splitlines() == [
            f"Error: {csv}: 7 bad row(s), nothing enrolled; fix them or pass "
            "--skip-bad-rows to enroll the others:",
            "  line 3: contact_id 'abc' is not a number",
            "  line 4: contact_id 99999 is not a contact",
            "  line 5: trigger_date '2027-02-30' is not YYYY-MM-DD",
            "  line 6: repeats line 2 (same contact and date)",
            "  line 7: metadata is not a JSON object",
            "  line 8: trigger_date '3/1/2027' is not YYYY-MM-DD",
            "  line 9: 4 fields; expected 3",
        ]
        assert scalar(org, "SELECT count(*) FROM contact_campaigns") == 0

        outcome = cli("campaign", "enroll", org, instance, csv, "--skip-bad-rows")
        assert outcome.exit_code == 0
        assert "enrolled 2 contacts" in outcome.stdout
        assert "7 bad rows skipped" in outcome.stdout
        assert "skipped line 4: contact_id 99999 is not a contact" in outcome.stderr
        assert query(org, "SELECT contact_id FROM contact_campaigns") == [(1,), (8,)]

    def test_many_bad_rows_are_summarized(self, org: Path, tmp_path: Path) -> None:
        instance = promo(org)
        lines = "".join(f"x{i},2027-03-01\n" for i in range(30))
        csv = write_csv(tmp_path / "bad.csv", "contact_id,trigger_date\n" + lines)
        stderr = refused("campaign", "enroll", org, instance, csv)
        assert len(stderr.splitlines()) == 1 + 20 + 1
        assert stderr.splitlines()[-1] == "  ... and 10 more"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "the header must be contact_id,trigger_date"),
            ("id,date\n1,2027-03-01\n", "(found id,date)"),
            (
                "contact_id,trigger_date,notes\n",
                "(found contact_id,trigger_date,notes)",
            ),
        ],
    )
    def test_bad_header(
        self, org: Path, tmp_path: Path, text: str, message: str
    ) -> None:
        instance = promo(org)
        csv = write_csv(tmp_path / "h.csv", text)
        assert message in refused("campaign", "enroll", org, instance, csv)

    def test_missing_file_unknown_instance_all_contacts_type(
        self, org: Path, tmp_path: Path
    ) -> None:
        instance = promo(org)
        missing = tmp_path / "missing.csv"
        assert f"cannot read {missing}" in refused(
            "campaign", "enroll", org, instance, missing
        )
        csv = write_csv(tmp_path / "e.csv", "contact_id,trigger_date\n1,2027-03-01\n")
        assert "campaign instance 7 does not exist" in refused(
            "campaign", "enroll", org, 7, csv
        )
        ok("campaign", "add-type", org, "blast", "--target-all")
        ok(
            "campaign", "create", org, "blast", "b",
            "--start", "2027-01-01", "--end", "2027-02-01",
        )  # fmt: skip
        assert "targets all contacts" in refused("campaign", "enroll", org, 2, csv)


def campaign_rows(path: Path, where: str = "1") -> dict[int, dict[str, Any]]:
    return schedules(path, f"email_type LIKE 'campaign_%' AND {where}")


def enrollment_statuses(path: Path) -> dict[int, str]:
    return dict(query(path, "SELECT contact_id, status FROM contact_campaigns"))


class TestRunsWithCampaigns:
    @pytest.fixture
    def enrolled(self, org: Path, tmp_path: Path) -> tuple[Path, int]:
        """Contacts 1-60 enrolled in a CA/TX/FL rate increase on March 1."""
        instance = promo(org, "--states", "CA,TX,FL", "--sms-template", "promo_sms")
        lines = "".join(f"{i},2027-03-01\n" for i in range(1, 61))
        csv = write_csv(tmp_path / "e.csv", "contact_id,trigger_date\n" + lines)
        ok("campaign", "enroll", org, instance, csv)
        return org, instance

    def test_plan_statuses_and_rerun(self, enrolled: tuple[Path, int]) -> None:
        org, instance = enrolled
        report = run_json(org, TODAY)
        rows = campaign_rows(org)
        assert report["planned"]["campaign_promo"] == sum(
            r["status"] == "pre-scheduled" for r in rows.values()
        )
        assert 0 < len(rows) <= 60
        for row in rows.values():
            assert row["email_type"] == "campaign_promo"
            assert row["campaign_instance_id"] == instance
            assert row["priority"] == 5
            assert row["email_template"] == "promo_v1"
            assert row["sms_template"] in ("promo_sms", None)
            assert (row["event_year"], row["event_month"], row["event_day"]) == (
                2027,
                3,
                1,
            )
        statuses = enrollment_statuses(org)
        for row in rows.values():
            expected = "scheduled" if row["status"] == "pre-scheduled" else "skipped"
            assert statuses[row["contact_id"]] == expected
        reasons = {r["skip_reason"] for r in rows.values() if r["status"] == "skipped"}
        assert "campaign targets other states" in reasons

        before = schedules(org), table_rows(org, "contact_campaigns")
        again = run_json(org, TODAY, "--replan")
        assert {k: again["rows"][k] for k in ("inserted", "updated", "deleted")} == {
            "inserted": 0,
            "updated": 0,
            "deleted": 0,
        }
        assert (schedules(org), table_rows(org, "contact_campaigns")) == before

    def test_update_reschedules_what_it_affects(
        self, enrolled: tuple[Path, int]
    ) -> None:
        org, instance = enrolled
        run_json(org, TODAY)
        before = campaign_rows(org)
        outside = [
            i
            for i, row in before.items()
            if row["skip_reason"] == "campaign targets other states"
        ]
        assert outside
        ok("campaign", "update", org, instance, "--states", "ALL")
        report = run_json(org, TODAY)
        after = campaign_rows(org)
        assert after.keys() == before.keys()  # updated in place
        assert report["rows"]["updated"] >= len(outside)
        for row_id in outside:
            assert after[row_id]["skip_reason"] != "campaign targets other states"
        statuses = enrollment_statuses(org)
        for row in after.values():
            expected = "scheduled" if row["status"] == "pre-scheduled" else "skipped"
            assert statuses[row["contact_id"]] == expected

    def test_sent_rows_and_enrollments_are_never_touched(
        self, enrolled: tuple[Path, int]
    ) -> None:
        org, _ = enrolled
        run_json(org, TODAY)
        with closing(sqlite3.connect(org)) as conn, conn:
            conn.execute(
                "UPDATE email_schedules SET status = 'sent' WHERE contact_id = "
                "(SELECT min(contact_id) FROM email_schedules WHERE email_type = "
                "'campaign_promo' AND status = 'pre-scheduled') "
                "AND email_type = 'campaign_promo'"
            )
            conn.execute(
                "UPDATE contact_campaigns SET status = 'sent' WHERE contact_id IN "
                "(SELECT contact_id FROM email_schedules WHERE status = 'sent')"
            )
        sent = campaign_rows(org, "status = 'sent'")
        assert len(sent) == 1
        statuses = enrollment_statuses(org)
        run_json(org, TODAY + dt.timedelta(days=1))
        assert campaign_rows(org, "status = 'sent'") == sent
        assert enrollment_statuses(org) == statuses

    def test_ended_instance_keeps_its_pending_rows(
        self, org: Path, tmp_path: Path
    ) -> None:
        # Emails 5 days after triggers in April; the instance ends in March.
        ok("campaign", "add-type", org, "late", "--days-before", "-5")
        ok(
            "campaign", "create", org, "late", "x",
            "--start", "2027-01-01", "--end", "2027-03-31",
        )  # fmt: skip
        csv = write_csv(
            tmp_path / "e.csv",
            "contact_id,trigger_date\n"
            + "".join(f"{i},2027-04-10\n" for i in range(1, 21)),
        )
        ok("campaign", "enroll", org, 1, csv)
        run_json(org, TODAY)
        pending = campaign_rows(org, "status = 'pre-scheduled'")
        assert pending
        assert {r["scheduled_send_date"] for r in pending.values()} == {"2027-04-15"}
        statuses = enrollment_statuses(org)
        run_json(org, dt.date(2027, 4, 1))  # ended, not yet sent
        assert campaign_rows(org, "status = 'pre-scheduled'") == pending
        assert enrollment_statuses(org) == statuses

    @pytest.mark.parametrize(
        "removal",
        [
            "DELETE FROM campaign_instances",
            "DELETE FROM campaign_types",
            "UPDATE campaign_types SET active = 0",
            "DELETE FROM contact_campaigns",
        ],
    )
    def test_removed_campaigns_lose_their_rows(
        self, enrolled: tuple[Path, int], removal: str
    ) -> None:
        org, _ = enrolled
        run_json(org, TODAY)
        assert campaign_rows(org)
        with closing(sqlite3.connect(org)) as conn, conn:
            conn.execute(removal)
        report = run_json(org, TODAY)
        assert report["rows"]["deleted"] > 0
        assert campaign_rows(org) == {}

    def test_one_removed_enrollment_loses_its_row(
        self, enrolled: tuple[Path, int]
    ) -> None:
        org, _ = enrolled
        run_json(org, TODAY)
        contact = min(r["contact_id"] for r in campaign_rows(org).values())
        with closing(sqlite3.connect(org)) as conn, conn:
            conn.execute(
                "DELETE FROM contact_campaigns WHERE contact_id = ?", (contact,)
            )
        run_json(org, TODAY)
        assert contact not in {r["contact_id"] for r in campaign_rows(org).values()}
        assert len(campaign_rows(org)) > 0

    def test_aep_campaign_replaces_the_fixed_date_aep(self, org: Path) -> None:
        ok("campaign", "add-type", org, "aep", "--target-all", "--spread-evenly",
           "--priority", 30)  # fmt: skip
        ok(
            "campaign", "create", org, "aep", "aep_2027", "--start", "2027-08-01",
            "--end", "2027-09-30", "--spread", "2027-09-01", "2027-09-30",
            "--email-template", "aep_2027",
        )  # fmt: skip
        run_json(org, TODAY)  # not active yet: the fixed-date AEP is planned
        assert schedules(org, "email_type = 'aep' AND status = 'pre-scheduled'")
        assert campaign_rows(org) == {}

        report = run_json(org, dt.date(2027, 8, 20))
        assert "aep" not in report["planned"]
        assert report["planned"]["campaign_aep"] > 0
        assert (
            schedules(org, "email_type = 'aep' AND scheduled_send_date >= '2027-08-20'")
            == {}
        )
        per_contact = query(
            org,
            "SELECT contact_id, count(*) FROM email_schedules WHERE email_type IN "
            "('aep', 'campaign_aep') AND event_year = 2027 GROUP BY contact_id "
            "HAVING count(*) > 1",
        )
        assert per_contact == []
        sends = {r["scheduled_send_date"] for r in campaign_rows(org).values()}
        assert min(sends) >= "2027-09-01" and max(sends) <= "2027-09-30"
        assert duplicate_identities(org) == []


class TestOlderCampaignTables:
    def test_missing_columns_are_added_and_defaults_apply(self, org: Path) -> None:
        with closing(sqlite3.connect(org)) as conn, conn:
            conn.executescript(
                """
                CREATE TABLE campaign_types (
                    name TEXT PRIMARY KEY,
                    respect_exclusion_windows BOOLEAN DEFAULT TRUE,
                    enable_followups BOOLEAN DEFAULT TRUE,
                    days_before_event INTEGER DEFAULT 0,
                    target_all_contacts BOOLEAN DEFAULT FALSE,
                    priority INTEGER DEFAULT 10,
                    active BOOLEAN DEFAULT TRUE
                );
                CREATE TABLE campaign_instances (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    campaign_type TEXT NOT NULL,
                    instance_name TEXT NOT NULL,
                    email_template TEXT,
                    sms_template TEXT,
                    active_start_date DATE,
                    active_end_date DATE,
                    metadata TEXT,
                    UNIQUE(campaign_type, instance_name)
                );
                CREATE TABLE contact_campaigns (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    contact_id INTEGER NOT NULL,
                    campaign_instance_id INTEGER NOT NULL,
                    trigger_date DATE,
                    status TEXT DEFAULT 'pending',
                    metadata TEXT,
                    UNIQUE(contact_id, campaign_instance_id, trigger_date)
                );
                INSERT INTO campaign_types (name, days_before_event, priority)
                    VALUES ('rate_increase', 14, 1);
                INSERT INTO campaign_instances (campaign_type, instance_name,
                    email_template, active_start_date, active_end_date)
                    VALUES ('rate_increase', 'q1', 'ri', '2027-01-01', '2027-03-31');
                INSERT INTO contact_campaigns (contact_id, campaign_instance_id,
                    trigger_date) VALUES (1, 1, '2027-02-15'), (2, 1, '2027-02-15');
                """
            )
        run_json(org, TODAY)
        rows = campaign_rows(org).values()
        assert sorted(r["contact_id"] for r in rows) == [1, 2]
        assert {(r["priority"], r["email_template"]) for r in rows} == {(1, "ri")}
        columns = {row[1] for row in query(org, "PRAGMA table_info(campaign_types)")}
        assert {"spread_evenly", "skip_failed_underwriting"} <= columns
        columns = {
            row[1] for row in query(org, "PRAGMA table_info(campaign_instances)")
        }
        assert {
            "spread_start_date",
            "spread_end_date",
            "target_states",
            "target_carriers",
        } <= columns
        assert set(enrollment_statuses(org).values()) <= {"scheduled", "skipped"}

    def test_dry_run_reads_a_database_without_campaign_tables(self, org: Path) -> None:
        report = run_json(org, TODAY, "--dry-run")
        assert report["dry_run"] is True
        tables = {row[0] for row in query(org, "SELECT name FROM sqlite_master")}
        assert "campaign_types" not in tables


class TestSampleCampaigns:
    def test_generated_campaigns_plan(self, tmp_path: Path) -> None:
        path = tmp_path / "org.sqlite3"
        ok("generate", path, "--contacts", 1000, "--seed", 4, "--campaigns")
        enrolled = scalar(path, "SELECT count(*) FROM contact_campaigns")
        assert 25 <= enrolled <= 75  # about 5%
        names = ok("campaign", "list", path, "--json").stdout
        assert [r["instance_name"] for r in json.loads(names)] == [
            "rate_increase_2027_h1",
            "aep_2027",
        ]
        report = run_json(path, dt.date(2026, 12, 10))
        assert "campaign_rate_increase" in report["planned"]
        report = run_json(path, dt.date(2027, 8, 20))
        assert "campaign_aep" in report["planned"]
        assert "aep" not in report["planned"]

    def test_contacts_are_the_same_with_or_without_campaigns(
        self, tmp_path: Path
    ) -> None:
        plain, sample = tmp_path / "plain.sqlite3", tmp_path / "sample.sqlite3"
        generate_org(plain, 200, seed=9)
        generate_org(sample, 200, seed=9, campaigns=True)
        assert table_rows(plain, "contacts") == table_rows(sample, "contacts")
