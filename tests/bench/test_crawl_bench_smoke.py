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


DIRTY_BENCH = BENCH.with_name("dirty_crawl_bench.py")


def test_dirty_crawl_bench_scores_a_crawl_of_a_dirty_devnet() -> None:
    done = subprocess.run(
        [sys.executable, str(DIRTY_BENCH), "--nodes", "40", "--sample", "1"], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["crawl_flags"] == [] and result["dead_records"] > result["live_findable"] > 0
    assert result["found_share_of_those_up"] >= 0.95  # a live node may still hide behind lost packets
    assert result["dialable_with_client_id_share"] > 0.9
    # The curve only rises, up to the final figure (the last sample may come just before the last writes).
    shares = [share for _, share in result["curve"]]
    assert shares == sorted(shares) and shares[-1] <= result["found_live_share"]
