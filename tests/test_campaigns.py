"""Tests of campaign planning (SPEC 7) through `run.build_plan`.

Each test builds a few contacts and campaign records, fixes today, and
reads the campaign emails of the plan back as plain tuples. Dates are
chosen away from birthdays and the AEP so that no other email competes
with a campaign email for its day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pytest

from email_scheduler.calendar import MISSING, from_days, to_days
from email_scheduler.config import Organization, Settings
from email_scheduler.contacts import build_contacts
from email_scheduler.pipeline import Inputs, build_plan
from email_scheduler.plan import Vocabulary
from email_scheduler.planners.campaigns import (
    NO_KNOWN_STATE,
    NO_STATE_FOR_UNIVERSAL,
    OTHER_CARRIERS,
    OTHER_STATES,
    enrollment_statuses,
)
from email_scheduler.planners.frozen import planned_kinds
from email_scheduler.store.campaigns import (
    ENROLLMENT_STATUSES,
    CampaignInstance,
    Campaigns,
    CampaignType,
    Enrollments,
    instance_of,
)
from email_scheduler.store.reader import ExistingRows

D = dt.date
TODAY = D(2027, 1, 10)
DEFAULTS = Settings()
WINDOW = "exclusion window:"


class Person(NamedTuple):
    id: int
    state: str = "TX"
    birth: str = ""
    carrier: str = ""
    phone: str = ""
    failed: str = ""
    zip_code: str = ""
    email: str = "someone@example.com"


class Email(NamedTuple):
    """A planned email, as the tests look at it."""

    contact_id: int
    email_type: str
    instance: int
    event: dt.date
    send: dt.date
    status: str
    reason: str = ""


def contacts_table(people: Sequence[Person]) -> pa.Table:
    columns = {
        "email": [p.email for p in people],
        "zip_code": [p.zip_code for p in people],
        "state": [p.state for p in people],
        "birth_date": [p.birth for p in people],
        "effective_date": [""] * len(people),
        "carrier": [p.carrier for p in people],
        "failed_underwriting": [p.failed for p in people],
        "phone_number": [p.phone for p in people],
        "status": [""] * len(people),
    }
    table = {"id": pa.array([p.id for p in people], pa.int64())}
    table |= {name: pa.array(values, pa.string()) for name, values in columns.items()}
    return pa.table(table)


def enrollments(rows: Sequence[tuple[int, int, str, str]]) -> Enrollments:
    """Return enrollments of (contact, instance, trigger date, status) rows."""

    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    return Enrollments(
        id=ints(list(range(1, len(rows) + 1))),
        contact_id=ints([r[0] for r in rows]),
        instance=ints([r[1] for r in rows]),
        trigger=ints(
            [to_days(D.fromisoformat(r[2])) if r[2] else int(MISSING) for r in rows]
        ),
        status=ints([ENROLLMENT_STATUSES.index(r[3]) for r in rows]),
    )


def campaigns(
    types: Sequence[CampaignType],
    instances: Sequence[CampaignInstance],
    enrolled: Sequence[tuple[int, int, str, str]] = (),
) -> Campaigns:
    return Campaigns(
        types={t.name: t for t in types},
        instances=tuple(instances),
        enrollments=enrollments(enrolled),
    )


def instance(
    id: int = 1,
    campaign_type: str = "promo",
    **fields: str | None,
) -> CampaignInstance:
    """Return an instance from stored text values, as the store would read it."""
    row: dict[str, str | int | None] = {
        "id": id,
        "campaign_type": campaign_type,
        "instance_name": f"instance {id}",
        "email_template": "promo_email",
        "sms_template": "promo_sms",
        "active_start_date": "2027-01-01",
        "active_end_date": "2027-12-31",
    }
    row.update(fields)
    return instance_of(row)


def no_rows(vocabulary: Vocabulary, rows: Sequence[Email] = ()) -> ExistingRows:
    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    n = len(rows)
    return ExistingRows(
        row_id=ints(list(range(1, n + 1))),
        contact_id=ints([r.contact_id for r in rows]),
        kind=ints([vocabulary.kind(r.email_type, r.instance) for r in rows]),
        event=ints([to_days(r.event) for r in rows]),
        event_year=ints([r.event.year for r in rows]),
        send=ints([to_days(r.send) for r in rows]),
        status=ints([vocabulary.code(r.status) for r in rows]),
        time=ints([vocabulary.code("08:30:00")] * n),
        reason=ints([vocabulary.code(r.reason) for r in rows]),
        priority=ints([-1] * n),
        email_template=ints([0] * n),
        sms_template=ints([0] * n),
        metadata=ints([0] * n),
        parent=ints([-1] * n),
        sent_at=ints([-1] * n),
    )


def plan_all(
    people: Sequence[Person],
    setup: Campaigns,
    today: dt.date = TODAY,
    settings: Settings = DEFAULTS,
    existing: Sequence[Email] = (),
) -> list[Email]:
    """Return every email of one run's plan, sorted."""
    vocabulary = Vocabulary()
    day = to_days(today)
    contacts, quality = build_contacts(
        contacts_table(people), day, settings.suppressed_contact_statuses
    )
    rows = no_rows(vocabulary, existing)
    plan = build_plan(Inputs(contacts, quality, rows, vocabulary, setup), settings, day)
    emails = [
        Email(
            contact_id=int(plan.contact_id[i]),
            email_type=vocabulary.kinds[int(plan.kind[i])][0],
            instance=vocabulary.kinds[int(plan.kind[i])][1],
            event=from_days(int(plan.event[i])),
            send=from_days(int(plan.send[i])),
            status="skipped" if plan.skipped[i] else "pre-scheduled",
            reason=vocabulary.strings[int(plan.reason[i])],
        )
        for i in range(len(plan))
    ]
    return sorted(emails)


