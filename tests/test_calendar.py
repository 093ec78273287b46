"""Tests of the column date arithmetic in `email_scheduler.calendar`."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle
from email_scheduler.calendar import (
    MISSING,
    anniversary,
    civil,
    date_days,
    from_days,
    is_leap,
    months_elapsed,
    next_anniversary,
    parse_dates,
    stable_offset,
    to_days,
)

D = dt.date


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


class TestToDays:
    @pytest.mark.parametrize(
        ("day", "days"),
        [
            (D(1970, 1, 1), 0),  # the epoch
            (D(1969, 12, 31), -1),  # before the epoch is negative
            (D(2000, 3, 1), 11_017),  # after a leap day of a century leap year
            (D(2026, 6, 15), 20_619),  # a day of the product's era
        ],
    )
    def test_table(self, day: dt.date, days: int) -> None:
        assert to_days(day) == days
        assert from_days(days) == day


class TestIsLeap:
    @pytest.mark.parametrize(
        ("year", "leap"),
        [
            (2024, True),  # divisible by 4
            (2026, False),  # not divisible by 4
            (1900, False),  # a century not divisible by 400
            (2000, True),  # a century divisible by 400
        ],
    )
    def test_table(self, year: int, leap: bool) -> None:
        assert bool(is_leap(ints(year))[0]) is leap


class TestCivilAndDateDays:
    @pytest.mark.parametrize(
        "day",
        [
            D(1970, 1, 1),  # the epoch
            D(1969, 12, 31),  # the day before the epoch
            D(1900, 2, 28),  # the last day of February in a non-leap century
            D(1900, 3, 1),  # the day after it
            D(2000, 2, 29),  # leap day of a century leap year
            D(2024, 2, 29),  # leap day
            D(2024, 12, 31),  # last day of a leap year
            D(2025, 1, 1),  # first day after a leap year
            D(2099, 12, 31),  # far future
        ],
    )
    def test_table(self, day: dt.date) -> None:
        days = ints(to_days(day))
        year, month, mday = civil(days)
        assert (int(year[0]), int(month[0]), int(mday[0])) == (
            day.year,
            day.month,
            day.day,
        )
        assert int(date_days(year, month, mday)[0]) == to_days(day)

    @given(st.dates(min_value=D(1900, 1, 1), max_value=D(2200, 12, 31)))
    @settings(max_examples=200, deadline=None)
    def test_round_trip(self, day: dt.date) -> None:
        year, month, mday = civil(ints(to_days(day)))
        assert (int(year[0]), int(month[0]), int(mday[0])) == (
            day.year,
            day.month,
            day.day,
        )
        assert int(date_days(year, month, mday)[0]) == to_days(day)

    def test_whole_column(self) -> None:
        first, last = to_days(D(1899, 12, 1)), to_days(D(2101, 2, 1))
        days = np.arange(first, last, dtype=np.int64)
        year, month, mday = civil(days)
        expected = [from_days(int(d)) for d in days]
        assert [dt.date(*t) for t in zip(year, month, mday, strict=True)] == expected
        assert np.array_equal(date_days(year, month, mday), days)


def by_datetime(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (year, month, day) columns computed one `datetime.date` at a time."""
    dates = [from_days(int(d)) for d in days]
    return (
        np.array([d.year for d in dates], dtype=np.int64),
        np.array([d.month for d in dates], dtype=np.int64),
        np.array([d.day for d in dates], dtype=np.int64),
    )


class TestCivil:
    def test_every_day_of_the_product_range(self) -> None:
        # Past both ends of 1900-01-01 .. 2300-12-31, and before the epoch.
        first, last = to_days(D(1899, 12, 1)), to_days(D(2301, 1, 31))
        days = np.arange(first, last + 1, dtype=np.int64)
        found = civil(days)
        for column, expected in zip(found, by_datetime(days), strict=True):
            assert column.dtype == np.int64
            assert np.array_equal(column, expected)
        assert np.array_equal(date_days(*found), days)

    def test_random_days_of_every_year(self) -> None:
        # Years 1 .. 9999, the whole range of `datetime.date`.
        rng = np.random.default_rng(20_261_203)
        days = rng.integers(to_days(D.min), to_days(D.max) + 1, 20_000)
        found = civil(days)
        for column, expected in zip(found, by_datetime(days), strict=True):
            assert np.array_equal(column, expected)
        assert np.array_equal(date_days(*found), days)

    def test_far_outside_real_dates(self) -> None:
        # The MISSING marker still splits as numpy's proleptic calendar does.
        days = ints(MISSING, -(10**9), -1, 10**9, 2**40)
        stamps = days.astype("M8[D]")
        months = stamps.astype("M8[M]")
        year, month, mday = civil(days)
        assert np.array_equal(year, stamps.astype("M8[Y]").astype(np.int64) + 1970)
        assert np.array_equal(month, months.astype(np.int64) % 12 + 1)
        assert np.array_equal(
            mday, (stamps - months.astype("M8[D]")).astype(np.int64) + 1
        )

    def test_empty_column(self) -> None:
        year, month, mday = civil(np.zeros(0, dtype=np.int64))
        assert len(year) == len(month) == len(mday) == 0


