"""db.schedule: which known nodes are due for a revalidation check, from their sightings alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.records import CrawlStarted, NodeSeen
from ethcrawl.db.schedule import Backoff, due_nodes, next_due
from ethcrawl.db.store import begin_crawl, write_records
from ethcrawl.db.identity import register_identity
from fixture_db import database_url

__all__ = ["database_url"]  # the fixture (SQLite, and PostgreSQL where the test server is set), imported for pytest

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0
BACKOFF = Backoff(answered=600.0)  # the default failure steps: 12 h, 48 h, 14 d


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.close()


def nid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def check(db: Database, at: float, answers: dict[int, bool], kind: str = "revalidation") -> None:
    """One crawl ``at`` seconds after T0 that checked each node: answered or not."""
    when = T0 + timedelta(seconds=at)
    with db.session() as session, session.begin():
        crawl_id = begin_crawl(session, CrawlStarted(started_at=when, kind=kind))
        write_records(session, [
            NodeSeen(
                crawl_id=crawl_id, node_id=nid(n), pubkey=n.to_bytes(64, "big"), ip="127.0.0.1", udp=30303, tcp=30303,
                seen_at=when, source="database", responded=ok, protocols=("v4",) if ok else (),
            )
            for n, ok in answers.items()
        ])


def due(db: Database, at: float) -> dict[int, int]:
    with db.session() as session:
        return {int.from_bytes(d.node_id, "big"): d.failures for d in due_nodes(session, BACKOFF, now=T0 + timedelta(seconds=at))}


def test_backoff_steps_are_node_crawler_style() -> None:
    assert [BACKOFF.delay(f) for f in range(6)] == [600.0, 12 * HOUR, 48 * HOUR, 14 * 24 * HOUR, 14 * 24 * HOUR, 14 * 24 * HOUR]
    assert Backoff().scaled(1 / 3600).delay(2) == pytest.approx(48.0)
    assert Backoff().scaled(1 / 3600).answered == Backoff().answered  # only the failure steps shrink
    with pytest.raises(ValueError):
        Backoff(answered=0)


def test_answered_nodes_come_due_after_the_interval_failing_ones_back_off(db: Database) -> None:
    check(db, 0, {1: True, 2: False}, kind="crawl")
    assert due(db, 599) == {}
    assert due(db, 600) == {1: 0}  # node 2 failed once: 12 h
    check(db, 600, {1: True})
    assert due(db, 12 * HOUR) == {1: 0, 2: 1}
    check(db, 12 * HOUR, {1: False, 2: False})
    # node 1 now failed once (12 h from its last check), node 2 twice (48 h)
    assert due(db, 24 * HOUR - 1) == {}
    assert due(db, 24 * HOUR) == {1: 1}
    assert due(db, 60 * HOUR) == {1: 1, 2: 2}
    check(db, 60 * HOUR, {1: True, 2: False})
    assert due(db, 60 * HOUR + 600) == {1: 0}  # an answer resets the count
    assert due(db, 60 * HOUR + 14 * 24 * HOUR) == {1: 0, 2: 3}


def test_next_due_is_the_earliest_of_the_steps(db: Database) -> None:
    with db.session() as session:
        assert next_due(session, BACKOFF) is None
    check(db, 0, {1: False, 2: False}, kind="crawl")
    check(db, 100, {3: True})
    with db.session() as session:
        assert next_due(session, BACKOFF) == T0 + timedelta(seconds=700)
    check(db, 800, {4: False})  # longest waiting first
    assert list(due(db, 13 * HOUR)) == [1, 2, 3, 4]


def test_our_own_identities_are_never_due(db: Database) -> None:
    check(db, 0, {1: True, 2: True})
    with db.session() as session, session.begin():
        register_identity(session, nid(2), now=T0)  # purges node 2 as a network node
    assert due(db, 600) == {1: 0}
