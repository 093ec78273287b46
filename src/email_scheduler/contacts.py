"""Contacts as columns: parsing, state resolution, eligibility.

The store hands over the contacts table as Arrow text columns; this module
turns them into typed numpy columns and records every data-quality problem.
A malformed value never stops a run: it is treated as missing and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from email_scheduler.calendar import MISSING, Days, Ints, parse_dates
from email_scheduler.geography import (
    UNKNOWN_STATE,
    state_codes,
    state_index,
    zip_states,
)

Mask = npt.NDArray[np.bool_]

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_ZIP = r"^[0-9]{5}(-[0-9]{4})?$"
_TRUE = ["1", "true", "t", "yes", "y"]

# Data-quality issues; the first three leave a contact without any email.
INVALID_EMAIL = "invalid_email"
SUPPRESSED = "suppressed_status"
UNKNOWN_STATE_ISSUE = "unknown_state"
INVALID_BIRTH_DATE = "invalid_birth_date"
FUTURE_BIRTH_DATE = "future_birth_date"
INVALID_EFFECTIVE_DATE = "invalid_effective_date"
INVALID_ZIP_CODE = "invalid_zip_code"
STATE_MISMATCH = "state_mismatch"
INVALID_TEXT = "invalid_text"
DUPLICATE_ID = "duplicate_id"


@dataclass(frozen=True)
class Contacts:
    """Typed columns of an org's contacts, one position per contact."""

    id: Ints
    state: npt.NDArray[np.int16]
    birth: Days
    effective: Days
    carrier: pa.ChunkedArray
    failed_underwriting: Mask
    has_phone: Mask
    reachable: Mask
    """A valid email and a status that is not suppressed."""

    def __len__(self) -> int:
        return len(self.id)

    @property
    def known_state(self) -> Mask:
        return self.state != UNKNOWN_STATE

    def state_code(self, position: int) -> str | None:
        """Return the state code of the contact at `position`, if known."""
        state = int(self.state[position])
        return None if state == UNKNOWN_STATE else state_codes()[state]


@dataclass(frozen=True)
class DataQuality:
    """Data-quality issues found while reading contacts: one row per issue."""

    contact_id: Ints
    issue: list[str]
    detail: list[str]

    @staticmethod
    def concat(parts: list[DataQuality]) -> DataQuality:
        """Return the issues of every part, in order."""
        return DataQuality(
            np.concatenate([p.contact_id for p in parts] or [np.zeros(0, int)]),
            [issue for p in parts for issue in p.issue],
            [detail for p in parts for detail in p.detail],
        )

    def counts(self) -> dict[str, int]:
        """Return the number of contacts with each issue."""
        names, counts = np.unique(
            np.array(self.issue, dtype=object), return_counts=True
        )
        return {
            str(name): int(count) for name, count in zip(names, counts, strict=True)
        }


