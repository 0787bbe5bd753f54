"""The crawl engine: walk the whole discovery v4 and v5 DHTs from a set of seeds.

For every node it hears of, the engine visits it with each discovery protocol
it runs and the node can be asked in:

* **v4** (any node with a UDP endpoint): bond, ask for the ENR (EIP-868), then
  enumerate the node's routing table bucket by bucket with FindNode targets
  chosen to land in each bucket (``targets.TargetTable``), or, for a peer whose
  answers show it does not rank by ``keccak256(target)`` (``targets.RankingCheck``:
  @ethereumjs/devp2p ranks by the raw target), region by region of the raw
  target space (``targets.RegionWalk``), then random targets until they bring
  nothing new;
* **v5** (any node whose ENR we hold: a v5 session needs the record's key):
  PING, then FINDNODE by log distance from 256 downward, which reads the
  peer's table one bucket (or a few) per request, until a run of distances
  brings nothing new.

Every answer is an edge "in this crawl, A returned B, over v4/v5"; every new
node joins the frontier.  A node learned without an ENR that later shows one
(its ENRResponse, or a v5 NODES answer elsewhere) is visited over v5 then.
Nodes with a TCP port that look like execution-layer nodes go to the RLPx
dialer (all nodes with a TCP port when ``dial_all``).

The crawl ends by itself when the frontier is empty and nothing is in flight
(no watchdog timers), or when the caller's cancel scope (``--duration``,
Ctrl-C) fires.  Results leave the engine only as records on a channel (a record,
or a list of the records one answer made), so the one database writer task can
batch them.
"""

from __future__ import annotations

import logging
import time
from array import array
from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from typing import Awaitable, Callable, Protocol, TypeVar

import trio

from ethcrawl.db.records import EdgeSeen, NodeSeen
from ethcrawl.wire.classify import classify
from ethcrawl.wire.crypto import node_id_from_pubkey
from ethcrawl.wire.discv4 import NodeRecord
from ethcrawl.wire.discv5.messages import MAX_DISTANCE
from ethcrawl.wire.enode import IPAddress, Node
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import BadENR

from .dialer import CONNECT_TIMEOUT, SILENT_CONNECT_TIMEOUT
from .discovery import DiscoveryV4
from .discovery_v5 import NODES_RESULT_LIMIT, DiscoveryV5, enr_address
from .frontier import RETURNS_THAT_COUNT, SEED_PRIORITY, Frontier
from .governor import PERIOD, Governor, cpu_saturated
from .relay import relay_error
from .sybil import DROP_RULES, AddressBound, AddressLimits
from .targets import RankingCheck, RegionWalk, TargetTable, random_target

