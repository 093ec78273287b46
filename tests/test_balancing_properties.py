"""Properties of constrained and balanced plans on random small orgs.

Each example draws a few contacts whose birthdays and policy anniversaries
cluster around one to three dates, some rows the sender already holds, a
today, and load-balancing settings with a cap of 1 to 5 so that balancing
really moves emails. Two orgs in three also run campaigns whose send
dates fall on the same clusters: enrolled or all-contacts, spread or on a
trigger (before or after it), respecting windows or not. The checks recount
everything from the drawn inputs: windows with the scalar `oracle`, one
email a day and the frequency limit by walking each contact's dates.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oracle
from email_scheduler.calendar import from_days, to_days
from email_scheduler.config import Settings
from email_scheduler.constraints.balancing import (
    enforce_daily_cap,
    smooth_effective_dates,
)
from email_scheduler.constraints.occupancy import MoveCheck
from email_scheduler.contacts import build_contacts
from email_scheduler.pipeline import (
    Context,
    Inputs,
    build_plan,
    constrain,
    plan_emails,
)
from email_scheduler.plan import Plan, Vocabulary
from email_scheduler.store.campaigns import (
    EMAIL_TYPE_PREFIX,
    Campaigns,
    CampaignType,
)
from test_anniversary import existing_rows
from test_campaigns import campaigns, instance
from test_properties import (
    STATES,
    Person,
    contacts_table,
    oracle_verdict,
    resolved_state,
)

PROPERTY = settings(max_examples=60, deadline=None)
HELD = ("scheduled", "processing", "sent", "delivered")
ANNIVERSARY = ("birthday", "effective_date", "aep")
DATED_RULES = tuple(r for r in Settings().state_rules if r.rule != "year_round")


class Row(NamedTuple):
    """A row of `email_schedules`: held by the sender, skipped, or written."""

    contact_id: int
    email_type: str
    event: dt.date | None
    send: dt.date
    status: str = "pre-scheduled"
    reason: str = ""
    instance: int = 0
    """The campaign instance of a campaign email, else 0."""


@dataclass(frozen=True)
class Org:
    people: list[Person]
    held: list[Row]
    """Rows already in email_schedules (held by the sender, skipped, or
    written by an earlier run)."""
    today: dt.date
    settings: Settings
    campaigns: Campaigns = field(default_factory=Campaigns)

    def goes_out(self, row: Row) -> bool:
        """Return whether a run leaves `row` to go out as it is.

        Besides what the sender holds, that is a pending email of an
        instance that has ended: it goes out as planned.
        """
        if row.status in HELD:
            return True
        ended = {i.id for i in self.campaigns.instances if i.ended_by(self.today)}
        pending = row.status == "pre-scheduled" and row.send >= self.today
        return pending and row.instance in ended

    def respects_windows(self, email_type: str) -> bool:
        """Return whether SPEC 6.3 has emails of this type respect windows."""
        if email_type == "post_window":
            return False
        kind = self.campaigns.types.get(email_type.removeprefix(EMAIL_TYPE_PREFIX))
        if email_type.startswith(EMAIL_TYPE_PREFIX) and kind is not None:
            return kind.respect_exclusion_windows
        return True


def is_follow_up(email_type: str) -> bool:
    return email_type.startswith("followup_")


def as_rows(plan: Plan, vocabulary: Vocabulary) -> list[Row]:
    """Return a plan as the rows a write of it would leave in the table."""
    return [
        Row(
            contact_id=int(plan.contact_id[i]),
            email_type=vocabulary.kinds[int(plan.kind[i])][0],
            event=from_days(int(plan.event[i])),
            send=from_days(int(plan.send[i])),
            status="skipped" if plan.skipped[i] else "pre-scheduled",
            reason=vocabulary.strings[int(plan.reason[i])],
            instance=vocabulary.kinds[int(plan.kind[i])][1],
        )
        for i in range(len(plan))
    ]


# -- strategies -------------------------------------------------------------


def _shift(day: dt.date, days: int) -> dt.date:
    return day + dt.timedelta(days=days)


Near = Callable[[int], st.SearchStrategy[dt.date]]
"""Dates near the clusters, given how many days before them the email goes."""


@st.composite
def campaign_setups(
    draw: st.DrawFn, today: dt.date, near_cluster: Near, count: int
) -> Campaigns:
    """Return one or two campaign types with one or two instances each."""
    names = st.lists(st.sampled_from(["promo", "rates"]), min_size=1, unique=True)
    kinds, instances, enrolled = [], [], []
    for name in draw(names):
        kind = CampaignType(
            name,
            respect_exclusion_windows=draw(st.booleans()),
            days_before_event=draw(st.integers(-20, 30)),
            target_all_contacts=draw(st.booleans()),
            # Between and around the anniversary emails' 10, 20, 30 and 40.
            priority=draw(st.sampled_from([5, 15, 35, 50])),
            spread_evenly=draw(st.booleans()),
        )
        kinds.append(kind)
        for _ in range(draw(st.integers(1, 2))):
            number = len(instances) + 1
            first = draw(near_cluster(0))
            last = _shift(first, draw(st.integers(0, 10)))
            start = min(first, _shift(today, draw(st.integers(-60, 3))))
            end = max(last, _shift(today, draw(st.integers(-5, 120))))
            trigger = draw(near_cluster(kind.days_before_event))
            values = {
                "active_start_date": start.isoformat(),
                "active_end_date": end.isoformat(),
                "target_states": draw(st.sampled_from([None, "CA,MO,NY,TX", "NV"])),
                "metadata": f'{{"trigger_date": "{trigger.isoformat()}"}}',
            }
            if kind.spread_evenly and draw(st.booleans()):
                values["spread_start_date"] = first.isoformat()
                values["spread_end_date"] = last.isoformat()
            instances.append(instance(number, name, **values))
            for contact in draw(st.sets(st.integers(1, count), min_size=1)):
                day = draw(near_cluster(kind.days_before_event))
                enrolled.append((contact, number, day.isoformat(), "pending"))
    return campaigns(kinds, instances, enrolled)


@st.composite
def orgs(draw: st.DrawFn) -> Org:
    today = draw(st.dates(dt.date(2025, 1, 1), dt.date(2029, 12, 31)))
    # Ideal send dates cluster on these days (a few days either side).
    clusters = draw(st.lists(st.integers(-20, 380), min_size=1, max_size=3))

    def near_cluster(before_event: int) -> st.SearchStrategy[dt.date]:
        return st.tuples(st.sampled_from(clusters), st.integers(0, 3)).map(
            lambda pair: _shift(today, pair[0] + pair[1] + before_event)
        )

    birth = st.one_of(
        st.none(),
        st.tuples(near_cluster(14), st.integers(1930, 1960)).map(
            lambda pair: oracle.anniversary(pair[0], pair[1])
        ),
    )
    effective = st.one_of(
        st.none(),
        st.tuples(near_cluster(30), st.integers(1, 6)).map(
            lambda pair: oracle.anniversary(pair[0], pair[0].year - pair[1])
        ),
    )
    count = draw(st.integers(1, 24))
    people = [
        Person(n, draw(st.sampled_from(STATES)), draw(birth), draw(effective))
        for n in range(1, count + 1)
    ]
    held = []
    for _ in range(draw(st.integers(0, 6))):
        email_type = draw(
            st.sampled_from(["campaign_news", "followup_1_cold", "birthday", "aep"])
        )
        day = _shift(today, draw(st.integers(-40, 30)))
        event = _shift(day, draw(st.integers(0, 30)))
        status = draw(st.sampled_from([*HELD, "skipped"]))
        contact = draw(st.integers(1, count))
        held.append(Row(contact, email_type, event, day, status))
    rules = {
        "daily_send_percentage_cap": 0.001,
        "daily_cap_floor": draw(st.integers(1, 5)),
        "ed_daily_soft_limit": draw(st.integers(1, 4)),
        "ed_smoothing_window_days": draw(st.integers(1, 7)),
        "overage_threshold": draw(st.sampled_from([1.0, 1.2, 1.5])),
        "cap_lookahead_days": draw(st.integers(0, 7)),
    }
    frequency = {
        "max_emails_per_period": draw(st.integers(1, 3)),
        "period_days": draw(st.integers(1, 40)),
    }
    chosen = Settings.model_validate({"load_balancing": rules, "frequency": frequency})
    # Two orgs in three run campaigns.
    with_campaigns = draw(st.sampled_from([False, True, True]))
    setup = (
        draw(campaign_setups(today, near_cluster, count))
        if with_campaigns
        else Campaigns()
    )
    return Org(people, held, today, chosen, setup)


# -- running ----------------------------------------------------------------


def inputs_of(org: Org) -> Inputs:
    vocabulary = Vocabulary()
    table = contacts_table(org.people)
    statuses = org.settings.suppressed_contact_statuses
    contacts, quality = build_contacts(table, to_days(org.today), statuses)
    existing = existing_rows(org.held, vocabulary)
    return Inputs(contacts, quality, existing, vocabulary, org.campaigns)


@dataclass(frozen=True)
class Stages:
    """A run's plan after each stage, with what the stages counted."""

    org: Org
    vocabulary: Vocabulary
    context: Context
    constrained: Plan
    smoothed: Plan
    balanced: Plan
    tally: Counter[str]

    def types(self) -> list[str]:
        return [self.vocabulary.kinds[int(k)][0] for k in self.balanced.kind]


