"""Rows as ``ethcrawl query ... --format json`` prints them: field names and JSON types, defined once.

The CLI prints these rows (table, CSV, JSON) and the web report and dashboard show and serve the same ones, so a
field means the same thing wherever a person reads it.  Every count comes from ``db.queries``; this module only
names and shapes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from ipaddress import ip_address
from typing import Any

from sqlalchemy.orm import Session

from ethcrawl.wire.enode import Node, format_enode

from .errors import NotFound
from .history import churn, share_history, uptime_distribution, uptimes
from .node_story import NodeStory
from .queries import (
    NodeReport, asn_counts, country_counts, crawl_history, edge_list, fork_readiness, hello_counts, layer_counts, network_counts, network_name,
    outcome_counts, responders,
)  # fmt: skip
from .readiness import ForkTarget, named_forks, next_forks, not_ready, readiness
from .scope import EVERY_CRAWL, CrawlScope, share
from .topology import analyse

__all__ = [
    "Session", "CSV_COLUMNS", "LIST_DELIMITER", "Value", "Row", "Table", "iso", "share", "as_text", "node_row", "HELLO_LABELS", "hello_table",
    "outcome_table", "country_table", "asn_table", "network_table", "fork_table", "crawl_table", "layer_table", "LAYER_ORDER",
    "topology_summary", "TOPOLOGY_COLUMNS", "topology_table", "HISTORY_COLUMNS", "history_table", "CHURN_COLUMNS",
    "CHURN_COUNT_COLUMNS", "ChurnTables", "churn_tables", "UPTIME_COLUMNS", "uptime_table", "DISTRIBUTION_COLUMNS",
    "uptime_distribution_table", "READINESS_COLUMNS", "NOT_READY_COLUMNS", "fork_targets", "readiness_table",
    "not_ready_table", "story_object", "change_text", "StoryPart", "story_parts",
]

# Session is re-exported so that code outside db/ can name the type it passes in without importing SQLAlchemy.

# What a row holds: JSON's types.  Lists are of text (protocols, capabilities).
Value = str | int | float | bool | None | list[str]
Row = Mapping[str, Value]
# How CSV and tables join a list ("v4,v5", "eth/68,snap/1"): the delimiter geth's own tools use for these.
LIST_DELIMITER = ","

# Column order is part of the interface: add new columns at the end, never rename or reorder.
CSV_COLUMNS = (
    "node_id", "enode", "ip", "udp_port", "tcp_port", "enr_seq", "client_id", "client_name", "client_version",
    "os", "arch", "runtime", "capabilities", "network_id", "network", "fork_hash", "fork_next", "fork_name",
    "synced", "first_seen", "last_seen", "last_outcome",
    # Schema v2 (discovery v5): protocols that ever answered, and what the node's ENR says.
    "layer", "protocols", "execution_network", "eth2_fork_digest", "consensus_network", "consensus_fork",
    "attnets_count", "syncnets_count",
    # Schema v4: where the node's latest address is (ethcrawl enrich, crawl --geoip/--asn).
    "country", "asn", "as_org",
)  # fmt: skip


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def as_text(value: Value) -> str:
    """A value as CSV, tables and web pages print it: plain text, never Python's repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return LIST_DELIMITER.join(value)
    return str(value)


def node_row(report: NodeReport) -> Row:
    """One node as ``export csv`` and ``query nodes`` give it (CSV_COLUMNS); network and fork from the Status."""
    network, fork_name = network_name(report.network_id, report.fork_hash, report.fork_next)
    node = Node(
        pubkey=report.pubkey,
        ip=None if report.ip is None else ip_address(report.ip),
        udp=report.udp_port,
        tcp=report.tcp_port,
    )
    return {
        "node_id": report.node_id.hex(),
        "enode": format_enode(node) if report.ip is not None and report.tcp_port is not None else None,
        "ip": report.ip,
        "udp_port": report.udp_port,
        "tcp_port": report.tcp_port,
        "enr_seq": report.enr_seq,
        "client_id": report.client_id,
        "client_name": report.client_name,
        "client_version": report.client_version,
        "os": report.os,
        "arch": report.arch,
        "runtime": report.runtime,
        "capabilities": None if report.capabilities is None else report.capabilities.split(","),
        "network_id": report.network_id,
        "network": network,
        "fork_hash": report.fork_hash.hex() if report.fork_hash is not None else None,
        "fork_next": report.fork_next,
        "fork_name": fork_name,
        "synced": report.synced,
        "first_seen": iso(report.first_seen),
        "last_seen": iso(report.last_seen),
        "last_outcome": report.last_outcome,
        "layer": report.layer,
        "protocols": [p for p in report.protocols.split(",") if p],
        "execution_network": report.execution_network,
        "eth2_fork_digest": report.eth2_fork_digest.hex() if report.eth2_fork_digest is not None else None,
        "consensus_network": report.consensus_network,
        "consensus_fork": report.consensus_fork,
        "attnets_count": report.attnets_count,
        "syncnets_count": report.syncnets_count,
        "country": report.country,
        "asn": report.asn,
        "as_org": report.as_org,
    }


