"""go-ethereum's ``nodes.json`` (``devp2p nodeset``) in and out of the node database.

The format, as ``devp2p nodeset`` writes it and the DNS-list repositories
publish it::

    {"<node id hex>": {"seq": 5, "record": "enr:...", "score": 12,
                       "firstResponse": "2025-01-22T12:29:23Z",
                       "lastResponse": "2026-06-10T08:45:08Z",
                       "lastCheck": "2026-06-10T08:45:08Z"}, ...}

Import keeps, for each node, the ENR with the higher seq (the record bytes are
stored exactly as decoded from the text, so an export gives the same text
back) and classifies it (layer, consensus fork digest) as the crawl's store does.  Export writes every node that has an ENR; ``score`` is the number of
crawls in which the node answered discovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError

from .errors import InvalidRecord
from .models import Node, Sighting
from .store import INT64_MAX, classification_columns, node_upsert

__all__ = ["ImportStats", "import_nodes_json", "export_nodes_json", "format_time", "parse_time"]

BATCH = 500  # rows per upsert statement


@dataclass(frozen=True, slots=True)
class ImportStats:
    records: int  # entries in the file
    imported: int  # rows written (new nodes, or newer ENRs merged)
    rejected: tuple[tuple[str, str], ...]  # (key, why) for entries that could not be used


def parse_time(text: object) -> datetime | None:
    """RFC 3339 as geth writes it (``2026-06-10T08:45:08Z``), or None."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError(f"time {text!r} is not RFC 3339 text")
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(key: str, entry: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("record"), str):
        raise InvalidRecord("entry has no 'record' text")
    try:
        record = ENR.from_text(entry["record"])
    except WireError as exc:
        raise InvalidRecord(f"bad record: {exc}") from exc
    node_id = record.node_id
    if node_id is None or node_id.hex() != key.lower().removeprefix("0x"):
        raise InvalidRecord("the record's node id is not the key it is listed under")
    first = parse_time(entry.get("firstResponse")) or now
    last = parse_time(entry.get("lastResponse")) or first
    endpoint = record.to_node()
    ip = endpoint.ip
    return {
        "node_id": node_id,
        "pubkey": record.public_key_raw,
        "ip": str(ip) if ip is not None else None,
        "udp_port": endpoint.udp,
        "tcp_port": endpoint.tcp,
        "enr": record.to_rlp(),
        "enr_seq": min(record.seq, INT64_MAX),
        "first_seen": min(first, last),
        "last_seen": last,
        # A list says nothing about which discovery protocol answers; the crawl will.
        "protocols": "",
        **classification_columns(record.to_rlp()),
    }


def import_nodes_json(session: Session, data: Mapping[str, Any], *, now: datetime) -> ImportStats:
    """Merge a parsed nodes.json into the database (caller commits)."""
    rows: list[dict[str, Any]] = []
    rejected: list[tuple[str, str]] = []
    for key, entry in data.items():
        try:
            rows.append(_row(key, entry, now))
        except (InvalidRecord, ValueError, TypeError) as exc:
            rejected.append((key, str(exc)))
    statement = node_upsert(session.get_bind().dialect.name)
    for start in range(0, len(rows), BATCH):
        session.execute(statement, rows[start : start + BATCH])
    return ImportStats(records=len(data), imported=len(rows), rejected=tuple(rejected))


def export_nodes_json(session: Session, layer: str | None = None) -> dict[str, dict[str, Any]]:
    """Every node with an ENR (of ``layer`` only, if given), in nodes.json form, ordered by node id like geth's."""
    answered = (
        select(Sighting.node_id, func.count().label("crawls"))
        .where(Sighting.responded.is_(True))
        .group_by(Sighting.node_id)
        .subquery()
    )
    query = (
        select(Node, func.coalesce(answered.c.crawls, 0))
        .outerjoin(answered, answered.c.node_id == Node.node_id)
        .where(Node.enr.is_not(None))
        .order_by(Node.node_id)
    )
    if layer is not None:
        query = query.where(Node.layer == layer)
    out: dict[str, dict[str, Any]] = {}
    for node, score in session.execute(query):
        record = ENR.from_rlp(node.enr, verify=False)
        out[node.node_id.hex()] = {
            "seq": record.seq,
            "record": record.to_text(),
            "score": int(score),
            "firstResponse": format_time(node.first_seen),
            "lastResponse": format_time(node.last_seen),
            "lastCheck": format_time(node.last_seen),
        }
    return out
