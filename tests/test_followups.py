"""Follow-ups (SPEC 9) through the real `run` command and real SQLite files.

Each test makes an org database with `email-scheduler init`, inserts a few
contacts, a sent parent email and the contact's clicks and health-question
answers with sqlite3, runs the scheduler for TODAY and reads the follow-up
rows back. Contacts live in Texas (no exclusion windows) with birthdays far
from TODAY unless a test is about windows or conflicts, so no anniversary
email competes with a follow-up.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from helpers import Row, cli, connection, query, run_json, schedules, write_config
from test_cli import written

TODAY = dt.date(2026, 6, 10)
DAY = dt.timedelta(days=1)
TOMORROW = "2026-06-11"

SENT = "2026-06-09 14:05:00"
"""When the usual parent went out; its follow-up is due two days later."""
AFTER = "2026-06-09 18:30:00"
BEFORE = "2026-06-09 09:00:00"
"""The same day as the parent, hours before it was sent."""
WEEK_BEFORE = "2026-06-02 10:00:00"

FOLLOW_UP = "email_type LIKE 'followup_%'"
WINDOW = "exclusion window:"


# -- building org databases ---------------------------------------------------


@pytest.fixture
def org(tmp_path: Path) -> Path:
    """An empty org database made by `email-scheduler init`."""
    path = tmp_path / "org.sqlite3"
    outcome = cli("init", path)
    assert outcome.exit_code == 0, outcome.stderr
    return path


def add_contact(
    path: Path,
    contact_id: int,
    *,
    zip_code: str | None = "75001",
    state: str | None = "TX",
    birth: str = "1950-01-20",
    email: str = "someone@example.com",
    phone: str | None = None,
    status: str | None = None,
) -> None:
    with connection(path) as conn:
        conn.execute(
            "INSERT INTO contacts (id, email, zip_code, state, birth_date, "
            "phone_number, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (contact_id, email, zip_code, state, birth, phone, status),
        )


def add_email(
    path: Path,
    contact_id: int,
    sent_at: str | None = SENT,
    *,
    email_type: str = "birthday",
    status: str = "sent",
    priority: int = 10,
    instance: int | None = None,
    day: str | None = None,
    event: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> int:
    """Insert an email_schedules row and return its id.

    `day` (the scheduled send date) defaults to the day of `sent_at`, the
    row's `actual_send_datetime`; `event` fills the event date columns.
    """
    year, month, event_day = map(int, event.split("-")) if event else (None,) * 3
    with connection(path) as conn:
        cursor = conn.execute(
            "INSERT INTO email_schedules (contact_id, email_type, "
            "scheduled_send_date, status, priority, campaign_instance_id, "
            "actual_send_datetime, event_year, event_month, event_day, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                contact_id,
                email_type,
                day or (sent_at or "")[:10],
                status,
                priority,
                instance,
                sent_at,
                year,
                month,
                event_day,
                json.dumps(metadata) if metadata is not None else None,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


class Click(NamedTuple):
    at: str


class Answer(NamedTuple):
    """An `eligibility_answered` event; metadata is JSON, raw text or NULL."""

    at: str
    metadata: dict[str, Any] | str | None


class Event(NamedTuple):
    event_type: str
    at: str


Behaviour = Click | Answer | Event


def record(
    path: Path, contact_id: int, parent: int, behaviour: list[Behaviour]
) -> None:
    """Insert a contact's clicks (on the parent email) and events."""
    with connection(path) as conn:
        for item in behaviour:
            if isinstance(item, Click):
                conn.execute(
                    "INSERT INTO tracking_clicks (contact_id, email_schedule_id, "
                    "url, clicked_at) VALUES (?, ?, ?, ?)",
                    (contact_id, parent, "https://example.com/quote", item.at),
                )
            elif isinstance(item, Answer):
                metadata = item.metadata
                if isinstance(metadata, dict):
                    metadata = json.dumps(metadata)
                conn.execute(
                    "INSERT INTO contact_events (contact_id, event_type, metadata, "
                    "created_at) VALUES (?, 'eligibility_answered', ?, ?)",
                    (contact_id, metadata, item.at),
                )
            else:
                conn.execute(
                    "INSERT INTO contact_events (contact_id, event_type, "
                    "created_at) VALUES (?, ?, ?)",
                    (contact_id, item.event_type, item.at),
                )


