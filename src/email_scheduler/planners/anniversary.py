"""Birthday, effective-date and AEP emails.

Each email type has an occurrence per year: the anniversary of the birth
date, the anniversary of the policy's effective date (from the first
anniversary on, and only once the policy is old enough), and the Annual
Enrollment Period. The planned occurrence is the next one whose event date
is today or later; the past occurrence is the latest one whose ideal send
date is before today (post-window emails look back at it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from email_scheduler.calendar import (
    Days,
    Ints,
    anniversary,
    civil,
    from_days,
    months_elapsed,
    next_anniversary,
)
from email_scheduler.config import Settings
from email_scheduler.contacts import Contacts
from email_scheduler.plan import NONE, Plan, Vocabulary
from email_scheduler.planners.candidates import candidates
from email_scheduler.rules import BirthColumns, Mask

BIRTHDAY = "birthday"
EFFECTIVE_DATE = "effective_date"
AEP = "aep"


@dataclass(frozen=True)
class Occurrences:
    """One occurrence per selected contact: its event date and ideal send date."""

    at: Ints
    event: Days
    ideal: Days


class AnniversaryPlanner:
    """Plans the anniversary emails of eligible contacts."""

    def __init__(
        self,
        contacts: Contacts,
        dates: BirthColumns,
        eligible: Mask,
        settings: Settings,
        vocabulary: Vocabulary,
        today: int,
    ) -> None:
        self.contacts = contacts
        self.dates = dates
        self.eligible = eligible
        self.settings = settings
        self.vocabulary = vocabulary
        self.today = today

    # -- occurrences -------------------------------------------------------

    def birthdays(
        self, *, past: bool = False, among: Mask | None = None
    ) -> Occurrences:
        """Return the planned (or past) birthday occurrence of each contact
        (of those `among`, if given)."""
        before = self.settings.timing.birthday_days_before
        at = np.flatnonzero(self._among(among) & (self.dates.birth_month > 0))
        event = self._anniversaries(
            self.dates.birth_month[at], self.dates.birth_day[at], before, past
        )
        return Occurrences(at, event, event - before)

    def effective_dates(
        self, *, past: bool = False, among: Mask | None = None
    ) -> Occurrences:
        """Return the planned (or past) effective-date occurrence of each
        policy (of those `among`, if given)."""
        before = self.settings.timing.effective_date_days_before
        at = np.flatnonzero(self._among(among) & (self.dates.effective_month > 0))
        event = self._anniversaries(
            self.dates.effective_month[at], self.dates.effective_day[at], before, past
        )
        ideal = event - before
        old_enough = civil(event)[0] > self.dates.effective_year[at]
        threshold = self.settings.organization.effective_date_first_email_months
        old_enough &= months_elapsed(self.contacts.effective[at], ideal) >= threshold
        return Occurrences(at[old_enough], event[old_enough], ideal[old_enough])

    def aeps(self, *, past: bool = False, among: Mask | None = None) -> Occurrences:
        """Return the planned (or past) AEP occurrence of every eligible
        contact (of those `among`, if given)."""
        at = np.flatnonzero(self._among(among))
        year = self.aep_year(past=past)
        (send_month, send_day), (event_month, event_day) = (
            self.settings.aep.send_date,
            self.settings.aep.event_date,
        )
        event = _day(year, event_month, event_day)
        ideal = _day(year, send_month, send_day)
        return Occurrences(at, np.full(len(at), event), np.full(len(at), ideal))

    def _among(self, among: Mask | None) -> Mask:
        return self.eligible if among is None else self.eligible & among

    def aep_year(self, *, past: bool = False) -> int:
        """Return the year of the planned AEP (or of the latest one already due)."""
        this_year = from_days(self.today).year
        if past:
            send_month, send_day = self.settings.aep.send_date
            due = _day(this_year, send_month, send_day) < self.today
            return this_year if due else this_year - 1
        event_month, event_day = self.settings.aep.event_date
        return (
            this_year
            if _day(this_year, event_month, event_day) >= self.today
            else this_year + 1
        )

    def _anniversaries(self, month: Ints, day: Ints, before: int, past: bool) -> Days:
        if not past:
            return next_anniversary(month, day, self.today)
        # The first anniversary whose ideal date is today or later, one year back.
        upcoming = next_anniversary(month, day, self.today + before)
        return anniversary(month, day, civil(upcoming)[0] - 1)

    # -- candidates --------------------------------------------------------

    def plan(self) -> list[Plan]:
        """Return unresolved candidates for every anniversary email type."""
        return [
            self.candidates(BIRTHDAY, self.birthdays()),
            self.candidates(EFFECTIVE_DATE, self.effective_dates()),
            self.candidates(AEP, self.aeps()),
        ]

    def candidates(self, email_type: str, occurrences: Occurrences) -> Plan:
        """Return candidates of one type; the cut-off is the event date."""
        templates = self.settings.templates[email_type]
        sms = self.vocabulary.code(templates.sms)
        at = occurrences.at
        return candidates(
            contact=at,
            contact_id=self.contacts.id[at],
            kind=self.vocabulary.kind(email_type),
            event=occurrences.event,
            ideal=occurrences.ideal,
            cutoff=occurrences.event,
            priority=self.settings.priority(email_type),
            email_template=self.vocabulary.code(templates.email),
            sms_template=np.where(self.contacts.has_phone[at], sms, NONE),
            respects_windows=True,
        )


def _day(year: int, month: int, day: int) -> int:
    """Return a single date as days (Feb 29 becomes Feb 28 outside leap years)."""
    value = anniversary(np.array([month]), np.array([day]), year)
    return int(value[0])
