"""A database on SQLite or PostgreSQL, filled with the real store code, and the same facts kept in Python.

Import by name (``from fixture_db import ...``); not a conftest.py so that it stays out of other folders.
The Python side (``Facts``) is what tests compare query results with: it is computed from the records
as they are generated, never read back from the database.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ethcrawl.db.engine import open_database
from ethcrawl.db.records import CrawlFinished, CrawlStarted, DialRecord, EdgeSeen, NodeSeen, Record
from ethcrawl.db.store import begin_crawl, write_records
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["FORK_IDS", "POSTGRES_URL", "T0", "Facts", "NodeFact", "database_url", "fill_database"]

POSTGRES_URL = os.environ.get("ETHCRAWL_TEST_POSTGRES_URL")
NO_POSTGRES = "no PostgreSQL server: set ETHCRAWL_TEST_POSTGRES_URL (.ci/run does)"

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# (fork hash, fork next) -> (network, fork name, readiness), written down from the chain schedules
# (EIP-2124 hashes as geth's core/forkid tests list them), not from our classifier.
FORK_IDS: dict[tuple[str, int], tuple[str | None, str | None, str]] = {
    ("c376cf8b", 1764798551): ("mainnet", "Prague", "ready"),
    ("c376cf8b", 0): ("mainnet", "Prague", "stale"),
    ("07c9462e", 0): ("mainnet", "BPO2", "ready"),
    ("ed88b5fd", 1760427360): ("sepolia", "Prague", "ready"),
    ("deadbeef", 0): (None, None, "unknown-network"),
}
NETWORK_IDS = {"mainnet": 1, "sepolia": 11155111}
CLIENTS = {
    "geth": ["1.14.11", "1.15.0", "1.16.1"],
    "nethermind": ["1.29.0", "1.30.2"],
    "reth": ["1.1.0", "1.3.12"],
    "erigon": ["2.60.10", "3.0.0"],
}
OSES = ["linux", "windows", "darwin"]
RUNTIMES = {"geth": "go1.23.4", "erigon": "go1.22.1", "nethermind": "dotnet8.0.11", "reth": "rustc1.82.0"}
FAILED_OUTCOMES = ["timeout", "refused", "too-many-peers", "protocol-error"]
AFTER_HELLO = ("too-many-peers", "protocol-error")  # failures that can follow a Hello


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a new database on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield str(tmp_path / "fixture.db")
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    name = f"q_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass(slots=True)
class NodeFact:
    node_id: bytes
    pubkey: bytes
    ip: str
    udp: int
    tcp: int | None
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Crawl:
    id: int
    seen: frozenset[bytes]
    edges: frozenset[tuple[bytes, bytes]]
    responders: frozenset[bytes]
    dials: tuple[DialRecord, ...]
    started_at: datetime
    ended_at: datetime


@dataclass(slots=True)
class Facts:
    nodes: dict[bytes, NodeFact] = field(default_factory=dict)
    dials: list[DialRecord] = field(default_factory=list)  # in the order written
    crawls: list[Crawl] = field(default_factory=list)

    def latest_dial(
        self, node_id: bytes, *, having: str | None = None, client: str | None = None, crawl: int | None = None
    ) -> DialRecord | None:
        """The last dial written for the node (optionally: the last one that told ``having``, in crawl ``crawl``)."""
        found = None
        for dial in self.dials:
            if dial.node_id != node_id:
                continue
            if having is not None and getattr(dial, having) is None:
                continue
            if crawl is not None and dial.crawl_id != crawl:
                continue
            if client is not None and dial.client_name != client:
                continue
            found = dial
        return found


def _pubkey(rng: random.Random) -> tuple[bytes, bytes]:
    # Real keys are not needed by the queries, but the node id must be keccak256(pubkey) for enode
    # URLs to be honest; random 64 bytes hash just as well.
    from ethcrawl.wire.crypto import node_id_from_pubkey

    pubkey = rng.randbytes(64)
    return node_id_from_pubkey(pubkey), pubkey


def _hello(rng: random.Random) -> dict[str, str]:
    name = rng.choice(sorted(CLIENTS))
    version = rng.choice(CLIENTS[name])
    os_name = rng.choice(OSES)
    return {
        "client_id": f"{name}/v{version}/{os_name}-amd64/{RUNTIMES[name]}", "client_name": name,
        "client_version": version, "client_os": os_name, "client_arch": "amd64", "client_runtime": RUNTIMES[name],
        "capabilities": "eth/68,snap/1",
    }


def _dial(rng: random.Random, crawl: int, node_id: bytes, at: datetime) -> DialRecord:
    if rng.random() < 0.3:
        outcome = rng.choice(FAILED_OUTCOMES)
        # Some peers send their Hello and then refuse us (too many peers) or break the protocol.
        hello = _hello(rng) if outcome in AFTER_HELLO and rng.random() < 0.6 else {}
        return DialRecord(crawl_id=crawl, node_id=node_id, attempted_at=at, direction="outbound", outcome=outcome, **hello)
    (fork_hash, fork_next), (network, _fork, _ready) = rng.choice(sorted(FORK_IDS.items(), key=str))
    network_id = NETWORK_IDS.get(network or "mainnet", 1)
    with_status = rng.random() < 0.85  # some peers say Hello and leave before Status
    return DialRecord(
        crawl_id=crawl, node_id=node_id, attempted_at=at, direction="outbound", outcome="ok", **_hello(rng),
        network_id=network_id if with_status else None,
        fork_hash=bytes.fromhex(fork_hash) if with_status else None,
        fork_next=fork_next if with_status else None,
        synced=rng.random() < 0.6 if with_status else None,
    )


def fill_database(url: str, *, seed: int = 4, nodes: int = 60, no_tcp: float = 0.0) -> Facts:
    """Two crawls over ``nodes`` nodes (overlapping halves), with random edges, answers and dials.

    ``no_tcp`` is the share of sightings without a TCP port (ENRs without "tcp", NEIGHBORS with port 0).
    """
    rng = random.Random(seed)
    facts = Facts()
    ids = []
    for _ in range(nodes):
        node_id, pubkey = _pubkey(rng)
        ids.append((node_id, pubkey))
    db = open_database(url)
    try:
        halves = [ids[: 2 * nodes // 3], ids[nodes // 3 :]]
        for number, members in enumerate(halves):
            started = T0 + timedelta(days=number)
            with db.session() as session, session.begin():
                crawl = begin_crawl(session, CrawlStarted(started_at=started))
                records: list[Record] = []
                seen: set[bytes] = set()
                for k, (node_id, pubkey) in enumerate(members):
                    at = started + timedelta(seconds=k)
                    ip = f"10.{number}.{k // 200}.{k % 200 + 1}" if rng.random() < 0.5 else f"192.0.2.{k % 250 + 1}"
                    tcp = None if rng.random() < no_tcp else 30303
                    responded = rng.random() < 0.7
                    records.append(NodeSeen(crawl_id=crawl, node_id=node_id, pubkey=pubkey, ip=ip, udp=30303, tcp=tcp, seen_at=at, source="neighbors", responded=responded))
                    seen.add(node_id)
                    fact = facts.nodes.get(node_id)
                    if fact is None:
                        facts.nodes[node_id] = NodeFact(node_id, pubkey, ip, 30303, tcp, at, at)
                    else:
                        fact.ip, fact.tcp, fact.last_seen = ip, tcp, at
                member_ids = [m[0] for m in members]
                responders = frozenset(r.node_id for r in records if isinstance(r, NodeSeen) and r.responded)
                edges = set()
                for source in sorted(responders):
                    for target in rng.sample(member_ids, rng.randint(0, 6)):
                        if target != source:
                            edges.add((source, target))
                records += [EdgeSeen(crawl_id=crawl, from_id=a, to_id=b, seen_at=started) for a, b in sorted(edges)]
                dials = [
                    _dial(rng, crawl, node_id, started + timedelta(minutes=1, seconds=k))
                    for k, node_id in enumerate(member_ids)
                    if rng.random() < 0.8
                ]
                records += dials
                ended = started + timedelta(minutes=10)
                records.append(CrawlFinished(crawl_id=crawl, ended_at=ended))
                write_records(session, records)
            facts.dials += dials
            facts.crawls.append(
                Crawl(id=crawl, seen=frozenset(seen), edges=frozenset(edges), responders=responders,
                      dials=tuple(dials), started_at=started, ended_at=ended)
            )
    finally:
        db.close()
    return facts
