"""Fork readiness: which nodes announce the next upgrade of their network (EIP-2124 ``next``), by client.

A node is **ready** for fork F of network N when its latest Status in scope (``queries.latest_statuses``) carries
a fork id of N and either announces F -- it is in the epoch F ends and ``wire.forkid.classify`` finds its
``next`` to be that epoch's end, F's block or time -- or is already in an epoch at or after F (it runs F).  Nodes
whose fork id is of another network are not counted for N; a node in an epoch before the one F ends is counted
and not ready (it cannot announce F yet, whatever its software knows).  For a node in the epoch just before F
this is exactly ``query forks``'s "ready": one judgement, classify's.

The **next scheduled fork** of a network is its first time-activated fork after ``now``.  Block-numbered forks
are not considered: every known chain has passed them (they all precede the merge), and a block height is no
wall-clock question.  ``--fork NAME`` asks about that fork instead, passed or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy.orm import Session

from ethcrawl.wire.chains import CHAINS, Chain
from ethcrawl.wire.forkid import ForkEpoch, ForkId, Readiness, classify, fork_hashes

from .queries import StatusReport, latest_statuses
from .scope import EVERY_CRAWL, CrawlScope, share

__all__ = ["ForkTarget", "next_forks", "named_forks", "ReadinessRow", "NotReady", "is_ready", "readiness", "not_ready", "last_fork"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkTarget:
    """One fork of one network: the point nodes announce as ``next`` before it, and its place in the schedule."""

    network: str
    fork: str  # the epoch's name: the last fork activated at that point
    at: int  # block number or unix time
    by_time: bool
    epoch: int  # index in wire.forkid.fork_hashes(chain) of the epoch the fork begins


@cache
def _epochs(chain: Chain) -> tuple[ForkEpoch, ...]:
    """fork_hashes, once per chain: readiness asks for every node's epoch."""
    return fork_hashes(chain)


def _targets(chain: Chain) -> list[ForkTarget]:
    return [
        ForkTarget(network=chain.name, fork=epoch.name, at=epoch.start, by_time=epoch.by_time, epoch=index)
        for index, epoch in enumerate(_epochs(chain))
        if index > 0
    ]


def next_forks(now: datetime, chains: Mapping[str, Chain] = CHAINS) -> list[ForkTarget]:
    """The next scheduled fork of each network that has one (first time fork after ``now``), by network name."""
    moment = int(now.timestamp())
    found = []
    for name in sorted(chains):
        upcoming = [t for t in _targets(chains[name]) if t.by_time and t.at > moment]
        if upcoming:
            found.append(upcoming[0])
    return found


def named_forks(fork: str, chains: Mapping[str, Chain] = CHAINS) -> list[ForkTarget]:
    """Fork ``fork`` (any case) of every network that schedules it, by network name; a fork sharing its point with
    another is found by either name."""
    wanted = fork.lower()
    found = []
    for name in sorted(chains):
        epochs = _epochs(chains[name])
        for target in _targets(chains[name]):
            if wanted in (f.lower() for f in epochs[target.epoch].forks):
                found.append(target)
                break
    return found


def is_ready(fork_id: ForkId, target: ForkTarget, chains: Mapping[str, Chain] = CHAINS) -> bool | None:
    """Whether a node announcing ``fork_id`` is ready for ``target``; None when the id is of another network."""
    found = classify(fork_id, chains)
    if found.network != target.network or found.epoch is None:
        return None
    epoch = _epochs(chains[target.network]).index(found.epoch)
    return epoch >= target.epoch or (epoch == target.epoch - 1 and found.readiness is Readiness.READY)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadinessRow:
    network: str
    fork: str
    client: str | None
    version: str | None
    nodes: int  # nodes of the network whose latest Status came from this client and version
    ready: int  # of those, ready for the fork

    @property
    def share_ready(self) -> float:
        return share(self.ready, self.nodes)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotReady:
    node_id: bytes
    network: str
    fork: str
    client: str | None
    version: str | None
    fork_hash: bytes
    fork_next: int


def _judged(
    session: Session, targets: list[ForkTarget], scope: CrawlScope, chains: Mapping[str, Chain]
) -> list[tuple[ForkTarget, StatusReport, bool]]:
    """(target, status, ready) for every node whose latest Status in scope is on a target's network."""
    statuses = [s for s in latest_statuses(session, scope) if s.fork_hash is not None and s.fork_next is not None]
    judged = []
    for target in targets:
        for status in statuses:
            assert status.fork_hash is not None and status.fork_next is not None  # filtered above
            ready = is_ready(ForkId(hash=status.fork_hash, next=status.fork_next), target, chains)
            if ready is not None:
                judged.append((target, status, ready))
    return judged


def readiness(
    session: Session, targets: list[ForkTarget], scope: CrawlScope = EVERY_CRAWL, chains: Mapping[str, Chain] = CHAINS
) -> list[ReadinessRow]:
    """Nodes and ready nodes per (network, fork, client, version); by network, then most nodes first."""
    counts: dict[tuple[str, str, str | None, str | None], list[int]] = {}
    for target, status, ready in _judged(session, targets, scope, chains):
        tally = counts.setdefault((target.network, target.fork, status.client_name, status.client_version), [0, 0])
        tally[0] += 1
        tally[1] += ready
    rows = [
        ReadinessRow(network=net, fork=fork, client=client, version=version, nodes=n, ready=r)
        for (net, fork, client, version), (n, r) in counts.items()
    ]
    return sorted(rows, key=lambda r: (r.network, r.fork, -r.nodes, r.client or "", r.version or ""))


def not_ready(
    session: Session, targets: list[ForkTarget], scope: CrawlScope = EVERY_CRAWL, chains: Mapping[str, Chain] = CHAINS
) -> list[NotReady]:
    """The nodes ``readiness`` counts as not ready, by network, then node id."""
    rows = [
        NotReady(
            node_id=status.node_id, network=target.network, fork=target.fork, client=status.client_name,
            version=status.client_version, fork_hash=status.fork_hash or b"", fork_next=status.fork_next or 0,
        )
        for target, status, ready in _judged(session, targets, scope, chains)
        if not ready
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (r.network, r.fork, r.node_id))


def last_fork(now: datetime, chains: Mapping[str, Chain] = CHAINS) -> str | None:
    """The name of the time-activated fork that activated last, at or before ``now``, on any network (None: none
    has): what to ask ``named_forks`` about when no network schedules another (nodes that missed it are stranded)."""
    moment = int(now.timestamp())
    passed = [t for chain in chains.values() for t in _targets(chain) if t.by_time and t.at <= moment]
    return max(passed, key=lambda t: (t.at, t.network)).fork if passed else None
