"""Our own identities: one generated key per database, --node-key ids by node id only, purged as network nodes.

Every test runs on an SQLite file and, with ETHCRAWL_TEST_POSTGRES_URL, on a fresh PostgreSQL database.
Expected node ids are computed here from the keys (keccak256 of the public key), not read from the code.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.errors import InvalidRecord
from ethcrawl.db.identity import (
    GENERATED,
    claim_identity,
    generated_identity,
    identity_node_ids,
    register_identity,
)
from ethcrawl.db.models import Crawl, DialAttempt, Edge, Identity, Node, Sighting
from ethcrawl.db.records import CrawlStarted, DialRecord, EdgeSeen, NodeSeen, Record
from ethcrawl.db.store import begin_crawl, write_records
from ethcrawl.wire.crypto import PrivateKey, generate_private_key, keccak256, pubkey_from_private
from fixture_db import T0, database_url

__all__ = ["database_url"]  # the fixture, imported so that pytest finds it here

CONCURRENT_CLAIMS = 4  # processes (here: threads with their own engine) racing to create the identity


def key_node_id(secret: bytes) -> bytes:
    return keccak256(pubkey_from_private(PrivateKey(secret)))


def other(n: int) -> bytes:
    return keccak256(n.to_bytes(4, "big"))


def seen(crawl: int, node_id: bytes) -> NodeSeen:
    return NodeSeen(
        crawl_id=crawl, node_id=node_id, pubkey=bytes(64), ip="10.0.0.1", udp=30303, tcp=30303, seen_at=T0,
        source="neighbors",
    )


def write(db: Database, records: list[Record]) -> None:
    with db.session() as session, session.begin():
        write_records(session, records)


def new_crawl(db: Database, local_node_id: bytes | None = None) -> int:
    with db.session() as session, session.begin():
        return begin_crawl(session, CrawlStarted(started_at=T0, local_node_id=local_node_id))


def count(db: Database, model: type, *where: object) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def test_the_generated_identity_is_created_once_and_reused(database_url: str) -> None:
    db = open_database(database_url)
    first = claim_identity(db, node_key=None, now=T0)
    db.close()
    db = open_database(database_url)  # a later process on the same database
    second = claim_identity(db, node_key=None, now=T0 + timedelta(days=1))
    assert second == first
    assert first.node_id == key_node_id(first.private_key)
    assert first.excluded == {first.node_id}
    with db.session() as session:
        (row,) = session.scalars(select(Identity))
    assert (row.node_id, row.private_key, row.origin, row.created_at) == (first.node_id, first.private_key, GENERATED, T0)
    db.close()


def test_a_second_generated_identity_loses_to_the_stored_one(database_url: str) -> None:
    """The path a process takes when another created the identity first: its insert does nothing, it reads the winner."""
    db = open_database(database_url)
    winner = generate_private_key().secret
    with db.session() as session, session.begin():
        session.add(Identity(node_id=key_node_id(winner), private_key=winner, origin=GENERATED, created_at=T0))
    with db.session() as session, session.begin():
        stored = generated_identity(session, now=T0)
    assert (stored.node_id, stored.private_key) == (key_node_id(winner), winner)
    assert count(db, Identity) == 1
    db.close()


def test_processes_creating_the_identity_at_once_end_with_one(database_url: str) -> None:
    dbs = [open_database(database_url) for _ in range(CONCURRENT_CLAIMS)]
    start = threading.Barrier(CONCURRENT_CLAIMS)
    claimed: list[bytes] = []
    failed: list[BaseException] = []

    def claim(db: Database) -> None:
        start.wait()
        try:
            claimed.append(claim_identity(db, node_key=None, now=T0).node_id)
        except BaseException as exc:  # reported below, with the thread's error
            failed.append(exc)

    threads = [threading.Thread(target=claim, args=(db,)) for db in dbs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failed, failed
    assert len(claimed) == CONCURRENT_CLAIMS and len(set(claimed)) == 1
    assert count(dbs[0], Identity) == 1
    for db in dbs:
        db.close()


def test_registering_a_node_key_purges_it_as_a_network_node(database_url: str) -> None:
    db = open_database(database_url)
    secret = generate_private_key().secret
    us = key_node_id(secret)
    crawl = new_crawl(db)
    a, b = other(1), other(2)
    write(db, [seen(crawl, us), seen(crawl, a), seen(crawl, b)])
    write(db, [
        EdgeSeen(crawl_id=crawl, from_id=a, to_id=us, seen_at=T0),
        EdgeSeen(crawl_id=crawl, from_id=us, to_id=b, seen_at=T0),
        EdgeSeen(crawl_id=crawl, from_id=a, to_id=b, seen_at=T0),
        DialRecord(crawl_id=crawl, node_id=us, attempted_at=T0, direction="inbound", outcome="ok"),
        DialRecord(crawl_id=crawl, node_id=a, attempted_at=T0, direction="outbound", outcome="timeout"),
    ])
    claimed = claim_identity(db, node_key=secret, now=T0)
    assert (claimed.private_key, claimed.node_id, claimed.excluded) == (secret, us, {us})
    with db.session() as session:
        (row,) = session.scalars(select(Identity))
        assert (row.node_id, row.private_key, row.origin) == (us, None, "node-key")  # the key is not copied
        assert set(session.scalars(select(Node.node_id))) == {a, b}
        assert set(session.scalars(select(Sighting.node_id))) == {a, b}
        assert {tuple(r) for r in session.execute(select(Edge.from_node, Edge.to_node))} == {(a, b)}
        assert set(session.scalars(select(DialAttempt.node_id))) == {a}
    # Registering again changes nothing and keeps one row.
    assert claim_identity(db, node_key=secret, now=T0 + timedelta(days=1)) == claimed
    assert count(db, Identity) == 1
    db.close()


def test_every_identity_is_listed(database_url: str) -> None:
    db = open_database(database_url)
    given = [generate_private_key().secret for _ in range(2)]
    own = claim_identity(db, node_key=None, now=T0)
    for secret in given:
        claim_identity(db, node_key=secret, now=T0)
    with db.session() as session:
        listed = identity_node_ids(session)
    assert listed == {own.node_id, *(key_node_id(s) for s in given)}
    # The generated identity stays the database's own after --node-key crawls.
    assert claim_identity(db, node_key=None, now=T0).excluded == listed
    db.close()


def test_register_refuses_a_wrong_sized_node_id(database_url: str) -> None:
    db = open_database(database_url)
    with db.session() as session, pytest.raises(InvalidRecord, match="32 bytes"):
        register_identity(session, b"\x01" * 31, now=T0)
    db.close()


def test_the_crawl_row_records_our_node_id(database_url: str) -> None:
    db = open_database(database_url)
    us = key_node_id(generate_private_key().secret)
    crawl = new_crawl(db, us)
    older = new_crawl(db)
    with db.session() as session:
        assert session.get(Crawl, crawl).local_node_id == us  # type: ignore[union-attr]
        assert session.get(Crawl, older).local_node_id is None  # type: ignore[union-attr]
    db.close()


def test_crawl_started_refuses_a_wrong_sized_node_id() -> None:
    with pytest.raises(InvalidRecord, match="local_node_id"):
        CrawlStarted(started_at=T0, local_node_id=b"\x01" * 20)

