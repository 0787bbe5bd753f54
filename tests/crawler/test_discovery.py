"""The discovery v4 node against go-ethereum's rules, over an in-memory network.

All timing runs on trio's MockClock (every test takes ``autojump_clock``: pytest-trio
only picks up a clock passed to the test itself), and the wall clock the packets'
expirations use is derived from it, so "24 hours later" takes no real time.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import AsyncIterator, Awaitable, Callable

import pytest
import trio
from trio.testing import MockClock

from ethcrawl.crawler.discovery import DiscoveryConfig, DiscoveryV4, make_local_enr
from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import PrivateKey, generate_private_key, keccak256, pubkey_from_private
from ethcrawl.wire.discv4 import Endpoint, FindNode, Neighbors, NodeRecord, Ping, Pong
from ethcrawl.wire.enode import Node

from memnet import MemoryEndpoint, MemoryNetwork

WALL_EPOCH = 1_700_000_000.0  # s, an arbitrary "now" for packet expirations


# A client that never bonds again on its own: tests of what the serving side refuses use it.
ASK_ONCE = DiscoveryConfig(rebond_on_silence=False)


def wall_clock() -> float:
    return WALL_EPOCH + trio.current_time()


@pytest.fixture
def net() -> MemoryNetwork:
    return MemoryNetwork()


Spawn = Callable[..., Awaitable[DiscoveryV4]]


@pytest.fixture
async def spawn(net: MemoryNetwork, nursery: trio.Nursery) -> AsyncIterator[Spawn]:
    """Start discovery nodes on the in-memory network; time is trio's MockClock."""

    async def start(config: DiscoveryConfig = DiscoveryConfig()) -> DiscoveryV4:
        node = DiscoveryV4(
            generate_private_key(), transport=net.open(), config=config, wall_clock=wall_clock
        )
        await nursery.start(node.run)
        return node

    yield start


def fill_table(node: DiscoveryV4, count: int, base_port: int = 40000) -> list[Node]:
    added = []
    for i in range(count):
        other = Node(
            pubkey=pubkey_from_private(generate_private_key()),
            ip=ip_address("127.0.0.1"),
            udp=base_port + i,
            tcp=base_port + i,
        )
        node.table.add_verified(other)
        added.append(other)
    return added


async def test_ping_gets_pong_echoing_the_hash(spawn: Spawn, autojump_clock: MockClock) -> None:
    alice, bob = await spawn(), await spawn()
    pong = await alice.ping(bob.local_node)
    assert isinstance(pong, Pong)
    assert pong.enr_seq == bob.enr.seq  # type: ignore[union-attr]
    assert pong.to.udp == alice.port


async def test_findnode_needs_a_bond(spawn: Spawn, autojump_clock: MockClock) -> None:
    alice, bob = await spawn(ASK_ONCE), await spawn()
    fill_table(bob, 20)
    # Not bonded: bob must not answer (no amplification), so alice times out empty.
    assert await alice.find_node(bob.local_node, b"\x01" * 64) is None  # silence, not an empty answer
    assert bob.statistics().unsolicited >= 1
    assert await alice.bond(bob.local_node)
    assert alice.is_bonded(bob.local_node)
    await trio.sleep(1)  # bob's ping-back completes and alice joins bob's table
    nodes = await alice.find_node(bob.local_node, b"\x01" * 64)
    assert len(nodes) == 16
    want = {n.node_id for n in bob.table.closest(keccak256(b"\x01" * 64), 16)}
    assert {Node(pubkey=r.pubkey, ip=r.ip, udp=r.udp, tcp=r.tcp).node_id for r in nodes} == want


async def test_an_empty_table_answers_an_empty_list_and_silence_answers_none(
    spawn: Spawn, autojump_clock: MockClock
) -> None:
    """go-ethereum answers a FindNode with an empty NEIGHBORS when its table has nothing: that is an answer (the
    peer is there, its table read), unlike silence (a lost datagram, a forgotten bond), which the crawl asks again."""
    alice, bob = await spawn(ASK_ONCE), await spawn()
    assert await alice.bond(bob.local_node)
    await trio.sleep(1)  # bob's ping-back completes and puts alice in bob's table
    bob.table.remove(alice.node_id)  # now it holds nothing
    assert await alice.find_node(bob.local_node, b"\x01" * 64) == []
    await trio.sleep(24 * 3600 + 1)  # bob forgets the bond: silence
    assert await alice.find_node(bob.local_node, b"\x01" * 64) is None


