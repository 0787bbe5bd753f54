"""Our own UDP endpoint as peers see it, learned from their answers (go-ethereum's ``netutil.IPTracker``).

A crawler listening on 0.0.0.0, or behind NAT, does not know the address the
world reaches it at, yet its ENR should name it: consensus clients such as
@chainsafe/discv5 drop a session whose handshake record names another
address.  Every PONG (v4 ``to``, v5 ``recipient-ip``/``port``) says where its
sender saw our PING come from; once enough distinct peers agree, that is our
endpoint.  One vote per peer address, so one host cannot outvote the rest.

Per family, as go-ethereum's ``LocalNode`` keeps ``endpoint4`` and
``endpoint6``: a dual-stack node is seen at one IPv4 and one IPv6 endpoint,
and each is predicted from the statements naming its family.  A statement in
IPv4-mapped spelling counts as IPv4.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from ipaddress import ip_address

from ethcrawl.wire.lru import LRU

from .table import unwrap_ipv4

__all__ = ["EndpointPredictor", "Endpoint", "MIN_STATEMENTS", "STATEMENT_WINDOW"]

Endpoint = tuple[str, int]  # (ip text, udp port)

MIN_STATEMENTS = 5  # distinct peers that must agree (geth asks 10 of a long-running node; a crawl starts faster)
STATEMENT_WINDOW = 300.0  # s a statement counts for (geth's contact window)
VOTERS_REMEMBERED = 4096  # peer addresses whose latest statement is kept


@dataclass(frozen=True, slots=True)
class _Statement:
    endpoint: Endpoint
    version: int  # 4 or 6: the family it is a statement about
    at: float


class EndpointPredictor:
    """Collects "I saw you at ip:port" statements and names the endpoint most recent peers agree on."""

    def __init__(self, *, min_statements: int = MIN_STATEMENTS, window: float = STATEMENT_WINDOW) -> None:
        self.min_statements = min_statements
        self.window = window
        self._statements: LRU[str, _Statement] = LRU(VOTERS_REMEMBERED)

    def add(self, voter_ip: str, endpoint: Endpoint, now: float) -> None:
        """``voter_ip`` (the peer's address) says it saw us at ``endpoint``; nonsense is ignored."""
        try:
            ip = unwrap_ipv4(ip_address(endpoint[0]))
        except ValueError:
            return
        if ip.is_unspecified or ip.is_multicast or not 0 < endpoint[1] < 1 << 16:
            return
        self._statements.set(voter_ip, _Statement(endpoint=(str(ip), endpoint[1]), version=ip.version, at=now))

    def predict(self, now: float, version: int = 4) -> Endpoint | None:
        """The IPv``version`` endpoint at least ``min_statements`` recent voters named, the most named one; else None."""
        votes = Counter(
            s.endpoint for s in self._statements.values() if s.version == version and now - s.at <= self.window
        )
        if not votes:
            return None
        endpoint, count = votes.most_common(1)[0]
        return endpoint if count >= self.min_statements else None
