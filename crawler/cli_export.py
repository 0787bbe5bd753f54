"""``ethcrawl export`` and ``ethcrawl import``: the node database out to files, and node lists into it."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timedelta, timezone
from ipaddress import IPv4Network, IPv6Network

import click
from networkx import generate_graphml

from ethcrawl.db.nodesjson import NodeFilter, export_nodes_json, filter_nodes_json, import_nodes_json
from ethcrawl.db.queries import NodeReport, edge_table, node_reports
from ethcrawl.db.scope import scope_of
from ethcrawl.db.topology import build_graph
from ethcrawl.wire.chains import chain_by_name

from .cli_common import (
    CSV_COLUMNS, Duration, as_text, database, db_option, emit_rows, node_row, output, read_json,
    scope_options,
)  # fmt: skip
from .cli_query import _cidr  # the one CIDR option parser (query nodes --ip)

__all__ = [
    "export_group", "import_group", "CSV_COLUMNS", "EDGE_CSV_COLUMNS",
    "GRAPHML_NODE_ATTRIBUTES", "FILTER_NETWORKS",
]

EDGE_CSV_COLUMNS = ("from_node", "to_node", "protocols")  # same rule: append only


@click.group("export")
def export_group() -> None:
    """Write the node database out: peer CSV, go-ethereum nodes.json."""


@export_group.command("csv")
@db_option
@click.option("--out", default="-", show_default=True, help="File to write, or - for stdout.")
@scope_options
def export_csv(db_url: str, out: str, crawl_id: int | None, since: datetime | None, until: datetime | None) -> None:
    """One row per node: client fields from its latest attempt that received a Hello, chain fields from its latest
    that received a Status, its latest dial outcome (ISO 8601 UTC times; lists such as protocols joined by ",").

    The last columns come from discovery: the protocols that ever answered the
    node ("v4", "v5", "v4,v5"), and its ENR's layer (execution, consensus,
    other), execution network, consensus fork digest, network and fork, and
    attnets/syncnets subnet counts.  Columns are only ever appended.

    --crawl/--since/--until: only the nodes sighted or dialed in those crawls, with the client, chain and
    outcome fields of those crawls' attempts (address, ENR and first/last seen stay the node's latest).
    """
    with database(db_url) as db, db.session() as session:
        reports = node_reports(session, scope_of(session, crawl_id, since, until))
    with output(out) as handle:
        emit_rows(CSV_COLUMNS, [node_row(r) for r in reports], "csv", handle)


# The networks go-ethereum's `devp2p nodeset filter -eth-network` knows (cmd/devp2p/nodesetcmd.go).
FILTER_NETWORKS = ("mainnet", "sepolia", "holesky", "hoodi")


@export_group.command("nodes-json")
@db_option
@click.option("--out", default="-", show_default=True, help="File to write, or - for stdout.")
@click.option(
    "--layer", type=click.Choice(["execution", "consensus", "other"]), default=None,
    help="Only records of this layer (e.g. execution for an EL node list; default: every record).",
)
@click.option(
    "--eth-network", type=click.Choice(FILTER_NETWORKS), default=None,
    help="Only records whose eth entry's fork id is valid on this network (EIP-2124, as devp2p nodeset filter).",
)
@click.option("--min-age", type=Duration(), default=None, help="Only nodes answering for at least this long (e.g. 24h, 7d).")
@click.option("--snap", is_flag=True, help="Only records with a snap entry.")
@click.option("--ip", "ip_range", default=None, callback=_cidr, help="Only records whose IP is in this CIDR range.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Then keep the N best-scored nodes.")
@scope_options
def export_nodes(
    db_url: str, out: str, layer: str | None, eth_network: str | None, min_age: timedelta | None, snap: bool,
    ip_range: IPv4Network | IPv6Network | None, limit: int | None, crawl_id: int | None, since: datetime | None,
    until: datetime | None,
) -> None:
    """go-ethereum's devp2p nodes.json (every node with an ENR), filtered as `devp2p nodeset filter` does.

    All the filters given must hold; --limit then keeps the N nodes with the best score (ties: lowest node id).
    --crawl/--since/--until keep the nodes sighted or dialed in those crawls (each entry stays as the database
    knows the node: its latest record and its score over every crawl).
    """
    chain = None
    if eth_network is not None:
        chain = chain_by_name(eth_network)
        if chain is None:  # pragma: no cover - FILTER_NETWORKS are all in wire/data/chains.json (tested)
            raise click.ClickException(f"no fork schedule known for {eth_network}")
    criteria = NodeFilter(eth_network=chain, min_age=min_age, snap=snap, ip=ip_range, limit=limit)
    with database(db_url) as db, db.session() as session:
        scope = scope_of(session, crawl_id, since, until)
        data = filter_nodes_json(export_nodes_json(session, layer, scope), criteria)
    with output(out) as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


@click.group("import")
def import_group() -> None:
    """Merge node lists into the database."""


@import_group.command("nodes-json")
@db_option
@click.argument("path", type=click.Path(dir_okay=False))
def import_nodes(db_url: str, path: str) -> None:
    """Merge a nodes.json (e.g. a published DNS list), keeping each node's higher-seq ENR and the list's score.

    Prints how many entries were new nodes, updated known ones, or left them unchanged.  A file that cannot be
    read as a JSON object leaves the database untouched.
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a JSON object keyed by node id")
    with database(db_url, create=True) as db, db.session() as session, session.begin():
        stats = import_nodes_json(session, data, now=datetime.now(timezone.utc))
    for key, why in stats.rejected:
        click.echo(f"skipped {key[:16]}: {why}", err=True)
    click.echo(
        f"imported {stats.imported} of {stats.records} records from {path}: "
        f"{stats.new} new, {stats.updated} updated, {stats.unchanged} unchanged"
    )
    if stats.rejected:
        sys.exit(1)


