"""The crawl engine: walk the whole discovery v4 DHT from a set of seeds.

For every node it hears of, the engine bonds, asks for the node's ENR, then
enumerates the node's routing table bucket by bucket with FindNode targets
chosen to land in each bucket (``targets.TargetTable``).  Every answer is an
edge "in this crawl, A returned B"; every new node joins the frontier.  Nodes
with a TCP port go to the RLPx dialer.

The crawl ends by itself when the frontier is empty and nothing is in flight
(no watchdog timers), or when the caller's cancel scope (``--duration``,
Ctrl-C) fires.  Results leave the engine only as records on a channel, so the
one database writer task can batch them.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Protocol

import trio

from ethcrawl.db.records import EdgeSeen, NodeSeen
from ethcrawl.wire.discv4 import NodeRecord
from ethcrawl.wire.enode import Node
from ethcrawl.wire.enr import ENR

from .discovery import DiscoveryV4
from .relay import relay_error
from .targets import TargetTable

__all__ = ["CrawlConfig", "Crawler", "CrawlStats", "Dialer"]

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 32  # peers enumerated at once
DEFAULT_DIAL_CONCURRENCY = 16  # RLPx dials at once
BOND_ATTEMPTS = 2  # a lost Ping or Pong is common on the real network
BOND_RETRY_BACKOFF = 1.0  # s, before the second bond attempt
# Stop walking down a peer's buckets after this many answers in a row that
# taught us nothing: the lower buckets of a table are almost always empty.
EMPTY_ANSWERS_TO_STOP = 2
PEER_PACING = 0.0  # s between two requests to the same peer (one request at a time already)


class Dialer(Protocol):
    async def __call__(self, node: Node, enr: ENR | None) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlConfig:
    concurrency: int = DEFAULT_CONCURRENCY
    dial_concurrency: int = DEFAULT_DIAL_CONCURRENCY
    bond_attempts: int = BOND_ATTEMPTS
    bond_retry_backoff: float = BOND_RETRY_BACKOFF
    empty_answers_to_stop: int = EMPTY_ANSWERS_TO_STOP
    peer_pacing: float = PEER_PACING


@dataclass(frozen=True, slots=True)
class CrawlStats:
    discovered: int
    queued: int
    in_flight: int
    visited: int
    responded: int
    edges: int
    dials_started: int
    dials_in_flight: int
    relay_rejected: int


@dataclass(eq=False, slots=True)
class _NodeState:
    node: Node
    source: str
    enr: ENR | None = None
    visited: bool = False
    responded: bool = False
    dial_queued: bool = False


class Crawler:
    """One crawl over discovery v4.  Create, then ``await crawler.run(seeds)``."""

    def __init__(
        self,
        discovery: DiscoveryV4,
        targets: TargetTable,
        records: trio.MemorySendChannel[object],
        *,
        crawl_id: int,
        config: CrawlConfig = CrawlConfig(),
        dialer: Dialer | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.discovery = discovery
        self.targets = targets
        self.records = records
        self.crawl_id = crawl_id
        self.config = config
        self.dialer = dialer
        self._wall_clock = wall_clock
        self._nodes: dict[bytes, _NodeState] = {}
        self._frontier: deque[_NodeState] = deque()
        self._dial_queue: deque[_NodeState] = deque()
        self._in_flight = 0
        self._dials_in_flight = 0
        self._dials_started = 0
        self._edges = 0
        self._relay_rejected = 0
        self._wakeup = trio.Event()

    # ------------------------------------------------------------------ public

    def statistics(self) -> CrawlStats:
        return CrawlStats(
            discovered=len(self._nodes),
            queued=len(self._frontier),
            in_flight=self._in_flight,
            visited=sum(1 for s in self._nodes.values() if s.visited),
            responded=sum(1 for s in self._nodes.values() if s.responded),
            edges=self._edges,
            dials_started=self._dials_started,
            dials_in_flight=self._dials_in_flight,
            relay_rejected=self._relay_rejected,
        )

    async def run(self, seeds: list[Node | ENR]) -> CrawlStats:
        """Crawl from ``seeds`` until every discovered node has been visited (and dialed)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._consume_late_nodes)
            for seed in seeds:
                if isinstance(seed, ENR):
                    await self._learn(seed.to_node(), source="bootnode", enr=seed)
                else:
                    await self._learn(seed, source="bootnode")
            while True:
                while self._frontier and self._in_flight < self.config.concurrency:
                    state = self._frontier.popleft()
                    self._in_flight += 1
                    nursery.start_soon(self._visit_guarded, state)
                while self._dial_queue and self._dials_in_flight < self.config.dial_concurrency:
                    state = self._dial_queue.popleft()
                    self._dials_in_flight += 1
                    self._dials_started += 1
                    nursery.start_soon(self._dial_guarded, state)
                if not (self._frontier or self._dial_queue or self._in_flight or self._dials_in_flight):
                    break
                await self._wakeup.wait()
                self._wakeup = trio.Event()
            nursery.cancel_scope.cancel()  # the late-nodes reader
        return self.statistics()

    # ------------------------------------------------------------------ internals

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), tz=timezone.utc)

    async def _emit(self, record: object) -> None:
        await self.records.send(record)

    async def _learn(self, node: Node, *, source: str, enr: ENR | None = None) -> _NodeState:
        state = self._nodes.get(node.node_id)
        if state is None:
            state = _NodeState(node=node, source=source, enr=enr)
            self._nodes[node.node_id] = state
            self._frontier.append(state)
            self._wakeup.set()
            await self._emit_node(state)
        return state

    async def _emit_node(self, state: _NodeState) -> None:
        node = state.node
        await self._emit(
            NodeSeen(
                crawl_id=self.crawl_id,
                node_id=node.node_id,
                pubkey=node.pubkey,
                ip=str(node.ip) if node.ip is not None else None,
                udp=node.udp,
                tcp=node.tcp,
                enr=state.enr.to_rlp() if state.enr else None,
                enr_seq=state.enr.seq if state.enr else None,
                seen_at=self._now(),
                source=state.source,
                responded=state.responded,
            )
        )

    async def _visit_guarded(self, state: _NodeState) -> None:
        try:
            await self._visit(state)
        except Exception:  # a bug in one visit must not end the crawl
            log.exception("visit failed node=%s", state.node.node_id.hex()[:16])
        finally:
            self._in_flight -= 1
            self._wakeup.set()

    async def _dial_guarded(self, state: _NodeState) -> None:
        assert self.dialer is not None
        try:
            await self.dialer(state.node, state.enr)
        except Exception:
            log.exception("dial failed node=%s", state.node.node_id.hex()[:16])
        finally:
            self._dials_in_flight -= 1
            self._wakeup.set()

    async def _bond(self, node: Node) -> bool:
        for attempt in range(self.config.bond_attempts):
            if attempt:
                await trio.sleep(self.config.bond_retry_backoff * attempt)
            if await self.discovery.bond(node):
                return True
        return False

    async def _visit(self, state: _NodeState) -> None:
        state.visited = True
        node = state.node
        if not await self._bond(node):
            self._queue_dial(state)
            return
        state.responded = True
        # A Pong without an ENR seq means no EIP-868: asking would only wait out the timeout.
        enr = await self.discovery.request_enr(node) if self.discovery.speaks_eip868(node) else None
        if enr is not None and (state.enr is None or enr.seq >= state.enr.seq):
            state.enr = enr
            if enr.tcp and node.tcp is None:
                state.node = node = Node(pubkey=node.pubkey, ip=node.ip, udp=node.udp, tcp=enr.tcp)
        await self._emit_node(state)
        await self._enumerate(state)
        self._queue_dial(state)

    async def _enumerate(self, state: _NodeState) -> None:
        """FindNode into each bucket of the peer, nearest-populated first, until answers dry up."""
        # Edges are deduplicated per visit only: keeping every peer's answers for
        # the whole crawl would cost hundreds of bytes per node.
        returned: set[bytes] = set()
        empty_in_a_row = 0
        for _distance, target in self.targets.targets_for_peer(state.node.node_id):
            if self.config.peer_pacing:
                await trio.sleep(self.config.peer_pacing)
            records = await self.discovery.find_node(state.node, target)
            new = await self._take_neighbors(state, records, returned)
            empty_in_a_row = 0 if new else empty_in_a_row + 1
            if empty_in_a_row >= self.config.empty_answers_to_stop:
                break

    async def _take_neighbors(
        self, state: _NodeState, records: list[NodeRecord] | tuple[NodeRecord, ...], returned: set[bytes]
    ) -> int:
        """Record edges for ``records`` returned by ``state``; return how many were news from it."""
        new_from_peer = 0
        sender_ip = state.node.ip
        for record in records:
            if sender_ip is not None:
                why = relay_error(sender_ip, record.ip, record.udp)
                if why is not None:
                    self._relay_rejected += 1
                    log.debug("relayed node rejected from=%s why=%s", state.node.node_id.hex()[:16], why)
                    continue
            node = Node(pubkey=record.pubkey, ip=record.ip, udp=record.udp, tcp=record.tcp or None)
            if node.node_id in returned or node.node_id == self.discovery.node_id:
                # Peers we bonded with list us too; we are not part of what we measure.
                continue
            returned.add(node.node_id)
            new_from_peer += 1
            self._edges += 1
            await self._learn(node, source="neighbors")
            await self._emit(
                EdgeSeen(crawl_id=self.crawl_id, from_id=state.node.node_id, to_id=node.node_id, seen_at=self._now())
            )
        return new_from_peer

    async def _consume_late_nodes(self) -> None:
        async for late in self.discovery.late_nodes:
            state = self._nodes.get(late.sender.node_id)
            if state is not None:
                await self._take_neighbors(state, late.nodes, set())

    def _queue_dial(self, state: _NodeState) -> None:
        if self.dialer is None or state.dial_queued or not state.node.tcp:
            return
        state.dial_queued = True
        self._dial_queue.append(state)
        self._wakeup.set()
