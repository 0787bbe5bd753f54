"""The benchmark script runs (tiny sizes); it asserts what it measured is sane, never how fast."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "wire_bench.py"


def test_wire_bench_runs_and_reports_every_figure() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for figure in ("discv4 decode+verify Neighbors", "RLPx handshake EIP-8", "ENR decode+verify", "secp256k1 recover"):
        assert figure in done.stdout
    rows = re.findall(r"([\d.]+)us\s+[\d,]+\s+([\d.]+)us\s+([\d.]+)", done.stdout)
    assert len(rows) == 13
    ratios = [float(ratio) for _ours, _bound, ratio in rows]
    assert all(r > 0.5 for r in ratios)  # no figure can beat the crypto it must do