class TestAnniversary:
    @pytest.mark.parametrize(
        ("event", "year", "expected"),
        [
            (D(1950, 6, 15), 2026, D(2026, 6, 15)),  # an ordinary day
            (D(1952, 2, 29), 2024, D(2024, 2, 29)),  # leap day in a leap year
            (D(1952, 2, 29), 2026, D(2026, 2, 28)),  # leap day -> Feb 28
            (D(1952, 2, 29), 2100, D(2100, 2, 28)),  # 2100 has no Feb 29
            (D(1952, 2, 29), 2000, D(2000, 2, 29)),  # 2000 has one
            (D(1950, 2, 28), 2024, D(2024, 2, 28)),  # Feb 28 stays Feb 28
            (D(1950, 3, 1), 2024, D(2024, 3, 1)),  # Mar 1 after a leap day
            (D(1950, 12, 31), 2026, D(2026, 12, 31)),  # last day of the year
            (D(1950, 1, 1), 2026, D(2026, 1, 1)),  # first day of the year
        ],
    )
    def test_table(self, event: dt.date, year: int, expected: dt.date) -> None:
        found = anniversary(ints(event.month), ints(event.day), year)
        assert from_days(int(found[0])) == expected
        assert oracle.anniversary(event, year) == expected


class TestNextAnniversary:
    @pytest.mark.parametrize(
        ("event", "today", "expected"),
        [
            (D(1950, 6, 15), D(2026, 3, 1), D(2026, 6, 15)),  # later this year
            (D(1950, 6, 15), D(2026, 6, 15), D(2026, 6, 15)),  # today is the day
            (D(1950, 6, 15), D(2026, 6, 16), D(2027, 6, 15)),  # just passed
            (D(1950, 12, 31), D(2026, 12, 31), D(2026, 12, 31)),  # Dec 31 today
            (D(1950, 12, 31), D(2027, 1, 1), D(2027, 12, 31)),  # Dec 31 passed
            (D(1950, 1, 1), D(2026, 12, 31), D(2027, 1, 1)),  # Jan 1 is tomorrow
            (D(1950, 1, 1), D(2027, 1, 1), D(2027, 1, 1)),  # Jan 1 today
            (D(1952, 2, 29), D(2026, 1, 10), D(2026, 2, 28)),  # non-leap year
            (D(1952, 2, 29), D(2026, 2, 28), D(2026, 2, 28)),  # Feb 28 today
            (D(1952, 2, 29), D(2026, 3, 1), D(2027, 2, 28)),  # passed
            (D(1952, 2, 29), D(2027, 3, 1), D(2028, 2, 29)),  # next is a leap year
            (D(1952, 2, 29), D(2028, 2, 28), D(2028, 2, 29)),  # not yet in a leap year
            (D(1952, 2, 29), D(2028, 2, 29), D(2028, 2, 29)),  # leap day today
        ],
    )
    def test_table(self, event: dt.date, today: dt.date, expected: dt.date) -> None:
        found = next_anniversary(ints(event.month), ints(event.day), to_days(today))
        assert from_days(int(found[0])) == expected
        assert oracle.next_anniversary(event, today) == expected

    @given(
        st.dates(min_value=D(1920, 1, 1), max_value=D(2030, 12, 31)),
        st.dates(min_value=D(2000, 1, 1), max_value=D(2060, 12, 31)),
    )
    @settings(max_examples=200, deadline=None)
    def test_agrees_with_oracle(self, event: dt.date, today: dt.date) -> None:
        found = next_anniversary(ints(event.month), ints(event.day), to_days(today))
        assert from_days(int(found[0])) == oracle.next_anniversary(event, today)


