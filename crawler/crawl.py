"""One crawl, end to end: database, writer task, discovery node, engine, dialer, listener.

The task tree (every task in a nursery you can see here)::

    run_crawl
    ├── writer            (db.writer.run_writer: the one task that writes SQL)
    └── crawl scope       (--duration deadline; SIGINT/SIGTERM cancel it)
        ├── discovery     (DiscoveryNode.run: one UDP socket split between DiscoveryV4 and DiscoveryV5)
        ├── rlpx listener (--listen: inbound sessions, recorded like dials)
        ├── progress      (a drift-free ``sleep_until`` loop calling on_progress)
        └── engine        (Crawler.run: ends when nothing is left to do)

When the crawl scope ends, for whatever reason, the crawl's end is recorded,
the record channel is closed, and the writer drains everything it was sent
before ``run_crawl`` returns: nothing learned is lost.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
import signal
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from functools import partial
from ipaddress import ip_address
from typing import AsyncIterator, Awaitable, Callable, Mapping

import trio

from ethcrawl.db.engine import Database
from ethcrawl.db.enrich import Locator, enrich_database
from ethcrawl.db.identity import claim_identity
from ethcrawl.db.records import DROPPED_PREFIX, SILENT_DIALS, CrawlFinished, CrawlStarted, CrawlSummary, DialRecord, NodeSeen
from ethcrawl.db.store import crawl_summary
from ethcrawl.db.writer import begin_crawl, run_writer
from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.discv5.session import Config as V5ProtocolConfig
from ethcrawl.wire.enode import Node, format_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import PeerSession

from .dialer import DialConfig, DialResult, dial, local_hello, serve_session
from .discovery import DiscoveryConfig, DiscoveryStats
from .discovery_v5 import DiscoveryV5Config, DiscoveryV5Stats
from .engine import (
    DEFAULT_CONCURRENCY, DEFAULT_DIAL_CONCURRENCY, DEFAULT_MAX_CONCURRENCY, DEFAULT_SILENT_DIAL_CONCURRENCY, CrawlConfig,
    Crawler, CrawlStats,
)
from .node import DiscoveryNode
from .targets import TargetTable
from .udp import DUAL_STACK_HOST, UDPSocket, bind_socket, open_udp_socket, unmapped

__all__ = [
    "CrawlOptions", "run_crawl", "crawl_on_sockets", "bound_sockets", "discovery_node", "dial_config", "dial_record",
    "CrawlProgress", "LiveCounters", "CounterWatch", "DialCounter", "live_counters", "cancel_when_set", "stop_on_signal", "DISCOVERY_MODES",
]

log = logging.getLogger(__name__)

RECORD_BUFFER = 1024  # items in flight to the writer (a record, or the list one answer made: <= ~32); back-pressure beyond
PROGRESS_INTERVAL = 1.0  # s
# The live rate looks this far back: long enough to smooth bursts of answers, short enough to follow a crawl that
# slows down as its frontier turns into dead records waiting out their timeouts.
RATE_WINDOW = 10.0  # s
TCP_BACKLOG = 0xFFFF  # inbound RLPx connections queued before accept: as many as the kernel allows (trio's default)
# What ``--discovery`` may say: which DHTs are walked.  Our node serves both on its one port whatever is walked.
DISCOVERY_MODES = ("v4", "v5", "both")


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlOptions:
    seeds: tuple[Node | ENR, ...]
    network: str | None = None
    duration: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    dial_concurrency: int = DEFAULT_DIAL_CONCURRENCY
    silent_dial_concurrency: int = DEFAULT_SILENT_DIAL_CONCURRENCY
    dial: bool = True
    dial_silent: bool = True  # dial records that never answered discovery too (short connect timeout)
    listen_host: str = DUAL_STACK_HOST  # both families on one port; 0.0.0.0 or an address pins one
    listen_port: int = 0  # UDP discovery port (0 = any)
    rlpx_listen: tuple[str, int] | None = None
    response_timeout: float = DiscoveryConfig().response_timeout
    dial_timeout: float = DialConfig().handshake_timeout
    discovery: str = "both"
    dial_all: bool = False
    # v5 replies may need a whole handshake first, so they get their own (longer) timeout.
    v5_response_timeout: float = DiscoveryV5Config().response_timeout
    # Per-peer windows from measured round trips (``rtt.RoundTrips``); False: the fixed timeouts above.
    rtt_windows: bool = True

    def __post_init__(self) -> None:
        if self.discovery not in DISCOVERY_MODES:
            raise ValueError(f"discovery must be one of {', '.join(DISCOVERY_MODES)}, got {self.discovery!r}")

    def parameters(self) -> dict[str, object]:
        """What is stored with the crawl row (JSON)."""
        # Not asdict(): it would deep-copy the seeds, and ENR records hold read-only mappings.
        params: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "seeds"}
        params["seeds"] = [s.to_text() if isinstance(s, ENR) else _enode_text(s) for s in self.seeds]
        params["rlpx_listen"] = list(self.rlpx_listen) if self.rlpx_listen else None
        return params


def _enode_text(node: Node) -> str:
    return format_enode(node)


@dataclass(frozen=True, slots=True)
class CrawlProgress:
    elapsed: float
    crawl: CrawlStats
    dials_ok: int
    dials_failed: int
    rate: float = 0.0  # node visits finished per second, over the last RATE_WINDOW seconds

    @property
    def done(self) -> int:
        """Nodes whose visit has finished."""
        return self.crawl.visited - self.crawl.in_flight

    @property
    def share_done(self) -> float:
        """Finished visits as a share (0-1) of the nodes known so far: a floor, since walks still find nodes."""
        return self.done / self.crawl.discovered if self.crawl.discovered else 0.0

    @property
    def remaining_s(self) -> float | None:
        """Seconds left at the current rate for the nodes known so far; None until a rate is measured."""
        return (self.crawl.discovered - self.done) / self.rate if self.rate > 0 else None


class _RateMeter:
    """Finished visits per second over a sliding window of progress samples (drift-free: the samples' own times)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, now: float, done: int) -> float:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        then, done_then = self._samples[0]
        return (done - done_then) / (now - then) if now > then else 0.0


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def dial_record(result: DialResult, crawl_id: int, node: Node | None) -> DialRecord:
    """The database's view of one RLPx attempt."""
    hello = result.hello
    client = result.client
    status = result.status
    caps = ",".join(f"{c.name}/{c.version}" for c in result.capabilities) or None
    fields: dict[str, object] = {}
    if status is not None:
        fields.update(
            network_id=status.network_id,
            genesis_hash=status.genesis,
            fork_hash=status.fork_id.hash,
            fork_next=status.fork_id.next,
            head_hash=status.head_hash,
            total_difficulty=getattr(status, "td", None),
            earliest_block=getattr(status, "earliest_block", None),
            latest_block=getattr(status, "latest_block", None),
        )
    return DialRecord(
        crawl_id=crawl_id,
        node_id=result.node_id,
        attempted_at=_utc(result.started_at),
        direction=result.direction,
        outcome=result.outcome.value,
        ip=str(node.ip) if node is not None and node.ip is not None else None,
        tcp_port=node.tcp if node is not None else None,
        disconnect_reason=result.disconnect_reason,
        error=result.error,
        client_id=hello.client_id if hello is not None else None,
        client_name=client.name if client is not None else None,
        client_version=client.version if client is not None else None,
        client_os=client.os if client is not None else None,
        client_arch=client.arch if client is not None else None,
        client_runtime=client.runtime if client is not None else None,
        client_user_data=client.user_data if client is not None else None,
        capabilities=caps,
        p2p_version=hello.protocol_version if hello is not None else None,
        eth_version=result.eth_version,
        head_number=result.head_number,
        synced=result.synced,
        **fields,  # type: ignore[arg-type]
    )


@dataclass(eq=False)
class DialCounter:
    """RLPx attempts of one cycle as they end: ok, failed, and per outcome (the live display's and metrics' source)."""

    ok: int = 0
    failed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def count(self, result: DialResult) -> None:
        outcome = result.outcome.value
        self.outcomes[outcome] += 1
        if outcome == "ok":
            self.ok += 1
        else:
            self.failed += 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveCounters:
    """What a running cycle (a walk, or a monitor's revalidation pass) has counted so far, read at one moment.

    The engine's, the discovery sockets' and the dialer's own counters, gathered for ``--metrics``
    (``metrics.Metrics``), which defines nothing of its own.
    """

    kind: str  # db.records.CRAWL_KINDS
    nodes: int  # known in this cycle: a walk's discovered nodes, a pass's nodes checked so far
    answered: int  # of those, answered discovery
    dials_started: int
    dial_outcomes: Mapping[str, int]
    v4: DiscoveryStats | None
    v5: DiscoveryV5Stats | None
    lane_overflow: int  # datagrams our own protocol lanes dropped (a reader fell behind)
    kernel_drops: int | None  # datagrams the kernel dropped for a full receive buffer, where the platform tells
    queues: Mapping[str, int]  # waiting work: frontier, visits and dials in flight, records on their way to the db


# Called with a reader of the running cycle's counters when it starts, and with None when it ends.
CounterWatch = Callable[[Callable[[], LiveCounters] | None], None]


def live_counters(
    kind: str,
    node: DiscoveryNode,
    udp: UDPSocket,
    dials: DialCounter,
    records: trio.MemorySendChannel[object],
    *,
    nodes: int,
    answered: int,
    dials_started: int,
    queues: Mapping[str, int] | None = None,
) -> LiveCounters:
    """One reading of a cycle's counters (``queues`` gains the records waiting for the writer)."""
    lanes = node.demux
    return LiveCounters(
        kind=kind, nodes=nodes, answered=answered, dials_started=dials_started, dial_outcomes=dict(dials.outcomes),
        v4=node.v4.statistics() if node.speaks_v4 else None,
        v5=node.v5.statistics() if node.v5 is not None else None,
        lane_overflow=lanes.v4.overflowed + lanes.v5.overflowed if lanes is not None else 0,
        kernel_drops=udp.kernel_drops(),
        queues={**(queues or {}), "records": records.statistics().current_buffer_used},
    )


def _walk_counters(
    node: DiscoveryNode, udp: UDPSocket, crawler: Crawler, dials: DialCounter, records: trio.MemorySendChannel[object]
) -> LiveCounters:
    c = crawler.statistics()
    return live_counters(
        "crawl", node, udp, dials, records, nodes=c.discovered, answered=c.responded, dials_started=c.dials_started,
        queues={"frontier": c.queued, "visits": c.in_flight, "dials": c.dials_in_flight},
    )


def dial_config(options: CrawlOptions) -> DialConfig:
    """The RLPx dialer's timeouts for ``--timeout``-style options: one per stage."""
    t = options.dial_timeout
    return DialConfig(handshake_timeout=t, status_timeout=t, header_timeout=t)


def discovery_node(
    key: PrivateKey, udp: UDPSocket, options: CrawlOptions, wall_clock: Callable[[], float]
) -> DiscoveryNode:
    """Our discovery node on the bound socket: both protocols, whatever is walked, as go-ethereum does."""
    return DiscoveryNode(
        key,
        host=udp.local_address[0],  # what was bound: 0.0.0.0 where :: fell back for want of IPv6
        port=options.listen_port,
        v4_config=DiscoveryConfig(response_timeout=options.response_timeout, rtt_windows=options.rtt_windows),
        v5_config=DiscoveryV5Config(
            response_timeout=options.v5_response_timeout,
            rtt_windows=options.rtt_windows,
            protocol=v5_protocol_config(options.max_concurrency),
        ),
        wall_clock=wall_clock,
        transport=udp,
    )


def v5_protocol_config(max_visits: int) -> V5ProtocolConfig:
    """The v5 wire layer's caches sized for ``max_visits`` peers read at once.

    go-ethereum keeps 1,024 sessions, enough for a node's few dozen peers; a crawl holds one session per v5 visit
    under way, and the visit limit widens to 2,048.  Past the cache, a session is evicted while its walk still
    needs it and each next FINDNODE costs a new handshake (an ECDH and a signature both sides): at 30,000 records
    the crawl made 43,977 v5 handshakes for 8,417 nodes that answered, 5 each (BENCHMARKS.md).  Twice the visits
    leaves room for the sessions of visits just ended, which late answers still use; ~0.5 KB each.
    """
    default = V5ProtocolConfig()
    sessions = max(default.session_cache_size, 2 * max_visits)
    return replace(
        default,
        session_cache_size=sessions,
        record_cache_size=max(default.record_cache_size, 2 * sessions),
        sent_packets_limit=max(default.sent_packets_limit, 2 * sessions),
    )


async def run_crawl(
    db: Database,
    options: CrawlOptions,
    *,
    private_key: PrivateKey | None = None,
    on_progress: Callable[[CrawlProgress], None] | None = None,
    on_ready: Callable[[DiscoveryNode], None] | None = None,
    wall_clock: Callable[[], float] = time.time,
    handle_signals: bool = True,
    locator: Locator | None = None,
    stop: trio.Event | None = None,
    watch: CounterWatch | None = None,
) -> CrawlSummary:
    """Run one crawl into ``db`` and return its summary (also after Ctrl-C, --duration or ``stop``).

    ``locator`` (--geoip/--asn, ``crawler.geoip.GeoIP``): fill the crawl's country and AS columns when it ends,
    before the summary; a ``GeoIPError`` from it comes out after the crawl is stored.

    The crawl runs as ``private_key`` (--node-key; registered in the database as one of our identities) or as
    the database's own generated identity, and never counts any identity ethcrawl used on this database.

    The sockets are bound before the crawl row is written: a port in use or an
    address this machine lacks raises ``OSError`` and leaves no half-open crawl.
    """
    async with bound_sockets(options) as (udp, rlpx_listeners):
        return await crawl_on_sockets(
            db, options, udp, rlpx_listeners, private_key=private_key, on_progress=on_progress, on_ready=on_ready,
            wall_clock=wall_clock, handle_signals=handle_signals, locator=locator, stop=stop, watch=watch,
        )


@asynccontextmanager
async def bound_sockets(options: CrawlOptions) -> AsyncIterator[tuple[UDPSocket, list[trio.SocketListener]]]:
    """The discovery UDP socket and the --listen TCP listeners, closed on the way out; OSError names the address.

    ``::`` (the default) binds one dual-stack socket per protocol, IPv4 and
    IPv6 on the same port (see :mod:`~ethcrawl.crawler.udp`), IPv4 only where
    the machine has no IPv6.
    """
    host, port = options.listen_host, options.listen_port
    try:
        udp = await open_udp_socket(host, port)
    except OSError as exc:
        raise OSError(exc.errno, f"UDP {host}:{port}: {exc.strerror}") from exc
    async with udp:
        listeners: list[trio.SocketListener] = []
        if options.rlpx_listen is not None:
            tcp_host, tcp_port = options.rlpx_listen
            try:
                # One socket, not trio.open_tcp_listeners(host=None)'s one per family: those would take
                # two different ports for port 0, and our record names one.
                sock = await bind_socket(trio.socket.SOCK_STREAM, tcp_host, tcp_port)
            except OSError as exc:
                raise OSError(exc.errno, f"TCP {tcp_host}:{tcp_port} (--listen): {exc.strerror}") from exc
            try:
                sock.listen(TCP_BACKLOG)
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"TCP {tcp_host}:{tcp_port} (--listen): {exc.strerror}") from exc
            listeners = [trio.SocketListener(sock)]
        try:
            yield udp, listeners
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()