# Node attributes in GraphML, named as the CSV columns, so graph tools can colour nodes without joining tables.
GRAPHML_NODE_ATTRIBUTES = (
    "client_name", "client_version", "layer", "network", "fork_name", "protocols", "ip", "first_seen", "last_seen",
)  # fmt: skip


def _graphml_attributes(report: NodeReport) -> dict[str, str]:
    """The node's known attributes as text (GraphML has no null: unknown ones are left out)."""
    row = node_row(report)
    texts = {name: as_text(row[name]) for name in GRAPHML_NODE_ATTRIBUTES}
    return {name: text for name, text in texts.items() if text}


@export_group.command("edges")
@db_option
@click.option("--crawl", "crawl_id", type=int, default=None, help="Crawl id (default: the latest).")
@click.option("--format", "fmt", type=click.Choice(["csv", "graphml"]), default="csv", show_default=True)
@click.option("--out", default="-", show_default=True, help="File to write, or - for stdout.")
def export_edges(db_url: str, crawl_id: int | None, fmt: str, out: str) -> None:
    """The crawl's "A returned B" edges, as CSV (from_node,to_node,protocols) or GraphML.

    ``protocols`` says which discovery protocol's replies reported the edge:
    v4 (NEIGHBORS), v5 (NODES) or v4,v5; GraphML carries it as an edge attribute.
    GraphML nodes carry what the database knows of each (GRAPHML_NODE_ATTRIBUTES,
    as in export csv); an attribute the database does not know is left out.
    """
    wanted = crawl_id
    with database(db_url) as db, db.session() as session:
        crawl_id, edges = edge_table(session, crawl_id)
        reports = node_reports(session) if fmt == "graphml" else []
    if crawl_id is None:
        raise click.ClickException(f"the database holds no crawl {wanted}" if wanted is not None else "the database holds no crawl yet")
    with output(out) as handle:
        if fmt == "csv":
            writer = csv.writer(handle)
            writer.writerow(EDGE_CSV_COLUMNS)
            writer.writerows((a.hex(), b.hex(), protocols) for a, b, protocols in edges)
        else:
            graph = build_graph([(a.hex(), b.hex()) for a, b, _ in edges])  # type: ignore[misc]
            for a, b, protocols in edges:
                graph.edges[a.hex(), b.hex()]["protocols"] = protocols
            for report in reports:
                if report.node_id.hex() in graph:
                    graph.nodes[report.node_id.hex()].update(_graphml_attributes(report))
            for line in generate_graphml(graph):
                handle.write(line + "\n")

