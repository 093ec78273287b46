"""The scheduler's configuration: YAML in, typed frozen settings out.

Every key is optional; a missing key takes the default written here. The YAML
file is validated as a whole before anything else happens, and every problem
is reported with the dotted key it concerns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from email_scheduler.errors import ConfigError
from email_scheduler.geography import state_index

ANNIVERSARY_TYPES = ("birthday", "effective_date", "aep", "post_window")
FOLLOW_UP_TYPES = (
    "followup_1_cold",
    "followup_2_clicked_no_hq",
    "followup_3_hq_no_yes",
    "followup_4_hq_with_yes",
)
"""Follow-up types, from no engagement to health questions answered with
medical conditions (SPEC 9)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _month_day(value: object) -> tuple[int, int]:
    """Parse `MM-DD` into a (month, day) pair checked against a leap year."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        month, day = int(value[0]), int(value[1])
    elif isinstance(value, str) and len(value.split("-")) == 2:
        month, day = (int(part) for part in value.split("-"))
    else:
        raise ValueError("expected a month and day written MM-DD, e.g. 09-15")
    dt.date(2024, month, day)  # raises ValueError for an impossible day
    return month, day


MonthDay = Annotated[tuple[int, int], BeforeValidator(_month_day)]


class Timing(_Section):
    send_time: dt.time = dt.time(8, 30)
    birthday_days_before: int = Field(14, ge=0, le=180)
    effective_date_days_before: int = Field(30, ge=0, le=180)
    pre_window_exclusion_days: int = Field(60, ge=0, le=180)
    followup_delay_days: int = Field(2, ge=0, le=60)
    followup_lookback_days: int = Field(35, ge=1, le=365)
    catch_up_spread_days: int = Field(7, ge=1, le=60)


class Aep(_Section):
    send_date: MonthDay = (9, 15)
    event_date: MonthDay = (10, 15)

    @model_validator(mode="after")
    def _send_before_event(self) -> Aep:
        if self.send_date > self.event_date:
            raise ValueError("aep.send_date must not come after aep.event_date")
        return self


class Organization(_Section):
    enable_post_window_emails: bool = True
    effective_date_first_email_months: int = Field(11, ge=0, le=600)
    exclude_failed_underwriting_global: bool = False
    send_without_zipcode_for_universal: bool = True


class Frequency(_Section):
    max_emails_per_period: int = Field(3, ge=1)
    period_days: int = Field(30, ge=1, le=366)


class LoadBalancing(_Section):
    daily_send_percentage_cap: float = Field(0.07, gt=0, le=1)
    daily_cap_floor: int = Field(100, ge=1)
    ed_daily_soft_limit: int = Field(15, ge=1)
    ed_smoothing_window_days: int = Field(5, ge=1, le=31)
    overage_threshold: float = Field(1.2, ge=1)
    cap_lookahead_days: int = Field(7, ge=0, le=60)


class StateRule(_Section):
    """One state's exclusion rule, as configured."""

    state: str
    rule: Literal["birthday", "effective_date", "year_round"]
    days_before: int = Field(0, ge=0, le=366)
    days_after: int = Field(0, ge=0, le=366)
    anchor: Literal["anniversary", "month_start"] = "anniversary"
    min_age: int | None = Field(None, ge=0, le=150)
    max_age: int | None = Field(None, ge=0, le=150)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    @field_validator("state")
    @classmethod
    def _state_code(cls, value: str) -> str:
        if value.upper() not in state_index():
            raise ValueError(f"{value!r} is not a US state code such as CA or NY")
        return value.upper()

    @model_validator(mode="after")
    def _ranges(self) -> StateRule:
        ages = (self.min_age, self.max_age)
        if None not in ages and ages[0] > ages[1]:  # type: ignore[operator]
            raise ValueError("min_age is greater than max_age")
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError("valid_from is after valid_to")
        return self


def _rule(
    state: str, rule: str, before: int = 0, after: int = 0, **kw: Any
) -> StateRule:
    return StateRule(state=state, rule=rule, days_before=before, days_after=after, **kw)  # type: ignore[arg-type]