async def crawl_on_sockets(
    db: Database,
    options: CrawlOptions,
    udp: UDPSocket,
    rlpx_listeners: list[trio.SocketListener],
    *,
    private_key: PrivateKey | None,
    on_progress: Callable[[CrawlProgress], None] | None = None,
    on_ready: Callable[[DiscoveryNode], None] | None = None,
    wall_clock: Callable[[], float] = time.time,
    handle_signals: bool = False,
    locator: Locator | None = None,
    stop: trio.Event | None = None,
    watch: CounterWatch | None = None,
) -> CrawlSummary:
    """``run_crawl`` on sockets the caller bound and keeps (the monitor walks many times on one port).

    ``stop`` set ends the walk early like a signal: its row ended, everything learned written.  ``watch`` is
    given a reader of the walk's counters when it starts and None when it ends (``--metrics``).
    """
    node_key = private_key.secret if private_key is not None else None
    identity = await trio.to_thread.run_sync(partial(claim_identity, db, node_key=node_key, now=_utc(wall_clock())))
    key = PrivateKey(identity.private_key)
    crawl_id = await begin_crawl(
        db,
        CrawlStarted(started_at=_utc(wall_clock()), parameters=options.parameters(), local_node_id=identity.node_id),
    )
    send, receive = trio.open_memory_channel[object](RECORD_BUFFER)
    counter = DialCounter()
    dialing = dial_config(options)

    async def record_dial(result: DialResult, node: Node | None) -> None:
        counter.count(result)
        await send.send(dial_record(result, crawl_id, node))

    async def dialer(node: Node, enr: ENR | None, *, connect_timeout: float) -> None:
        config = replace(dialing, connect_timeout=connect_timeout)
        result = await dial(node, key, config=config, wall_clock=wall_clock)
        await record_dial(result, node)

    crawl_v4 = options.discovery in ("v4", "both")
    crawl_v5 = options.discovery in ("v5", "both")
    node = discovery_node(key, udp, options, wall_clock)
    crawler: Crawler | None = None
    async with trio.open_nursery() as outer:
        await outer.start(run_writer, db, receive)
        async with send:
            started = trio.current_time()
            with trio.CancelScope() as crawl_scope:
                if options.duration is not None:
                    crawl_scope.deadline = started + options.duration
                async with trio.open_nursery() as nursery:
                    stop = stop if stop is not None else trio.Event()
                    if handle_signals:
                        nursery.start_soon(stop_on_signal, stop, "stopping the crawl")
                    nursery.start_soon(cancel_when_set, stop, crawl_scope)
                    if rlpx_listeners:
                        # Served first, so that our ENR and Pongs advertise the real TCP port.
                        node.tcp_port = await nursery.start(
                            _serve_inbound, rlpx_listeners, key, dialing, crawl_id, send, record_dial, wall_clock,
                            identity.excluded,
                        )
                    await nursery.start(node.run)
                    log.info("crawl %d node_id=%s udp=%s:%d", crawl_id, identity.node_id.hex(), node.host, node.port)
                    crawler = Crawler(
                        node.v4 if crawl_v4 else None,
                        TargetTable.default(),
                        send,
                        crawl_id=crawl_id,
                        config=CrawlConfig(
                            concurrency=options.concurrency,
                            max_concurrency=options.max_concurrency,
                            dial_concurrency=options.dial_concurrency,
                            silent_dial_concurrency=options.silent_dial_concurrency,
                            dial_silent=options.dial_silent,
                            connect_timeout=dialing.connect_timeout,
                            dial_all=options.dial_all,
                        ),
                        dialer=dialer if options.dial else None,
                        wall_clock=wall_clock,
                        discovery_v5=node.v5 if crawl_v5 else None,
                        excluded=identity.excluded,
                    )
                    if on_ready is not None:
                        on_ready(node)
                    if watch is not None:
                        watch(partial(_walk_counters, node, udp, crawler, counter, send))
                    report = partial(_report, on_progress, crawler, counter, started, _RateMeter())
                    if on_progress is not None:
                        nursery.start_soon(_progress_loop, report)
                    await crawler.run(list(options.seeds))
                    report()
                    if options.rlpx_listen is not None and options.duration is not None:
                        # Listening crawls keep accepting inbound peers until --duration.
                        await trio.sleep_forever()
                    nursery.cancel_scope.cancel()
            if watch is not None and crawler is not None:
                watch(None)
            stats: dict[str, int] = {}
            if crawler is not None:
                counters = crawler.statistics()
                stats = _stored_stats(counters, udp)  # the kernel's drop count read once, for the row and the log
                _log_statistics(node, counters, stats)
            if crawl_scope.cancelled_caught:
                log.info("crawl stopped early (duration or signal); saving what was learned")
            await send.send(CrawlFinished(crawl_id=crawl_id, ended_at=_utc(wall_clock()), stats=stats))
        # The channel is closed: the writer drains what it holds and returns.

    if locator is not None:
        # Everything is written: place the crawl's nodes and sightings before the summary counts them.
        await trio.to_thread.run_sync(partial(enrich_database, db, locator, crawl_id=crawl_id))

    def _summary() -> CrawlSummary:
        with db.session() as session:
            return crawl_summary(session, crawl_id)

    return await trio.to_thread.run_sync(_summary)


