"""A discovery v5.1 node on a UDP socket (usually the one discovery v4 also uses).

The packet and session logic is ``ethcrawl.wire.discv5.session.Discv5Protocol``
(sans-I/O); this module gives it a socket, a clock and tasks, as go-ethereum's
``p2p/discover/v5_udp.go`` does for its codec:

* **requests** (``ping``, ``find_node``, ``talk``) are matched to replies by
  node id and request id; a NODES answer is collected until its ``total``
  packets arrived (or the timeout), and every returned record is verified and
  checked to sit at a distance that was asked for;
* **serving**: PONG to PING, NODES from our table to FINDNODE (distance 0 is our
  own record, at most 16 records however many distances are asked, only nodes
  verified live), an empty TALKRESP to TALKREQ;
* **table**: a node that completed a handshake from the address its own record
  names, or answered our PING, is live and goes into our table.

A session needs the peer's ENR, so every request takes one.  WHOAREYOU and
handshake rate limits live in the wire layer's ``Config``; here a datagram that
fails anywhere is counted and dropped, never raised.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Callable, Mapping

import trio

from ethcrawl.wire.crypto import PrivateKey, node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.discv5.messages import (
    MAX_DISTANCE,
    MAX_REQUEST_ID_SIZE,
    FindNode,
    Message,
    Nodes,
    Ping,
    Pong,
    TalkReq,
    TalkResp,
    split_nodes,
)
from ethcrawl.wire.discv5.session import (
    Config,
    Discv5Protocol,
    HandshakeCompleted,
    MessageReceived,
    Outgoing,
    PacketDropped,
)
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import LocalProtocolError, WireError
from ethcrawl.wire.lru import LRU

from .discovery import make_local_enr
from .relay import relay_error
from .rtt import RoundTrips
from .table import RoutingTable, log_distance
from .udp import Address, DatagramTransport, serve_datagrams

__all__ = ["DiscoveryV5Config", "DiscoveryV5", "DiscoveryV5Stats", "LateV5Nodes", "V5Peer", "enr_address"]

log = logging.getLogger(__name__)

# s, geth respTimeoutV5.  Our window runs per reply, and the first reply of a request without a
# session takes a handshake first (random packet, WHOAREYOU, handshake: two round trips); a peer
# whose round trips are known gets a window of its own (``rtt.RoundTrips``, two of them then).
RESPONSE_TIMEOUT = 0.7
NODES_RESULT_LIMIT = 16  # records per FINDNODE answer (geth findnodeResultLimit; chainsafe's cap too)
# chainsafe sends 3 records per NODES message, so 16 records take 6 messages;
# anything announcing more is cut off here rather than trusted.
MAX_NODES_MESSAGES = 8
REPLY_CHANNEL_SIZE = MAX_NODES_MESSAGES
# FINDNODE requests remembered after they gave up, so NODES that come late still
# reach the crawl (as discovery v4's late NEIGHBORS do); the oldest are forgotten.
RECENT_FINDNODE_LIMIT = 4096
LATE_NODES_BUFFER = 256  # late answers queued for the crawl; more are dropped and counted


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryV5Config:
    """Tunables of the v5 node; ``protocol`` holds the wire layer's caches and rate limits."""

    response_timeout: float = RESPONSE_TIMEOUT
    # Wait longer for a peer whose earlier answers came slowly (``rtt.RoundTrips``); False: a fixed window.
    rtt_windows: bool = True
    protocol: Config = field(default_factory=Config)
    # s to wait before answering a request (devnet "slow responders").
    reply_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class DiscoveryV5Stats:
    packets_in: int
    packets_out: int
    dropped: int
    rate_limited: int
    unsolicited: int
    timeouts: int
    bad_records: int
    findnode_requests: int
    handshakes: int
    sessions: int
    late_nodes: int = 0


@dataclass(frozen=True, slots=True)
class LateV5Nodes:
    """Records from a NODES message that came after its FINDNODE gave up: still worth crawling."""

    sender_id: bytes
    records: tuple[ENR, ...]


