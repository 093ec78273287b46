"""Properties of campaign plans on random contacts and campaigns.

The window promise (SPEC 6.3) is checked against `oracle`, the scalar
re-implementation of the window rules: no pre-scheduled email that
respects windows, campaign or not, lies inside one of its contact's
windows, birthday or effective-date. Spread campaigns stay inside their
spread range and never send before today, on a first run and on a later
run over the written plan. When an instance ends, the real command on a
real SQLite file leaves its pending emails as planned, except where the law
wins. Values given to the campaign commands are stored canonically or
refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import oracle
from email_scheduler.calendar import from_days, to_days
from email_scheduler.campaigns import check_ranges, normalize
from email_scheduler.config import Settings
from email_scheduler.contacts import build_contacts
from email_scheduler.errors import CampaignError
from email_scheduler.pipeline import Inputs, build_plan
from email_scheduler.plan import Plan, Vocabulary, empty_plan
from email_scheduler.store.campaigns import (
    DATE_FIELDS,
    ENROLLMENT_STATUSES,
    INSTANCE_FIELDS,
    Campaigns,
    CampaignType,
)
from email_scheduler.store.reader import ExistingRows
from helpers import Row, cli, connection, run_json, schedules, send_due
from test_campaigns import campaigns, instance
from test_properties import as_rows

DEFAULTS = Settings()
PROPERTY = settings(max_examples=60, deadline=None)
# MO thrice: its effective-date windows need a policy date as well.
STATES = ["CA", "NV", "MO", "MO", "MO", "NY", "ID", "TX", "FL", ""]
SUPPRESSED = sorted(DEFAULTS.suppressed_contact_statuses)


class Person(NamedTuple):
    id: int
    state: str
    birth: dt.date | None
    effective: dt.date | None
    carrier: str


def _text(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


def _stored(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def contacts_table(people: list[Person]) -> pa.Table:
    n = len(people)
    text = {
        "email": [f"c{p.id}@example.com" for p in people],
        "zip_code": [""] * n,
        "state": [p.state for p in people],
        "birth_date": [_text(p.birth) for p in people],
        "effective_date": [_text(p.effective) for p in people],
        "carrier": [p.carrier for p in people],
        "failed_underwriting": [""] * n,
        "phone_number": [""] * n,
        "status": [""] * n,
    }
    columns = {"id": pa.array([p.id for p in people], pa.int64())}
    columns |= {name: pa.array(values, pa.string()) for name, values in text.items()}
    return pa.table(columns)


def verdict(person: Person, send: dt.date, today: dt.date) -> oracle.Verdict:
    """Return the window of `person` holding `send`, by the oracle."""
    birth = person.birth if person.birth and person.birth <= today else None
    return oracle.exclusion(person.state or None, birth, person.effective, send)


def _near(today: dt.date, low: int, high: int) -> st.SearchStrategy[dt.date]:
    return st.integers(low, high).map(lambda days: today + dt.timedelta(days=days))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Person], Campaigns, dt.date]:
    """Return a few contacts, one campaign type with an instance, and a today."""
    today = draw(st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)))
    ids = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=8, unique=True))
    births = st.one_of(
        st.none(),
        st.tuples(_near(today, -200, 200), st.integers(1930, 1960)).map(
            lambda pair: oracle.anniversary(pair[0], pair[1])
        ),
    )
    effectives = st.one_of(
        st.none(),
        # A policy anniversary within months of today (MO windows).
        st.tuples(_near(today, -60, 180), st.integers(1, 6)).map(
            lambda pair: oracle.anniversary(pair[0], pair[0].year - pair[1])
        ),
        # A recent policy: no window before its first anniversary.
        _near(today, -420, 60),
    )
    people = [
        Person(
            contact_id,
            draw(st.sampled_from(STATES)),
            birth=draw(births),
            effective=draw(effectives),
            carrier=draw(st.sampled_from(["Aetna", "cigna", ""])),
        )
        for contact_id in ids
    ]
    spread = draw(st.booleans())
    kind = CampaignType(
        "promo",
        respect_exclusion_windows=draw(st.booleans()),
        days_before_event=draw(st.integers(-30, 60)),
        target_all_contacts=draw(st.booleans()),
        spread_evenly=spread,
    )
    start = draw(_near(today, -90, 10))
    end = draw(_near(today, 0, 120))
    first = draw(_near(start, 0, 60))
    last = draw(_near(first, 0, 60))
    fields = {
        "active_start_date": start.isoformat(),
        "active_end_date": max(end, last).isoformat(),
        "target_states": draw(
            st.sampled_from([None, "ALL", "CA,NV,TX", "NY", "MO,TX"])
        ),
        "target_carriers": draw(st.sampled_from([None, "AETNA", "ALL"])),
    }
    if spread:
        fields["spread_start_date"] = first.isoformat()
        fields["spread_end_date"] = last.isoformat()
    triggers = st.lists(_near(today, -40, 120), min_size=1, max_size=2)
    enrolled = [
        (contact_id, 1, trigger.isoformat(), "pending")
        for contact_id in ids
        for trigger in draw(triggers)
    ]
    return people, campaigns([kind], [instance(**fields)], enrolled), today


Scenario = tuple[list[Person], Campaigns, dt.date]


def plan_of(
    scenario: Scenario,
    today: dt.date,
    existing: ExistingRows | None = None,
    vocabulary: Vocabulary | None = None,
) -> tuple[Plan, Vocabulary]:
    people, setup, _ = scenario
    vocabulary = vocabulary or Vocabulary()
    day = to_days(today)
    contacts, quality = build_contacts(
        contacts_table(people), day, DEFAULTS.suppressed_contact_statuses
    )
    rows = existing if existing is not None else as_rows(empty_plan(), vocabulary)
    inputs = Inputs(contacts, quality, rows, vocabulary, setup)
    return build_plan(inputs, DEFAULTS, day), vocabulary


def check(
    plan: Plan, vocabulary: Vocabulary, scenario: Scenario, today: dt.date
) -> None:
    people, setup, _ = scenario
    by_id = {p.id: p for p in people}
    day = to_days(today)
    assert (plan.send >= day).all(), "a send date before today"
    (spread_instance,) = setup.instances
    kind = setup.types["promo"]
    spread = spread_instance.spread if kind.spread_evenly else None
    for i in range(len(plan)):
        person = by_id[int(plan.contact_id[i])]
        send = from_days(int(plan.send[i]))
        email_type = vocabulary.kinds[int(plan.kind[i])][0]
        # A campaign's duty comes from its type, not from the plan's own flag.
        respects = (
            kind.respect_exclusion_windows
            if email_type == "campaign_promo"
            else plan.respects_windows[i]
        )
        if respects and not plan.skipped[i]:
            found = verdict(person, send, today)
            assert found is None, f"{email_type} of {person} on {send} in {found}"
        if email_type == "campaign_promo" and spread is not None:
            assert spread[0] <= send <= spread[1], f"{send} outside {spread}"


# An MO policy anniversary on 2027-03-01: its window, 2026-12-01..2027-04-03,
# holds the campaign's send date (the trigger) and withholds it.
MO_POLICY_EXAMPLE: Scenario = (
    [Person(1, "MO", None, dt.date(2020, 3, 1), "")],
    campaigns(
        [CampaignType("promo")],
        [instance(active_start_date="2027-01-01", active_end_date="2027-12-31")],
        [(1, 1, "2027-02-01", "pending")],
    ),
    dt.date(2027, 1, 10),
)


class TestCampaignPlans:
    @given(scenarios())
    @example(MO_POLICY_EXAMPLE)
    @PROPERTY
    def test_first_run(self, scenario: Scenario) -> None:
        today = scenario[2]
        plan, vocabulary = plan_of(scenario, today)
        check(plan, vocabulary, scenario, today)

    @given(scenarios(), st.integers(1, 40))
    @PROPERTY
    def test_later_run_over_the_written_plan(
        self, scenario: Scenario, later: int
    ) -> None:
        today = scenario[2]
        plan, vocabulary = plan_of(scenario, today)
        next_day = today + dt.timedelta(days=later)
        again, _ = plan_of(scenario, next_day, as_rows(plan, vocabulary), vocabulary)
        check(again, vocabulary, scenario, next_day)

    @given(scenarios())
    @PROPERTY
    def test_a_rerun_plans_the_same_rows(self, scenario: Scenario) -> None:
        today = scenario[2]
        plan, vocabulary = plan_of(scenario, today)
        again, _ = plan_of(scenario, today, as_rows(plan, vocabulary), vocabulary)
        assert np.array_equal(plan.send, again.send)
        assert np.array_equal(plan.skipped, again.skipped)
        assert np.array_equal(plan.kind, again.kind)


# -- an ended instance, through the real command ---------------------------


class Ending(NamedTuple):
    """A scenario whose instance ends after a first run, and what changes."""

    scenario: Scenario
    end: dt.date
    """The instance's new active end, before `later`."""
    later: dt.date
    moves: dict[int, tuple[str, str]]
    """New (state, status) of some contacts."""

    def person(self, contact_id: int) -> Person:
        """Return a contact as the later run sees it."""
        person = next(p for p in self.scenario[0] if p.id == contact_id)
        state = self.moves.get(contact_id, (person.state, ""))[0]
        return person._replace(state=state)

    def unreachable(self) -> set[int]:
        """Return the contacts whose new status suppresses every email."""
        return {i for i, (_, status) in self.moves.items() if status in SUPPRESSED}


