"""Read queries for reports and exports, and the one definition of every count ethcrawl prints.

The README's "What the numbers mean" is the contract; each count there is computed by exactly one function
here, which the crawl summary (``store.crawl_summary``, with its crawl id), every ``query`` and the exports
call.  Callers own the session; results are plain records, never ORM objects, so the CLI layer formats them
without knowing SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, case, func, select, true
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import SQLCoreOperations

from ethcrawl.wire.chains import chain_by_network_id
from ethcrawl.wire.forkid import ForkId, classify

from .models import Crawl, DialAttempt, Edge, Node, Sighting
from .records import HelloCount, NetworkCount
from .scope import EVERY_CRAWL, CrawlScope

__all__ = [
    "NodeReport", "node_reports", "HELLO_DIMENSIONS", "hello_counts", "outcome_counts", "dial_outcomes", "has_crawl",
    "network_name", "network_counts", "fork_readiness", "Totals", "totals", "CrawlRow", "crawl_history",
    "edge_list", "edge_table", "responders", "LayerCounts", "layer_counts", "country_counts", "asn_counts",
    "nodes_in_scope", "HELLO_RECEIVED", "STATUS_RECEIVED", "OK", "StatusReport", "latest_statuses",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeReport:
    """One node: client fields from its latest attempt that received a Hello, chain fields from its latest that
    received a Status, ``last_outcome`` from its latest attempt (None where no attempt learned it)."""

    node_id: bytes
    pubkey: bytes
    ip: str | None
    udp_port: int | None
    tcp_port: int | None
    enr_seq: int | None
    first_seen: datetime
    last_seen: datetime
    last_outcome: str | None
    client_id: str | None
    client_name: str | None
    client_version: str | None
    os: str | None
    arch: str | None
    runtime: str | None
    capabilities: str | None
    network_id: int | None
    fork_hash: bytes | None
    fork_next: int | None
    synced: bool | None
    # Schema v2: discovery protocols that ever answered ("v4,v5"), and the stored ENR's classification.
    protocols: str = ""
    layer: str | None = None
    execution_network: str | None = None
    eth2_fork_digest: bytes | None = None
    consensus_network: str | None = None
    consensus_fork: str | None = None
    attnets_count: int | None = None
    syncnets_count: int | None = None
    # Schema v4: where its latest address is (country code, AS number and organisation), once enriched.
    country: str | None = None
    asn: int | None = None
    as_org: str | None = None


# An attempt "received a Hello" when the peer's Hello arrived: the store keeps its client id text then, even "".
HELLO_RECEIVED: ColumnElement[bool] = DialAttempt.client_id.is_not(None)
# An attempt "received a Status" when the peer's eth Status arrived.  Any one of its fields will do: a hostile
# peer's out-of-range network id is stored as NULL, but its fork id still says which chain it follows.
STATUS_RECEIVED: ColumnElement[bool] = DialAttempt.network_id.is_not(None) | DialAttempt.fork_hash.is_not(None)
# The Hello dimensions: name -> the attempt column they group by.
HELLO_DIMENSIONS = {
    "clients": DialAttempt.client_name,
    "versions": DialAttempt.client_version,
    "os": DialAttempt.client_os,
    "arch": DialAttempt.client_arch,
    "runtimes": DialAttempt.client_runtime,
}
OK = "ok"  # the outcome of an attempt that completed Hello and Status


def _latest(condition: ColumnElement[bool], scope: CrawlScope) -> Subquery:
    """(node_id, dial_id) of each node's latest attempt meeting ``condition`` in a crawl in ``scope``."""
    query = select(DialAttempt.node_id, func.max(DialAttempt.id).label("dial_id")).where(condition)
    query = query.where(scope.holds(DialAttempt.crawl_id))
    return query.group_by(DialAttempt.node_id).subquery()


