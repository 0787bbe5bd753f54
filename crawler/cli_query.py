"""``ethcrawl query``: answers from the node database, as a table, CSV or JSON.

Every query declares its columns and prints through ``cli_common.emit_rows``; every count comes from
``db.queries``, the one definition of each (README, "What the numbers mean").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from ipaddress import ip_address, ip_network
from typing import Any, TypeVar

import click

from ethcrawl.db.queries import (
    NodeReport, asn_counts, country_counts, crawl_history, edge_list, fork_readiness, hello_counts, layer_counts,
    network_counts, node_reports, outcome_counts, responders,
)  # fmt: skip
from ethcrawl.db.records import MAX_ASN
from ethcrawl.db.scope import scope_of
from ethcrawl.db.topology import Topology, analyse
from ethcrawl.wire.chains import CHAINS
from ethcrawl.wire.forkid import fork_hashes

from .cli_common import (
    CSV_COLUMNS, Row, database, db_option, emit_rows, format_option, iso, node_row, scope_options, share,
)  # fmt: skip

__all__ = ["query_group", "NODE_TABLE_COLUMNS", "TOPOLOGY_COLUMNS"]

T = TypeVar("T")

# ``query nodes --format table``: the columns a person reads; csv and json carry every CSV column.
NODE_TABLE_COLUMNS = (
    "node", "ip", "tcp_port", "client_name", "client_version", "network", "fork_name", "last_outcome", "last_seen",
)  # fmt: skip
NODE_ID_PREFIX = 16  # hex digits of the node id in that table (8 bytes, as geth's logs abbreviate ids)
# ``query topology`` in table and csv: one row per scalar measure (degree empty), then one per degree of each
# distribution (measure in_degree or out_degree, value = nodes with that degree).
TOPOLOGY_COLUMNS = ("measure", "degree", "value")


@click.group("query")
def query_group() -> None:
    """Answers from the node database (see the README's "What the numbers mean" for each count)."""


client_option = click.option("--client", default=None, help="Only nodes whose latest Hello named this client (e.g. geth).")


def _share_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every share query takes: --db, --format, --crawl/--since/--until, --client."""
    for option in (client_option, scope_options, format_option, db_option):
        command = option(command)
    return command


def _counted(db_url: str, scoped: tuple[int | None, datetime | None, datetime | None], client: str | None,
             count: Callable[..., T], **kwargs: Any) -> T:
    """``count(session, scope=..., client=..., **kwargs)`` on the database; one line if the crawl is unknown."""
    with database(db_url) as db, db.session() as session:
        scope = scope_of(session, *scoped)
        # Client names are stored lower case (wire.clientid).
        return count(session, scope=scope, client=None if client is None else client.lower(), **kwargs)


def _hello_command(dimension: str, label: str) -> click.Command:
    by_client = dimension == "versions"  # a version means something only with its client
    columns = (("client",) if by_client else ()) + (label, "nodes", "refused", "share")

    @click.command(
        dimension,
        help=f"Nodes by {label}, from each node's latest attempt that received a Hello, whatever followed it; "
        "'refused': of those, nodes whose attempt did not end ok (a Hello, then too-many-peers, not-eth, ...). "
        "'share': percent of the nodes counted.",
    )
    @_share_options
    def command(
        db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
    ) -> None:
        counts = _counted(db_url, (crawl_id, since, until), client, partial(hello_counts, dimension=dimension), by_client=by_client)
        total = sum(c.nodes for c in counts)
        rows: list[Row] = [
            {"client": c.client, label: c.value, "nodes": c.nodes, "refused": c.refused, "share": share(c.nodes, total)}
            for c in counts
        ]
        emit_rows(columns, rows, fmt)

    return command


for _dimension, _label in (("clients", "client"), ("versions", "version"), ("os", "os"), ("runtimes", "runtime")):
    query_group.add_command(_hello_command(_dimension, _label))


@query_group.command("outcomes")
@_share_options
def query_outcomes(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Nodes by the outcome of their latest RLPx attempt ('share': percent of the nodes counted)."""
    counts = _counted(db_url, (crawl_id, since, until), client, outcome_counts)
    total = sum(n for _, n in counts)
    emit_rows(("outcome", "nodes", "share"), [{"outcome": o, "nodes": n, "share": share(n, total)} for o, n in counts], fmt)


@query_group.command("countries")
@_share_options
def query_countries(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Nodes by the country of their address (ISO 3166 code), once enriched (ethcrawl enrich, crawl --geoip).

    Every node with a known address, at its latest one; with --crawl/--since/--until, the nodes sighted in those
    crawls, each at the address of its latest sighting there.  An empty country: an address the database file did not place, or not enriched yet.
    'share': percent of the nodes counted.
    """
    counts = _counted(db_url, (crawl_id, since, until), client, country_counts)
    total = sum(n for _, n in counts)
    emit_rows(("country", "nodes", "share"), [{"country": c, "nodes": n, "share": share(n, total)} for c, n in counts], fmt)


@query_group.command("asns")
@_share_options
def query_asns(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Nodes by the autonomous system announcing their address (hosting providers: how much runs on one cloud).

    Counted as 'query countries' counts (crawl --asn, ethcrawl enrich --asn); an empty asn: an address the
    database file did not place, or not enriched yet.  'share': percent of the nodes counted.
    """
    counts = _counted(db_url, (crawl_id, since, until), client, asn_counts)
    total = sum(n for _, _, n in counts)
    rows: list[Row] = [{"asn": a, "as_org": o, "nodes": n, "share": share(n, total)} for a, o, n in counts]
    emit_rows(("asn", "as_org", "nodes", "share"), rows, fmt)


@query_group.command("networks")
@_share_options
def query_networks(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Nodes by network and current fork, from each node's latest attempt that received a Status (EIP-2124)."""
    counts = _counted(db_url, (crawl_id, since, until), client, network_counts)
    total = sum(c.nodes for c in counts)
    rows: list[Row] = [{"network": c.network, "fork": c.fork, "nodes": c.nodes, "share": share(c.nodes, total)} for c in counts]
    emit_rows(("network", "fork", "nodes", "share"), rows, fmt)


@query_group.command("forks")
@_share_options
def query_forks(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Readiness for the next scheduled fork, per network (ready, stale, unknown-next), from each node's latest Status.

    'share': percent of the network's nodes counted.
    """
    counts = _counted(db_url, (crawl_id, since, until), client, fork_readiness)
    per_network: dict[str, int] = {}
    for network, _, n in counts:
        per_network[network] = per_network.get(network, 0) + n
    rows: list[Row] = [
        {"network": net, "readiness": ready, "nodes": n, "share": share(n, per_network[net])} for net, ready, n in counts
    ]
    emit_rows(("network", "readiness", "nodes", "share"), rows, fmt)


@query_group.command("crawls")
@db_option
@format_option
def query_crawls(db_url: str, fmt: str) -> None:
    """Crawl history, newest first: times, nodes sighted and answered, edges, RLPx attempts.

    'ended' and 'duration_s' are empty (null) for a crawl still running, or one that was killed.
    """
    with database(db_url) as db, db.session() as session:
        crawls = crawl_history(session)
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
        for c in crawls
    ]
    columns = ("crawl", "started", "ended", "duration_s", "nodes", "answered", "edges", "dials", "dials_ok", "dials_failed")
    emit_rows(columns, rows, fmt)


def _topology_rows(measures: dict[str, Any], topo: Topology) -> list[Row]:
    rows: list[Row] = [{"measure": k, "degree": None, "value": v} for k, v in measures.items()]
    for name, distribution in (("in_degree", topo.in_degree), ("out_degree", topo.out_degree)):
        rows += [{"measure": name, "degree": degree, "value": nodes} for degree, nodes in distribution]
    return rows


@query_group.command("topology")
@db_option
@format_option
@click.option("--crawl", "crawl_id", type=int, default=None, help="Crawl id (default: the latest).")
@click.option(
    "--discovery", "protocol", type=click.Choice(["v4", "v5"]), default=None,
    help="One DHT only: the edges its replies reported and the nodes that answered it (default: both together).",
)
def query_topology(db_url: str, fmt: str, crawl_id: int | None, protocol: str | None) -> None:
    """Nodes, edges, degree distributions, components, nodes returned by nobody.

    JSON: one object, the distributions as lists of {"degree", "nodes"}.  Table and CSV: columns measure, degree,
    value; one row per scalar measure (degree empty), then one row per degree of in_degree and out_degree (value:
    how many nodes have that degree).
    """
    wanted = crawl_id
    with database(db_url) as db, db.session() as session:
        crawl_id, edges = edge_list(session, crawl_id, protocol)
        answered = responders(session, crawl_id, protocol) if crawl_id is not None else set()
    if crawl_id is None:
        raise click.ClickException(f"the database holds no crawl {wanted}" if wanted is not None else "the database holds no crawl yet")
    topo = analyse(edges, answered)
    measures: dict[str, Any] = {
        "crawl": crawl_id,
        "discovery": [protocol] if protocol else ["v4", "v5"],
        "nodes": topo.nodes,
        "edges": topo.edges,
        "responders": topo.responders,
        "components": topo.components,
        "largest_component": topo.largest_component,
        "answered_but_returned_by_nobody": topo.unreferenced_responders,
        "mean_out_degree_of_responders": topo.mean_out_degree_of_responders,
    }
    if fmt == "json":
        distributions = {
            name: [{"degree": d, "nodes": n} for d, n in distribution]
            for name, distribution in (("in_degree", topo.in_degree), ("out_degree", topo.out_degree))
        }
        click.echo(json.dumps({**measures, **distributions}))
    else:
        emit_rows(TOPOLOGY_COLUMNS, _topology_rows(measures, topo), fmt)


# Order of the layers in ``query layers``; None is a node without a readable ENR.
_LAYER_ORDER = ("execution", "consensus", "other", None)


@query_group.command("layers")
@db_option
@format_option
@scope_options
def query_layers(db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None) -> None:
    """Nodes by layer (from each node's stored ENR), split by discovery protocols and network.

    For each layer -- execution (ENR has an eth entry), consensus (eth2 entry),
    other (neither), unknown (no readable ENR) -- one "all" row (share of every
    node; value empty), then its nodes by the set of discovery protocols that ever
    answered them (v4, v5, v4,v5, none); consensus nodes by network/fork from their
    fork digest (unknown digests as hex), execution nodes by network from their
    fork id.  Shares (percent) below the "all" row are within the layer.
    With --crawl/--since/--until: the nodes sighted in those crawls.
    """
    with database(db_url) as db, db.session() as session:
        counts = layer_counts(session, scope_of(session, crawl_id, since, until))
    total = sum(n for _, _, n in counts.by_protocols)
    rows: list[Row] = []
    for layer in _LAYER_ORDER:
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
    emit_rows(("layer", "by", "value", "nodes", "share"), rows, fmt)


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


def _country_code(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise click.BadParameter(f"{value!r} is not a two-letter country code (ISO 3166, e.g. DE)")
    return value.upper()


def _as_number(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    digits = value[2:] if value[:2].upper() == "AS" else value
    if not (digits.isascii() and digits.isdigit() and int(digits) <= MAX_ASN):
        raise click.BadParameter(f"{value!r} is not an AS number (e.g. 3320 or AS3320)")
    return int(digits)


def _node_filter(
    client: str | None, version_prefix: str | None, network: str | None, fork: str | None, cidr: Any,
    seen_since: datetime | None, synced: bool | None, dialable: bool, layer: str | None, discovery: str | None,
    country: str | None = None, asn: int | None = None,
) -> Callable[[NodeReport, Row], bool]:
    """One predicate over a node (its report and row) for every ``query nodes`` filter given."""
    checks: list[Callable[[Row], bool]] = []
    if client is not None:
        checks.append(lambda r: r["client_name"] == client.lower())
    if version_prefix is not None:
        checks.append(lambda r: str(r["client_version"] or "").startswith(version_prefix.lstrip("v")))
    if network is not None:
        checks.append(lambda r: r["network"] == network)
    if fork is not None:
        checks.append(lambda r: str(r["fork_name"] or "").lower() == fork.lower())
    if cidr is not None:
        checks.append(lambda r: r["ip"] is not None and ip_address(str(r["ip"])) in cidr)
    if synced is not None:
        checks.append(lambda r: r["synced"] is synced)
    if dialable:
        checks.append(lambda r: r["last_outcome"] == "ok")
    if layer is not None:
        checks.append(lambda r: (r["layer"] or "unknown") == layer)
    if discovery is not None:
        checks.append(lambda r: discovery in (r["protocols"] or []))  # type: ignore[operator]
    if country is not None:
        checks.append(lambda r: r["country"] == country)
    if asn is not None:
        checks.append(lambda r: r["asn"] == asn)
    return lambda report, row: (seen_since is None or report.last_seen >= seen_since) and all(c(row) for c in checks)


@query_group.command("nodes")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["enode", "table", "csv", "json"]), default="enode", show_default=True,
    help="enode URLs; a table of the main columns (node: the first 16 hex digits of the id); or every CSV column.",
)
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
@click.option("--country", default=None, callback=_country_code, help="Only nodes whose latest address is in this country (e.g. DE; once enriched).")
@click.option("--asn", default=None, callback=_as_number, help="Only nodes whose latest address this AS announces (e.g. 3320 or AS3320; once enriched).")
@click.option("--limit", type=click.IntRange(min=1), default=None)
def query_nodes(
    db_url: str, fmt: str, client: str | None, version_prefix: str | None, network: str | None, fork: str | None,
    cidr: Any, seen_since: datetime | None, synced: bool | None, dialable: bool, layer: str | None,
    discovery: str | None, country: str | None, asn: int | None, limit: int | None,
) -> None:
    """Nodes matching every filter: enode URLs (default) or rows.

    Client fields come from each node's latest attempt that received a Hello, network and fork from its latest
    that received a Status, last_outcome from its latest attempt.
    """
    with database(db_url) as db, db.session() as session:
        reports = node_reports(session)
    keep = _node_filter(
        client, version_prefix, network, fork, cidr, seen_since, synced, dialable, layer, discovery, country, asn
    )
    rows: list[Row] = []
    for report in reports:
        row = node_row(report)
        if keep(report, row):
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    if fmt == "enode":
        for row in rows:
            if row["enode"]:
                click.echo(row["enode"])
    elif fmt == "table":
        emit_rows(NODE_TABLE_COLUMNS, [{**row, "node": str(row["node_id"])[:NODE_ID_PREFIX]} for row in rows], fmt)
    else:
        emit_rows(CSV_COLUMNS, rows, fmt)