@st.composite
def endings(draw: st.DrawFn) -> Ending:
    scenario = draw(scenarios())
    people, setup, today = scenario
    assume(setup.instances[0].active_on(today))
    later = draw(_near(today, 1, 30))
    end = draw(st.dates(today, later - dt.timedelta(days=1)))
    # Half the moves go to New York, whose year-round rule withholds any date.
    states = st.one_of(st.just("NY"), st.sampled_from(STATES))
    # Half the moved contacts keep their empty status; the others mostly
    # leave for good.
    statuses = st.one_of(st.just(""), st.sampled_from(["active", *SUPPRESSED]))
    moves = {
        p.id: (draw(states), draw(statuses)) for p in people if draw(st.booleans())
    }
    return Ending(scenario, end, later, moves)


def write_org(path: Path, scenario: Scenario) -> None:
    """Write a new org database holding a scenario's contacts and campaigns."""
    people, setup, _ = scenario
    assert cli("init", path).exit_code == 0
    kinds = [dataclasses.astuple(kind) for kind in setup.types.values()]
    type_columns = [spec.name for spec in dataclasses.fields(CampaignType)]
    instances = [
        (i.id, i.campaign_type, i.instance_name, i.email_template, i.sms_template)
        + tuple(
            _stored(day)
            for day in (i.active_start, i.active_end, i.spread_start, i.spread_end)
        )
        + (",".join(i.target_states), ",".join(i.target_carriers))
        for i in setup.instances
    ]
    found = setup.enrollments
    enrolled = [
        (int(contact), int(at), from_days(int(day)).isoformat(), ENROLLMENT_STATUSES[s])
        for contact, at, day, s in zip(
            found.contact_id, found.instance, found.trigger, found.status, strict=True
        )
    ]
    with connection(path) as conn:
        conn.executemany(
            "INSERT INTO contacts (id, email, state, birth_date, effective_date, "
            "carrier) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (p.id, f"c{p.id}@example.com", p.state)
                + (_stored(p.birth), _stored(p.effective), p.carrier)
                for p in people
            ],
        )
        conn.executemany(
            f"INSERT INTO campaign_types ({', '.join(type_columns)}) "
            f"VALUES ({', '.join('?' * len(type_columns))})",
            kinds,
        )
        conn.executemany(
            "INSERT INTO campaign_instances (id, campaign_type, instance_name, "
            "email_template, sms_template, active_start_date, active_end_date, "
            "spread_start_date, spread_end_date, target_states, target_carriers) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            instances,
        )
        # The table is unique on (contact, instance, trigger date), the
        # strategy is not.
        conn.executemany(
            "INSERT OR IGNORE INTO contact_campaigns (contact_id, "
            "campaign_instance_id, trigger_date, status) VALUES (?, ?, ?, ?)",
            enrolled,
        )


