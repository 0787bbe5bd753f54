"""The same models, writer and queries on PostgreSQL, and two crawlers writing into one database at once.

CI starts a throwaway server (.ci/postgres) and sets ETHCRAWL_TEST_POSTGRES_URL. Without it the tests skip
locally with that reason; under CI a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ground_truth import load_fixture_json
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.models import DialAttempt, Edge, Node
from ethcrawl.db.nodesjson import export_nodes_json, import_nodes_json
from ethcrawl.db.queries import hello_counts, node_reports
from ethcrawl.db.records import CrawlStarted, DialRecord, EdgeSeen, NodeSeen
from ethcrawl.db.store import begin_crawl, crawl_summary, write_records

URL = os.environ.get("ETHCRAWL_TEST_POSTGRES_URL")
if URL is None and os.environ.get("CI"):
    pytest.fail("CI must run the PostgreSQL tests: ETHCRAWL_TEST_POSTGRES_URL is not set (.ci/postgres)", pytrace=False)
pytestmark = pytest.mark.skipif(URL is None, reason="no PostgreSQL server: set ETHCRAWL_TEST_POSTGRES_URL (.ci/run does)")

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the test server for each test."""
    assert URL is not None
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def node_seen(crawl: int, i: int) -> NodeSeen:
    node_id = i.to_bytes(32, "big")
    return NodeSeen(crawl_id=crawl, node_id=node_id, pubkey=bytes(64), ip="127.0.0.1", udp=30303 + i % 1000, tcp=None, seen_at=T0, source="neighbors")


def test_schema_writer_rows_and_queries(pg_url: str) -> None:
    db = open_database(pg_url)
    assert db.dialect == "postgresql"
    with db.session() as session, session.begin():
        crawl = begin_crawl(session, CrawlStarted(started_at=T0))
        nodes = [node_seen(crawl, i) for i in range(20)]
        edges = [EdgeSeen(crawl_id=crawl, from_id=nodes[0].node_id, to_id=n.node_id, seen_at=T0) for n in nodes[1:]]
        dials = [
            DialRecord(crawl_id=crawl, node_id=n.node_id, attempted_at=T0, direction="outbound", outcome="ok",
                       client_id="geth/v1" if i % 2 else "reth/v1", client_name="geth" if i % 2 else "reth",
                       total_difficulty=2**80, network_id=1)
            for i, n in enumerate(nodes[:10])
        ]
        write_records(session, [*nodes, *edges, *edges, *dials])  # edges twice: still unique
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Node)) == 20
        assert session.scalar(select(func.count()).select_from(Edge)) == 19
        assert session.scalar(select(DialAttempt.total_difficulty).limit(1)) == str(2**80)
        assert {c.value: c.nodes for c in hello_counts(session, "clients")} == {"geth": 5, "reth": 5}
        assert len(node_reports(session)) == 20
        summary = crawl_summary(session, crawl)
        assert (summary.nodes, summary.edges, summary.dials_ok) == (20, 19, 10)
    db.close()
    again = open_database(pg_url)  # an existing schema is accepted
    again.close()


def test_nodes_json_round_trip_on_postgres(pg_url: str) -> None:
    published = load_fixture_json("data", "dnslists", "mainnet.part.nodes.json")
    db = open_database(pg_url)
    with db.session() as session, session.begin():
        stats = import_nodes_json(session, published, now=T0)
    assert stats.imported == len(published) and not stats.rejected
    with db.session() as session:
        exported = export_nodes_json(session)
    db.close()
    assert {k: v["record"] for k, v in exported.items()} == {k: v["record"] for k, v in published.items()}


WRITER = """
import sys, trio
from datetime import datetime, timezone
from ethcrawl.db.engine import open_database
from ethcrawl.db.records import CrawlStarted, EdgeSeen, NodeSeen, CrawlFinished
from ethcrawl.db.writer import begin_crawl, run_writer

url, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)

async def main():
    db = open_database(url)
    crawl = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel(100)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_writer, db, receive)
        async with send:
            ids = [i.to_bytes(32, "big") for i in range(first, first + count)]
            for i, node_id in enumerate(ids):
                await send.send(NodeSeen(crawl_id=crawl, node_id=node_id, pubkey=bytes(64), ip="127.0.0.1",
                                         udp=30303, tcp=None, seen_at=T0, source="neighbors"))
                await send.send(EdgeSeen(crawl_id=crawl, from_id=ids[0], to_id=node_id, seen_at=T0))
            await send.send(CrawlFinished(crawl_id=crawl, ended_at=T0))
    db.close()
    print(crawl)

trio.run(main)
"""


def test_two_crawlers_write_one_database_at_once(pg_url: str, tmp_path: Path) -> None:
    open_database(pg_url).close()  # schema first, as the first crawler to start would
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    # Overlapping node ranges: 0..1999 and 1000..2999.
    procs = [
        subprocess.Popen([sys.executable, str(script), pg_url, str(first), "2000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for first in (0, 1000)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "Error" not in err
    db: Database = open_database(pg_url)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Node)) == 3000
        per_crawl = dict(session.execute(select(Edge.crawl_id, func.count()).group_by(Edge.crawl_id)).all())
    db.close()
    assert sorted(per_crawl.values()) == [2000, 2000]
    assert json.dumps(sorted(int(out) for out, _ in results)) == "[1, 2]"