def stages(org: Org) -> Stages:
    inputs = inputs_of(org)
    vocabulary = inputs.vocabulary
    context = Context.of(inputs, org.settings, to_days(org.today))
    tally: Counter[str] = Counter()
    constrained = constrain(context, plan_emails(context), tally)
    check = MoveCheck(
        constrained,
        inputs.contacts.state,
        context.dates,
        context.rules,
        org.settings,
        vocabulary,
        context.committed,
        context.today,
    )
    limits = context.limits
    smoothed = smooth_effective_dates(
        constrained, check, limits, context.committed, org.settings, vocabulary, tally
    )
    balanced = enforce_daily_cap(
        smoothed, check, limits, context.committed, org.settings, vocabulary, tally
    )
    return Stages(org, vocabulary, context, constrained, smoothed, balanced, tally)


def held_days(org: Org) -> dict[int, list[int]]:
    """Return each contact's days of non-follow-up emails that go out anyway."""
    days: dict[int, list[int]] = defaultdict(list)
    for row in org.held:
        if org.goes_out(row) and not is_follow_up(row.email_type):
            days[row.contact_id].append(to_days(row.send))
    return days


def going_days(plan: Plan, vocabulary: Vocabulary) -> dict[int, list[int]]:
    """Return each contact's days of planned non-follow-up emails."""
    days: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(~plan.skipped):
        if not is_follow_up(vocabulary.kinds[int(plan.kind[i])][0]):
            days[int(plan.contact_id[i])].append(int(plan.send[i]))
    return days


