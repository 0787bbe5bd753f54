"""A discovery v4 node on one UDP socket, speaking go-ethereum's protocol.

It does three jobs, like geth's ``p2p/discover/v4_udp.go``:

* **requests** (``ping``, ``find_node``, ``request_enr``) whose replies are
  matched by sender and packet type (Pong by ping hash, ENRResponse by request
  hash, NEIGHBORS collected until 16 nodes or the timeout);
* **serving** other nodes as geth does: Pong to every Ping (echoing its hash),
  a ping-back to senders we have no recent Pong from, NEIGHBORS only to bonded
  nodes (no amplification), our own signed ENR to ENRRequest;
* **bookkeeping of bonds**: geth answers FindNode only from a node whose Pong
  it received in the last 24 h, so before asking we make sure the remote has
  pinged us (and we answered) within that window.

Replies that arrive after their request timed out are not lost: NEIGHBORS from
a node we asked are handed to ``late_nodes`` so the crawl still sees them.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Awaitable, Callable, Mapping, Sequence, TypeVar

import trio

from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import PrivateKey, keccak256, node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.discv4 import (
    Decoded,
    Endpoint,
    ENRRequest,
    ENRResponse,
    FindNode,
    Neighbors,
    NodeRecord,
    Ping,
    Pong,
)
from ethcrawl.wire.enode import Node
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError
from ethcrawl.wire.lru import LRU

from .rtt import RoundTrips
from .table import RoutingTable, unwrap_ipv4
from .udp import Address, DatagramTransport, serve_datagrams

__all__ = ["DiscoveryConfig", "DiscoveryV4", "DiscoveryStats", "LateNodes", "make_local_enr"]

T = TypeVar("T")

log = logging.getLogger(__name__)

RESPONSE_TIMEOUT = 0.5  # s, geth respTimeout
BOND_EXPIRATION = 24 * 3600.0  # s, geth bondExpiration: how long a Pong counts as proof
NEIGHBORS_PER_FINDNODE = 16  # geth's bucketSize: a full answer ends the wait early
# Stock @ethereumjs/devp2p sends NEIGHBORS of ~1373 bytes (16 nodes in one
# datagram).  We send at most 1280 bytes but deliberately accept up to this
# size so such nodes can still be crawled.
MAX_RECEIVE_SIZE = 2048  # bytes
PEERS_REMEMBERED = 1 << 18  # (node, ip) pairs whose bookkeeping is kept: more than a mainnet crawl meets
# Requests that timed out, remembered so a late reply still measures its peer's round trip: late replies come within
# seconds, and a crawl has at most a few thousand requests out at once; most entries are dead records' Pings.
TIMED_OUT_REMEMBERED = 1 << 14


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryConfig:
    """Tunables of the discovery node.  Defaults follow go-ethereum."""

    response_timeout: float = RESPONSE_TIMEOUT
    # Wait longer for a peer whose earlier answers (late ones included) came slowly: a window of a few of
    # its round trips, never below response_timeout (``rtt.RoundTrips``).  False: geth's fixed window.
    rtt_windows: bool = True
    bond_expiration: float = BOND_EXPIRATION
    # After our Pong the remote pings us back; geth waits one respTimeout for that.
    ping_back_wait: float = RESPONSE_TIMEOUT
    max_receive_size: int = MAX_RECEIVE_SIZE
    # Serve FindNode only for bonded nodes; switching it off is for tests only.
    require_bond_for_findnode: bool = True
    # A FindNode or ENRRequest met by silence: the node may lack our endpoint proof (its ping-back
    # or our Pong was lost, or it forgot us: a peer's bond may expire sooner than ours).  Ping it
    # again and ask again, once per node until it answers a request again (geth re-pings after
    # 5 failed FINDNODEs; one silence is enough for a crawler, which asks each peer only a few times).
    rebond_on_silence: bool = True
    # False: behave as a pre-EIP-868 node (nimbus-eth1): no ENR seq in Ping/Pong,
    # ENRRequests ignored.  Used by the devnet's awkward nodes.
    serve_enr_requests: bool = True
    # s to wait before answering a Ping, FindNode or ENRRequest (devnet "slow responders").
    reply_delay: float = 0.0
    # Nodes remembered for bonds, EIP-868 support and late answers.  Peers choose the keys
    # (a fresh key per packet costs them nothing), so this is bounded; a node forgotten is
    # simply pinged again.
    peers_remembered: int = PEERS_REMEMBERED


@dataclass(frozen=True, slots=True)
class DiscoveryStats:
    packets_in: int
    packets_out: int
    bad_packets: int
    expired_packets: int
    unsolicited: int
    late_neighbors: int
    timeouts: int
    bonded_nodes: int
    findnode_requests: int


@dataclass(frozen=True, slots=True)
class LateNodes:
    """NEIGHBORS that arrived after their FindNode gave up: still worth crawling."""

    sender: Node
    nodes: tuple[NodeRecord, ...]


@dataclass(eq=False)
class _Waiter:
    """One outstanding request: which replies match it and what they delivered."""

    sender_id: bytes
    packet_type: int
    matches: Callable[[Decoded], bool]
    want: int = 1  # NEIGHBORS: nodes wanted before the wait ends early
    sent_at: float = 0.0  # trio time the request left: its first reply measures the round trip
    event: trio.Event = field(default_factory=trio.Event)
    replies: list[Decoded] = field(default_factory=list)
    collected: int = 0


@dataclass(slots=True, eq=False)
class _Peer:
    """What we remember of one (node id, ip): go-ethereum's node database row for it, and our own marks.

    One record per peer, not one map per fact: a crawl knows hundreds of thousands of peers, and each
    map entry costs its own key and ordering node (issue 12).  Times are trio's; None: never.
    """

    pong: float | None = None  # its last Pong: proof of its endpoint (geth's bond, lastPongReceived)
    ping: float | None = None  # its last Ping, which we answered: its proof of ours (lastPingReceived)
    speaks_eip868: bool | None = None  # its last Pong to our Ping carried an ENR seq; None: none came yet
    asked: bool = False  # we sent it a FindNode: its late NEIGHBORS are welcome
    rebonded: bool = False  # bonded again after a silence (rebond_on_silence), and no answer since


def _peer_key(node_id: bytes, ip: str) -> bytes:
    """The bookkeeping key of a node at an IP (text, IPv4 unmapped), as geth's node database keys it.

    One bytes object (the 32-byte id, then the IP text) rather than a tuple of two: the tuple and a
    string of its own cost a peer ~120 bytes more, and the id's fixed length keeps the join unambiguous.
    """
    return node_id + ip.encode()


def _node_key(node: Node) -> bytes:
    return _peer_key(node.node_id, str(node.ip))


def endpoint_of(ip: str, udp: int, tcp: int) -> Endpoint:
    return Endpoint(ip=ip_address(ip), udp=udp, tcp=tcp)


class DiscoveryV4:
    """The discovery v4 protocol on one UDP socket.

    Run it in a nursery: ``port = await nursery.start(node.run)``; then call the
    request methods from any task.  Sockets, time and concurrency live here; every
    byte goes through ``ethcrawl.wire.discv4``.
    """

    def __init__(
        self,
        private_key: PrivateKey,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tcp_port: int = 0,
        config: DiscoveryConfig = DiscoveryConfig(),
        wall_clock: Callable[[], float] = time.time,
        enr_seq: int = 1,
        transport: DatagramTransport | None = None,
        enr_extra: Mapping[str, object] | None = None,
        round_trips: RoundTrips | None = None,
    ) -> None:
        self.private_key = private_key
        # Per-peer round trips (shared with the v5 side of the same node, if the caller passes one).
        self.round_trips = round_trips if round_trips is not None else RoundTrips()
        self._enr_extra = enr_extra
        self.pubkey = pubkey_from_private(private_key)
        self.node_id = node_id_from_pubkey(self.pubkey)
        self.host = host
        self.port = port
        self.tcp_port = tcp_port
        self.config = config
        self._wall_clock = wall_clock
        self._enr_seq = enr_seq
        self.enr: ENR | None = None
        self.table: RoutingTable[Node] = RoutingTable(self.node_id)
        self._transport = transport
        self._socket: DatagramTransport | None = None
        self._waiters: dict[tuple[bytes, int], list[_Waiter]] = defaultdict(list)
        # Bonds, EIP-868 support, FindNodes sent and rebonds, per (node id, ip) as geth's node database keys them.
        self._peers: LRU[bytes, _Peer] = LRU(config.peers_remembered)
        self._ping_events: dict[bytes, trio.Event] = {}  # bonds under way, by peer key: waiting for the ping-back
        # When a request to each node last timed out: a late reply still measures its round trip.
        self._timed_out: LRU[bytes, float] = LRU(TIMED_OUT_REMEMBERED)
        # Called with a node's id when it answers after its request timed out: it is alive, only slow (or we
        # were too busy to read its answer in time).
        self.on_late_reply: Callable[[bytes], None] | None = None
        # Called with (peer ip, our ip as it saw us, our udp port as it saw us) for every Pong.
        self.on_endpoint_statement: Callable[[str, str, int], None] | None = None
        late_send, self.late_nodes = trio.open_memory_channel[LateNodes](256)
        self._late_send = late_send
        self._nursery: trio.Nursery | None = None
        self._counts: dict[str, int] = defaultdict(int)
        self._handlers: dict[type, Callable[[Decoded, Address], Awaitable[None]]] = {
            Ping: self._on_ping,
            Pong: self._on_pong,
            FindNode: self._on_findnode,
            Neighbors: self._on_neighbors,
            ENRRequest: self._on_enr_request,
            ENRResponse: self._on_enr_response,
        }

    # ------------------------------------------------------------------ service

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind the socket (unless a transport was injected), report the UDP port, serve until cancelled."""
        await serve_datagrams(self._transport, self.host, self.port, partial(self._serve, task_status=task_status))

    async def _serve(self, transport: DatagramTransport, *, task_status: trio.TaskStatus[int]) -> None:
        self.port = transport.local_address[1]
        if not self.tcp_port:
            self.tcp_port = self.port
        self._socket = transport
        self.enr = self._make_enr()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self.port)
            await self._receive_loop(transport)

    def _make_enr(self) -> ENR:
        return make_local_enr(
            self.private_key, self.host, self.port, self.tcp_port, seq=self._enr_seq, extra=self._enr_extra
        )

    @property
    def local_node(self) -> Node:
        return Node(pubkey=self.pubkey, ip=ip_address(self.host), udp=self.port, tcp=self.tcp_port)

    def statistics(self) -> DiscoveryStats:
        now = trio.current_time()
        bonded = sum(1 for peer in self._peers.values() if self._within_bond(peer.pong, now))
        return DiscoveryStats(
            packets_in=self._counts["in"],
            packets_out=self._counts["out"],
            bad_packets=self._counts["bad"],
            expired_packets=self._counts["expired"],
            unsolicited=self._counts["unsolicited"],
            late_neighbors=self._counts["late"],
            timeouts=self._counts["timeout"],
            findnode_requests=self._counts["findnode"],
            bonded_nodes=bonded,
        )

    async def _receive_loop(self, transport: DatagramTransport) -> None:
        while True:
            data, addr = await transport.recvfrom()
            self._counts["in"] += 1
            await self._handle_datagram(data, addr)

    async def _handle_datagram(self, data: bytes, addr: Address) -> None:
        try:
            decoded = discv4.decode(data, max_size=self.config.max_receive_size)
        except WireError as exc:
            self._counts["bad"] += 1
            log.debug("bad discv4 packet addr=%s:%d err=%s", addr[0], addr[1], exc)
            return
        handler = self._handlers.get(type(decoded.packet))
        if handler is None:  # pragma: no cover - the wire registry and this table agree
            return
        if self.config.reply_delay > 0 and isinstance(decoded.packet, (Ping, FindNode, ENRRequest)):
            # In its own task, so that one slow answer does not hold up the others.
            self._spawn(self._handle_later, handler, decoded, addr)
            return
        # Handled inline, replies included: a Pong must leave before anything
        # we send later (a FindNode right after bonding relies on that order).
        await handler(decoded, addr)

    async def _handle_later(
        self, handler: Callable[[Decoded, Address], Awaitable[None]], decoded: Decoded, addr: Address
    ) -> None:
        await trio.sleep(self.config.reply_delay)
        await handler(decoded, addr)

    def _advertised_enr_seq(self) -> int | None:
        if self.enr is None or not self.config.serve_enr_requests:
            return None
        return self.enr.seq

    # ------------------------------------------------------------------ sending

    async def _send(self, packet: discv4.Packet, addr: Address) -> bytes:
        """Sign, send, and return the packet hash (the reply matching key for Ping/ENRRequest)."""
        assert self._socket is not None, "run() must be started before sending"
        data = discv4.encode(packet, self.private_key)
        await self._socket.sendto(data, addr)
        self._counts["out"] += 1
        return data[:32]

    def _expiration(self) -> int:
        return discv4.expiration_for(self._wall_clock())

    def _expired(self, expiration: int) -> bool:
        return discv4.is_expired(expiration, self._wall_clock())

    def _our_endpoint(self, to: Address) -> Endpoint:
        # ethereumjs pings back the address in our Ping's `from`, so it must be our real one, in the
        # family the peer is reached by: the one our record names once we know it (see set_local_enr),
        # else the one we listen on.
        enr = self.enr
        if enr is not None:
            if ":" in to[0]:
                ip: IPv4Address | IPv6Address | None = enr.ip6
                udp = enr.udp6 or enr.udp
            else:
                ip, udp = enr.ip, enr.udp
            if ip is not None:
                return endpoint_of(str(ip), udp or self.port, self.tcp_port)
        return endpoint_of(self.host, self.port, self.tcp_port)

    def set_local_enr(self, enr: ENR) -> None:
        """Serve ``enr`` from now on (our endpoint as peers see it, learned by the caller); its seq must grow."""
        if enr.node_id != self.node_id or (self.enr is not None and enr.seq <= self.enr.seq):
            raise ValueError("a new local ENR must be ours and carry a higher seq")
        self.enr = enr
        self._enr_seq = enr.seq

    def _ping_packet(self, addr: Address) -> Ping:
        return Ping(
            version=4,
            from_=self._our_endpoint(addr),
            to=endpoint_of(addr[0], addr[1], 0),
            expiration=self._expiration(),
            enr_seq=self._advertised_enr_seq(),
        )

    # ------------------------------------------------------------------ requests

    async def _request(self, waiter: _Waiter, packet: discv4.Packet, addr: Address) -> list[Decoded]:
        return await self._request_raw(waiter, discv4.encode(packet, self.private_key), addr)

    async def ping(self, node: Node) -> Pong | None:
        """Ping ``node``; its Pong (echoing our hash), or None on timeout."""
        addr = _udp_addr(node)
        packet = self._ping_packet(addr)
        data = discv4.encode(packet, self.private_key)
        ping_hash = data[:32]
        waiter = _Waiter(
            sender_id=node.node_id,
            packet_type=Pong.packet_type,
            matches=lambda d: isinstance(d.packet, Pong) and d.packet.ping_hash == ping_hash,
        )
        # Sign once: the Pong must echo the hash of exactly these bytes.
        replies = await self._request_raw(waiter, data, addr)
        if not replies:
            return None
        pong = replies[0].packet
        assert isinstance(pong, Pong)
        self._peer(_peer_key(node.node_id, addr[0])).speaks_eip868 = pong.enr_seq is not None
        if self.on_endpoint_statement is not None and pong.to.ip is not None:
            self.on_endpoint_statement(addr[0], str(pong.to.ip), pong.to.udp)
        # A node that answered is live: it belongs in our own table (geth adds it as "verified").
        self.table.add_verified(node)
        return pong

    async def _request_raw(self, waiter: _Waiter, data: bytes, addr: Address) -> list[Decoded]:
        assert self._socket is not None, "run() must be started before sending"
        key = (waiter.sender_id, waiter.packet_type)
        self._waiters[key].append(waiter)
        try:
            waiter.sent_at = trio.current_time()
            await self._socket.sendto(data, addr)
            self._counts["out"] += 1
            with trio.move_on_after(self.response_window(waiter.sender_id)):
                await waiter.event.wait()
            if not waiter.event.is_set():
                self._counts["timeout"] += 1
                self._timed_out.set(waiter.sender_id, waiter.sent_at)
            return waiter.replies
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    del self._waiters[key]

    def response_window(self, node_id: bytes) -> float:
        """How long to wait for ``node_id``'s reply: geth's respTimeout, or more for a peer known to be slow."""
        if not self.config.rtt_windows:
            return self.config.response_timeout
        return self.round_trips.window(node_id, self.config.response_timeout)

    def _late_reply(self, sender_id: bytes) -> None:
        """A reply came after its request timed out: it still says how far the peer is."""
        sent_at = self._timed_out.pop(sender_id)
        if sent_at is not None:
            self.round_trips.observe(sender_id, trio.current_time() - sent_at)
            if self.on_late_reply is not None:
                self.on_late_reply(sender_id)

    def _peer(self, key: bytes) -> _Peer:
        """The record of the peer at ``key``, new if it has none (the least recently used one may go)."""
        peer = self._peers.get(key)
        if peer is None:
            peer = _Peer()
            self._peers.set(key, peer)
        return peer

    def _bonded_by_pong(self, key: bytes) -> bool:
        """Whether the peer at ``key`` proved its endpoint lately (its Pong): geth serves FindNode only then."""
        peer = self._peers.get(key)
        return peer is not None and self._within_bond(peer.pong, trio.current_time())

    def _within_bond(self, at: float | None, now: float) -> bool:
        """Whether a Ping or Pong seen ``at`` still counts as a bond at ``now`` (geth's bondExpiration)."""
        return at is not None and now - at < self.config.bond_expiration

    def speaks_eip868(self, node: Node) -> bool:
        """False only when the node's last Pong carried no ENR seq (pre-EIP-868, e.g. ethereumjs)."""
        peer = self._peers.get(_node_key(node))
        return peer is None or peer.speaks_eip868 is not False

    def is_bonded(self, node: Node) -> bool:
        """True when the remote verified our endpoint recently (it pinged us and got our Pong)."""
        peer = self._peers.get(_node_key(node))
        return peer is not None and self._within_bond(peer.ping, trio.current_time())

    async def bond(self, node: Node) -> bool:
        """Make sure ``node`` will answer FindNode from us, as geth's ``ensureBond``.

        geth answers FindNode only from a node whose Pong it received within 24 h.
        So: ping it; it answers Pong and, not knowing us, pings back; our Pong to
        that ping-back is what it needs.  Returns False when it never answered.
        """
        if self.is_bonded(node):
            return True
        return await self._ping_for_bond(node)

    async def _ping_for_bond(self, node: Node) -> bool:
        """Ping ``node`` and give it one response timeout to ping us back; False when no Pong came."""
        key = _node_key(node)
        ping_seen = self._ping_events.setdefault(key, trio.Event())
        try:
            if await self.ping(node) is None:
                return False
            with trio.move_on_after(self.config.ping_back_wait):
                await ping_seen.wait()
        finally:
            if self._ping_events.get(key) is ping_seen:
                del self._ping_events[key]
        # A node that pongs but never pings back (it remembers us, or is not geth)
        # may still answer; the crawl finds out with its first FindNode.
        return True

    async def _asked_again_after_silence(self, node: Node, ask: Callable[[], Awaitable[T | None]]) -> T | None:
        """``ask()``; if it met silence (None) and a new bond repairs the node's proof of us, ``ask()`` once more."""
        answer = await ask()
        if answer is None and await self._rebond_after_silence(node):
            answer = await ask()
        if answer is not None and (peer := self._peers.get(_node_key(node))) is not None:
            peer.rebonded = False  # it answered: its next silence may be repaired again
        return answer

    async def _rebond_after_silence(self, node: Node) -> bool:
        """After a request met silence: whether we bonded again (the node pinged us lately) and may ask again.

        Once per node until it answers a request again: a node that only ever pongs costs one more
        Ping, and a node whose bond with us expires again and again (a short bond period) is bonded
        again each time.  Our own view of the bond (24 h) says nothing about the node's.
        """
        if not self.config.rebond_on_silence:
            return False
        peer = self._peer(_node_key(node))
        if peer.rebonded:
            return False  # bonded again already, and it has not answered since
        peer.rebonded = True
        return await self._ping_for_bond(node) and self.is_bonded(node)

    async def find_node(self, node: Node, target: bytes) -> list[NodeRecord] | None:
        """Send FindNode(target); collect NEIGHBORS until 16 nodes or the timeout (again after a repaired bond).

        None when no NEIGHBORS came at all: silence (a lost datagram, a forgotten bond, a node gone) is not an
        empty answer, which go-ethereum sends as an empty NEIGHBORS.
        """
        return await self._asked_again_after_silence(node, partial(self._find_node_once, node, target))

    async def _find_node_once(self, node: Node, target: bytes) -> list[NodeRecord] | None:
        addr = _udp_addr(node)
        waiter = _Waiter(
            sender_id=node.node_id,
            packet_type=Neighbors.packet_type,
            matches=lambda d: isinstance(d.packet, Neighbors),
            want=NEIGHBORS_PER_FINDNODE,
        )
        self._peer(_peer_key(node.node_id, addr[0])).asked = True
        self._counts["findnode"] += 1
        packet = FindNode(target=target, expiration=self._expiration())
        replies = await self._request(waiter, packet, addr)
        if not replies:
            return None
        nodes: list[NodeRecord] = []
        for reply in replies:
            assert isinstance(reply.packet, Neighbors)
            nodes.extend(_unmapped_records(reply.packet.nodes))
        return nodes

    async def request_enr(self, node: Node) -> ENR | None:
        """EIP-868 ENRRequest; the verified record, or None (no answer, or a bad one); asked again after a repaired bond."""
        return await self._asked_again_after_silence(node, partial(self._request_enr_once, node))

    async def _request_enr_once(self, node: Node) -> ENR | None:
        addr = _udp_addr(node)
        packet = ENRRequest(expiration=self._expiration())
        data = discv4.encode(packet, self.private_key)
        request_hash = data[:32]
        waiter = _Waiter(
            sender_id=node.node_id,
            packet_type=ENRResponse.packet_type,
            matches=lambda d: isinstance(d.packet, ENRResponse) and d.packet.request_hash == request_hash,
        )
        replies = await self._request_raw(waiter, data, addr)
        if not replies:
            return None
        response = replies[0].packet
        assert isinstance(response, ENRResponse)
        try:
            record = response.enr()
        except WireError as exc:
            self._counts["bad"] += 1
            log.debug("bad ENR in ENRResponse node=%s err=%s", node.node_id.hex()[:16], exc)
            return None
        if record.node_id != node.node_id:
            self._counts["bad"] += 1
            log.debug("ENRResponse record for another node node=%s", node.node_id.hex()[:16])
            return None
        return record

    # ------------------------------------------------------------------ handlers

    def _deliver(self, decoded: Decoded, addr: Address) -> bool:
        """Hand a reply to the first waiter it matches; False if nobody asked for it."""
        key = (decoded.sender_id, type(decoded.packet).packet_type)
        for waiter in self._waiters.get(key, ()):
            if waiter.event.is_set() or not waiter.matches(decoded):
                continue
            if not waiter.replies:
                # Keyed by the id the caller asked with, not the decoded one: equal, and the caller's Node
                # keeps it anyway (a copy per peer would cost 65 bytes).
                self.round_trips.observe(waiter.sender_id, trio.current_time() - waiter.sent_at)
            waiter.replies.append(decoded)
            if isinstance(decoded.packet, Neighbors):
                count = len(decoded.packet.nodes)
                waiter.collected += count
                # geth fills each NEIGHBORS packet to 12 before starting the next, so
                # any other count ends the answer (ethereumjs sends all 16 in one).
                if waiter.collected < waiter.want and count == discv4.MAX_NEIGHBORS:
                    return True
            waiter.event.set()
            return True
        return False

    def _spawn(self, fn: Callable[..., object], *args: object) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)  # type: ignore[arg-type]

    async def _on_ping(self, decoded: Decoded, addr: Address) -> None:
        ping = decoded.packet
        assert isinstance(ping, Ping)
        if self._expired(ping.expiration):
            self._counts["expired"] += 1
            return
        sender = Node(pubkey=decoded.sender_pubkey, ip=ip_address(addr[0]), udp=addr[1], tcp=_tcp_of(ping.from_))
        key = _peer_key(sender.node_id, addr[0])
        pong = Pong(
            to=endpoint_of(addr[0], addr[1], ping.from_.tcp),
            ping_hash=decoded.hash,
            expiration=self._expiration(),
            enr_seq=self._advertised_enr_seq(),
        )
        await self._send(pong, addr)
        now = trio.current_time()
        peer = self._peer(key)
        peer.ping = now
        event = self._ping_events.pop(key, None)
        if event is not None:
            event.set()
        # Ping back a node whose endpoint we have not verified, as geth does; its
        # Pong then makes it bonded for our own FindNode service.
        if peer.pong is None or now - peer.pong > self.config.bond_expiration:
            self._spawn(self._ping_back, sender)
        else:
            self.table.add_verified(sender)

    async def _ping_back(self, node: Node) -> None:
        await self.ping(node)

    async def _on_pong(self, decoded: Decoded, addr: Address) -> None:
        pong = decoded.packet
        assert isinstance(pong, Pong)
        if self._expired(pong.expiration):
            self._counts["expired"] += 1
            return
        if not self._deliver(decoded, addr):
            self._counts["unsolicited"] += 1
            self._late_reply(decoded.sender_id)
            return
        self._peer(_peer_key(decoded.sender_id, addr[0])).pong = trio.current_time()

    async def _on_findnode(self, decoded: Decoded, addr: Address) -> None:
        request = decoded.packet
        assert isinstance(request, FindNode)
        if self._expired(request.expiration):
            self._counts["expired"] += 1
            return
        if self.config.require_bond_for_findnode and not self._bonded_by_pong(_peer_key(decoded.sender_id, addr[0])):
            # No endpoint proof: answering would let anyone aim our NEIGHBORS at a victim.
            self._counts["unsolicited"] += 1
            log.debug("findnode from unbonded node addr=%s:%d", addr[0], addr[1])
            return
        closest = self.table.closest(keccak256(request.target), NEIGHBORS_PER_FINDNODE)
        records = [
            NodeRecord(ip=n.ip, udp=n.udp or 0, tcp=n.tcp or 0, pubkey=n.pubkey)
            for n in closest
            if n.ip is not None and n.udp
        ]
        for packet in discv4.split_neighbors(records, self._expiration()):
            await self._send(packet, addr)

    async def _on_neighbors(self, decoded: Decoded, addr: Address) -> None:
        neighbors = decoded.packet
        assert isinstance(neighbors, Neighbors)
        if self._expired(neighbors.expiration):
            self._counts["expired"] += 1
            return
        if self._deliver(decoded, addr):
            return
        peer = self._peers.get(_peer_key(decoded.sender_id, addr[0]))
        if peer is None or not peer.asked:
            self._counts["unsolicited"] += 1
            return
        self._counts["late"] += 1
        self._late_reply(decoded.sender_id)
        sender = Node(pubkey=decoded.sender_pubkey, ip=ip_address(addr[0]), udp=addr[1], tcp=None)
        try:
            self._late_send.send_nowait(LateNodes(sender=sender, nodes=_unmapped_records(neighbors.nodes)))
        except trio.WouldBlock:
            log.debug("late NEIGHBORS dropped: nobody is reading late_nodes")

    async def _on_enr_request(self, decoded: Decoded, addr: Address) -> None:
        request = decoded.packet
        assert isinstance(request, ENRRequest)
        if self._expired(request.expiration):
            self._counts["expired"] += 1
            return
        if not self.config.serve_enr_requests:
            self._counts["unsolicited"] += 1
            return
        if not self._bonded_by_pong(_peer_key(decoded.sender_id, addr[0])):
            self._counts["unsolicited"] += 1
            return
        assert self.enr is not None
        response = ENRResponse(request_hash=decoded.hash, record=self.enr.to_rlp())
        await self._send(response, addr)

    async def _on_enr_response(self, decoded: Decoded, addr: Address) -> None:
        if not self._deliver(decoded, addr):
            self._counts["unsolicited"] += 1