def plan_campaigns(
    people: Sequence[Person],
    setup: Campaigns,
    today: dt.date = TODAY,
    settings: Settings = DEFAULTS,
    existing: Sequence[Email] = (),
) -> list[Email]:
    """Return the campaign emails of one run's plan, sorted."""
    emails = plan_all(people, setup, today, settings, existing)
    return [e for e in emails if e.email_type.startswith("campaign_")]


def post_window(emails: list[Email]) -> list[Email]:
    return [e for e in emails if e.email_type == "post_window"]


def org(**values: bool) -> Settings:
    return Settings(organization=Organization(**values))


PROMO = CampaignType("promo", days_before_event=14)
EVERYONE = CampaignType("promo", target_all_contacts=True)


class TestWhichInstancesPlan:
    @pytest.mark.parametrize(
        ("start", "end", "plans"),
        [
            ("2027-01-01", "2027-12-31", True),  # today inside the range
            ("2027-01-10", "2027-01-10", True),  # a one-day range on today
            ("2027-01-11", "2027-12-31", False),  # starts tomorrow
            ("2026-01-01", "2027-01-09", False),  # ended yesterday
            (None, None, True),  # both bounds open
            (None, "2027-01-10", True),  # open start, ends today
            ("2027-01-10", None, True),  # starts today, open end
        ],
    )
    def test_active_range_holds_today(
        self, start: str | None, end: str | None, plans: bool
    ) -> None:
        setup = campaigns(
            [PROMO],
            [instance(active_start_date=start, active_end_date=end)],
            [(1, 1, "2027-03-01", "pending")],
        )
        assert bool(plan_campaigns([Person(1)], setup)) is plans

    def test_inactive_type_plans_nothing(self) -> None:
        inactive = CampaignType("promo", days_before_event=14, active=False)
        setup = campaigns([inactive], [instance()], [(1, 1, "2027-03-01", "pending")])
        assert plan_campaigns([Person(1)], setup) == []

    def test_instance_of_a_deleted_type_plans_nothing(self) -> None:
        setup = campaigns([], [instance()], [(1, 1, "2027-03-01", "pending")])
        assert plan_campaigns([Person(1)], setup) == []

    @pytest.mark.parametrize(
        "fields",
        [
            {"active_end_date": "2027-02-30"},  # no such day
            {"spread_start_date": "2027-03-02", "spread_end_date": "2027-03-01"},
            {"target_states": "CA,XX"},  # XX is no state
            {"metadata": "{not json"},
            {"metadata": '{"trigger_date": "soon"}'},
        ],
    )
    def test_instance_with_unparseable_values_plans_nothing(
        self, fields: dict[str, str]
    ) -> None:
        broken = instance(**fields)
        assert broken.problems
        setup = campaigns([PROMO], [broken], [(1, 1, "2027-03-01", "pending")])
        assert plan_campaigns([Person(1)], setup) == []


