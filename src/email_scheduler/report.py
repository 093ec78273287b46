"""What a run read, planned and wrote, and how long each phase took."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

Progress = Callable[[str], None]
"""Called with the name of each phase as it starts."""


@dataclass
class RunReport:
    """What a run read, planned and wrote."""

    run_id: str
    database: str
    today: str
    dry_run: bool
    config_version: str
    contacts_read: int = 0
    contacts_eligible: int = 0
    contacts_without_email: dict[str, int] = field(default_factory=dict)
    data_quality: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    balancing: dict[str, int] = field(default_factory=dict)
    interrupted_runs_before: int = 0
    backup: str | None = None
    repeat_of: str | None = None
    """The run whose plan stands, when this one found the same inputs on the
    same day and did not plan again (see `rerun`)."""
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return asdict(self)


PHASES = ("read", "plan", "constrain", "balance", "write")


class Phases:
    """Times the phases of a run; a phase met in every partition adds up,
    from whichever thread the partition is planned on."""

    def __init__(self, report: RunReport, progress: Progress | None) -> None:
        self.report = report
        self.progress = progress
        self._lock = threading.Lock()
        report.seconds = dict.fromkeys(PHASES, 0.0)

    @contextmanager
    def __call__(self, name: str, detail: str = "") -> Iterator[None]:
        if self.progress:
            self.progress(f"{name} {detail}".strip())
        started = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - started)

    def add(self, name: str, spent: float) -> None:
        """Add `spent` seconds to a phase."""
        with self._lock:
            seconds = self.report.seconds
            seconds[name] = round(seconds.get(name, 0) + spent, 3)