async def test_bond_expires_after_24_hours(spawn: Spawn, autojump_clock: MockClock) -> None:
    alice, bob = await spawn(ASK_ONCE), await spawn()
    fill_table(bob, 5)
    assert await alice.bond(bob.local_node)
    await trio.sleep(1)  # bob's ping-back to alice completes
    # bob's table: the five, plus alice, whose endpoint it verified with that ping-back.
    assert alice.node_id in bob.table
    assert len(bob.table) == 6
    assert len(await alice.find_node(bob.local_node, b"\x02" * 64)) == 6
    await trio.sleep(24 * 3600 + 1)
    assert not alice.is_bonded(bob.local_node)
    # bob's record of alice's Pong is stale too: FindNode is refused until a new bond.
    assert await alice.find_node(bob.local_node, b"\x02" * 64) is None
    assert await alice.bond(bob.local_node)
    assert len(await alice.find_node(bob.local_node, b"\x02" * 64)) == 6


async def test_enr_request_answered_for_bonded_node_only(spawn: Spawn, autojump_clock: MockClock) -> None:
    alice, bob = await spawn(ASK_ONCE), await spawn()
    assert await alice.request_enr(bob.local_node) is None
    assert await alice.bond(bob.local_node)
    record = await alice.request_enr(bob.local_node)
    assert record is not None
    assert record.node_id == bob.node_id
    assert record.seq == bob.enr.seq  # type: ignore[union-attr]
    assert record.udp == bob.port


class RawPeer:
    """A hand-driven discovery endpoint: the test decides what it sends and when."""

    def __init__(self, endpoint: MemoryEndpoint) -> None:
        self.endpoint = endpoint
        self.key = generate_private_key()
        self.node = Node(
            pubkey=pubkey_from_private(self.key),
            ip=ip_address(endpoint.local_address[0]),
            udp=endpoint.local_address[1],
            tcp=endpoint.local_address[1],
        )

    async def send(self, packet: discv4.Packet, addr: tuple[str, int]) -> bytes:
        data = discv4.encode(packet, self.key)
        await self.endpoint.sendto(data, addr)
        return data

    async def receive(self) -> tuple[discv4.Decoded, tuple[str, int]]:
        data, addr = await self.endpoint.recvfrom()
        return discv4.decode(data), addr


async def test_expired_ping_is_ignored(spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock) -> None:
    bob = await spawn()
    raw = RawPeer(net.open())
    bob_addr = ("127.0.0.1", bob.port)
    here = Endpoint(ip=ip_address("127.0.0.1"), udp=raw.node.udp or 0, tcp=0)
    await raw.send(Ping(version=4, from_=here, to=here, expiration=int(wall_clock()) - 1, enr_seq=None), bob_addr)
    with trio.move_on_after(2):
        await raw.receive()
        pytest.fail("an expired Ping was answered")
    assert bob.statistics().expired_packets == 1
    ping = Ping(version=4, from_=here, to=here, expiration=int(wall_clock()) + 20, enr_seq=None)
    sent = await raw.send(ping, bob_addr)
    reply, _ = await raw.receive()
    assert isinstance(reply.packet, Pong)
    assert reply.packet.ping_hash == sent[:32]
    # bob does not know raw yet, so it pings back (geth's handlePing).
    ping_back, _ = await raw.receive()
    assert isinstance(ping_back.packet, Ping)


async def test_late_neighbors_still_reach_the_crawl(spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock) -> None:
    alice = await spawn()
    raw = RawPeer(net.open())
    alice_addr = ("127.0.0.1", alice.port)
    result: list[NodeRecord] | None = []

    async def ask() -> None:
        nonlocal result
        result = await alice.find_node(raw.node, b"\x03" * 64)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        request, _ = await raw.receive()
        assert isinstance(request.packet, FindNode)
        await trio.sleep(alice.config.response_timeout * 3)  # well past alice's timeout
        record = NodeRecord(ip=ip_address("127.0.0.2"), udp=30303, tcp=30303, pubkey=pubkey_from_private(generate_private_key()))
        await raw.send(Neighbors(nodes=(record,), expiration=int(wall_clock()) + 20), alice_addr)
    assert result is None  # the request itself timed out ...
    with trio.fail_after(1):
        late = await alice.late_nodes.receive()  # ... but the answer is not lost
    assert late.sender.node_id == raw.node.node_id
    assert late.nodes == (record,)