class TestTargeting:
    @pytest.mark.parametrize(
        ("states", "carriers", "person", "reason"),
        [
            (None, None, Person(1, "TX", carrier="Aetna"), ""),
            ("", "", Person(1, "TX"), ""),  # empty lists restrict nothing
            ("ALL", "ALL", Person(1, "TX"), ""),
            ("all", "all", Person(1, "TX"), ""),  # ALL in any case
            ("CA,TX", None, Person(1, "TX"), ""),
            ("ca, tx", None, Person(1, "TX"), ""),  # codes in any case, spaces
            ("CA", None, Person(1, "TX"), OTHER_STATES),
            (None, "AETNA", Person(1, "TX", carrier="aetna"), ""),  # any case
            (None, "Aetna, Humana", Person(1, "TX", carrier="HUMANA "), ""),
            (None, "AETNA", Person(1, "TX", carrier="Cigna"), OTHER_CARRIERS),
            (None, "AETNA", Person(1, "TX"), OTHER_CARRIERS),  # no carrier
            ("TX", "AETNA", Person(1, "TX", carrier="Aetna"), ""),  # both match
            ("TX", "AETNA", Person(1, "TX", carrier="Cigna"), OTHER_CARRIERS),
            ("CA", "AETNA", Person(1, "TX", carrier="Aetna"), OTHER_STATES),
            ("CA", "AETNA", Person(1, "TX", carrier="Cigna"), OTHER_STATES),
        ],
    )
    def test_enrolled_contact(
        self, states: str | None, carriers: str | None, person: Person, reason: str
    ) -> None:
        setup = campaigns(
            [PROMO],
            [instance(target_states=states, target_carriers=carriers)],
            [(1, 1, "2027-03-01", "pending")],
        )
        (email,) = plan_campaigns([person], setup)
        assert email.reason == reason
        assert email.status == ("skipped" if reason else "pre-scheduled")

    def test_all_contacts_campaign_reaches_only_matching_contacts(self) -> None:
        people = [
            Person(1, "TX", carrier="Aetna"),
            Person(2, "CA", carrier="aetna"),
            Person(3, "TX", carrier="Cigna"),
            Person(4, "FL", carrier="AETNA"),
            Person(5, "TX", carrier="Aetna", email="not an email"),
            Person(6, "", carrier="Aetna"),  # unknown state: not universal
        ]
        setup = campaigns(
            [EVERYONE],
            [instance(target_states="TX,FL", target_carriers="Aetna")],
        )
        emails = plan_campaigns(people, setup)
        assert [(e.contact_id, e.status) for e in emails] == [
            (1, "pre-scheduled"),
            (4, "pre-scheduled"),
        ]

    def test_sent_enrollment_plans_nothing_but_others_of_any_status_do(self) -> None:
        enrolled = [
            (1, 1, "2027-03-01", "pending"),
            (2, 1, "2027-03-01", "scheduled"),
            (3, 1, "2027-03-01", "skipped"),
            (4, 1, "2027-03-01", "sent"),
        ]
        setup = campaigns([PROMO], [instance()], enrolled)
        people = [Person(i) for i in range(1, 5)]
        assert [e.contact_id for e in plan_campaigns(people, setup)] == [1, 2, 3]

    def test_enrollment_of_an_unknown_or_unreachable_contact_plans_nothing(
        self,
    ) -> None:
        enrolled = [(1, 1, "2027-03-01", "pending"), (9, 1, "2027-03-01", "pending")]
        setup = campaigns([PROMO], [instance()], enrolled)
        assert plan_campaigns([Person(1, email="")], setup) == []


class TestUniversalCampaigns:
    """A contact of unknown state has neither ZIP code nor state here."""

    @pytest.mark.parametrize(
        ("states", "carriers", "allowed", "reason"),
        [
            (None, None, True, ""),  # universal, org allows it
            ("ALL", "ALL", True, ""),  # ALL is no restriction
            (None, None, False, NO_STATE_FOR_UNIVERSAL),  # universal, org forbids it
            ("TX", None, True, NO_KNOWN_STATE),  # targeted by state
            (None, "Aetna", True, NO_KNOWN_STATE),  # targeted by carrier
        ],
    )
    def test_enrolled_contact_of_unknown_state(
        self, states: str | None, carriers: str | None, allowed: bool, reason: str
    ) -> None:
        setup = campaigns(
            [PROMO],
            [instance(target_states=states, target_carriers=carriers)],
            [(1, 1, "2027-03-01", "pending")],
        )
        settings = org(send_without_zipcode_for_universal=allowed)
        person = Person(1, state="", carrier="Aetna")
        (email,) = plan_campaigns([person], setup, settings=settings)
        assert email.reason == reason

    @pytest.mark.parametrize("allowed", [True, False])
    def test_all_contacts_campaign(self, allowed: bool) -> None:
        setup = campaigns([EVERYONE], [instance()])
        settings = org(send_without_zipcode_for_universal=allowed)
        people = [Person(1, "TX"), Person(2, state="")]
        emails = plan_campaigns(people, setup, settings=settings)
        assert [e.contact_id for e in emails] == ([1, 2] if allowed else [1])

    def test_a_contact_of_unknown_state_has_no_window(self) -> None:
        # Born in February: a CA contact would be inside a window on Jan 20.
        person = Person(1, state="", birth="1950-02-20")
        setup = campaigns(
            [CampaignType("promo", days_before_event=0)],
            [instance()],
            [(1, 1, "2027-01-20", "pending")],
        )
        (email,) = plan_campaigns([person], setup)
        assert (email.send, email.status) == (D(2027, 1, 20), "pre-scheduled")

    def test_a_contact_with_a_known_zip_code_has_a_state(self) -> None:
        person = Person(1, state="", zip_code="90210")  # Beverly Hills, CA
        setup = campaigns(
            [PROMO], [instance(target_states="CA")], [(1, 1, "2027-03-01", "pending")]
        )
        (email,) = plan_campaigns([person], setup, settings=org())
        assert email.status == "pre-scheduled"


