"""Partitions of a run's contacts, and setting them aside between passes.

A run plans its contacts in partitions of contact ids (see `run`), and
balances the outgoing emails of all of them before it writes any. Between
the two passes each partition's plan and rows wait on disk, in a private
folder that is removed when the run ends however it ends, so that memory
holds one partition at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import pickle
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from email_scheduler.store.writer import Changes

PARTITION_CONTACTS = 100_000
"""Contacts per partition: large enough that per-partition costs vanish,
small enough that one partition's plan and rows stay a few hundred MB."""


def _libc(function: str) -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    library = ctypes.CDLL(name) if name else None
    found: Callable[..., int] | None = getattr(library, function, None)
    return found


_TRIM = _libc("malloc_trim")
_MALLOPT = _libc("mallopt")
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 1 << 20
"""Allocations from this size on get pages of their own (glibc)."""


def return_large_blocks() -> None:
    """Have glibc give every large block back to the system when it is freed.

    By default glibc raises that threshold to the largest block freed so
    far, so that a run's columns of a few MB end up on a heap that only
    grows: a balancing pass over 7 million emails held 160 MB it had
    freed. The setting is the process's; elsewhere this does nothing.
    """
    if _MALLOPT is not None:
        _MALLOPT(_M_MMAP_THRESHOLD, LARGE_BLOCK)


def release_freed_memory() -> None:
    """Give the memory freed by the last partition back to the system.

    The ADBC driver hands query results over in buffers of the C heap, and
    glibc keeps freed heap pages for later, as Arrow's allocator keeps its
    own: after a few partitions a run would hold hundreds of MB it no
    longer uses. Without glibc only Arrow's are given back.
    """
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


@dataclass(frozen=True)
class SetAside:
    """What the writing pass needs of one planned partition."""

    changes: Changes
    """The partition's changes, before balancing dates its outgoing emails."""
    strings: list[str]
    """The partition's vocabulary: the text of every code in the changes."""


class Shelf:
    """A private folder of set-aside partitions, removed by `close`."""

    def __init__(self, beside: Path) -> None:
        try:
            self.folder = Path(
                tempfile.mkdtemp(prefix=f".{beside.name}.run-", dir=beside.parent)
            )
        except OSError:
            # A read-only folder (a dry run of a shared database, say).
            self.folder = Path(tempfile.mkdtemp(prefix="email-scheduler-run-"))

    def put(self, number: int, part: SetAside) -> None:
        """Write one partition to disk."""
        with (self.folder / f"{number}.pickle").open("wb") as handle:
            pickle.dump(part, handle, protocol=pickle.HIGHEST_PROTOCOL)

    def get(self, number: int) -> SetAside:
        """Read one partition back."""
        with (self.folder / f"{number}.pickle").open("rb") as handle:
            part = pickle.load(handle)
        assert isinstance(part, SetAside)
        return part

    def close(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.folder, ignore_errors=True)