async def test_unsolicited_neighbors_are_dropped(spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock) -> None:
    alice = await spawn()
    raw = RawPeer(net.open())
    record = NodeRecord(ip=ip_address("127.0.0.2"), udp=30303, tcp=30303, pubkey=pubkey_from_private(generate_private_key()))
    await raw.send(Neighbors(nodes=(record,), expiration=int(wall_clock()) + 20), ("127.0.0.1", alice.port))
    await trio.sleep(1)
    assert alice.statistics().unsolicited == 1
    with pytest.raises(trio.WouldBlock):
        alice.late_nodes.receive_nowait()


async def test_garbage_is_counted_and_dropped(spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock) -> None:
    alice, bob = await spawn(), await spawn()
    raw = net.open()
    for junk in (b"", b"\x00" * 10, b"\xff" * 200, bytes(range(256)) * 4):
        await raw.sendto(junk, ("127.0.0.1", alice.port))
    await trio.sleep(0.1)
    assert alice.statistics().bad_packets == 4
    assert await alice.ping(bob.local_node) is not None  # still serving


async def test_a_short_neighbors_packet_ends_the_wait(spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock) -> None:
    """geth fills packets to 12 nodes: fewer means the answer is complete, so no timeout is waited out."""
    alice = await spawn()
    raw = RawPeer(net.open())
    alice_addr = ("127.0.0.1", alice.port)
    records = [
        NodeRecord(ip=ip_address("127.0.0.2"), udp=30303 + i, tcp=30303, pubkey=pubkey_from_private(generate_private_key()))
        for i in range(15)
    ]
    result: list[NodeRecord] = []

    async def ask() -> None:
        result.extend(await alice.find_node(raw.node, b"\x04" * 64) or ())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        request, _ = await raw.receive()
        assert isinstance(request.packet, FindNode)
        started = trio.current_time()
        for packet in discv4.split_neighbors(records, int(wall_clock()) + 20):  # 12 + 3
            await raw.send(packet, alice_addr)
    assert result == records
    assert trio.current_time() - started < alice.config.response_timeout


async def test_pong_without_enr_seq_means_no_enr_request(spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock) -> None:
    alice = await spawn()
    raw = RawPeer(net.open())
    assert alice.speaks_eip868(raw.node)  # unknown until it answers

    async def answer() -> None:
        ping, addr = await raw.receive()
        to = Endpoint(ip=ip_address("127.0.0.1"), udp=alice.port, tcp=0)
        await raw.send(Pong(to=to, ping_hash=ping.hash, expiration=int(wall_clock()) + 20, enr_seq=None), addr)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer)
        assert await alice.ping(raw.node) is not None
    assert not alice.speaks_eip868(raw.node)


async def test_a_pre_eip868_node_advertises_no_seq_and_ignores_enr_requests(spawn: Spawn, autojump_clock: MockClock) -> None:
    alice, old = await spawn(), await spawn(DiscoveryConfig(serve_enr_requests=False))
    pong = await alice.ping(old.local_node)
    assert pong is not None and pong.enr_seq is None
    assert not alice.speaks_eip868(old.local_node)
    assert await alice.bond(old.local_node)
    assert await alice.request_enr(old.local_node) is None


async def test_reply_delay_slows_answers_without_blocking_others(spawn: Spawn, autojump_clock: MockClock) -> None:
    alice, slow = await spawn(DiscoveryConfig(response_timeout=1.0)), await spawn(DiscoveryConfig(reply_delay=0.3))
    started = trio.current_time()
    pongs: list[object] = []
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(_ping_into, alice, slow, pongs)
    assert len(pongs) == 3 and all(p is not None for p in pongs)
    # three Pings answered concurrently: about one delay in all, not three
    assert 0.3 <= trio.current_time() - started < 0.6


async def _ping_into(alice: DiscoveryV4, node: DiscoveryV4, out: list[object]) -> None:
    out.append(await alice.ping(node.local_node))