def _flag_sum(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _named_nodes(client: str, scope: CrawlScope) -> Select[bytes]:
    """Node ids whose latest attempt (in scope) that received a Hello named ``client``."""
    latest = _latest(HELLO_RECEIVED, scope)
    return (
        select(DialAttempt.node_id)
        .join(latest, latest.c.dial_id == DialAttempt.id)
        .where(DialAttempt.client_name == client)
    )


def _named(client: str, scope: CrawlScope) -> ColumnElement[bool]:
    """Condition on DialAttempt: the node's latest attempt (in scope) that received a Hello named ``client``."""
    return DialAttempt.node_id.in_(_named_nodes(client, scope))


def node_reports(session: Session, scope: CrawlScope = EVERY_CRAWL) -> list[NodeReport]:
    """Every known node, ordered by node id: client fields from its latest attempt that received a Hello,
    chain fields from its latest that received a Status, ``last_outcome`` from its latest attempt.

    With a ``scope``: the nodes sighted or dialed in a crawl in it, and those attempts only (the node's own
    columns -- address, ENR, first and last seen -- stay what the database knows).
    """
    last, hello, status = (aliased(DialAttempt) for _ in range(3))
    latest, latest_hello, latest_status = (_latest(c, scope) for c in (true(), HELLO_RECEIVED, STATUS_RECEIVED))
    query = (
        select(Node, last.outcome, hello, status)
        .outerjoin(latest, latest.c.node_id == Node.node_id)
        .outerjoin(last, last.id == latest.c.dial_id)
        .outerjoin(latest_hello, latest_hello.c.node_id == Node.node_id)
        .outerjoin(hello, hello.id == latest_hello.c.dial_id)
        .outerjoin(latest_status, latest_status.c.node_id == Node.node_id)
        .outerjoin(status, status.id == latest_status.c.dial_id)
        .order_by(Node.node_id)
    )
    if not scope.everything:
        query = query.where(Node.node_id.in_(nodes_in_scope(scope)))
    reports = []
    for node, outcome, h, s in session.execute(query):
        reports.append(
            NodeReport(
                node_id=node.node_id,
                pubkey=node.pubkey,
                ip=node.ip,
                udp_port=node.udp_port,
                tcp_port=node.tcp_port,
                enr_seq=node.enr_seq,
                first_seen=node.first_seen,
                last_seen=node.last_seen,
                last_outcome=outcome,
                client_id=h.client_id if h else None,
                client_name=h.client_name if h else None,
                client_version=h.client_version if h else None,
                os=h.client_os if h else None,
                arch=h.client_arch if h else None,
                runtime=h.client_runtime if h else None,
                capabilities=h.capabilities if h else None,
                network_id=s.network_id if s else None,
                fork_hash=s.fork_hash if s else None,
                fork_next=s.fork_next if s else None,
                synced=s.synced if s else None,
                protocols=node.protocols,
                layer=node.layer,
                execution_network=node.execution_network,
                eth2_fork_digest=node.eth2_fork_digest,
                consensus_network=node.consensus_network,
                consensus_fork=node.consensus_fork,
                attnets_count=node.attnets_count,
                syncnets_count=node.syncnets_count,
                country=node.country,
                asn=node.asn,
                as_org=node.as_org,
            )
        )
    return reports


def nodes_in_scope(scope: CrawlScope) -> Select[tuple[bytes]]:
    """The nodes sighted or dialed in a crawl in ``scope`` (``SELECT node_id``, for ``in_``)."""
    sighted = select(Sighting.node_id).where(scope.holds(Sighting.crawl_id))
    dialed = select(DialAttempt.node_id).where(scope.holds(DialAttempt.crawl_id))
    return select(sighted.union(dialed).subquery().c.node_id)


def hello_counts(
    session: Session, dimension: str, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None,
    by_client: bool = False,
) -> list[HelloCount]:
    """Nodes per value of ``dimension`` (clients, versions, os, runtimes), from each node's latest attempt that
    received a Hello, whatever happened after it; ``refused`` counts those whose attempt did not end ok.

    ``scope``: attempts of crawls in it only (default: every crawl).  ``client``: nodes whose latest Hello named
    it.  ``by_client``: count (client name, value) pairs (a version means something only with its client).  A
    Hello that does not name the dimension (e.g. an unparsable client id) is not counted.  Largest first.
    """
    column = HELLO_DIMENSIONS[dimension]
    keys = (DialAttempt.client_name, column) if by_client else (column,)
    latest = _latest(HELLO_RECEIVED, scope)
    query = (
        select(func.count(), _flag_sum(DialAttempt.outcome != OK), *keys)
        .join(latest, latest.c.dial_id == DialAttempt.id)
        .where(column.is_not(None))
        .group_by(*keys)
    )
    if client is not None:
        query = query.where(DialAttempt.client_name == client)
    counts = [
        HelloCount(client=key[0] if by_client else None, value=str(key[-1]), nodes=int(n), refused=int(r))
        for n, r, *key in session.execute(query)
    ]
    return sorted(counts, key=lambda h: (-h.nodes, h.client or "", h.value))


def has_crawl(session: Session, crawl_id: int) -> bool:
    return session.get(Crawl, crawl_id) is not None


def outcome_counts(session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None) -> list[tuple[str, int]]:
    """Nodes per outcome of their latest attempt (``client``: nodes whose latest Hello named it); largest first."""
    latest = _latest(true(), scope)
    query = (
        select(DialAttempt.outcome, func.count())
        .join(latest, latest.c.dial_id == DialAttempt.id)
        .group_by(DialAttempt.outcome)
        .order_by(func.count().desc(), DialAttempt.outcome)
    )
    if client is not None:
        query = query.where(_named(client, scope))
    return [(str(o), int(n)) for o, n in session.execute(query)]


def dial_outcomes(session: Session, *, crawl_id: int | None = None) -> list[tuple[str, int]]:
    """Attempts (not nodes) per outcome; each attempt has exactly one.  Largest first."""
    query = select(DialAttempt.outcome, func.count()).group_by(DialAttempt.outcome)
    if crawl_id is not None:
        query = query.where(DialAttempt.crawl_id == crawl_id)
    return sorted(((str(o), int(n)) for o, n in session.execute(query)), key=lambda r: (-r[1], r[0]))


def network_name(network_id: int | None, fork_hash: bytes | None, fork_next: int | None) -> tuple[str | None, str | None]:
    """(network, fork) from a Status: the fork id (EIP-2124) first, else the network id; None where unknown."""
    network = fork = None
    if fork_hash is not None and fork_next is not None:
        found = classify(ForkId(hash=fork_hash, next=fork_next))
        network, fork = found.network, found.fork
    if network is None and network_id is not None:
        chain = chain_by_network_id(network_id)
        network = chain.name if chain is not None else None
    return network, fork


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """A node's latest attempt (in scope) that received a Status, and the Hello the same attempt received."""

    node_id: bytes
    client_name: str | None
    client_version: str | None
    network_id: int | None
    fork_hash: bytes | None
    fork_next: int | None


def latest_statuses(session: Session, scope: CrawlScope = EVERY_CRAWL, client: str | None = None) -> list[StatusReport]:
    """Each node's latest attempt in ``scope`` that received a Status (``client``: nodes whose latest Hello named
    it), by node id: what networks, forks and readiness count."""
    latest = _latest(STATUS_RECEIVED, scope)
    query = select(
        DialAttempt.node_id, DialAttempt.client_name, DialAttempt.client_version, DialAttempt.network_id,
        DialAttempt.fork_hash, DialAttempt.fork_next,
    ).join(latest, latest.c.dial_id == DialAttempt.id).order_by(DialAttempt.node_id)  # fmt: skip
    if client is not None:
        query = query.where(_named(client, scope))
    return [
        StatusReport(
            node_id=bytes(node_id), client_name=name, client_version=version, network_id=network_id,
            fork_hash=None if fork_hash is None else bytes(fork_hash), fork_next=fork_next,
        )
        for node_id, name, version, network_id, fork_hash, fork_next in session.execute(query)
    ]


def _statuses(session: Session, scope: CrawlScope, client: str | None) -> list[tuple[int | None, bytes | None, int | None]]:
    """(network id, fork hash, fork next) of each node's latest attempt that received a Status."""
    return [(s.network_id, s.fork_hash, s.fork_next) for s in latest_statuses(session, scope, client)]


def network_counts(session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None) -> list[NetworkCount]:
    """Nodes per network and current fork, from each node's latest attempt that received a Status; largest first."""
    counts: dict[tuple[str, str], int] = {}
    for network_id, fork_hash, fork_next in _statuses(session, scope, client):
        network, fork = network_name(network_id, fork_hash, fork_next)
        key = (network or f"unknown ({network_id})", fork or "unknown fork")
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [NetworkCount(network=net, fork=fork, nodes=n) for (net, fork), n in ordered]


def fork_readiness(session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None) -> list[tuple[str, str, int]]:
    """(network, readiness for its next fork, nodes), from each node's latest Status with a fork id; by name."""
    counts: dict[tuple[str, str], int] = {}
    for _, fork_hash, fork_next in _statuses(session, scope, client):
        if fork_hash is None or fork_next is None:
            continue
        found = classify(ForkId(hash=fork_hash, next=fork_next))
        key = (found.network or "unknown", found.readiness.value)
        counts[key] = counts.get(key, 0) + 1
    return [(net, ready, n) for (net, ready), n in sorted(counts.items())]


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """The scalar counts of one crawl or of the whole database (see the README's "What the numbers mean")."""

    nodes: int  # distinct nodes sighted (whole database: every stored node)
    answered: int  # of those, answered discovery (v4 bond or v5 PONG)
    with_enr: int  # of those, sent an ENR (whole database: have one stored)
    edges: int  # distinct (A, B) with A != B, A returned B over any protocol
    dials: int  # RLPx attempts, outbound and inbound
    dials_ok: int  # of those, ended ok (Hello and Status completed)

    @property
    def dials_failed(self) -> int:
        return self.dials - self.dials_ok


def totals(session: Session, crawl_id: int | None = None) -> Totals:
    """Nodes, answered, edges and dials of crawl ``crawl_id``, or of every crawl and stored node (None)."""
    if crawl_id is None:
        counted = select(func.count(), _flag_sum(Node.protocols != ""), _flag_sum(Node.enr.is_not(None)))
    else:
        counted = select(func.count(), _flag_sum(Sighting.responded.is_(True)), _flag_sum(Sighting.enr_received.is_(True))).where(
            Sighting.crawl_id == crawl_id
        )
    nodes, answered, with_enr = session.execute(counted.select_from(Node if crawl_id is None else Sighting)).one()
    pairs = select(Edge.from_node, Edge.to_node).where(Edge.from_node != Edge.to_node).distinct()
    if crawl_id is not None:
        pairs = pairs.where(Edge.crawl_id == crawl_id)
    edges = session.scalar(select(func.count()).select_from(pairs.subquery())) or 0
    outcomes = dict(dial_outcomes(session, crawl_id=crawl_id))
    return Totals(
        nodes=int(nodes), answered=int(answered), with_enr=int(with_enr), edges=int(edges),
        dials=sum(outcomes.values()), dials_ok=outcomes.get(OK, 0),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlRow:
    id: int
    started_at: datetime
    ended_at: datetime | None  # None while running (or if it was killed)
    totals: Totals


def crawl_history(session: Session) -> list[CrawlRow]:
    """Every crawl, newest first, with its counts (computed now, so a running crawl shows its progress)."""
    return [
        CrawlRow(id=c.id, started_at=c.started_at, ended_at=c.ended_at, totals=totals(session, c.id))
        for c in session.scalars(select(Crawl).order_by(Crawl.id.desc()))
    ]


def edge_table(session: Session, crawl_id: int | None = None) -> tuple[int | None, list[tuple[bytes, bytes, str]]]:
    """(crawl id, [(from, to, protocols), ...]) of one crawl: the given one, else the latest; (None, []) if none.

    The edges ``totals`` counts: A returned B, A != B.
    """
    if crawl_id is None:
        crawl_id = session.scalar(select(func.max(Crawl.id)))
    elif session.get(Crawl, crawl_id) is None:
        return None, []
    if crawl_id is None:
        return None, []
    query = (
        select(Edge.from_node, Edge.to_node, Edge.protocols)
        .where(Edge.crawl_id == crawl_id, Edge.from_node != Edge.to_node)  # a node returning itself is no edge
        .order_by(Edge.from_node, Edge.to_node)
    )
    return crawl_id, [(bytes(a), bytes(b), str(p)) for a, b, p in session.execute(query)]


def edge_list(
    session: Session, crawl_id: int | None = None, protocol: str | None = None
) -> tuple[int | None, list[tuple[bytes, bytes]]]:
    """(crawl id, [(from, to), ...]) of one crawl: the given one, else the latest; (None, []) if there is none.

    With ``protocol`` ("v4" or "v5") only the edges that protocol's replies reported: one DHT's wiring.
    """
    crawl_id, edges = edge_table(session, crawl_id)
    return crawl_id, [(a, b) for a, b, p in edges if protocol is None or protocol in p.split(",")]


def responders(session: Session, crawl_id: int, protocol: str | None = None) -> set[bytes]:
    """Nodes that answered discovery in the crawl (with ``protocol``: answered that protocol)."""
    query = select(Sighting.node_id, Sighting.protocols).where(
        Sighting.crawl_id == crawl_id, Sighting.responded.is_(True)
    )
    return {bytes(n) for n, p in session.execute(query) if protocol is None or protocol in str(p).split(",")}


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerCounts:
    """Every node by layer (None: no readable ENR), split three ways; each list largest first."""

    # (layer, protocols that ever answered -- "" for none, nodes)
    by_protocols: list[tuple[str | None, str, int]]
    # consensus nodes: (network, fork, fork digest, nodes); network and fork None for an unknown digest
    consensus: list[tuple[str | None, str | None, bytes | None, int]]
    # execution nodes: (network from the ENR's fork id, nodes)
    execution: list[tuple[str | None, int]]


def layer_counts(session: Session, scope: CrawlScope = EVERY_CRAWL) -> LayerCounts:
    """Node counts by layer and discovery protocols, consensus by network/fork, execution by network.

    With a ``scope``: the nodes sighted in a crawl in it, each by its stored (latest) ENR and protocols.
    """
    in_scope = true() if scope.everything else Node.node_id.in_(select(Sighting.node_id).where(scope.holds(Sighting.crawl_id)))
    by_protocols = [
        (layer, str(protocols), int(count))
        for layer, protocols, count in session.execute(
            select(Node.layer, Node.protocols, func.count()).where(in_scope).group_by(Node.layer, Node.protocols)
        )
    ]
    consensus = [
        (network, fork, None if digest is None else bytes(digest), int(count))
        for network, fork, digest, count in session.execute(
            select(Node.consensus_network, Node.consensus_fork, Node.eth2_fork_digest, func.count())
            .where(Node.layer == "consensus", in_scope)
            .group_by(Node.consensus_network, Node.consensus_fork, Node.eth2_fork_digest)
        )
    ]
    execution = [
        (network, int(count))
        for network, count in session.execute(
            select(Node.execution_network, func.count()).where(Node.layer == "execution", in_scope).group_by(Node.execution_network)
        )
    ]
    by_protocols.sort(key=lambda r: (-r[2], str(r[0]), r[1]))
    consensus.sort(key=lambda r: (-r[3], str(r[0]), str(r[1]), r[2] or b""))
    execution.sort(key=lambda r: (-r[1], str(r[0])))
    return LayerCounts(by_protocols=by_protocols, consensus=consensus, execution=execution)


def _placed(
    session: Session, keys: Callable[[type[Node] | type[Sighting]], Sequence[SQLCoreOperations[Any]]],
    scope: CrawlScope, client: str | None,
) -> list[tuple[Any, ...]]:
    """(*keys, nodes) over the nodes with a known address: every crawl, each at its latest address (``nodes``);
    with a narrower ``scope``, the nodes sighted in it, each at its address in the latest crawl in scope that
    sighted it with one (``sightings``).  ``client``: nodes whose latest Hello (in scope) named it."""
    if scope.everything:
        columns = keys(Node)
        query = select(*columns, func.count()).where(Node.ip.is_not(None))
        node_id = Node.node_id
    else:
        latest = (
            select(Sighting.node_id, func.max(Sighting.crawl_id).label("crawl_id"))
            .where(Sighting.ip.is_not(None), scope.holds(Sighting.crawl_id))
            .group_by(Sighting.node_id)
            .subquery()
        )
        columns = keys(Sighting)
        query = select(*columns, func.count()).join(
            latest, (latest.c.node_id == Sighting.node_id) & (latest.c.crawl_id == Sighting.crawl_id)
        )
        node_id = Sighting.node_id
    query = query.group_by(*columns[:1])
    if client is not None:
        query = query.where(node_id.in_(_named_nodes(client, scope)))
    return [tuple(row) for row in session.execute(query)]


def country_counts(
    session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None
) -> list[tuple[str | None, int]]:
    """Nodes per country code of their address (None: an address no lookup placed, or not enriched yet).

    Whole database: every node with a known address, at its latest one (``nodes.country``).  A narrower ``scope``
    (one crawl, a window): the nodes sighted in it with a known address, at the address of the latest such
    sighting (``sightings.country``).  ``client``: nodes whose latest Hello (in scope) named it.  Largest first,
    None after the codes it ties with.
    """
    counts = [(country, int(n)) for country, n in _placed(session, lambda t: [t.country], scope, client)]
    return sorted(counts, key=lambda r: (-r[1], r[0] is None, r[0] or ""))


def asn_counts(
    session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None
) -> list[tuple[int | None, str | None, int]]:
    """Nodes per autonomous system of their address, as ``country_counts`` counts countries: (asn, as_org, nodes).

    ``as_org`` is the organisation stored with the number (the greatest, should files of different dates have
    named it differently).  Largest first, None after the numbers it ties with.
    """
    rows = _placed(session, lambda t: [t.asn, func.max(t.as_org)], scope, client)
    counts = [(None if asn is None else int(asn), org, int(n)) for asn, org, n in rows]
    return sorted(counts, key=lambda r: (-r[2], r[0] is None, r[0] or 0))