SPREAD = CampaignType("promo", target_all_contacts=True, spread_evenly=True)
SEPTEMBER = {"spread_start_date": "2027-09-01", "spread_end_date": "2027-09-30"}


class TestSpread:
    @pytest.mark.parametrize(
        ("contact_id", "send"),
        [
            (30, D(2027, 9, 1)),  # 30 mod 30 = 0: the first day
            (1, D(2027, 9, 2)),
            (29, D(2027, 9, 30)),  # 29: the last day, both ends included
            (31, D(2027, 9, 2)),
            (60, D(2027, 9, 1)),
        ],
    )
    def test_send_date_is_spread_start_plus_id_modulo_days(
        self, contact_id: int, send: dt.date
    ) -> None:
        setup = campaigns([SPREAD], [instance(**SEPTEMBER)])
        (email,) = plan_campaigns([Person(contact_id)], setup)
        assert (email.event, email.send) == (D(2027, 9, 1), send)

    @pytest.mark.parametrize(
        ("first", "last", "contact_id", "send"),
        [
            ("2027-03-01", "2027-03-01", 7, D(2027, 3, 1)),  # a one-day range
            ("2027-03-01", "2027-03-02", 7, D(2027, 3, 2)),  # 2 days: 7 mod 2 = 1
            ("2027-03-01", "2027-03-31", 31, D(2027, 3, 1)),  # 31 days: 31 mod 31
            ("2027-03-01", "2027-03-31", 30, D(2027, 3, 31)),  # ... 30: last day
            ("2028-02-01", "2028-02-29", 28, D(2028, 2, 29)),  # leap February
            ("2027-12-30", "2028-01-02", 3, D(2028, 1, 2)),  # across New Year
        ],
    )
    def test_day_count_boundaries(
        self, first: str, last: str, contact_id: int, send: dt.date
    ) -> None:
        spread = instance(
            active_end_date="2028-12-31", spread_start_date=first, spread_end_date=last
        )
        setup = campaigns([SPREAD], [spread])
        (email,) = plan_campaigns([Person(contact_id)], setup)
        assert email.send == send

    def test_every_day_of_the_range_gets_its_share(self) -> None:
        people = [Person(i) for i in range(1, 301)]
        setup = campaigns([SPREAD], [instance(**SEPTEMBER)])
        emails = plan_campaigns(people, setup)
        days = {e.send for e in emails}
        assert len(emails) == 300
        assert days == {D(2027, 9, d) for d in range(1, 31)}
        counts = [sum(e.send == day for e in emails) for day in days]
        assert set(counts) == {10}

    def test_past_spread_dates_are_caught_up_before_the_spread_end(self) -> None:
        today = D(2027, 9, 20)
        people = [Person(i) for i in range(1, 61)]
        setup = campaigns([SPREAD], [instance(**SEPTEMBER)])
        emails = plan_campaigns(people, setup, today=today)
        assert len(emails) == 60
        for email in emails:
            ideal = D(2027, 9, 1) + dt.timedelta(days=email.contact_id % 30)
            if ideal >= today:
                assert email.send == ideal
            else:
                assert today <= email.send <= D(2027, 9, 30)

    def test_a_spread_that_ended_plans_nothing(self) -> None:
        setup = campaigns([SPREAD], [instance(**SEPTEMBER)])
        assert plan_campaigns([Person(1)], setup, today=D(2027, 10, 1)) == []

    def test_enrolled_contacts_spread_once_each(self) -> None:
        listed = CampaignType("promo", spread_evenly=True)
        enrolled = [(5, 1, "2027-03-01", "pending"), (5, 1, "2027-04-01", "pending")]
        setup = campaigns([listed], [instance(**SEPTEMBER)], enrolled)
        emails = plan_campaigns([Person(5)], setup)
        assert [(e.event, e.send) for e in emails] == [(D(2027, 9, 1), D(2027, 9, 6))]

    def test_spread_type_without_a_spread_range_uses_the_trigger(self) -> None:
        listed = CampaignType("promo", spread_evenly=True, days_before_event=3)
        setup = campaigns([listed], [instance()], [(5, 1, "2027-03-01", "pending")])
        (email,) = plan_campaigns([Person(5)], setup)
        assert (email.event, email.send) == (D(2027, 3, 1), D(2027, 2, 26))