def crowded_windows(
    plan: Plan, vocabulary: Vocabulary, org: Org
) -> set[tuple[int, int]]:
    """Return (contact, window start) of windows holding a planned email and
    more than the limit of emails."""
    limit = org.settings.frequency.max_emails_per_period
    period = org.settings.frequency.period_days
    held = held_days(org)
    found = set()
    for contact, planned in going_days(plan, vocabulary).items():
        every = planned + held.get(contact, [])
        for day in planned:
            for start in range(day - period + 1, day + 1):
                inside = sum(start <= d < start + period for d in every)
                if inside > limit:
                    found.add((contact, start))
    return found


def held_load(org: Org) -> Counter[int]:
    """Return the emails that go out anyway per day, follow-ups included."""
    return Counter(to_days(r.send) for r in org.held if org.goes_out(r))


def load(plan: Plan, org: Org) -> Counter[int]:
    """Return the emails going out per day: planned and held by the sender."""
    return Counter(plan.send[~plan.skipped].tolist()) + held_load(org)


# Counterexamples Hypothesis found, kept so that they run every time.


def _org(
    people: list[Person], held: list[Row], today: dt.date, **sections: object
) -> Org:
    return Org(people, held, today, Settings.model_validate(sections))


CAP_OF_ONE = {
    "daily_send_percentage_cap": 0.001,
    "daily_cap_floor": 1,
    "ed_smoothing_window_days": 1,
    "overage_threshold": 1.0,
    "cap_lookahead_days": 2,
}
# The effective-date email (Sep 16) is accepted first; the post-window email
# of the day before shares a 2-day window with it.
FREQUENCY_EXAMPLE = _org(
    [Person(1, "CA", None, dt.date(2024, 10, 16))],
    [],
    dt.date(2025, 3, 1),
    frequency={"max_emails_per_period": 1, "period_days": 2},
)
# Contact 1's post-window email is due Jan 8, the day of a follow-up the
# sender holds: two emails on a day with a cap of 1, none reported left over.
HELD_FOLLOW_UP_EXAMPLE = _org(
    [
        Person(1, "CA", dt.date(1930, 11, 8), None),
        *(Person(n, "CA", None, None) for n in (2, 3, 4)),
        Person(5, "CA", dt.date(1930, 11, 5), None),
    ],
    [Row(1, "followup_1_cold", dt.date(2025, 1, 8), dt.date(2025, 1, 8), "scheduled")],
    dt.date(2025, 1, 1),
    frequency={"max_emails_per_period": 1, "period_days": 1},
    load_balancing=CAP_OF_ONE,
)
# The sender holds two emails for the day after the plan's last day, which
# lies within the lookahead: balancing that day once ran off its table.
SENDER_CROWDS_THE_LAST_DAY_EXAMPLE = _org(
    [Person(1, "CA", None, None)],
    [
        Row(1, "campaign_news", dt.date(2025, 10, 2), dt.date(2025, 10, 2), status)
        for status in ("scheduled", "scheduled")
    ],
    dt.date(2025, 10, 1),
    frequency={"max_emails_per_period": 1, "period_days": 1},
    load_balancing={**CAP_OF_ONE, "cap_lookahead_days": 1},
)