async def test_pings_under_fresh_keys_do_not_grow_the_bookkeeping(
    spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock
) -> None:
    """Every Ping from a new key is remembered for bonding, but only up to peers_remembered."""
    bob = await spawn(DiscoveryConfig(peers_remembered=32))
    bob_addr = ("127.0.0.1", bob.port)
    endpoint = net.open()
    here = Endpoint(ip=ip_address("127.0.0.1"), udp=endpoint.local_address[1], tcp=0)
    for _ in range(200):
        ping = Ping(version=4, from_=here, to=here, expiration=int(wall_clock()) + 20, enr_seq=None)
        await endpoint.sendto(discv4.encode(ping, generate_private_key()), bob_addr)
        await trio.sleep(0.001)
    assert len(bob._peers) == 32
    alice = await spawn()
    assert await alice.ping(bob.local_node) is not None  # still serving


async def test_ipv4_mapped_neighbors_are_handed_on_as_ipv4(spawn: Spawn, autojump_clock: MockClock) -> None:
    """A dual-stack peer may list a node as ::ffff:a.b.c.d: the crawl sees one spelling, a.b.c.d."""
    alice, bob = await spawn(), await spawn()
    listed = {
        "::ffff:127.0.0.9": ip_address("127.0.0.9"),
        "::1": ip_address("::1"),
        "127.0.0.8": ip_address("127.0.0.8"),
    }
    for i, text in enumerate(listed):
        bob.table.add_verified(Node(pubkey=pubkey_from_private(generate_private_key()), ip=ip_address(text), udp=40000 + i, tcp=40000 + i))
    assert await alice.bond(bob.local_node)
    nodes = [n for n in await alice.find_node(bob.local_node, b"\x01" * 64) if n.pubkey != alice.pubkey]
    assert sorted(map(str, (n.ip for n in nodes))) == sorted(map(str, listed.values()))


LISTEN_CASES = [
    # (listen host, learned, expected endpoint pairs): geth's LocalNode keys; a lone IPv6 address keeps ip6/udp6/tcp6.
    ("127.0.0.1", [], {"ip": "127.0.0.1", "udp": 30303, "tcp": 30304}),
    ("::1", [], {"ip6": "::1", "udp6": 30303, "tcp6": 30304}),
    ("0.0.0.0", [], {"udp": 30303, "tcp": 30304}),
    ("::", [], {"udp": 30303, "tcp": 30304}),  # dual-stack: the ports serve both families
    ("::", [("198.51.100.1", 30303)], {"ip": "198.51.100.1", "udp": 30303, "tcp": 30304}),
    ("::", [("2001:db8::1", 30303)], {"ip6": "2001:db8::1", "udp": 30303, "tcp": 30304}),
    ("::", [("198.51.100.1", 1111), ("2001:db8::1", 30303)], {"ip": "198.51.100.1", "ip6": "2001:db8::1", "udp": 1111, "udp6": 30303, "tcp": 30304}),
    ("::", [("::ffff:198.51.100.1", 30303)], {"ip": "198.51.100.1", "udp": 30303, "tcp": 30304}),
    ("0.0.0.0", [("198.51.100.1", 2222)], {"ip": "198.51.100.1", "udp": 2222, "tcp": 30304}),
]


@pytest.mark.parametrize(("host", "learned", "expected"), LISTEN_CASES)
def test_our_record_names_each_family_as_geth_does(host: str, learned: list[tuple[str, int]], expected: dict[str, object]) -> None:
    enr = make_local_enr(generate_private_key(), host, 30303, 30304, seq=1, learned=learned)
    pairs = {"ip": enr.ip, "ip6": enr.ip6, "udp": enr.udp, "udp6": enr.udp6, "tcp": enr.tcp, "tcp6": enr.tcp6}
    assert {k: str(v) if k.startswith("ip") else v for k, v in pairs.items() if v is not None} == expected


