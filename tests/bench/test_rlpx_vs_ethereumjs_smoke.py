"""The side-by-side handshake benchmark runs both libraries end to end; it checks what ran, never speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "rlpx_vs_ethereumjs.py"


def test_both_libraries_complete_handshakes() -> None:
    if shutil.which("node") is None:
        pytest.skip("needs Node.js on PATH")
    if not (REPO / "tests" / "interop" / "node_modules" / "@ethereumjs" / "devp2p").is_dir():
        pytest.skip("needs the interop packages: run the interop tests (npm ci in tests/interop) first")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", "0.05", "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["devp2p"] == "10.0.0"  # the version tests/interop/package.json pins
    for label in ("eip8", "legacy"):
        row = result["handshakes"][label]
        for side in ("ethcrawl", "ethereumjs"):
            # the JS side only starts timing after one handshake's frames decoded both ways
            assert row[side]["handshakes"] >= 1
            assert row[side]["per_second"] == pytest.approx(row[side]["handshakes"] / row[side]["seconds"])
        assert row["ethcrawl"]["failed"] == 0
        assert row["ratio"] == pytest.approx(row["ethcrawl"]["per_second"] / row["ethereumjs"]["per_second"])
