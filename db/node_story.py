"""One node's whole story: its sightings per crawl, its ENR versions and what changed between them, its client
versions, every RLPx attempt, and who returned it in each crawl."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError

from .errors import NotFound
from .models import Crawl, DialAttempt, Edge, EnrHistory, Node, Sighting

__all__ = [
    "NODE_ID_HEX", "resolve_node", "SightingStory", "EnrVersion", "ClientChange", "DialStory", "ReturnedBy",
    "NodeStory", "node_story", "enr_fields", "enr_changes",
]

NODE_ID_HEX = 64  # hex digits of a node id (32 bytes)
# How many nodes an ambiguous prefix names in its error: enough to pick from, short enough for one line.
AMBIGUOUS_SHOWN = 3


def _bounds(prefix: str) -> tuple[bytes, bytes]:
    """The lowest and highest node id starting with the hex ``prefix``."""
    return bytes.fromhex(prefix.ljust(NODE_ID_HEX, "0")), bytes.fromhex(prefix.ljust(NODE_ID_HEX, "f"))


def resolve_node(session: Session, text: str) -> bytes:
    """The node id a full hex id or a unique hex prefix names (a node stored, or an RLPx peer); NotFound."""
    prefix = text.lower().removeprefix("0x")
    if not prefix or len(prefix) > NODE_ID_HEX or any(c not in "0123456789abcdef" for c in prefix):
        raise NotFound(f"{text!r} is not a node id or a prefix of one (hex, up to {NODE_ID_HEX} digits)")
    low, high = _bounds(prefix)
    stored = select(Node.node_id).where(Node.node_id.between(low, high))
    dialed = select(DialAttempt.node_id).where(DialAttempt.node_id.between(low, high))
    both = union(stored, dialed).subquery()
    found = [bytes(n) for (n,) in session.execute(select(both.c.node_id).order_by(both.c.node_id).limit(AMBIGUOUS_SHOWN + 1))]
    if not found:
        raise NotFound(f"the database holds no node {prefix}")
    if len(found) > 1:
        shown = ", ".join(n.hex()[: len(prefix) + 4] for n in found[:AMBIGUOUS_SHOWN])
        more = ", ..." if len(found) > AMBIGUOUS_SHOWN else ""
        raise NotFound(f"{prefix} names several nodes ({shown}{more}): give more digits")
    return found[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class SightingStory:
    crawl_id: int
    kind: str  # records.CRAWL_KINDS
    first_seen: datetime
    source: str
    answered: bool
    protocols: str
    ip: str | None
    udp_port: int | None
    tcp_port: int | None
    enr_seq: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrVersion:
    seq: int
    first_seen: datetime
    crawl_id: int | None
    enr: bytes
    # key -> [before, after] against the previous version (None where a key is absent); {} for the first one.
    changes: dict[str, list[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientChange:
    """The client a Hello named, where it differs from the one before (the first Hello always counts)."""

    crawl_id: int
    at: datetime
    client_id: str
    client_name: str | None
    client_version: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DialStory:
    crawl_id: int
    at: datetime
    direction: str
    outcome: str
    ip: str | None
    tcp_port: int | None
    client_id: str | None
    network_id: int | None
    fork_hash: bytes | None
    fork_next: int | None
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnedBy:
    crawl_id: int
    nodes: list[bytes]  # who returned it in that crawl (discovery answers), by id


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStory:
    node_id: bytes
    stored: bool  # the node table holds it (an inbound-only peer may be known from its attempts alone)
    ip: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    sightings: list[SightingStory]
    enr_versions: list[EnrVersion]
    clients: list[ClientChange]
    dials: list[DialStory]
    returned_by: list[ReturnedBy]


def enr_fields(record: bytes) -> dict[str, Any]:
    """A record's readable fields (wire.enr's to_dict: endpoints, eth fork ids, every other pair), flat; the
    signature's validity, seq and node id are left out (they are not what a node changes)."""
    try:
        decoded = ENR.from_rlp(record, verify=False).to_dict()
    except WireError as exc:
        return {"unreadable": str(exc)}
    other = decoded.pop("other", {})
    for key in ("node_id", "seq", "valid_signature"):
        decoded.pop(key, None)
    return {**{k: v for k, v in decoded.items() if v is not None}, **other}


