"""Schema v2 (discovery v5): v1 -> v2 migration keeps rows, protocol sets only grow, ENR classification columns.

Every test runs on SQLite and, when ETHCRAWL_TEST_POSTGRES_URL is set, on PostgreSQL (fixture_db.database_url).
Expected values come from the records written or from wire.classify on the same ENR, never from the store.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fixture_db import database_url
from ground_truth import load_fixture_json
from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, ForeignKey, Integer, LargeBinary, MetaData, String, Table, Text,
    create_engine, inspect, insert, select,
)  # fmt: skip

from ethcrawl.db import engine as db_engine
from ethcrawl.db.engine import SCHEMA_VERSION, open_database
from ethcrawl.db.errors import InvalidRecord
from ethcrawl.db.models import Crawl, Edge, EnrHistory, Node, SchemaVersion, Sighting
from ethcrawl.db.nodesjson import import_nodes_json
from ethcrawl.db.records import SOURCES, CrawlStarted, EdgeSeen, NodeSeen, Record
from ethcrawl.db.store import begin_crawl, load_known_nodes, write_records
from ethcrawl.wire.classify import classify, compute_fork_digest, CONSENSUS_NETWORKS
from ethcrawl.wire.crypto import PrivateKey, pubkey_from_private
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.forkid import fork_hashes
from ethcrawl.wire.chains import CHAINS

__all__ = ["database_url"]  # the fixture, imported so that pytest finds it here

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
V5_BOOTNODES = load_fixture_json("vectors", "bootnodes.json")["v5"]


def key(n: int) -> PrivateKey:
    return PrivateKey(hashlib.sha256(b"schema-v2 %d" % n).digest())


def nid(n: int) -> bytes:
    return hashlib.sha3_256(pubkey_from_private(key(n))).digest()  # any 32 bytes will do for rows


def record(n: int, seq: int, pairs: dict[str, object]) -> ENR:
    return ENR.create(key(n), seq=seq, pairs={"ip": "127.0.0.1", "udp": 30303, **pairs})


def execution_enr(n: int, seq: int) -> ENR:
    return record(n, seq, {"eth": [fork_hashes(CHAINS["mainnet"])[-1].fork_id], "tcp": 30303})


def consensus_enr(n: int, seq: int) -> ENR:
    hoodi = CONSENSUS_NETWORKS["hoodi"]
    digest = compute_fork_digest(hoodi.forks[5][1], hoodi.genesis_validators_root)  # Electra
    return record(n, seq, {"eth2": digest + b"\x70\x00\x09\x10" + (50688).to_bytes(8, "little"), "attnets": b"\xff" + bytes(7), "syncnets": b"\x01"})


def seen(crawl: int, n: int, *, protocols: tuple[str, ...] = (), enr: ENR | bytes | None = None, seq: int | None = None,
         source: str = "neighbors", at: int = 0) -> NodeSeen:
    raw = enr.to_rlp() if isinstance(enr, ENR) else enr
    return NodeSeen(
        crawl_id=crawl, node_id=nid(n), pubkey=pubkey_from_private(key(n)), ip="127.0.0.1", udp=30303, tcp=None,
        seen_at=T0 + timedelta(seconds=at), source=source, enr=raw,
        enr_seq=(enr.seq if isinstance(enr, ENR) else seq) if raw is not None else None,
        responded=bool(protocols), protocols=protocols,
    )


def write(url: str, records: list[Record]) -> None:
    db = open_database(url)
    try:
        with db.session() as session, session.begin():
            write_records(session, records)
    finally:
        db.close()


def new_crawl(url: str) -> int:
    db = open_database(url)
    try:
        with db.session() as session, session.begin():
            return begin_crawl(session, CrawlStarted(started_at=T0))
    finally:
        db.close()


def node_row(url: str, n: int) -> dict[str, Any]:
    db = open_database(url)
    try:
        with db.session() as session:
            node = session.get(Node, nid(n))
            assert node is not None
            return {c.key: getattr(node, c.key) for c in Node.__table__.columns}
    finally:
        db.close()


def expected_classification(enr: ENR) -> dict[str, Any]:
    found = classify(enr)
    return {
        "layer": found.layer, "execution_network": found.execution_network, "eth2_fork_digest": found.fork_digest,
        "consensus_network": found.consensus_network, "consensus_fork": found.consensus_fork,
        "attnets_count": found.attnets_count, "syncnets_count": found.syncnets_count,
    }


# ---------------------------------------------------------------- migration

# The version-1 schema, as ethcrawl 0.1 created it (db/models.py before schema v2).
V1 = MetaData()
Table("schema_version", V1, Column("id", Integer, primary_key=True), Column("version", Integer, nullable=False),
      Column("updated_at", DateTime(timezone=True), nullable=False))
Table("crawls", V1, Column("id", Integer, primary_key=True, autoincrement=True),
      Column("started_at", DateTime(timezone=True), nullable=False), Column("ended_at", DateTime(timezone=True)),
      Column("parameters", Text, nullable=False), Column("node_count", BigInteger, nullable=False),
      Column("edge_count", BigInteger, nullable=False), Column("dials_ok", BigInteger, nullable=False),
      Column("dials_failed", BigInteger, nullable=False))
Table("nodes", V1, Column("node_id", LargeBinary(32), primary_key=True), Column("pubkey", LargeBinary(64), nullable=False),
      Column("ip", String(45)), Column("udp_port", Integer), Column("tcp_port", Integer), Column("enr", LargeBinary),
      Column("enr_seq", BigInteger), Column("first_seen", DateTime(timezone=True), nullable=False),
      Column("last_seen", DateTime(timezone=True), nullable=False))
Table("sightings", V1, Column("crawl_id", Integer, ForeignKey("crawls.id"), primary_key=True),
      Column("node_id", LargeBinary(32), ForeignKey("nodes.node_id"), primary_key=True),
      Column("first_seen", DateTime(timezone=True), nullable=False), Column("source", String(16), nullable=False),
      Column("responded", Boolean, nullable=False), Column("enr_received", Boolean, nullable=False))
Table("edges", V1, Column("crawl_id", Integer, ForeignKey("crawls.id"), primary_key=True),
      Column("from_node", LargeBinary(32), ForeignKey("nodes.node_id"), primary_key=True),
      Column("to_node", LargeBinary(32), ForeignKey("nodes.node_id"), primary_key=True),
      Column("first_seen", DateTime(timezone=True), nullable=False))
Table("dial_attempts", V1, Column("id", Integer, primary_key=True, autoincrement=True),
      Column("crawl_id", Integer, ForeignKey("crawls.id"), nullable=False), Column("node_id", LargeBinary(32), nullable=False),
      Column("attempted_at", DateTime(timezone=True), nullable=False), Column("direction", String(8), nullable=False),
      Column("outcome", String(24), nullable=False))


def _engine_url(url: str) -> str:
    return url if "://" in url else f"sqlite:///{url}"


def build_v1(url: str) -> dict[str, ENR | bytes]:
    """A v1 database with three nodes (execution ENR, consensus ENR, an undecodable ENR) and one answering."""
    enrs: dict[str, ENR | bytes] = {"execution": execution_enr(1, 3), "consensus": consensus_enr(2, 9), "broken": b"\xc0junk"}
    naive = T0.replace(tzinfo=None)  # what UTCDateTime stores on SQLite
    engine = create_engine(_engine_url(url))
    when = naive if engine.dialect.name == "sqlite" else T0
    with engine.begin() as conn:
        V1.create_all(conn)
        conn.execute(insert(V1.tables["schema_version"]).values(id=1, version=1, updated_at=when))
        # No explicit id: PostgreSQL's serial sequence must move on as it would have in v1.
        crawl = conn.execute(insert(V1.tables["crawls"]).values(started_at=when, parameters="{}", node_count=3, edge_count=1,
                                                                 dials_ok=0, dials_failed=0)).inserted_primary_key[0]
        for n, (name, enr) in enumerate(enrs.items(), start=1):
            raw = enr.to_rlp() if isinstance(enr, ENR) else enr
            conn.execute(insert(V1.tables["nodes"]).values(
                node_id=nid(n), pubkey=pubkey_from_private(key(n)), ip="127.0.0.1", udp_port=30303, tcp_port=None,
                enr=raw, enr_seq=enr.seq if isinstance(enr, ENR) else 1, first_seen=when, last_seen=when))
            conn.execute(insert(V1.tables["sightings"]).values(
                crawl_id=crawl, node_id=nid(n), first_seen=when, source="neighbors", responded=(n == 1), enr_received=True))
        conn.execute(insert(V1.tables["edges"]).values(crawl_id=crawl, from_node=nid(1), to_node=nid(2), first_seen=when))
    engine.dispose()
    return enrs


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_v1_database_migrates_and_keeps_its_rows(database_url: str) -> None:
    enrs = build_v1(database_url)
    db = open_database(database_url, create=False)
    try:
        with db.session() as session:
            # v1 -> v2 -> v3 (-> ...): every step runs, in order.
            assert session.scalar(select(SchemaVersion.version)) == SCHEMA_VERSION
            nodes = {n.node_id: n for n in session.scalars(select(Node))}
            assert len(nodes) == 3
            for n, enr in enumerate(enrs.values(), start=1):
                node = nodes[nid(n)]
                assert node.enr == (enr.to_rlp() if isinstance(enr, ENR) else enr)  # bytes untouched
                assert node.first_seen == T0 and node.last_seen == T0
                if isinstance(enr, ENR):
                    assert {k: getattr(node, k) for k in expected_classification(enr)} == expected_classification(enr)
                else:
                    assert node.layer is None and node.eth2_fork_digest is None
            assert nodes[nid(1)].layer == "execution" and nodes[nid(2)].layer == "consensus"
            assert nodes[nid(2)].consensus_fork == "Electra" and nodes[nid(2)].attnets_count == 8
            # v1 spoke discv4 only: the node that answered answered over v4.
            assert {n: node.protocols for n, node in nodes.items()} == {nid(1): "v4", nid(2): "", nid(3): ""}
            sightings = {s.node_id: s.protocols for s in session.scalars(select(Sighting))}
            assert sightings == {nid(1): "v4", nid(2): "", nid(3): ""}
            assert [(e.from_node, e.to_node, e.protocols) for e in session.scalars(select(Edge))] == [(nid(1), nid(2), "v4")]
            # v4: the crawl was a walk; past sightings' addresses were not recorded and are not guessed; the ENR
            # history starts with each stored record, carried over (no crawl) as received at the latest then.
            assert session.scalars(select(Crawl.kind)).all() == ["crawl"]
            assert {(s.ip, s.enr_seq, s.country) for s in session.scalars(select(Sighting))} == {(None, None, None)}
            history = {h.node_id: (h.seq, h.enr, h.first_seen, h.crawl_id) for h in session.scalars(select(EnrHistory))}
            assert history == {
                nid(n): (enr.seq if isinstance(enr, ENR) else 1, enr.to_rlp() if isinstance(enr, ENR) else enr, T0, None)
                for n, enr in enumerate(enrs.values(), start=1)
            }
    finally:
        db.close()
    # The migrated schema has the columns a new database gets.
    migrated = inspect(create_engine(_engine_url(database_url)))
    fresh_engine = create_engine("sqlite://")
    from ethcrawl.db.models import Base
    Base.metadata.create_all(fresh_engine)
    fresh = inspect(fresh_engine)
    for name in ("crawls", "nodes", "sightings", "edges"):
        want = {c["name"]: c["nullable"] for c in fresh.get_columns(name)}
        got = {c["name"]: c["nullable"] for c in migrated.get_columns(name)}
        added = set(want) - {c.name for c in V1.tables[name].columns}
        assert {k: got[k] for k in added} == {k: want[k] for k in added}, name
    # Tables that v1 lacked entirely (v3: our own identities) are there, with the columns a new database gets.
    for name in set(fresh.get_table_names()) - set(V1.tables):
        assert {c["name"] for c in migrated.get_columns(name)} == {c["name"] for c in fresh.get_columns(name)}, name
        # ...and their indexes (v3: the one that keeps a single generated identity).
        indexes = {(i["name"], bool(i["unique"])) for i in fresh.get_indexes(name)}
        assert {(i["name"], bool(i["unique"])) for i in migrated.get_indexes(name)} == indexes, name
    # ...and new records land in it.
    crawl = new_crawl(database_url)
    write(database_url, [seen(crawl, 2, protocols=("v5",)), EdgeSeen(crawl_id=crawl, from_id=nid(2), to_id=nid(1), seen_at=T0, protocol="v5")])
    assert node_row(database_url, 2)["protocols"] == "v5"


def test_a_failing_classification_step_rolls_the_migration_back(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "v1.db")
    build_v1(path)

    def broken(enr: bytes | None) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(db_engine, "classification_columns", broken)
    with pytest.raises(Exception, match="boom"):
        open_database(path)
    engine = create_engine(_engine_url(path))
    with engine.connect() as conn:
        assert conn.execute(select(V1.tables["schema_version"].c.version)).scalar_one() == 1
        assert "protocols" not in {c["name"] for c in inspect(conn).get_columns("nodes")}
    engine.dispose()


# ---------------------------------------------------------------- protocols


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_protocol_sets_only_grow(database_url: str) -> None:
    first, second = new_crawl(database_url), new_crawl(database_url)
    write(database_url, [seen(first, 1, protocols=("v4",)), seen(first, 2, source="nodes")])
    assert node_row(database_url, 1)["protocols"] == "v4" and node_row(database_url, 2)["protocols"] == ""
    # Within one batch and across batches; a record that knows fewer protocols takes none away.
    write(database_url, [seen(first, 2, protocols=("v5",)), seen(first, 2), seen(second, 1, protocols=("v5",))])
    write(database_url, [seen(second, 1), seen(second, 1, protocols=("v4", "v5", "v4"))])
    assert node_row(database_url, 1)["protocols"] == "v4,v5"
    assert node_row(database_url, 2)["protocols"] == "v5"
    db = open_database(database_url)
    with db.session() as session:
        per_crawl = {(s.crawl_id, s.node_id): s.protocols for s in session.scalars(select(Sighting))}
        known = {k.node_id: k for k in load_known_nodes(session)}
    db.close()
    assert per_crawl == {(first, nid(1)): "v4", (first, nid(2)): "v5", (second, nid(1)): "v4,v5"}
    assert known[nid(1)].protocols == ("v4", "v5") and known[nid(2)].protocols == ("v5",)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_edge_protocols_union_on_conflict(database_url: str) -> None:
    crawl = new_crawl(database_url)
    write(database_url, [seen(crawl, n) for n in (1, 2, 3)])

    def edge(a: int, b: int, protocol: str, at: int = 0) -> EdgeSeen:
        return EdgeSeen(crawl_id=crawl, from_id=nid(a), to_id=nid(b), seen_at=T0 + timedelta(seconds=at), protocol=protocol)

    write(database_url, [edge(1, 2, "v4"), edge(1, 3, "v5"), edge(1, 3, "v5", 5), edge(2, 3, "v5"), edge(2, 3, "v4")])
    write(database_url, [edge(1, 2, "v5", 9), edge(1, 3, "v5", 9)])
    db = open_database(database_url)
    with db.session() as session:
        rows = {(e.from_node, e.to_node): (e.protocols, e.first_seen) for e in session.scalars(select(Edge))}
    db.close()
    assert rows == {(nid(1), nid(2)): ("v4,v5", T0), (nid(1), nid(3)): ("v5", T0), (nid(2), nid(3)): ("v4,v5", T0)}


def test_records_validate_protocols_and_sources() -> None:
    assert "nodes" in SOURCES
    assert seen(1, 1, source="nodes", protocols=("v5",)).protocols == ("v5",)
    with pytest.raises(InvalidRecord, match="'v6'"):
        seen(1, 1, protocols=("v6",))
    with pytest.raises(InvalidRecord, match="protocol 'V4'"):
        EdgeSeen(crawl_id=1, from_id=nid(1), to_id=nid(2), seen_at=T0, protocol="V4")
    assert EdgeSeen(crawl_id=1, from_id=nid(1), to_id=nid(2), seen_at=T0).protocol == "v4"


# ---------------------------------------------------------------- classification columns


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_classification_follows_the_stored_enr(database_url: str) -> None:
    crawl = new_crawl(database_url)
    newer, older, newest = consensus_enr(1, 5), execution_enr(1, 4), record(1, 6, {"opstack": b"\x01"})
    write(database_url, [seen(crawl, 1, enr=newer), seen(crawl, 2)])
    row = node_row(database_url, 1)
    assert {k: row[k] for k in expected_classification(newer)} == expected_classification(newer)
    assert row["layer"] == "consensus" and row["consensus_network"] == "hoodi" and row["syncnets_count"] == 1
    # A lower seq changes neither the ENR nor what was derived from it.
    write(database_url, [seen(crawl, 1, enr=older)])
    assert node_row(database_url, 1) == row
    write(database_url, [seen(crawl, 1, enr=newest)])
    row = node_row(database_url, 1)
    assert row["enr"] == newest.to_rlp() and row["layer"] == "other" and row["eth2_fork_digest"] is None
    # No ENR: nothing is known.
    assert node_row(database_url, 2)["layer"] is None


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_an_undecodable_enr_is_stored_unclassified_without_failing_the_batch(database_url: str) -> None:
    crawl = new_crawl(database_url)
    write(database_url, [seen(crawl, 1, enr=b"\xc3\x01\x02\x03", seq=1), seen(crawl, 2, enr=execution_enr(2, 1))])
    assert node_row(database_url, 1)["enr"] == b"\xc3\x01\x02\x03" and node_row(database_url, 1)["layer"] is None
    assert node_row(database_url, 2)["layer"] == "execution" and node_row(database_url, 2)["execution_network"] == "mainnet"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_real_bootnode_records_are_classified_when_stored(database_url: str) -> None:
    crawl = new_crawl(database_url)
    enrs = [ENR.from_text(text) for text in V5_BOOTNODES]
    records: list[Record] = []
    for enr in enrs:
        assert enr.node_id is not None and enr.public_key_raw is not None
        records.append(NodeSeen(crawl_id=crawl, node_id=enr.node_id, pubkey=enr.public_key_raw, ip=None, udp=None, tcp=None,
                                seen_at=T0, source="bootnode", enr=enr.to_rlp(), enr_seq=enr.seq))
    write(database_url, records)
    db = open_database(database_url)
    with db.session() as session:
        stored = {n.node_id: n for n in session.scalars(select(Node))}
    db.close()
    for enr in enrs:
        node = stored[enr.node_id]  # type: ignore[index]
        assert {k: getattr(node, k) for k in expected_classification(enr)} == expected_classification(enr)
    assert sum(1 for n in stored.values() if n.consensus_network == "mainnet") == 12


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_nodes_json_import_classifies(database_url: str) -> None:
    data = load_fixture_json("data", "dnslists", "hoodi.nodes.json")
    db = open_database(database_url)
    with db.session() as session, session.begin():
        stats = import_nodes_json(session, data, now=T0)
    with db.session() as session:
        layers = {(n.layer, n.execution_network, n.protocols) for n in session.scalars(select(Node))}
        count = session.scalar(select(Node.node_id).limit(1))
    db.close()
    assert stats.imported == len(data) == 486 and count is not None
    assert layers == {("execution", "hoodi", "")}