class TestTriggerDate:
    @pytest.mark.parametrize(
        ("days_before", "send"),
        [
            (14, D(2027, 2, 15)),  # two weeks before the trigger
            (1, D(2027, 2, 28)),
            (0, D(2027, 3, 1)),  # on the trigger
            (-1, D(2027, 3, 2)),  # negative: after the trigger
            (-30, D(2027, 3, 31)),
        ],
    )
    def test_send_date_is_trigger_minus_days_before(
        self, days_before: int, send: dt.date
    ) -> None:
        kind = CampaignType("promo", days_before_event=days_before)
        setup = campaigns([kind], [instance()], [(1, 1, "2027-03-01", "pending")])
        (email,) = plan_campaigns([Person(1)], setup)
        assert (email.event, email.send) == (D(2027, 3, 1), send)

    @pytest.mark.parametrize(
        ("days_before", "trigger", "window"),
        [
            # Ideal date past, trigger ahead: caught up between today and T.
            (14, "2027-01-15", (TODAY, D(2027, 1, 15))),
            (30, "2027-01-10", (TODAY, TODAY)),  # T is today: today
            # Trigger past: an enrolled contact gets nothing.
            (14, "2027-01-09", None),
            (-3, "2027-01-05", None),  # after a past trigger, already past
            (0, "2026-12-01", None),
        ],
    )
    def test_catch_up_of_enrolled_contacts(
        self,
        days_before: int,
        trigger: str,
        window: tuple[dt.date, dt.date] | None,
    ) -> None:
        kind = CampaignType("promo", days_before_event=days_before)
        setup = campaigns(
            [kind],
            [instance(active_start_date="2026-11-01")],
            [(1, 1, trigger, "pending")],
        )
        emails = plan_campaigns([Person(1)], setup)
        if window is None:
            assert emails == []
        else:
            (email,) = emails
            assert window[0] <= email.send <= window[1]

    def test_after_trigger_email_still_ahead_is_planned(self) -> None:
        kind = CampaignType("promo", days_before_event=-7)
        setup = campaigns([kind], [instance()], [(1, 1, "2027-01-05", "pending")])
        (email,) = plan_campaigns([Person(1)], setup)
        assert email.send == D(2027, 1, 12)

    @pytest.mark.parametrize(
        ("fields", "event"),
        [
            ({}, D(2027, 1, 1)),  # the active start
            ({"metadata": '{"trigger_date": "2027-02-01"}'}, D(2027, 2, 1)),
        ],
    )
    def test_all_contacts_trigger(self, fields: dict[str, str], event: dt.date) -> None:
        setup = campaigns([EVERYONE], [instance(**fields)])
        (email,) = plan_campaigns([Person(1)], setup)
        assert email.event == event

    def test_all_contacts_campaign_catches_up_until_its_end(self) -> None:
        # The trigger (active start) passed; a contact added now still gets it.
        kind = CampaignType("promo", target_all_contacts=True, days_before_event=0)
        setup = campaigns([kind], [instance(active_end_date="2027-01-12")])
        (email,) = plan_campaigns([Person(1)], setup)
        assert TODAY <= email.send <= D(2027, 1, 12)

    def test_enrollment_without_trigger_date_plans_nothing(self) -> None:
        setup = campaigns([PROMO], [instance()], [(1, 1, "", "pending")])
        assert plan_campaigns([Person(1)], setup) == []

    def test_a_kept_catch_up_date_does_not_creep(self) -> None:
        setup = campaigns([PROMO], [instance()], [(1, 1, "2027-01-20", "pending")])
        first = plan_campaigns([Person(1)], setup)
        (email,) = first
        later = plan_campaigns([Person(1)], setup, existing=first)
        assert later == first
        tomorrow = plan_campaigns(
            [Person(1)], setup, today=TODAY + dt.timedelta(days=1), existing=first
        )
        assert [e.send for e in tomorrow] == [email.send] or email.send == TODAY


