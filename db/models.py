"""The crawl database schema: SQLAlchemy 2.0 typed models.

Only portable types are used so the same models run on SQLite (the default)
and PostgreSQL: bytes are ``LargeBinary``, big integers that can exceed 64
bits (total difficulty) are decimal text, timestamps are UTC (``UTCDateTime``).
Bump ``engine.SCHEMA_VERSION`` and register a migration for every change here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "UTCDateTime",
    "Base",
    "SchemaVersion",
    "Crawl",
    "Node",
    "Sighting",
    "Edge",
    "DialAttempt",
    "Identity",
    "EnrHistory",
]

NODE_ID_SIZE = 32  # bytes
PUBKEY_SIZE = 64  # bytes
PRIVATE_KEY_SIZE = 32  # bytes, a secp256k1 scalar
# Where an identity came from: generated for this database on its first crawl, or given with --node-key.
IDENTITY_ORIGINS = ("generated", "node-key")
HASH_SIZE = 32  # bytes
FORK_HASH_SIZE = 4  # bytes
FORK_DIGEST_SIZE = 4  # bytes, consensus-layer fork digest
IP_TEXT_SIZE = 45  # chars, the longest IPv6 text form
COUNTRY_CODE_SIZE = 2  # chars, ISO 3166-1 alpha-2
# uint256 in decimal is 78 digits; total difficulty is stored as text so SQLite keeps it exact.
BIG_UINT_TEXT_SIZE = 78


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones: we store naive UTC there and attach UTC on the
    way out.  A naive datetime from our own code is refused, not guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column")
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # the DateTime impl parses for us
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# Column aliases shared by the models (SQLAlchemy's Annotated type map).
IntPK = Annotated[int, mapped_column(Integer, primary_key=True, autoincrement=True)]
UTCTime = Annotated[datetime, mapped_column(UTCDateTime())]
NodeId = Annotated[bytes, mapped_column(LargeBinary(NODE_ID_SIZE))]


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime(),
        bytes: LargeBinary(),
        str: Text(),
        int: BigInteger(),
    }


class SchemaVersion(Base):
    """One row: the schema version the database was last written with."""

    __tablename__ = "schema_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[UTCTime]


class Crawl(Base):
    __tablename__ = "crawls"

    id: Mapped[IntPK]
    started_at: Mapped[UTCTime]
    ended_at: Mapped[datetime | None]
    parameters: Mapped[str]  # JSON text: portable, and only ever read whole
    # Final counts, filled in from the other tables when the crawl finishes.
    node_count: Mapped[int] = mapped_column(default=0)
    edge_count: Mapped[int] = mapped_column(default=0)
    dials_ok: Mapped[int] = mapped_column(default=0)
    dials_failed: Mapped[int] = mapped_column(default=0)
    # Schema v3.  Our own node id in this crawl (NULL for crawls of older ethcrawl versions).
    local_node_id: Mapped[bytes | None] = mapped_column(LargeBinary(NODE_ID_SIZE))
    # Schema v3.  The crawl's own counters that no other table holds (e.g. relayed nodes dropped), JSON text.
    stats: Mapped[str | None] = mapped_column(Text)
    # Schema v4.  records.CRAWL_KINDS: a walk of the DHT or a revalidation pass (crawls of older versions are walks).
    kind: Mapped[str] = mapped_column(String(16), default="crawl", server_default="crawl")


class Node(Base):
    """Every node ever seen, with its latest address and the highest-seq ENR received."""

    __tablename__ = "nodes"

    node_id: Mapped[NodeId] = mapped_column(primary_key=True)
    pubkey: Mapped[bytes] = mapped_column(LargeBinary(PUBKEY_SIZE))
    ip: Mapped[str | None] = mapped_column(String(IP_TEXT_SIZE))
    udp_port: Mapped[int | None] = mapped_column(Integer)
    tcp_port: Mapped[int | None] = mapped_column(Integer)
    enr: Mapped[bytes | None]  # exactly as received, never re-encoded
    enr_seq: Mapped[int | None]
    first_seen: Mapped[UTCTime]
    last_seen: Mapped[UTCTime]
    # Schema v2.  Discovery protocols that ever answered ("v4", "v5", "v4,v5"; "" for none yet).
    protocols: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Derived from ``enr`` by wire.classify whenever a newer ENR is stored; NULL without a readable ENR.
    layer: Mapped[str | None] = mapped_column(Text)  # "execution" | "consensus" | "other"
    execution_network: Mapped[str | None] = mapped_column(Text)  # from the ENR's eth fork id
    eth2_fork_digest: Mapped[bytes | None] = mapped_column(LargeBinary(FORK_DIGEST_SIZE))
    consensus_network: Mapped[str | None] = mapped_column(Text)
    consensus_fork: Mapped[str | None] = mapped_column(Text)
    attnets_count: Mapped[int | None] = mapped_column(Integer)
    syncnets_count: Mapped[int | None] = mapped_column(Integer)
    # Schema v3.  The ``score`` of the last nodes.json that listed the node (go-ethereum's devp2p nodeset score).
    imported_score: Mapped[int | None] = mapped_column(BigInteger)
    # Schema v4.  Where the node's latest address is, from a MaxMind-format database (NULL when not enriched).
    country: Mapped[str | None] = mapped_column(String(COUNTRY_CODE_SIZE))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    as_org: Mapped[str | None] = mapped_column(Text)


class Sighting(Base):
    """A node as seen in one crawl."""

    __tablename__ = "sightings"

    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"), primary_key=True)
    node_id: Mapped[NodeId] = mapped_column(ForeignKey("nodes.node_id"), primary_key=True, index=True)
    first_seen: Mapped[UTCTime]
    source: Mapped[str] = mapped_column(String(16))  # records.SOURCES
    responded: Mapped[bool] = mapped_column(Boolean, default=False)
    enr_received: Mapped[bool] = mapped_column(Boolean, default=False)
    # Schema v2: discovery protocols that answered the node in this crawl ("" for none).
    protocols: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Schema v4: the node as it was in this crawl (addresses and records change), for history and churn.
    # The address last heard for it in the crawl and the highest ENR seq received (NULL before v4 or when unknown).
    ip: Mapped[str | None] = mapped_column(String(IP_TEXT_SIZE))
    udp_port: Mapped[int | None] = mapped_column(Integer)
    tcp_port: Mapped[int | None] = mapped_column(Integer)
    enr_seq: Mapped[int | None]
    # Where that address was (MaxMind-format database), filled by enrichment.
    country: Mapped[str | None] = mapped_column(String(COUNTRY_CODE_SIZE))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    as_org: Mapped[str | None] = mapped_column(Text)


class Edge(Base):
    """In crawl ``crawl_id``, ``from_node`` returned ``to_node``: the DHT's topology."""

    __tablename__ = "edges"

    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"), primary_key=True)
    from_node: Mapped[NodeId] = mapped_column(ForeignKey("nodes.node_id"), primary_key=True)
    to_node: Mapped[NodeId] = mapped_column(ForeignKey("nodes.node_id"), primary_key=True)
    first_seen: Mapped[UTCTime]
    # Schema v2: the discovery protocol(s) whose replies reported the edge ("v4", "v5", "v4,v5").
    protocols: Mapped[str] = mapped_column(Text, default="v4", server_default="v4")

    __table_args__ = (Index("ix_edges_to_node", "to_node"),)


