"""``ethcrawl query``: answers from the node database, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from datetime import datetime, timezone
from ipaddress import ip_address, ip_network
from typing import Any

import click

from ethcrawl.db.queries import (
    NodeReport, client_shares, crawl_history, edge_list, histogram, layer_counts, node_reports, responders,
)  # fmt: skip
from ethcrawl.db.topology import analyse
from ethcrawl.wire.chains import CHAINS
from ethcrawl.wire.forkid import ForkId, classify, fork_hashes

from .cli_common import csv_row, database, db_option, emit_rows, format_option, iso

__all__ = ["query_group"]

@click.group("query")
def query_group() -> None:
    """Answers from the node database."""


@query_group.command("clients")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def query_clients(db_url: str, fmt: str) -> None:
    """Share of nodes by client name (each node's latest dial that told its client)."""
    with database(db_url) as db, db.session() as session:
        rows = client_shares(session)
    total = sum(count for _, count in rows) or 1
    table: list[dict[str, Any]] = [
        {"client": name, "nodes": count, "share": round(100 * count / total, 1)} for name, count in rows
    ]
    if fmt == "json":
        for row in table:
            click.echo(json.dumps(row))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=["client", "nodes", "share"])
        writer.writeheader()
        writer.writerows(table)
    else:
        width = max([len("client"), *(len(r["client"]) for r in table)])
        click.echo(f"{'client':<{width}}  {'nodes':>6}  {'share':>6}")
        for row in table:
            click.echo(f"{row['client']:<{width}}  {row['nodes']:>6}  {row['share']:>5.1f}%")



def _histogram_command(dimension: str, label: str) -> click.Command:
    @click.command(dimension, help=f"Share of nodes by {label} (each node's latest dial that told it).")
    @db_option
    @format_option
    @click.option("--client", default=None, help="Only nodes of this client name (e.g. geth).")
    def command(db_url: str, fmt: str, client: str | None) -> None:
        with database(db_url) as db, db.session() as session:
            counts = histogram(session, dimension, client=client)
        total = sum(n for _, n in counts) or 1
        emit_rows([{label: v, "nodes": n, "share": f"{100 * n / total:.1f}%"} for v, n in counts], fmt)

    return command


for _dimension, _label in (("versions", "version"), ("os", "os"), ("runtimes", "runtime"), ("outcomes", "outcome")):
    query_group.add_command(_histogram_command(_dimension, _label))


@query_group.command("crawls")
@db_option
@format_option
def query_crawls(db_url: str, fmt: str) -> None:
    """Crawl history: duration, nodes found, edges, dial successes."""
    with database(db_url) as db, db.session() as session:
        crawls = crawl_history(session)
    rows = [
        {
            "crawl": c.id,
            "started": iso(c.started_at),
            "duration_s": f"{(c.ended_at - c.started_at).total_seconds():.1f}" if c.ended_at else "running",
            "nodes": c.nodes,
            "edges": c.edges,
            "dials_ok": c.dials_ok,
            "dials_failed": c.dials_failed,
        }
        for c in crawls
    ]
    emit_rows(rows, fmt)


@query_group.command("topology")
@db_option
@format_option
@click.option("--crawl", "crawl_id", type=int, default=None, help="Crawl id (default: the latest).")
@click.option(
    "--discovery", "protocol", type=click.Choice(["v4", "v5"]), default=None,
    help="One DHT only: the edges its replies reported and the nodes that answered it (default: both together).",
)
def query_topology(db_url: str, fmt: str, crawl_id: int | None, protocol: str | None) -> None:
    """Nodes, edges, degree distributions, components, nodes returned by nobody."""
    wanted = crawl_id
    with database(db_url) as db, db.session() as session:
        crawl_id, edges = edge_list(session, crawl_id, protocol)
        answered = responders(session, crawl_id, protocol) if crawl_id is not None else set()
    if crawl_id is None:
        raise click.ClickException(f"the database holds no crawl {wanted}" if wanted is not None else "the database holds no crawl yet")
    topo = analyse(edges, answered)
    summary = {
        "crawl": crawl_id,
        "discovery": protocol or "v4,v5",
        "nodes": topo.nodes,
        "edges": topo.edges,
        "responders": topo.responders,
        "components": topo.components,
        "largest_component": topo.largest_component,
        "answered_but_returned_by_nobody": topo.unreferenced_responders,
        "mean_out_degree_of_responders": topo.mean_out_degree_of_responders,
        "in_degree": dict(topo.in_degree),
        "out_degree": dict(topo.out_degree),
    }
    if fmt == "json":
        click.echo(json.dumps(summary))
    else:
        emit_rows([{"measure": k, "value": v} for k, v in summary.items()], fmt)


