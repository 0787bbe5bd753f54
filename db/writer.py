"""The one database writer task.

The crawler's tasks send records (or lists of records) on a bounded memory
channel; this task collects them and writes a batch when it holds
``batch_size`` records, when the oldest pending record is ``flush_interval``
old, and when the channel closes.  Each batch is one transaction, run in a
worker thread (``trio.to_thread.run_sync``) behind a ``CapacityLimiter(1)`` so
the event loop never blocks on SQL and writes never overlap.

Nothing learned is lost on cancellation (``--duration``, Ctrl-C): the cleanup
drains what is already in the channel and writes it under a shielded scope,
starting no new batch after its own (real-time) deadline.  A batch the
database refuses for integrity reasons (e.g. an edge to a node never
recorded) is retried record by record, so one bad record costs only itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import trio
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from .engine import Database, translate_error
from .records import CrawlFinished, CrawlStarted, DialRecord, EdgeSeen, NodeSeen, Record
from .store import begin_crawl as _begin_crawl
from .store import write_records

__all__ = [
    "BATCH_SIZE",
    "FLUSH_INTERVAL",
    "CLEANUP_TIMEOUT",
    "WriterStats",
    "Writer",
    "run_writer",
    "begin_crawl",
    "in_session",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_SIZE = 500  # records per transaction: big enough to amortise the commit, small enough to stay responsive
FLUSH_INTERVAL = 0.5  # s, the longest a received record waits before it is written
CLEANUP_TIMEOUT = 30.0  # s of real time for the last flush after cancellation, so Ctrl-C cannot hang forever


_RECORD_TYPES = (NodeSeen, EdgeSeen, DialRecord, CrawlFinished)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStats:
    records_received: int
    rows_written: int
    batches: int
    records_rejected: int  # not records, or refused by the database one by one after their batch failed
    pending: int
    last_flush: float | None  # trio.current_time() of the last successful flush


class Writer:
    """Owns the write transactions for one database.  Use ``run_writer`` to start one."""

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = BATCH_SIZE,
        flush_interval: float = FLUSH_INTERVAL,
        cleanup_timeout: float = CLEANUP_TIMEOUT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        self.db = db
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.cleanup_timeout = cleanup_timeout
        # The cleanup deadline is about real database slowness, so it uses the wall clock,
        # not trio's (a MockClock would leap over it while a worker thread writes).
        self._monotonic = monotonic
        self._limiter = trio.CapacityLimiter(1)
        self._pending: list[Record] = []
        self._received = 0
        self._rows = 0
        self._batches = 0
        self._rejected = 0
        self._last_flush: float | None = None

    def statistics(self) -> WriterStats:
        return WriterStats(
            records_received=self._received,
            rows_written=self._rows,
            batches=self._batches,
            records_rejected=self._rejected,
            pending=len(self._pending),
            last_flush=self._last_flush,
        )

    def _take(self, item: object) -> None:
        for record in item if isinstance(item, (list, tuple)) else (item,):
            self._received += 1
            if isinstance(record, _RECORD_TYPES):
                self._pending.append(record)
            else:
                # Our own bug; dropping it beats killing the writer and losing the crawl.
                self._rejected += 1
                log.error("db writer got a non-record type=%s", type(record).__name__)

    async def run(
        self,
        receive_channel: trio.MemoryReceiveChannel[object],
        *,
        task_status: trio.TaskStatus[Writer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started(self)
        try:
            await self._loop(receive_channel)
        finally:
            # Drain before closing: closing would throw away what senders already handed over.
            self._take_queued(receive_channel)
            receive_channel.close()
            with trio.CancelScope(shield=True):
                await self.flush(deadline=self._monotonic() + self.cleanup_timeout)
            if self._pending:
                log.warning(
                    "db writer gave up final flush pending=%d timeout=%s", len(self._pending), self.cleanup_timeout
                )

    async def _loop(self, receive_channel: trio.MemoryReceiveChannel[object]) -> None:
        deadline = math.inf  # when the oldest pending record must be written
        while True:
            with trio.move_on_at(deadline):
                try:
                    item = await receive_channel.receive()
                except trio.EndOfChannel:
                    return  # the finally clause writes the rest
                if not self._pending:
                    deadline = trio.current_time() + self.flush_interval
                self._take(item)
                self._take_queued(receive_channel, self.batch_size)
                if len(self._pending) < self.batch_size:
                    continue
            await self.flush()
            deadline = math.inf

    def _take_queued(self, receive_channel: trio.MemoryReceiveChannel[object], up_to: float = math.inf) -> None:
        """Take what senders already handed over (until ``up_to`` records are pending), without a trip through the
        scheduler per item; so a cancelled crawl keeps it too.

        A receive is a checkpoint, and under a busy event loop each checkpoint waits for every runnable
        task to run once: taking one item per trip, the writer fell behind a 30,000-record crawl, the
        channel stayed full, and every sender (visits, dials) waited 5-10 s to hand over a record.
        """
        while len(self._pending) < up_to:
            try:
                self._take(receive_channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return  # an ended channel shows at the next receive

    async def flush(self, *, deadline: float = math.inf) -> None:
        """Write everything pending, in batches of ``batch_size``; start no batch after ``deadline``.

        A batch, once started, always finishes (its thread cannot be interrupted
        and the database's busy timeout bounds it), so stored state and our
        counts never disagree.
        """
        while self._pending and self._monotonic() < deadline:
            batch = self._pending[: self.batch_size]
            rows, rejected = await trio.to_thread.run_sync(self._write_batch, batch, limiter=self._limiter)
            del self._pending[: len(batch)]
            self._rows += rows
            self._rejected += rejected
            self._batches += 1
            self._last_flush = trio.current_time()
            log.debug("db batch written records=%d rows=%d rejected=%d", len(batch), rows, rejected)

    def _write_batch(self, batch: Sequence[Record]) -> tuple[int, int]:
        """In a worker thread: one transaction for the batch, or one per record if it is refused."""
        try:
            with self.db.session() as session, session.begin():
                return write_records(session, batch), 0
        except sa_exc.IntegrityError as exc:
            log.info("db batch refused, retrying one by one records=%d err=%s", len(batch), exc.orig)
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc, "crawl database") from exc
        rows = rejected = 0
        for record in batch:
            try:
                with self.db.session() as session, session.begin():
                    rows += write_records(session, [record])
            except sa_exc.IntegrityError as exc:
                rejected += 1
                log.warning("db record rejected record=%s err=%s", type(record).__name__, exc.orig)
            except sa_exc.SQLAlchemyError as exc:
                raise translate_error(exc, "crawl database") from exc
        return rows, rejected


async def run_writer(
    db: Database,
    receive_channel: trio.MemoryReceiveChannel[object],
    *,
    batch_size: int = BATCH_SIZE,
    flush_interval: float = FLUSH_INTERVAL,
    task_status: trio.TaskStatus[Writer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Write every record received until the channel closes or we are cancelled.

    ``writer = await nursery.start(run_writer, db, receive)`` hands back the
    ``Writer``, for ``writer.statistics()``.
    """
    writer = Writer(db, batch_size=batch_size, flush_interval=flush_interval)
    await writer.run(receive_channel, task_status=task_status)


async def begin_crawl(db: Database, record: CrawlStarted) -> int:
    """Insert the crawl row (in a thread) and return its id for the crawler's records."""

    def _begin() -> int:
        try:
            with db.session() as session, session.begin():
                return _begin_crawl(session, record)
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc, "crawl database") from exc

    return await trio.to_thread.run_sync(_begin)



async def in_session(db: Database, work: Callable[[Session], T]) -> T:
    """``work(session)`` in one transaction in a worker thread, its SQL errors translated: the crawler's reads and
    small writes outside the record stream (the monitor's schedule, its retention, a crawl's summary)."""

    def run() -> T:
        try:
            with db.session() as session, session.begin():
                return work(session)
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc, "crawl database") from exc

    return await trio.to_thread.run_sync(run)