@dataclass(frozen=True, slots=True)
class V5Peer:
    """A table entry: a live node's record with the id and address the table needs."""

    enr: ENR
    node_id: bytes
    ip: IPv4Address | IPv6Address | None


def enr_address(enr: ENR) -> Address | None:
    """The UDP address a record advertises (IPv4 first), or None if it has none."""
    ip, udp, _tcp = enr.endpoint()
    if ip is None or not udp:
        return None
    return (str(ip), udp)


def _record_addresses(enr: ENR) -> tuple[Address, ...]:
    """Every UDP address a record names: ``ip``:``udp`` and ``ip6``:``udp6`` (``udp`` when absent, EIP-778)."""
    addresses: list[Address] = []
    ip4, ip6, udp = enr.ip, enr.ip6, enr.udp
    if ip4 is not None and udp:
        addresses.append((str(ip4), udp))
    udp6 = enr.udp6 or udp
    if ip6 is not None and udp6:
        addresses.append((str(ip6.ipv4_mapped or ip6), udp6))
    return tuple(addresses)


def _peer(enr: ENR) -> V5Peer:
    node_id = enr.node_id
    assert node_id is not None  # callers only build peers from verified v4-scheme records
    ip, _udp, _tcp = enr.endpoint()
    return V5Peer(enr=enr, node_id=node_id, ip=ip)