def add_campaign(
    path: Path, *, followups: bool = True, metadata: dict[str, Any] | None = None
) -> int:
    """Add campaign type `rate` (priority 5) and a running instance; return its id.

    Nobody is enrolled, so the campaign plans no email of its own.
    """
    flag = "--followups" if followups else "--no-followups"
    outcome = cli("campaign", "add-type", path, "rate", "--priority", 5, flag)
    assert outcome.exit_code == 0, outcome.stderr
    extra = ["--metadata", json.dumps(metadata)] if metadata else []
    outcome = cli(
        "campaign",
        "create",
        path,
        "rate",
        "rate_2026",
        "--start",
        "2026-05-01",
        "--end",
        "2026-07-31",
        "--email-template",
        "rate_email",
        "--json",
        *extra,
    )
    assert outcome.exit_code == 0, outcome.stderr
    instance = outcome.json()["id"]
    assert isinstance(instance, int)
    return instance


# -- reading them back ----------------------------------------------------------


def follow_ups(path: Path, contact_id: int | None = None) -> list[Row]:
    """Return the follow-up rows, of one contact or all, in id order."""
    where, params = FOLLOW_UP, ()
    if contact_id is not None:
        where, params = f"{FOLLOW_UP} AND contact_id = ?", (contact_id,)
    return sorted(schedules(path, where, params).values(), key=lambda r: r["id"])


def only_follow_up(path: Path, contact_id: int) -> Row:
    (row,) = follow_ups(path, contact_id)
    return row


def metadata(row: Row) -> dict[str, Any]:
    """Return the three metadata keys every follow-up must carry."""
    data = json.loads(row["metadata"])
    return {key: data[key] for key in ("parent_id", "parent_type", "behaviour")}


def kinds(path: Path) -> dict[int, tuple[str, str]]:
    """Return each contact's follow-up as (email_type, behaviour)."""
    found: dict[int, tuple[str, str]] = {}
    for row in follow_ups(path):
        assert row["contact_id"] not in found, "one follow-up per parent"
        found[row["contact_id"]] = (row["email_type"], metadata(row)["behaviour"])
    return found


def columns(path: Path, table: str) -> set[str]:
    return {row[1] for row in query(path, f"PRAGMA table_info({table})")}


# -- tables -------------------------------------------------------------------


class TestTables:
    def test_init_creates_the_behaviour_tables(self, org: Path) -> None:
        """`init` creates tracking_clicks and contact_events with their columns."""
        assert {"id", "contact_id", "email_schedule_id", "url", "clicked_at"} <= (
            columns(org, "tracking_clicks")
        )
        assert {"id", "contact_id", "event_type", "metadata", "created_at"} <= (
            columns(org, "contact_events")
        )

    def test_run_creates_them_when_missing(self, org: Path) -> None:
        """`run` creates missing behaviour tables and plans cold follow-ups."""
        with connection(org) as conn:
            conn.execute("DROP TABLE tracking_clicks")
            conn.execute("DROP TABLE contact_events")
        add_contact(org, 1)
        add_email(org, 1)

        run_json(org, TODAY)

        assert kinds(org) == {1: ("followup_1_cold", "cold")}
        assert "clicked_at" in columns(org, "tracking_clicks")
        assert "event_type" in columns(org, "contact_events")

    def test_clicks_table_with_an_extra_column(self, org: Path) -> None:
        """A tracking_clicks table with an extra required column is still read."""
        with connection(org) as conn:
            conn.execute("DROP TABLE tracking_clicks")
            conn.execute(
                "CREATE TABLE tracking_clicks (id INTEGER PRIMARY KEY, "
                "tracking_id TEXT NOT NULL, contact_id INTEGER, "
                "email_schedule_id INTEGER, url TEXT, clicked_at TEXT)"
            )
        add_contact(org, 1)
        parent = add_email(org, 1)
        with connection(org) as conn:
            conn.execute(
                "INSERT INTO tracking_clicks (tracking_id, contact_id, "
                "email_schedule_id, url, clicked_at) VALUES ('t-1', 1, ?, 'u', ?)",
                (parent, AFTER),
            )

        run_json(org, TODAY)

        assert kinds(org) == {1: ("followup_2_clicked_no_hq", "clicked")}

    def test_events_table_without_metadata(self, org: Path) -> None:
        """An answer in contact_events without metadata has no conditions."""
        with connection(org) as conn:
            conn.execute("DROP TABLE contact_events")
            conn.execute(
                "CREATE TABLE contact_events (id INTEGER PRIMARY KEY, "
                "contact_id INTEGER, event_type TEXT, created_at TEXT)"
            )
        add_contact(org, 1)
        add_email(org, 1)
        record(org, 1, 0, [Event("eligibility_answered", AFTER)])

        run_json(org, TODAY)

        assert kinds(org) == {1: ("followup_3_hq_no_yes", "hq_no_yes")}