def _report(
    on_progress: Callable[[CrawlProgress], None] | None,
    crawler: Crawler,
    counter: DialCounter,
    started: float,
    meter: _RateMeter,
) -> None:
    if on_progress is not None:
        now = trio.current_time()
        stats = crawler.statistics()
        rate = meter.sample(now, stats.visited - stats.in_flight)
        on_progress(CrawlProgress(now - started, stats, counter.ok, counter.failed, rate))


def _stored_stats(stats: CrawlStats, udp: UDPSocket) -> dict[str, int]:
    """The counters no other table holds, for the crawl row's ``stats`` column.

    ``kernel_drops``: datagrams the kernel dropped because the socket's receive buffer was full (where the platform
    tells), the sign that answers came faster than the crawl read them.
    """
    stored = {DROPPED_PREFIX + rule: count for rule, count in stats.dropped_by_rule}
    stored["relay_rejected"] = stats.relay_rejected
    stored[SILENT_DIALS] = stats.silent_dials_started
    stored["receive_buffer"] = udp.receive_buffer
    drops = udp.kernel_drops()
    if drops is not None:
        stored["kernel_drops"] = drops
    return stored


def _log_statistics(node: DiscoveryNode, c: CrawlStats, stored: Mapping[str, int]) -> None:
    """One "crawl stats" line, key=value, so benchmarks and operators can read the crawl's work off the log."""
    v5, lanes = node.v5, node.demux
    assert v5 is not None and lanes is not None  # the crawl's node always serves both
    d, d5 = node.v4.statistics(), v5.statistics()
    overflow = lanes.v4.overflowed + lanes.v5.overflowed
    log.info(
        "crawl stats packets_in=%d packets_out=%d findnode=%d bad=%d timeouts=%d nodes=%d "
        "responded=%d edges=%d dials=%d silent_dials=%d v5_packets_in=%d v5_packets_out=%d v5_findnode=%d v5_dropped=%d "
        "v5_rate_limited=%d v5_timeouts=%d v5_bad_records=%d v5_handshakes=%d answered_v4=%d answered_v5=%d "
        "lane_overflow=%d unhashed_peers=%d max_concurrency=%d receive_buffer=%d kernel_drops=%s "
        "visit_limit=%d governed_periods=%d cpu_saturated_periods=%d",
        d.packets_in, d.packets_out, d.findnode_requests, d.bad_packets, d.timeouts, c.discovered,
        c.responded, c.edges, c.dials_started, c.silent_dials_started, d5.packets_in, d5.packets_out, d5.findnode_requests,
        d5.dropped, d5.rate_limited, d5.timeouts, d5.bad_records, d5.handshakes, c.answered_v4,
        c.answered_v5, overflow, c.unhashed_peers, c.max_concurrency_reached, stored["receive_buffer"],
        stored.get("kernel_drops"), c.concurrency, c.governed_periods, c.cpu_saturated_periods,
    )


