"""The writer task: batching, interval flushes, close and cancellation flushes, bad records.

Time runs on trio's MockClock (``autojump_clock``); nothing sleeps for real.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio
import trio.testing
from sqlalchemy import func, select

from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.models import Crawl, DialAttempt, Edge, Node, Sighting
from ethcrawl.db.records import CrawlFinished, CrawlStarted, DialRecord, EdgeSeen, NodeSeen
from ethcrawl.db.writer import Writer, WriterStats, begin_crawl, run_writer

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def nid(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest()


def seen(crawl_id: int, n: int, at: float = 0.0) -> NodeSeen:
    return NodeSeen(
        crawl_id=crawl_id,
        node_id=nid(n),
        pubkey=hashlib.sha512(n.to_bytes(4, "big")).digest(),
        ip="10.0.0.1",
        udp=30303,
        tcp=30303,
        seen_at=T0 + timedelta(seconds=at),
        source="neighbors",
    )


def edge(crawl_id: int, a: int, b: int) -> EdgeSeen:
    return EdgeSeen(crawl_id=crawl_id, from_id=nid(a), to_id=nid(b), seen_at=T0)


async def wait_batches(writer: Writer, batches: int) -> None:
    """Let the writer's worker thread finish; bounded in real time, the mock clock stands still."""
    give_up = time.monotonic() + 5.0
    while writer.statistics().batches < batches:
        assert time.monotonic() < give_up, f"writer stuck at {writer.statistics()}"
        await trio.sleep(0)


def count(db: Database, model: type) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def db() -> Iterator[Database]:
    database = open_database(":memory:")
    yield database
    database.close()


async def test_begin_crawl_returns_fresh_ids(db: Database) -> None:
    first = await begin_crawl(db, CrawlStarted(started_at=T0, parameters={"seeds": 3}))
    second = await begin_crawl(db, CrawlStarted(started_at=T0))
    assert second == first + 1
    assert count(db, Crawl) == 2


async def test_full_batches_are_written_without_waiting(db: Database, mock_clock: trio.testing.MockClock) -> None:
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel[object](100)
    async with trio.open_nursery() as nursery:
        writer: Writer = await nursery.start(lambda **kw: run_writer(db, receive, batch_size=4, flush_interval=60.0, **kw))
        start = trio.current_time()
        async with send:
            for n in range(8):
                await send.send(seen(crawl_id, n))
            await wait_batches(writer, 2)
            # The mock clock never moved: full batches do not wait for the interval.
            assert trio.current_time() == start
            assert count(db, Node) == 8
            await send.send(seen(crawl_id, 8))
    stats = writer.statistics()
    assert stats == WriterStats(
        records_received=9, rows_written=18, batches=3, records_rejected=0, pending=0, last_flush=stats.last_flush
    )
    assert count(db, Node) == 9 and count(db, Sighting) == 9


class _StepCounter(trio.abc.Instrument):
    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.name in task.name:
            self.steps += 1


async def test_queued_records_are_taken_in_one_step_not_one_scheduler_trip_each(db: Database) -> None:
    """Under a busy event loop every checkpoint waits for all runnable tasks: taking one item per trip, the
    writer fell behind a 30,000-record crawl and senders waited 5-10 s for room in the channel."""
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel[object](1000)
    for n in range(300):
        send.send_nowait(seen(crawl_id, n))
    counter = _StepCounter("<lambda>")  # the writer's task: the one started below
    trio.lowlevel.add_instrument(counter)
    try:
        async with trio.open_nursery() as nursery:
            writer: Writer = await nursery.start(
                lambda **kw: run_writer(db, receive, batch_size=500, flush_interval=60.0, **kw)
            )
            await wait_received(writer, 300)
            steps = counter.steps
            send.close()
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert steps <= 5, steps  # 300 before
    assert count(db, Node) == 300


async def wait_received(writer: Writer, records: int) -> None:
    give_up = time.monotonic() + 5.0
    while writer.statistics().records_received < records:
        assert time.monotonic() < give_up, f"writer stuck at {writer.statistics()}"
        await trio.sleep(0)


async def test_interval_flush(db: Database, mock_clock: trio.testing.MockClock) -> None:
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel[object](10)
    async with trio.open_nursery() as nursery:
        writer: Writer = await nursery.start(lambda **kw: run_writer(db, receive, batch_size=500, flush_interval=0.5, **kw))
        async with send:
            await send.send(seen(crawl_id, 1))
            await trio.testing.wait_all_tasks_blocked()  # taken at t=0: due at t=0.5
            mock_clock.jump(0.3)
            await send.send(seen(crawl_id, 2))  # the interval counts from the oldest pending record
            mock_clock.jump(0.15)
            await trio.testing.wait_all_tasks_blocked()
            assert count(db, Node) == 0 and writer.statistics().pending == 2
            mock_clock.jump(0.1)
            await wait_batches(writer, 1)
            assert count(db, Node) == 2 and writer.statistics().pending == 0
            flushed_at = writer.statistics().last_flush
            assert flushed_at is not None and flushed_at >= 0.5
            # An idle writer does not spin out empty batches.
            mock_clock.jump(10)
            await trio.testing.wait_all_tasks_blocked()
            assert writer.statistics().batches == 1