# -- behaviour ----------------------------------------------------------------

COLD = ("followup_1_cold", "cold")
CLICKED = ("followup_2_clicked_no_hq", "clicked")
NO_YES = ("followup_3_hq_no_yes", "hq_no_yes")
WITH_YES = ("followup_4_hq_with_yes", "hq_with_yes")

BEHAVIOURS = [
    # (what the contact did, the follow-up it earns)
    pytest.param([], COLD, id="nothing"),
    pytest.param([Click(AFTER)], CLICKED, id="click-after"),
    pytest.param([Click(BEFORE)], COLD, id="click-same-day-before-send"),
    pytest.param([Click(WEEK_BEFORE)], COLD, id="click-week-before"),
    pytest.param([Event("email_opened", AFTER)], COLD, id="other-event"),
    pytest.param(
        [Answer(AFTER, {"has_medical_conditions": True})], WITH_YES, id="hmc-true"
    ),
    pytest.param(
        [Answer(AFTER, {"has_medical_conditions": False})], NO_YES, id="hmc-false"
    ),
    pytest.param([Answer(AFTER, {})], NO_YES, id="keys-absent"),
    pytest.param([Answer(AFTER, None)], NO_YES, id="metadata-null"),
    pytest.param(
        [Answer(AFTER, {"main_questions_yes_count": 0})], NO_YES, id="yes-count-0"
    ),
    pytest.param(
        [Answer(AFTER, {"main_questions_yes_count": 2})], WITH_YES, id="yes-count-2"
    ),
    pytest.param(
        [
            Answer(
                AFTER, {"has_medical_conditions": False, "main_questions_yes_count": 2}
            )
        ],
        WITH_YES,
        id="hmc-false-but-yes-count-2",
    ),
    # an answer at the very moment of the send counts
    pytest.param(
        [Answer(SENT, {"has_medical_conditions": True})], WITH_YES, id="answer-at-send"
    ),
    pytest.param(
        [Answer(BEFORE, {"has_medical_conditions": True})], COLD, id="answer-before"
    ),
    # an answer outranks a click
    pytest.param(
        [Click(AFTER), Answer(AFTER, {"has_medical_conditions": False})],
        NO_YES,
        id="click-and-answer",
    ),
    # only the click counts when the answer came before the parent
    pytest.param(
        [Answer(WEEK_BEFORE, {"has_medical_conditions": True}), Click(AFTER)],
        CLICKED,
        id="old-answer-new-click",
    ),
]


class TestBehaviour:
    @pytest.mark.parametrize(("behaviour", "expected"), BEHAVIOURS)
    def test_table(
        self, org: Path, behaviour: list[Behaviour], expected: tuple[str, str]
    ) -> None:
        """The follow-up type follows what the contact did since the parent was sent."""
        add_contact(org, 1)
        parent = add_email(org, 1)
        record(org, 1, parent, behaviour)

        report = run_json(org, TODAY)

        assert kinds(org) == {1: expected}
        assert report["planned"][expected[0]] == 1

    def test_each_contact_by_its_own_behaviour(self, org: Path) -> None:
        """Each contact's own behaviour picks its type; the report counts them."""
        parents = build_four_behaviours(org)

        report = run_json(org, TODAY)

        assert kinds(org) == {1: COLD, 2: CLICKED, 3: NO_YES, 4: WITH_YES}
        for row in follow_ups(org):
            assert metadata(row)["parent_id"] == parents[row["contact_id"]]
        assert {
            t: n for t, n in report["planned"].items() if t.startswith("followup_")
        } == {
            "followup_1_cold": 1,
            "followup_2_clicked_no_hq": 1,
            "followup_3_hq_no_yes": 1,
            "followup_4_hq_with_yes": 1,
        }

    def test_malformed_metadata_is_counted(self, org: Path) -> None:
        """Metadata that is not JSON means no conditions and is counted."""
        add_contact(org, 1)
        parent = add_email(org, 1)
        record(org, 1, parent, [Answer(AFTER, "{not json")])

        report = run_json(org, TODAY)

        assert kinds(org) == {1: NO_YES}
        assert report["data_quality"]["invalid_event_metadata"] == 1


