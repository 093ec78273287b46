"""Benchmark of `email-scheduler campaign enroll` on a generated org database.

For each size it builds (or reuses) a generated org database of that many
contacts and a CSV enrolling every one of them (`contact_id,trigger_date`,
trigger dates on the first of a month in 2027). In a fresh copy it adds a
campaign type and an instance, then times two enrollments of the same file
through the real command, each a separate process:

1. first: every row is new and inserted;
2. again: every row is already enrolled, so nothing is added.

Each figure is the median of `--repeat` copies. The table is printed and
written as JSON.

    python benchmarks/bench_enroll.py --sizes 100000

This is a measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from email_scheduler.generate import generate_org

ROOT = Path(__file__).resolve().parent
STEPS = ("first", "again")


def _script() -> str:
    return str(Path(sys.executable).with_name("email-scheduler"))


def command(*args: object) -> tuple[float, dict[str, Any]]:
    """Run one `email-scheduler` command with `--json`; return its wall time
    and the JSON it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [_script(), *map(str, args), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed: {done.stderr.strip()}")
    return wall, json.loads(done.stdout)


def template(size: int, folder: Path) -> Path:
    """Return a generated org database of `size` contacts, building it once."""
    path = folder / f"org-{size}.sqlite3"
    if not path.exists():
        report = generate_org(path, size, seed=1)
        print(f"generated {size:,} contacts in {report.seconds:.1f}s", file=sys.stderr)
    return path


def enrollment_file(size: int, folder: Path) -> Path:
    """Return a CSV enrolling contacts 1 to `size`, writing it once."""
    path = folder / f"enroll-{size}.csv"
    if not path.exists():
        lines = (f"{n},2027-{n % 12 + 1:02d}-01\n" for n in range(1, size + 1))
        path.write_text("contact_id,trigger_date\n" + "".join(lines))
    return path


def enroll_twice(database: Path, csv: Path) -> dict[str, dict[str, Any]]:
    """Add a campaign to `database`, enroll `csv` in it twice; return both."""
    command("campaign", "add-type", database, "rate_increase", "--days-before", 14)
    _, instance = command(
        "campaign", "create", database, "rate_increase", "bench",
        "--start", "2027-01-01", "--end", "2027-12-31",
    )  # fmt: skip
    figures = {}
    for step in STEPS:
        wall, report = command("campaign", "enroll", database, instance["id"], csv)
        figures[step] = {
            "wall_s": round(wall, 2),
            "command_s": report["seconds"],
            "rows": report["rows"],
            "enrolled": report["enrolled"],
            "already_enrolled": report["already_enrolled"],
        }
    return figures


def bench_size(size: int, folder: Path, repeat: int) -> dict[str, Any]:
    """Return the median figures of each step for one size."""
    samples: dict[str, list[dict[str, Any]]] = {step: [] for step in STEPS}
    source, csv = template(size, folder), enrollment_file(size, folder)
    for _ in range(repeat):
        work = folder / f"work-enroll-{size}.sqlite3"
        shutil.copyfile(source, work)
        for step, figures in enroll_twice(work, csv).items():
            samples[step].append(figures)
        work.unlink()
    return {step: _median(runs) for step, runs in samples.items()}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    middle = sorted(runs, key=lambda run: run["wall_s"])[len(runs) // 2]
    return {
        **middle,
        "wall_s": statistics.median(run["wall_s"] for run in runs),
        "command_s": statistics.median(run["command_s"] for run in runs),
    }


def table(results: dict[int, dict[str, Any]]) -> str:
    """Return the figures as a plain-text table."""
    lines = [
        f"{'contacts':>10} {'step':<6} {'wall s':>8} {'enroll s':>9} "
        f"{'rows':>9} {'enrolled':>9} {'already':>9}"
    ]
    for size, steps in results.items():
        for step, run in steps.items():
            lines.append(
                f"{size:>10,} {step:<6} {run['wall_s']:>8.2f} "
                f"{run['command_s']:>9.2f} {run['rows']:>9,} "
                f"{run['enrolled']:>9,} {run['already_enrolled']:>9,}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=ROOT / "results")
    parser.add_argument("--json", type=Path, help="where to write the figures")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    results = {size: bench_size(size, args.folder, args.repeat) for size in args.sizes}
    print(table(results))
    target = args.json or args.folder / "bench_enroll.json"
    target.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"figures written to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