@dataclass(frozen=True, slots=True)
class Table:
    """A query's answer: its declared columns (printed even when there are no rows) and its rows."""

    columns: tuple[str, ...]
    rows: list[Row]


# The Hello dimensions of ``query clients|versions|os|arch|runtimes`` -> the column naming the value.
HELLO_LABELS = {"clients": "client", "versions": "version", "os": "os", "arch": "arch", "runtimes": "runtime"}


def hello_table(
    session: Session, dimension: str, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None,
) -> Table:
    """``query clients|versions|os|arch|runtimes``: nodes per value, 'refused' of those, 'share' percent of the counted."""
    label = HELLO_LABELS[dimension]
    by_client = dimension == "versions"  # a version means something only with its client
    counts = hello_counts(session, dimension, scope=scope, client=client, by_client=by_client)
    total = sum(c.nodes for c in counts)
    rows: list[Row] = [
        {**({"client": c.client} if by_client else {}), label: c.value, "nodes": c.nodes, "refused": c.refused,
         "share": share(c.nodes, total)}
        for c in counts
    ]
    return Table((("client",) if by_client else ()) + (label, "nodes", "refused", "share"), rows)


def outcome_table(
    session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None
) -> Table:
    """``query outcomes``: nodes by the outcome of their latest attempt."""
    counts = outcome_counts(session, scope=scope, client=client)
    total = sum(n for _, n in counts)
    return Table(("outcome", "nodes", "share"), [{"outcome": o, "nodes": n, "share": share(n, total)} for o, n in counts])


def country_table(session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None) -> Table:
    """``query countries``: nodes by the country of their address (an empty country: not placed or not enriched)."""
    counts = country_counts(session, scope=scope, client=client)
    total = sum(n for _, n in counts)
    return Table(("country", "nodes", "share"), [{"country": c, "nodes": n, "share": share(n, total)} for c, n in counts])


def asn_table(session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None) -> Table:
    """``query asns``: nodes by the autonomous system announcing their address."""
    counts = asn_counts(session, scope=scope, client=client)
    total = sum(n for _, _, n in counts)
    rows: list[Row] = [{"asn": a, "as_org": o, "nodes": n, "share": share(n, total)} for a, o, n in counts]
    return Table(("asn", "as_org", "nodes", "share"), rows)


def network_table(
    session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None
) -> Table:
    """``query networks``: nodes by network and current fork."""
    counts = network_counts(session, scope=scope, client=client)
    total = sum(c.nodes for c in counts)
    rows: list[Row] = [{"network": c.network, "fork": c.fork, "nodes": c.nodes, "share": share(c.nodes, total)} for c in counts]
    return Table(("network", "fork", "nodes", "share"), rows)


def fork_table(
    session: Session, *, scope: CrawlScope = EVERY_CRAWL, client: str | None = None
) -> Table:
    """``query forks``: readiness for the next fork per network; 'share' of the network's nodes."""
    counts = fork_readiness(session, scope=scope, client=client)
    per_network: dict[str, int] = {}
    for network, _, n in counts:
        per_network[network] = per_network.get(network, 0) + n
    rows: list[Row] = [
        {"network": net, "readiness": ready, "nodes": n, "share": share(n, per_network[net])} for net, ready, n in counts
    ]
    return Table(("network", "readiness", "nodes", "share"), rows)