YEAR_2025 = {"active_start_date": "2025-01-01", "active_end_date": "2025-12-31"}
# Two campaign emails on Jan 11 with a cap of 1: the rate notice (priority
# 5) stays; the promo, a day after its trigger, could move up to Jan 13, but
# its CA contact's birthday window opens on Jan 12, so it may not.
CAMPAIGN_BEFORE_A_WINDOW_EXAMPLE = Org(
    [Person(1, "CA", dt.date(1950, 4, 12), None), Person(2, "TX", None, None)],
    [],
    dt.date(2025, 1, 1),
    Settings.model_validate({"load_balancing": CAP_OF_ONE}),
    campaigns(
        [
            CampaignType("promo", days_before_event=-1),
            CampaignType("rates", priority=5),
        ],
        [instance(1, "promo", **YEAR_2025), instance(2, "rates", **YEAR_2025)],
        [(1, 1, "2025-01-10", "pending"), (2, 2, "2025-01-11", "pending")],
    ),
)
# The same two on Jan 11 for Texans: the promo, due on its trigger, stays.
CAMPAIGN_ON_ITS_TRIGGER_EXAMPLE = Org(
    [Person(1, "TX", None, None), Person(2, "TX", None, None)],
    [],
    dt.date(2025, 1, 1),
    Settings.model_validate({"load_balancing": CAP_OF_ONE}),
    campaigns(
        [CampaignType("promo"), CampaignType("rates", priority=5)],
        [instance(1, "promo", **YEAR_2025), instance(2, "rates", **YEAR_2025)],
        [(1, 1, "2025-01-11", "pending"), (2, 2, "2025-01-11", "pending")],
    ),
)
# A spread over Jan 1 and 2, seen on Jan 2: the even ids' Jan 1 is caught
# up, but on the spread's last day.
SPREAD_ENDS_TODAY_EXAMPLE = Org(
    [Person(n, "TX", None, None) for n in (2, 4, 6, 8, 10, 12)],
    [],
    dt.date(2025, 1, 2),
    Settings(),
    campaigns(
        [CampaignType("promo", target_all_contacts=True, spread_evenly=True)],
        [
            instance(
                1,
                "promo",
                **YEAR_2025,
                spread_start_date="2025-01-01",
                spread_end_date="2025-01-02",
            )
        ],
    ),
)
# Contact 1's promo email goes out on its birthday email's day, Jan 15.
CAMPAIGN_ON_A_BIRTHDAY_EXAMPLE = Org(
    [Person(1, "TX", dt.date(1950, 1, 29), None)],
    [],
    dt.date(2025, 1, 1),
    Settings(),
    campaigns(
        [CampaignType("promo", days_before_event=-5)],
        [instance(1, "promo", **YEAR_2025)],
        [(1, 1, "2025-01-10", "pending")],
    ),
)
# The promo (priority 5) wins Jan 15 over the birthday email; its instance
# ends on the first day, so on the next its email goes out as planned and
# still wins the day.
ENDED_PROMO_EXAMPLE = Org(
    [Person(1, "TX", dt.date(1950, 1, 29), None)],
    [],
    dt.date(2025, 1, 1),
    Settings(),
    campaigns(
        [CampaignType("promo", priority=5)],
        [
            instance(
                1, "promo", active_start_date="2025-01-01", active_end_date="2025-01-01"
            )
        ],
        [(1, 1, "2025-01-15", "pending")],
    ),
)