DEFAULT_STATE_RULES: tuple[StateRule, ...] = (
    _rule("CA", "birthday", 30, 60),
    _rule("ID", "birthday", 0, 63),
    _rule("KY", "birthday", 0, 60),
    _rule("MD", "birthday", 0, 30),
    _rule("NV", "birthday", 0, 60, anchor="month_start"),
    _rule("OK", "birthday", 0, 60),
    _rule("OR", "birthday", 0, 31),
    _rule("VA", "birthday", 0, 30),
    _rule("MO", "effective_date", 30, 33),
    _rule("CT", "year_round"),
    _rule("MA", "year_round"),
    _rule("NY", "year_round"),
    _rule("WA", "year_round"),
)

DEFAULT_PRIORITIES = {
    "birthday": 10,
    "effective_date": 20,
    "aep": 30,
    "post_window": 40,
}


def _known_key(known: tuple[str, ...], hint: str) -> AfterValidator:
    """Return a validator refusing a mapping key that is not in `known`."""

    def check(key: str) -> str:
        if key not in known:
            raise PydanticCustomError(
                "unknown_key",
                f"unknown key; expected one of {', '.join(known)} ({hint})",
            )
        return key

    return AfterValidator(check)


PriorityKey = Annotated[
    str,
    _known_key(
        tuple(DEFAULT_PRIORITIES),
        "a campaign type sets its own priority; follow-ups take their parent's",
    ),
]
TemplateKey = Annotated[
    str,
    _known_key(
        (*ANNIVERSARY_TYPES, *FOLLOW_UP_TYPES),
        "a campaign instance sets its own templates",
    ),
]


class Templates(_Section):
    """The email and SMS templates of one email type."""

    email: str | None = None
    sms: str | None = None


def _default_templates() -> dict[str, Templates]:
    return {
        name: Templates(email=name) for name in (*ANNIVERSARY_TYPES, *FOLLOW_UP_TYPES)
    }


class Backup(_Section):
    enabled: bool = False
    directory: Path | None = None
    retention_days: int = Field(7, ge=1)


class Settings(_Section):
    """The effective configuration of a run."""

    timing: Timing = Timing()
    aep: Aep = Aep()
    organization: Organization = Organization()
    frequency: Frequency = Frequency()
    load_balancing: LoadBalancing = LoadBalancing()
    state_rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES
    priorities: dict[PriorityKey, int] = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITIES)
    )
    templates: dict[TemplateKey, Templates] = Field(default_factory=_default_templates)
    suppressed_contact_statuses: frozenset[str] = frozenset(
        {"unsubscribed", "bounced", "complained", "deleted"}
    )
    backup: Backup = Backup()

    @field_validator("priorities", mode="before")
    @classmethod
    def _merge_priorities(cls, value: object) -> object:
        if isinstance(value, dict):
            return {**DEFAULT_PRIORITIES, **value}
        return value

    @field_validator("templates", mode="before")
    @classmethod
    def _merge_templates(cls, value: object) -> object:
        if isinstance(value, dict):
            return {**_default_templates(), **value}
        return value

    @field_validator("suppressed_contact_statuses", mode="after")
    @classmethod
    def _lower_statuses(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(status.strip().lower() for status in value)

    def priority(self, email_type: str) -> int:
        """Return the priority of an anniversary email type."""
        return self.priorities[email_type]

    def to_json(self) -> str:
        """Return the configuration as canonical JSON (sorted keys)."""
        data = self.model_dump(mode="json")
        data["suppressed_contact_statuses"] = sorted(
            data["suppressed_contact_statuses"]
        )
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def version(self) -> str:
        """Return a short stable checksum naming this configuration."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def _describe(error: Any) -> str:
    # A mapping key's own error ends its location with "[key]".
    parts = [part for part in error["loc"] if part != "[key]"]
    where = ".".join(str(part) for part in parts) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key; check its spelling against the README"
    return f"{where}: {message}"


def load_settings(path: Path | None) -> Settings:
    """Read, validate and return the settings in `path` (defaults when None)."""
    if path is None:
        return Settings()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  {_describe(error)}" for error in exc.errors())
        raise ConfigError(f"config file {path} is invalid:\n{problems}") from exc
