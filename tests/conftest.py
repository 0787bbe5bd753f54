"""Shared test set-up.

Rules for this suite (see ../shared/STYLE.md, "four layers of tests"):

1. Ground truth first: official vectors from ../shared/vectors and real data
   from ../shared/data, each vector its own parametrized case.
2. Every decoder is fed whole input, truncated input, trailing data and
   random/mutated bytes; it may raise only ``ethcrawl.wire.errors.WireError``.
3. Sans-I/O pair tests (two peers in memory) come before socket tests.
4. Anything that touches the network binds 127.0.0.1 only, with a deadline;
   anything timed runs on trio's MockClock (``autojump_clock``), not sleeps.

The shared ground truth lives beside the checkout (../shared); set
ETHCRAWL_SHARED to point elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ETHCRAWL_SHARED", REPO.parent / "shared")).resolve()
FIXTURES = REPO / "fixtures"


def shared_path(*parts: str) -> Path:
    """A path under ../shared; fails loudly (never skips) when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"ground-truth file {path} is missing: the suite needs ../shared beside the "
            "checkout (or ETHCRAWL_SHARED pointing at it)",
            pytrace=False,
        )
    return path


def load_shared_json(*parts: str) -> Any:
    return json.loads(shared_path(*parts).read_text())


def load_vector_json_at_collection(*parts: str) -> Any:
    """For parametrize lists built at import time: raises a clear error if absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"ground-truth file {path} is missing: the suite needs ../shared beside the checkout"
        )
    return json.loads(path.read_text())