# Order of the layers in ``query layers``; None is a node without a readable ENR.
_LAYER_ORDER = ("execution", "consensus", "other", None)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / (whole or 1):.1f}%"


@query_group.command("layers")
@db_option
@format_option
def query_layers(db_url: str, fmt: str) -> None:
    """Nodes by layer (from each node's stored ENR), split by discovery protocols and network.

    For each layer -- execution (ENR has an eth entry), consensus (eth2 entry),
    other (neither), unknown (no readable ENR) -- one "all" row (share of every
    node), then its nodes by the set of discovery protocols that ever answered
    them (v4, v5, v4,v5, none); consensus nodes by network/fork from their fork
    digest (unknown digests as hex), execution nodes by network from their fork
    id.  Shares below the "all" row are within the layer.
    """
    with database(db_url) as db, db.session() as session:
        counts = layer_counts(session)
    total = sum(n for _, _, n in counts.by_protocols)
    rows: list[dict[str, Any]] = []
    for layer in _LAYER_ORDER:
        label = layer or "unknown"
        split = [(p, n) for lay, p, n in counts.by_protocols if lay == layer]
        in_layer = sum(n for _, n in split)
        if not in_layer:
            continue
        rows.append({"layer": label, "by": "all", "value": "", "nodes": in_layer, "share": _share(in_layer, total)})
        rows += [{"layer": label, "by": "protocols", "value": p or "none", "nodes": n, "share": _share(n, in_layer)} for p, n in split]
        if layer == "consensus":
            for network, fork, digest, n in counts.consensus:
                value = f"{network}/{fork}" if network else f"unknown ({digest.hex() if digest else 'unreadable eth2'})"
                rows.append({"layer": label, "by": "fork", "value": value, "nodes": n, "share": _share(n, in_layer)})
        if layer == "execution":
            for network, n in counts.execution:
                rows.append({"layer": label, "by": "network", "value": network or "unknown", "nodes": n, "share": _share(n, in_layer)})
    emit_rows(rows, fmt)


def _classified(reports: list[NodeReport]) -> list[tuple[NodeReport, dict[str, Any]]]:
    return [(r, csv_row(r)) for r in reports]