__all__ = ["CrawlConfig", "Crawler", "CrawlStats", "Dialer"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Peers enumerated at once.  Most visits of a real network wait out timeouts on dead records, so the pipe must be
# wide: on a dirty devnet of 1,000 live nodes among 2,429 dead records, 32 took 310 s, 256 took 50 s, 1,024 40 s (the
# devnet itself the bottleneck by then); BENCHMARKS.md, "A dirty devnet".  Nebula runs 1,000+ workers.
DEFAULT_CONCURRENCY = 256
# The most peers enumerated at once when the crawl widens its pipe (``governor.Governor``: while every slot is
# busy and the event loop keeps up).  100,000 records with 90% dead hold each slot ~2-2.5 s (two bond attempts of
# 0.5 s and a 1 s back-off, v5 beside it): ~2,000 slots drain them in under 2 minutes.
DEFAULT_MAX_CONCURRENCY = 2048
DEFAULT_DIAL_CONCURRENCY = 64  # RLPx dials at once: each holds a TCP connection and a handshake's crypto
# Dials of records that never answered discovery, at once, beside those: most such records are stale or behind NAT,
# and their dial waits out a connect timeout (dialer.SILENT_CONNECT_TIMEOUT, 2 s) holding a file descriptor and no
# CPU.  20,000 of them drain in 20,000 / 256 x 2 s = ~2.6 minutes (~26 at 64 dials and 5 s), and they never hold back
# a dial of a node that answered.  With the 64 above and the crawl's few sockets, well inside the usual 1,024 open files.
DEFAULT_SILENT_DIAL_CONCURRENCY = 256
BOND_ATTEMPTS = 2  # a lost Ping or Pong is common on the real network
BOND_RETRY_BACKOFF = 1.0  # s, before the second bond attempt
# Stop walking down a peer's buckets after this many answers in a row that
# taught us nothing: the lower buckets of a table are almost always empty.
EMPTY_ANSWERS_TO_STOP = 2
# A v5 FINDNODE met by silence is asked again before it counts as silence: a lost datagram is common on the real
# network (and on a saturated crawler, a late one), and each request reads distances no other request reads.  (v4's
# FindNode is asked again by discovery after silence, with a Ping that repairs a forgotten bond first.)  Silence is
# not an empty answer: it does not end a walk as answers that bring nothing new do; ``EMPTY_ANSWERS_TO_STOP``
# silences in a row end it (the peer has gone).
V5_FINDNODE_ATTEMPTS = 2
# A peer that does not rank by keccak256(target) is read region by region of the raw target space
# (targets.RegionWalk), then with random targets until this many answers in a row bring nothing new: a
# sample for a peer ranking some third way, three requests more for one the regions read whole.
RANDOM_EMPTY_ANSWERS_TO_STOP = 3
# Requests to such a peer in all: the regions read a table of M entries in ~2M/16 requests, so this reads
# ~500 (an ethereumjs table holds a few hundred), four times what a geth table's bucket walk may take.
UNHASHED_TARGETS_MAX = 68
PEER_PACING = 0.0  # s between two requests to the same peer (one request at a time already)
# v5 FINDNODE: distances per request once answers stop filling a request.  geth
# and chainsafe return at most 16 records per request whatever is asked, so
# dense top buckets are asked one at a time and a full multi-distance answer is
# asked again distance by distance.
V5_DISTANCES_PER_REQUEST = 3
# Stop reading a v5 peer's table after this many distances in a row that
# taught us nothing.  Small tables are sparse: a child can sit at distance 250
# with nothing between it and 256, so this is far more patient than v4's rule.
V5_EMPTY_DISTANCES_TO_STOP = 16
# An edge is stored as ``target index << EDGE_PROTOCOL_BITS | protocol bits`` in
# the source's sorted ``array('I')``: 2 bits for v4 and v5, 30 bits of node
# index (a billion nodes).
EDGE_PROTOCOL_BITS = 2
EDGE_PROTOCOL_BIT = {"v4": 1, "v5": 2}
# New nodes one peer may have introduced that no other peer has returned yet: a real
# table holds at most 17 buckets x 16 = 272 nodes; twice that allows for its churn
# during the crawl.  Past it the peer is lying (a sybil address supplied 10,513 nodes
# in 60 s), and its further unconfirmed news is dropped.
UNCONFIRMED_PER_SOURCE = 2 * 17 * 16


class Dialer(Protocol):
    """One RLPx attempt at ``node``; its TCP connect given up after ``connect_timeout`` s (the later stages' own)."""

    async def __call__(self, node: Node, enr: ENR | None, *, connect_timeout: float) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlConfig:
    concurrency: int = DEFAULT_CONCURRENCY  # peers enumerated at once, at first and at least
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY  # at most (equal to ``concurrency``: a fixed limit)
    dial_concurrency: int = DEFAULT_DIAL_CONCURRENCY  # dials of nodes that answered discovery, at once
    silent_dial_concurrency: int = DEFAULT_SILENT_DIAL_CONCURRENCY  # dials of records that never did, beside those
    dial_silent: bool = True  # False: records that never answered discovery are not dialed
    connect_timeout: float = CONNECT_TIMEOUT  # s, a dial of a node that answered
    silent_connect_timeout: float = SILENT_CONNECT_TIMEOUT  # s, a dial of a record that never did
    bond_attempts: int = BOND_ATTEMPTS
    bond_retry_backoff: float = BOND_RETRY_BACKOFF
    empty_answers_to_stop: int = EMPTY_ANSWERS_TO_STOP
    v5_findnode_attempts: int = V5_FINDNODE_ATTEMPTS
    random_empty_answers_to_stop: int = RANDOM_EMPTY_ANSWERS_TO_STOP
    unhashed_targets_max: int = UNHASHED_TARGETS_MAX
    peer_pacing: float = PEER_PACING
    v5_distances_per_request: int = V5_DISTANCES_PER_REQUEST
    v5_empty_distances_to_stop: int = V5_EMPTY_DISTANCES_TO_STOP
    # Dial every node with a TCP port, not only those that look like execution-layer nodes.
    dial_all: bool = False
    # The sybil bound (``sybil.py`` and ``_admit``).
    address_limits: AddressLimits = AddressLimits()
    unconfirmed_per_source: int = UNCONFIRMED_PER_SOURCE


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
    answered_v4: int = 0
    answered_v5: int = 0
    # Relayed nodes refused by the sybil bound, per rule (sybil.DROP_RULES), and in all.
    dropped_by_rule: tuple[tuple[str, int], ...] = ()
    # v4 peers whose answers did not follow keccak256(target), read by raw-target regions instead.
    unhashed_peers: int = 0
    concurrency: int = 0  # the visit limit now (``governor``)
    max_concurrency_reached: int = 0  # the highest it went
    # The governor's periods, and those in which the crawl used at least ``governor.CPU_LIMIT`` of a core
    # (``governor.cpu_saturated``: the limit then widens no further); 0 and 0 for a fixed limit.
    governed_periods: int = 0
    cpu_saturated_periods: int = 0
    # Of ``dials_started`` and ``dials_in_flight``: dials of records that had not answered discovery (short connect).
    silent_dials_started: int = 0
    silent_dials_in_flight: int = 0

    @property
    def dropped(self) -> int:
        return sum(count for _, count in self.dropped_by_rule)


@dataclass(eq=False, slots=True)
class _NodeState:
    """What the crawl keeps of one known node, for the whole crawl: kept small (BENCHMARKS.md, bytes per known node).

    The node's ENR is held as its signed RLP (``record``, ~150-300 bytes), not as an ``ENR`` (~1.4 KB with its
    decoded pairs and parsed key): ``enr`` decodes it again, unverified (it was verified when it came in), on the
    few occasions a visit or a dial needs it.
    """

    node: Node
    source: str
    index: int  # order of discovery: what other nodes' edge arrays name this node by
    record: bytes | None = None
    record_seq: int = -1  # the ENR seq of ``record`` (-1: no record), so a newer one is told without decoding
    visited: bool = False
    responded: bool = False
    dial_queued: bool = False
    v4_started: bool = False
    v5_started: bool = False
    answered: int = 0  # discovery protocols that answered: EDGE_PROTOCOL_BIT bits (a set would take ~200 bytes)
    # The nodes this one returned in the crawl, over which protocols (see ``_add_edge``); None until its first
    # (most records of a real network never answer).
    returned: array[int] | None = None
    # The sybil bound: who first told us of this node (None once another peer confirmed it, and for
    # seeds), and how many nodes this one introduced that nobody confirmed yet.
    introducer: _NodeState | None = None
    unconfirmed: int = 0
    returned_by: int = 0  # distinct peers that returned this node: the frontier's measure of "likely alive"

    @property
    def enr(self) -> ENR | None:
        return None if self.record is None else ENR.from_rlp(self.record, verify=False)

    def keep_enr(self, enr: ENR) -> None:
        self.record, self.record_seq = enr.to_rlp(), enr.seq

    @property
    def protocols(self) -> tuple[str, ...]:
        """The discovery protocols that answered, sorted."""
        return tuple(name for name, bit in EDGE_PROTOCOL_BIT.items() if self.answered & bit)


class Crawler:
    """One crawl over discovery v4, v5 or both.  Create, then ``await crawler.run(seeds)``.

    ``discovery`` is the v4 node (None: v4 is not crawled), ``discovery_v5``
    the v5 node (None: v5 is not crawled); at least one must be given.
    """

    def __init__(
        self,
        discovery: DiscoveryV4 | None,
        targets: TargetTable,
        records: trio.MemorySendChannel[object],
        *,
        crawl_id: int,
        config: CrawlConfig = CrawlConfig(),
        dialer: Dialer | None = None,
        wall_clock: Callable[[], float] = time.time,
        cpu_clock: Callable[[], float] = time.thread_time,
        discovery_v5: DiscoveryV5 | None = None,
        excluded: frozenset[bytes] = frozenset(),
    ) -> None:
        if discovery is None and discovery_v5 is None:
            raise ValueError("a crawl needs discovery v4, v5 or both")
        self.discovery = discovery
        self.discovery_v5 = discovery_v5
        local = discovery if discovery is not None else discovery_v5
        assert local is not None
        # Us, and every identity ethcrawl used before on this database (db.identity): never nodes, edges or dials.
        self._excluded = excluded | {local.node_id}
        self.targets = targets
        self.records = records
        self.crawl_id = crawl_id
        self.config = config
        self.dialer = dialer
        self._wall_clock = wall_clock
        self._nodes: dict[bytes, _NodeState] = {}
        self._frontier: Frontier[_NodeState] = Frontier()
        # Dials wait in two queues, each with its own limit: nodes that answered discovery, and silent records.
        # Most silent records are dead (a dial there waits out its connect timeout), and a crawl of 100,000 records
        # dialed 10,000 of them in 600 s before it reached the live nodes queued behind them: 1.5% of client ids.
        self._dial_queue: deque[_NodeState] = deque()
        self._silent_dial_queue: deque[_NodeState] = deque()
        self._in_flight = 0
        self._dials_in_flight = 0  # both queues'
        self._dials_started = 0
        self._silent_dials_in_flight = 0
        self._silent_dials_started = 0
        self._edges = 0
        self._relay_rejected = 0
        self._bound = AddressBound(config.address_limits)
        self._dropped: Counter[str] = Counter()
        self._unhashed_peers = 0
        self._wakeup = trio.Event()
        # Nodes visited once more because they answered only after their visit gave up (at most once each).
        self._revisited: set[bytes] = set()
        if discovery is not None:
            discovery.on_late_reply = self._answered_late
        self._governor = Governor(floor=config.concurrency, ceiling=max(config.concurrency, config.max_concurrency))
        self._highest_limit = self._governor.limit
        # The CPU the event loop used, for the governor's CPU share: the loop thread's ``time.thread_time``, not
        # the process's: the database writer's thread spends much of its time in SQLite, which runs beside the loop
        # on another core without the GIL, so the process's share overstates how busy the loop is.  What the
        # writer's Python part takes from the loop shows as the loop's lag.  Injected for MockClock tests, whose
        # periods pass in no real time.
        self._cpu_clock = cpu_clock
        self._late_answers = 0  # answers that came after their window, since the governor's last period
        self._governed_periods = 0
        self._cpu_saturated_periods = 0

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
            answered_v4=sum(1 for s in self._nodes.values() if s.answered & EDGE_PROTOCOL_BIT["v4"]),
            answered_v5=sum(1 for s in self._nodes.values() if s.answered & EDGE_PROTOCOL_BIT["v5"]),
            dropped_by_rule=tuple((rule, self._dropped[rule]) for rule in DROP_RULES),
            unhashed_peers=self._unhashed_peers,
            concurrency=self._governor.limit,
            max_concurrency_reached=self._highest_limit,
            governed_periods=self._governed_periods,
            cpu_saturated_periods=self._cpu_saturated_periods,
            silent_dials_started=self._silent_dials_started,
            silent_dials_in_flight=self._silent_dials_in_flight,
        )

    async def run(self, seeds: list[Node | ENR]) -> CrawlStats:
        """Crawl from ``seeds`` until every discovered node has been visited (and dialed)."""
        async with trio.open_nursery() as nursery:
            if self.discovery is not None:
                nursery.start_soon(self._consume_late_nodes, self.discovery)
            if self.discovery_v5 is not None:
                nursery.start_soon(self._consume_late_v5_nodes, self.discovery_v5)
            if not self._governor.fixed:
                nursery.start_soon(self._govern)
            for seed in seeds:
                node = seed.to_node() if isinstance(seed, ENR) else seed
                if node.node_id not in self._nodes:
                    self._bound.admit(node.ip, node.udp)  # seeds are trusted, but their addresses count
                await self._learn(node, source="bootnode", enr=seed if isinstance(seed, ENR) else None)
            while True:
                while self._frontier and self._in_flight < self._governor.limit:
                    state = self._frontier.pop()
                    self._in_flight += 1
                    nursery.start_soon(self._visit_guarded, state)
                self._start_dials(nursery)
                waiting = self._frontier or self._dial_queue or self._silent_dial_queue
                if not (waiting or self._in_flight or self._dials_in_flight):
                    break
                await self._wakeup.wait()
                self._wakeup = trio.Event()
            nursery.cancel_scope.cancel()  # the late-nodes readers and the governor
        return self.statistics()

    async def _govern(self) -> None:
        """Once a period: widen the visit limit while every slot is busy, visits wait and the core has room;
        narrow it when the event loop runs late, or answers come late while the core is saturated (the CPU is the
        limit: answers would wait in the socket past their windows).  ``governor`` holds the rule."""
        while True:
            asleep, cpu_before = trio.current_time(), self._cpu_clock()
            self._late_answers = 0
            await trio.sleep(PERIOD)
            wall = trio.current_time() - asleep
            lag = wall - PERIOD
            cpu_share = (self._cpu_clock() - cpu_before) / wall
            backlogged = bool(self._frontier) and self._in_flight >= self._governor.limit
            before, late = self._governor.limit, self._late_answers
            limit = self._governor.adjust(lag=lag, backlogged=backlogged, cpu_share=cpu_share, late_answers=late)
            self._governed_periods += 1
            if cpu_saturated(cpu_share):
                self._cpu_saturated_periods += 1
            if limit != before:
                log.debug(
                    "visit limit %d -> %d lag=%.3f backlogged=%s cpu_share=%.2f late_answers=%d",
                    before, limit, lag, backlogged, cpu_share, late,
                )
                self._highest_limit = max(self._highest_limit, limit)
                self._wakeup.set()

    # ------------------------------------------------------------------ internals

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), tz=timezone.utc)

    async def _emit(self, record: object) -> None:
        await self.records.send(record)

    async def _emit_all(self, records: list[object]) -> None:
        """Send the records of one answer as one list: a channel send is a trio checkpoint (a trip through the
        scheduler), once per answer rather than once per node and edge.  The writer takes lists as records."""
        if records:
            await self.records.send(records)

    async def _learn(self, node: Node, *, source: str, enr: ENR | None = None) -> _NodeState | None:
        out: list[object] = []
        state = self._learn_into(out, node, source=source, enr=enr)
        await self._emit_all(out)
        return state

    def _learn_into(self, out: list[object], node: Node, *, source: str, enr: ENR | None = None) -> _NodeState | None:
        """``_learn`` without the send: the records it makes go to ``out``."""
        if node.node_id in self._excluded:
            return None
        state = self._nodes.get(node.node_id)
        if state is None:
            state = _NodeState(node=node, source=source, index=len(self._nodes))
            if enr is not None:
                state.keep_enr(enr)
            self._nodes[node.node_id] = state
            self._frontier.push(state, _priority(state))
            self._wakeup.set()
            out.append(self._node_seen(state))
        elif enr is not None and enr.seq > state.record_seq:
            state.keep_enr(enr)
            out.append(self._node_seen(state))
            if state.visited and self._wants_v5(state):
                # Known before only without a record: now it can be asked over v5 too.
                self._frontier.push(state, _priority(state))
                self._wakeup.set()
        return state

    async def _emit_node(self, state: _NodeState) -> None:
        await self._emit(self._node_seen(state))

    def _node_seen(self, state: _NodeState) -> NodeSeen:
        # The RLPx port of the node's newest record (it signed it), not the one a NEIGHBORS entry named.
        node = state.node if state.record is None else _dial_target(state.node, state.enr)
        return NodeSeen(
            crawl_id=self.crawl_id,
            node_id=node.node_id,
            pubkey=node.pubkey,
            ip=str(node.ip) if node.ip is not None else None,
            udp=node.udp,
            tcp=node.tcp,
            enr=state.record,
            enr_seq=state.record_seq if state.record is not None else None,
            seen_at=self._now(),
            source=state.source,
            responded=state.responded,
            protocols=state.protocols,
        )

    async def _visit_guarded(self, state: _NodeState) -> None:
        try:
            await self._visit(state)
        except Exception:  # a bug in one visit must not end the crawl
            log.exception("visit failed node=%s", state.node.node_id.hex()[:16])
        finally:
            self._in_flight -= 1
            self._wakeup.set()

    def _start_dials(self, nursery: trio.Nursery) -> None:
        """Start what each dial queue's own limit allows: silent records never hold back a node that answered."""
        answering = self.config.dial_concurrency - (self._dials_in_flight - self._silent_dials_in_flight)
        for _ in range(min(answering, len(self._dial_queue))):
            self._dials_in_flight += 1
            self._dials_started += 1
            nursery.start_soon(self._dial_guarded, self._dial_queue.popleft(), False)
        silent = self.config.silent_dial_concurrency - self._silent_dials_in_flight
        for _ in range(min(silent, len(self._silent_dial_queue))):
            self._dials_in_flight += 1
            self._dials_started += 1
            self._silent_dials_in_flight += 1
            self._silent_dials_started += 1
            nursery.start_soon(self._dial_guarded, self._silent_dial_queue.popleft(), True)

    async def _dial_guarded(self, state: _NodeState, silent: bool) -> None:
        """One attempt (never retried); ``silent``: the record had not answered discovery when its visit ended,
        so its connect gets the short timeout."""
        assert self.dialer is not None
        timeout = self.config.silent_connect_timeout if silent else self.config.connect_timeout
        try:
            enr = state.enr
            await self.dialer(_dial_target(state.node, enr), enr, connect_timeout=timeout)
        except Exception:
            log.exception("dial failed node=%s", state.node.node_id.hex()[:16])
        finally:
            self._dials_in_flight -= 1
            if silent:
                self._silent_dials_in_flight -= 1
            self._wakeup.set()

    async def _retried(self, attempt: Callable[[], Awaitable[T]]) -> T | None:
        """The first truthy result of up to ``bond_attempts`` tries, backing off between them; None if all failed.

        A lost Ping or Pong (v4) or PING or PONG (v5) is common on the real network.
        """
        for number in range(self.config.bond_attempts):
            if number:
                await trio.sleep(self.config.bond_retry_backoff * number)
            result = await attempt()
            if result:
                return result
        return None

    def _wants_v4(self, state: _NodeState) -> bool:
        node = state.node
        return (
            self.discovery is not None
            and not state.v4_started
            and "v4" not in state.protocols  # a revisit (``_answered_late``) the first visit made needless
            and node.ip is not None
            and bool(node.udp)
        )

    def _answered_late(self, node_id: bytes) -> None:
        """``node_id`` answered after its request timed out: it is alive.  If v4 has not heard it in time yet,
        visit it once more, early: its window now fits its round trip (``rtt``).  Found at 30,000 records: with
        the crawler's CPU (or the machine) saturated, a quarter of the live nodes answered only after their bond
        attempts had given up, and the tables only they held went unread."""
        self._late_answers += 1  # for the governor: on a saturated core, a sign answers wait in the socket
        state = self._nodes.get(node_id)
        if state is None or not state.v4_started or "v4" in state.protocols or node_id in self._revisited:
            return
        self._revisited.add(node_id)
        state.v4_started = False
        self._frontier.push(state, RETURNS_THAT_COUNT)
        self._wakeup.set()

    def _wants_v5(self, state: _NodeState) -> bool:
        if self.discovery_v5 is None or state.v5_started or state.record is None:
            return False
        enr = state.enr
        return enr is not None and enr.node_id is not None and enr_address(enr) is not None

    async def _visit(self, state: _NodeState) -> None:
        state.visited = True
        async with trio.open_nursery() as nursery:
            if self._wants_v4(state):
                state.v4_started = True
                nursery.start_soon(self._isolated, "v4", self._visit_v4, state, nursery)
            self._start_v5(state, nursery)
        self._queue_dial(state)

    def _start_v5(self, state: _NodeState, nursery: trio.Nursery) -> None:
        if self._wants_v5(state):
            state.v5_started = True
            nursery.start_soon(self._isolated, "v5", self._visit_v5, state)

    async def _isolated(self, protocol: str, visit: Callable[..., Awaitable[None]], state: _NodeState, *args: object) -> None:
        """One protocol's visit; a failure there must not cancel the other protocol's visit of the node."""
        try:
            await visit(state, *args)
        except Exception:
            log.exception("%s visit failed node=%s", protocol, state.node.node_id.hex()[:16])

    async def _visit_v4(self, state: _NodeState, nursery: trio.Nursery) -> None:
        discovery = self.discovery
        assert discovery is not None
        node = state.node
        if not await self._retried(partial(discovery.bond, node)):
            return
        state.responded = True
        state.answered |= EDGE_PROTOCOL_BIT["v4"]
        # A Pong without an ENR seq means no EIP-868: asking would only wait out the timeout.
        enr = await discovery.request_enr(node) if discovery.speaks_eip868(node) else None
        if enr is not None and enr.seq >= state.record_seq:
            state.keep_enr(enr)
            if enr.tcp and node.tcp is None:
                state.node = node = Node(pubkey=node.pubkey, ip=node.ip, udp=node.udp, tcp=enr.tcp)
        await self._emit_node(state)
        # With the record in hand, v5 can start alongside the v4 enumeration.
        self._start_v5(state, nursery)
        await self._enumerate(discovery, state)

    async def _enumerate(self, discovery: DiscoveryV4, state: _NodeState) -> None:
        """FindNode into each bucket of the peer, nearest-populated first, until answers dry up.

        The buckets are go-ethereum's, keyed by keccak256(target).  A peer whose answers show it ranks
        by something else is read by raw-target regions instead, from the answer that shows it.
        """
        ranking = RankingCheck()
        empty_in_a_row = 0
        silences = _Silences(self.config.empty_answers_to_stop)
        for _distance, target in self.targets.iter_targets_for_peer(state.node.node_id):
            returned: list[Node] = []
            new = await self._find_node(discovery, state, target, returned)
            if silences.gone(new):
                break
            if new is None:
                continue
            ranking.observe(target, [node.node_id for node in returned])
            if not ranking.hashed:
                break
            empty_in_a_row = 0 if new else empty_in_a_row + 1
            if empty_in_a_row >= self.config.empty_answers_to_stop:
                # The same 16 every time: a table of 16, or every target so far in one raw region.
                if ranking.undecided:
                    log.debug("identical full answers, one probe target node=%s", state.node.node_id.hex()[:16])
                    probe = _other_half_target(returned)
                    ranking.settle_undecided((await self._find_node(discovery, state, probe, []) or 0) > 0)
                break
        if not ranking.hashed:
            self._unhashed_peers += 1
            log.debug("answers ignore keccak256(target), raw regions node=%s", state.node.node_id.hex()[:16])
            await self._enumerate_unhashed(discovery, state)

    async def _enumerate_unhashed(self, discovery: DiscoveryV4, state: _NodeState) -> None:
        """Read a peer region by region of the raw target space, then by random targets until they dry up."""
        walk = RegionWalk()
        empty_in_a_row = 0
        silences = _Silences(self.config.empty_answers_to_stop)
        for _ in range(self.config.unhashed_targets_max):
            reading_regions = walk.regions_open > 0
            returned: list[Node] = []
            new = await self._find_node(discovery, state, walk.next_target(), returned)
            if silences.gone(new):
                break
            if new is None:
                continue
            walk.observe(node.pubkey for node in returned)
            if reading_regions:
                continue
            empty_in_a_row = 0 if new else empty_in_a_row + 1
            if empty_in_a_row >= self.config.random_empty_answers_to_stop:
                break

    async def _find_node(
        self, discovery: DiscoveryV4, state: _NodeState, target: bytes, returned: list[Node]
    ) -> int | None:
        """One FindNode to ``state``, its answer recorded; its believable nodes go to ``returned``.

        How many of them were news from this peer; None if it stayed silent (asked again by discovery).
        """
        if self.config.peer_pacing:
            await trio.sleep(self.config.peer_pacing)
        records = await discovery.find_node(state.node, target)
        if records is None:
            return None
        return await self._take_neighbors(state, records, returned)

    async def _visit_v5(self, state: _NodeState) -> None:
        v5 = self.discovery_v5
        enr = state.enr
        assert v5 is not None and enr is not None
        pong = await self._retried(partial(v5.ping, enr))
        if pong is None:
            return
        state.responded = True
        state.answered |= EDGE_PROTOCOL_BIT["v5"]
        if pong.enr_seq > enr.seq:
            # Its record changed since the one we were given: distance 0 is the node itself.  A newer
            # record without a usable endpoint is kept for the database, but we go on asking the
            # address that just answered.
            newer = [r for r in await self._find_node_v5(v5, enr, (0,)) or () if r.seq > enr.seq]
            if newer:
                state.keep_enr(newer[0])
                if enr_address(newer[0]) is not None:
                    enr = newer[0]
        await self._emit_node(state)
        await self._enumerate_v5(v5, state, enr)

    async def _enumerate_v5(self, v5: DiscoveryV5, state: _NodeState, enr: ENR) -> None:
        """FINDNODE from distance 256 downward until a run of distances brings nothing new."""
        distance = MAX_DISTANCE
        group_size = 1  # the top buckets of a real table are full: one distance per request
        empty_distances = 0
        silences = _Silences(self.config.empty_answers_to_stop)
        while distance >= 1 and empty_distances < self.config.v5_empty_distances_to_stop:
            group = tuple(range(distance, max(distance - group_size, 0), -1))
            answer = await self._find_node_v5(v5, enr, group)
            # No answer at all (not even an empty one), asked twice: a node that stopped answering FINDNODE is
            # not worth a timeout per distance.
            if silences.gone(answer):
                break
            if answer is None:
                distance -= len(group)  # silence says nothing of these distances
                continue
            records = answer
            if len(records) >= NODES_RESULT_LIMIT and len(group) > 1:
                # The answer hit the per-request cap: some distance was cut short.
                records = []
                for single in group:
                    records.extend(await self._find_node_v5(v5, enr, (single,)) or ())
            new = await self._take_v5_records(state, records)
            empty_distances = 0 if new else empty_distances + len(group)
            full = len(records) >= NODES_RESULT_LIMIT // 2
            group_size = 1 if full else self.config.v5_distances_per_request
            distance -= len(group)

    async def _find_node_v5(self, v5: DiscoveryV5, enr: ENR, distances: tuple[int, ...]) -> list[ENR] | None:
        """FINDNODE at ``distances``, asked again after silence (``V5_FINDNODE_ATTEMPTS``); None if silent every time."""
        for _ in range(self.config.v5_findnode_attempts):
            if self.config.peer_pacing:
                await trio.sleep(self.config.peer_pacing)
            answer = await v5.find_node(enr, distances)
            if answer is not None:
                return answer
        return None

    async def _take_v5_records(self, state: _NodeState, records: list[ENR]) -> int:
        """Record edges for ``records`` from a v5 NODES answer of ``state``; return how many were news from it."""
        new_from_peer = 0
        out: list[object] = []
        for record in records:
            try:
                node = record.to_node()
            except BadENR:
                continue  # find_node returns only verified v4-scheme records; this is belt and braces
            # A record may name no address (it is still a node of the DHT); one that does must be believable.
            if node.ip is not None and not self._believable(state, node.ip, node.udp or 0):
                continue
            new_from_peer += self._take_relayed(out, state, node, source="nodes", protocol="v5", enr=record)
        await self._emit_all(out)
        return new_from_peer

    async def _take_neighbors(
        self,
        state: _NodeState,
        records: list[NodeRecord] | tuple[NodeRecord, ...],
        returned: list[Node] | None = None,
    ) -> int:
        """Record edges for ``records`` returned by ``state``; return how many were news from it.

        ``returned`` collects the believable records as nodes.  Most entries of an answer name nodes known
        already: those are looked up by id and their known ``Node`` used, none is built for them.
        """
        new_from_peer = 0
        out: list[object] = []
        nodes = self._nodes
        for record in records:
            if not self._believable(state, record.ip, record.udp):
                continue
            known = nodes.get(node_id_from_pubkey(record.pubkey))
            if known is not None:
                node = known.node  # what we hold of it; the entry's address is not taken (as before)
            else:
                node = Node(pubkey=record.pubkey, ip=record.ip, udp=record.udp, tcp=record.tcp or None)
            if returned is not None:
                returned.append(node)
            new_from_peer += self._take_relayed(out, state, node, source="neighbors", protocol="v4")
        await self._emit_all(out)
        return new_from_peer

    def _believable(self, state: _NodeState, ip: IPAddress | None, port: int) -> bool:
        """geth's relay rule for an address ``state`` handed us (counted and logged when refused)."""
        sender_ip = state.node.ip
        if sender_ip is None:
            return True
        why = relay_error(sender_ip, ip, port)
        if why is not None:
            self._relay_rejected += 1
            log.debug("relayed node rejected from=%s why=%s", state.node.node_id.hex()[:16], why)
        return why is None

    def _take_relayed(
        self, out: list[object], state: _NodeState, node: Node, *, source: str, protocol: str, enr: ENR | None = None
    ) -> int:
        """Learn ``node`` and record the edge from ``state`` over ``protocol``; 1 if it was news from this peer.

        The records this makes go to ``out``, for the caller to send with the rest of the answer's.
        """
        if node.node_id in self._excluded or node.node_id == state.node.node_id:
            # Peers that met us list us too; we are not part of what we measure.  A peer listing itself is no edge.
            return 0
        known = self._nodes.get(node.node_id)
        if known is None and not self._admit(state, node):
            return 0
        target = self._learn_into(out, node, source=source, enr=enr)
        assert target is not None  # only excluded ids are not learned, and they were turned away above
        self._note_introduction(state, target, known is None)
        if state.returned is None:
            state.returned = array("I")
        new_pair, new_over_protocol = _add_edge(state.returned, target.index, EDGE_PROTOCOL_BIT[protocol])
        self._edges += new_pair
        if new_pair:
            target.returned_by += 1
            if known is not None and self._frontier.waiting(target):
                self._frontier.push(target, _priority(target))  # one more peer knows it: more likely alive
        if not new_over_protocol:
            return 0
        out.append(
            EdgeSeen(
                crawl_id=self.crawl_id, from_id=state.node.node_id, to_id=node.node_id, seen_at=self._now(),
                protocol=protocol,
            )
        )
        return 1

    def _admit(self, source: _NodeState, node: Node) -> bool:
        """The sybil bound for a node ``source`` is the first to tell us of (counted and logged when refused).

        Charged here, before any await: a peer's answers are taken by several tasks at once.
        """
        rule: str | None = "source"
        if source.unconfirmed < self.config.unconfirmed_per_source:
            rule = self._bound.admit(node.ip, node.udp)
        if rule is not None:
            self._dropped[rule] += 1
            log.debug("relayed node dropped from=%s rule=%s", source.node.node_id.hex()[:16], rule)
            return False
        source.unconfirmed += 1
        return True

    @staticmethod
    def _note_introduction(source: _NodeState, target: _NodeState, new: bool) -> None:
        """Remember who introduced a new node (``_admit`` charged it); a second peer returning it confirms it."""
        if new:
            target.introducer = source
        elif target.introducer is not None and target.introducer is not source:
            target.introducer.unconfirmed -= 1
            target.introducer = None

    async def _consume_late_nodes(self, discovery: DiscoveryV4) -> None:
        async for late in discovery.late_nodes:
            state = self._nodes.get(late.sender.node_id)
            if state is not None:
                await self._take_neighbors(state, late.nodes)

    async def _consume_late_v5_nodes(self, v5: DiscoveryV5) -> None:
        async for late in v5.late_nodes:
            self._late_answers += 1  # for the governor, as v4's in ``_answered_late``
            state = self._nodes.get(late.sender_id)
            if state is not None:
                await self._take_v5_records(state, list(late.records))

    def _queue_dial(self, state: _NodeState) -> None:
        if self.dialer is None or state.dial_queued or not state.node.tcp:
            return
        if not (self.config.dial_all or _looks_like_execution(state)):
            return
        if not (state.responded or self.config.dial_silent):
            return  # not queued: should it answer later (``_answered_late``), its revisit queues it then
        state.dial_queued = True
        (self._dial_queue if state.responded else self._silent_dial_queue).append(state)
        self._wakeup.set()


