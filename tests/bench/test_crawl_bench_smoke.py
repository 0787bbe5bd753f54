"""The crawl benchmark runs end to end at a tiny size; it checks coverage figures, never speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "crawl_bench.py"


def test_crawl_bench_runs_and_finds_everything() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "40"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["nodes"] == 40
    assert result["found_share"] == 1.0  # of the nodes a v4 walk can meet (beacon nodes speak only v5)
    assert result["reachable_by_this_walk"] == result["speak_v4"] < 40
    assert result["dialable_with_client_id_share"] == 1.0
    assert result["findnode_exchanges"] > 0 and result["dials"] >= 30
    assert result["findnode_cpu_to_crypto"] > 0.5  # nothing can beat the crypto it must do


def test_crawl_bench_walks_both_dhts_of_the_devnet() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "40", "--discovery", "both"], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["discovery"] == "both" and result["found_share"] == 1.0
    # Every node answers the protocols it speaks (pre-EIP-868 nodes v4 only, beacon nodes v5 only).
    assert result["answered_v4"] == result["speak_v4"] < 40
    assert result["answered_v5"] == result["speak_v5"] < 40
    assert result["reachable_by_this_walk"] == 40
    assert result["v5_findnode_exchanges"] > 0
    assert result["findnode_cpu_to_crypto"] is None  # no discv4-only bound is claimed for a mixed walk