@query_group.command("networks")
@db_option
@format_option
def query_networks(db_url: str, fmt: str) -> None:
    """Nodes by network and current fork (from each node's latest Status fork id, EIP-2124)."""
    with database(db_url) as db, db.session() as session:
        reports = node_reports(session)
    counts: Counter[tuple[str, str]] = Counter()
    for report, row in _classified(reports):
        if report.network_id is None:
            continue
        network = row["network"] or f"unknown ({report.network_id})"
        counts[(network, row["fork_name"] or "unknown fork")] += 1
    total = sum(counts.values()) or 1
    rows = [
        {"network": net, "fork": fork, "nodes": n, "share": f"{100 * n / total:.1f}%"}
        for (net, fork), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    emit_rows(rows, fmt)


@query_group.command("forks")
@db_option
@format_option
def query_forks(db_url: str, fmt: str) -> None:
    """Readiness for the next scheduled fork, per network (ready, stale, unknown-next)."""
    with database(db_url) as db, db.session() as session:
        reports = node_reports(session)
    counts: Counter[tuple[str, str]] = Counter()
    for report in reports:
        if report.fork_hash is None or report.fork_next is None:
            continue
        found = classify(ForkId(hash=report.fork_hash, next=report.fork_next))
        counts[(found.network or "unknown", found.readiness.value)] += 1
    rows = [{"network": net, "readiness": r, "nodes": n} for (net, r), n in sorted(counts.items())]
    emit_rows(rows, fmt)


def _cidr(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return ip_network(value, strict=False)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP network like 10.0.0.0/8") from None


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _known_fork_names() -> dict[str, str]:
    """Every fork name of every known chain, by lower case."""
    return {epoch.name.lower(): epoch.name for chain in CHAINS.values() for epoch in fork_hashes(chain)}


def _network(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() not in CHAINS:
        raise click.BadParameter(f"{value!r} is not a known network ({', '.join(sorted(CHAINS))})")
    return value.lower()


def _fork(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    names = _known_fork_names()
    if value.lower() not in names:
        raise click.BadParameter(f"{value!r} is not a fork of any known network (e.g. {', '.join(sorted(set(names.values()))[:6])}, ...)")
    return names[value.lower()]


@query_group.command("nodes")
@db_option
@click.option("--format", "fmt", type=click.Choice(["enode", "table", "csv", "json"]), default="enode", show_default=True)
@click.option("--client", default=None, help="Client name, e.g. geth.")
@click.option("--version", "version_prefix", default=None, help="Client version prefix, e.g. 1.14.")
@click.option("--network", default=None, callback=_network, help="Network name from the fork id, e.g. mainnet.")
@click.option("--fork", default=None, callback=_fork, help="Current fork name, e.g. Prague.")
@click.option("--ip", "cidr", default=None, callback=_cidr, help="Only addresses in this CIDR.")
@click.option("--seen-since", default=None, callback=_since, help="Last seen at or after this ISO 8601 time.")
@click.option("--synced/--not-synced", default=None, help="Only nodes whose head is (not) recent.")
@click.option("--dialable", is_flag=True, help="Only nodes whose latest dial succeeded.")
@click.option(
    "--layer", type=click.Choice(["execution", "consensus", "other", "unknown"]), default=None,
    help="Only nodes whose ENR names this layer (unknown: no readable ENR).",
)
@click.option(
    "--discovery", "discovery", type=click.Choice(["v4", "v5"]), default=None,
    help="Only nodes that answered this discovery protocol.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None)
def query_nodes(
    db_url: str, fmt: str, client: str | None, version_prefix: str | None, network: str | None, fork: str | None,
    cidr: Any, seen_since: datetime | None, synced: bool | None, dialable: bool, layer: str | None,
    discovery: str | None, limit: int | None,
) -> None:
    """Nodes matching every filter: enode URLs (default) or rows."""
    with database(db_url) as db, db.session() as session:
        reports = node_reports(session)
    rows = []
    for report, row in _classified(reports):
        if client is not None and report.client_name != client.lower():
            continue
        if version_prefix is not None and not (report.client_version or "").startswith(version_prefix.lstrip("v")):
            continue
        if network is not None and row["network"] != network:
            continue
        if fork is not None and (row["fork_name"] or "").lower() != fork.lower():
            continue
        if cidr is not None and (report.ip is None or ip_address(report.ip) not in cidr):
            continue
        if seen_since is not None and report.last_seen < seen_since:
            continue
        if synced is not None and report.synced is not synced:
            continue
        if dialable and report.last_outcome != "ok":
            continue
        if layer is not None and (report.layer or "unknown") != layer:
            continue
        if discovery is not None and discovery not in report.protocols.split(","):
            continue
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if fmt == "enode":
        for row in rows:
            if row["enode"]:
                click.echo(row["enode"])
    else:
        emit_rows(rows, fmt)