def crawl_table(session: Session) -> Table:
    """``query crawls``: every crawl, newest first; 'ended' and 'duration_s' null while running (or killed)."""
    rows: list[Row] = [
        {
            "crawl": c.id,
            "started": iso(c.started_at),
            "ended": iso(c.ended_at) if c.ended_at else None,
            "duration_s": round((c.ended_at - c.started_at).total_seconds(), 1) if c.ended_at else None,
            "nodes": c.totals.nodes,
            "answered": c.totals.answered,
            "edges": c.totals.edges,
            "dials": c.totals.dials,
            "dials_ok": c.totals.dials_ok,
            "dials_failed": c.totals.dials_failed,
        }
        for c in crawl_history(session)
    ]
    columns = ("crawl", "started", "ended", "duration_s", "nodes", "answered", "edges", "dials", "dials_ok", "dials_failed")
    return Table(columns, rows)


# Order of the layers in ``query layers``; None is a node without a readable ENR.
LAYER_ORDER = ("execution", "consensus", "other", None)


def layer_table(session: Session, scope: CrawlScope = EVERY_CRAWL) -> Table:
    """``query layers``: per layer an "all" row (share of every node), then its nodes by discovery protocols,
    consensus nodes by network/fork, execution nodes by network (shares within the layer)."""
    counts = layer_counts(session, scope)
    total = sum(n for _, _, n in counts.by_protocols)
    rows: list[Row] = []
    for layer in LAYER_ORDER:
        label = layer or "unknown"
        split = [(p, n) for lay, p, n in counts.by_protocols if lay == layer]
        in_layer = sum(n for _, n in split)
        if not in_layer:
            continue
        rows.append({"layer": label, "by": "all", "value": None, "nodes": in_layer, "share": share(in_layer, total)})
        rows += [{"layer": label, "by": "protocols", "value": p or "none", "nodes": n, "share": share(n, in_layer)} for p, n in split]
        if layer == "consensus":
            for network, fork, digest, n in counts.consensus:
                value = f"{network}/{fork}" if network else f"unknown ({digest.hex() if digest else 'unreadable eth2'})"
                rows.append({"layer": label, "by": "fork", "value": value, "nodes": n, "share": share(n, in_layer)})
        if layer == "execution":
            for network, n in counts.execution:
                rows.append({"layer": label, "by": "network", "value": network or "unknown", "nodes": n, "share": share(n, in_layer)})
    return Table(("layer", "by", "value", "nodes", "share"), rows)


# ``query topology`` in table and csv: one row per scalar measure (degree empty), then one per degree of each
# distribution (measure in_degree or out_degree, value = nodes with that degree).
TOPOLOGY_COLUMNS = ("measure", "degree", "value")
_DISTRIBUTIONS = ("in_degree", "out_degree")


def topology_summary(session: Session, crawl_id: int | None = None, protocol: str | None = None) -> dict[str, Any] | None:
    """``query topology --format json``: one crawl's graph (default the latest; None if there is no such crawl),
    the distributions as lists of {"degree", "nodes"}."""
    crawl_id, edges = edge_list(session, crawl_id, protocol)
    if crawl_id is None:
        return None
    topo = analyse(edges, responders(session, crawl_id, protocol))
    return {
        "crawl": crawl_id,
        "discovery": [protocol] if protocol else ["v4", "v5"],
        "nodes": topo.nodes,
        "edges": topo.edges,
        "responders": topo.responders,
        "components": topo.components,
        "largest_component": topo.largest_component,
        "answered_but_returned_by_nobody": topo.unreferenced_responders,
        "mean_out_degree_of_responders": topo.mean_out_degree_of_responders,
        "in_degree": [{"degree": d, "nodes": n} for d, n in topo.in_degree],
        "out_degree": [{"degree": d, "nodes": n} for d, n in topo.out_degree],
    }


def topology_table(summary: Mapping[str, Any]) -> Table:
    """A topology summary as rows: its scalar measures, then one row per degree of each distribution."""
    rows: list[Row] = [{"measure": k, "degree": None, "value": v} for k, v in summary.items() if k not in _DISTRIBUTIONS]
    for name in _DISTRIBUTIONS:
        rows += [{"measure": name, "degree": d["degree"], "value": d["nodes"]} for d in summary[name]]
    return Table(TOPOLOGY_COLUMNS, rows)