def enr_changes(before: bytes, after: bytes) -> dict[str, list[Any]]:
    """key -> [old, new] for every field that differs between two records (None: absent), by key."""
    old, new = enr_fields(before), enr_fields(after)
    return {key: [old.get(key), new.get(key)] for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)}


def _enr_versions(session: Session, node_id: bytes) -> list[EnrVersion]:
    versions: list[EnrVersion] = []
    previous: bytes | None = None
    for row in session.scalars(select(EnrHistory).where(EnrHistory.node_id == node_id).order_by(EnrHistory.seq)):
        changes = {} if previous is None else enr_changes(previous, row.enr)
        versions.append(EnrVersion(seq=row.seq, first_seen=row.first_seen, crawl_id=row.crawl_id, enr=row.enr, changes=changes))
        previous = row.enr
    return versions


def _clients(dials: list[DialAttempt]) -> list[ClientChange]:
    changes: list[ClientChange] = []
    for dial in dials:
        if dial.client_id is None:
            continue
        if changes and (changes[-1].client_name, changes[-1].client_version) == (dial.client_name, dial.client_version):
            continue
        changes.append(
            ClientChange(
                crawl_id=dial.crawl_id, at=dial.attempted_at, client_id=dial.client_id, client_name=dial.client_name,
                client_version=dial.client_version,
            )
        )
    return changes


def node_story(session: Session, node_id: bytes) -> NodeStory:
    """Everything the database holds about one node, oldest first in each part."""
    node = session.get(Node, node_id)
    sightings = [
        SightingStory(
            crawl_id=s.crawl_id, kind=kind, first_seen=s.first_seen, source=s.source, answered=s.responded,
            protocols=s.protocols, ip=s.ip, udp_port=s.udp_port, tcp_port=s.tcp_port, enr_seq=s.enr_seq,
        )
        for s, kind in session.execute(
            select(Sighting, Crawl.kind).join(Crawl, Crawl.id == Sighting.crawl_id)
            .where(Sighting.node_id == node_id).order_by(Sighting.crawl_id)
        )
    ]  # fmt: skip
    attempts = list(session.scalars(select(DialAttempt).where(DialAttempt.node_id == node_id).order_by(DialAttempt.id)))
    dials = [
        DialStory(
            crawl_id=d.crawl_id, at=d.attempted_at, direction=d.direction, outcome=d.outcome, ip=d.ip,
            tcp_port=d.tcp_port, client_id=d.client_id, network_id=d.network_id, fork_hash=d.fork_hash,
            fork_next=d.fork_next, error=d.error,
        )
        for d in attempts
    ]  # fmt: skip
    returned: dict[int, list[bytes]] = {}
    edges = select(Edge.crawl_id, Edge.from_node).where(Edge.to_node == node_id, Edge.from_node != node_id)
    for crawl_id, from_node in session.execute(edges.order_by(Edge.crawl_id, Edge.from_node)):
        returned.setdefault(crawl_id, []).append(bytes(from_node))
    first = session.scalar(select(func.min(DialAttempt.attempted_at)).where(DialAttempt.node_id == node_id))
    last = session.scalar(select(func.max(DialAttempt.attempted_at)).where(DialAttempt.node_id == node_id))
    return NodeStory(
        node_id=node_id,
        stored=node is not None,
        ip=node.ip if node is not None else (attempts[-1].ip if attempts else None),
        first_seen=node.first_seen if node is not None else first,
        last_seen=node.last_seen if node is not None else last,
        sightings=sightings,
        enr_versions=_enr_versions(session, node_id),
        clients=_clients(attempts),
        dials=dials,
        returned_by=[ReturnedBy(crawl_id=c, nodes=n) for c, n in sorted(returned.items())],
    )
