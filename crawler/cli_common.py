"""What the ``query``, ``export`` and ``import`` commands share: the --db and --format options, opening the
database, writing output, and the per-node row of ``export csv`` and ``query nodes``."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from ipaddress import ip_address
from typing import IO, Any

import click

from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.errors import DatabaseError
from ethcrawl.db.queries import NodeReport
from ethcrawl.wire.chains import chain_by_network_id
from ethcrawl.wire.enode import Node, format_enode
from ethcrawl.wire.forkid import ForkId, classify

__all__ = [
    "DEFAULT_DB", "CSV_COLUMNS", "db_option", "format_option", "database", "output", "iso", "csv_row", "emit_rows",
]

DEFAULT_DB = "ethcrawl.db"

# Column order is part of the interface: add new columns at the end, never rename or reorder.
CSV_COLUMNS = (
    "node_id", "enode", "ip", "udp_port", "tcp_port", "enr_seq", "client_id", "client_name", "client_version",
    "os", "arch", "runtime", "capabilities", "network_id", "network", "fork_hash", "fork_next", "fork_name",
    "synced", "first_seen", "last_seen", "last_outcome",
    # Schema v2 (discovery v5): protocols that ever answered, and what the node's ENR says.
    "layer", "protocols", "execution_network", "eth2_fork_digest", "consensus_network", "consensus_fork",
    "attnets_count", "syncnets_count",
)  # fmt: skip

db_option = click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, help="SQLite file path or SQLAlchemy URL.")


@contextmanager
def database(url: str, *, create: bool = False) -> Iterator[Database]:
    """The database, or one clear line and exit 1 (never a traceback)."""
    try:
        db = open_database(url, create=create)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield db
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()


@contextmanager
def output(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        return
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            yield handle
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def csv_row(report: NodeReport) -> dict[str, Any]:
    """One CSV row; network and fork names derived from the fork id (EIP-2124)."""
    network = fork_name = None
    if report.fork_hash is not None and report.fork_next is not None:
        found = classify(ForkId(hash=report.fork_hash, next=report.fork_next))
        network, fork_name = found.network, found.fork
    if network is None and report.network_id is not None:
        chain = chain_by_network_id(report.network_id)
        network = chain.name if chain is not None else None
    node = Node(
        pubkey=report.pubkey,
        ip=None if report.ip is None else ip_address(report.ip),
        udp=report.udp_port,
        tcp=report.tcp_port,
    )
    return {
        "node_id": report.node_id.hex(),
        "enode": format_enode(node) if report.ip is not None and report.tcp_port is not None else "",
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
        "capabilities": report.capabilities,
        "network_id": report.network_id,
        "network": network,
        "fork_hash": report.fork_hash.hex() if report.fork_hash is not None else None,
        "fork_next": report.fork_next,
        "fork_name": fork_name,
        "synced": None if report.synced is None else str(report.synced).lower(),
        "first_seen": iso(report.first_seen),
        "last_seen": iso(report.last_seen),
        "last_outcome": report.last_outcome,
        "layer": report.layer,
        "protocols": report.protocols,
        "execution_network": report.execution_network,
        "eth2_fork_digest": report.eth2_fork_digest.hex() if report.eth2_fork_digest is not None else None,
        "consensus_network": report.consensus_network,
        "consensus_fork": report.consensus_fork,
        "attnets_count": report.attnets_count,
        "syncnets_count": report.syncnets_count,
    }


def emit_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    """Rows as an aligned table, CSV with a header, or one JSON object per line."""
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return
    if not rows:
        click.echo("(no rows)")
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


format_option = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)

