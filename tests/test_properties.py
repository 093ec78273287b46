"""Properties of whole plans on random small contact sets, checked by the oracle.

The first promise of the product (SPEC 6.3) is checked against `oracle`, a
scalar re-implementation of the window rules that shares no code with the
engine: no window-respecting pre-scheduled email lies inside a window, and
every email skipped for a window does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle
from email_scheduler.calendar import from_days, to_days
from email_scheduler.config import Settings
from email_scheduler.contacts import build_contacts
from email_scheduler.pipeline import Inputs, build_plan
from email_scheduler.plan import Plan, Vocabulary
from email_scheduler.store.reader import ExistingRows

DEFAULTS = Settings()
ANNIVERSARY = ("birthday", "effective_date", "aep")
RULE_STATES = sorted({rule.state for rule in DEFAULTS.state_rules})
STATES = [*RULE_STATES, "TX", "FL", "ca", "ZZ", ""]
WINDOW = "exclusion window:"

PROPERTY = settings(max_examples=60, deadline=None)


@dataclass(frozen=True)
class Person:
    id: int
    state: str
    birth: dt.date | None
    effective: dt.date | None


def _text(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


def contacts_table(people: list[Person]) -> pa.Table:
    n = len(people)
    text = {
        "email": [f"c{p.id}@example.com" for p in people],
        "zip_code": [""] * n,
        "state": [p.state for p in people],
        "birth_date": [_text(p.birth) for p in people],
        "effective_date": [_text(p.effective) for p in people],
        "carrier": [""] * n,
        "failed_underwriting": [""] * n,
        "phone_number": [""] * n,
        "status": [""] * n,
    }
    columns = {"id": pa.array([p.id for p in people], pa.int64())}
    columns |= {name: pa.array(values, pa.string()) for name, values in text.items()}
    return pa.table(columns)


def no_rows() -> ExistingRows:
    empty = np.zeros(0, dtype=np.int64)
    return ExistingRows(*(empty for _ in fields(ExistingRows)))


def inputs_of(people: list[Person], today: int) -> Inputs:
    """Return the inputs of a run over `people` with no rows written yet."""
    table = contacts_table(people)
    statuses = DEFAULTS.suppressed_contact_statuses
    contacts, quality = build_contacts(table, today, statuses)
    return Inputs(contacts, quality, no_rows(), Vocabulary())


def as_rows(plan: Plan, vocabulary: Vocabulary) -> ExistingRows:
    """Return a plan as the rows a write of it would leave in the table."""
    ints = np.arange(1, len(plan) + 1, dtype=np.int64)
    pre, skipped = vocabulary.code("pre-scheduled"), vocabulary.code("skipped")
    return ExistingRows(
        row_id=ints,
        contact_id=plan.contact_id,
        kind=plan.kind,
        event=plan.event,
        event_year=np.array([from_days(int(e)).year for e in plan.event], np.int64),
        send=plan.send,
        status=np.where(plan.skipped, skipped, pre).astype(np.int64),
        time=np.zeros(len(plan), dtype=np.int64),
        reason=plan.reason,
        priority=plan.priority,
        email_template=plan.email_template,
        sms_template=plan.sms_template,
        metadata=plan.metadata,
        parent=np.full(len(plan), -1, dtype=np.int64),
        sent_at=np.full(len(plan), -1, dtype=np.int64),
    )


def resolved_state(person: Person) -> str | None:
    """Return the state the oracle should use (no ZIP codes here)."""
    code = person.state.upper()
    return code if code and code != "ZZ" else None


def oracle_verdict(person: Person, day: dt.date, today: dt.date) -> oracle.Verdict:
    birth = person.birth if person.birth and person.birth <= today else None
    return oracle.exclusion(resolved_state(person), birth, person.effective, day)


def reason_of(verdict: oracle.Verdict, state: str | None) -> str:
    """Return the skip reason the SPEC prescribes for an oracle verdict."""
    assert verdict is not None
    if verdict == oracle.YEAR_ROUND:
        return f"{WINDOW} {state} year-round"
    start, end = verdict
    rule = next(r for r in DEFAULTS.state_rules if r.state == state)
    return f"{WINDOW} {state} {rule.rule} {start.isoformat()}..{end.isoformat()}"


# -- strategies -------------------------------------------------------------

LEAP_DAYS = [dt.date(year, 2, 29) for year in (1940, 1952, 1964, 2000, 2020, 2024)]
births = st.one_of(
    st.none(),
    st.sampled_from(LEAP_DAYS),
    st.dates(dt.date(1930, 1, 1), dt.date(2031, 12, 31)),
)
effectives = st.one_of(
    st.none(),
    st.sampled_from(LEAP_DAYS),
    st.dates(dt.date(2015, 1, 1), dt.date(2031, 12, 31)),
)
todays = st.one_of(
    st.dates(dt.date(2024, 1, 1), dt.date(2030, 12, 31)),
    st.sampled_from([dt.date(2027, 12, 31), dt.date(2028, 1, 1), dt.date(2028, 2, 29)]),
)


def _near(today: dt.date, low: int, high: int) -> st.SearchStrategy[dt.date]:
    return st.integers(low, high).map(lambda days: today + dt.timedelta(days=days))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Person], dt.date]:
    """Return a few contacts and a today; many dates fall close to today."""
    today = draw(todays)
    # A birthday within weeks of today, in a year of birth from 1930 to 1965.
    near_birthday = st.tuples(_near(today, -120, 120), st.integers(1930, 1965)).map(
        lambda pair: oracle.anniversary(pair[0], pair[1])
    )
    birth = st.one_of(births, near_birthday)
    # A policy from about two years before today to a year after.
    effective = st.one_of(effectives, _near(today, -800, 400))
    count = draw(st.integers(1, 8))
    ids = st.lists(st.integers(1, 10**6), min_size=count, max_size=count, unique=True)
    crowd = [
        Person(i, draw(st.sampled_from(STATES)), draw(birth), draw(effective))
        for i in draw(ids)
    ]
    return crowd, today


# -- checks -----------------------------------------------------------------


def check_windows(
    plan: Plan, vocabulary: Vocabulary, crowd: list[Person], today: dt.date
) -> None:
    by_id = {p.id: p for p in crowd}
    for i in range(len(plan)):
        person = by_id[int(plan.contact_id[i])]
        send = from_days(int(plan.send[i]))
        verdict = oracle_verdict(person, send, today)
        reason = vocabulary.strings[int(plan.reason[i])]
        label = f"{vocabulary.kinds[int(plan.kind[i])][0]} of {person} on {send}"
        if plan.respects_windows[i] and not plan.skipped[i]:
            assert verdict is None, f"{label} is pre-scheduled inside {verdict}"
        if plan.skipped[i] and reason.startswith(WINDOW):
            assert verdict is not None, f"{label} skipped outside any window"
            assert reason == reason_of(verdict, resolved_state(person)), label


def check_dates(plan: Plan, vocabulary: Vocabulary, today: dt.date) -> None:
    day = to_days(today)
    types = [vocabulary.kinds[int(k)][0] for k in plan.kind]
    assert (plan.send >= day).all(), "a send date before today"
    for i, email_type in enumerate(types):
        if email_type in ANNIVERSARY:
            assert plan.event[i] >= day, f"{email_type} event before today"
            assert plan.send[i] <= plan.event[i], f"{email_type} sent after its event"


def check_post_window(
    plan: Plan, vocabulary: Vocabulary, crowd: list[Person], today: dt.date
) -> None:
    """A post-window email goes out after its window, never inside a dated one."""
    by_id = {p.id: p for p in crowd}
    dated = tuple(r for r in DEFAULTS.state_rules if r.rule != "year_round")
    for i in np.flatnonzero(~plan.respects_windows):
        assert vocabulary.kinds[int(plan.kind[i])][0] == "post_window"
        person = by_id[int(plan.contact_id[i])]
        birth = person.birth if person.birth and person.birth <= today else None
        send = from_days(int(plan.send[i]))
        assert plan.send[i] > plan.event[i]
        found = oracle.exclusion(
            resolved_state(person), birth, person.effective, send, dated
        )
        assert found is None, f"post-window email of {person} on {send} in {found}"


# -- properties -------------------------------------------------------------

Scenario = tuple[list[Person], dt.date]


def first_plan(scenario: Scenario) -> tuple[Plan, Vocabulary]:
    crowd, today = scenario
    inputs = inputs_of(crowd, to_days(today))
    return build_plan(inputs, DEFAULTS, to_days(today)), inputs.vocabulary


def events_of(
    plan: Plan, vocabulary: Vocabulary, email_type: str
) -> dict[int, dt.date]:
    kind = vocabulary.kind(email_type)
    return {
        int(plan.contact_id[i]): from_days(int(plan.event[i]))
        for i in np.flatnonzero(plan.kind == kind)
    }


class TestWindowInvariant:
    @given(scenarios())
    @PROPERTY
    def test_first_run(self, scenario: Scenario) -> None:
        crowd, today = scenario
        plan, vocabulary = first_plan(scenario)
        check_windows(plan, vocabulary, crowd, today)
        check_post_window(plan, vocabulary, crowd, today)

    @given(scenarios(), st.integers(1, 45))
    @PROPERTY
    def test_later_run_over_written_plan(self, scenario: Scenario, later: int) -> None:
        """Kept and moved dates of a later run respect the windows as well."""
        crowd, today = scenario
        plan, vocabulary = first_plan(scenario)
        next_day = today + dt.timedelta(days=later)
        fresh = inputs_of(crowd, to_days(next_day))
        # The written rows carry codes of the first run's vocabulary.
        written = as_rows(plan, vocabulary)
        second = Inputs(fresh.contacts, fresh.quality, written, vocabulary)
        again = build_plan(second, DEFAULTS, to_days(next_day))
        check_windows(again, vocabulary, crowd, next_day)
        check_dates(again, vocabulary, next_day)
        check_post_window(again, vocabulary, crowd, next_day)


class TestDates:
    @given(scenarios())
    @PROPERTY
    def test_nothing_before_today(self, scenario: Scenario) -> None:
        plan, vocabulary = first_plan(scenario)
        check_dates(plan, vocabulary, scenario[1])

    @given(scenarios())
    @PROPERTY
    def test_events_are_the_next_anniversaries(self, scenario: Scenario) -> None:
        crowd, today = scenario
        plan, vocabulary = first_plan(scenario)
        reached = [p for p in crowd if resolved_state(p)]
        birthdays = {
            p.id: oracle.next_anniversary(p.birth, today)
            for p in reached
            if p.birth and p.birth <= today
        }
        policies = {}
        for p in reached:
            if p.effective is None:
                continue
            event = oracle.next_anniversary(p.effective, today)
            ideal = event - dt.timedelta(days=30)
            # The effective date itself is no anniversary; 11 months default.
            old_enough = oracle.months_elapsed(p.effective, ideal) >= 11
            if event.year > p.effective.year and old_enough:
                policies[p.id] = event
        assert events_of(plan, vocabulary, "birthday") == birthdays
        assert events_of(plan, vocabulary, "effective_date") == policies


class TestDeterminism:
    @given(scenarios())
    @PROPERTY
    def test_same_inputs_same_plan(self, scenario: Scenario) -> None:
        crowd, today = scenario
        inputs = inputs_of(crowd, to_days(today))
        first = build_plan(inputs, DEFAULTS, to_days(today))
        again = build_plan(inputs, DEFAULTS, to_days(today))
        for column in fields(Plan):
            left, right = getattr(first, column.name), getattr(again, column.name)
            assert np.array_equal(left, right), column.name

    @given(scenarios())
    @PROPERTY
    def test_fresh_inputs_same_rows(self, scenario: Scenario) -> None:
        def rows() -> list[tuple[object, ...]]:
            plan, vocabulary = first_plan(scenario)
            return [
                (
                    int(plan.contact_id[i]),
                    vocabulary.kinds[int(plan.kind[i])],
                    int(plan.event[i]),
                    int(plan.send[i]),
                    bool(plan.skipped[i]),
                    vocabulary.strings[int(plan.reason[i])],
                    int(plan.priority[i]),
                )
                for i in range(len(plan))
            ]

        assert rows() == rows()
