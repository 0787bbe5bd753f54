"""Data functions over a caller-owned session: write record batches, read summaries.

Writes are bulk ``INSERT ... ON CONFLICT`` statements, built with the
dialect's own ``insert`` (SQLite and PostgreSQL share the syntax).  A batch
is first merged in Python so that one statement never touches the same row
twice (PostgreSQL refuses that).  Nothing here commits: the caller (the
writer task, a test, the CLI) owns the transaction.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, insert, literal, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ethcrawl.wire.classify import classify
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError

from .errors import InvalidRecord, UnsupportedDatabase
from .models import Crawl, DialAttempt, Edge, EnrHistory, Node, Sighting
from .queries import asn_counts, country_counts, dial_outcomes, hello_counts, network_counts, totals
from .scope import CrawlScope
from .records import (
    DROPPED_PREFIX,
    SILENT_DIALS,
    CrawlFinished,
    CrawlStarted,
    CrawlSummary,
    DialRecord,
    EdgeSeen,
    DISCOVERY_PROTOCOLS,
    KnownNode,
    NodeSeen,
    Record,
    protocol_set,
)

__all__ = [
    "INT64_MAX",
    "CLASSIFICATION_COLUMNS",
    "PLACE_COLUMNS",
    "classification_columns",
    "begin_crawl",
    "write_records",
    "node_upsert",
    "sighting_upsert",
    "enr_history_insert",
    "edge_upsert",
    "finish_crawl",
    "load_known_nodes",
    "crawl_summary",
]

log = logging.getLogger(__name__)

# Both SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit; peers may send any uint64.
INT64_MAX = 2**63 - 1

_InsertFactory = Callable[[Table], Any]
_INSERTS: dict[str, _InsertFactory] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _insert_for(dialect: str, table: Any) -> Any:
    factory = _INSERTS.get(dialect)
    if factory is None:
        raise UnsupportedDatabase(f"no upsert for {dialect!r}; only sqlite and postgresql are supported")
    return factory(table)


def _int64_or_none(value: int | None) -> int | None:
    """A peer-supplied number if a 64-bit column can hold it, else None (only a hostile peer sends those)."""
    if value is None or -INT64_MAX - 1 <= value <= INT64_MAX:
        return value
    return None


# Node columns derived from the stored ENR (schema v2); rewritten only together with the ENR.
CLASSIFICATION_COLUMNS = (
    "layer", "execution_network", "eth2_fork_digest", "consensus_network", "consensus_fork",
    "attnets_count", "syncnets_count",
)  # fmt: skip
# Where a node's address is (schema v4), filled by db.enrich and cleared when the address changes.
PLACE_COLUMNS = ("country", "asn", "as_org")


def classification_columns(enr: bytes | None) -> dict[str, Any]:
    """The classification columns for a stored ENR; all None when there is none or it does not decode.

    The signature is not checked again: records reach the store verified (crawler,
    nodes.json import), and an unverifiable one still says what it claims to be.
    """
    if enr is None:
        return dict.fromkeys(CLASSIFICATION_COLUMNS)
    try:
        found = classify(ENR.from_rlp(enr, verify=False))
    except WireError:
        return dict.fromkeys(CLASSIFICATION_COLUMNS)
    return {
        "layer": found.layer,
        "execution_network": found.execution_network,
        "eth2_fork_digest": found.fork_digest,
        "consensus_network": found.consensus_network,
        "consensus_fork": found.consensus_fork,
        "attnets_count": found.attnets_count,
        "syncnets_count": found.syncnets_count,
    }


def union_protocols(old: Any, new: Any) -> ColumnElement[Any]:
    """SQL for the union of two stored protocol sets ("", "v4", "v5", "v4,v5").

    With exactly two protocols, two different non-empty sets always unite to
    the full set, so a CASE does it on every dialect without string parsing.
    """
    full = literal(",".join(DISCOVERY_PROTOCOLS))
    return case((old == new, old), (old == "", new), (new == "", old), else_=full)


assert len(DISCOVERY_PROTOCOLS) == 2, "union_protocols relies on exactly two discovery protocols"


def begin_crawl(session: Session, record: CrawlStarted) -> int:
    """Insert the crawl row and return its id (the crawler needs it before any record)."""
    try:
        # default=str: paths and enums become text; NaN is not JSON, so it is refused.
        parameters = json.dumps(dict(record.parameters), sort_keys=True, default=str, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"crawl parameters are not JSON-serialisable: {exc}") from exc
    crawl = Crawl(
        started_at=record.started_at, ended_at=None, parameters=parameters, local_node_id=record.local_node_id,
        kind=record.kind,
    )
    session.add(crawl)
    session.flush()
    return crawl.id


# ---------------------------------------------------------------- batch merging


@dataclass(slots=True)
class _NodeRow:
    node_id: bytes
    pubkey: bytes
    ip: str | None
    udp_port: int | None
    tcp_port: int | None
    enr: bytes | None
    enr_seq: int | None
    first_seen: Any
    last_seen: Any
    protocols: set[str]

    def merge(self, seen: NodeSeen) -> None:
        self.protocols.update(seen.protocols)
        if seen.seen_at >= self.last_seen:
            self.last_seen = seen.seen_at
            if seen.ip is not None:
                self.ip, self.udp_port, self.tcp_port = seen.ip, seen.udp, seen.tcp
        self.first_seen = min(self.first_seen, seen.seen_at)
        if seen.enr_seq is not None and (self.enr_seq is None or seen.enr_seq > self.enr_seq):
            self.enr, self.enr_seq = seen.enr, seen.enr_seq


def _node_rows(records: Iterable[NodeSeen]) -> list[dict[str, Any]]:
    merged: dict[bytes, _NodeRow] = {}
    for seen in records:
        row = merged.get(seen.node_id)
        if row is None:
            merged[seen.node_id] = _NodeRow(
                node_id=seen.node_id,
                pubkey=seen.pubkey,
                ip=seen.ip,
                udp_port=seen.udp,
                tcp_port=seen.tcp,
                enr=seen.enr,
                enr_seq=seen.enr_seq,
                first_seen=seen.seen_at,
                last_seen=seen.seen_at,
                protocols=set(seen.protocols),
            )
        else:
            row.merge(seen)
    rows = []
    for row in merged.values():
        # The exact sequence number stays inside the ENR bytes; the column saturates so
        # "newer ENR?" comparisons keep working for absurd uint64 values.
        seq = None if row.enr_seq is None else min(row.enr_seq, INT64_MAX)
        rows.append(
            {
                "node_id": row.node_id,
                "pubkey": row.pubkey,
                "ip": row.ip,
                "udp_port": row.udp_port,
                "tcp_port": row.tcp_port,
                "enr": row.enr,
                "enr_seq": seq,
                "first_seen": row.first_seen,
                "last_seen": row.last_seen,
                "protocols": protocol_set(row.protocols),
                # Computed for every row with an ENR; the upsert keeps it only if that ENR is stored.
                **classification_columns(row.enr),
            }
        )
    # One order for every writer: concurrent upserts of overlapping rows then wait
    # for each other instead of deadlocking (PostgreSQL with several crawlers).
    rows.sort(key=lambda r: r["node_id"])
    return rows


def _sighting_rows(records: Iterable[NodeSeen]) -> list[dict[str, Any]]:
    """One row per (crawl, node): the earliest source, the flags ORed, the address of the last record that carried
    one and the highest ENR seq (the upsert carries both across batches; the writer sends records as they come)."""
    merged: dict[tuple[int, bytes], dict[str, Any]] = {}
    for seen in records:
        key = (seen.crawl_id, seen.node_id)
        row = merged.get(key)
        if row is None:
            row = merged[key] = {
                "crawl_id": seen.crawl_id,
                "node_id": seen.node_id,
                "first_seen": seen.seen_at,
                "source": seen.source,
                "responded": seen.responded,
                "enr_received": seen.enr is not None,
                "protocols": set(seen.protocols),
                "ip": None, "udp_port": None, "tcp_port": None, "enr_seq": None,
            }
        else:
            if seen.seen_at < row["first_seen"]:
                row["first_seen"], row["source"] = seen.seen_at, seen.source
            row["responded"] = row["responded"] or seen.responded
            row["enr_received"] = row["enr_received"] or seen.enr is not None
            row["protocols"].update(seen.protocols)
        if seen.ip is not None:
            row["ip"], row["udp_port"], row["tcp_port"] = seen.ip, seen.udp, seen.tcp
        if seen.enr_seq is not None:
            seq = min(seen.enr_seq, INT64_MAX)
            row["enr_seq"] = seq if row["enr_seq"] is None else max(row["enr_seq"], seq)
    rows = [merged[key] for key in sorted(merged)]
    for row in rows:
        row["protocols"] = protocol_set(row["protocols"])
    return rows


def _enr_history_rows(records: Iterable[NodeSeen]) -> list[dict[str, Any]]:
    """One row per (node, seq) received in the batch, with the first crawl and time it arrived."""
    merged: dict[tuple[bytes, int], dict[str, Any]] = {}
    for seen in records:
        if seen.enr is None or seen.enr_seq is None:
            continue
        key = (seen.node_id, min(seen.enr_seq, INT64_MAX))
        row = merged.get(key)
        if row is None or seen.seen_at < row["first_seen"]:
            merged[key] = {
                "node_id": key[0], "seq": key[1], "enr": seen.enr, "first_seen": seen.seen_at, "crawl_id": seen.crawl_id,
            }
    return [merged[key] for key in sorted(merged)]


def _edge_rows(records: Iterable[EdgeSeen]) -> list[dict[str, Any]]:
    merged: dict[tuple[int, bytes, bytes], dict[str, Any]] = {}
    for edge in records:
        key = (edge.crawl_id, edge.from_id, edge.to_id)
        row = merged.get(key)
        if row is None:
            merged[key] = {
                "crawl_id": edge.crawl_id,
                "from_node": edge.from_id,
                "to_node": edge.to_id,
                "first_seen": edge.seen_at,
                "protocols": {edge.protocol},
            }
        else:
            row["first_seen"] = min(row["first_seen"], edge.seen_at)
            row["protocols"].add(edge.protocol)
    rows = [merged[key] for key in sorted(merged)]
    for row in rows:
        row["protocols"] = protocol_set(row["protocols"])
    return rows


def _dial_row(dial: DialRecord) -> dict[str, Any]:
    return {
        "crawl_id": dial.crawl_id,
        "node_id": dial.node_id,
        "attempted_at": dial.attempted_at,
        "direction": dial.direction,
        "outcome": dial.outcome,
        "ip": dial.ip,
        "tcp_port": dial.tcp_port,
        "disconnect_reason": _int64_or_none(dial.disconnect_reason),
        "error": dial.error,
        "client_id": dial.client_id,
        "client_name": dial.client_name,
        "client_version": dial.client_version,
        "client_os": dial.client_os,
        "client_arch": dial.client_arch,
        "client_runtime": dial.client_runtime,
        "client_user_data": dial.client_user_data,
        "capabilities": dial.capabilities,
        "p2p_version": _int64_or_none(dial.p2p_version),
        "eth_version": _int64_or_none(dial.eth_version),
        "network_id": _int64_or_none(dial.network_id),
        "genesis_hash": dial.genesis_hash,
        "fork_hash": dial.fork_hash,
        "fork_next": _int64_or_none(dial.fork_next),
        "head_hash": dial.head_hash,
        "total_difficulty": None if dial.total_difficulty is None else str(dial.total_difficulty),
        "earliest_block": _int64_or_none(dial.earliest_block),
        "latest_block": _int64_or_none(dial.latest_block),
        "head_number": _int64_or_none(dial.head_number),
        "synced": dial.synced,
    }


# ---------------------------------------------------------------- upserts


def node_upsert(dialect: str) -> Any:
    """Insert nodes; on conflict keep the earliest first_seen, the latest address, the highest-seq ENR.

    The classification columns follow the ENR (they change only when a newer one
    is stored); the protocol set only grows.
    """
    table = Node.__table__
    stmt = _insert_for(dialect, table)
    new = stmt.excluded
    newer_enr = new.enr_seq.is_not(None) & (table.c.enr_seq.is_(None) | (new.enr_seq > table.c.enr_seq))
    later = new.last_seen >= table.c.last_seen
    moved = later & new.ip.is_not(None) & new.ip.is_distinct_from(table.c.ip)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.node_id],
        set_={
            "pubkey": new.pubkey,
            # The address a node had when we last heard of it wins; a record without one keeps ours.
            "ip": case((later & new.ip.is_not(None), new.ip), else_=table.c.ip),
            "udp_port": case((later & new.ip.is_not(None), new.udp_port), else_=table.c.udp_port),
            "tcp_port": case((later & new.ip.is_not(None), new.tcp_port), else_=table.c.tcp_port),
            "enr": case((newer_enr, new.enr), else_=table.c.enr),
            "enr_seq": case((newer_enr, new.enr_seq), else_=table.c.enr_seq),
            "first_seen": case((new.first_seen < table.c.first_seen, new.first_seen), else_=table.c.first_seen),
            "last_seen": case((later, new.last_seen), else_=table.c.last_seen),
            "protocols": union_protocols(table.c.protocols, new.protocols),
            **{name: case((newer_enr, new[name]), else_=table.c[name]) for name in CLASSIFICATION_COLUMNS},
            # Country and AS describe the address (db.enrich): a node that moved is unplaced until enriched again.
            **{name: case((moved, null()), else_=table.c[name]) for name in PLACE_COLUMNS},
        },
    )
    return stmt


def sighting_upsert(dialect: str) -> Any:
    """Insert sightings; on conflict keep the earliest (first_seen, source) and OR the flags."""
    table = Sighting.__table__
    stmt = _insert_for(dialect, table)
    new = stmt.excluded
    earlier = new.first_seen < table.c.first_seen
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.crawl_id, table.c.node_id],
        set_={
            "first_seen": case((earlier, new.first_seen), else_=table.c.first_seen),
            "source": case((earlier, new.source), else_=table.c.source),
            "responded": or_(table.c.responded, new.responded),
            "enr_received": or_(table.c.enr_received, new.enr_received),
            "protocols": union_protocols(table.c.protocols, new.protocols),
            # The address of the last record that carried one wins; the highest seq stays.
            "ip": func.coalesce(new.ip, table.c.ip),
            "udp_port": case((new.ip.is_not(None), new.udp_port), else_=table.c.udp_port),
            "tcp_port": case((new.ip.is_not(None), new.tcp_port), else_=table.c.tcp_port),
            "enr_seq": case(
                (table.c.enr_seq.is_(None) | (new.enr_seq > table.c.enr_seq), new.enr_seq), else_=table.c.enr_seq
            ),
        },
    )
    return stmt


def enr_history_insert(dialect: str) -> Any:
    """Insert ENR versions; a (node, seq) already stored keeps its first arrival."""
    table = EnrHistory.__table__
    return _insert_for(dialect, table).on_conflict_do_nothing(index_elements=[table.c.node_id, table.c.seq])


def edge_upsert(dialect: str) -> Any:
    """Insert edges; an edge already recorded in the crawl keeps its row and only gains the new protocol."""
    table = Edge.__table__
    stmt = _insert_for(dialect, table)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[table.c.crawl_id, table.c.from_node, table.c.to_node],
        set_={"protocols": union_protocols(table.c.protocols, new.protocols)},
    )


def finish_crawl(session: Session, record: CrawlFinished) -> None:
    """Set the crawl's end time and its final counts (``queries.totals``, the one definition of each)."""
    counts = totals(session, record.crawl_id)
    session.execute(
        update(Crawl)
        .where(Crawl.id == record.crawl_id)
        .values(
            ended_at=record.ended_at,
            node_count=counts.nodes,
            edge_count=counts.edges,
            dials_ok=counts.dials_ok,
            dials_failed=counts.dials_failed,
            stats=json.dumps(dict(record.stats), sort_keys=True),
        )
    )


