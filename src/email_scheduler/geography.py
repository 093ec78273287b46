"""US states and the bundled ZIP-code database.

The ZIP data comes from the `zipcodes` package, which ships the USPS list
inside the wheel, so resolving a state needs no network and no download.
Loading that list builds some 40,000 Python dicts (about a second and
140 MB at peak), so the two small tables derived from it are cached in the
user's cache folder, keyed by the package's version, and later runs load
them in milliseconds. Without a writable cache folder the tables are simply
rebuilt each run.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger("email_scheduler")

# Military mail regions have ZIP codes but are not states.
_NOT_STATES = frozenset({"AA", "AE", "AP"})

UNKNOWN_STATE = -1


def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "email-scheduler" / f"zip-states-{version('zipcodes')}.npz"


def _build() -> tuple[tuple[str, ...], npt.NDArray[np.int16]]:
    import zipcodes  # loaded only when the cache is cold

    entries = zipcodes.list_all()
    codes = tuple(sorted({entry["state"] for entry in entries} - _NOT_STATES))
    index = {code: i for i, code in enumerate(codes)}
    table = np.full(100_000, UNKNOWN_STATE, dtype=np.int16)
    for entry in entries:
        state = index.get(entry["state"])
        if state is not None:
            table[int(entry["zip_code"])] = state
    return codes, table


@cache
def _tables() -> tuple[tuple[str, ...], npt.NDArray[np.int16]]:
    path = _cache_file()
    try:
        with np.load(path) as stored:
            return tuple(str(code) for code in stored["codes"]), stored["table"]
    except (OSError, KeyError, ValueError):
        pass
    codes, table = _build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.npz")
        np.savez(partial, codes=np.array(codes), table=table)
        partial.replace(path)
    except OSError as exc:
        log.debug("ZIP table not cached at %s: %s", path, exc)
    return codes, table


def state_codes() -> tuple[str, ...]:
    """Return every valid state code (50 states, DC and territories), sorted."""
    return _tables()[0]


@cache
def state_index() -> dict[str, int]:
    """Return the position of each state code in `state_codes()`."""
    return {code: i for i, code in enumerate(state_codes())}


def zip_states() -> npt.NDArray[np.int16]:
    """Return a table from 5-digit ZIP (as an integer) to state index, or -1."""
    return _tables()[1]
