"""``ethcrawl query``: answers from the node database, as a table, CSV or JSON.

Every query's columns and rows come from ``db.rows`` (the web report and dashboard show the same rows) and print
through ``cli_common.emit_rows``; every count comes from ``db.queries``, the one definition of each (README, "What
the numbers mean").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any, TypeVar

import click

from ethcrawl.db.node_filter import (
    DISCOVERY_PROTOCOLS, LAYERS, BadFilter, IPNetwork, NodeFilter, filter_nodes, parse_asn, parse_cidr, parse_country,
    parse_fork, parse_network,
)  # fmt: skip
from ethcrawl.db.rows import (
    HELLO_LABELS, TOPOLOGY_COLUMNS, Table, asn_table, country_table, crawl_table, fork_table, hello_table, layer_table, network_table,
    outcome_table, topology_summary, topology_table,
)  # fmt: skip
from ethcrawl.db.scope import scope_of

from .cli_common import CSV_COLUMNS, database, db_option, emit_rows, filter_callback, format_option, scope_options

__all__ = ["query_group", "NODE_TABLE_COLUMNS", "TOPOLOGY_COLUMNS"]

T = TypeVar("T")

# ``query nodes --format table``: the columns a person reads; csv and json carry every CSV column.
NODE_TABLE_COLUMNS = (
    "node", "ip", "tcp_port", "client_name", "client_version", "network", "fork_name", "last_outcome", "last_seen",
)  # fmt: skip
NODE_ID_PREFIX = 16  # hex digits of the node id in that table (8 bytes, as geth's logs abbreviate ids)


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
        _emit(_counted(db_url, (crawl_id, since, until), client, partial(hello_table, dimension=dimension)), fmt)

    return command


def _emit(table: Table, fmt: str) -> None:
    emit_rows(table.columns, table.rows, fmt)


for _dimension, _label in HELLO_LABELS.items():
    query_group.add_command(_hello_command(_dimension, _label))


@query_group.command("outcomes")
@_share_options
def query_outcomes(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Nodes by the outcome of their latest RLPx attempt ('share': percent of the nodes counted)."""
    _emit(_counted(db_url, (crawl_id, since, until), client, outcome_table), fmt)


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
    _emit(_counted(db_url, (crawl_id, since, until), client, country_table), fmt)


@query_group.command("asns")
@_share_options
def query_asns(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Nodes by the autonomous system announcing their address (hosting providers: how much runs on one cloud).

    Counted as 'query countries' counts (crawl --asn, ethcrawl enrich --asn); an empty asn: an address the
    database file did not place, or not enriched yet.  'share': percent of the nodes counted.
    """
    _emit(_counted(db_url, (crawl_id, since, until), client, asn_table), fmt)


@query_group.command("networks")
@_share_options
def query_networks(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Nodes by network and current fork, from each node's latest attempt that received a Status (EIP-2124)."""
    _emit(_counted(db_url, (crawl_id, since, until), client, network_table), fmt)


@query_group.command("forks")
@_share_options
def query_forks(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, client: str | None
) -> None:
    """Readiness for the next scheduled fork, per network (ready, stale, unknown-next), from each node's latest Status.

    'share': percent of the network's nodes counted.
    """
    _emit(_counted(db_url, (crawl_id, since, until), client, fork_table), fmt)


@query_group.command("crawls")
@db_option
@format_option
def query_crawls(db_url: str, fmt: str) -> None:
    """Crawl history, newest first: times, nodes sighted and answered, edges, RLPx attempts.

    'ended' and 'duration_s' are empty (null) for a crawl still running, or one that was killed.
    """
    with database(db_url) as db, db.session() as session:
        _emit(crawl_table(session), fmt)


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
    with database(db_url) as db, db.session() as session:
        summary = topology_summary(session, crawl_id, protocol)
    if summary is None:
        raise click.ClickException(f"the database holds no crawl {crawl_id}" if crawl_id is not None else "the database holds no crawl yet")
    if fmt == "json":
        click.echo(json.dumps(summary))
    else:
        _emit(topology_table(summary), fmt)


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
        _emit(layer_table(session, scope_of(session, crawl_id, since, until)), fmt)


# The CIDR option of ``query nodes --ip`` and ``export nodes-json --ip``.
_cidr = filter_callback(parse_cidr)


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@query_group.command("nodes")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["enode", "table", "csv", "json"]), default="enode", show_default=True,
    help="enode URLs; a table of the main columns (node: the first 16 hex digits of the id); or every CSV column.",
)
@click.option("--client", default=None, help="Client name, e.g. geth.")
@click.option("--version", "version_prefix", default=None, help="Client version prefix, e.g. 1.14.")
@click.option("--network", default=None, callback=filter_callback(parse_network), help="Network name from the fork id, e.g. mainnet.")
@click.option("--fork", default=None, callback=filter_callback(parse_fork), help="Current fork name, e.g. Prague.")
@click.option("--ip", "cidr", default=None, callback=_cidr, help="Only addresses in this CIDR.")
@click.option("--seen-since", default=None, callback=_since, help="Last seen at or after this ISO 8601 time.")
@click.option("--synced/--not-synced", default=None, help="Only nodes whose head is (not) recent.")
@click.option("--dialable", is_flag=True, help="Only nodes whose latest dial succeeded.")
@click.option("--outcome", default=None, help="Only nodes whose latest attempt ended so (e.g. ok, timeout, too-many-peers).")
@click.option(
    "--layer", type=click.Choice(LAYERS), default=None,
    help="Only nodes whose ENR names this layer (unknown: no readable ENR).",
)
@click.option(
    "--discovery", "discovery", type=click.Choice(DISCOVERY_PROTOCOLS), default=None,
    help="Only nodes that answered this discovery protocol.",
)
@click.option(
    "--country", default=None, callback=filter_callback(parse_country),
    help="Only nodes whose latest address is in this country (e.g. DE; once enriched).",
)
@click.option(
    "--asn", default=None, callback=filter_callback(parse_asn),
    help="Only nodes whose latest address this AS announces (e.g. 3320 or AS3320; once enriched).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None)
def query_nodes(
    db_url: str, fmt: str, client: str | None, version_prefix: str | None, network: str | None, fork: str | None,
    cidr: IPNetwork | None, seen_since: datetime | None, synced: bool | None, dialable: bool, outcome: str | None,
    layer: str | None, discovery: str | None, country: str | None, asn: int | None, limit: int | None,
) -> None:
    """Nodes matching every filter: enode URLs (default) or rows.

    Client fields come from each node's latest attempt that received a Hello, network and fork from its latest
    that received a Status, last_outcome from its latest attempt.
    """
    node_filter = NodeFilter(
        client=client, version_prefix=version_prefix, network=network, fork=fork, cidr=cidr, seen_since=seen_since,
        synced=synced, dialable=dialable, outcome=outcome, layer=layer, discovery=discovery, country=country, asn=asn,
    )
    with database(db_url) as db, db.session() as session:
        rows = filter_nodes(session, node_filter, limit=limit).rows
    if fmt == "enode":
        for row in rows:
            if row["enode"]:
                click.echo(row["enode"])
    elif fmt == "table":
        emit_rows(NODE_TABLE_COLUMNS, [{**row, "node": str(row["node_id"])[:NODE_ID_PREFIX]} for row in rows], fmt)
    else:
        emit_rows(CSV_COLUMNS, rows, fmt)
