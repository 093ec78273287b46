"""Work on partitions two at a time, each thread reading through its own connection."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from email_scheduler.store.database import connect_columnar

WORKERS = 2
"""Partitions worked on at once, each on a thread of its own. SQLite and
numpy leave Python's lock free for most of the work, so two threads keep
both cores of a 2-core machine busy; each one more holds another partition
in memory."""

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def in_order(
    path: Path, work: Callable[[Any, int, T], R], items: list[T], prefix: str
) -> Iterator[Iterator[R]]:
    """Yield `work(connection, number, item)` for each item, in order.

    Each thread reads through an ADBC connection of its own. An item is
    started only once the one `WORKERS` places before it has been taken,
    so that memory holds at most `WORKERS` results besides the one the
    caller is using.
    """
    local = threading.local()
    connections: list[Any] = []

    def run(number: int, item: T) -> R:
        if not hasattr(local, "columnar"):
            local.columnar = connect_columnar(path)
            connections.append(local.columnar)
        return work(local.columnar, number, item)

    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=prefix)

    def results() -> Iterator[R]:
        numbered = iter(enumerate(items))
        pending = deque(
            pool.submit(run, number, item) for number, item in islice(numbered, WORKERS)
        )
        while pending:
            done = pending.popleft().result()
            # The next item starts before this one is used: no thread waits
            # while the caller takes in a result.
            for number, item in islice(numbered, 1):  # the next item, if any
                pending.append(pool.submit(run, number, item))
            yield done

    try:
        yield results()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for columnar in connections:
            columnar.close()
