"""The side-by-side handshake benchmark (bench/rlpx_vs_ethereumjs.py) runs both libraries end to end.

It checks what ran, never speed.  It lives with the interop tests so that the
``node_tools`` fixture installs the npm packages first (under tests/bench it
was skipped whenever it ran before them, as in CI).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "rlpx_vs_ethereumjs.py"


def test_both_libraries_complete_handshakes(node_tools: object) -> None:
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