# -- properties -------------------------------------------------------------


class TestBalancingKeepsTheEmails:
    @given(orgs())
    @example(SENDER_CROWDS_THE_LAST_DAY_EXAMPLE)
    @PROPERTY
    def test_only_dates_change(self, org: Org) -> None:
        run = stages(org)
        before, after = run.constrained, run.balanced
        assert int((~before.skipped).sum()) == int((~after.skipped).sum())
        for column in fields(Plan):
            if column.name != "send":
                left, right = getattr(before, column.name), getattr(after, column.name)
                assert np.array_equal(left, right), column.name

    @given(orgs())
    @PROPERTY
    def test_the_wiring_matches_the_stages(self, org: Org) -> None:
        run = stages(org)
        tally: Counter[str] = Counter()
        plan = build_plan(inputs_of(org), org.settings, to_days(org.today), tally)
        assert np.array_equal(plan.send, run.balanced.send)
        assert tally == run.tally


class TestPromisesAfterBalancing:
    @given(orgs())
    @example(CAMPAIGN_BEFORE_A_WINDOW_EXAMPLE)
    @PROPERTY
    def test_no_email_inside_a_window(self, org: Org) -> None:
        run = stages(org)
        plan, people = run.balanced, {p.id: p for p in org.people}
        types = run.types()
        for i in np.flatnonzero(~plan.skipped):
            person = people[int(plan.contact_id[i])]
            send = from_days(int(plan.send[i]))
            # The duty comes from the SPEC and the campaign type, not only
            # from the plan's own flag.
            if plan.respects_windows[i] or org.respects_windows(types[i]):
                verdict = oracle_verdict(person, send, org.today)
                assert verdict is None, f"{types[i]} of {person} on {send} in {verdict}"
            elif not types[i].startswith(EMAIL_TYPE_PREFIX):
                birth = (
                    person.birth if person.birth and person.birth <= org.today else None
                )
                state = resolved_state(person)
                found = oracle.exclusion(
                    state, birth, person.effective, send, DATED_RULES
                )
                assert found is None, f"{types[i]} of {person} on {send} in {found}"

    @given(orgs())
    @example(CAMPAIGN_ON_A_BIRTHDAY_EXAMPLE)
    @PROPERTY
    def test_one_email_per_contact_per_day(self, org: Org) -> None:
        run = stages(org)
        held = held_days(org)
        for contact, planned in going_days(run.balanced, run.vocabulary).items():
            every = planned + held.get(contact, [])
            for day in planned:
                assert every.count(day) == 1, (contact, from_days(day))

    @given(orgs())
    @example(FREQUENCY_EXAMPLE)
    @PROPERTY
    def test_frequency_limit(self, org: Org) -> None:
        run = stages(org)
        assert crowded_windows(run.balanced, run.vocabulary, org) == set()

    @given(orgs())
    @PROPERTY
    def test_balancing_crowds_no_window(self, org: Org) -> None:
        run = stages(org)
        before = crowded_windows(run.constrained, run.vocabulary, org)
        after = crowded_windows(run.balanced, run.vocabulary, org)
        assert after <= before

    @given(orgs())
    @example(CAMPAIGN_ON_ITS_TRIGGER_EXAMPLE)
    @example(SPREAD_ENDS_TODAY_EXAMPLE)
    @PROPERTY
    def test_dates(self, org: Org) -> None:
        run = stages(org)
        plan, today = run.balanced, to_days(org.today)
        lookahead = org.settings.load_balancing.cap_lookahead_days
        assert (plan.send >= today).all(), "a date before today"
        going = ~plan.skipped
        assert (plan.send[going] <= plan.latest[going]).all()
        for i, email_type in enumerate(run.types()):
            if not going[i]:
                continue
            if email_type in ANNIVERSARY:
                assert plan.send[i] <= plan.event[i], f"{email_type} after its event"
            if email_type == "post_window":
                assert plan.send[i] <= run.constrained.send[i] + lookahead
            if email_type.startswith(EMAIL_TYPE_PREFIX):
                self.check_campaign_date(run, i)

    @staticmethod
    def check_campaign_date(run: Stages, i: int) -> None:
        """A campaign email goes out by its spread end, or by its trigger
        when it goes before a trigger still ahead (SPEC 8.3)."""
        plan, org = run.balanced, run.org
        email_type, number = run.vocabulary.kinds[int(plan.kind[i])]
        kind = org.campaigns.types[email_type.removeprefix(EMAIL_TYPE_PREFIX)]
        (found,) = [c for c in org.campaigns.instances if c.id == number]
        send = from_days(int(plan.send[i]))
        if kind.spread_evenly and found.spread is not None:
            assert send <= found.spread[1], f"{email_type} after its spread"
        elif kind.days_before_event >= 0 and plan.event[i] >= to_days(org.today):
            assert plan.send[i] <= plan.event[i], f"{email_type} after its trigger"

    @given(orgs())
    @PROPERTY
    def test_same_inputs_same_plan(self, org: Org) -> None:
        first = build_plan(inputs_of(org), org.settings, to_days(org.today))
        again = build_plan(inputs_of(org), org.settings, to_days(org.today))
        for column in fields(Plan):
            left, right = getattr(first, column.name), getattr(again, column.name)
            assert np.array_equal(left, right), column.name