def decode_text(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, Mask]:
    """Return a binary column as text, and which values were not UTF-8.

    Such values (written by a system with another encoding, say) read as
    empty. Checking is left to Arrow's cast; only a column that fails it is
    decoded value by value, to find the culprits.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    try:
        return column.cast(pa.string()), np.zeros(len(column), dtype=bool)
    except pa.ArrowInvalid:
        pass
    bad = np.zeros(len(column), dtype=bool)
    values: list[str | None] = []
    for at, value in enumerate(column.to_pylist()):
        try:
            values.append(None if value is None else value.decode("utf-8"))
        except UnicodeDecodeError:
            bad[at] = True
            values.append("")
    return pa.array(values, type=pa.string()), bad


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(column.cast(pa.string()))


def _mask(array: pa.ChunkedArray) -> Mask:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def resolve_states(
    zip_code: pa.ChunkedArray, state: pa.ChunkedArray
) -> tuple[npt.NDArray[np.int16], Mask, Mask]:
    """Return (state index, malformed ZIP, mismatch) per contact.

    The bundled ZIP database wins when the ZIP is well formed and known;
    otherwise a valid state column is used; otherwise the state is unknown.
    """
    zips = _text(zip_code)
    zip_present = _mask(pc.not_equal(zips, ""))
    well_formed = _mask(pc.match_substring_regex(zips, _ZIP))
    five = pc.utf8_slice_codeunits(pc.if_else(well_formed, zips, "00000"), 0, 5)
    from_zip = zip_states()[five.cast(pa.int32()).to_numpy()]
    from_zip = np.where(well_formed, from_zip, UNKNOWN_STATE).astype(np.int16)

    codes = pc.utf8_upper(_text(state))
    lookup = pa.array(state_codes())
    from_column = pc.index_in(codes, value_set=lookup).fill_null(UNKNOWN_STATE)
    from_column = from_column.to_numpy().astype(np.int16)

    resolved = np.where(from_zip != UNKNOWN_STATE, from_zip, from_column)
    mismatch = (from_zip != UNKNOWN_STATE) & (from_column != UNKNOWN_STATE)
    mismatch &= from_zip != from_column
    return resolved.astype(np.int16), zip_present & ~well_formed, mismatch


def _unique_ids(ids: Ints) -> Mask:
    """Return which rows of ascending `ids` are the first with their id."""
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return first


def build_contacts(
    raw: pa.Table, today: int, suppressed_statuses: Iterable[str]
) -> tuple[Contacts, DataQuality]:
    """Return typed contacts and their data-quality issues from raw text columns.

    `raw` has the columns id, email, zip_code, state, birth_date,
    effective_date, carrier, failed_underwriting, phone_number, status, in
    ascending id order, as text or as bytes (decoded here). A contacts table
    without a primary key may repeat an id: the first row counts, the others
    are reported.
    """
    all_ids = raw.column("id").to_numpy().astype(np.int64)
    first = _unique_ids(all_ids)
    repeated = all_ids[~first]
    if not first.all():
        raw = raw.filter(pa.array(first))
    ids = all_ids[first]
    columns: dict[str, pa.Array] = {}
    undecodable: list[tuple[str, Mask, str]] = []
    for name in raw.column_names[1:]:
        columns[name], bad = decode_text(raw.column(name))
        undecodable.append((INVALID_TEXT, bad, f"{name} is not UTF-8 text"))
    email_ok = _mask(pc.match_substring_regex(_text(columns["email"]), _EMAIL))
    status = pc.utf8_lower(_text(columns["status"]))
    suppressed = _mask(
        pc.is_in(status, value_set=pa.array(sorted(suppressed_statuses)))
    )
    state, bad_zip, mismatch = resolve_states(columns["zip_code"], columns["state"])
    birth, bad_birth = parse_dates(columns["birth_date"])
    future_birth = (birth != MISSING) & (birth > today)
    birth = np.where(future_birth, MISSING, birth)
    effective, bad_effective = parse_dates(columns["effective_date"])
    failed = pc.utf8_lower(_text(columns["failed_underwriting"]))

    contacts = Contacts(
        id=ids,
        state=state,
        birth=birth,
        effective=effective,
        carrier=pa.chunked_array([pc.utf8_lower(_text(columns["carrier"]))]),
        failed_underwriting=_mask(pc.is_in(failed, value_set=pa.array(_TRUE))),
        has_phone=_mask(pc.not_equal(_text(columns["phone_number"]), "")),
        reachable=email_ok & ~suppressed,
    )
    issues = [
        (INVALID_EMAIL, ~email_ok, "email is missing or malformed"),
        (SUPPRESSED, email_ok & suppressed, "contact status suppresses email"),
        (UNKNOWN_STATE_ISSUE, state == UNKNOWN_STATE, "no known ZIP code or state"),
        (INVALID_ZIP_CODE, bad_zip, "zip_code is not 5 digits or ZIP+4"),
        (STATE_MISMATCH, mismatch, "state column disagrees with the ZIP code"),
        (INVALID_BIRTH_DATE, bad_birth, "birth date does not parse"),
        (FUTURE_BIRTH_DATE, future_birth, "birth date is after today"),
        (INVALID_EFFECTIVE_DATE, bad_effective, "effective date does not parse"),
        *undecodable,
    ]
    quality = _collect(ids, issues)
    if len(repeated):
        quality = DataQuality(
            np.concatenate([quality.contact_id, repeated]),
            quality.issue + [DUPLICATE_ID] * len(repeated),
            quality.detail + ["another contacts row has this id"] * len(repeated),
        )
    return contacts, quality


def _collect(ids: Ints, issues: list[tuple[str, Mask, str]]) -> DataQuality:
    found_ids: list[Ints] = []
    names: list[str] = []
    details: list[str] = []
    for name, mask, detail in issues:
        hit = ids[mask]
        found_ids.append(hit)
        names.extend([name] * len(hit))
        details.extend([detail] * len(hit))
    return DataQuality(np.concatenate(found_ids), names, details)


def state_position(code: str) -> int:
    """Return the index of a state code, or -1 when it is not a state."""
    return state_index().get(code.upper(), UNKNOWN_STATE)
