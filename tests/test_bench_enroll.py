"""The enrollment benchmark keeps working; its times are not checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_enroll.py"


def counts(step: dict[str, int]) -> tuple[int, int, int]:
    """Return (rows read, rows enrolled, rows already enrolled) of a step."""
    return step["rows"], step["enrolled"], step["already_enrolled"]


def test_enroll_benchmark_runs_on_a_small_org(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "500", "--repeat", "1"]
        + ["--folder", str(tmp_path), "--json", str(figures)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    steps = json.loads(figures.read_text())["500"]
    assert set(steps) == {"first", "again"}
    assert counts(steps["first"]) == (500, 500, 0)
    assert counts(steps["again"]) == (500, 0, 500)  # nothing added the second time
    assert steps["first"]["wall_s"] > 0
    assert "again" in done.stdout