class TestMoves:
    @given(orgs())
    @PROPERTY
    def test_smoothing(self, org: Org) -> None:
        run = stages(org)
        before, after = run.constrained, run.smoothed
        moved = before.send != after.send
        reach = org.settings.load_balancing.ed_smoothing_window_days // 2
        effective = before.kind == run.vocabulary.kind("effective_date")
        assert not (moved & ~effective).any()
        assert not (moved & before.kept).any()
        assert (np.abs(after.send - before.send) <= reach).all()
        assert run.tally["moved_by_smoothing"] == int(moved.sum())

    @given(orgs())
    @PROPERTY
    def test_cap_moves_forward_to_days_with_room(self, org: Org) -> None:
        run = stages(org)
        before, after = run.smoothed, run.balanced
        moved = before.send != after.send
        lookahead = org.settings.load_balancing.cap_lookahead_days
        step = after.send - before.send
        assert ((step >= 0) & (step <= lookahead)).all()
        assert not (moved & before.kept).any()
        assert run.tally["moved_by_cap"] == int(moved.sum())
        final = load(after, org)
        cap = run.context.limits.daily_cap
        for day in set(after.send[moved].tolist()):
            assert final[day] <= cap, from_days(day)

    @given(orgs())
    @example(HELD_FOLLOW_UP_EXAMPLE)
    @PROPERTY
    def test_nothing_left_over_means_no_crowded_day(self, org: Org) -> None:
        run = stages(org)
        if run.tally["left_over_cap"]:
            return
        final = load(run.balanced, org)
        held = held_load(org)
        limit = run.context.limits.overage_limit
        today = to_days(org.today)
        for day, count in final.items():
            if day >= today:
                assert count <= max(limit, held[day]), from_days(day)


class TestTheNextDay:
    @given(orgs(), st.integers(1, 10))
    @example(ENDED_PROMO_EXAMPLE, 2)
    @PROPERTY
    def test_promises_hold_over_the_written_plan(self, org: Org, later: int) -> None:
        """The next run sees the plan written, with what was due sent."""
        first = stages(org)
        next_day = org.today + dt.timedelta(days=later)
        written = [
            r._replace(status="sent")
            if r.status == "pre-scheduled" and r.send < next_day
            else r
            for r in as_rows(first.balanced, first.vocabulary)
        ]
        tomorrow = Org(
            org.people, org.held + written, next_day, org.settings, org.campaigns
        )
        run = stages(tomorrow)
        plan, people = run.balanced, {p.id: p for p in org.people}
        assert (plan.send >= to_days(next_day)).all()
        types = run.types()
        for i in np.flatnonzero(~plan.skipped):
            if plan.respects_windows[i] or tomorrow.respects_windows(types[i]):
                person = people[int(plan.contact_id[i])]
                send = from_days(int(plan.send[i]))
                assert oracle_verdict(person, send, next_day) is None, types[i]
        held = held_days(tomorrow)
        for contact, planned in going_days(plan, run.vocabulary).items():
            every = planned + held.get(contact, [])
            assert all(every.count(day) == 1 for day in planned), contact
        before = crowded_windows(run.constrained, run.vocabulary, tomorrow)
        assert crowded_windows(plan, run.vocabulary, tomorrow) <= before