class TestWindows:
    # A CA contact born on March 20: window 2026-12-20 .. 2027-05-19.
    CA = Person(1, "CA", birth="1950-03-20")

    def test_window_withholds_a_campaign_that_respects_it(self) -> None:
        setup = campaigns([PROMO], [instance()], [(1, 1, "2027-02-15", "pending")])
        emails = plan_all([self.CA], setup)
        (email,) = [e for e in emails if e.email_type == "campaign_promo"]
        assert email.status == "skipped"
        assert email.reason == f"{WINDOW} CA birthday 2026-12-20..2027-05-19"
        post = [e for e in emails if e.email_type == "post_window"]
        assert [(e.event, e.send) for e in post] == [(D(2027, 5, 19), D(2027, 5, 20))]

    def test_no_post_window_email_when_the_org_disables_them(self) -> None:
        setup = campaigns([PROMO], [instance()], [(1, 1, "2027-02-15", "pending")])
        emails = plan_all(
            [self.CA], setup, settings=org(enable_post_window_emails=False)
        )
        assert not [e for e in emails if e.email_type == "post_window"]

    def test_campaign_that_ignores_windows_goes_out_inside_one(self) -> None:
        kind = CampaignType(
            "promo", days_before_event=14, respect_exclusion_windows=False
        )
        setup = campaigns([kind], [instance()], [(1, 1, "2027-02-15", "pending")])
        (email,) = plan_campaigns([self.CA], setup)
        assert (email.send, email.status) == (D(2027, 2, 1), "pre-scheduled")

    def test_year_round_state(self) -> None:
        setup = campaigns([PROMO], [instance()], [(1, 1, "2027-02-15", "pending")])
        (email,) = plan_campaigns([Person(1, "NY")], setup)
        assert email.reason == f"{WINDOW} NY year-round"

    # Sent on 2027-12-30, inside the next window: 2027-12-21 .. 2028-05-19.
    NEXT_WINDOW = (1, 1, "2028-01-13", "pending")

    def test_each_withholding_window_earns_its_post_window_email(self) -> None:
        setup = campaigns([PROMO], [instance()], [self.NEXT_WINDOW])
        emails = plan_all([self.CA], setup)
        (email,) = [e for e in emails if e.email_type == "campaign_promo"]
        assert email.reason == f"{WINDOW} CA birthday 2027-12-21..2028-05-19"
        # This year's birthday email earns the first, the campaign the second.
        assert [e.send for e in post_window(emails)] == [
            D(2027, 5, 20),
            D(2028, 5, 20),
        ]

    def test_untargeted_contact_inside_a_window_earns_no_post_window_email(
        self,
    ) -> None:
        setup = campaigns([PROMO], [instance(target_states="TX")], [self.NEXT_WINDOW])
        emails = plan_all([self.CA], setup)
        (email,) = [e for e in emails if e.email_type == "campaign_promo"]
        assert email.reason == OTHER_STATES
        assert [e.send for e in post_window(emails)] == [D(2027, 5, 20)]


AEP_TYPE = CampaignType("aep", target_all_contacts=True, spread_evenly=True)


class TestUnderwriting:
    @pytest.mark.parametrize(
        ("global_", "skip_type", "type_name", "failed", "status"),
        [
            (False, False, "promo", True, "pre-scheduled"),  # nothing excludes
            (False, True, "promo", True, "skipped"),  # the type skips them
            (True, False, "promo", True, "skipped"),  # the org skips them
            (True, True, "promo", True, "skipped"),
            (True, False, "aep", True, "pre-scheduled"),  # AEP is exempt
            (True, True, "aep", True, "skipped"),  # ... unless its type skips
            (True, True, "promo", False, "pre-scheduled"),  # not failed
        ],
    )
    def test_failed_underwriting(
        self, global_: bool, skip_type: bool, type_name: str, failed: bool, status: str
    ) -> None:
        kind = CampaignType(
            type_name,
            target_all_contacts=True,
            spread_evenly=True,
            skip_failed_underwriting=skip_type,
        )
        setup = campaigns([kind], [instance(campaign_type=type_name, **SEPTEMBER)])
        settings = org(exclude_failed_underwriting_global=global_)
        person = Person(1, failed="1" if failed else "0")
        (email,) = plan_campaigns([person], setup, settings=settings)
        assert email.status == status
        assert email.reason == ("failed underwriting" if status == "skipped" else "")

    def test_global_exclusion_spares_the_fixed_date_aep_too(self) -> None:
        settings = org(exclude_failed_underwriting_global=True)
        emails = plan_all(
            [Person(1, failed="yes")], campaigns([], []), settings=settings
        )
        (aep,) = [e for e in emails if e.email_type == "aep"]
        assert aep.status == "pre-scheduled"

    def test_type_skip_inside_a_window_earns_no_post_window_email(self) -> None:
        kind = CampaignType(
            "promo", days_before_event=14, skip_failed_underwriting=True
        )
        setup = campaigns([kind], [instance()], [TestWindows.NEXT_WINDOW])
        person = Person(1, "CA", birth="1950-03-20", failed="1")
        emails = plan_all([person], setup)
        (email,) = [e for e in emails if e.email_type == "campaign_promo"]
        assert email.reason == "failed underwriting"
        assert [e.send for e in post_window(emails)] == [D(2027, 5, 20)]


