"""Records in, rows out: upsert rules, ENR kept by seq, unique edges, dial rows, summaries.

Each test gets a fresh in-memory database.  Expected values are computed in
the test from the records themselves, never read back from the code under test.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.errors import InvalidRecord
from ethcrawl.db.models import Crawl, DialAttempt, Edge, EnrHistory, Node, Sighting
from ethcrawl.db.records import (
    DROPPED_PREFIX,
    OUTCOMES,
    SILENT_DIALS,
    CrawlFinished,
    CrawlStarted,
    DialRecord,
    EdgeSeen,
    NodeSeen,
    Record,
)
from ethcrawl.db.store import begin_crawl, crawl_summary, load_known_nodes, write_records

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def nid(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest()


def pub(n: int) -> bytes:
    return hashlib.sha512(n.to_bytes(4, "big")).digest()


def seen(
    crawl_id: int,
    n: int,
    *,
    at: float = 0.0,
    source: str = "neighbors",
    enr: bytes | None = None,
    seq: int | None = None,
    responded: bool = False,
    ip: str | None = "10.0.0.1",
) -> NodeSeen:
    return NodeSeen(
        crawl_id=crawl_id,
        node_id=nid(n),
        pubkey=pub(n),
        ip=ip,
        udp=30303,
        tcp=30303,
        seen_at=T0 + timedelta(seconds=at),
        source=source,
        enr=enr,
        enr_seq=seq,
        responded=responded,
    )


def edge(crawl_id: int, a: int, b: int, at: float = 0.0) -> EdgeSeen:
    return EdgeSeen(crawl_id=crawl_id, from_id=nid(a), to_id=nid(b), seen_at=T0 + timedelta(seconds=at))


def dial(crawl_id: int, n: int, outcome: str = "ok", **fields: Any) -> DialRecord:
    return DialRecord(crawl_id=crawl_id, node_id=nid(n), attempted_at=T0, direction="outbound", outcome=outcome, **fields)


@pytest.fixture
def db() -> Iterator[Database]:
    database = open_database(":memory:")
    yield database
    database.close()


def new_crawl(db: Database) -> int:
    with db.session() as session, session.begin():
        return begin_crawl(session, CrawlStarted(started_at=T0, parameters={"duration": 60}))


def write(db: Database, records: list[Record]) -> int:
    with db.session() as session, session.begin():
        return write_records(session, records)


def node_row(session: Session, n: int) -> Node:
    node = session.get(Node, nid(n))
    assert node is not None
    return node


# ---------------------------------------------------------------- nodes and ENRs


def test_begin_crawl_stores_parameters_as_json(db: Database) -> None:
    crawl_id = new_crawl(db)
    with db.session() as session:
        crawl = session.get(Crawl, crawl_id)
        assert crawl is not None
        assert crawl.parameters == '{"duration": 60}'
        assert crawl.ended_at is None and crawl.started_at == T0


def test_node_upsert_keeps_first_seen_and_moves_last_seen(db: Database) -> None:
    c = new_crawl(db)
    write(db, [seen(c, 1, at=10, ip="10.0.0.1")])
    write(db, [seen(c, 1, at=5, ip="10.0.0.9"), seen(c, 1, at=20, ip="10.0.0.2")])
    write(db, [seen(c, 1, at=30, ip=None)])  # no address: keep the last known one
    with db.session() as session:
        node = node_row(session, 1)
        assert node.first_seen == T0 + timedelta(seconds=5)
        assert node.last_seen == T0 + timedelta(seconds=30)
        assert node.ip == "10.0.0.2"
        assert session.scalar(select(func.count()).select_from(Node)) == 1


def test_enr_replaced_only_by_higher_seq_and_kept_byte_identical(db: Database) -> None:
    c = new_crawl(db)
    # Deliberately not canonical RLP: the database must not re-encode or validate it.
    enr_5 = b"\xf8\x84" + bytes(range(200))[:130]
    write(db, [seen(c, 1)])  # no ENR yet
    write(db, [seen(c, 1, enr=enr_5, seq=5)])
    write(db, [seen(c, 1, enr=b"older", seq=3), seen(c, 1, enr=b"same seq", seq=5)])
    write(db, [seen(c, 1)])  # no ENR in the record: keep ours
    with db.session() as session:
        node = node_row(session, 1)
        assert (node.enr, node.enr_seq) == (enr_5, 5)
    write(db, [seen(c, 1, enr=b"newer-a", seq=9), seen(c, 1, enr=b"newer-b", seq=8)])
    with db.session() as session:
        node = node_row(session, 1)
        assert (node.enr, node.enr_seq) == (b"newer-a", 9)


def test_enr_seq_beyond_int64_saturates_but_bytes_are_kept(db: Database) -> None:
    c = new_crawl(db)
    write(db, [seen(c, 1, enr=b"huge", seq=2**64 - 1)])
    write(db, [seen(c, 1, enr=b"smaller", seq=2**62)])
    with db.session() as session:
        node = node_row(session, 1)
        assert node.enr == b"huge" and node.enr_seq == 2**63 - 1


node_events = st.lists(
    st.tuples(
        st.integers(0, 3),  # which node
        st.integers(0, 1000),  # seconds after T0
        st.one_of(st.none(), st.integers(0, 6)),  # ENR seq, if any
        st.booleans(),  # responded
        st.integers(0, 2),  # which batch
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(events=node_events)
def test_nodes_and_sightings_match_a_model_whatever_the_batching(events: list[tuple[int, int, int | None, bool, int]]) -> None:
    db = open_database(":memory:")
    try:
        c = new_crawl(db)
        records = [
            seen(c, n, at=at, enr=None if seq is None else f"enr-{n}-{seq}-{i}".encode(), seq=seq, responded=responded)
            for i, (n, at, seq, responded, _) in enumerate(events)
        ]
        for batch in range(3):
            chunk: list[Record] = [r for r, event in zip(records, events) if event[4] == batch]
            if chunk:
                write(db, chunk)
        arrival = [r for batch in range(3) for r, event in zip(records, events) if event[4] == batch]
        with db.session() as session:
            for n in {e[0] for e in events}:
                mine = [r for r in arrival if r.node_id == nid(n)]
                node = node_row(session, n)
                assert node.first_seen == min(r.seen_at for r in mine)
                assert node.last_seen == max(r.seen_at for r in mine)
                with_enr = [r for r in mine if r.enr_seq is not None]
                if with_enr:
                    top = max(r.enr_seq for r in with_enr if r.enr_seq is not None)
                    first_top = next(r for r in with_enr if r.enr_seq == top)
                    assert (node.enr, node.enr_seq) == (first_top.enr, top)
                else:
                    assert node.enr is None and node.enr_seq is None
                sighting = session.get(Sighting, (c, nid(n)))
                assert sighting is not None
                assert sighting.first_seen == min(r.seen_at for r in mine)
                assert sighting.responded == any(r.responded for r in mine)
                assert sighting.enr_received == bool(with_enr)
    finally:
        db.close()


def test_sighting_source_is_from_the_earliest_record(db: Database) -> None:
    c = new_crawl(db)
    write(db, [seen(c, 1, at=50, source="neighbors")])
    write(db, [seen(c, 1, at=1, source="bootnode"), seen(c, 1, at=99, source="inbound")])
    with db.session() as session:
        sighting = session.get(Sighting, (c, nid(1)))
        assert sighting is not None and sighting.source == "bootnode"


# ---------------------------------------------------------------- edges and dials


def test_edges_unique_per_crawl(db: Database) -> None:
    first, second = new_crawl(db), new_crawl(db)
    nodes: list[Record] = [seen(c, n) for c in (first, second) for n in (1, 2, 3)]
    write(db, nodes)
    write(db, [edge(first, 1, 2, at=5), edge(first, 1, 2, at=3), edge(first, 2, 1), edge(first, 1, 3)])
    write(db, [edge(first, 1, 2, at=1), edge(second, 1, 2)])
    with db.session() as session:
        rows = session.execute(select(Edge.crawl_id, Edge.from_node, Edge.to_node, Edge.first_seen)).all()
    triples = Counter((c, a, b) for c, a, b, _ in rows)
    assert set(triples) == {
        (first, nid(1), nid(2)),
        (first, nid(2), nid(1)),
        (first, nid(1), nid(3)),
        (second, nid(1), nid(2)),
    }
    assert set(triples.values()) == {1}
    # Within one batch the earliest wins; a later batch never rewrites an edge.
    assert {(c, a, b): t for c, a, b, t in rows}[(first, nid(1), nid(2))] == T0 + timedelta(seconds=3)


def test_dial_attempt_keeps_every_field(db: Database) -> None:
    c = new_crawl(db)
    td = 58_750_003_716_598_352_816_469  # mainnet terminal total difficulty: more than 64 bits
    record = dial(
        c,
        1,
        ip="192.0.2.7",
        tcp_port=30303,
        client_id="Geth/v1.14.3-stable-ab48ba42/linux-amd64/go1.22.3",
        client_name="Geth",
        client_version="v1.14.3-stable-ab48ba42",
        client_os="linux",
        client_arch="amd64",
        client_runtime="go1.22.3",
        client_user_data=None,
        capabilities="eth/68,snap/1",
        p2p_version=5,
        eth_version=68,
        network_id=1,
        genesis_hash=bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"),
        fork_hash=bytes.fromhex("9f3d2254"),
        fork_next=0,
        head_hash=b"\x11" * 32,
        total_difficulty=td,
        head_number=19_800_000,
        synced=True,
    )
    write(db, [record, dial(c, 2, "too-many-peers", disconnect_reason=4, error="too many peers"), dial(c, 3, "timeout")])
    with db.session() as session:
        rows = {row.node_id: row for row in session.scalars(select(DialAttempt))}
    ok = rows[nid(1)]
    for name in (
        "ip", "tcp_port", "client_id", "client_name", "client_version", "client_os", "client_arch",
        "client_runtime", "client_user_data", "capabilities", "p2p_version", "eth_version", "network_id",
        "genesis_hash", "fork_hash", "fork_next", "head_hash", "head_number", "synced", "direction", "outcome",
    ):
        assert getattr(ok, name) == getattr(record, name), name
    assert ok.total_difficulty == str(td) and int(ok.total_difficulty) == td
    assert ok.attempted_at == T0
    assert (rows[nid(2)].outcome, rows[nid(2)].disconnect_reason) == ("too-many-peers", 4)
    assert rows[nid(3)].synced is None and rows[nid(3)].client_name is None


def test_peer_numbers_beyond_int64_are_dropped_not_fatal(db: Database) -> None:
    c = new_crawl(db)
    write(db, [dial(c, 1, network_id=2**64 - 1, fork_next=2**64 - 1, head_number=5)])
    with db.session() as session:
        row = session.scalars(select(DialAttempt)).one()
        assert (row.network_id, row.fork_next, row.head_number) == (None, None, 5)


def test_inbound_dial_from_unknown_node_is_stored(db: Database) -> None:
    c = new_crawl(db)
    write(db, [DialRecord(crawl_id=c, node_id=nid(77), attempted_at=T0, direction="inbound", outcome="not-eth")])
    with db.session() as session:
        assert session.scalars(select(DialAttempt.direction)).one() == "inbound"


def test_unknown_record_type_is_invalid(db: Database) -> None:
    with pytest.raises(InvalidRecord, match="CrawlStarted"):
        write(db, [CrawlStarted(started_at=T0)])  # type: ignore[list-item]


# ---------------------------------------------------------------- summaries


def test_crawl_summary_matches_independent_counts(db: Database) -> None:
    rng = random.Random(1234)
    c, other = new_crawl(db), new_crawl(db)
    clients = ["Geth", "Nethermind", "besu", "erigon", "reth"]
    records: list[Record] = []
    for n in range(60):
        has_enr = rng.random() < 0.5
        records.append(seen(c, n, at=n, responded=rng.random() < 0.7, enr=b"e" if has_enr else None, seq=1 if has_enr else None))
    records += [seen(other, n) for n in range(10)]
    edges_sent = [edge(c, rng.randrange(60), rng.randrange(60)) for _ in range(300)]
    records += edges_sent + [edge(other, 1, 2)]
    dials_sent: list[DialRecord] = []
    for n in rng.sample(range(60), 40):
        for _ in range(rng.randint(1, 2)):  # some nodes dialed twice
            outcome = rng.choice(OUTCOMES)
            # A Hello arrives on every ok attempt and on some that end otherwise (too-many-peers, not-eth, ...).
            got_hello = outcome == "ok" or rng.random() < 0.4
            got_status = outcome == "ok" or (got_hello and rng.random() < 0.2)
            name = rng.choice(clients).lower() if got_hello else None
            dials_sent.append(
                dial(
                    c,
                    n,
                    outcome,
                    client_id=f"{name}/v1" if got_hello else None,
                    client_name=name,
                    network_id=rng.choice([1, 1, 1, 11155111]) if got_status else None,
                )
            )
    records += dials_sent + [dial(other, 1)]
    rng.shuffle(records)  # the writer may get them in any order across record types
    write(db, [r for r in records if isinstance(r, NodeSeen)])
    write(db, [r for r in records if not isinstance(r, NodeSeen)])
    write(db, [CrawlFinished(crawl_id=c, ended_at=T0 + timedelta(minutes=5))])

    mine = [r for r in records if isinstance(r, NodeSeen) and r.crawl_id == c]
    outcome_counts = Counter(d.outcome for d in dials_sent)
    # The README's definitions, by hand: each node's latest attempt (in write order) that received a Hello / a Status.
    written = [r for r in records if isinstance(r, DialRecord) and r.crawl_id == c]
    last_hello = {d.node_id: d for d in written if d.client_id is not None}
    last_status = {d.node_id: d for d in written if d.network_id is not None}
    client_nodes = Counter(d.client_name for d in last_hello.values())
    refused_nodes = Counter(d.client_name for d in last_hello.values() if d.outcome != "ok")
    network_nodes = Counter({1: "mainnet", 11155111: "sepolia"}[d.network_id] for d in last_status.values() if d.network_id)

    with db.session() as session:
        summary = crawl_summary(session, c)
        crawl = session.get(Crawl, c)
    assert summary.nodes == 60
    assert summary.responded == sum(r.responded for r in mine)
    assert summary.with_enr == sum(r.enr is not None for r in mine)
    assert summary.edges == len({(e.from_id, e.to_id) for e in edges_sent if e.from_id != e.to_id})
    assert summary.dials == len(dials_sent)
    assert summary.dials_ok == outcome_counts["ok"]
    assert summary.dials_failed == len(dials_sent) - outcome_counts["ok"]
    assert dict(summary.outcomes) == dict(outcome_counts)
    assert [count for _, count in summary.outcomes] == sorted(outcome_counts.values(), reverse=True)
    assert {h.value: (h.nodes, h.refused) for h in summary.clients} == {k: (n, refused_nodes[k]) for k, n in client_nodes.items()}
    assert refused_nodes, "the fixture should hold nodes that sent a Hello and then refused"
    assert {n.network: n.nodes for n in summary.networks} == dict(network_nodes)
    assert summary.ended_at == T0 + timedelta(minutes=5)
    # The crawl row's counts, written by CrawlFinished, agree.
    assert crawl is not None
    assert (crawl.node_count, crawl.edge_count, crawl.dials_ok, crawl.dials_failed) == (
        summary.nodes,
        summary.edges,
        summary.dials_ok,
        summary.dials_failed,
    )


def test_summary_reads_the_silent_dials_and_drops_from_the_crawl_stats(db: Database) -> None:
    """Counters no other table holds come from the crawl row's stats; a crawl that stored none counts none."""
    counted, bare = new_crawl(db), new_crawl(db)
    stats = {SILENT_DIALS: 17, DROPPED_PREFIX + "source": 5, "relay_rejected": 2}
    write(db, [CrawlFinished(crawl_id=counted, ended_at=T0, stats=stats), CrawlFinished(crawl_id=bare, ended_at=T0)])
    with db.session() as session:
        summary, nothing = crawl_summary(session, counted), crawl_summary(session, bare)
    assert (summary.silent_dials, summary.dropped) == (17, (("source", 5),))
    assert (nothing.silent_dials, nothing.dropped) == (0, ())


