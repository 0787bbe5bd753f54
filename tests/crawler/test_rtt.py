"""Per-peer response windows (``rtt.RoundTrips``): pure bookkeeping, no clock."""

from __future__ import annotations

import pytest

from ethcrawl.crawler.rtt import MAX_WINDOW, RTT_GAIN, WINDOW_FACTOR, RoundTrips

PEER = b"\x01" * 32


def test_a_peer_never_heard_from_gets_the_base_window() -> None:
    assert RoundTrips().window(PEER, 0.5) == 0.5
    assert RoundTrips().window(PEER, 0.7, legs=2) == 0.7


def test_the_window_grows_with_the_round_trip_never_below_the_base_nor_above_the_cap() -> None:
    trips = RoundTrips()
    trips.observe(PEER, 0.05)
    assert trips.window(PEER, 0.5) == 0.5  # a near peer keeps geth's window
    trips = RoundTrips()
    trips.observe(PEER, 0.4)
    assert trips.window(PEER, 0.5) == pytest.approx(WINDOW_FACTOR * 0.4)
    assert trips.window(PEER, 0.7, legs=2) == pytest.approx(min(MAX_WINDOW, 2 * WINDOW_FACTOR * 0.4))
    trips.observe(PEER, 30.0)  # one freak sample moves the smoothed figure by its gain only, and the cap holds
    assert trips.smoothed(PEER) == pytest.approx(0.4 + RTT_GAIN * (30.0 - 0.4))
    assert trips.window(PEER, 0.5) == MAX_WINDOW


def test_negative_samples_are_ignored_and_the_peers_remembered_are_bounded() -> None:
    trips = RoundTrips(limit=2)
    trips.observe(PEER, -1.0)
    assert trips.smoothed(PEER) is None
    for i in range(3):
        trips.observe(bytes([i]) * 32, 0.1)
    assert trips.smoothed(b"\x00" * 32) is None and trips.smoothed(b"\x02" * 32) == 0.1
    with pytest.raises(ValueError):
        RoundTrips(factor=0)