class TestIdentityAndContent:
    def test_email_carries_type_instance_priority_and_templates(self) -> None:
        vocabulary = Vocabulary()
        day = to_days(TODAY)
        people = [Person(1, phone="555-0100"), Person(2)]
        contacts, quality = build_contacts(
            contacts_table(people), day, DEFAULTS.suppressed_contact_statuses
        )
        kind = CampaignType("rate_increase", days_before_event=14, priority=3)
        setup = campaigns(
            [kind],
            [instance(7, "rate_increase")],
            [(1, 7, "2027-03-01", "pending"), (2, 7, "2027-03-01", "pending")],
        )
        inputs = Inputs(contacts, quality, no_rows(vocabulary), vocabulary, setup)
        plan = build_plan(inputs, DEFAULTS, day)
        rows = np.flatnonzero(plan.kind == vocabulary.kind("campaign_rate_increase", 7))
        text = vocabulary.strings
        assert [int(plan.contact_id[i]) for i in rows] == [1, 2]
        assert {int(plan.priority[i]) for i in rows} == {3}
        assert {text[int(plan.email_template[i])] for i in rows} == {"promo_email"}
        assert [text[int(plan.sms_template[i])] for i in rows] == ["promo_sms", ""]
        assert {from_days(int(plan.latest[i])) for i in rows} == {D(2027, 3, 1)}

    def test_two_instances_of_one_type_coexist(self) -> None:
        setup = campaigns(
            [PROMO],
            [instance(1), instance(2)],
            [(1, 1, "2027-03-01", "pending"), (1, 2, "2027-03-01", "pending")],
        )
        emails = plan_campaigns([Person(1)], setup)
        assert [(e.email_type, e.instance, e.event) for e in emails] == [
            ("campaign_promo", 1, D(2027, 3, 1)),
            ("campaign_promo", 2, D(2027, 3, 1)),
        ]

    def test_two_triggers_of_one_instance_are_two_emails(self) -> None:
        enrolled = [(1, 1, "2027-03-01", "pending"), (1, 1, "2027-06-01", "pending")]
        setup = campaigns([PROMO], [instance()], enrolled)
        emails = plan_campaigns([Person(1)], setup)
        assert [e.event for e in emails] == [D(2027, 3, 1), D(2027, 6, 1)]

    @pytest.mark.parametrize(
        ("kind", "latest"),
        [
            (CampaignType("promo", days_before_event=14), D(2027, 3, 1)),  # T
            (CampaignType("promo", days_before_event=0), D(2027, 3, 1)),  # T
            # After the trigger: its date plus the balancing lookahead (7).
            (CampaignType("promo", days_before_event=-5), D(2027, 3, 13)),
        ],
    )
    def test_latest_useful_date(self, kind: CampaignType, latest: dt.date) -> None:
        vocabulary = Vocabulary()
        day = to_days(TODAY)
        contacts, quality = build_contacts(
            contacts_table([Person(1)]), day, DEFAULTS.suppressed_contact_statuses
        )
        setup = campaigns([kind], [instance()], [(1, 1, "2027-03-01", "pending")])
        inputs = Inputs(contacts, quality, no_rows(vocabulary), vocabulary, setup)
        plan = build_plan(inputs, DEFAULTS, day)
        (row,) = np.flatnonzero(plan.kind == vocabulary.kind("campaign_promo", 1))
        assert from_days(int(plan.latest[row])) == latest


