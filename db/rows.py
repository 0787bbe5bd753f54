"""Rows as ``ethcrawl query ... --format json`` prints them: field names and JSON types, defined once.

The CLI prints these rows (table, CSV, JSON) and the web report and dashboard show and serve the same ones, so a
field means the same thing wherever a person reads it.  Every count comes from ``db.queries``; this module only
names and shapes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from ipaddress import ip_address

from ethcrawl.wire.enode import Node, format_enode

from .queries import NodeReport, network_name

__all__ = ["CSV_COLUMNS", "Value", "Row", "iso", "share", "node_row"]

# What a row holds: JSON's types.  Lists are of text (protocols, capabilities).
Value = str | int | float | bool | None | list[str]
Row = Mapping[str, Value]

# Column order is part of the interface: add new columns at the end, never rename or reorder.
CSV_COLUMNS = (
    "node_id", "enode", "ip", "udp_port", "tcp_port", "enr_seq", "client_id", "client_name", "client_version",
    "os", "arch", "runtime", "capabilities", "network_id", "network", "fork_hash", "fork_next", "fork_name",
    "synced", "first_seen", "last_seen", "last_outcome",
    # Schema v2 (discovery v5): protocols that ever answered, and what the node's ENR says.
    "layer", "protocols", "execution_network", "eth2_fork_digest", "consensus_network", "consensus_fork",
    "attnets_count", "syncnets_count",
)  # fmt: skip


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def share(part: int, whole: int) -> float:
    """``part`` as a percentage of ``whole``, to one decimal (0.0 of nothing)."""
    return round(100 * part / whole, 1) if whole else 0.0


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
    }