def build_four_behaviours(path: Path) -> dict[int, int]:
    """Give contacts 1 to 4 a parent each and the behaviour of follow-up types 1 to 4.

    Returns each contact's parent id.
    """
    behaviours: list[list[Behaviour]] = [
        [Click(WEEK_BEFORE)],
        [Click(AFTER)],
        [Answer(AFTER, {"main_questions_yes_count": 0}), Click(AFTER)],
        [Answer(AFTER, {"has_medical_conditions": True})],
    ]
    parents = {}
    for contact_id, behaviour in enumerate(behaviours, start=1):
        add_contact(path, contact_id)
        parents[contact_id] = add_email(path, contact_id)
        record(path, contact_id, parents[contact_id], behaviour)
    return parents


# -- the row ------------------------------------------------------------------


class TestRow:
    def test_columns_of_a_follow_up(self, org: Path) -> None:
        """A follow-up takes the parent's priority and names the parent."""
        add_contact(org, 1, phone="555-0100")
        parent = add_email(org, 1, priority=7)

        report = run_json(org, TODAY)

        row = only_follow_up(org, 1)
        assert {
            "contact_id": row["contact_id"],
            "email_type": row["email_type"],
            "scheduled_send_date": row["scheduled_send_date"],
            "status": row["status"],
            "skip_reason": row["skip_reason"],
            "priority": row["priority"],
            "campaign_instance_id": row["campaign_instance_id"],
            "event": (row["event_year"], row["event_month"], row["event_day"]),
            "email_template": row["email_template"],
            "sms_template": row["sms_template"],
            "scheduler_run_id": row["scheduler_run_id"],
        } == {
            "contact_id": 1,
            "email_type": "followup_1_cold",
            "scheduled_send_date": TOMORROW,
            "status": "pre-scheduled",
            "skip_reason": None,
            "priority": 7,
            "campaign_instance_id": None,
            "event": (None, None, None),
            "email_template": "followup_1_cold",
            "sms_template": None,  # a phone, but no SMS template configured
            "scheduler_run_id": report["run_id"],
        }
        assert metadata(row) == {
            "parent_id": parent,
            "parent_type": "birthday",
            "behaviour": "cold",
        }
        assert isinstance(json.loads(row["metadata"])["parent_id"], int)

    def test_configured_templates(self, org: Path) -> None:
        """Configured templates are used; the SMS one only with a phone."""
        config = write_config(
            org.with_name("c.yaml"),
            "templates:\n"
            "  followup_1_cold:\n"
            "    email: fu_cold\n"
            "    sms: fu_cold_sms\n",
        )
        add_contact(org, 1, phone="555-0100")
        add_contact(org, 2)
        add_contact(org, 3, phone="555-0101")
        add_email(org, 1)
        add_email(org, 2)
        record(org, 3, add_email(org, 3), [Click(AFTER)])

        run_json(org, TODAY, "--config", config)

        templates = {
            row["contact_id"]: (row["email_template"], row["sms_template"])
            for row in follow_ups(org)
        }
        assert templates == {
            1: ("fu_cold", "fu_cold_sms"),
            2: ("fu_cold", None),  # no phone
            3: ("followup_2_clicked_no_hq", None),  # type without configuration
        }


# -- parents ------------------------------------------------------------------


