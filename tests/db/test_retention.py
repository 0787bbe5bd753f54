"""db.retention: --keep prunes old crawls' sightings, edges and dial attempts, never the nodes' current state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ethcrawl.db.engine import open_database
from ethcrawl.db.models import Crawl, DialAttempt, Edge, EnrHistory, Node, Sighting
from ethcrawl.db.records import CrawlFinished, CrawlStarted, DialRecord, EdgeSeen, NodeSeen
from ethcrawl.db.retention import Pruned, prune_before
from ethcrawl.db.store import begin_crawl, write_records
from fixture_db import database_url
from sqlalchemy import func, select

__all__ = ["database_url"]  # the fixture (SQLite, and PostgreSQL where the test server is set), imported for pytest

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def nid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def crawl(session, at: datetime, nodes: list[int], enr_seq: int) -> int:  # type: ignore[no-untyped-def]
    crawl_id = begin_crawl(session, CrawlStarted(started_at=at))
    write_records(session, [
        *(NodeSeen(crawl_id=crawl_id, node_id=nid(n), pubkey=n.to_bytes(64, "big"), ip=f"127.0.0.{enr_seq}", udp=30303,
                   tcp=30303, seen_at=at, source="neighbors", enr=bytes([enr_seq]) * 8, enr_seq=enr_seq) for n in nodes),
        EdgeSeen(crawl_id=crawl_id, from_id=nid(nodes[0]), to_id=nid(nodes[1]), seen_at=at),
        DialRecord(crawl_id=crawl_id, node_id=nid(nodes[1]), attempted_at=at, direction="outbound", outcome="ok"),
        CrawlFinished(crawl_id=crawl_id, ended_at=at + timedelta(minutes=5)),
    ])
    return crawl_id


def test_prune_removes_old_crawls_and_their_rows_only(database_url: str) -> None:
    db = open_database(database_url)
    with db.session() as session, session.begin():
        old = crawl(session, T0, [1, 2], enr_seq=1)
        new = crawl(session, T0 + 100 * DAY, [2, 3], enr_seq=2)
        pruned = prune_before(session, T0 + 10 * DAY)
    assert pruned == Pruned(crawls=1, sightings=2, edges=1, dial_attempts=1)
    with db.session() as session:
        assert session.scalars(select(Crawl.id)).all() == [new]
        for model in (Sighting, Edge, DialAttempt):
            assert set(session.scalars(select(model.crawl_id))) == {new}
        # The nodes table is the network as last seen: node 1, seen only in the pruned crawl, stays.
        nodes = {int.from_bytes(n.node_id, "big"): n for n in session.scalars(select(Node))}
        assert sorted(nodes) == [1, 2, 3]
        assert nodes[2].enr_seq == 2 and nodes[2].ip == "127.0.0.2" and nodes[1].enr_seq == 1
        history = {(int.from_bytes(h.node_id, "big"), h.seq): h.crawl_id for h in session.scalars(select(EnrHistory))}
        assert history == {(1, 1): None, (2, 1): None, (2, 2): new, (3, 2): new}
        assert old != new
    with db.session() as session, session.begin():
        assert prune_before(session, T0 + 10 * DAY) == Pruned(crawls=0, sightings=0, edges=0, dial_attempts=0)
        assert session.scalar(select(func.count()).select_from(Sighting)) == 2
    db.close()