# ---------------------------------------------------------------- over time (db.history, db.readiness, db.node_story)

HISTORY_COLUMNS = ("period", "value", "nodes", "share")
CHURN_COLUMNS = ("node_id", "change", "client_name", "client_version")
CHURN_COUNT_COLUMNS = ("change", "nodes")
UPTIME_COLUMNS = ("node_id", "checks", "answered", "uptime", "first_seen", "last_seen")
DISTRIBUTION_COLUMNS = ("uptime", "nodes", "share")
READINESS_COLUMNS = ("network", "fork", "client", "version", "nodes", "ready", "share_ready")
NOT_READY_COLUMNS = ("node_id", "network", "fork", "client", "version", "fork_hash", "fork_next")


def _time(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def history_table(session: Session, kind: str, every: str, scope: CrawlScope = EVERY_CRAWL) -> Table:
    """``query history KIND --every crawl|day|week``: one row per period and value, oldest period first."""
    rows: list[Row] = [
        {"period": r.period, "value": r.value, "nodes": r.nodes, "share": r.share} for r in share_history(session, kind, every, scope)
    ]
    return Table(HISTORY_COLUMNS, rows)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChurnTables:
    """``query churn``: which two crawls were compared, the changed nodes, and the nodes per change (zeros too)."""

    crawl: int
    against: int
    changes: Table  # CHURN_COLUMNS: what --format csv|json print
    counts: Table  # CHURN_COUNT_COLUMNS: the table format's last lines


def churn_tables(session: Session, crawl_id: int | None = None, against: int | None = None) -> ChurnTables:
    """``query churn [--crawl N] [--against M]`` (db.history.churn's defaults; NotFound as it raises)."""
    found = churn(session, crawl_id, against)
    rows: list[Row] = [
        {"node_id": r.node_id.hex(), "change": r.change, "client_name": r.client_name, "client_version": r.client_version}
        for r in found.rows
    ]
    counts: list[Row] = [{"change": c, "nodes": n} for c, n in found.counts()]
    return ChurnTables(crawl=found.crawl_id, against=found.against, changes=Table(CHURN_COLUMNS, rows),
                       counts=Table(CHURN_COUNT_COLUMNS, counts))


def uptime_table(session: Session, scope: CrawlScope = EVERY_CRAWL) -> Table:
    """``query uptime``: per node checks, answered, uptime (0-1) and when it was met present; highest uptime first."""
    rows: list[Row] = [
        {
            "node_id": u.node_id.hex(), "checks": u.checks, "answered": u.answered, "uptime": u.uptime,
            "first_seen": _time(u.first_seen), "last_seen": _time(u.last_seen),
        }
        for u in uptimes(session, scope)
    ]  # fmt: skip
    return Table(UPTIME_COLUMNS, rows)


def uptime_distribution_table(session: Session, scope: CrawlScope = EVERY_CRAWL) -> Table:
    """``query uptime --distribution``: nodes per uptime bucket (tenths), lowest first, empty buckets too."""
    buckets = uptime_distribution(uptimes(session, scope))
    total = sum(n for _, n in buckets)
    return Table(DISTRIBUTION_COLUMNS, [{"uptime": b, "nodes": n, "share": share(n, total)} for b, n in buckets])


def fork_targets(fork: str | None, now: datetime) -> list[ForkTarget]:
    """The forks ``query readiness`` asks about: ``fork`` (a db.node_filter.parse_fork name) of every network
    that has it, else each network's next fork as of ``now``; NotFound when no network schedules one."""
    targets = named_forks(fork) if fork is not None else next_forks(now)
    if not targets:
        raise NotFound(f"no network has a fork scheduled after {iso(now)} in the fork tables; ask about one with --fork NAME")
    return targets


def readiness_table(session: Session, targets: list[ForkTarget], scope: CrawlScope = EVERY_CRAWL) -> Table:
    """``query readiness``: nodes and ready nodes per network, fork, client and version."""
    rows: list[Row] = [
        {
            "network": r.network, "fork": r.fork, "client": r.client, "version": r.version, "nodes": r.nodes,
            "ready": r.ready, "share_ready": r.share_ready,
        }
        for r in readiness(session, targets, scope)
    ]  # fmt: skip
    return Table(READINESS_COLUMNS, rows)


def not_ready_table(session: Session, targets: list[ForkTarget], scope: CrawlScope = EVERY_CRAWL) -> Table:
    """``query readiness --not-ready``: the nodes that are not ready, by network, then node id."""
    rows: list[Row] = [
        {
            "node_id": n.node_id.hex(), "network": n.network, "fork": n.fork, "client": n.client, "version": n.version,
            "fork_hash": n.fork_hash.hex(), "fork_next": n.fork_next,
        }
        for n in not_ready(session, targets, scope)
    ]  # fmt: skip
    return Table(NOT_READY_COLUMNS, rows)


def story_object(story: NodeStory) -> dict[str, Any]:
    """``query node ID --format json``: the story as one JSON object (times ISO 8601 UTC, bytes hex, absent null)."""
    return {
        "node_id": story.node_id.hex(),
        "stored": story.stored,
        "ip": story.ip,
        "first_seen": _time(story.first_seen),
        "last_seen": _time(story.last_seen),
        "sightings": [
            {
                "crawl": s.crawl_id, "kind": s.kind, "first_seen": iso(s.first_seen), "source": s.source,
                "answered": s.answered, "protocols": [p for p in s.protocols.split(",") if p], "ip": s.ip,
                "udp_port": s.udp_port, "tcp_port": s.tcp_port, "enr_seq": s.enr_seq,
            }
            for s in story.sightings
        ],
        "enr_versions": [
            {"seq": v.seq, "first_seen": iso(v.first_seen), "crawl": v.crawl_id, "changes": v.changes}
            for v in story.enr_versions
        ],
        "clients": [
            {"crawl": c.crawl_id, "at": iso(c.at), "client_id": c.client_id, "client_name": c.client_name,
             "client_version": c.client_version}
            for c in story.clients
        ],
        "dials": [
            {
                "crawl": d.crawl_id, "at": iso(d.at), "direction": d.direction, "outcome": d.outcome, "ip": d.ip,
                "tcp_port": d.tcp_port, "client_id": d.client_id, "network_id": d.network_id,
                "fork_hash": None if d.fork_hash is None else d.fork_hash.hex(), "fork_next": d.fork_next, "error": d.error,
            }
            for d in story.dials
        ],
        "returned_by": [{"crawl": r.crawl_id, "nodes": [n.hex() for n in r.nodes]} for r in story.returned_by],
    }  # fmt: skip


def change_text(changes: Mapping[str, list[Any]]) -> str:
    """An ENR version's changes as one line: ``key: old -> new; ...`` (values as JSON)."""
    return "; ".join(f"{key}: {json.dumps(old)} -> {json.dumps(new)}" for key, (old, new) in changes.items())


NODE_ID_ABBREVIATED = 16  # hex digits of a returner's id in the story's table (as query nodes abbreviates ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryPart:
    key: str  # the story object's field the part shows
    title: str
    table: Table


def story_parts(data: Mapping[str, Any]) -> list[StoryPart]:
    """A story object (``story_object``) as the tables ``query node ID`` prints, in order."""
    parts: list[tuple[str, str, tuple[str, ...], list[Row]]] = [
        ("sightings", "sightings", ("crawl", "kind", "first_seen", "answered", "source", "ip", "udp_port", "tcp_port", "enr_seq"),
         data["sightings"]),
        ("enr_versions", "ENR versions", ("seq", "first_seen", "crawl", "changed"),
         [{**v, "changed": change_text(v["changes"]) or "(first)"} for v in data["enr_versions"]]),
        ("clients", "client versions", ("crawl", "at", "client_name", "client_version", "client_id"), data["clients"]),
        ("dials", "dials", ("crawl", "at", "direction", "outcome", "ip", "tcp_port", "client_id"), data["dials"]),
        ("returned_by", "returned by", ("crawl", "nodes"),
         [{"crawl": r["crawl"], "nodes": f"{len(r['nodes'])}: " + " ".join(n[:NODE_ID_ABBREVIATED] for n in r["nodes"])}
          for r in data["returned_by"]]),
    ]  # fmt: skip
    return [StoryPart(key=key, title=title, table=Table(columns, rows)) for key, title, columns, rows in parts]