class TestParents:
    @pytest.mark.parametrize(
        "email_type", ["birthday", "effective_date", "aep", "post_window"]
    )
    @pytest.mark.parametrize("status", ["sent", "delivered"])
    def test_anniversary_and_post_window_parents(
        self, org: Path, email_type: str, status: str
    ) -> None:
        """Sent or delivered anniversary and post-window emails earn a follow-up."""
        add_contact(org, 1)
        parent = add_email(org, 1, email_type=email_type, status=status)

        run_json(org, TODAY)

        row = only_follow_up(org, 1)
        assert metadata(row)["parent_type"] == email_type
        assert metadata(row)["parent_id"] == parent

    @pytest.mark.parametrize(
        "status", ["pre-scheduled", "skipped", "scheduled", "processing"]
    )
    def test_emails_not_sent_are_no_parents(self, org: Path, status: str) -> None:
        """Only sent or delivered emails earn a follow-up."""
        add_contact(org, 1)
        add_email(org, 1, status=status)

        run_json(org, TODAY)

        assert follow_ups(org) == []

    @pytest.mark.parametrize(
        ("sent_at", "earns"),
        [
            ("2026-05-01 10:00:00", False),  # 40 days ago
            ("2026-05-05 23:59:00", False),  # 36 days ago
            ("2026-05-06 00:01:00", True),  # 35 days ago: the oldest parent
            ("2026-05-31 10:00:00", True),  # 10 days ago
        ],
    )
    def test_lookback(self, org: Path, sent_at: str, earns: bool) -> None:
        """Parents sent more than 35 days before today earn nothing."""
        add_contact(org, 1)
        add_email(org, 1, sent_at)

        run_json(org, TODAY)

        dates = [row["scheduled_send_date"] for row in follow_ups(org)]
        assert dates == ([TOMORROW] if earns else [])

    def test_configured_lookback_and_delay(self, org: Path) -> None:
        """followup_lookback_days and followup_delay_days are read from the config."""
        config = write_config(
            org.with_name("c.yaml"),
            "timing:\n  followup_lookback_days: 10\n  followup_delay_days: 5\n",
        )
        for contact_id, sent_at in enumerate(
            ["2026-06-09 10:00:00", "2026-05-31 10:00:00", "2026-05-30 10:00:00"],
            start=1,
        ):
            add_contact(org, contact_id)
            add_email(org, contact_id, sent_at)

        run_json(org, TODAY, "--config", config)

        dates = {r["contact_id"]: r["scheduled_send_date"] for r in follow_ups(org)}
        assert dates == {1: "2026-06-14", 2: TOMORROW}

    def test_send_moment_without_actual_send_time(self, org: Path) -> None:
        """Without actual_send_datetime, a parent was sent at 00:00 of its day."""
        for contact_id in (1, 2):
            add_contact(org, contact_id)
        first = add_email(org, 1, None, day="2026-06-09")
        second = add_email(org, 2, None, day="2026-06-09")
        record(org, 1, first, [Click("2026-06-08 23:59:59")])
        record(org, 2, second, [Click("2026-06-09 07:00:00")])

        run_json(org, TODAY)

        assert kinds(org) == {1: COLD, 2: CLICKED}
        assert {r["scheduled_send_date"] for r in follow_ups(org)} == {TOMORROW}

    @pytest.mark.parametrize(
        "contact",
        [
            pytest.param({"status": "unsubscribed"}, id="suppressed"),
            pytest.param({"email": "not-an-email"}, id="invalid-email"),
            pytest.param({"zip_code": "00000", "state": None}, id="unknown-state"),
        ],
    )
    def test_ineligible_contacts_get_none(
        self, org: Path, contact: dict[str, Any]
    ) -> None:
        """Ineligible contacts get no follow-up."""
        add_contact(org, 1, **contact)
        add_email(org, 1)

        run_json(org, TODAY)

        assert follow_ups(org) == []


