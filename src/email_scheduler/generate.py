"""Sample org databases: realistic contacts, including the data-quality mess.

`generate_org` writes a new SQLite file shaped like an organization's legacy
database (a `contacts` table and an empty `email_schedules` table). The data
is deterministic for a seed and is built column by column with numpy, so a
million contacts take seconds rather than minutes.

Besides clean rows, a small share of contacts carries the problems real org
databases have: a ZIP that disagrees with the `state` column, no ZIP at all,
a malformed ZIP or email, an unparseable birth date and a missing effective
date. About 5% failed underwriting. The shares are the module constants
below.

On request the file also holds two sample campaigns: a rate increase with
about 5% of the contacts enrolled, and the AEP spread over September 2027;
and a sent history: the birthday emails of the 60 days before a date, as a
sending system leaves them, with link clicks, answers to the health
questions and most of their follow-ups already sent.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import zipcodes

from email_scheduler.config import DEFAULT_STATE_RULES
from email_scheduler.store.schema import ENGAGEMENT_TABLES, create_statement

__all__ = ["GenerateReport", "generate_org"]

StrArray = npt.NDArray[np.str_]
IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]

CHUNK_ROWS = 50_000

# Roughly the 65+ population per state, in thousands (2020 census scale).
STATE_WEIGHTS: dict[str, int] = {
    "AL": 850, "AK": 100, "AZ": 1300, "AR": 510, "CA": 6000, "CO": 900,
    "CT": 620, "DE": 190, "DC": 90, "FL": 4700, "GA": 1600, "HI": 270,
    "ID": 300, "IL": 2100, "IN": 1100, "IA": 560, "KS": 480, "KY": 780,
    "LA": 750, "ME": 290, "MD": 1000, "MA": 1200, "MI": 1800, "MN": 950,
    "MS": 490, "MO": 1100, "MT": 210, "NE": 320, "NV": 520, "NH": 260,
    "NJ": 1500, "NM": 380, "NY": 3400, "NC": 1800, "ND": 120, "OH": 2100,
    "OK": 630, "OR": 800, "PA": 2400, "RI": 190, "SC": 950, "SD": 150,
    "TN": 1200, "TX": 3900, "UT": 380, "VT": 130, "VA": 1400, "WA": 1200,
    "WV": 350, "WI": 1000, "WY": 100,
}  # fmt: skip

FEMALE_NAMES = (
    "Mary", "Patricia", "Linda", "Barbara", "Elizabeth", "Susan", "Margaret",
    "Dorothy", "Carol", "Nancy", "Sandra", "Betty", "Sharon", "Judith",
    "Joyce", "Donna", "Shirley", "Gloria", "Ruth", "Janet",
)  # fmt: skip
MALE_NAMES = (
    "James", "Robert", "John", "Michael", "William", "David", "Richard",
    "Charles", "Thomas", "Donald", "Ronald", "Gary", "Larry", "Dennis",
    "Kenneth", "George", "Frank", "Raymond", "Harold", "Walter",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
    "Davis", "Rodriguez", "Martinez", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
    "Harris", "Clark", "Lewis", "Nguyen", "O'Connor", "Kowalski",
)  # fmt: skip
EMAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "aol.com", "outlook.com", "comcast.net",
    "hotmail.com", "att.net", "example.org",
)  # fmt: skip
CARRIERS = (
    "Aetna", "UnitedHealthcare", "Humana", "Mutual of Omaha", "Cigna",
    "Blue Cross", "Anthem", "WellCare", "Bankers Fidelity", "Manhattan Life",
)  # fmt: skip
PLAN_TYPES = ("G", "N", "F")
BAD_ZIPS = ("1234", "ABCDE", "123456", "9021", "12 345")
BAD_BIRTH_DATES = ("1950-13-45", "not a date", "1948-02-30", "19/07/1952")

ZIP_PLUS4_SHARE = 0.10
MISMATCH_SHARE = 0.005
NO_ZIP_SHARE = 0.005
BAD_EMAIL_SHARE = 0.005
BAD_ZIP_SHARE = 0.005
BAD_BIRTH_SHARE = 0.002
FIRST_OF_MONTH_SHARE = 0.40
NO_EFFECTIVE_SHARE = 0.03
TIMESTAMP_SHARE = 0.10
PHONE_SHARE = 0.60
TOBACCO_SHARE = 0.12
FEMALE_SHARE = 0.55
FAILED_UNDERWRITING_SHARE = 0.05
RATE_INCREASE_SHARE = 0.05
STATUSES = (None, "active", "unsubscribed", "bounced")
STATUS_SHARES = (0.45, 0.537, 0.01, 0.003)

# Each contact gets at most one location/email problem; the codes index
# CASE_SHARES so the problems never overlap and their shares stay exact.
CLEAN, MISMATCH, NO_ZIP, BAD_EMAIL, BAD_ZIP = range(5)
CASE_SHARES = (
    1 - MISMATCH_SHARE - NO_ZIP_SHARE - BAD_EMAIL_SHARE - BAD_ZIP_SHARE,
    MISMATCH_SHARE,
    NO_ZIP_SHARE,
    BAD_EMAIL_SHARE,
    BAD_ZIP_SHARE,
)

BIRTH_EARLIEST = np.datetime64("1931-12-01", "D")  # 95 years before 2026-12-01
BIRTH_LATEST = np.datetime64("1961-12-01", "D")  # 65 years before 2026-12-01
EFFECTIVE_EARLIEST = np.datetime64("2010-01-01", "D")
EFFECTIVE_LATEST = np.datetime64("2026-11-01", "D")
ROW_TIMESTAMP = "2026-01-15 09:30:00"

EMAIL_SCHEDULES_DDL = """
CREATE TABLE email_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL,
    email_type TEXT NOT NULL,
    scheduled_send_date TEXT NOT NULL,
    scheduled_send_time TEXT DEFAULT '08:30:00',
    status TEXT NOT NULL DEFAULT 'pre-scheduled',
    skip_reason TEXT,
    priority INTEGER DEFAULT 10,
    campaign_instance_id INTEGER,
    email_template TEXT,
    sms_template TEXT,
    scheduler_run_id TEXT,
    actual_send_datetime TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(contact_id, email_type, scheduled_send_date)
)
"""


@dataclass(frozen=True)
class GenerateReport:
    """What `generate_org` wrote and how long it took."""

    contacts: int
    seconds: float


@dataclass(frozen=True)
class _ZipPool:
    """Standard ZIP codes grouped by state, in `STATE_WEIGHTS` order.

    The ZIPs of state `i` are `zips[start[i] : start[i] + count[i]]`.
    """

    zips: StrArray
    start: IntArray
    count: IntArray


def generate_org(
    path: Path,
    contacts: int,
    seed: int = 0,
    *,
    legacy: bool = True,
    campaigns: bool = False,
    history_until: dt.date | None = None,
) -> GenerateReport:
    """Write a new org database with `contacts` sample contacts at `path`.

    With `legacy` (the default) the contacts table has the legacy shape,
    whose carrier column is `current_carrier`; otherwise it is `carrier`.
    Both shapes have `failed_underwriting` (about 5% set). With
    `campaigns`, the sample campaigns are added; the contacts are the same.
    With `history_until`, the sent history of the days before it is added.

    Raises `FileExistsError` if `path` exists, rather than mixing new rows
    into someone's database. A failed generation removes the partial file.
    """
    path = Path(path)
    if contacts < 0:
        raise ValueError(f"contacts must be 0 or more, got {contacts}")
    if path.exists():
        raise FileExistsError(f"{path} already exists; pick a new file name")

    started = time.perf_counter()
    try:
        _write_database(path, contacts, seed, legacy)
        if campaigns:
            _write_campaigns(path, contacts, seed)
        if history_until is not None:
            _write_history(path, history_until, seed)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return GenerateReport(contacts, time.perf_counter() - started)


def _column_names(legacy: bool = True) -> tuple[str, ...]:
    """Return the contacts table's column names, in table order."""
    carrier = "current_carrier" if legacy else "carrier"
    return (
        ("id", "first_name", "last_name", "email", carrier, "plan_type")
        + ("effective_date", "birth_date", "tobacco_user", "gender")
        + ("state", "zip_code", "phone_number")
        + ("status", "failed_underwriting", "created_at", "updated_at")
    )