async def test_lists_of_records_are_accepted_and_order_is_kept(db: Database) -> None:
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel[object](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_writer, db, receive)
        async with send:
            await send.send([seen(crawl_id, 1), seen(crawl_id, 2), edge(crawl_id, 1, 2)])
            await send.send((edge(crawl_id, 2, 1), edge(crawl_id, 1, 2)))
            await send.send(CrawlFinished(crawl_id=crawl_id, ended_at=T0 + timedelta(minutes=1)))
    with db.session() as session:
        crawl = session.get(Crawl, crawl_id)
        assert crawl is not None
        assert (crawl.node_count, crawl.edge_count, crawl.ended_at) == (2, 2, T0 + timedelta(minutes=1))
    assert count(db, Edge) == 2


async def test_cancellation_flushes_pending_and_buffered_records(db: Database, mock_clock: trio.testing.MockClock) -> None:
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel[object](50)
    with trio.CancelScope() as ctrl_c:
        async with trio.open_nursery() as nursery:
            writer: Writer = await nursery.start(
                lambda **kw: run_writer(db, receive, batch_size=1000, flush_interval=3600.0, **kw)
            )
            for n in range(10):
                await send.send(seen(crawl_id, n))
            await trio.testing.wait_all_tasks_blocked()  # the writer has taken these: pending, not written
            assert writer.statistics().pending == 10 and count(db, Node) == 0
            for n in range(10, 30):
                send.send_nowait(seen(crawl_id, n))  # still in the channel's buffer
            ctrl_c.cancel()
    assert ctrl_c.cancelled_caught
    assert count(db, Node) == 30 and count(db, Sighting) == 30
    stats = writer.statistics()
    assert (stats.records_received, stats.pending) == (30, 0)
    # The writer closed its end: a late sender learns the writer is gone.
    with pytest.raises(trio.BrokenResourceError):
        send.send_nowait(seen(crawl_id, 99))


async def test_refused_batch_is_retried_record_by_record(db: Database) -> None:
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel[object](10)
    async with trio.open_nursery() as nursery:
        writer: Writer = await nursery.start(run_writer, db, receive)
        async with send:
            # Node 3 never recorded: its edge breaks a foreign key; everything else must land.
            await send.send([seen(crawl_id, 1), seen(crawl_id, 2), edge(crawl_id, 1, 3), edge(crawl_id, 1, 2)])
    assert writer.statistics().records_rejected == 1
    assert count(db, Node) == 2
    with db.session() as session:
        assert session.execute(select(Edge.from_node, Edge.to_node)).all() == [(nid(1), nid(2))]


async def test_non_record_is_dropped_and_writer_keeps_going(db: Database) -> None:
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    send, receive = trio.open_memory_channel[object](10)
    async with trio.open_nursery() as nursery:
        writer: Writer = await nursery.start(run_writer, db, receive)
        async with send:
            await send.send("not a record")
            await send.send(
                DialRecord(crawl_id=crawl_id, node_id=nid(5), attempted_at=T0, direction="outbound", outcome="refused")
            )
    assert writer.statistics().records_rejected == 1
    assert count(db, DialAttempt) == 1


async def test_statistics_is_a_frozen_record(db: Database) -> None:
    writer = Writer(db)
    stats = writer.statistics()
    assert stats == WriterStats(records_received=0, rows_written=0, batches=0, records_rejected=0, pending=0, last_flush=None)
    with pytest.raises(AttributeError):
        stats.batches = 3  # type: ignore[misc]


@pytest.mark.parametrize(("batch_size", "flush_interval"), [(0, 0.5), (10, 0.0), (10, -1.0)])
def test_writer_rejects_bad_settings(db: Database, batch_size: int, flush_interval: float) -> None:
    with pytest.raises(ValueError):
        Writer(db, batch_size=batch_size, flush_interval=flush_interval)


async def test_cleanup_starts_no_batch_after_its_deadline(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
    ticks = iter(range(0, 1000, 10))  # each look at the wall clock finds 10 s gone
    writer = Writer(db, batch_size=2, flush_interval=3600.0, cleanup_timeout=15.0, monotonic=lambda: float(next(ticks)))
    send, receive = trio.open_memory_channel[object](10)
    for n in range(6):
        send.send_nowait(seen(crawl_id, n))
    with trio.CancelScope() as scope:
        scope.cancel()  # Ctrl-C before the writer even ran: all six are still in the channel
        await writer.run(receive)
    stats = writer.statistics()
    # Deadline at 15 s: the batch started at 10 s finishes, the one due at 20 s never starts.
    assert (stats.batches, stats.pending, stats.records_received) == (1, 4, 6)
    assert count(db, Node) == 2
    assert "gave up final flush pending=4" in caplog.text


async def test_file_database_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    db = open_database(path)
    try:
        crawl_id = await begin_crawl(db, CrawlStarted(started_at=T0))
        send, receive = trio.open_memory_channel[object](10)
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda **kw: run_writer(db, receive, batch_size=3, **kw))
            async with send:
                for n in range(10):
                    await send.send(seen(crawl_id, n))
                await send.send([edge(crawl_id, n, n + 1) for n in range(9)])
                await send.send(CrawlFinished(crawl_id=crawl_id, ended_at=T0 + timedelta(seconds=9)))
    finally:
        db.close()
    reopened = open_database(path, create=False)
    try:
        with reopened.session() as session:
            crawl = session.get(Crawl, crawl_id)
            assert crawl is not None and (crawl.node_count, crawl.edge_count) == (10, 9)
    finally:
        reopened.close()