def end_and_move(path: Path, ending: Ending) -> None:
    """End the instance, send what was due, and move or suppress contacts."""
    with connection(path) as conn:
        conn.execute(
            "UPDATE campaign_instances SET active_end_date = ?",
            (ending.end.isoformat(),),
        )
        conn.executemany(
            "UPDATE contacts SET state = ?, status = ? WHERE id = ?",
            [(state, status, i) for i, (state, status) in ending.moves.items()],
        )
    send_due(path, ending.later - dt.timedelta(days=1))


def pending(rows: dict[int, Row], email_type: str | None = None) -> dict[int, Row]:
    """Return the pre-scheduled rows, of one email type if given."""
    return {
        i: row
        for i, row in rows.items()
        if row["status"] == "pre-scheduled" and email_type in (None, row["email_type"])
    }


def withheld(ending: Ending, row: Row) -> oracle.Verdict:
    """Return the window holding a row that respects windows, on the later day."""
    respects = ending.scenario[1].types["promo"].respect_exclusion_windows
    if row["email_type"] == "post_window":
        return None
    if row["email_type"] == "campaign_promo" and not respects:
        return None
    send = dt.date.fromisoformat(row["scheduled_send_date"])
    return verdict(ending.person(row["contact_id"]), send, ending.later)


def check_the_law(ending: Ending, after: dict[int, Row]) -> None:
    """No pending email of an unreachable contact, none inside a window."""
    unreachable = ending.unreachable()
    for row in pending(after).values():
        assert row["contact_id"] not in unreachable, f"pending for unreachable: {row}"
        found = withheld(ending, row)
        assert found is None, f"{row} inside {found}"


