"""Shared test set-up.

Rules for this suite (see the project's STYLE.md, "four layers of tests"):

1. Ground truth first: official vectors from fixtures/vectors and real data
   from fixtures/data, each vector its own parametrized case.
2. Every decoder is fed whole input, truncated input, trailing data and
   random/mutated bytes; it may raise only ``ethcrawl.wire.errors.WireError``.
3. Sans-I/O pair tests (two peers in memory) come before socket tests.
4. Anything that touches the network binds 127.0.0.1 only, with a deadline;
   anything timed runs on trio's MockClock (``autojump_clock``), not sleeps.

The ground truth is read only from fixtures/ (tests/ground_truth.py): copies of
the project's shared vectors and data, refreshed by tools/sync_fixtures.py.
"""

from __future__ import annotations

from ground_truth import FIXTURES, REPO, fixture_path, load_fixture_json, load_fixture_json_at_collection

__all__ = ["FIXTURES", "REPO", "fixture_path", "load_fixture_json", "load_fixture_json_at_collection"]
