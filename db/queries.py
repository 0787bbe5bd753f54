"""Read queries for reports and exports: every node with its latest dial, and shares by client.

Callers own the session; results are plain records, never ORM objects, so the
CLI layer formats them without knowing SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from .models import Crawl, DialAttempt, Edge, Node, Sighting

__all__ = [
    "NodeReport", "node_reports", "client_shares", "histogram", "DIMENSIONS", "CrawlRow", "crawl_history",
    "edge_list", "edge_table", "responders", "LayerCounts", "layer_counts",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeReport:
    """One node and what its most recent RLPx attempt learned (None where nothing was)."""

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


def _latest_dials() -> Subquery:
    """The id of each node's most recent dial attempt."""
    return select(DialAttempt.node_id, func.max(DialAttempt.id).label("dial_id")).group_by(DialAttempt.node_id).subquery()


def node_reports(session: Session) -> list[NodeReport]:
    """Every known node, ordered by node id, with its latest dial's findings."""
    latest = _latest_dials()
    query = (
        select(Node, DialAttempt)
        .outerjoin(latest, latest.c.node_id == Node.node_id)
        .outerjoin(DialAttempt, DialAttempt.id == latest.c.dial_id)
        .order_by(Node.node_id)
    )
    reports = []
    for node, dial in session.execute(query):
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
                last_outcome=dial.outcome if dial else None,
                client_id=dial.client_id if dial else None,
                client_name=dial.client_name if dial else None,
                client_version=dial.client_version if dial else None,
                os=dial.client_os if dial else None,
                arch=dial.client_arch if dial else None,
                runtime=dial.client_runtime if dial else None,
                capabilities=dial.capabilities if dial else None,
                network_id=dial.network_id if dial else None,
                fork_hash=dial.fork_hash if dial else None,
                fork_next=dial.fork_next if dial else None,
                synced=dial.synced if dial else None,
                protocols=node.protocols,
                layer=node.layer,
                execution_network=node.execution_network,
                eth2_fork_digest=node.eth2_fork_digest,
                consensus_network=node.consensus_network,
                consensus_fork=node.consensus_fork,
                attnets_count=node.attnets_count,
                syncnets_count=node.syncnets_count,
            )
        )
    return reports


# Report dimensions: name -> the dial column they group by.
DIMENSIONS = {
    "clients": DialAttempt.client_name,
    "versions": DialAttempt.client_version,
    "os": DialAttempt.client_os,
    "runtimes": DialAttempt.client_runtime,
    "outcomes": DialAttempt.outcome,
}


def histogram(session: Session, dimension: str, *, client: str | None = None) -> list[tuple[str, int]]:
    """Distinct nodes per value of ``dimension``, from each node's latest dial that told it; largest first.

    ``outcomes`` counts every node's latest attempt whatever it learned.
    """
    column = DIMENSIONS[dimension]
    latest = select(DialAttempt.node_id, func.max(DialAttempt.id).label("dial_id"))
    if dimension != "outcomes":
        latest = latest.where(column.is_not(None))
    if client is not None:
        latest = latest.where(DialAttempt.client_name == client)
    sub = latest.group_by(DialAttempt.node_id).subquery()
    query = (
        select(column, func.count())
        .join(sub, sub.c.dial_id == DialAttempt.id)
        .group_by(column)
        .order_by(func.count().desc(), column)
    )
    return [(str(value), int(count)) for value, count in session.execute(query)]


def client_shares(session: Session) -> list[tuple[str, int]]:
    """Distinct nodes per client name (from each node's latest dial that told one), largest first."""
    return histogram(session, "clients")


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlRow:
    id: int
    started_at: datetime
    ended_at: datetime | None
    nodes: int
    edges: int
    dials_ok: int
    dials_failed: int


def crawl_history(session: Session) -> list[CrawlRow]:
    """Every crawl, newest first, with the counts stored when it finished."""
    return [
        CrawlRow(
            id=c.id, started_at=c.started_at, ended_at=c.ended_at, nodes=c.node_count, edges=c.edge_count,
            dials_ok=c.dials_ok, dials_failed=c.dials_failed,
        )
        for c in session.scalars(select(Crawl).order_by(Crawl.id.desc()))
    ]


def edge_table(session: Session, crawl_id: int | None = None) -> tuple[int | None, list[tuple[bytes, bytes, str]]]:
    """(crawl id, [(from, to, protocols), ...]) of one crawl: the given one, else the latest; (None, []) if none."""
    if crawl_id is None:
        crawl_id = session.scalar(select(func.max(Crawl.id)))
    elif session.get(Crawl, crawl_id) is None:
        return None, []
    if crawl_id is None:
        return None, []
    query = (
        select(Edge.from_node, Edge.to_node, Edge.protocols)
        .where(Edge.crawl_id == crawl_id)
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


def layer_counts(session: Session) -> LayerCounts:
    """Node counts by layer and discovery protocols, consensus by network/fork, execution by network."""
    by_protocols = [
        (layer, str(protocols), int(count))
        for layer, protocols, count in session.execute(
            select(Node.layer, Node.protocols, func.count()).group_by(Node.layer, Node.protocols)
        )
    ]
    consensus = [
        (network, fork, None if digest is None else bytes(digest), int(count))
        for network, fork, digest, count in session.execute(
            select(Node.consensus_network, Node.consensus_fork, Node.eth2_fork_digest, func.count())
            .where(Node.layer == "consensus")
            .group_by(Node.consensus_network, Node.consensus_fork, Node.eth2_fork_digest)
        )
    ]
    execution = [
        (network, int(count))
        for network, count in session.execute(
            select(Node.execution_network, func.count()).where(Node.layer == "execution").group_by(Node.execution_network)
        )
    ]
    by_protocols.sort(key=lambda r: (-r[2], str(r[0]), r[1]))
    consensus.sort(key=lambda r: (-r[3], str(r[0]), str(r[1]), r[2] or b""))
    execution.sort(key=lambda r: (-r[1], str(r[0])))
    return LayerCounts(by_protocols=by_protocols, consensus=consensus, execution=execution)