class TestCampaignParents:
    def test_enabled_with_instance_templates(self, org: Path) -> None:
        """A campaign follow-up inherits instance, priority and instance templates."""
        instance = add_campaign(
            org,
            metadata={
                "followup_templates": {
                    "followup_1_cold": {
                        "email": "rate_fu_cold",
                        "sms": "rate_fu_cold_sms",
                    }
                }
            },
        )
        add_contact(org, 1, phone="555-0100")
        add_contact(org, 2)
        parents = {
            contact_id: add_email(
                org,
                contact_id,
                email_type="campaign_rate",
                priority=5,
                instance=instance,
            )
            for contact_id in (1, 2)
        }
        record(org, 2, parents[2], [Click(AFTER)])

        run_json(org, TODAY)

        cold, clicked = only_follow_up(org, 1), only_follow_up(org, 2)
        for row in (cold, clicked):
            assert row["campaign_instance_id"] == instance
            assert row["priority"] == 5
            assert metadata(row)["parent_type"] == "campaign_rate"
            assert metadata(row)["parent_id"] == parents[row["contact_id"]]
        assert (cold["email_type"], cold["email_template"], cold["sms_template"]) == (
            "followup_1_cold",
            "rate_fu_cold",
            "rate_fu_cold_sms",
        )
        # the instance overrides only the cold follow-up
        assert (clicked["email_type"], clicked["email_template"]) == (
            "followup_2_clicked_no_hq",
            "followup_2_clicked_no_hq",
        )

    def test_instance_template_as_a_plain_string(self, org: Path) -> None:
        """A plain string under followup_templates names the email template."""
        instance = add_campaign(
            org, metadata={"followup_templates": {"followup_1_cold": "rate_fu_cold"}}
        )
        add_contact(org, 1)
        add_email(org, 1, email_type="campaign_rate", priority=5, instance=instance)

        run_json(org, TODAY)

        row = only_follow_up(org, 1)
        assert (row["email_template"], row["sms_template"]) == ("rate_fu_cold", None)

    def test_disabled_follow_ups(self, org: Path) -> None:
        """A campaign type with enable_followups = 0 earns no follow-up."""
        instance = add_campaign(org, followups=False)
        add_contact(org, 1)
        parent = add_email(
            org, 1, email_type="campaign_rate", priority=5, instance=instance
        )
        record(org, 1, parent, [Click(AFTER)])

        run_json(org, TODAY)

        assert follow_ups(org) == []


# -- dates and re-runs ----------------------------------------------------------


class TestReruns:
    def test_same_day_rerun_changes_nothing(self, org: Path) -> None:
        """A second run on the same day writes no row."""
        build_four_behaviours(org)
        add_contact(org, 5, zip_code="10001", state="NY")
        add_email(org, 5)
        run_json(org, TODAY)
        before = schedules(org)
        assert len(follow_ups(org)) == 5

        report = run_json(org, TODAY, "--replan")

        assert written(report) == (0, 0, 0)
        assert schedules(org) == before

    def test_new_behaviour_updates_the_pending_follow_up(self, org: Path) -> None:
        """A later click turns the pending cold follow-up into a clicked one."""
        add_contact(org, 1)
        parent = add_email(org, 1)
        run_json(org, TODAY)
        cold = only_follow_up(org, 1)
        assert cold["email_type"] == "followup_1_cold"
        record(org, 1, parent, [Click(AFTER)])

        report = run_json(org, TODAY)

        clicked = only_follow_up(org, 1)
        assert clicked["id"] == cold["id"]
        assert clicked["email_type"] == "followup_2_clicked_no_hq"
        assert clicked["scheduled_send_date"] == cold["scheduled_send_date"]
        assert metadata(clicked) == {
            "parent_id": parent,
            "parent_type": "birthday",
            "behaviour": "clicked",
        }
        assert clicked["scheduler_run_id"] == report["run_id"]
        assert report["rows"]["inserted"] == 0
        assert report["rows"]["updated"] >= 1
        assert report["planned"].get("followup_1_cold", 0) == 0
        assert report["planned"]["followup_2_clicked_no_hq"] == 1

    @pytest.mark.parametrize("status", ["sent", "delivered", "processing", "scheduled"])
    def test_follow_up_owned_by_the_sender_is_not_repeated(
        self, org: Path, status: str
    ) -> None:
        """A parent whose follow-up was sent or is in flight gets no other one."""
        add_contact(org, 1)
        parent = add_email(org, 1, "2026-06-01 10:00:00")
        owned = add_email(
            org,
            1,
            "2026-06-03 10:00:00" if status in ("sent", "delivered") else None,
            day="2026-06-03",
            email_type="followup_1_cold",
            status=status,
            metadata={"parent_id": parent, "parent_type": "birthday"},
        )
        # The behaviour changed since, which must not matter.
        record(org, 1, parent, [Click("2026-06-05 10:00:00")])
        before = schedules(org, "id = ?", (owned,))

        run_json(org, TODAY)

        assert [row["id"] for row in follow_ups(org)] == [owned]
        assert schedules(org, "id = ?", (owned,)) == before

    def test_overdue_parent(self, org: Path) -> None:
        """An overdue follow-up is due tomorrow and keeps that date next day."""
        add_contact(org, 1)
        add_email(org, 1, "2026-05-31 10:00:00")

        run_json(org, TODAY)
        first = only_follow_up(org, 1)
        assert first["scheduled_send_date"] == TOMORROW

        run_json(org, TODAY + DAY)
        assert only_follow_up(org, 1) == first

        # Not sent on its day: the day after, it moves to the next day.
        run_json(org, TODAY + 2 * DAY)
        moved = only_follow_up(org, 1)
        assert moved["id"] == first["id"]
        assert moved["scheduled_send_date"] == "2026-06-13"


