"""The benchmark script keeps working; its figures are not checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_run.py"


def test_benchmark_runs_on_a_small_org(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "3000", "--repeat", "1"]
        + ["--folder", str(tmp_path), "--json", str(figures)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(figures.read_text())
    steps = results["3000"]
    assert set(steps) == {"cold", "warm", "replan", "next_day", "week_later"}
    assert steps["cold"]["rows"]["inserted"] > 0
    for same_day in ("warm", "replan"):
        assert steps[same_day]["rows"] == {
            "inserted": 0,
            "updated": 0,
            "deleted": 0,
            "unchanged": steps["cold"]["rows"]["inserted"],
            "conflicts": 0,
        }
    assert [name for name, step in steps.items() if step["repeat"]] == ["warm"]
    assert steps["cold"]["peak_rss_mb"] > 0
    assert "write" in steps["cold"]["phases_s"]
    assert "cold" in done.stdout
    host = results["machine"]
    assert host["cores"] >= 1
    assert host["sort_10m_s"] > 0
    assert host["loop_10m_s"] > 0
    assert host["fresh_gib_s"] > 0
    assert host["page_writes_mb_s"] > 0
    assert host["cpu"] in done.stdout