@dataclass(slots=True)
class _Silences:
    """Requests of one peer's walk met by silence in a row (``EMPTY_ANSWERS_TO_STOP`` end it: the peer has gone).

    Silence is not an empty answer: it neither ends a walk as answers that bring nothing new do, nor is it read as
    one (no ranking check, no distance counted empty).
    """

    limit: int
    in_a_row: int = 0

    def gone(self, answer: object | None) -> bool:
        """Note an answer (None: silence); whether the walk should end here."""
        self.in_a_row = self.in_a_row + 1 if answer is None else 0
        return self.in_a_row >= self.limit


def _add_edge(returned: array[int], target: int, protocol_bit: int) -> tuple[bool, bool]:
    """Note that the owner of ``returned`` returned node ``target`` over a protocol: (new pair, new over that protocol).

    Edges are distinct (A, B) pairs over any protocol, so the live count and the
    database's agree.  The array is sorted by target index; an insert moves
    at most a table's worth of entries (a real table holds at most 272).
    Measured: 4.9 bytes per edge (4 per entry, plus the array's growth slack
    and its 80-byte header, for 1,000 nodes returning 100 peers each:
    ``tests/crawler/test_engine.py``), against ~250 for a set of (id, id)
    tuples; ~5 MB for mainnet's ~1M edges.
    """
    key = target << EDGE_PROTOCOL_BITS
    at = bisect_left(returned, key)
    if at < len(returned) and returned[at] >> EDGE_PROTOCOL_BITS == target:
        old = returned[at]
        returned[at] = old | protocol_bit
        return False, not old & protocol_bit
    returned.insert(at, key | protocol_bit)
    return True, True