async def test_a_lost_ping_back_is_repaired_when_requests_meet_silence(
    spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock
) -> None:
    """bob's ping-back to alice is lost: bob lacks alice's endpoint proof and ignores her requests.

    Found by the devnet's mainnet profile (2 % loss): such a node's whole table went unread, and a
    live node only it knew was never found.  alice bonds again on the first silence and asks again.
    """
    alice, bob = await spawn(), await spawn()
    added = fill_table(bob, 20)
    lost: list[bytes] = []

    def drop_first_ping_back(data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> bool:
        if not lost and src == ("127.0.0.1", bob.port) and isinstance(discv4.decode(data).packet, Ping):
            lost.append(data)
            return True
        return False

    net.drop = drop_first_ping_back
    assert await alice.bond(bob.local_node)  # bob's Pong came; its ping-back did not
    assert lost and not alice.is_bonded(bob.local_node)
    record = await alice.request_enr(bob.local_node)
    assert record is not None and record.node_id == bob.node_id
    assert alice.is_bonded(bob.local_node)
    nodes = await alice.find_node(bob.local_node, b"\x01" * 64)
    assert len(nodes) == 16 and {r.pubkey for r in nodes} <= {n.pubkey for n in added} | {alice.pubkey}


async def test_silence_from_a_node_that_never_pings_back_costs_one_bond_only(
    spawn: Spawn, net: MemoryNetwork, autojump_clock: MockClock
) -> None:
    """A node that pongs but never pings back and never answers: one more bond, not one per request."""
    alice, bob = await spawn(), await spawn()
    net.drop = lambda data, src, dst: src == ("127.0.0.1", bob.port) and not isinstance(discv4.decode(data).packet, Pong)
    assert await alice.bond(bob.local_node)
    pings_before = _pings_sent(net, alice)
    assert await alice.find_node(bob.local_node, b"\x01" * 64) is None
    assert await alice.find_node(bob.local_node, b"\x02" * 64) is None
    assert await alice.request_enr(bob.local_node) is None
    assert _pings_sent(net, alice) == pings_before + 1


def _pings_sent(net: MemoryNetwork, node: DiscoveryV4) -> int:
    return sum(
        1 for src, _, data in net.sent if src == ("127.0.0.1", node.port) and isinstance(discv4.decode(data).packet, Ping)
    )


async def test_a_peer_with_a_short_bond_expiry_is_bonded_again_each_time_it_forgets_us(
    spawn: Spawn, autojump_clock: MockClock
) -> None:
    """bob forgets alice's endpoint proof after 10 s (``devnet --bond-expiry 10``); alice's own view of the bond
    is geth's 24 h.  Each time bob falls silent after answering, alice bonds again and asks again, not only once
    per 24 h: a crawl whose visits outlast a peer's bond must not lose the rest of its table."""
    alice, bob = await spawn(), await spawn(DiscoveryConfig(bond_expiration=10.0))
    fill_table(bob, 20)
    assert await alice.bond(bob.local_node)
    await trio.sleep(1)  # bob's ping-back completes
    assert len(await alice.find_node(bob.local_node, b"\x01" * 64)) == 16
    for _ in range(3):
        await trio.sleep(11)  # bob forgot alice; alice still counts the bond
        assert alice.is_bonded(bob.local_node)
        assert len(await alice.find_node(bob.local_node, b"\x01" * 64)) == 16
        assert len(await alice.find_node(bob.local_node, b"\x02" * 64)) == 16


async def test_a_peer_slower_than_the_window_is_waited_for_once_a_late_answer_shows_its_round_trip(
    spawn: Spawn, autojump_clock: MockClock
) -> None:
    """bob answers 0.7 s after a request, beyond geth's 0.5 s: the first Ping times out, but its late Pong
    measures bob's round trip, and the next Ping (a bond's second attempt) waits two of them."""
    alice, bob = await spawn(), await spawn(DiscoveryConfig(reply_delay=0.7))
    assert alice.response_window(bob.node_id) == 0.5  # a peer never heard from: geth's respTimeout
    assert await alice.ping(bob.local_node) is None
    await trio.sleep(1)  # the late Pong arrives
    assert alice.round_trips.smoothed(bob.node_id) == pytest.approx(0.7, abs=0.01)
    assert alice.response_window(bob.node_id) == pytest.approx(1.4, abs=0.02)
    assert await alice.ping(bob.local_node) is not None
    # With geth's fixed window the same peer is never heard.
    fixed = await spawn(DiscoveryConfig(rtt_windows=False))
    assert await fixed.ping(bob.local_node) is None
    await trio.sleep(1)
    assert fixed.response_window(bob.node_id) == 0.5
    assert await fixed.ping(bob.local_node) is None


# -- issue 12: memory per known node ---------------------------------------------------------------

# What discovery v4 may keep per bonded peer that answered a FindNode: its bond times, EIP-868 flag, "asked"
# mark, rebond state and smoothed round trip, plus its share of the bounded routing table.  Measured ~1,150
# bytes over 1,000 peers with six per-peer maps keyed by (node id, ip text) or node id; ~440 with one map of
# records keyed by one bytes object (~380 over 5,000 peers, the table's share being bounded).
BYTES_PER_BONDED_PEER = 550


class ScriptedPeers:
    """A DatagramTransport for one DiscoveryV4 facing many geth-like peers, answered in place of a network.

    Each peer answers a Ping with a Pong and a ping-back (its bond), a FindNode with an empty NEIGHBORS.
    Source addresses reach the node as fresh strings per datagram, as a socket's ``recvfrom`` gives them.
    """

    def __init__(self, keys: dict[tuple[str, int], PrivateKey]) -> None:
        self.local_address = ("127.0.0.1", 30303)
        self._keys = keys
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, tuple[str, int]]](16)

    async def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        private_key = self._keys[addr]
        # Read by position (hash, signature, type), not decoded: decoding the node's Ping would fill wire's
        # bounded cache of addresses, whose size is not discovery's bookkeeping.
        request_hash, request_type = data[:32], data[97]
        expiration = int(wall_clock()) + 20
        # Behind a NAT, naming its private address: one address for all keeps that cache out of the figure.
        here = Endpoint(ip=ip_address("192.168.0.2"), udp=addr[1], tcp=addr[1])
        there = Endpoint(ip=ip_address(self.local_address[0]), udp=self.local_address[1], tcp=0)
        replies: list[discv4.Packet] = []
        if request_type == Ping.packet_type:
            replies.append(Pong(to=there, ping_hash=request_hash, expiration=expiration, enr_seq=1))
            replies.append(Ping(version=4, from_=here, to=there, expiration=expiration, enr_seq=1))
        elif request_type == FindNode.packet_type:
            replies.append(Neighbors(nodes=(), expiration=expiration))
        for reply in replies:
            source = (addr[0].encode().decode(), addr[1])  # a new string, as the kernel's
            self._send.send_nowait((discv4.encode(reply, private_key), source))

    async def recvfrom(self) -> tuple[bytes, tuple[str, int]]:
        return await self._receive.receive()


