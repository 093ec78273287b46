"""Properties of campaign plans on random contacts and campaigns.

The window promise (SPEC 6.3) is checked against `oracle`, the scalar
re-implementation of the window rules: no pre-scheduled email that
respects windows, campaign or not, lies inside one of its contact's
windows. Spread campaigns stay inside their spread range and never send
before today, on a first run and on a later run over the written plan.
Values given to the campaign commands are stored canonically or refused.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle
from email_scheduler.calendar import from_days, to_days
from email_scheduler.campaigns import (
    DATE_FIELDS,
    INSTANCE_FIELDS,
    check_ranges,
    normalize,
)
from email_scheduler.config import Settings
from email_scheduler.contacts import build_contacts
from email_scheduler.errors import CampaignError
from email_scheduler.pipeline import Inputs, build_plan
from email_scheduler.plan import Plan, Vocabulary, empty_plan
from email_scheduler.store.campaigns import Campaigns, CampaignType
from email_scheduler.store.reader import ExistingRows
from test_campaigns import Person, campaigns, contacts_table, instance
from test_properties import as_rows

DEFAULTS = Settings()
PROPERTY = settings(max_examples=60, deadline=None)
STATES = ["CA", "NV", "MO", "NY", "ID", "TX", "FL", ""]


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
    people = []
    for contact_id in ids:
        birth = draw(births)
        people.append(
            Person(
                contact_id,
                draw(st.sampled_from(STATES)),
                birth=birth.isoformat() if birth else "",
                carrier=draw(st.sampled_from(["Aetna", "cigna", ""])),
            )
        )
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
        "target_states": draw(st.sampled_from([None, "ALL", "CA,NV,TX", "NY"])),
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
            state = person.state or None
            birth = dt.date.fromisoformat(person.birth) if person.birth else None
            birth = birth if birth and birth <= today else None
            found = oracle.exclusion(state, birth, None, send)
            assert found is None, f"{email_type} of {person} on {send} in {found}"
        if email_type == "campaign_promo" and spread is not None:
            assert spread[0] <= send <= spread[1], f"{send} outside {spread}"


class TestCampaignPlans:
    @given(scenarios())
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