class DialAttempt(Base):
    """One RLPx attempt.  ``node_id`` has no foreign key: inbound peers may be unknown to discovery."""

    __tablename__ = "dial_attempts"

    id: Mapped[IntPK]
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"), index=True)
    node_id: Mapped[NodeId] = mapped_column(index=True)
    attempted_at: Mapped[UTCTime]
    direction: Mapped[str] = mapped_column(String(8))  # records.DIRECTIONS
    outcome: Mapped[str] = mapped_column(String(24))  # records.OUTCOMES
    ip: Mapped[str | None] = mapped_column(String(IP_TEXT_SIZE))
    tcp_port: Mapped[int | None] = mapped_column(Integer)
    disconnect_reason: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None]
    client_id: Mapped[str | None]
    client_name: Mapped[str | None] = mapped_column(String(64))
    client_version: Mapped[str | None]
    client_os: Mapped[str | None]
    client_arch: Mapped[str | None]
    client_runtime: Mapped[str | None]
    client_user_data: Mapped[str | None]
    capabilities: Mapped[str | None]
    p2p_version: Mapped[int | None]
    eth_version: Mapped[int | None] = mapped_column(Integer)
    network_id: Mapped[int | None]
    genesis_hash: Mapped[bytes | None] = mapped_column(LargeBinary(HASH_SIZE))
    fork_hash: Mapped[bytes | None] = mapped_column(LargeBinary(FORK_HASH_SIZE))
    fork_next: Mapped[int | None]
    head_hash: Mapped[bytes | None] = mapped_column(LargeBinary(HASH_SIZE))
    total_difficulty: Mapped[str | None] = mapped_column(String(BIG_UINT_TEXT_SIZE))
    earliest_block: Mapped[int | None]
    latest_block: Mapped[int | None]
    head_number: Mapped[int | None]
    synced: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        Index("ix_dial_attempts_crawl_outcome", "crawl_id", "outcome"),
        Index("ix_dial_attempts_client_name", "client_name"),
        Index("ix_dial_attempts_network", "network_id", "fork_hash"),
    )


class Identity(Base):
    """A node identity ethcrawl itself has used: never a node of the network it measures.

    The database keeps one generated key, reused by every crawl and ping on it, so the network does not
    remember a new "node" per crawl.  Identities given with ``--node-key`` are remembered by node id only:
    a user's key file is not copied into a database that may be shared.
    """

    __tablename__ = "identities"

    node_id: Mapped[NodeId] = mapped_column(primary_key=True)
    # The secp256k1 private key of the database's own generated identity; NULL for one given by the user.
    private_key: Mapped[bytes | None] = mapped_column(LargeBinary(PRIVATE_KEY_SIZE))
    origin: Mapped[str] = mapped_column(String(16))  # IDENTITY_ORIGINS
    created_at: Mapped[UTCTime]

    # At most one generated identity: two processes creating it at once both insert, the index lets one win
    # (INSERT ... ON CONFLICT DO NOTHING) and both read the winner (db.identity.generated_identity).
    __table_args__ = (
        Index(
            "ux_identities_one_generated",
            "origin",
            unique=True,
            sqlite_where=text("origin = 'generated'"),
            postgresql_where=text("origin = 'generated'"),
        ),
    )


class EnrHistory(Base):
    """Every ENR version a node published that a crawl received: one row per (node, seq), the bytes as received.

    ``nodes.enr`` holds only the newest; this keeps what changed between versions (address, ports, fork id, ...)
    for a node's history.  Only new sequence numbers add rows, so a stable network adds none.
    """

    __tablename__ = "enr_history"

    node_id: Mapped[NodeId] = mapped_column(ForeignKey("nodes.node_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    enr: Mapped[bytes]
    # When a crawl first received this version; NULL crawl_id for the one record a pre-v4 database carried over
    # (its first_seen is then the node's last_seen: received at the latest then).
    first_seen: Mapped[UTCTime]
    crawl_id: Mapped[int | None] = mapped_column(ForeignKey("crawls.id"))