class DiscoveryV5:
    """The discovery v5.1 protocol on one socket.  ``await nursery.start(node.run)``, then call requests.

    With ``transport`` it serves on that (a :class:`~ethcrawl.crawler.udp.DatagramLane`
    of a shared socket, or a test network); otherwise it binds its own socket.
    """

    def __init__(
        self,
        private_key: PrivateKey,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tcp_port: int = 0,
        config: DiscoveryV5Config | None = None,
        enr_seq: int = 1,
        transport: DatagramTransport | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        enr_extra: Mapping[str, object] | None = None,
        round_trips: RoundTrips | None = None,
    ) -> None:
        self.private_key = private_key
        self._enr_extra = enr_extra
        self.node_id = node_id_from_pubkey(pubkey_from_private(private_key))
        # Per-peer round trips (shared with the v4 side of the same node, if the caller passes one).
        self.round_trips = round_trips if round_trips is not None else RoundTrips()
        self.host = host
        self.port = port
        self.tcp_port = tcp_port
        self.config = config or DiscoveryV5Config()
        self.table: RoutingTable[V5Peer] = RoutingTable(self.node_id)
        self._enr_seq = enr_seq
        self._transport = transport
        self._rng = rng
        self._socket: DatagramTransport | None = None
        self._protocol: Discv5Protocol | None = None
        self._waiters: dict[tuple[bytes, bytes], trio.MemorySendChannel[Message]] = {}
        # (node id, request id) -> (distances asked, NODES messages still welcome), for FINDNODEs that
        # timed out before their answer was whole; emptied as late messages come.
        self._recent_findnode: LRU[tuple[bytes, bytes], tuple[tuple[int, ...], int]] = LRU(RECENT_FINDNODE_LIMIT)
        # Called with (peer ip, our ip as it saw us, our udp port as it saw us) for every PONG.
        self.on_endpoint_statement: Callable[[str, str, int], None] | None = None
        late_send, self.late_nodes = trio.open_memory_channel[LateV5Nodes](LATE_NODES_BUFFER)
        self._late_send = late_send
        self._nursery: trio.Nursery | None = None
        self._counts: dict[str, int] = defaultdict(int)

    # ------------------------------------------------------------------ service

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind (unless a transport was given), report the UDP port, serve until cancelled."""
        await serve_datagrams(self._transport, self.host, self.port, partial(self._serve, task_status=task_status))

    async def _serve(self, transport: DatagramTransport, *, task_status: trio.TaskStatus[int]) -> None:
        self.port = transport.local_address[1]
        if not self.tcp_port:
            self.tcp_port = self.port
        self._socket = transport
        enr = make_local_enr(
            self.private_key, self.host, self.port, self.tcp_port, seq=self._enr_seq, extra=self._enr_extra
        )
        self._protocol = Discv5Protocol(self.private_key, enr, config=self.config.protocol, rng=self._rng)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self.port)
            while True:
                data, addr = await transport.recvfrom()
                self._counts["in"] += 1
                await self._handle_datagram(data, addr)

    @property
    def enr(self) -> ENR:
        """Our record, as handshakes carry it (available once ``run`` has started)."""
        return self._require_protocol().local_enr

    def _require_protocol(self) -> Discv5Protocol:
        if self._protocol is None:
            raise LocalProtocolError("DiscoveryV5.run() must be started first")
        return self._protocol

    def set_local_enr(self, enr: ENR) -> None:
        """Hand ``enr`` to peers from now on (our endpoint as they see it); its seq must grow."""
        self._require_protocol().update_local_enr(enr)

    def add_to_table(self, enr: ENR) -> None:
        """File a record in our table as live (the devnet seeds its nodes' tables this way)."""
        if enr.node_id is None:
            raise LocalProtocolError("an ENR without a v4 identity cannot go into the table")
        self.table.add_verified(_peer(enr))

    def statistics(self) -> DiscoveryV5Stats:
        wire = self._protocol.statistics() if self._protocol is not None else None
        return DiscoveryV5Stats(
            packets_in=self._counts["in"],
            packets_out=self._counts["out"],
            dropped=wire.dropped if wire else 0,
            rate_limited=wire.rate_limited if wire else 0,
            unsolicited=self._counts["unsolicited"],
            timeouts=self._counts["timeout"],
            bad_records=self._counts["bad_record"],
            findnode_requests=self._counts["findnode"],
            handshakes=(wire.handshakes_sent + wire.handshakes_received) if wire else 0,
            sessions=wire.sessions if wire else 0,
            late_nodes=self._counts["late"],
        )

    # ------------------------------------------------------------------ receiving

    async def _handle_datagram(self, data: bytes, addr: Address) -> None:
        protocol = self._require_protocol()
        for event in protocol.receive(data, addr, trio.current_time()):
            if isinstance(event, Outgoing):
                await self._send(event)
            elif isinstance(event, MessageReceived):
                await self._on_message(event)
            elif isinstance(event, HandshakeCompleted):
                self._on_handshake(event)
            elif isinstance(event, PacketDropped):
                log.debug("v5 packet dropped addr=%s:%d err=%s", addr[0], addr[1], event.error)

    async def _send(self, outgoing: Outgoing) -> None:
        assert self._socket is not None
        await self._socket.sendto(outgoing.data, outgoing.addr)
        self._counts["out"] += 1

    def _on_handshake(self, event: HandshakeCompleted) -> None:
        # Only a record that names the address the handshake came from is a
        # reachable node; anything else would let a peer plant others' endpoints.
        # Either family counts: a dual-stack node may reach us over the one its
        # record does not prefer.
        if event.enr is not None and event.addr in _record_addresses(event.enr):
            self.table.add_verified(_peer(event.enr))

    async def _on_message(self, event: MessageReceived) -> None:
        message = event.message
        if isinstance(message, (Ping, FindNode, TalkReq)):
            if self.config.reply_delay > 0:
                self._spawn(self._answer_later, event)
            else:
                await self._answer(event)
            return
        key = (event.node_id, message.request_id)
        waiter = self._waiters.get(key)
        if waiter is None:
            recent = self._recent_findnode.get(key)
            if isinstance(message, Nodes) and recent is not None:
                distances, welcome = recent
                if welcome <= 1:
                    self._recent_findnode.pop(key)
                else:
                    self._recent_findnode.set(key, (distances, welcome - 1))
                self._late(event.node_id, message, distances)
            else:
                self._counts["unsolicited"] += 1
            return
        try:
            waiter.send_nowait(message)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._counts["unsolicited"] += 1

    def _spawn(self, fn: Callable[[MessageReceived], object], event: MessageReceived) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, event)  # type: ignore[arg-type]

    async def _answer_later(self, event: MessageReceived) -> None:
        await trio.sleep(self.config.reply_delay)
        await self._answer(event)

    async def _answer(self, event: MessageReceived) -> None:
        try:
            await self._send_answer(event)
        except WireError as exc:
            # The session (or the record) left the cache since the request came: the asker will retry.
            log.debug("v5 answer not sent node=%s err=%s", event.node_id.hex()[:16], exc)

    async def _send_answer(self, event: MessageReceived) -> None:
        message = event.message
        replies: list[Message]
        if isinstance(message, Ping):
            replies = [
                Pong(
                    request_id=message.request_id,
                    enr_seq=self.enr.seq,
                    recipient_ip=ip_address(event.addr[0]),
                    recipient_port=event.addr[1],
                )
            ]
        elif isinstance(message, FindNode):
            requester = ip_address(event.addr[0])
            replies = list(split_nodes(message.request_id, self._records_at(message.distances, requester)))
        else:
            assert isinstance(message, TalkReq)
            # We speak no TALK protocol: the spec's answer is an empty response.
            replies = [TalkResp(request_id=message.request_id, response=b"")]
        protocol = self._require_protocol()
        for reply in replies:
            # The request just arrived under a session, so this seals at once.
            for outgoing in protocol.send_message(event.node_id, event.addr, reply, now=trio.current_time()):
                await self._send(outgoing)

    def _records_at(self, distances: tuple[int, ...], requester: IPv4Address | IPv6Address) -> list[bytes]:
        records: list[bytes] = []
        for distance in dict.fromkeys(distances):  # each distance once, in the asker's order
            if distance == 0:
                records.append(self.enr.to_rlp())
            elif distance <= MAX_DISTANCE:
                # The spec: never relay a node whose liveness we have not verified; and, as geth,
                # never hand a LAN or special-purpose address to a requester that could not use it.
                records.extend(
                    peer.enr.to_rlp()
                    for peer in self.table.at_distance(distance)
                    if self.table.is_verified(peer.node_id) and _relayable(requester, peer)
                )
            if len(records) >= NODES_RESULT_LIMIT:
                break
        return records[:NODES_RESULT_LIMIT]

    # ------------------------------------------------------------------ requests

    def _request_id(self) -> bytes:
        # No leading zero byte: @chainsafe/discv5 11 echoes such ids stripped.
        raw = self._rng(MAX_REQUEST_ID_SIZE)
        return bytes([raw[0] | 0x01]) + raw[1:]

    async def _request(
        self, enr: ENR, message: Message, *, complete: Callable[[list[Message]], bool] = bool
    ) -> list[Message]:
        """Send ``message`` to ``enr``'s node; its answers until ``complete`` says so (or the timeout)."""
        protocol = self._require_protocol()
        node_id = enr.node_id
        addr = enr_address(enr)
        if node_id is None or addr is None:
            raise LocalProtocolError("a v5 request needs a v4-scheme record with an IP and UDP port")
        key = (node_id, message.request_id)
        send, receive = trio.open_memory_channel[Message](REPLY_CHANNEL_SIZE)
        self._waiters[key] = send
        received: list[Message] = []
        legs = 1 if protocol.has_session(node_id, addr) else 2  # without a session: a handshake first
        try:
            sent_at = trio.current_time()
            for outgoing in protocol.send_message(node_id, addr, message, enr, now=sent_at):
                await self._send(outgoing)
            while not complete(received):
                # The timeout runs per reply: a long NODES answer keeps the wait alive.
                with trio.move_on_after(self.response_window(node_id, legs)):
                    received.append(await receive.receive())
                    if len(received) == 1:
                        self.round_trips.observe(node_id, (trio.current_time() - sent_at) / legs)
                    continue
                self._counts["timeout"] += 1
                break
            return received
        finally:
            del self._waiters[key]
            send.close()

    def response_window(self, node_id: bytes, legs: int = 1) -> float:
        """How long to wait for one reply of ``node_id`` that takes ``legs`` round trips."""
        if not self.config.rtt_windows:
            return self.config.response_timeout
        return self.round_trips.window(node_id, self.config.response_timeout, legs)

    async def ping(self, enr: ENR) -> Pong | None:
        """PING the node behind ``enr``; its PONG, or None when it did not answer."""
        replies = await self._request(enr, Ping(request_id=self._request_id(), enr_seq=self.enr.seq))
        pong = replies[0] if replies else None
        if not isinstance(pong, Pong):
            return None
        self.table.add_verified(_peer(enr))
        address = enr_address(enr)
        if self.on_endpoint_statement is not None and address is not None:
            self.on_endpoint_statement(address[0], str(pong.recipient_ip), pong.recipient_port)
        return pong

    async def find_node(self, enr: ENR, distances: tuple[int, ...]) -> list[ENR] | None:
        """FINDNODE at ``distances``: the verified records that sit at one of them, deduplicated; None if no answer came.

        NODES messages of this request that come after the wait is over (up to
        its ``total``) go to :attr:`late_nodes` instead.
        """
        node_id = enr.node_id
        assert node_id is not None  # _request refuses records without one first
        self._counts["findnode"] += 1
        request_id = self._request_id()
        replies = await self._request(enr, FindNode(request_id=request_id, distances=distances), complete=_nodes_complete)
        messages = [m for m in replies if isinstance(m, Nodes)]
        if not _nodes_complete(replies):
            # Timed out before the answer was whole: the rest may still come.
            expected = min(max(messages[0].total, 1), MAX_NODES_MESSAGES) if messages else MAX_NODES_MESSAGES
            self._recent_findnode.set((node_id, request_id), (distances, expected - len(messages)))
        if not replies:
            return None
        return self._records_in(node_id, messages, distances)

    def _records_in(self, node_id: bytes, messages: list[Nodes], distances: tuple[int, ...]) -> list[ENR]:
        wanted = set(distances)
        found: dict[bytes, ENR] = {}
        for message in messages:
            good, bad = message.enrs()
            self._counts["bad_record"] += len(bad)
            for record in good:
                record_id = record.node_id
                if record_id is None or log_distance(node_id, record_id) not in wanted:
                    # geth drops such answers too: a peer may not plant records where we did not ask.
                    self._counts["bad_record"] += 1
                    continue
                known = found.get(record_id)
                if known is None or record.seq > known.seq:
                    found[record_id] = record
        return list(found.values())

    def _late(self, node_id: bytes, message: Nodes, distances: tuple[int, ...]) -> None:
        records = self._records_in(node_id, [message], distances)
        self._counts["late"] += 1
        try:
            self._late_send.send_nowait(LateV5Nodes(sender_id=node_id, records=tuple(records)))
        except trio.WouldBlock:
            log.debug("late v5 NODES dropped: nobody is reading late_nodes")

    async def talk(self, enr: ENR, protocol_name: bytes, request: bytes) -> bytes | None:
        """TALKREQ; the response bytes, or None on timeout."""
        message = TalkReq(request_id=self._request_id(), protocol=protocol_name, request=request)
        replies = await self._request(enr, message)
        reply = replies[0] if replies else None
        return reply.response if isinstance(reply, TalkResp) else None


def _relayable(requester: IPv4Address | IPv6Address, peer: V5Peer) -> bool:
    address = enr_address(peer.enr)
    return address is not None and relay_error(requester, ip_address(address[0]), address[1]) is None


def _nodes_complete(replies: list[Message]) -> bool:
    """A NODES answer is whole when ``total`` messages came (capped), or at once if the first is not NODES."""
    if not replies:
        return False
    first = replies[0]
    if not isinstance(first, Nodes):
        return True
    return len(replies) >= min(max(first.total, 1), MAX_NODES_MESSAGES)