def make_local_enr(
    private_key: PrivateKey,
    host: str,
    udp: int,
    tcp: int,
    *,
    seq: int,
    extra: Mapping[str, object] | None = None,
    learned: Sequence[tuple[str, int]] = (),
) -> ENR:
    """Our signed record: the one discovery v4 serves and discovery v5 hands over in handshakes.

    Both protocols build it from the same inputs, so they advertise the same
    bytes.  ``host:udp`` is where we listen.  An unspecified listen address
    (0.0.0.0, or ``::`` which serves both families) is not an address anyone
    can reach, so the record then carries ports only, until ``learned`` names
    the (ip, udp) peers see us at, at most one per family.  Keys follow
    go-ethereum's ``LocalNode``: ``ip``/``udp``/``tcp`` for IPv4 (and for the
    ports of a dual-stack socket), ``ip6`` beside them, ``udp6`` only where its
    port differs; a node on one IPv6 address keeps ``ip6``/``udp6``/``tcp6``.
    ``extra`` adds entries such as an execution client's ``eth`` fork id.
    """
    listen = unwrap_ipv4(ip_address(host))
    ip4: IPv4Address | None = None
    ip6: IPv6Address | None = None
    udp4: int | None = None
    udp6: int | None = None
    if listen.is_unspecified:
        udp4 = udp
        udp6 = udp if listen.version == 6 else None
    elif isinstance(listen, IPv4Address):
        ip4, udp4 = listen, udp
    else:
        ip6, udp6 = listen, udp
    for text, port in learned:
        ip = unwrap_ipv4(ip_address(text))
        if isinstance(ip, IPv4Address):
            ip4, udp4 = ip, port
        else:
            ip6, udp6 = ip, port
    pairs: dict[str, object] = {"id": "v4", "secp256k1": pubkey_from_private(private_key)}
    if ip4 is not None:
        pairs["ip"] = ip4
    if ip6 is not None:
        pairs["ip6"] = ip6
    if udp4 is not None:
        pairs.update(udp=udp4, tcp=tcp)
    if udp6 is not None and udp6 != udp4:
        pairs["udp6"] = udp6
        if udp4 is None:
            pairs["tcp6"] = tcp
    pairs.update(extra or {})
    return ENR.create(private_key, seq=seq, pairs=pairs)


def _unmapped_records(records: tuple[NodeRecord, ...]) -> tuple[NodeRecord, ...]:
    """``records`` with IPv4-mapped addresses (a dual-stack peer's spelling) as IPv4: one spelling per address."""
    if not any(_mapped(r.ip) for r in records):
        return records  # the common case: nothing to copy
    return tuple(replace(r, ip=mapped) if (mapped := _mapped(r.ip)) else r for r in records)


def _mapped(ip: IPv4Address | IPv6Address | None) -> IPv4Address | None:
    return ip.ipv4_mapped if isinstance(ip, IPv6Address) else None


def _udp_addr(node: Node) -> Address:
    if node.ip is None or not node.udp:
        raise ValueError(f"node {node.node_id.hex()[:16]} has no UDP endpoint")
    return (str(node.ip), node.udp)


def _tcp_of(endpoint: Endpoint) -> int | None:
    return endpoint.tcp or None
