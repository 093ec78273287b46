"""Tests of identity keys in `email_scheduler.identity`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from email_scheduler.identity import contains


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


class TestContains:
    @pytest.mark.parametrize(
        ("keys", "query", "expected"),
        [
            ((), (1, 2), (False, False)),  # no keys at all
            ((5,), (5,), (True,)),  # the only key
            ((5, 9), (1,), (False,)),  # before the first key
            ((5, 9), (10,), (False,)),  # past the last key
            ((5, 9), (9,), (True,)),  # the last key
            ((5, 9), (7,), (False,)),  # between two keys
            ((3, 3, 8), (3, 8, 4), (True, True, False)),  # repeated keys
            ((-4, 0, 2**62), (2**62, -4), (True, True)),  # extremes, any order
            ((1, 2), (), ()),  # no query
        ],
    )
    def test_table(
        self,
        keys: tuple[int, ...],
        query: tuple[int, ...],
        expected: tuple[bool, ...],
    ) -> None:
        found = contains(ints(*keys), ints(*query))
        assert found.dtype == np.bool_
        assert found.tolist() == list(expected)

    @given(
        st.lists(st.integers(-(2**62), 2**62), max_size=40),
        st.lists(st.integers(-(2**62), 2**62), max_size=40),
    )
    @settings(max_examples=200, deadline=None)
    def test_agrees_with_isin(self, keys: list[int], query: list[int]) -> None:
        # Queries are drawn from the keys too, so that hits are common.
        both = ints(*query, *keys[::2])
        found = contains(np.sort(ints(*keys)), both)
        assert found.tolist() == np.isin(both, ints(*keys)).tolist()