class TestMonthsElapsed:
    @pytest.mark.parametrize(
        ("start", "end", "months"),
        [
            # 30 days before the first anniversary meets the default 11
            (D(2025, 7, 1), D(2026, 6, 1), 11),
            (D(2025, 7, 15), D(2026, 6, 14), 10),  # one day short of 11
            (D(2025, 7, 15), D(2026, 6, 15), 11),  # the same day completes a month
            (D(2024, 7, 1), D(2026, 6, 1), 23),  # second anniversary meets 23
            (D(2024, 7, 1), D(2026, 5, 31), 22),  # a day earlier falls short
            (D(2023, 7, 1), D(2026, 6, 1), 35),  # third anniversary meets 35
            (D(2025, 1, 31), D(2025, 2, 28), 0),  # Feb has no 31st: not a month
            (D(2025, 1, 31), D(2025, 3, 1), 1),  # crosses the month end
            (D(2024, 2, 29), D(2025, 2, 28), 11),  # leap day start, day 28 < 29
            (D(2025, 12, 31), D(2026, 1, 1), 0),  # across New Year
            (D(2026, 6, 1), D(2026, 6, 1), 0),  # same day
            (D(2026, 6, 1), D(2026, 5, 1), -1),  # end before start is negative
            # 30 days before a March anniversary lands in February: 10 months
            (D(2025, 3, 15), D(2026, 2, 13), 10),
        ],
    )
    def test_table(self, start: dt.date, end: dt.date, months: int) -> None:
        found = months_elapsed(ints(to_days(start)), ints(to_days(end)))
        assert int(found[0]) == months
        assert oracle.months_elapsed(start, end) == months


def column(*values: str | None) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(list(values), pa.string())])


class TestParseDates:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2023-02-28", D(2023, 2, 28)),  # plain date
            ("2024-02-29", D(2024, 2, 29)),  # leap day in a leap year
            ("2023-02-28 13:45:00", D(2023, 2, 28)),  # date and time
            ("2023-02-28T13:45:00", D(2023, 2, 28)),  # ISO with T
            ("2023-02-28T13:45:00Z", D(2023, 2, 28)),  # ISO with a zone
            ("  1950-06-15  ", D(1950, 6, 15)),  # surrounding blanks
            ("2026-04-01 00:00:00", D(2026, 4, 1)),  # midnight
            ("2026-04-01 23:59:59", D(2026, 4, 1)),  # the last second of the day
            ("2016-12-31 23:59:60", D(2016, 12, 31)),  # a leap second
            ("2026-04-01 08:30", D(2026, 4, 1)),  # no seconds
            ("2026-04-01T08:30:00.250", D(2026, 4, 1)),  # fractional seconds
        ],
    )
    def test_accepted(self, text: str, expected: dt.date) -> None:
        days, malformed = parse_dates(column(text))
        assert from_days(int(days[0])) == expected
        assert not malformed[0]

    @pytest.mark.parametrize(
        "text",
        [
            "2023-02-30",  # Feb 30 does not exist
            "2023-02-29",  # no leap day in 2023
            "2023-13-01",  # month 13
            "bad",  # not a date at all
            "06/15/1950",  # US order is not accepted
            "2023-02-28x",  # trailing junk
            "2026-04-01 25:99:99",  # no hour 25, minute or second 99
            "2026-04-01 24:00:00",  # hours stop at 23
            "2026-04-01 08:60:00",  # minutes stop at 59
            "2026-04-01 08:30:61",  # seconds stop at 60
            "2026-04-01T99:00",  # no hour 99 after a T either
        ],
    )
    def test_rejected(self, text: str) -> None:
        days, malformed = parse_dates(column(text))
        assert days[0] == MISSING
        assert malformed[0]

    @pytest.mark.parametrize(
        "text",
        [
            "",  # empty is missing, not malformed
            "   ",  # blanks only
            None,  # null
        ],
    )
    def test_missing(self, text: str | None) -> None:
        days, malformed = parse_dates(column(text))
        assert days[0] == MISSING
        assert not malformed[0]

    def test_column(self) -> None:
        days, malformed = parse_dates(column("2026-01-01", "", "bad", "1950-06-15"))
        assert days.tolist() == [
            to_days(D(2026, 1, 1)),
            MISSING,
            MISSING,
            to_days(D(1950, 6, 15)),
        ]
        assert malformed.tolist() == [False, False, True, False]

    @given(
        st.lists(
            st.one_of(
                st.dates().map(dt.date.isoformat),  # real dates, leap days too
                st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),  # Feb 30, month 13
                st.from_regex(r"\A[0-9 -]{10}\Z"),  # ten characters, any shape
                st.text(max_size=12),  # anything, non-ASCII too
            ),
            max_size=30,
        )
    )
    @settings(max_examples=300, deadline=None)
    def test_agrees_with_datetime(self, texts: list[str]) -> None:
        # Plain dates are read from the bytes; datetime is the oracle.
        days, malformed = parse_dates(column(*texts))
        for text, found, bad in zip(
            texts, days.tolist(), malformed.tolist(), strict=True
        ):
            value = text.strip()
            try:
                expected = dt.date.fromisoformat(value) if len(value) == 10 else None
            except ValueError:
                expected = None
            plain = len(value) == 10 and value.isascii()
            if plain and value[4] == "-" and value[7] == "-":
                assert (found == MISSING) == (expected is None), text
                assert found == MISSING or from_days(found) == expected
                assert bad == (expected is None)
            elif not value:
                assert found == MISSING and not bad

    @given(
        st.lists(
            st.one_of(
                st.dates().map(dt.date.isoformat),
                st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
            ),
            min_size=1,
            max_size=30,
        )
    )
    @settings(max_examples=300, deadline=None)
    def test_columns_of_plain_dates_agree_with_datetime(self, texts: list[str]) -> None:
        # A column of ten-character values only is the fast, all-or-nothing case.
        days, malformed = parse_dates(column(*texts))
        for text, found, bad in zip(
            texts, days.tolist(), malformed.tolist(), strict=True
        ):
            try:
                expected = dt.date.fromisoformat(text)
            except ValueError:
                expected = None
            assert bad == (expected is None), text
            assert found == (MISSING if expected is None else to_days(expected))

    def test_year_zero_is_not_a_date(self) -> None:
        days, malformed = parse_dates(column("2026-01-01", "0000-01-01"))
        assert days.tolist() == [to_days(D(2026, 1, 1)), MISSING]
        assert malformed.tolist() == [False, True]