# -- windows and constraints -----------------------------------------------------


def post_windows(path: Path, contact_id: int) -> list[tuple[Any, ...]]:
    return query(
        path,
        "SELECT scheduled_send_date, status, event_year, event_month, event_day "
        "FROM email_schedules WHERE contact_id = ? AND email_type = 'post_window' "
        "ORDER BY scheduled_send_date",
        (contact_id,),
    )


class TestConstraints:
    def test_year_round_window(self, org: Path) -> None:
        """A follow-up of a New York contact is skipped for the year-round window."""
        add_contact(org, 1, zip_code="10001", state="NY")
        parent = add_email(org, 1)

        run_json(org, TODAY)

        row = only_follow_up(org, 1)
        assert row["status"] == "skipped"
        assert row["skip_reason"].startswith(WINDOW)
        assert "NY" in row["skip_reason"]
        assert metadata(row)["parent_id"] == parent

    def test_birthday_window_earns_no_post_window_email(self, org: Path) -> None:
        """A follow-up skipped for a CA birthday window adds no post-window email."""
        # Born April 20: the 2026 window runs Jan 20 .. Jun 19. Both contacts
        # got their 2026 birthday email, so that window earns no post-window
        # email of its own; contact 1 got it late, on Jun 9, and its follow-up
        # falls on Jun 11, inside the window.
        for contact_id in (1, 2):
            add_contact(
                org, contact_id, zip_code="90001", state="CA", birth="1950-04-20"
            )
        add_email(org, 1, day="2026-04-06", event="2026-04-20")
        add_email(org, 2, "2026-04-06 10:00:00", event="2026-04-20")

        run_json(org, TODAY)

        row = only_follow_up(org, 1)
        assert row["scheduled_send_date"] == TOMORROW
        assert row["status"] == "skipped"
        assert row["skip_reason"].startswith(WINDOW)
        assert "CA" in row["skip_reason"]
        assert follow_ups(org, 2) == []
        assert post_windows(org, 1) == post_windows(org, 2)
        assert "2026-06-20" not in {pw[0] for pw in post_windows(org, 1)}

    def test_exempt_from_the_frequency_limit(self, org: Path) -> None:
        """A follow-up stays planned where a fourth email in 30 days is skipped."""
        # Born June 28: the birthday email of Jun 14 is the fourth of Jun 9,
        # 12, 13 and 14, so the limit skips it; the follow-up of Jun 11 is
        # exempt.
        add_contact(org, 1, birth="1950-06-28")
        add_email(org, 1, email_type="aep")
        for day, email_type in (
            ("2026-06-12", "effective_date"),
            ("2026-06-13", "post_window"),
        ):
            add_email(org, 1, None, day=day, email_type=email_type, status="scheduled")

        run_json(org, TODAY)

        (birthday,) = schedules(org, "email_type = 'birthday'").values()
        assert (birthday["scheduled_send_date"], birthday["status"]) == (
            "2026-06-14",
            "skipped",
        )
        assert "frequency" in birthday["skip_reason"]
        row = only_follow_up(org, 1)
        assert (row["scheduled_send_date"], row["status"]) == (
            TOMORROW,
            "pre-scheduled",
        )

    def test_exempt_from_same_day_conflicts(self, org: Path) -> None:
        """A follow-up and a birthday email on the same day both stay planned."""
        # Born June 25: the birthday email goes out on Jun 11, like the follow-up.
        add_contact(org, 1, birth="1950-06-25")
        add_email(org, 1, email_type="post_window", priority=40)

        run_json(org, TODAY)

        planned = query(
            org,
            "SELECT email_type, scheduled_send_date, status FROM email_schedules "
            "WHERE scheduled_send_date = ? ORDER BY email_type",
            (TOMORROW,),
        )
        assert planned == [
            ("birthday", TOMORROW, "pre-scheduled"),
            ("followup_1_cold", TOMORROW, "pre-scheduled"),
        ]
