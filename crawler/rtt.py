"""Per-peer response windows from the round trips of a peer's earlier answers.

go-ethereum waits a fixed 0.5 s for a discv4 reply (``respTimeout``) and 0.7 s
for a discv5 one (``respTimeoutV5``).  That fits a peer a few hundred ms away;
a peer whose round trip is close to the window loses half its answers to the
timeout, and one beyond it is never heard.  :class:`RoundTrips` keeps a
smoothed round trip per peer (RFC 6298's SRTT, from the answers it gave, late
ones included) and widens that peer's window to a multiple of it, bounded; a
peer never heard from keeps the protocol's base window, so dead records (most
of a real crawl's visits) cost no more than before.

Pure bookkeeping: the caller measures (send time to first reply, on its own
clock) and asks for a window; no trio, no clock here.
"""

from __future__ import annotations

from ethcrawl.wire.lru import LRU

__all__ = ["MAX_WINDOW", "PEERS_TRACKED", "RTT_GAIN", "WINDOW_FACTOR", "RoundTrips"]

# A window of this many smoothed round trips: jitter and the peer's (and our) CPU queueing add to the
# path's round trip; the devnet's mainnet profile adds up to 10% jitter to 20-400 ms paths.
WINDOW_FACTOR = 2.0
MAX_WINDOW = 2.0  # s, the longest any single reply is waited for: a peer that slow is not worth more
RTT_GAIN = 0.125  # RFC 6298's alpha: weight of a new sample in the smoothed round trip
PEERS_TRACKED = 1 << 18  # peers whose round trip is remembered (bounded: peers choose their keys)


class RoundTrips:
    """Smoothed round trips per peer, and the response window each deserves."""

    def __init__(self, *, factor: float = WINDOW_FACTOR, cap: float = MAX_WINDOW, limit: int = PEERS_TRACKED) -> None:
        if factor <= 0 or cap <= 0:
            raise ValueError("the window factor and cap must be positive")
        self.factor = factor
        self.cap = cap
        self._srtt: LRU[bytes, float] = LRU(limit)

    def observe(self, peer: bytes, rtt: float) -> None:
        """One reply of ``peer`` came ``rtt`` s after its request left."""
        if rtt < 0:
            return
        old = self._srtt.get(peer)
        self._srtt.set(peer, rtt if old is None else old + RTT_GAIN * (rtt - old))

    def smoothed(self, peer: bytes) -> float | None:
        """The peer's smoothed round trip, None before its first answer."""
        return self._srtt.get(peer)

    def window(self, peer: bytes, base: float, legs: int = 1) -> float:
        """How long to wait for ``peer``'s reply: ``base`` at least, ``factor`` x its round trips, at most ``cap``.

        ``legs``: round trips one reply may need (a discv5 request may take a handshake first: two).
        """
        srtt = self._srtt.get(peer)
        if srtt is None:
            return base
        return max(base, min(self.cap, legs * self.factor * srtt))