def test_summary_of_unknown_crawl_is_an_error(db: Database) -> None:
    with db.session() as session, pytest.raises(InvalidRecord, match="no crawl with id 42"):
        crawl_summary(session, 42)


def test_load_known_nodes_most_recent_first(db: Database) -> None:
    c = new_crawl(db)
    write(db, [seen(c, 1, at=10), seen(c, 2, at=30, enr=b"enr-2", seq=4), seen(c, 3, at=20)])
    with db.session() as session:
        known = load_known_nodes(session)
        top = load_known_nodes(session, limit=1)
    assert [k.node_id for k in known] == [nid(2), nid(3), nid(1)]
    assert [k.node_id for k in top] == [nid(2)]
    assert (known[0].pubkey, known[0].enr, known[0].enr_seq, known[0].udp_port) == (pub(2), b"enr-2", 4, 30303)
    assert known[0].last_seen == T0 + timedelta(seconds=30)


# ---------------------------------------------------------------- record validation


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: NodeSeen(crawl_id=1, node_id=b"\x01" * 31, pubkey=pub(1), ip=None, udp=None, tcp=None, seen_at=T0, source="bootnode"), "node_id must be 32 bytes"),
        (lambda: NodeSeen(crawl_id=1, node_id=nid(1), pubkey=b"\x02" * 65, ip=None, udp=None, tcp=None, seen_at=T0, source="bootnode"), "pubkey must be 64 bytes"),
        (lambda: NodeSeen(crawl_id=1, node_id=nid(1), pubkey=pub(1), ip=None, udp=70000, tcp=None, seen_at=T0, source="bootnode"), "not a port"),
        (lambda: NodeSeen(crawl_id=1, node_id=nid(1), pubkey=pub(1), ip=None, udp=None, tcp=None, seen_at=datetime(2024, 1, 1), source="bootnode"), "timezone-aware"),
        (lambda: NodeSeen(crawl_id=1, node_id=nid(1), pubkey=pub(1), ip=None, udp=None, tcp=None, seen_at=T0, source="gossip"), "source 'gossip'"),
        (lambda: NodeSeen(crawl_id=1, node_id=nid(1), pubkey=pub(1), ip=None, udp=None, tcp=None, seen_at=T0, source="bootnode", enr=b"x"), "both set or both None"),
        (lambda: NodeSeen(crawl_id=1, node_id=nid(1), pubkey=pub(1), ip=None, udp=None, tcp=None, seen_at=T0, source="bootnode", enr=b"x", enr_seq=-1), "negative"),
        (lambda: EdgeSeen(crawl_id=1, from_id=nid(1), to_id=b"", seen_at=T0), "to_id must be 32 bytes"),
        (lambda: dial(1, 1, "exploded"), "outcome 'exploded'"),
        (lambda: DialRecord(crawl_id=1, node_id=nid(1), attempted_at=T0, direction="sideways", outcome="ok"), "direction"),
        (lambda: dial(1, 1, fork_hash=b"\x00" * 5), "fork_hash must be 4 bytes"),
        (lambda: dial(1, 1, genesis_hash=b"\x00" * 31), "genesis_hash must be 32 bytes"),
        (lambda: dial(1, 1, total_difficulty=-1), "total_difficulty"),
        (lambda: CrawlStarted(started_at=datetime(2024, 1, 1)), "timezone-aware"),
        (lambda: CrawlFinished(crawl_id=1, ended_at=datetime(2024, 1, 1)), "timezone-aware"),
    ],
)
def test_records_refuse_what_the_database_cannot_hold(build: Any, message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        build()


def test_unserialisable_parameters_are_invalid(db: Database) -> None:
    with db.session() as session, pytest.raises(InvalidRecord, match="JSON"):
        begin_crawl(session, CrawlStarted(started_at=T0, parameters={"bad": float("nan")}))


def test_parameters_that_are_not_json_types_become_text(db: Database) -> None:
    with db.session() as session, session.begin():
        crawl_id = begin_crawl(session, CrawlStarted(started_at=T0, parameters={"db": PurePosixPath("/tmp/c.db")}))
    with db.session() as session:
        assert session.scalars(select(Crawl.parameters).where(Crawl.id == crawl_id)).one() == '{"db": "/tmp/c.db"}'


# ---------------------------------------------------------------- schema v4: the node as it was in each crawl


def test_each_sighting_keeps_the_address_and_record_version_of_its_crawl(db: Database) -> None:
    first, second = new_crawl(db), new_crawl(db)
    write(db, [seen(first, 1, ip="10.0.0.1", enr=b"v3", seq=3), seen(first, 1, at=5, ip="10.0.0.2")])
    write(db, [seen(first, 1, at=9, ip=None), seen(first, 1, at=9, ip=None, enr=b"v2", seq=2)])  # no address, older seq
    write(db, [seen(second, 1, at=60, ip="192.0.2.7", enr=b"v4", seq=4)])
    with db.session() as session:
        one, two = session.get(Sighting, (first, nid(1))), session.get(Sighting, (second, nid(1)))
        assert one is not None and two is not None
        assert (one.ip, one.udp_port, one.tcp_port, one.enr_seq) == ("10.0.0.2", 30303, 30303, 3)
        assert (two.ip, two.enr_seq) == ("192.0.2.7", 4)
        assert node_row(session, 1).ip == "192.0.2.7"


def test_a_sighting_without_any_address_or_record_stores_nulls(db: Database) -> None:
    c = new_crawl(db)
    write(db, [seen(c, 1, ip=None)])
    with db.session() as session:
        sighting = session.get(Sighting, (c, nid(1)))
        assert sighting is not None and (sighting.ip, sighting.udp_port, sighting.enr_seq) == (None, None, None)


def test_every_enr_version_is_kept_once_with_its_first_arrival(db: Database) -> None:
    first, second = new_crawl(db), new_crawl(db)
    write(db, [seen(first, 1, at=1, enr=b"seq5", seq=5)])
    write(db, [seen(first, 1, at=2, enr=b"seq5 again", seq=5), seen(second, 1, at=70, enr=b"seq9", seq=9)])
    write(db, [seen(second, 1, at=80, enr=b"seq8", seq=8), seen(second, 2, at=81)])  # node 2: no record
    with db.session() as session:
        rows = session.execute(
            select(EnrHistory.node_id, EnrHistory.seq, EnrHistory.enr, EnrHistory.first_seen, EnrHistory.crawl_id)
            .order_by(EnrHistory.seq)
        ).all()
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    assert [tuple(r) for r in rows] == [
        (nid(1), 5, b"seq5", at(1), first), (nid(1), 8, b"seq8", at(80), second), (nid(1), 9, b"seq9", at(70), second),
    ]


def test_a_crawl_row_records_its_kind(db: Database) -> None:
    with db.session() as session, session.begin():
        walk = begin_crawl(session, CrawlStarted(started_at=T0))
        pass_ = begin_crawl(session, CrawlStarted(started_at=T0, kind="revalidation"))
    with db.session() as session:
        assert [session.get(Crawl, c).kind for c in (walk, pass_)] == ["crawl", "revalidation"]  # type: ignore[union-attr]
    with pytest.raises(InvalidRecord, match="kind"):
        CrawlStarted(started_at=T0, kind="census")
