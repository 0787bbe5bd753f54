"""go-ethereum's ``nodes.json`` (``devp2p nodeset``) in and out of the node database.

The format, as ``devp2p nodeset`` writes it and the DNS-list repositories
publish it::

    {"<node id hex>": {"seq": 5, "record": "enr:...", "score": 12,
                       "firstResponse": "2025-01-22T12:29:23Z",
                       "lastResponse": "2026-06-10T08:45:08Z",
                       "lastCheck": "2026-06-10T08:45:08Z"}, ...}

Import keeps, for each node, the ENR with the higher seq (the record bytes are
stored exactly as decoded from the text, so an export gives the same text
back) and classifies it (layer, consensus fork digest) as the crawl's store does.  Export writes every node
that has an ENR.

``score`` (go-ethereum's crawl score) survives a round trip: export's score is the score of the last list that
listed the node (or the crawls of this database that had answered the node by then, if more) plus the crawls
in which it answered discovery since that import; a node never imported scores the crawls that answered it.
To count only the crawls *since* the import without an import time, import stores in ``nodes.imported_score``
that score less the crawls already counted; so importing a list this database exported is a no-op, and a list
imported into a database without crawls comes back out with exactly its scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Mapping

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ethcrawl.wire.chains import Chain
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError
from ethcrawl.wire.forkid import ForkId, validate

from .errors import InvalidRecord
from .models import Node, Sighting
from .queries import nodes_in_scope
from .scope import EVERY_CRAWL, CrawlScope
from .store import INT64_MAX, classification_columns, node_upsert

__all__ = [
    "ImportStats", "NodeFilter", "import_nodes_json", "export_nodes_json", "filter_nodes_json", "format_time",
    "parse_time", "entry_record",
]

BATCH = 500  # rows per upsert statement


@dataclass(frozen=True, slots=True)
class ImportStats:
    records: int  # entries in the file
    new: int  # nodes the database did not hold
    updated: int  # nodes it held, changed by the entry (a newer ENR, earlier/later response times, another score)
    unchanged: int  # nodes it held already as the entry says
    rejected: tuple[tuple[str, str], ...]  # (key, why) for entries that could not be used

    @property
    def imported(self) -> int:
        """Entries used: new, updated or unchanged."""
        return self.new + self.updated + self.unchanged


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


def entry_record(key: str, entry: Any) -> ENR:
    """The verified record of the nodes.json entry listed under ``key`` (as geth's nodeSet.verify); InvalidRecord."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("record"), str):
        raise InvalidRecord("entry has no 'record' text")
    try:
        record = ENR.from_text(entry["record"])
    except WireError as exc:
        raise InvalidRecord(f"bad record: {exc}") from exc
    if record.node_id is None or record.node_id.hex() != key.lower().removeprefix("0x"):
        raise InvalidRecord("the record's node id is not the key it is listed under")
    return record


def _row(key: str, entry: Any, now: datetime) -> dict[str, Any]:
    record = entry_record(key, entry)
    node_id = record.node_id
    assert node_id is not None  # entry_record checked it against the key
    score = entry.get("score", 0)  # geth omits a zero score
    if not isinstance(score, int) or isinstance(score, bool) or not -INT64_MAX <= score <= INT64_MAX:
        raise InvalidRecord(f"score {score!r} is not a whole number")
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
        "score": score,
    }


def _answered_crawls() -> Any:
    """(node_id, crawls in which the node answered discovery), as a subquery."""
    return (
        select(Sighting.node_id, func.count().label("crawls"))
        .where(Sighting.responded.is_(True))
        .group_by(Sighting.node_id)
        .subquery()
    )


def _stored(session: Session, node_ids: list[bytes]) -> dict[bytes, tuple[int | None, datetime, datetime, int | None, int]]:
    """What the database holds of these nodes: (enr_seq, first_seen, last_seen, imported_score, answered crawls)."""
    answered = _answered_crawls()
    found: dict[bytes, tuple[int | None, datetime, datetime, int | None, int]] = {}
    for start in range(0, len(node_ids), BATCH):
        query = (
            select(Node.node_id, Node.enr_seq, Node.first_seen, Node.last_seen, Node.imported_score,
                   func.coalesce(answered.c.crawls, 0))
            .outerjoin(answered, answered.c.node_id == Node.node_id)
            .where(Node.node_id.in_(node_ids[start : start + BATCH]))
        )  # fmt: skip
        for node_id, seq, first, last, imported, crawls in session.execute(query):
            found[bytes(node_id)] = (seq, first, last, imported, int(crawls))
    return found


def _changes(row: dict[str, Any], stored: tuple[int | None, datetime, datetime, int | None, int]) -> bool:
    """Whether merging ``row`` changes what the database holds (see node_upsert)."""
    seq, first, last, imported, _ = stored
    newer_enr = seq is None or row["enr_seq"] > seq
    return newer_enr or row["first_seen"] < first or row["last_seen"] > last or row["imported_score"] != imported