def write_records(session: Session, records: Sequence[Record]) -> int:
    """Write one batch in dependency order (nodes before sightings and edges); return rows sent.

    ``CrawlFinished`` records run last, so the counts include the rest of the batch.
    """
    nodes = [r for r in records if isinstance(r, NodeSeen)]
    edges = [r for r in records if isinstance(r, EdgeSeen)]
    dials = [r for r in records if isinstance(r, DialRecord)]
    finished = [r for r in records if isinstance(r, CrawlFinished)]
    unknown = [r for r in records if not isinstance(r, (NodeSeen, EdgeSeen, DialRecord, CrawlFinished))]
    if unknown:
        raise InvalidRecord(f"the writer cannot store {type(unknown[0]).__name__} records")
    dialect = session.get_bind().dialect.name
    written = 0
    if nodes:
        node_rows = _node_rows(nodes)
        session.execute(node_upsert(dialect), node_rows)
        sighting_rows = _sighting_rows(nodes)
        session.execute(sighting_upsert(dialect), sighting_rows)
        written += len(node_rows) + len(sighting_rows)
        history_rows = _enr_history_rows(nodes)
        if history_rows:
            session.execute(enr_history_insert(dialect), history_rows)
            written += len(history_rows)
    if edges:
        edge_rows = _edge_rows(edges)
        session.execute(edge_upsert(dialect), edge_rows)
        written += len(edge_rows)
    if dials:
        session.execute(insert(DialAttempt), [_dial_row(d) for d in dials])
        written += len(dials)
    for record in finished:
        finish_crawl(session, record)
        written += 1
    return written


