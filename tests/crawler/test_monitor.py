"""The monitor's schedule (crawler.monitor.run_schedule) on trio's MockClock, with cycles that write what a
scripted network would answer, so every decision is read back from the database as in a real run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
from ethcrawl.crawler.crawl import CrawlOptions
from ethcrawl.crawler.monitor import CycleResult, MonitorConfig, run_monitor, run_schedule
from ethcrawl.crawler.node import DiscoveryNode
from ethcrawl.crawler.udp import Address, UDPSocket, open_udp_socket
from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.models import Crawl, Node, Sighting
from ethcrawl.db.records import CrawlFinished, CrawlStarted, NodeSeen
from ethcrawl.wire.crypto import generate_private_key, keccak256, pubkey_from_private
from sqlalchemy import func, select
from ethcrawl.db.schedule import Backoff, DueNode
from ethcrawl.db.store import begin_crawl, write_records

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = 3600.0
# Revalidate answered nodes every 10 min; failures wait 12 h, 48 h, 14 d scaled by 1/24: 30 min, 2 h, 14 h.
BACKOFF = Backoff(answered=600.0).scaled(1 / 24)
NETWORK = (1, 2, 3)  # every node a walk finds
ALIVE = {1, 2}  # node 3 never answers


def wall() -> float:
    return T0.timestamp() + trio.current_time()


class ScriptedCycles:
    """Cycles that store, as a crawl would, which nodes answered: a walk checks the whole network, a pass the
    due nodes.  Each cycle takes ``took`` seconds of (mock) time."""

    def __init__(self, db: Database, took: float = 5.0) -> None:
        self.db, self.took = db, took
        self.ran: list[tuple[float, str, tuple[int, ...]]] = []

    def _store(self, kind: str, nodes: Sequence[int]) -> CycleResult:
        now = datetime.fromtimestamp(wall(), tz=UTC)
        with self.db.session() as session, session.begin():
            crawl_id = begin_crawl(session, CrawlStarted(started_at=now, kind=kind))
            write_records(session, [
                *(NodeSeen(
                    crawl_id=crawl_id, node_id=n.to_bytes(32, "big"), pubkey=n.to_bytes(64, "big"), ip="127.0.0.1",
                    udp=30303, tcp=30303, seen_at=now, source="neighbors", responded=n in ALIVE,
                    protocols=("v4",) if n in ALIVE else (),
                ) for n in nodes),
                CrawlFinished(crawl_id=crawl_id, ended_at=now),
            ])
        self.ran.append((trio.current_time(), kind, tuple(nodes)))
        answered = sum(n in ALIVE for n in nodes)
        return CycleResult(kind=kind, crawl_id=crawl_id, nodes=len(nodes), answered=answered, dials=0, dials_ok=0,
                           duration=self.took, stopped=False)

    async def walk(self, stop: trio.Event) -> CycleResult:
        result = self._store("crawl", NETWORK)
        await trio.sleep(self.took)
        return result

    async def revalidate(self, due: Sequence[DueNode], stop: trio.Event) -> CycleResult:
        result = self._store("revalidation", [int.from_bytes(d.node_id, "big") for d in due])
        await trio.sleep(self.took)
        return result


@pytest.fixture
def db() -> Database:
    return open_database(":memory:")


CONFIG = MonitorConfig(interval=HOUR, cycles=3, backoff=BACKOFF, pass_window=60.0)
# Walks every hour; answered nodes 10 min after their last check (a check's time is when its cycle starts);
# node 3 30 min after its first failure (t=0), 2 h after its second (t=1800), but the 1 h walk checks it first.
FIRST_HOUR = [
    (0.0, "crawl", (1, 2, 3)),
    (600.0, "revalidation", (1, 2)),
    (1200.0, "revalidation", (1, 2)),
    (1800.0, "revalidation", (3, 1, 2)),  # longest waiting first
    (2400.0, "revalidation", (1, 2)),
    (3000.0, "revalidation", (1, 2)),
]


async def test_walks_every_interval_and_revalidates_by_the_backoff_in_between(db: Database, autojump_clock: trio.abc.Clock) -> None:
    cycles = ScriptedCycles(db)
    ran = await run_schedule(db, cycles, CONFIG, trio.Event(), wall_clock=wall)
    # Node 3 failed three times in a row by the 1 h walk: 14 h until its next check, past the third walk.
    later = [(3600.0 + 600.0 * i, "revalidation", (1, 2)) for i in range(1, 6)]
    assert cycles.ran == FIRST_HOUR + [(3600.0, "crawl", (1, 2, 3))] + later + [(7200.0, "crawl", (1, 2, 3))]
    assert ran == len(cycles.ran)


async def test_a_restart_resumes_the_schedule_from_the_database(db: Database, autojump_clock: trio.abc.Clock) -> None:
    first = ScriptedCycles(db)
    stop = trio.Event()

    async def stop_after_three(result: CycleResult) -> None:
        if len(first.ran) == 3:
            stop.set()

    await run_schedule(db, first, CONFIG, stop, wall_clock=wall, on_cycle=stop_after_three)
    assert [(t, k) for t, k, _ in first.ran] == [(t, k) for t, k, _ in FIRST_HOUR[:3]]
    await trio.sleep(1500.0 - trio.current_time())  # down for a while
    again = ScriptedCycles(db)
    stop = trio.Event()

    async def stop_at_the_walk(result: CycleResult) -> None:
        if result.kind == "crawl":
            stop.set()

    await run_schedule(db, again, CONFIG, stop, wall_clock=wall, on_cycle=stop_at_the_walk)
    # No walk at once (the last was at 0); node 3's 30 min come first; the walk one interval after the last.
    assert again.ran == FIRST_HOUR[3:] + [(3600.0, "crawl", (1, 2, 3))]


async def test_stop_ends_the_schedule_between_cycles(db: Database, autojump_clock: trio.abc.Clock) -> None:
    cycles = ScriptedCycles(db)
    stop = trio.Event()

    async def stop_later() -> None:
        await trio.sleep(300.0)  # between the pass at 600 and the next, due at 1200
        stop.set()

    async with trio.open_nursery() as nursery:
        async def after(result: CycleResult) -> None:
            if result.kind == "revalidation":
                nursery.start_soon(stop_later)

        config = MonitorConfig(interval=HOUR, backoff=BACKOFF)
        await run_schedule(db, cycles, config, stop, wall_clock=wall, on_cycle=after)
    assert trio.current_time() == 905.0  # the wait ended at once (the pass took 5 s)
    assert [k for _, k, _ in cycles.ran] == ["crawl", "revalidation"]


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        MonitorConfig(interval=0)
    with pytest.raises(ValueError):
        MonitorConfig(cycles=0)
    with pytest.raises(ValueError):
        MonitorConfig(keep=-1)


class DropFirstDatagram:
    """A UDP transport that loses the first datagram it receives, as the network sometimes does."""

    def __init__(self, inner: UDPSocket) -> None:
        self.inner = inner
        self.local_address = inner.local_address
        self.dropped = 0

    async def sendto(self, data: bytes, addr: Address) -> None:
        await self.inner.sendto(data, addr)

    async def recvfrom(self) -> tuple[bytes, Address]:
        data, addr = await self.inner.recvfrom()
        if not self.dropped:
            self.dropped += 1
            data, addr = await self.inner.recvfrom()
        return data, addr


async def test_a_revalidation_ping_lost_once_is_sent_again(tmp_path: Path) -> None:
    """The node's first Ping is lost: the pass pings again and counts it answered (it was counted a failure)."""
    db = open_database(tmp_path / "m.db")
    key = generate_private_key()
    with trio.fail_after(30):
        async with await open_udp_socket("127.0.0.1", 0) as udp, trio.open_nursery() as nursery:
            lossy = DropFirstDatagram(udp)
            peer = DiscoveryNode(key, host="127.0.0.1", transport=lossy, speaks_v5=False)
            port = await nursery.start(peer.run)
            now = datetime.now(UTC)
            with db.session() as session, session.begin():
                walk = begin_crawl(session, CrawlStarted(started_at=now, kind="crawl"))
                write_records(session, [NodeSeen(
                    crawl_id=walk, node_id=peer.node_id, pubkey=pubkey_from_private(key), ip="127.0.0.1", udp=port,
                    tcp=None, seen_at=now - timedelta(hours=1), source="bootnode", responded=True, protocols=("v4",),
                ), CrawlFinished(crawl_id=walk, ended_at=now)])
            stop = trio.Event()

            async def first_only(result: CycleResult) -> None:
                stop.set()

            options = CrawlOptions(seeds=(), listen_host="127.0.0.1", response_timeout=0.3)
            await run_monitor(db, options, MonitorConfig(interval=HOUR), handle_signals=False, stop=stop, on_cycle=first_only)
            nursery.cancel_scope.cancel()
    assert lossy.dropped == 1
    with db.session() as session:
        crawl = session.scalars(select(Crawl).where(Crawl.kind == "revalidation")).one()
        (sighting,) = session.scalars(select(Sighting).where(Sighting.crawl_id == crawl.id)).all()
    assert sighting.responded and sighting.protocols == "v4"
    db.close()