def import_nodes_json(session: Session, data: Mapping[str, Any], *, now: datetime) -> ImportStats:
    """Merge a parsed nodes.json into the database (caller commits)."""
    rows: list[dict[str, Any]] = []
    rejected: list[tuple[str, str]] = []
    for key, entry in data.items():
        try:
            rows.append(_row(key, entry, now))
        except (InvalidRecord, ValueError, TypeError) as exc:
            rejected.append((key, str(exc)))
    stored = _stored(session, [row["node_id"] for row in rows])
    new = updated = 0
    for row in rows:
        before = stored.get(row["node_id"])
        # Less the crawls already counted, so that export adds only the crawls since this import; a list that
        # scores the node below what our crawls already counted does not lower it.
        counted = before[4] if before else 0
        row["imported_score"] = max(row.pop("score"), counted) - counted
        if before is None:
            new += 1
        elif _changes(row, before):
            updated += 1
    statement = node_upsert(session.get_bind().dialect.name)
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        session.execute(statement, [{k: v for k, v in row.items() if k != "imported_score"} for row in batch])
        session.execute(update(Node), [{"node_id": row["node_id"], "imported_score": row["imported_score"]} for row in batch])
    return ImportStats(
        records=len(data), new=new, updated=updated, unchanged=len(rows) - new - updated, rejected=tuple(rejected)
    )


def export_nodes_json(
    session: Session, layer: str | None = None, scope: CrawlScope = EVERY_CRAWL
) -> dict[str, dict[str, Any]]:
    """Every node with an ENR (of ``layer`` only, if given; sighted or dialed in ``scope``), in nodes.json form,
    ordered by node id like geth's."""
    answered = _answered_crawls()
    query = (
        select(Node, func.coalesce(Node.imported_score, 0) + func.coalesce(answered.c.crawls, 0))
        .outerjoin(answered, answered.c.node_id == Node.node_id)
        .where(Node.enr.is_not(None))
        .order_by(Node.node_id)
    )
    if layer is not None:
        query = query.where(Node.layer == layer)
    if not scope.everything:
        query = query.where(Node.node_id.in_(nodes_in_scope(scope)))
    out: dict[str, dict[str, Any]] = {}
    for node, score in session.execute(query):
        assert node.enr is not None  # the query selects nodes with an ENR
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


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFilter:
    """go-ethereum's ``devp2p nodeset filter`` criteria; a node must meet every one that is set.

    ``eth_network``: the record's ``eth`` fork id passes EIP-2124 validation by a node of that
    chain at genesis (geth's forkid.NewStaticFilter: any fork id of the chain's schedule).
    ``min_age``: lastResponse - firstResponse at least this long.  ``snap``: the record has a
    ``snap`` entry.  ``ip``: the record's address (IPv4 preferred, as geth's Node.IP) lies in it.
    ``limit``: then keep the N best ``score`` (ties by node id, so the choice is reproducible).
    """

    eth_network: Chain | None = None
    min_age: timedelta | None = None
    snap: bool = False
    ip: IPv4Network | IPv6Network | None = None
    limit: int | None = None


def _eth_fork_id(record: ENR) -> ForkId | None:
    """The fork id of an ``eth`` entry shaped as geth decodes it ([[hash, next], ...]), else None."""
    entry = record.get("eth")
    if not isinstance(entry, list) or not entry:
        return None
    try:
        return ForkId.from_rlp_item(entry[0])
    except WireError:
        return None


def _passes(entry: Mapping[str, Any], criteria: NodeFilter) -> bool:
    record = ENR.from_text(entry["record"], verify=False)
    if criteria.eth_network is not None:
        fork = _eth_fork_id(record)
        if fork is None or not validate(criteria.eth_network, 0, 0, fork).ok:
            return False
    if criteria.min_age is not None:
        first, last = parse_time(entry.get("firstResponse")), parse_time(entry.get("lastResponse"))
        if first is None or last is None or last - first < criteria.min_age:
            return False
    if criteria.snap and not isinstance(record.get("snap"), list):
        return False
    if criteria.ip is not None:
        address = record.ip or record.ip6
        if address is None or address.version != criteria.ip.version or address not in criteria.ip:
            return False
    return True


def filter_nodes_json(data: Mapping[str, Mapping[str, Any]], criteria: NodeFilter) -> dict[str, Any]:
    """The entries of a nodes.json (as export_nodes_json gives it) that meet ``criteria``, in the input order."""
    kept = {key: entry for key, entry in data.items() if _passes(entry, criteria)}
    if criteria.limit is not None and criteria.limit < len(kept):
        best = sorted(kept, key=lambda key: (-int(kept[key].get("score", 0)), key))[: criteria.limit]
        chosen = set(best)
        kept = {key: entry for key, entry in kept.items() if key in chosen}
    return kept