async def stop_on_signal(stop: trio.Event, doing: str) -> None:
    """Set ``stop`` at the first SIGINT or SIGTERM, logging what happens then (``doing``)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.warning("received %s, %s", signal.Signals(signum).name, doing)
            stop.set()
            return


async def cancel_when_set(stop: trio.Event, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` once ``stop`` is set: how a monitor's signal ends the cycle that is running."""
    await stop.wait()
    scope.cancel()


async def _progress_loop(report: Callable[[], None]) -> None:
    deadline = trio.current_time()
    while True:
        deadline += PROGRESS_INTERVAL
        await trio.sleep_until(deadline)
        report()


async def _serve_inbound(
    listeners: list[trio.SocketListener],
    key: PrivateKey,
    config: DialConfig,
    crawl_id: int,
    send: trio.MemorySendChannel[object],
    record_dial: Callable[[DialResult, Node | None], Awaitable[None]],
    wall_clock: Callable[[], float],
    excluded: frozenset[bytes],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept inbound RLPx peers and record their Hello and Status like a dial (not those that are us: ``excluded``)."""

    async def handle(stream: trio.SocketStream) -> None:
        peer_ip = unmapped(stream.socket.getpeername()[0])  # an IPv4 peer on the dual-stack listener is IPv4
        session = PeerSession(RLPxConnection.recipient(key), hello=local_hello(key, listen_port=port))
        result = await serve_session(stream, session, node_id=bytes(32), direction="inbound", config=config, wall_clock=wall_clock)
        if result.remote_pubkey is None:
            return  # no handshake: nothing to attribute the attempt to
        # Inbound peers tell their key but not their listening port (Hello's is often 0).
        listen = result.hello.listen_port if result.hello is not None and result.hello.listen_port else None
        node = Node(pubkey=result.remote_pubkey, ip=ip_address(peer_ip), udp=None, tcp=listen)
        if node.node_id in excluded:
            return  # one of our own identities (another ethcrawl on this database): not a node of the network
        await send.send(
            NodeSeen(
                crawl_id=crawl_id, node_id=node.node_id, pubkey=node.pubkey, ip=peer_ip, udp=None, tcp=listen,
                seen_at=_utc(wall_clock()), source="inbound",
            )
        )
        await record_dial(replace(result, node_id=node.node_id), node)

    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        task_status.started(port)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)
