"""What the crawler tells the database: plain frozen records, no SQL.

The crawler builds these and sends them on the writer's channel (see
``writer.run_writer``); the writer turns them into rows.  Read helpers in
``store`` answer with ``KnownNode`` and ``CrawlSummary``.  Nothing here
imports SQLAlchemy, so crawler/ can use every name without knowing SQL.

Records validate their shape when built: a wrong-sized id or a naive
timestamp is a bug in our code (``InvalidRecord``), and catching it here keeps
it from failing a whole batch later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InvalidRecord

__all__ = [
    "CRAWL_KINDS",
    "SOURCES",
    "DISCOVERY_PROTOCOLS",
    "DIRECTIONS",
    "OUTCOMES",
    "CrawlStarted",
    "CrawlFinished",
    "DROPPED_PREFIX",
    "SILENT_DIALS",
    "NodeSeen",
    "EdgeSeen",
    "DialRecord",
    "Record",
    "KnownNode",
    "protocol_set",
    "HelloCount",
    "NetworkCount",
    "CrawlSummary",
    "Place",
]

NODE_ID_SIZE = 32  # bytes, keccak256 of the public key
PUBKEY_SIZE = 64  # bytes, uncompressed secp256k1 x||y
HASH_SIZE = 32  # bytes, block hashes
FORK_HASH_SIZE = 4  # bytes, EIP-2124 CRC32
MAX_PORT = 65535
COUNTRY_CODE_LETTERS = 2  # ISO 3166-1 alpha-2
MAX_ASN = 2**32 - 1  # AS numbers are 32 bits (RFC 6793)

# How we first heard of a node in a crawl.  "database" is a node loaded with --from-db;
# "neighbors" came in a discv4 NEIGHBORS reply, "nodes" in a discv5 NODES reply.
# What a crawl row records: a full walk of the DHT, or the monitor's revalidation of known nodes between walks.
CRAWL_KINDS = ("crawl", "revalidation")
SOURCES = ("bootnode", "neighbors", "inbound", "database", "nodes")
# Discovery protocols a node can answer, in the order stored sets are written ("v4,v5").
# store.py's SQL union of two such sets relies on there being exactly two.
DISCOVERY_PROTOCOLS = ("v4", "v5")
DIRECTIONS = ("outbound", "inbound")
# Dial outcomes; the same strings as crawler.dialer.Outcome values.
OUTCOMES = (
    "ok",
    "timeout",
    "refused",
    "reset",
    "too-many-peers",
    "useless-peer",
    "disconnect-other",
    "protocol-error",
    "not-eth",
)


def _check_size(name: str, value: bytes | None, size: int) -> None:
    if value is not None and len(value) != size:
        raise InvalidRecord(f"{name} must be {size} bytes, got {len(value)}")


def _check_time(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise InvalidRecord(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _check_port(name: str, value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_PORT:
        raise InvalidRecord(f"{name} {value} is not a port number")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidRecord(f"{name} {value!r} is not one of {', '.join(choices)}")


def protocol_set(protocols: Iterable[str]) -> str:
    """Discovery protocols as stored: sorted, unique, comma-joined ("" for none); InvalidRecord on an unknown one."""
    chosen = set(protocols)
    for protocol in chosen:
        _check_choice("discovery protocol", protocol, DISCOVERY_PROTOCOLS)
    return ",".join(p for p in DISCOVERY_PROTOCOLS if p in chosen)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlStarted:
    """A crawl begins; ``store.begin_crawl`` turns it into a row and returns the crawl id."""

    started_at: datetime
    # Command-line settings worth keeping with the results; stored as JSON.
    parameters: Mapping[str, object] = field(default_factory=dict)
    # Our own node id in this crawl (db.identity), so the crawl can be told apart from the nodes it met.
    local_node_id: bytes | None = None
    # CRAWL_KINDS: a walk of the DHT, or the monitor's revalidation of known nodes.
    kind: str = "crawl"

    def __post_init__(self) -> None:
        _check_time("started_at", self.started_at)
        _check_choice("kind", self.kind, CRAWL_KINDS)
        _check_size("local_node_id", self.local_node_id, NODE_ID_SIZE)


# Keys of ``CrawlFinished.stats`` that count relayed nodes the sybil bound dropped: prefix + rule.
DROPPED_PREFIX = "dropped_"
# Key of ``CrawlFinished.stats``: outbound dials of records that had not answered discovery in the crawl when their
# visit ended (dialed with the short connect timeout; part of ``dials``).  No other table tells them apart.
SILENT_DIALS = "silent_dials"


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlFinished:
    """The crawl ended (naturally, by --duration or by Ctrl-C); the writer stores the final counts."""

    crawl_id: int
    ended_at: datetime
    # The crawl's own counters that no other table holds (e.g. relayed nodes dropped by the sybil bound).
    stats: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_time("ended_at", self.ended_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSeen:
    """We heard of a node, or learned more about it (it answered; its ENR arrived).

    ``enr`` is the record exactly as received; the writer stores those bytes
    unchanged and replaces a stored ENR only by one with a higher ``enr_seq``.
    ``protocols`` names the discovery protocols that answered the node, as far
    as known when the record is made ("v4", "v5"); the store unions them, so a
    later record with fewer never takes one away.
    """

    crawl_id: int
    node_id: bytes
    pubkey: bytes
    ip: str | None
    udp: int | None
    tcp: int | None
    seen_at: datetime
    source: str
    enr: bytes | None = None
    enr_seq: int | None = None
    responded: bool = False
    protocols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        protocol_set(self.protocols)
        _check_size("node_id", self.node_id, NODE_ID_SIZE)
        _check_size("pubkey", self.pubkey, PUBKEY_SIZE)
        _check_port("udp", self.udp)
        _check_port("tcp", self.tcp)
        _check_time("seen_at", self.seen_at)
        _check_choice("source", self.source, SOURCES)
        if (self.enr is None) != (self.enr_seq is None):
            raise InvalidRecord("enr and enr_seq come together: both set or both None")
        if self.enr_seq is not None and self.enr_seq < 0:
            raise InvalidRecord(f"enr_seq {self.enr_seq} is negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeSeen:
    """In this crawl, node ``from_id`` returned ``to_id`` (discv4 NEIGHBORS or discv5 NODES, per ``protocol``)."""

    crawl_id: int
    from_id: bytes
    to_id: bytes
    seen_at: datetime
    protocol: str = "v4"

    def __post_init__(self) -> None:
        _check_choice("protocol", self.protocol, DISCOVERY_PROTOCOLS)
        _check_size("from_id", self.from_id, NODE_ID_SIZE)
        _check_size("to_id", self.to_id, NODE_ID_SIZE)
        _check_time("seen_at", self.seen_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class DialRecord:
    """One RLPx attempt (outbound dial or inbound session) and everything it learned."""

    crawl_id: int
    node_id: bytes
    attempted_at: datetime
    direction: str
    outcome: str
    ip: str | None = None
    tcp_port: int | None = None
    disconnect_reason: int | None = None
    error: str | None = None
    # Hello
    client_id: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    client_os: str | None = None
    client_arch: str | None = None
    client_runtime: str | None = None
    client_user_data: str | None = None
    capabilities: str | None = None  # "eth/68,snap/1"
    p2p_version: int | None = None
    # eth Status
    eth_version: int | None = None
    network_id: int | None = None
    genesis_hash: bytes | None = None
    fork_hash: bytes | None = None
    fork_next: int | None = None
    head_hash: bytes | None = None
    total_difficulty: int | None = None  # eth/68 and older; a big integer
    earliest_block: int | None = None  # eth/69
    latest_block: int | None = None  # eth/69
    # Head header
    head_number: int | None = None
    synced: bool | None = None

    def __post_init__(self) -> None:
        _check_size("node_id", self.node_id, NODE_ID_SIZE)
        _check_time("attempted_at", self.attempted_at)
        _check_choice("direction", self.direction, DIRECTIONS)
        _check_choice("outcome", self.outcome, OUTCOMES)
        _check_port("tcp_port", self.tcp_port)
        _check_size("genesis_hash", self.genesis_hash, HASH_SIZE)
        _check_size("head_hash", self.head_hash, HASH_SIZE)
        _check_size("fork_hash", self.fork_hash, FORK_HASH_SIZE)
        if self.total_difficulty is not None and self.total_difficulty < 0:
            raise InvalidRecord(f"total_difficulty {self.total_difficulty} is negative")


# Everything the writer accepts on its channel.
Record = CrawlFinished | NodeSeen | EdgeSeen | DialRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownNode:
    """A node from earlier crawls, to seed a new one (--from-db)."""

    node_id: bytes
    pubkey: bytes
    ip: str | None
    udp_port: int | None
    tcp_port: int | None
    enr: bytes | None
    enr_seq: int | None
    last_seen: datetime
    protocols: tuple[str, ...] = ()  # discovery protocols that ever answered it
    layer: str | None = None  # wire.classify layer of its stored ENR; None without a readable one


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloCount:
    """Nodes whose latest attempt that received a Hello named ``value`` (a client, version, os or runtime)."""

    value: str
    nodes: int
    # Of ``nodes``: those whose latest such attempt did not end ok (a Hello, then too-many-peers, not-eth, ...).
    refused: int
    # The client name the same Hello gave, when counted by (client, value) as versions are; else None.
    client: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkCount:
    """Nodes whose latest attempt that received a Status named this network and fork (EIP-2124 fork id)."""

    network: str  # "unknown (<network id>)" for a network we do not know
    fork: str  # "unknown fork" when the fork id matches none of the network's forks
    nodes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlSummary:
    """What the crawl CLI prints at the end; every count as the README's "What the numbers mean" defines it.

    Histograms are largest first.
    """

    crawl_id: int
    started_at: datetime
    ended_at: datetime | None
    nodes: int  # distinct nodes sighted in this crawl
    responded: int  # of those, answered discovery (v4 bond or v5 PONG)
    with_enr: int  # of those, sent us an ENR
    edges: int  # distinct (A, B), A returned B, A != B
    dials: int  # RLPx attempts, outbound and inbound
    dials_ok: int
    dials_failed: int
    # Attempts per outcome (each attempt has exactly one).
    outcomes: tuple[tuple[str, int], ...]
    # Nodes per client name, from each node's latest attempt in this crawl that received a Hello.
    clients: tuple[HelloCount, ...]
    # Nodes per network and fork, from each node's latest attempt in this crawl that received a Status.
    networks: tuple[NetworkCount, ...]
    # Nodes sighted in this crawl by the discovery protocols that answered them ("v4", "v5", "v4,v5", "none").
    protocols: tuple[tuple[str, int], ...] = ()
    # Nodes sighted in this crawl by the layer their stored ENR names ("unknown" without one).
    layers: tuple[tuple[str, int], ...] = ()
    # Relayed nodes the sybil bound dropped, per rule ("endpoint", "ip", "subnet", "source"), from the crawl's stats.
    dropped: tuple[tuple[str, int], ...] = ()
    # Of ``dials``: outbound dials of records that never answered discovery in this crawl, from the crawl's stats
    # (``SILENT_DIALS``; 0 for crawls that stored none).
    silent_dials: int = 0
    # Nodes sighted in this crawl by the country and the AS of their address in it (queries.country_counts and
    # asn_counts: None where no file placed it); all None when the crawl was not enriched.
    countries: tuple[tuple[str | None, int], ...] = ()
    asns: tuple[tuple[int | None, str | None, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Place:
    """Where an address is, as a MaxMind-format database says; None for what it does not say (or was not asked).

    ``country``: ISO 3166-1 alpha-2 code (upper case); ``asn``: the autonomous system announcing the address;
    ``as_org``: that AS's organisation, as the database names it.
    """

    country: str | None = None
    asn: int | None = None
    as_org: str | None = None

    def __post_init__(self) -> None:
        code = self.country
        if code is not None and not (len(code) == COUNTRY_CODE_LETTERS and code.isascii() and code.isalpha() and code.isupper()):
            raise InvalidRecord(f"country {code!r} is not an ISO 3166-1 alpha-2 code")
        if self.asn is not None and not 0 <= self.asn <= MAX_ASN:
            raise InvalidRecord(f"AS number {self.asn} is not a 32-bit number")
