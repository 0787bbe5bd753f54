"""``ethcrawl monitor``: walk the DHT every interval, revalidate known nodes in between, for as long as it runs.

The task tree::

    run_monitor            (one identity, one UDP socket for the whole run)
    ├── signals            (SIGINT/SIGTERM set ``stop``)
    └── schedule           (run_schedule: one cycle at a time)
        ├── walk           (crawl.crawl_on_sockets: a crawl row of kind 'crawl')
        └── revalidation   (_Revalidation.run: a crawl row of kind 'revalidation'; discv4 Ping, ENR if it
                            changed, RLPx dial of each due node, written as a crawl writes them)

The schedule lives in the database (``db.schedule``): which nodes are due comes from their sightings, so a
restarted monitor carries on where the last one stopped.  Walks start every ``interval`` (the first at once, or
one interval after the database's last walk);
between them, a pass starts whenever known nodes fall due, and takes every node due within ``pass_window`` so
nodes falling due one by one make one pass, not one each.  ``stop`` (a signal) ends the current cycle early the
way ``--duration`` ends a crawl, its row ended and everything learned written, and then the monitor returns.

Times: the loop sleeps on trio's clock and asks the database in wall-clock time (``wall_clock``), so a test can
run the whole schedule on a MockClock with ``wall_clock`` tied to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from ipaddress import ip_address
from typing import Protocol, TypeVar

import trio

from ethcrawl.db.enrich import Locator, enrich_database
from ethcrawl.db.engine import Database
from ethcrawl.db.identity import claim_identity
from ethcrawl.db.records import CrawlFinished, CrawlStarted, CrawlSummary, NodeSeen
from ethcrawl.db.retention import prune_before
from ethcrawl.db.schedule import Backoff, DueNode, due_nodes, last_walk_started, next_due
from ethcrawl.db.store import crawl_summary
from ethcrawl.db.writer import begin_crawl, in_session, run_writer
from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.enode import Node
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError

from .crawl import (
    RECORD_BUFFER,
    CounterWatch,
    CrawlOptions,
    DialCounter,
    LiveCounters,
    bound_sockets,
    cancel_when_set,
    stop_on_signal,
    crawl_on_sockets,
    dial_config,
    dial_record,
    discovery_node,
    live_counters,
)
from .dialer import dial
from .engine import BOND_ATTEMPTS, BOND_RETRY_BACKOFF
from .node import DiscoveryNode
from .udp import UDPSocket

__all__ = [
    "DEFAULT_INTERVAL",
    "MonitorConfig",
    "CycleResult",
    "Cycles",
    "run_schedule",
    "run_monitor",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_INTERVAL = 1800.0  # s between walks: a mainnet walk takes minutes, and the network changes over hours
# A pass takes every node falling due within this window: a walk's sightings spread over its minutes, and each
# would otherwise fall due on its own and make a pass (a crawl row) of its own.
PASS_WINDOW = 60.0  # s
MIN_GAP = 1.0  # s between two cycles at least, so a schedule the database cannot satisfy never spins
PASS_BATCH = 20_000  # due nodes one pass takes at most; the rest fall to the next (still due, longest waiting first)
PASS_CONCURRENCY = 256  # nodes checked at once in a pass (most wait on the Ping timeout of a dead record)
PASS_DIAL_CONCURRENCY = 64  # of those, RLPx dials at once (each holds a TCP connection and a handshake's crypto)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorConfig:
    interval: float = DEFAULT_INTERVAL  # s from one walk's start to the next
    cycles: int | None = None  # walks, then stop (None: until a signal)
    backoff: Backoff = Backoff()
    keep: float | None = None  # s of history kept (db.retention); None keeps everything
    pass_window: float = PASS_WINDOW
    min_gap: float = MIN_GAP
    pass_batch: int = PASS_BATCH
    pass_concurrency: int = PASS_CONCURRENCY
    pass_dial_concurrency: int = PASS_DIAL_CONCURRENCY

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError("interval must be a positive number of seconds")
        if self.cycles is not None and self.cycles < 1:
            raise ValueError("cycles must be at least 1")
        if self.keep is not None and not self.keep > 0:
            raise ValueError("keep must be a positive number of seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleResult:
    """One cycle as the log line and the metrics tell it."""

    kind: str  # db.records.CRAWL_KINDS
    crawl_id: int
    nodes: int
    answered: int
    dials: int
    dials_ok: int
    duration: float  # s
    stopped: bool  # ended early by ``stop``

    @classmethod
    def of(cls, kind: str, summary: CrawlSummary, duration: float, stopped: bool) -> CycleResult:
        return cls(
            kind=kind, crawl_id=summary.crawl_id, nodes=summary.nodes, answered=summary.responded,
            dials=summary.dials, dials_ok=summary.dials_ok, duration=duration, stopped=stopped,
        )


class Cycles(Protocol):
    """What the schedule runs: a walk, and a revalidation pass of the given due nodes."""

    async def walk(self, stop: trio.Event) -> CycleResult: ...

    async def revalidate(self, due: Sequence[DueNode], stop: trio.Event) -> CycleResult: ...


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


async def run_schedule(
    db: Database,
    cycles: Cycles,
    config: MonitorConfig,
    stop: trio.Event,
    *,
    wall_clock: Callable[[], float] = time.time,
    on_cycle: Callable[[CycleResult], Awaitable[None]] | None = None,
) -> int:
    """Walk every ``config.interval`` and revalidate due nodes in between, until ``config.cycles`` walks are
    done or ``stop`` is set; the number of cycles run."""
    next_walk = await _next_walk(db, config.interval, wall_clock)
    walks = ran = 0
    while not stop.is_set():
        result: CycleResult | None = None
        if trio.current_time() >= next_walk:
            next_walk = trio.current_time() + config.interval
            result = await cycles.walk(stop)
            walks += 1
            if config.keep is not None:
                await _prune(db, _utc(wall_clock() - config.keep))
        else:
            horizon = _utc(wall_clock() + config.pass_window)
            due = await in_session(db, partial(due_nodes, backoff=config.backoff, now=horizon, limit=config.pass_batch))
            if due:
                result = await cycles.revalidate(due, stop)
        if result is not None:
            ran += 1
            _log_cycle(result)
            if on_cycle is not None:
                await on_cycle(result)
        if stop.is_set() or (config.cycles is not None and walks >= config.cycles):
            break
        wake = min(next_walk, await _next_due(db, config.backoff, wall_clock))
        with trio.move_on_at(max(wake, trio.current_time() + config.min_gap)):
            await stop.wait()
    return ran


async def _next_walk(db: Database, interval: float, wall_clock: Callable[[], float]) -> float:
    """When (trio's clock) the first walk starts: at once, or one interval after the database's last walk."""
    last = await in_session(db, last_walk_started)
    now = trio.current_time()
    if last is None:
        return now
    return now + max(0.0, last.timestamp() + interval - wall_clock())


async def _next_due(db: Database, backoff: Backoff, wall_clock: Callable[[], float]) -> float:
    """When (trio's clock) the next known node falls due; never, when there is no node."""
    due = await in_session(db, partial(next_due, backoff=backoff))
    if due is None:
        return float("inf")
    return trio.current_time() + (due.timestamp() - wall_clock())


async def _prune(db: Database, cutoff: datetime) -> None:
    pruned = await in_session(db, partial(prune_before, cutoff=cutoff))
    if pruned.crawls:
        log.info(
            "retention pruned crawls=%d sightings=%d edges=%d dial_attempts=%d before=%s",
            pruned.crawls, pruned.sightings, pruned.edges, pruned.dial_attempts, cutoff.isoformat(),
        )


def _log_cycle(result: CycleResult) -> None:
    log.info(
        "monitor cycle kind=%s crawl=%d nodes=%d answered=%d dials=%d dials_ok=%d duration=%.1fs%s",
        result.kind, result.crawl_id, result.nodes, result.answered, result.dials, result.dials_ok, result.duration,
        " stopped=early" if result.stopped else "",
    )


# ---------------------------------------------------------------------------- the real cycles


def _looks_like_execution(due: DueNode) -> bool:
    """Worth an RLPx dial, as the engine decides in a walk: no record, an execution record, or a v4 node."""
    return due.enr is None or due.layer == "execution" or (due.layer == "other" and "v4" in due.protocols)


class _Revalidation:
    """One pass over due nodes: a crawl row of kind 'revalidation' with a sighting (and a dial) per node."""

    def __init__(
        self, db: Database, options: CrawlOptions, config: MonitorConfig, key: PrivateKey, local_id: bytes,
        udp: UDPSocket, wall_clock: Callable[[], float], watch: CounterWatch | None,
    ) -> None:
        self.db, self.options, self.config, self.key = db, options, config, key
        self.local_id, self.udp, self.wall_clock, self.watch = local_id, udp, wall_clock, watch
        self.checked = self.answered = self.dials_started = 0
        self.dialing = dial_config(options)

    async def run(self, due: Sequence[DueNode], stop: trio.Event) -> CrawlSummary:
        parameters = {"due": len(due), "response_timeout": self.options.response_timeout}
        crawl_id = await begin_crawl(
            self.db,
            CrawlStarted(
                started_at=_utc(self.wall_clock()), parameters=parameters, local_node_id=self.local_id,
                kind="revalidation",
            ),
        )
        send, receive = trio.open_memory_channel[object](RECORD_BUFFER)
        dials = DialCounter()
        node = discovery_node(self.key, self.udp, self.options, self.wall_clock)
        async with trio.open_nursery() as outer:
            await outer.start(run_writer, self.db, receive)
            async with send:
                with trio.CancelScope() as scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(cancel_when_set, stop, scope)
                        await nursery.start(node.run)
                        if self.watch is not None:
                            self.watch(partial(self._counters, node, dials, send))
                        checks = trio.CapacityLimiter(self.config.pass_concurrency)
                        dialing = trio.CapacityLimiter(self.config.pass_dial_concurrency)
                        async with trio.open_nursery() as work:
                            for target in due:
                                work.start_soon(self._check, node, target, crawl_id, send, dials, checks, dialing)
                        nursery.cancel_scope.cancel()
                if self.watch is not None:
                    self.watch(None)
                await send.send(CrawlFinished(crawl_id=crawl_id, ended_at=_utc(self.wall_clock())))
        summary = await in_session(self.db, partial(crawl_summary, crawl_id=crawl_id))
        return summary

    def _counters(self, node: DiscoveryNode, dials: DialCounter, send: trio.MemorySendChannel[object]) -> LiveCounters:
        return live_counters(
            "revalidation", node, self.udp, dials, send, nodes=self.checked, answered=self.answered,
            dials_started=self.dials_started,
        )

    async def _check(
        self, node: DiscoveryNode, due: DueNode, crawl_id: int, send: trio.MemorySendChannel[object],
        dials: DialCounter, checks: trio.CapacityLimiter, dialing: trio.CapacityLimiter,
    ) -> None:
        """Ping ``due`` (fetch its record if it announces a newer one), record the check, dial it."""
        assert due.ip is not None  # due_nodes returns only nodes with an address
        target = Node(pubkey=due.pubkey, ip=ip_address(due.ip), udp=due.udp_port, tcp=due.tcp_port)
        async with checks:
            protocols, enr = await self._ping(node, target, due)
            answered = bool(protocols)
            self.checked += 1
            self.answered += answered
            await send.send(
                NodeSeen(
                    crawl_id=crawl_id, node_id=due.node_id, pubkey=due.pubkey, ip=due.ip, udp=due.udp_port,
                    tcp=due.tcp_port, enr=enr.to_rlp() if enr is not None else None,
                    enr_seq=enr.seq if enr is not None else None, seen_at=_utc(self.wall_clock()),
                    source="database", responded=answered, protocols=protocols,
                )
            )
        if not (self.options.dial and target.tcp and (self.options.dial_all or _looks_like_execution(due))):
            return
        if enr is not None and enr.tcp and enr.tcp != target.tcp and enr.ip in (None, target.ip):
            target = Node(pubkey=due.pubkey, ip=target.ip, udp=target.udp, tcp=enr.tcp)  # its newest record's port
        async with dialing:
            self.dials_started += 1
            result = await dial(target, self.key, config=self.dialing, wall_clock=self.wall_clock)
        dials.count(result)
        await send.send(dial_record(result, crawl_id, target))

    async def _ping(self, node: DiscoveryNode, target: Node, due: DueNode) -> tuple[tuple[str, ...], ENR | None]:
        """The discovery protocols ``target`` answered a Ping over (none: it failed the check), and its record:
        the stored one, or a newer one it announced.

        Over v4, like a walk; over v5 only for a node only ever answered there (a beacon node), which has no v4.
        """
        stored = _stored_enr(due)
        v5 = node.v5
        if due.protocols == ("v5",) and stored is not None and v5 is not None:
            v5_pong = await _retried(partial(v5.ping, stored))
            if v5_pong is None:
                return (), None
            if v5_pong.enr_seq > stored.seq:
                records = [r for r in await v5.find_node(stored, (0,)) or () if r.seq > stored.seq]
                return ("v5",), records[0] if records else stored
            return ("v5",), stored
        if not target.udp:
            return (), None
        v4 = node.v4
        pong = await _retried(partial(v4.ping, target))
        if pong is None:
            return (), None
        if pong.enr_seq is None or (stored is not None and pong.enr_seq <= stored.seq):
            return ("v4",), stored
        # A newer record than ours: like geth, the node answers ENRRequest only once it has our endpoint proof.
        if await v4.bond(target):
            newer = await v4.request_enr(target)
            if newer is not None and newer.node_id == due.node_id:
                return ("v4",), newer
        return ("v4",), stored


async def _retried(ping: Callable[[], Awaitable[T | None]]) -> T | None:
    """``ping()``, and once more after a pause if it met silence, as a walk bonds: a lost datagram is no failure."""
    for attempt in range(BOND_ATTEMPTS):
        if attempt:
            await trio.sleep(BOND_RETRY_BACKOFF)
        answer = await ping()
        if answer is not None:
            return answer
    return None


def _stored_enr(due: DueNode) -> ENR | None:
    if due.enr is None:
        return None
    try:
        return ENR.from_rlp(due.enr, verify=False)  # verified when it was received
    except WireError:
        return None


class _MonitorCycles:
    """The real cycles on the monitor's one socket and identity."""

    def __init__(
        self, db: Database, options: CrawlOptions, config: MonitorConfig, key: PrivateKey, local_id: bytes,
        udp: UDPSocket, listeners: list[trio.SocketListener], wall_clock: Callable[[], float],
        watch: CounterWatch | None, locator: Locator | None = None,
    ) -> None:
        self.db, self.options, self.config, self.key, self.local_id = db, options, config, key, local_id
        self.udp, self.listeners, self.wall_clock, self.watch = udp, listeners, wall_clock, watch
        self.locator = locator

    async def walk(self, stop: trio.Event) -> CycleResult:
        started = trio.current_time()
        summary = await crawl_on_sockets(
            self.db, self.options, self.udp, self.listeners, private_key=self.key, wall_clock=self.wall_clock,
            stop=stop, watch=self.watch, locator=self.locator,
        )
        return CycleResult.of("crawl", summary, trio.current_time() - started, stop.is_set())

    async def revalidate(self, due: Sequence[DueNode], stop: trio.Event) -> CycleResult:
        started = trio.current_time()
        pass_ = _Revalidation(
            self.db, self.options, self.config, self.key, self.local_id, self.udp, self.wall_clock, self.watch
        )
        summary = await pass_.run(due, stop)
        if self.locator is not None:
            # A pass records addresses as a walk does: place them too (the summary was counted before; it has no
            # geography to show).
            await trio.to_thread.run_sync(partial(enrich_database, self.db, self.locator, crawl_id=summary.crawl_id))
        return CycleResult.of("revalidation", summary, trio.current_time() - started, stop.is_set())


async def run_monitor(
    db: Database,
    options: CrawlOptions,
    config: MonitorConfig,
    *,
    private_key: PrivateKey | None = None,
    wall_clock: Callable[[], float] = time.time,
    handle_signals: bool = True,
    stop: trio.Event | None = None,
    watch: CounterWatch | None = None,
    on_cycle: Callable[[CycleResult], Awaitable[None]] | None = None,
    locator: Locator | None = None,
) -> int:
    """Monitor into ``db`` until ``config.cycles`` walks are done or a signal (or ``stop``) ends it; cycles run.

    One identity (``private_key``, or the database's own) and one UDP port for the whole run.  The sockets are
    bound before anything is written: a port in use raises ``OSError`` and leaves no half-open crawl.
    """
    stop = stop if stop is not None else trio.Event()
    node_key = private_key.secret if private_key is not None else None
    identity = await trio.to_thread.run_sync(partial(claim_identity, db, node_key=node_key, now=_utc(wall_clock())))
    key = PrivateKey(identity.private_key)
    async with bound_sockets(options) as (udp, listeners):
        log.info(
            "monitor node_id=%s udp=%s:%d interval=%gs cycles=%s",
            identity.node_id.hex(), udp.local_address[0], udp.local_address[1], config.interval, config.cycles or "-",
        )
        cycles = _MonitorCycles(db, options, config, key, identity.node_id, udp, listeners, wall_clock, watch, locator)
        async with trio.open_nursery() as nursery:
            if handle_signals:
                nursery.start_soon(stop_on_signal, stop, "finishing the current cycle and stopping")
            ran = await run_schedule(db, cycles, config, stop, wall_clock=wall_clock, on_cycle=on_cycle)
            nursery.cancel_scope.cancel()
    return ran


