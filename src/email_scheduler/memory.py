"""Giving the memory a run frees back to the system, between its stages.

A run allocates and frees columns of a few MB all the time. Two allocators
keep what is freed for later: glibc's heap (where the ADBC driver's query
results live too) and Arrow's pool. Left alone, a run on a large org would
hold hundreds of MB it no longer uses when balancing starts, so it asks
both to give memory back after planning, after balancing, and between the
partitions it writes. Between the partitions it plans it does not: the
next partition reuses what the last one freed, and pages handed back
would cost a kernel fault each to take again. Without glibc only Arrow's
is given back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pyarrow as pa


def _libc(function: str) -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    library = ctypes.CDLL(name) if name else None
    found: Callable[..., int] | None = getattr(library, function, None)
    return found


_TRIM = _libc("malloc_trim")
_MALLOPT = _libc("mallopt")
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 16 << 20
"""Allocations from this size on get pages of their own (glibc).

A partition's columns (a few MB at most) stay below it and reuse the
heap's pages; every new page costs the kernel a fault, and at 1 MB the
faults took a 3M org's daily run about 3 s of system time. The columns
of all partitions' emails, which balancing holds, lie above it."""


def return_large_blocks() -> None:
    """Have glibc give every large block back to the system when it is freed.

    By default glibc raises that threshold to the largest block freed so
    far, so that a run's largest columns end up on a heap that only
    grows: a balancing pass over 7 million emails held 160 MB it had
    freed. The setting is the process's; elsewhere this does nothing.
    """
    if _MALLOPT is not None:
        _MALLOPT(_M_MMAP_THRESHOLD, LARGE_BLOCK)


def release_freed_memory() -> None:
    """Give the memory freed so far back to the system."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