# ---------------------------------------------------------------- reads


def load_known_nodes(session: Session, *, limit: int | None = None) -> list[KnownNode]:
    """Every stored node, most recently seen first (seeds for --from-db)."""
    query = select(Node).order_by(Node.last_seen.desc(), Node.node_id)
    if limit is not None:
        query = query.limit(limit)
    return [
        KnownNode(
            node_id=node.node_id,
            pubkey=node.pubkey,
            ip=node.ip,
            udp_port=node.udp_port,
            tcp_port=node.tcp_port,
            enr=node.enr,
            enr_seq=node.enr_seq,
            last_seen=node.last_seen,
            protocols=tuple(p for p in node.protocols.split(",") if p),
            layer=node.layer,
        )
        for node in session.scalars(query)
    ]


def _histogram(pairs: Iterable[tuple[Any, int]]) -> tuple[tuple[Any, int], ...]:
    counts: Counter[Any] = Counter()
    for key, count in pairs:
        counts[key] += count
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def crawl_summary(session: Session, crawl_id: int) -> CrawlSummary:
    """One crawl's counts and shares, from the same functions as ``ethcrawl query`` (given this crawl's id)."""
    crawl = session.get(Crawl, crawl_id)
    if crawl is None:
        raise InvalidRecord(f"no crawl with id {crawl_id}")
    counts = totals(session, crawl_id)
    stored: dict[str, Any] = json.loads(crawl.stats) if crawl.stats else {}  # none for crawls that stored no stats
    protocols = _histogram(
        (protocol_set or "none", count)
        for protocol_set, count in session.execute(
            select(Sighting.protocols, func.count()).where(Sighting.crawl_id == crawl_id).group_by(Sighting.protocols)
        )
    )
    layers = _histogram(
        (layer or "unknown", count)
        for layer, count in session.execute(
            select(Node.layer, func.count())
            .join(Sighting, Sighting.node_id == Node.node_id)
            .where(Sighting.crawl_id == crawl_id)
            .group_by(Node.layer)
        )
    )
    return CrawlSummary(
        crawl_id=crawl_id,
        started_at=crawl.started_at,
        ended_at=crawl.ended_at,
        nodes=counts.nodes,
        responded=counts.answered,
        with_enr=counts.with_enr,
        edges=counts.edges,
        dials=counts.dials,
        dials_ok=counts.dials_ok,
        dials_failed=counts.dials_failed,
        outcomes=tuple(dial_outcomes(session, crawl_id=crawl_id)),
        clients=tuple(hello_counts(session, "clients", scope=CrawlScope(crawl_id=crawl_id))),
        networks=tuple(network_counts(session, scope=CrawlScope(crawl_id=crawl_id))),
        protocols=protocols,
        layers=layers,
        dropped=_dropped(stored),
        silent_dials=int(stored.get(SILENT_DIALS, 0)),
        countries=tuple(country_counts(session, scope=CrawlScope(crawl_id=crawl_id))),
        asns=tuple(asn_counts(session, scope=CrawlScope(crawl_id=crawl_id))),
    )


def _dropped(counts: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The sybil bound's per-rule drops from a crawl's stats."""
    return tuple((key.removeprefix(DROPPED_PREFIX), int(n)) for key, n in counts.items() if key.startswith(DROPPED_PREFIX))
