"""The bundled ZIP database and its cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from email_scheduler import geography

PROBE = (
    "from email_scheduler.geography import state_codes, zip_states;"
    "t = zip_states(); print(state_codes()[t[2134]], state_codes()[t[90210]], t[0])"
)


class TestZipTable:
    @pytest.mark.parametrize(
        ("zip_code", "state"),
        [
            (2134, "MA"),  # Allston, Boston: a leading zero in the written form
            (10001, "NY"),  # Manhattan
            (90210, "CA"),  # Beverly Hills
            (73301, "TX"),  # Austin IRS
            (89501, "NV"),  # Reno
            (99501, "AK"),  # Anchorage
        ],
    )
    def test_known_zip_codes(self, zip_code: int, state: str) -> None:
        assert geography.state_codes()[geography.zip_states()[zip_code]] == state

    def test_unknown_zip_code(self) -> None:
        # 00000 is not a ZIP code; military regions (AA, AE, AP) are not states.
        assert geography.zip_states()[0] == geography.UNKNOWN_STATE
        assert not {"AA", "AE", "AP"} & set(geography.state_codes())

    def test_every_state_and_dc(self) -> None:
        assert len(geography.state_codes()) >= 51
        assert {"CA", "DC", "NY", "WA", "PR"} <= set(geography.state_codes())


def test_cache_is_written_once_and_read_back(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    run = [sys.executable, "-c", PROBE]
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    (cached,) = (tmp_path / "email-scheduler").glob("zip-states-*.npz")
    stamp = cached.stat().st_mtime_ns
    second = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert first.stdout == second.stdout == "MA CA -1\n"
    assert cached.stat().st_mtime_ns == stamp

    codes, table = geography._build()
    with np.load(cached) as stored:
        assert tuple(stored["codes"]) == codes
        assert np.array_equal(stored["table"], table)


def test_unwritable_cache_still_works(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = {**os.environ, "XDG_CACHE_HOME": str(blocker)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "MA CA -1\n"
