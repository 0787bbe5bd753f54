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
    "edge_list", "responders",
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


def edge_list(session: Session, crawl_id: int | None = None) -> tuple[int | None, list[tuple[bytes, bytes]]]:
    """(crawl id, [(from, to), ...]) of one crawl: the given one, else the latest; (None, []) if there is none."""
    if crawl_id is None:
        crawl_id = session.scalar(select(func.max(Crawl.id)))
    elif session.get(Crawl, crawl_id) is None:
        return None, []
    if crawl_id is None:
        return None, []
    query = select(Edge.from_node, Edge.to_node).where(Edge.crawl_id == crawl_id).order_by(Edge.from_node, Edge.to_node)
    return crawl_id, [(bytes(a), bytes(b)) for a, b in session.execute(query)]


def responders(session: Session, crawl_id: int) -> set[bytes]:
    """Nodes that answered discovery in the crawl."""
    query = select(Sighting.node_id).where(Sighting.crawl_id == crawl_id, Sighting.responded.is_(True))
    return {bytes(n) for n in session.scalars(query)}
