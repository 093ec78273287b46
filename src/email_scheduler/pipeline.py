"""The pipeline of stages that turns a run's inputs into its plan.

    plan -> constrain -> balance

Planning proposes candidates, resolves them against existing rows and
withholds what the law or the org forbids (exclusion windows, failed
underwriting), adding the post-window emails a withheld email earns.
Constraining skips same-day conflicts and emails beyond the frequency
limit. Balancing moves emails to smooth and cap daily volume, never into a
window and never breaking the constraints.

Planning and constraining only ever look at one contact at a time, so a run
may do them partition by partition of its contacts; balancing weighs every
contact's emails against the daily limits, so it runs once over the
outgoing emails of all partitions (`balance_outgoing`). `build_plan` is the
whole pipeline over inputs held in memory at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from email_scheduler.config import Settings
from email_scheduler.constraints.balancing import (
    Limits,
    enforce_daily_cap,
    smooth_effective_dates,
)
from email_scheduler.constraints.conflicts import resolve_same_day
from email_scheduler.constraints.frequency import apply_frequency_limit
from email_scheduler.constraints.occupancy import Committed, MoveCheck
from email_scheduler.constraints.underwriting import apply_global_underwriting
from email_scheduler.constraints.windows import apply_windows
from email_scheduler.contacts import Contacts, DataQuality
from email_scheduler.plan import M, Plan, Vocabulary
from email_scheduler.planners.anniversary import AnniversaryPlanner
from email_scheduler.planners.campaigns import CampaignPlanner
from email_scheduler.planners.candidates import resolve
from email_scheduler.planners.followups import FollowUpPlanner
from email_scheduler.planners.frozen import Unplanned, unplanned_rows
from email_scheduler.planners.post_window import post_window_candidates
from email_scheduler.rules import BirthColumns, RuleBook
from email_scheduler.store.campaigns import Campaigns
from email_scheduler.store.engagement import Engagement
from email_scheduler.store.reader import ExistingRows


@dataclass(frozen=True)
class Inputs:
    """Everything a plan is computed from, besides settings and today."""

    contacts: Contacts
    quality: DataQuality
    existing: ExistingRows
    vocabulary: Vocabulary
    campaigns: Campaigns = field(default_factory=Campaigns)
    engagement: Engagement = field(default_factory=Engagement.empty)


@dataclass(frozen=True)
class Context:
    """What every stage of one run's pipeline reads."""

    inputs: Inputs
    settings: Settings
    today: int
    dates: BirthColumns
    rules: RuleBook
    eligible: npt.NDArray[np.bool_]
    unplanned: Unplanned
    committed: Committed
    limits: Limits
    """The daily limits of the contacts in `inputs`."""

    @staticmethod
    def of(inputs: Inputs, settings: Settings, today: int) -> Context:
        """Return the context of a run over `inputs`."""
        contacts, vocabulary = inputs.contacts, inputs.vocabulary
        eligible = contacts.reachable & contacts.known_state
        dates = BirthColumns.of(contacts)
        rules = RuleBook(
            settings.state_rules, settings.timing.pre_window_exclusion_days
        )

        def withhold(part: Plan) -> Plan:
            part = apply_windows(part, contacts.state, dates, rules, vocabulary)
            if settings.organization.exclude_failed_underwriting_global:
                part = apply_global_underwriting(part, contacts, vocabulary)
            return part

        unplanned = unplanned_rows(
            inputs.existing, contacts, inputs.campaigns, vocabulary, today, withhold
        )
        return Context(
            inputs=inputs,
            settings=settings,
            today=today,
            dates=dates,
            rules=rules,
            eligible=eligible,
            unplanned=unplanned,
            committed=Committed.of(inputs.existing, vocabulary, unplanned.left),
            limits=Limits.of(settings, int(eligible.sum())),
        )


def build_plan(
    inputs: Inputs, settings: Settings, today: int, tally: Counter[str] | None = None
) -> Plan:
    """Return the full plan: a pure function of inputs, settings and today."""
    context = Context.of(inputs, settings, today)
    tally = Counter() if tally is None else tally
    plan = plan_emails(context)
    plan = constrain(context, plan, tally)
    return balance(context, plan, tally)


def constrain(context: Context, plan: Plan, tally: Counter[str]) -> Plan:
    """Return the plan with same-day conflicts and frequency limits applied."""
    vocabulary = context.inputs.vocabulary
    plan = resolve_same_day(plan, context.committed, vocabulary, tally)
    return apply_frequency_limit(
        plan, context.committed, context.settings, vocabulary, tally
    )


def balance(context: Context, plan: Plan, tally: Counter[str]) -> Plan:
    """Return the plan with daily volume smoothed and capped."""
    return balance_outgoing(
        plan,
        context.inputs.contacts.state,
        context.dates,
        context.rules,
        context.settings,
        context.inputs.vocabulary,
        context.committed,
        context.limits,
        context.today,
        tally,
    )


def balance_outgoing(
    emails: M,
    state: npt.NDArray[np.int16],
    dates: BirthColumns,
    rules: RuleBook,
    settings: Settings,
    vocabulary: Vocabulary,
    committed: Committed,
    limits: Limits,
    today: int,
    tally: Counter[str],
) -> M:
    """Return the emails with daily volume smoothed and capped.

    `state` and `dates` are columns of every contact the emails' `contact`
    positions point into; `committed` holds the emails the sender holds.
    """
    check = MoveCheck(
        emails, state, dates, rules, settings, vocabulary, committed, today
    )
    emails = smooth_effective_dates(
        emails, check, limits, committed, settings, vocabulary, tally
    )
    return enforce_daily_cap(
        emails, check, limits, committed, settings, vocabulary, tally
    )


def plan_emails(context: Context) -> Plan:
    """Return the planners' emails, with windows and underwriting applied.

    Follow-ups come last: a window that withholds one earns no post-window
    email.
    """
    inputs, settings, today = context.inputs, context.settings, context.today
    contacts, vocabulary = inputs.contacts, inputs.vocabulary
    dates, rules = context.dates, context.rules
    planner = AnniversaryPlanner(
        contacts, dates, context.eligible, settings, vocabulary, today
    )
    spread = settings.timing.catch_up_spread_days

    def resolved(part: Plan) -> Plan:
        return resolve(part, inputs.existing, vocabulary, today, spread)

    campaigns = CampaignPlanner(
        inputs.campaigns, planner, inputs.existing, context.unplanned.planned
    )
    parts = [*campaigns.keep_fixed_aep(planner.plan()), *campaigns.plan()]
    windowed = Plan.concat([resolved(part) for part in parts])
    windowed = apply_windows(windowed, contacts.state, dates, rules, vocabulary)
    # The plan is kept in parts, copied into one at the end.
    so_far = [windowed, context.unplanned.withheld]
    if settings.organization.enable_post_window_emails:
        extra = post_window_candidates(
            so_far, planner, inputs.existing, rules, dates, settings, vocabulary, today
        )
        extra = resolved(extra)
        lookahead = settings.load_balancing.cap_lookahead_days
        so_far.append(extra.with_(latest=extra.send + lookahead))
    follow_ups = FollowUpPlanner(
        inputs.existing,
        contacts,
        context.eligible,
        inputs.campaigns,
        inputs.engagement,
        settings,
        vocabulary,
        today,
    ).plan()
    follow_ups = apply_windows(follow_ups, contacts.state, dates, rules, vocabulary)
    plan = Plan.concat([*so_far, follow_ups])
    if settings.organization.exclude_failed_underwriting_global:
        plan = apply_global_underwriting(plan, contacts, vocabulary)
    return plan
