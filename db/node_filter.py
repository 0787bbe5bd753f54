"""Which nodes to list: the filters of ``query nodes``, the dashboard's node list and ``/api/nodes``, defined once.

A ``NodeFilter`` holds every filter (None: not filtering on it); ``filter_nodes`` applies it to the node reports
and pages the result.  The filters read the same fields the node rows show (``db.rows.node_row``), so a listed
node always shows the value it was selected by.  Values typed by a person (network, fork, CIDR) are checked by the
``parse_*`` functions, which raise ``BadFilter`` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from sqlalchemy.orm import Session

from ethcrawl.wire.chains import CHAINS
from ethcrawl.wire.forkid import fork_hashes

from .errors import DatabaseError
from .queries import NodeReport, node_reports
from .records import MAX_ASN
from .rows import Row, node_row

__all__ = [
    "LAYERS", "DISCOVERY_PROTOCOLS", "IPNetwork", "BadFilter", "NodeFilter", "NodePage", "filter_nodes", "parse_network",
    "parse_fork", "parse_cidr", "parse_country", "parse_asn",
]

# A node's layer as rows show it; "unknown" is a node without a readable ENR (layer null in its row).
LAYERS = ("execution", "consensus", "other", "unknown")
DISCOVERY_PROTOCOLS = ("v4", "v5")

IPNetwork = IPv4Network | IPv6Network


class BadFilter(DatabaseError, ValueError):
    """Raised when a filter value names nothing that exists: an unknown network, fork, layer or a bad CIDR."""


def parse_network(text: str) -> str:
    """A known network's name (``CHAINS``), case-insensitive."""
    if text.lower() not in CHAINS:
        raise BadFilter(f"{text!r} is not a known network ({', '.join(sorted(CHAINS))})")
    return text.lower()


def _known_fork_names() -> dict[str, str]:
    """Every fork name of every known chain, by lower case."""
    return {epoch.name.lower(): epoch.name for chain in CHAINS.values() for epoch in fork_hashes(chain)}


def parse_fork(text: str) -> str:
    """A fork name of some known network, spelled as the chain schedule spells it (case-insensitive match)."""
    names = _known_fork_names()
    if text.lower() not in names:
        examples = ", ".join(sorted(set(names.values()))[:6])
        raise BadFilter(f"{text!r} is not a fork of any known network (e.g. {examples}, ...)")
    return names[text.lower()]


def parse_cidr(text: str) -> IPNetwork:
    """An IP network; host bits are allowed (10.1.2.3/8 is 10.0.0.0/8)."""
    try:
        return ip_network(text, strict=False)
    except ValueError:
        raise BadFilter(f"{text!r} is not an IP network like 10.0.0.0/8") from None


def parse_country(text: str) -> str:
    """A two-letter country code (ISO 3166-1 alpha-2), upper case."""
    if not (len(text) == 2 and text.isascii() and text.isalpha()):
        raise BadFilter(f"{text!r} is not a two-letter country code (ISO 3166, e.g. DE)")
    return text.upper()


def parse_asn(text: str) -> int:
    """An AS number, written 3320 or AS3320."""
    digits = text[2:] if text[:2].upper() == "AS" else text
    if not (digits.isascii() and digits.isdigit() and int(digits) <= MAX_ASN):
        raise BadFilter(f"{text!r} is not an AS number (e.g. 3320 or AS3320)")
    return int(digits)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFilter:
    """Every node filter; a node is listed when it passes all that are set (None or False: not filtering)."""

    client: str | None = None  # client name of the latest Hello (stored lower case; compared lower case)
    version_prefix: str | None = None  # "1.14" or "v1.14": the client version starts with it
    network: str | None = None  # from parse_network
    fork: str | None = None  # from parse_fork
    cidr: IPNetwork | None = None  # the node's address is in it
    seen_since: datetime | None = None  # last seen at or after (aware datetime)
    synced: bool | None = None  # the latest Status said the head is (not) recent
    dialable: bool = False  # the latest attempt ended ok
    layer: str | None = None  # one of LAYERS
    discovery: str | None = None  # one of DISCOVERY_PROTOCOLS: that protocol ever answered
    outcome: str | None = None  # the latest attempt ended so ("ok", "timeout", ...)
    country: str | None = None  # ISO 3166 code of the latest address (once enriched), from parse_country
    asn: int | None = None  # AS announcing the latest address (once enriched), from parse_asn

    def __post_init__(self) -> None:
        if self.layer is not None and self.layer not in LAYERS:
            raise BadFilter(f"{self.layer!r} is not a layer ({', '.join(LAYERS)})")
        if self.discovery is not None and self.discovery not in DISCOVERY_PROTOCOLS:
            raise BadFilter(f"{self.discovery!r} is not a discovery protocol ({', '.join(DISCOVERY_PROTOCOLS)})")

    def _checks(self) -> list[Callable[[Row], bool]]:
        checks: list[Callable[[Row], bool]] = []
        if self.client is not None:
            client = self.client.lower()
            checks.append(lambda r: r["client_name"] == client)
        if self.version_prefix is not None:
            prefix = self.version_prefix.lstrip("v")
            checks.append(lambda r: str(r["client_version"] or "").startswith(prefix))
        if self.network is not None:
            checks.append(lambda r: r["network"] == self.network)
        if self.fork is not None:
            fork = self.fork.lower()
            checks.append(lambda r: str(r["fork_name"] or "").lower() == fork)
        if self.cidr is not None:
            cidr = self.cidr
            checks.append(lambda r: r["ip"] is not None and ip_address(str(r["ip"])) in cidr)
        if self.synced is not None:
            checks.append(lambda r: r["synced"] is self.synced)
        if self.dialable:
            checks.append(lambda r: r["last_outcome"] == "ok")
        if self.outcome is not None:
            checks.append(lambda r: r["last_outcome"] == self.outcome)
        if self.layer is not None:
            checks.append(lambda r: (r["layer"] or "unknown") == self.layer)
        if self.discovery is not None:
            discovery = self.discovery
            checks.append(lambda r: discovery in (r["protocols"] or []))  # type: ignore[operator]
        if self.country is not None:
            checks.append(lambda r: r["country"] == self.country)
        if self.asn is not None:
            checks.append(lambda r: r["asn"] == self.asn)
        return checks

    def matcher(self) -> Callable[[NodeReport, Row], bool]:
        """One predicate over a node (its report and its row) for every filter set."""
        checks = self._checks()
        since = self.seen_since
        return lambda report, row: (since is None or report.last_seen >= since) and all(c(row) for c in checks)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePage:
    """One page of the matching nodes (ordered by node id) and how many match in all."""

    total: int
    rows: list[Row]


def filter_nodes(session: Session, node_filter: NodeFilter, *, limit: int | None = None, offset: int = 0) -> NodePage:
    """The nodes passing ``node_filter``, as rows, from the ``offset``-th match on, at most ``limit`` of them."""
    if limit is not None and limit < 0 or offset < 0:
        raise BadFilter(f"limit and offset must not be negative (limit {limit}, offset {offset})")
    keep = node_filter.matcher()
    matched: list[Row] = []
    for report in node_reports(session):
        row = node_row(report)
        if keep(report, row):
            matched.append(row)
    end = None if limit is None else offset + limit
    return NodePage(total=len(matched), rows=matched[offset:end])