def _other_half_target(answer: list[Node]) -> bytes:
    """A random target in the other half of the raw 64-byte space from where ``answer``'s keys lie.

    A peer ranking by XOR distance to the raw target (ethereumjs) answers with keys sharing the target
    region's top bit first; so if its table holds more than the 16 it gave, a target in the other half
    must bring some of them.  A peer ranking by keccak256(target) sees just another random target.
    """
    upper = sum(node.pubkey[0] >> 7 for node in answer)
    return random_target(prefix=0 if 2 * upper > len(answer) else 1, prefix_bits=1)


def _priority(state: _NodeState) -> int:
    """Visit order (``frontier``): seeds first, then nodes by how many distinct peers returned them (capped)."""
    return SEED_PRIORITY if state.source == "bootnode" else min(state.returned_by, RETURNS_THAT_COUNT)


def _dial_target(node: Node, enr: ENR | None) -> Node:
    """Where to dial ``node``: the RLPx port of its newest record ``enr`` (signed by the node; a NEIGHBORS entry may
    be old, and a node that moved its port is refused at the old one), at the address we know it by."""
    if enr is not None and enr.tcp and enr.tcp != node.tcp and enr.ip in (None, node.ip):
        return Node(pubkey=node.pubkey, ip=node.ip, udp=node.udp, tcp=enr.tcp)
    return node


def _looks_like_execution(state: _NodeState) -> bool:
    """Worth an RLPx dial: the record says execution layer, or nothing says otherwise and it speaks v4.

    Consensus-layer records advertise a libp2p TCP port, where RLPx would only
    time out.  A node without a record was learned through discovery v4 (the
    execution layer's DHT) or given as an enode URL.
    """
    enr = state.enr
    if enr is None:
        return True
    layer = classify(enr).layer
    return layer == "execution" or (layer == "other" and bool(state.answered & EDGE_PROTOCOL_BIT["v4"]))