def _contacts_ddl(legacy: bool) -> str:
    """Return the CREATE TABLE statement of the contacts table."""
    types = {
        "id": "INTEGER PRIMARY KEY",
        "tobacco_user": "INTEGER",
        "failed_underwriting": "INTEGER DEFAULT 0",
    }
    columns = ",\n    ".join(
        f"{name} {types.get(name, 'TEXT')}" for name in _column_names(legacy)
    )
    return f"CREATE TABLE contacts (\n    {columns}\n)"


def _write_database(path: Path, contacts: int, seed: int, legacy: bool) -> None:
    """Create the tables at `path` and fill contacts chunk by chunk."""
    columns = _column_names(legacy)
    insert = (
        f"INSERT INTO contacts ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # The file is new and worthless if we crash, so skip durability.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("BEGIN")
        connection.execute(_contacts_ddl(legacy))
        connection.execute(EMAIL_SCHEDULES_DDL)
        for rows in _contact_chunks(contacts, seed):
            connection.executemany(insert, rows)
        connection.execute("COMMIT")
    finally:
        connection.close()


SAMPLE_TYPES = [
    # name, days before the trigger, all contacts, priority, spread evenly
    ("rate_increase", 14, 0, 5, 0),
    ("aep", 0, 1, 30, 1),
]
SAMPLE_INSTANCES = [
    # type, name, email and SMS templates, active range, spread range
    ("rate_increase", "rate_increase_2027_h1", "rate_increase_v1",
     "rate_increase_sms", "2026-12-01", "2027-06-30", None, None),
    ("aep", "aep_2027", "aep_2027", "aep_2027_sms",
     "2027-08-01", "2027-09-30", "2027-09-01", "2027-09-30"),
]  # fmt: skip


def _write_campaigns(path: Path, contacts: int, seed: int) -> None:
    """Add the campaign tables and the sample campaigns to a new database.

    Enrolled contacts get a rate increase on the first of a month from
    January to June 2027. A random stream of its own keeps the contacts
    the same as without campaigns.
    """
    rng = np.random.default_rng([seed, 1])
    enrolled = np.flatnonzero(rng.random(contacts) < RATE_INCREASE_SHARE) + 1
    months = rng.integers(1, 7, len(enrolled))
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for table in ("campaign_types", "campaign_instances", "contact_campaigns"):
            connection.execute(create_statement(table))
        connection.executemany(
            "INSERT INTO campaign_types (name, days_before_event, "
            "target_all_contacts, priority, spread_evenly) VALUES (?, ?, ?, ?, ?)",
            SAMPLE_TYPES,
        )
        connection.executemany(
            "INSERT INTO campaign_instances (campaign_type, instance_name, "
            "email_template, sms_template, active_start_date, active_end_date, "
            "spread_start_date, spread_end_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            SAMPLE_INSTANCES,
        )
        connection.executemany(
            "INSERT INTO contact_campaigns (contact_id, campaign_instance_id, "
            "trigger_date, status) VALUES (?, 1, ?, 'pending')",
            (
                (contact, f"2027-{month:02d}-01")
                for contact, month in zip(
                    enrolled.tolist(), months.tolist(), strict=True
                )
            ),
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


HISTORY_DAYS = 60
CLICK_PERCENT = 25
ANSWER_PERCENT = 10
MALFORMED_ANSWER_PERCENT = 5
"""Of the answers: metadata cut short, as a buggy form handler leaves it."""
FOLLOW_UP_SENT_PERCENT = 80
"""Of the emails sent three or more days before: their follow-up went too."""
PLANNED_DAYS_AHEAD = 30
"""A history email's row was created this many days before it went out."""


_MULTIPLIERS = (2654435761, 2246822519, 3266489917, 668265263, 374761393)


def _percentile(column: str, seed: int, salt: int) -> str:
    """Return SQL for a stable pseudo-random number from 0 to 99 per row.

    Each salt has its own multipliers, so that the numbers of one row under
    different salts do not move together.
    """
    first, second = _MULTIPLIERS[salt % 5], _MULTIPLIERS[(salt + 2) % 5]
    return f"(({column} * {first} + {seed}) % 1000003 * {second} % 100)"


def _write_history(path: Path, until: dt.date, seed: int) -> None:
    """Add the sent birthday emails of the `HISTORY_DAYS` before `until`.

    Only contacts a scheduler would have mailed get one: a valid-looking
    email, no suppressed status, a state without exclusion rules. Some
    recipients clicked or answered the health questions within two days;
    most emails of three days ago or more already had their follow-up
    (written as an older scheduler did, without a parent id). Row stamps
    follow from the send dates, not the clock, so a seed always gives the
    same file.
    """
    window_states = ", ".join(f"'{rule.state}'" for rule in DEFAULT_STATE_RULES)
    year = until.year
    click, answer = _percentile("id", seed, 1), _percentile("id", seed, 2)
    malformed, followed = _percentile("id", seed, 3), _percentile("id", seed, 4)
    hours = f"'+' || ({_percentile('id', seed, 5)} % 47 + 1) || ' hours'"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for table, columns in ENGAGEMENT_TABLES.items():
            body = ", ".join(f"{name} {kind}" for name, kind in columns.items())
            connection.execute(f"CREATE TABLE {table} ({body})")
        connection.execute(
            f"""
            INSERT INTO email_schedules (contact_id, email_type,
                scheduled_send_date, status, priority, email_template,
                actual_send_datetime, created_at, updated_at)
            SELECT id, 'birthday', day, 'sent', 10, 'birthday', day || ' 13:30:00',
                date(day, '-{PLANNED_DAYS_AHEAD} days') || ' 06:00:00',
                day || ' 13:30:00'
            FROM (
                SELECT c.id, date(y.year || substr(c.birth_date, 5, 6), '-14 days')
                    AS day
                FROM contacts AS c,
                    (SELECT {year - 1} AS year UNION ALL SELECT {year}
                     UNION ALL SELECT {year + 1}) AS y
                WHERE substr(c.birth_date, 6, 5) != '02-29'
                  AND c.email LIKE '%_@_%.__%'
                  AND COALESCE(c.status, '') NOT IN ('unsubscribed', 'bounced')
                  AND COALESCE(c.state, '') NOT IN ({window_states})
            )
            WHERE day BETWEEN date(:until, '-{HISTORY_DAYS} days')
                AND date(:until, '-1 day')
            ORDER BY id
            """,
            {"until": until.isoformat()},
        )
        sent = "FROM email_schedules WHERE status = 'sent'"
        connection.execute(
            "INSERT INTO tracking_clicks (contact_id, email_schedule_id, url, "
            "clicked_at) SELECT contact_id, id, 'https://example.com/plans', "
            f"datetime(actual_send_datetime, {hours}) {sent} "
            f"AND {click} < {CLICK_PERCENT}"
        )
        metadata = (
            f"CASE WHEN {malformed} < {MALFORMED_ANSWER_PERCENT} "
            """THEN '{"has_medical_conditions": tru' """
            "ELSE json_object('has_medical_conditions', "
            "json(CASE WHEN id % 3 = 0 THEN 'true' ELSE 'false' END), "
            "'main_questions_yes_count', CASE WHEN id % 3 = 0 THEN 2 ELSE 0 END) END"
        )
        connection.execute(
            "INSERT INTO contact_events (contact_id, event_type, metadata, "
            f"created_at) SELECT contact_id, 'eligibility_answered', {metadata}, "
            f"datetime(actual_send_datetime, {hours}, '+30 minutes') {sent} "
            f"AND {answer} < {ANSWER_PERCENT}"
        )
        connection.execute(
            "INSERT INTO email_schedules (contact_id, email_type, "
            "scheduled_send_date, status, priority, email_template, created_at, "
            "updated_at) SELECT contact_id, 'followup_1_cold', "
            "date(scheduled_send_date, '+2 days'), 'sent', priority, "
            "'followup_1_cold', date(scheduled_send_date, '+1 day') || ' 06:00:00', "
            "date(scheduled_send_date, '+2 days') || ' 13:30:00' "
            f"{sent} AND email_type = 'birthday' "
            "AND scheduled_send_date <= date(:until, '-3 days') "
            f"AND {followed} < {FOLLOW_UP_SENT_PERCENT}",
            {"until": until.isoformat()},
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


def _contact_chunks(contacts: int, seed: int) -> Iterator[Iterator[tuple[object, ...]]]:
    """Yield the contact rows in chunks of at most `CHUNK_ROWS`."""
    rng = np.random.default_rng(seed)
    pool = _zip_pool()
    for first_id in range(1, contacts + 1, CHUNK_ROWS):
        size = min(CHUNK_ROWS, contacts + 1 - first_id)
        columns = _contact_columns(rng, first_id, size, pool)
        yield zip(*columns, strict=True)


def _contact_columns(
    rng: np.random.Generator,
    first_id: int,
    size: int,
    pool: _ZipPool,
) -> list[list[object]]:
    """Return one chunk of contacts as lists of values, in table column order."""
    ids = np.arange(first_id, first_id + size, dtype=np.int64)
    case = rng.choice(len(CASE_SHARES), size=size, p=CASE_SHARES)
    gender = np.where(rng.random(size) < FEMALE_SHARE, "F", "M")
    first, last = _names(rng, gender)
    state, zip_code = _locations(rng, case, pool)

    columns: list[npt.NDArray[np.generic]] = [
        ids,
        first,
        last,
        _emails(rng, ids, first, last, case),
        _pick(rng, CARRIERS, size),
        _pick(rng, PLAN_TYPES, size),
        _effective_dates(rng, size),
        _birth_dates(rng, size),
        (rng.random(size) < TOBACCO_SHARE).astype(np.int64),
        gender,
        state,
        zip_code,
        _phones(rng, size),
        _statuses(rng, size),
        (rng.random(size) < FAILED_UNDERWRITING_SHARE).astype(np.int64),
    ]
    stamps = np.full(size, ROW_TIMESTAMP)
    columns += [stamps, stamps]
    return [column.tolist() for column in columns]


def _pick(rng: np.random.Generator, choices: Sequence[str], size: int) -> StrArray:
    """Return `size` values drawn uniformly from `choices`."""
    return np.asarray(choices)[rng.integers(0, len(choices), size)]


def _names(rng: np.random.Generator, gender: StrArray) -> tuple[StrArray, StrArray]:
    """Return first names that match `gender`, and last names."""
    size = len(gender)
    female = _pick(rng, FEMALE_NAMES, size)
    male = _pick(rng, MALE_NAMES, size)
    return np.where(gender == "F", female, male), _pick(rng, LAST_NAMES, size)


def _emails(
    rng: np.random.Generator,
    ids: IntArray,
    first: StrArray,
    last: StrArray,
    case: IntArray,
) -> StrArray:
    """Return emails unique by id, malformed where `case` is `BAD_EMAIL`."""
    local = np.strings.add(np.strings.add(first, "."), last)
    local = np.strings.add(local, ids.astype(np.str_))
    local = np.strings.lower(np.strings.replace(local, "'", ""))
    domain = _pick(rng, EMAIL_DOMAINS, len(ids))
    emails = np.strings.add(np.strings.add(local, "@"), domain)

    # Half of the bad emails lost their '@', the other half are empty.
    no_at = np.strings.add(local, domain)
    bad = np.where(rng.random(len(ids)) < 0.5, no_at, "")
    return np.where(case == BAD_EMAIL, bad, emails)


def _locations(
    rng: np.random.Generator, case: IntArray, pool: _ZipPool
) -> tuple[ObjArray, ObjArray]:
    """Return the state and ZIP columns, with the data-quality cases applied.

    A `MISMATCH` contact gets a ZIP from another state than its `state`
    column; `NO_ZIP` has a state but an empty or NULL ZIP; `BAD_ZIP` has a
    malformed ZIP and, for half of them, no state either.
    """
    size = len(case)
    states = np.asarray(list(STATE_WEIGHTS))
    weights = np.asarray(list(STATE_WEIGHTS.values()), dtype=np.float64)
    home = rng.choice(len(states), size=size, p=weights / weights.sum())
    elsewhere = (home + rng.integers(1, len(states), size)) % len(states)
    zip_state = np.where(case == MISMATCH, elsewhere, home)

    offset = (rng.random(size) * pool.count[zip_state]).astype(np.int64)
    zips = pool.zips[pool.start[zip_state] + offset]
    plus4 = np.strings.zfill(rng.integers(1, 10_000, size).astype(np.str_), 4)
    zip_plus4 = np.strings.add(np.strings.add(zips, "-"), plus4)
    zips = np.where(rng.random(size) < ZIP_PLUS4_SHARE, zip_plus4, zips)

    half = rng.random(size) < 0.5
    zip_code = zips.astype(object)
    no_zip = case == NO_ZIP
    zip_code[no_zip & half] = ""
    zip_code[no_zip & ~half] = None
    bad_zip = case == BAD_ZIP
    zip_code[bad_zip] = _pick(rng, BAD_ZIPS, size)[bad_zip]
    state = states[home].astype(object)
    state[bad_zip & half] = None
    return state, zip_code


def _birth_dates(rng: np.random.Generator, size: int) -> StrArray:
    """Return birth dates of people aged 65 to 95, a few unparseable."""
    span = int((BIRTH_LATEST - BIRTH_EARLIEST).astype(np.int64))
    days = BIRTH_EARLIEST + rng.integers(0, span + 1, size)
    dates = np.datetime_as_string(days, unit="D")
    broken = rng.random(size) < BAD_BIRTH_SHARE
    return np.where(broken, _pick(rng, BAD_BIRTH_DATES, size), dates)


def _effective_dates(rng: np.random.Generator, size: int) -> ObjArray:
    """Return policy effective dates, often on a month's first, a few NULL.

    About one in ten carries a time of day, the way some legacy imports
    stored them.
    """
    span = int((EFFECTIVE_LATEST - EFFECTIVE_EARLIEST).astype(np.int64))
    any_day = EFFECTIVE_EARLIEST + rng.integers(0, span + 1, size)
    first_month = EFFECTIVE_EARLIEST.astype("datetime64[M]")
    months = (EFFECTIVE_LATEST.astype("datetime64[M]") - first_month).astype(int)
    month_start = first_month + rng.integers(0, months + 1, size)
    on_first = rng.random(size) < FIRST_OF_MONTH_SHARE
    days = np.where(on_first, month_start.astype("datetime64[D]"), any_day)

    time_of_day = rng.integers(0, 86_400, size).astype("timedelta64[s]")
    seconds = days.astype("datetime64[s]") + time_of_day
    stamped = np.strings.replace(np.datetime_as_string(seconds), "T", " ")
    plain = np.datetime_as_string(days, unit="D")
    with_time = rng.random(size) < TIMESTAMP_SHARE
    dates = np.where(with_time, stamped, plain).astype(object)
    dates[rng.random(size) < NO_EFFECTIVE_SHARE] = None
    return dates


def _phones(rng: np.random.Generator, size: int) -> ObjArray:
    """Return fictional 555-01xx phone numbers for about 60%, else NULL."""
    area = rng.integers(201, 990, size).astype(np.str_)
    line = np.strings.zfill(rng.integers(100, 200, size).astype(np.str_), 4)
    phones = np.strings.add(np.strings.add(area, "-555-"), line).astype(object)
    phones[rng.random(size) >= PHONE_SHARE] = None
    return phones


def _statuses(rng: np.random.Generator, size: int) -> ObjArray:
    """Return contact statuses: mostly NULL or active, a few suppressed."""
    values = np.asarray(STATUSES, dtype=object)
    return values[rng.choice(len(values), size=size, p=STATUS_SHARES)]


@lru_cache(maxsize=1)
def _zip_pool() -> _ZipPool:
    """Return the active standard ZIP codes of every state we generate."""
    by_state: dict[str, list[str]] = {state: [] for state in STATE_WEIGHTS}
    # zipcodes ships without type hints; its entries are plain dicts.
    for entry in zipcodes.list_all():  # type: ignore[no-untyped-call]
        usable = entry.get("active", True) and (
            entry.get("zip_code_type", "STANDARD") == "STANDARD"
        )
        if usable and entry["state"] in by_state:
            by_state[entry["state"]].append(entry["zip_code"])

    # Sorted so the pool, and so the output, never depends on package order.
    groups = [sorted(by_state[state]) for state in STATE_WEIGHTS]
    count = np.asarray([len(group) for group in groups], dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    zips = np.asarray([code for group in groups for code in group])
    return _ZipPool(zips, start, count)
