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

from ground_truth import FIXTURES, REPO, SHARED, load_shared_json, load_vector_json_at_collection, shared_path

__all__ = ["FIXTURES", "REPO", "SHARED", "load_shared_json", "load_vector_json_at_collection", "shared_path"]