async def prune_stale_timeouts() -> None:
    """Have trio drop the heap entries of timeouts already left: it prunes them only once over 1000 are stale.

    They belong to the runtime, a bounded few hundred kilobytes, and would count as the peers' bytes.
    """
    for _ in range(1100):
        with trio.move_on_after(3600):
            pass
    await trio.sleep(0)


async def bookkeeping_bytes_per_peer(count: int) -> tuple[float, DiscoveryV4]:
    """Bond ``count`` peers and ask each for NEIGHBORS; what discovery keeps, in bytes per peer (tracemalloc)."""
    import gc
    import tracemalloc

    keys = {(f"10.{i >> 8 & 255}.{i & 255}.{1 + (i >> 16)}", 30303): generate_private_key() for i in range(count)}
    nodes = [
        Node(pubkey=pubkey_from_private(key), ip=ip_address(host), udp=port, tcp=port)
        for (host, port), key in keys.items()
    ]
    alice = DiscoveryV4(generate_private_key(), transport=ScriptedPeers(keys), wall_clock=wall_clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(alice.run)
        # Warm up: first-use allocations are not per peer.
        assert await alice.bond(nodes[0]) and await alice.find_node(nodes[0], b"\x00" * 64) == []
        await prune_stale_timeouts()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for node in nodes[1:]:
                assert await alice.bond(node) and alice.is_bonded(node)
                assert await alice.find_node(node, node.node_id * 2) == []
            await prune_stale_timeouts()
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        nursery.cancel_scope.cancel()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / (count - 1), alice


async def test_a_bonded_peer_costs_discovery_a_few_hundred_bytes() -> None:
    per_peer, alice = await bookkeeping_bytes_per_peer(1000)
    assert per_peer < BYTES_PER_BONDED_PEER, f"{per_peer:.0f} bytes per bonded peer"
    assert alice.statistics().bonded_nodes == 1000