class TestStableOffset:
    def test_same_in_another_process(self) -> None:
        # Python's own str hash changes per process; the offset must not.
        script = (
            "import numpy as np;"
            "from email_scheduler.calendar import stable_offset;"
            "ids = np.arange(1, 21, dtype=np.int64);"
            "print(stable_offset(ids, 'birthday', ids * 0 + 20619, 7).tolist())"
        )
        outputs = {
            subprocess.run(
                [sys.executable, "-c", script],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONHASHSEED": seed},
            ).stdout
            for seed in ("1", "2")
        }
        ids = np.arange(1, 21, dtype=np.int64)
        here = stable_offset(ids, "birthday", ids * 0 + 20_619, 7).tolist()
        assert outputs == {f"{here}\n"}

    @given(
        st.lists(st.integers(0, 10**9), min_size=1, max_size=50),
        st.sampled_from(["birthday", "effective_date", "aep", "post_window"]),
        st.integers(to_days(D(1990, 1, 1)), to_days(D(2100, 1, 1))),
        st.integers(1, 60),
    )
    @settings(max_examples=100, deadline=None)
    def test_in_range_and_per_row(
        self, ids: list[int], email_type: str, event: int, modulo: int
    ) -> None:
        contact = np.array(ids, dtype=np.int64)
        events = np.full(len(ids), event, dtype=np.int64)
        found = stable_offset(contact, email_type, events, modulo)
        assert ((found >= 0) & (found < modulo)).all()
        # Each row's offset depends on that row alone, not on its neighbours.
        alone = [
            stable_offset(contact[i : i + 1], email_type, events[i : i + 1], modulo)
            for i in range(len(ids))
        ]
        assert found.tolist() == np.concatenate(alone).tolist()

    def test_spreads(self) -> None:
        ids = np.arange(1, 701, dtype=np.int64)
        event = np.full(700, to_days(D(2026, 6, 15)), dtype=np.int64)
        counts = np.bincount(stable_offset(ids, "birthday", event, 7), minlength=7)
        assert counts.min() > 50  # every day of the spread gets a share

    def test_depends_on_identity(self) -> None:
        ids = np.arange(1, 201, dtype=np.int64)
        event = np.full(200, to_days(D(2026, 6, 15)), dtype=np.int64)
        base = stable_offset(ids, "birthday", event, 1000)
        assert (base != stable_offset(ids, "aep", event, 1000)).any()
        assert (base != stable_offset(ids, "birthday", event + 1, 1000)).any()