def check_left_as_planned(
    ending: Ending, before: dict[int, Row], after: dict[int, Row]
) -> None:
    """The ended instance's pending emails stay as they were, or are skipped
    for a window, or are gone with their unreachable contact."""
    frozen = {
        i: row
        for i, row in pending(before, "campaign_promo").items()
        if row["scheduled_send_date"] >= ending.later.isoformat()
    }
    for i, row in pending(after, "campaign_promo").items():
        assert i in frozen, f"the ended instance planned {row}"
        assert row["scheduled_send_date"] == frozen[i]["scheduled_send_date"]
    for i, row in frozen.items():
        if row["contact_id"] in ending.unreachable():
            continue
        now = after.get(i)
        if withheld(ending, row) is None:
            assert now == row, f"{row} is now {now}"
        else:
            assert now is not None, f"{row} is gone, not skipped"
            assert now["status"] == "skipped", now
            assert now["skip_reason"].startswith("exclusion window:"), now


# Three Texans with promo emails on Feb 1; the instance ends on Jan 20.
# By Jan 25 the first moved to New York and the second unsubscribed.
MOVED_EXAMPLE = Ending(
    (
        [Person(n, "TX", None, None, "") for n in (1, 2, 3)],
        campaigns(
            [CampaignType("promo")],
            [instance(active_start_date="2027-01-01", active_end_date="2027-03-31")],
            [(n, 1, "2027-02-01", "pending") for n in (1, 2, 3)],
        ),
        dt.date(2027, 1, 10),
    ),
    end=dt.date(2027, 1, 20),
    later=dt.date(2027, 1, 25),
    moves={1: ("NY", ""), 2: ("TX", "unsubscribed")},
)


class TestEndedInstance:
    """After an instance ends, a later run over the written plan leaves its
    pending emails as they are, unless the law says otherwise."""

    @given(endings())
    @example(MOVED_EXAMPLE)
    @settings(max_examples=80, deadline=None)
    def test_a_later_run_leaves_its_emails_but_the_law_wins(
        self, ending: Ending
    ) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "org.sqlite3"
            write_org(path, ending.scenario)
            run_json(path, ending.scenario[2])
            end_and_move(path, ending)
            before = schedules(path)
            run_json(path, ending.later)
            after = schedules(path)
        check_the_law(ending, after)
        check_left_as_planned(ending, before, after)


class TestCampaignValues:
    """Any value a user types is either stored in one canonical form or refused
    with CampaignError; nothing else escapes."""

    @given(st.sampled_from(INSTANCE_FIELDS), st.text(max_size=40))
    @PROPERTY
    def test_a_value_is_stored_canonically_or_refused(
        self, name: str, value: str
    ) -> None:
        try:
            stored = normalize(name, value)
        except CampaignError:
            return
        assert stored is None or isinstance(stored, str)
        assert normalize(name, stored) == stored

    @given(
        st.lists(
            st.one_of(st.none(), st.dates(dt.date(2026, 1, 1), dt.date(2028, 12, 31))),
            min_size=4,
            max_size=4,
        )
    )
    @PROPERTY
    def test_accepted_ranges_fit_together(self, days: list[dt.date | None]) -> None:
        record = {
            name: day.isoformat() if day else None
            for name, day in zip(DATE_FIELDS, days, strict=True)
        }
        try:
            check_ranges(record)
        except CampaignError:
            return
        start, end, first, last = days
        assert not (start and end) or start <= end
        assert (first is None) == (last is None)
        if first and last:
            assert first <= last
            assert start is None or start <= first
            assert end is None or last <= end
