"""Benchmark of whole scheduler runs on generated org databases.

For each size it builds (or reuses) a generated org database, then times
four runs in a fresh copy, as separate processes so that wall time and peak
RSS are those of the whole command:

1. cold: first run, with no pending row in email_schedules (only the sent
   history the generator leaves);
2. warm: the same day again (expected: zero rows written). Nothing changed,
   so the run keeps the cold run's plan (see `email_scheduler.rerun`);
3. replan: the same day once more with `--replan`, which plans again: what
   a same-day run costs when some input did change;
4. next day: `--today` one day later;
5. week later: `--today` seven days after the cold run.

Each figure is the median of `--repeat` sequences. The per-phase timings
come from the run's own report. The table is printed and written as JSON,
headed by two figures of the machine itself (see `machine`), so that
figures taken on different machines can be compared.

    python benchmarks/bench_run.py --sizes 100000 1000000 3000000

This is a measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from email_scheduler.generate import generate_org

ROOT = Path(__file__).resolve().parent
TODAY = dt.date(2026, 12, 3)
STEPS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("cold", 0, ()),
    ("warm", 0, ()),
    ("replan", 0, ("--replan",)),
    ("next_day", 1, ()),
    ("week_later", 7, ()),
)
"""Each step's name, days after the cold run, and extra arguments."""


def _script() -> str:
    return str(Path(sys.executable).with_name("email-scheduler"))


def measure(
    database: Path, today: dt.date, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Run the scheduler once as a child process; return wall time, peak RSS
    (from wait4, which reports that one child's own peak) and its report."""
    command = [_script(), "run", str(database), "--today", today.isoformat(), "--json"]
    command += extra
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: stdout into the pipe, then become the command
        os.close(read_end)
        os.dup2(write_end, 1)
        os.execv(command[0], command)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"run failed on {database} (status {status})")
    report = json.loads(output)
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "rows": report["rows"],
        "phases_s": report["seconds"],
        "emails": sum(report["planned"].values()) + sum(report["skipped"].values()),
        "repeat": report["repeat_of"] is not None,
    }


def _count_up(steps: int) -> int:
    total = 0
    for step in range(steps):
        total += step
    return total


def machine(folder: Path) -> dict[str, Any]:
    """Return what the machine is and reference figures of its speed: one
    core's time to sort 10 million integers and to run a 10-million-step
    Python loop, the time to take 1 GiB of fresh memory, and how fast
    `folder`'s file system takes 1 GiB written in 4 KiB pages, as SQLite
    writes.

    Machines of the same nominal size can sort alike and still run a
    scheduler run's mix of interpreter, memory and SQLite work at half the
    speed (a VM whose host hands out memory page by page, say): the loop
    and the fresh memory tell those apart."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    numbers = np.random.default_rng(1).integers(0, 2**62, 10_000_000)
    started = time.perf_counter()
    np.sort(numbers)
    sort_s = time.perf_counter() - started
    started = time.perf_counter()
    _count_up(10_000_000)
    loop_s = time.perf_counter() - started
    started = time.perf_counter()
    fresh = np.ones(1 << 27)  # 1 GiB
    fresh_s = time.perf_counter() - started
    del fresh
    page, pages = b"\0" * 4096, 1 << 18
    scratch = folder / "write-speed.tmp"
    started = time.perf_counter()
    with scratch.open("wb", buffering=0) as out:
        for _ in range(pages):
            out.write(page)
    write_s = time.perf_counter() - started
    scratch.unlink()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "sort_10m_s": round(sort_s, 3),
        "loop_10m_s": round(loop_s, 3),
        "fresh_gib_s": round(fresh_s, 3),
        "page_writes_mb_s": round(len(page) * pages / write_s / 1e6),
    }


def template(size: int, folder: Path) -> Path:
    """Return a generated org database of `size` contacts, building it once.

    It holds the sample campaigns and the sent history of the 60 days
    before the cold run, so that every planner has work.
    """
    path = folder / f"org-{size}-full.sqlite3"
    if not path.exists():
        report = generate_org(path, size, seed=1, campaigns=True, history_until=TODAY)
        print(f"generated {size:,} contacts in {report.seconds:.1f}s", file=sys.stderr)
    return path


def bench_size(size: int, folder: Path, repeat: int) -> dict[str, Any]:
    """Return the median figures of each step for one size."""
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in STEPS}
    source = template(size, folder)
    for _ in range(repeat):
        work = folder / f"work-{size}.sqlite3"
        shutil.copyfile(source, work)
        # The copy's pages are the benchmark's own writes: flushed now, they
        # do not land in the cold run's commit (which syncs the whole file).
        os.sync()
        for name, days, extra in STEPS:
            day = TODAY + dt.timedelta(days=days)
            samples[name].append(measure(work, day, extra))
        work.unlink()
    return {name: _median(runs) for name, runs in samples.items()}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    middle = sorted(runs, key=lambda run: run["wall_s"])[len(runs) // 2]
    return {
        **middle,
        "wall_s": statistics.median(run["wall_s"] for run in runs),
        "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in runs),
    }


def table(host: dict[str, Any], results: dict[int, dict[str, Any]]) -> str:
    """Return the figures as a plain-text table."""
    lines = [
        f"machine: {host['cpu']}, {host['cores']} cores; sorting 10M integers "
        f"{host['sort_10m_s']:.2f} s; a 10M-step Python loop "
        f"{host['loop_10m_s']:.2f} s; 1 GiB of fresh memory "
        f"{host['fresh_gib_s']:.2f} s; 4 KiB page writes "
        f"{host['page_writes_mb_s']} MB/s",
        f"{'contacts':>10} {'step':<10} {'wall s':>8} {'peak MB':>8} "
        f"{'written':>9} {'emails':>10}  phases (s)",
    ]
    for size, steps in results.items():
        for name, run in steps.items():
            rows = run["rows"]
            written = rows["inserted"] + rows["updated"] + rows["deleted"]
            phases = " ".join(f"{k}={v:.1f}" for k, v in run["phases_s"].items())
            lines.append(
                f"{size:>10,} {name:<10} {run['wall_s']:>8.1f} {run['peak_rss_mb']:>8} "
                f"{written:>9,} {run['emails']:>10,}  {phases}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=ROOT / "results")
    parser.add_argument("--json", type=Path, help="where to write the figures")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    host = machine(args.folder)
    results = {size: bench_size(size, args.folder, args.repeat) for size in args.sizes}
    print(table(host, results))
    target = args.json or args.folder / "bench_run.json"
    figures = {"machine": host, **{str(size): steps for size, steps in results.items()}}
    target.write_text(json.dumps(figures, indent=2, sort_keys=True))
    print(f"figures written to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