class TestAepCampaign:
    people = [Person(1), Person(2), Person(3)]

    def aep_types(self, emails: list[Email]) -> set[str]:
        return {e.email_type for e in emails if "aep" in e.email_type}

    @pytest.mark.parametrize(
        ("today", "fields", "replaced"),
        [
            # Active today, spread over September of this year's AEP.
            (D(2027, 8, 20), {**SEPTEMBER, "active_start_date": "2027-08-01"}, True),
            # Not active yet: the fixed-date AEP stays planned.
            (D(2027, 7, 20), {**SEPTEMBER, "active_start_date": "2027-08-01"}, False),
            # Active, spread range ends on September 1: overlaps.
            (
                D(2027, 8, 20),
                {"spread_start_date": "2027-08-20", "spread_end_date": "2027-09-01"},
                True,
            ),
            # Active, spread in October after the AEP's September: no overlap.
            (
                D(2027, 8, 20),
                {"spread_start_date": "2027-10-01", "spread_end_date": "2027-10-14"},
                False,
            ),
            # No spread range: the active range overlaps September.
            (
                D(2027, 8, 20),
                {"active_start_date": "2027-08-01", "active_end_date": "2027-09-05"},
                True,
            ),
        ],
    )
    def test_replaces_the_fixed_date_aep(
        self, today: dt.date, fields: dict[str, str], replaced: bool
    ) -> None:
        setup = campaigns([AEP_TYPE], [instance(campaign_type="aep", **fields)])
        emails = plan_all(self.people, setup, today=today)
        types = self.aep_types(emails)
        if replaced:
            assert types == {"campaign_aep"}
            assert len([e for e in emails if e.email_type == "campaign_aep"]) == 3
        else:
            assert "aep" in types

    def test_contact_already_sent_the_fixed_aep_gets_no_campaign_aep(self) -> None:
        today = D(2027, 9, 20)
        sent = Email(2, "aep", 0, D(2027, 10, 15), D(2027, 9, 15), "sent")
        setup = campaigns([AEP_TYPE], [instance(campaign_type="aep", **SEPTEMBER)])
        emails = plan_all(self.people, setup, today=today, existing=[sent])
        aep = [e for e in emails if "aep" in e.email_type]
        assert sorted((e.contact_id, e.email_type) for e in aep) == [
            (1, "campaign_aep"),
            (3, "campaign_aep"),
        ]

    def test_contact_already_sent_the_campaign_aep_gets_no_fixed_aep(self) -> None:
        # The campaign's instance was deleted after contact 2 received it.
        sent = Email(2, "campaign_aep", 1, D(2027, 9, 1), D(2027, 9, 1), "sent")
        emails = plan_all(
            self.people, campaigns([], []), today=D(2027, 9, 10), existing=[sent]
        )
        fixed = [e.contact_id for e in emails if e.email_type == "aep"]
        assert fixed == [1, 3]


def owns(setup: Campaigns, email_type: str, instance_id: int) -> bool:
    """Return whether a run plans every existing row of this kind."""
    vocabulary = Vocabulary()
    kind = vocabulary.kind(email_type, instance_id)
    return bool(planned_kinds(vocabulary, setup, to_days(TODAY))[kind])


class TestRowOwnership:
    """Which existing campaign rows a run may delete when the plan lacks them."""

    @pytest.mark.parametrize(
        ("types", "fields", "owned"),
        [
            ([PROMO], {}, True),  # active: the plan decides
            ([PROMO], {"active_end_date": "2027-01-09"}, False),  # ended: kept
            ([PROMO], {"active_start_date": "2027-02-01"}, True),  # not started
            ([], {}, True),  # type deleted: removed
            ([CampaignType("promo", active=False)], {}, True),  # deactivated
            (
                [CampaignType("promo", active=False)],
                {"active_end_date": "2027-01-09"},
                True,  # ended, but its type was deactivated: removed
            ),
            ([PROMO], {"target_states": "ZZ"}, False),  # unparseable: kept
        ],
    )
    def test_owned_rows(
        self, types: list[CampaignType], fields: dict[str, str], owned: bool
    ) -> None:
        setup = campaigns(types, [instance(**fields)])
        assert owns(setup, "campaign_promo", 1) is owned

    def test_rows_of_a_deleted_instance_and_other_types(self) -> None:
        setup = campaigns([PROMO], [instance()])
        assert owns(setup, "campaign_promo", 99)  # no such instance: removed
        assert owns(setup, "campaign_promo", 0)  # no instance at all
        assert owns(setup, "birthday", 0)  # every anniversary row is planned
        assert not owns(setup, "newsletter", 0)  # another system's email


class TestEnrollmentStatuses:
    def test_status_follows_the_planned_email(self) -> None:
        vocabulary = Vocabulary()
        day = to_days(TODAY)
        people = [
            Person(1),
            Person(2, "CA"),
            Person(3),
            Person(4),
            Person(5, email="not an email"),
        ]
        contacts, quality = build_contacts(
            contacts_table(people), day, DEFAULTS.suppressed_contact_statuses
        )
        enrolled = [
            (1, 1, "2027-03-01", "pending"),  # planned
            (2, 1, "2027-03-01", "pending"),  # outside the targeting
            (3, 1, "2027-03-01", "sent"),  # sent: never overwritten
            (4, 1, "2027-03-01", "scheduled"),  # unchanged
            (5, 1, "2027-03-01", "scheduled"),  # unreachable: gets nothing
            (9, 1, "2027-03-01", "pending"),  # no such contact: gets nothing
        ]
        setup = campaigns([PROMO], [instance(target_states="TX")], enrolled)
        inputs = Inputs(contacts, quality, no_rows(vocabulary), vocabulary, setup)
        plan = build_plan(inputs, DEFAULTS, day)
        ids, statuses = enrollment_statuses(
            setup, plan, inputs.existing, vocabulary, day
        )
        assert dict(
            zip(ids.tolist(), (ENROLLMENT_STATUSES[s] for s in statuses), strict=True)
        ) == {1: "scheduled", 2: "skipped", 5: "skipped", 6: "skipped"}