async def test_keep_prunes_old_crawls_after_each_walk(db: Database, autojump_clock: trio.abc.Clock) -> None:
    cycles = ScriptedCycles(db)
    config = MonitorConfig(interval=HOUR, cycles=3, backoff=BACKOFF, keep=1.5 * HOUR)
    await run_schedule(db, cycles, config, trio.Event(), wall_clock=wall)
    with db.session() as session:
        kept = [(c.started_at - T0).total_seconds() for c in session.scalars(select(Crawl).order_by(Crawl.id))]
        sighted = set(session.scalars(select(Sighting.crawl_id)))
        nodes = session.scalar(select(func.count()).select_from(Node))
    # Pruned when the walk at 2 h ended (it takes 5 s): everything that started 1.5 h before, at 1805 s.
    assert kept == [t for t, _, _ in cycles.ran if t >= 1805.0]
    assert kept[0] == 2400.0
    assert len(sighted) == len(kept)
    assert nodes == len(NETWORK)  # the nodes table is never pruned


async def test_stop_inside_a_pass_ends_its_row_and_keeps_the_checks_done(tmp_path: Path) -> None:
    """Two due nodes: one answers, one is silent (a 30 s timeout); stop comes while the pass waits on the silent one."""
    db = open_database(tmp_path / "m.db")
    key = generate_private_key()
    silent_key = generate_private_key()
    with trio.fail_after(30):
        async with await open_udp_socket("127.0.0.1", 0) as udp, trio.open_nursery() as nursery:
            peer = DiscoveryNode(key, host="127.0.0.1", transport=udp, speaks_v5=False)
            port = await nursery.start(peer.run)
            silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
            await silent.bind(("127.0.0.1", 0))
            now = datetime.now(UTC)
            with db.session() as session, session.begin():
                walk = begin_crawl(session, CrawlStarted(started_at=now, kind="crawl"))
                write_records(session, [*(NodeSeen(
                    crawl_id=walk, node_id=keccak256(pubkey_from_private(k)), pubkey=pubkey_from_private(k),
                    ip="127.0.0.1", udp=p, tcp=None, seen_at=now - timedelta(hours=1), source="bootnode",
                    responded=True, protocols=("v4",),
                ) for k, p in ((key, port), (silent_key, silent.getsockname()[1]))),
                    CrawlFinished(crawl_id=walk, ended_at=now)])
            stop = trio.Event()

            async def stop_when_pinged() -> None:
                await silent.recvfrom(2048)  # the pass is waiting on its Pong now
                await trio.sleep(0.5)  # and the other node has answered
                stop.set()

            nursery.start_soon(stop_when_pinged)
            options = CrawlOptions(seeds=(), listen_host="127.0.0.1", response_timeout=30.0)
            ran = await run_monitor(db, options, MonitorConfig(interval=HOUR), handle_signals=False, stop=stop)
            silent.close()
            nursery.cancel_scope.cancel()
    assert ran == 1
    with db.session() as session:
        crawl = session.scalars(select(Crawl).where(Crawl.kind == "revalidation")).one()
        sightings = session.scalars(select(Sighting).where(Sighting.crawl_id == crawl.id)).all()
    assert crawl.ended_at is not None
    assert [(s.node_id, s.responded) for s in sightings] == [(peer.node_id, True)]  # the unfinished check: none
    db.close()
