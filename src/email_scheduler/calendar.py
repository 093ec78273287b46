"""Date arithmetic on columns of days.

A date is held as an integer: the number of days since 1970-01-01 (the
epoch of numpy's ``datetime64[D]``). Whole columns of dates are computed at
once with numpy; nothing here loops over rows in Python.

Anniversaries follow one rule for the leap day: the anniversary of Feb 29
in a year without a Feb 29 is Feb 28 of that year. Because today is fixed
for a run, the anniversary of a date depends only on its month and day, so
these functions take month and day columns rather than whole dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Days = npt.NDArray[np.int64]
Ints = npt.NDArray[np.int64]

EPOCH = dt.date(1970, 1, 1)
MISSING = np.int64(-(2**40))
"""Marks a missing date in a column of days; sorts before every real date."""

_MONTH_START = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
_DAYS_BEFORE_EPOCH = 719_468  # from 0000-03-01 to 1970-01-01
_DAYS_PER_ERA = 146_097  # 400 Gregorian years
_MONTH_OF_MARCH_MONTH = np.array(
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2], dtype=np.int64
)


def to_days(day: dt.date) -> int:
    """Return `day` as a count of days since 1970-01-01."""
    return (day - EPOCH).days


def from_days(days: int) -> dt.date:
    """Return the date `days` days after 1970-01-01."""
    return EPOCH + dt.timedelta(days=int(days))


def is_leap(year: Ints) -> npt.NDArray[np.bool_]:
    """Return, for each year, whether it has a Feb 29."""
    return (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))


def civil(days: Days) -> tuple[Ints, Ints, Ints]:
    """Return the (year, month, day) columns of a column of days.

    Days of the years 1800 to 2400, all a run ever meets but for the
    `MISSING` marker, are looked up in a table; others are computed.
    """
    days = np.asarray(days, dtype=np.int64)
    at = days - _TABLE_FIRST_DAY
    if len(at) and at.min() >= 0 and at.max() < len(_TABLE_YEAR):
        return _TABLE_YEAR[at], _TABLE_MONTH[at], _TABLE_DAY[at]
    return _civil(days)


def _civil(days: Days) -> tuple[Ints, Ints, Ints]:
    """Return the (year, month, day) columns of a column of days, computed.

    Integer arithmetic only, several times faster than going through
    datetime64. Days are counted from 0000-03-01 so that the leap day ends
    each year; the Gregorian calendar repeats every 400 years (an era of
    146,097 days). Within an era, dropping a day every 4 years, adding one
    back every 100 and dropping one every 400 leaves years of exactly 365
    days, so one division finds the year. Within a March-based year the
    months run 31-30-31-30-31 twice and then 31-28/29, a pattern that
    `(5 * day + 2) // 153` counts. Exact far beyond any real date, the
    `MISSING` marker included.
    """
    shifted = np.asarray(days, dtype=np.int64) + _DAYS_BEFORE_EPOCH
    era = shifted // _DAYS_PER_ERA
    # Days within an era fit 32 bits, which halves the memory traffic.
    day_of_era = (shifted - era * _DAYS_PER_ERA).astype(np.int32)
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (
        365 * year_of_era + year_of_era // 4 - year_of_era // 100
    )
    march_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * march_month + 2) // 5 + 1
    year = era * 400 + year_of_era + (march_month >= 10)
    return year, _MONTH_OF_MARCH_MONTH[march_month], day.astype(np.int64)


def _year_starts(year: Ints) -> Days:
    return (year - 1970).astype("M8[Y]").astype("M8[D]").astype(np.int64)


def _in_table(year: Ints) -> bool:
    return bool(
        len(year) == 0
        or (year.min() >= _TABLE_FIRST_YEAR and year.max() <= _TABLE_LAST_YEAR)
    )


def _leap(year: Ints) -> npt.NDArray[np.bool_]:
    """Return `is_leap(year)`, looked up for the years of the table."""
    if _in_table(year):
        return _TABLE_LEAP[year - _TABLE_FIRST_YEAR]
    return is_leap(year)


def date_days(year: Ints, month: Ints, day: Ints) -> Days:
    """Return the days of valid (year, month, day) columns."""
    year = np.asarray(year, dtype=np.int64)
    month = np.asarray(month, dtype=np.int64)
    if _in_table(year):
        starts = _TABLE_YEAR_START[year - _TABLE_FIRST_YEAR]
    else:
        starts = _year_starts(year)
    leap_shift = (_leap(year) & (month > 2)).astype(np.int64)
    return starts + _MONTH_START[month - 1] + leap_shift + day - 1


def anniversary(month: Ints, day: Ints, year: Ints | int) -> Days:
    """Return the anniversary of (month, day) in `year`, Feb 29 -> Feb 28."""
    year = np.broadcast_to(np.asarray(year, dtype=np.int64), np.shape(month))
    clamp = (month == 2) & (day == 29) & ~_leap(year)
    return date_days(year, month, np.where(clamp, 28, day))


_TABLE_FIRST_YEAR, _TABLE_LAST_YEAR = 1800, 2400
_TABLE_YEARS = np.arange(_TABLE_FIRST_YEAR, _TABLE_LAST_YEAR + 2, dtype=np.int64)
_TABLE_YEAR_START = _year_starts(_TABLE_YEARS)
_TABLE_LEAP = is_leap(_TABLE_YEARS)
_TABLE_FIRST_DAY = int(_TABLE_YEAR_START[0])
_TABLE_YEAR, _TABLE_MONTH, _TABLE_DAY = _civil(
    np.arange(_TABLE_FIRST_DAY, int(_TABLE_YEAR_START[-1]), dtype=np.int64)
)


def next_anniversary(month: Ints, day: Ints, today: int) -> Days:
    """Return the first anniversary of (month, day) that is today or later."""
    this_year = from_days(today).year
    current = anniversary(month, day, this_year)
    return np.where(current >= today, current, anniversary(month, day, this_year + 1))


def months_elapsed(start: Days, end: Days) -> Ints:
    """Return whole months from `start` to `end` (a month ends on the same day)."""
    y1, m1, d1 = civil(start)
    y2, m2, d2 = civil(end)
    return 12 * (y2 - y1) + (m2 - m1) - (d2 < d1).astype(np.int64)


def age_on(birth_year: Ints, birth_month: Ints, birth_day: Ints, on: Days) -> Ints:
    """Return the age in whole years on each date `on`."""
    year, month, day = civil(on)
    before_birthday = (month < birth_month) | (
        (month == birth_month) & (day < birth_day)
    )
    return year - birth_year - before_birthday.astype(np.int64)


def text_salt(text: str) -> np.uint64:
    return np.uint64(
        int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())
    )


def mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # splitmix64 finaliser: every input bit reaches every output bit.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def stable_offset(contact_id: Ints, email_type: str, event: Days, modulo: int) -> Ints:
    """Return a per-email offset in [0, modulo) that is the same in every process.

    The offset hashes the email's identity (contact, type, event date):
    BLAKE2 names the type once, and a splitmix64 mix spreads the columns, so
    spreading is reproducible without hashing a string per row.
    """
    with np.errstate(over="ignore"):
        x = contact_id.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= text_salt(email_type)
        x ^= mix64(event.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019))
        hashed = mix64(x)
    return (hashed % np.uint64(modulo)).astype(np.int64)


# A time such as 25:99 means a corrupt value, so it makes the date malformed;
# second 60 is a leap second.
_DATE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)


def _flags(column: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    return np.asarray(
        column.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool
    )


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_ZERO = ord("0")


def plain_dates(text: pa.Array) -> tuple[Days, npt.NDArray[np.bool_], Ints]:
    """Return (days, valid, length) of text values, reading `YYYY-MM-DD` only.

    Values of any other length are left invalid, for the general parser.
    The digits are read straight from the Arrow buffers: no string per row.
    """
    n = len(text)
    _, offsets, data = text.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32, count=n + 1, offset=text.offset * 4)
    length = np.diff(bounds)
    if n and text.null_count == 0 and (length == 10).all():
        every = _every_plain_date(text)
        if every is not None:
            return every, np.ones(n, dtype=bool), length
    days = np.full(n, MISSING, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    ten = np.flatnonzero(length == 10)
    if not len(ten) or data is None:
        return days, valid, length
    raw = np.frombuffer(data, dtype=np.uint8)
    if len(ten) == n:  # every value: the characters lie end to end
        first = int(bounds[0])
        chars = raw[first : first + 10 * n].reshape(n, 10)

        def char(k: int) -> npt.NDArray[np.uint8]:
            return chars[:, k]
    else:
        starts = bounds[ten]

        def char(k: int) -> npt.NDArray[np.uint8]:
            return raw[starts + k]

    shaped = (char(4) == ord("-")) & (char(7) == ord("-"))
    digit = {}
    for k in (0, 1, 2, 3, 5, 6, 8, 9):
        value = char(k) - np.uint8(_ZERO)  # wraps below "0": then above 9
        shaped &= value <= 9
        digit[k] = value.astype(np.int32)
    year = digit[0] * 1000 + digit[1] * 100 + digit[2] * 10 + digit[3]
    month = digit[5] * 10 + digit[6]
    day = digit[8] * 10 + digit[9]
    real = shaped & (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    longest = _DAYS_IN_MONTH[np.where(real, month, 1)] + ((month == 2) & is_leap(year))
    real &= day <= longest
    days[ten[real]] = date_days(year[real], month[real], day[real])
    valid[ten[real]] = True
    return days, valid, length


_FIRST_PLAIN_DAY = int(np.datetime64("0001-01-01", "D").astype(np.int64))


def _every_plain_date(text: pa.Array) -> Days | None:
    """Return the days of text values that are all real `YYYY-MM-DD` dates
    from year 1 on, through Arrow's own parser; None if any is not.

    The common case, a column of clean dates, is parsed a few times faster
    than digit by digit; a single odd value sends the column the long way.
    """
    try:
        days = pc.cast(text, pa.date32()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    days = days.astype(np.int64)
    if days.min() < _FIRST_PLAIN_DAY:
        return None
    return days


def parse_dates(column: pa.ChunkedArray) -> tuple[Days, npt.NDArray[np.bool_]]:
    """Return (days, malformed) for a text column of dates.

    Accepts `YYYY-MM-DD`, optionally followed by a time of day (00:00 to
    23:59:60) after a space or `T`. An empty value is missing; anything else
    that is not a real calendar date and time is missing and flagged as
    malformed. Plain dates, the common case, are read without parsing text.
    """
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.fill_null("")
    days, valid, length = plain_dates(text)
    other = np.flatnonzero((length != 10) & (length > 0))
    if len(other):
        days[other], valid[other] = _timed_dates(text.take(pa.array(other)))
    return days, (length > 0) & ~valid


def _timed_dates(text: pa.Array) -> tuple[Days, npt.NDArray[np.bool_]]:
    """Return (days, valid) of dates written with a time of day (or wrong)."""
    day = pc.utf8_slice_codeunits(text, 0, 10)
    parsed = pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2023-02-30 over to March; formatting back catches that.
    exact = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), day)
    valid = _flags(pc.and_(pc.match_substring_regex(text, _DATE), exact))
    days = parsed.cast(pa.date32()).cast(pa.int32()).fill_null(0).to_numpy()
    return np.where(valid, days.astype(np.int64), MISSING), valid
