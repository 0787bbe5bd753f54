"""The monitor benchmark runs end to end at a tiny size; it checks its lines add up, never speed or memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "monitor_bench.py"


def test_monitor_bench_runs_and_reports_every_cycle() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--nodes", "12", "--cycles", "2", "--interval", "4", "--revalidate", "1.5"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    result = json.loads(lines[-1])
    cycles = [line.split() for line in lines[1:-1]]
    assert result["nodes"] == 12 and result["walks"] == 2 and result["cycles"] == len(cycles)
    kinds = [c[1] for c in cycles]
    assert kinds.count("crawl") == 2 and kinds[0] == "crawl"
    sightings = [int(c[5]) for c in cycles]
    assert sightings == sorted(sightings) and sightings[-1] > sightings[0]  # history grows, nothing is pruned
    assert result["db_bytes_per_cycle"] > 0 and result["rss_last_mb"] > 0
