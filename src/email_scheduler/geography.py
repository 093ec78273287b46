"""US states and the bundled ZIP-code database.

The ZIP data comes from the `zipcodes` package, which ships the USPS list
inside the wheel, so resolving a state needs no network and no download.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
import zipcodes

# Military mail regions have ZIP codes but are not states.
_NOT_STATES = frozenset({"AA", "AE", "AP"})

UNKNOWN_STATE = -1


@cache
def state_codes() -> tuple[str, ...]:
    """Return every valid state code (50 states, DC and territories), sorted."""
    found = {entry["state"] for entry in zipcodes.list_all()}
    return tuple(sorted(found - _NOT_STATES))


@cache
def state_index() -> dict[str, int]:
    """Return the position of each state code in `state_codes()`."""
    return {code: i for i, code in enumerate(state_codes())}


@cache
def zip_states() -> npt.NDArray[np.int16]:
    """Return a table from 5-digit ZIP (as an integer) to state index, or -1."""
    table = np.full(100_000, UNKNOWN_STATE, dtype=np.int16)
    index = state_index()
    for entry in zipcodes.list_all():
        state = index.get(entry["state"])
        if state is not None:
            table[int(entry["zip_code"])] = state
    return table
