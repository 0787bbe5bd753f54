"""The discovery v5 node over an in-memory network (MockClock), and sharing one socket with v4."""

from __future__ import annotations

import os

import pytest
import trio
from memnet import MemoryNetwork
from trio.testing import MockClock

from ethcrawl.crawler.discovery import DiscoveryV4, make_local_enr
from ethcrawl.crawler.discovery_v5 import MAX_NODES_MESSAGES, NODES_RESULT_LIMIT, DiscoveryV5, DiscoveryV5Config, V5Peer, enr_address
from ethcrawl.crawler.table import log_distance
from ethcrawl.crawler.node import DiscoveryNode
from ethcrawl.wire.crypto import generate_private_key
from ethcrawl.wire.discv5.messages import FindNode, Nodes
from ethcrawl.wire.discv5.session import Config, Discv5Protocol, MessageReceived
from ethcrawl.wire.enr import ENR


async def start_v5(net: MemoryNetwork, nursery: trio.Nursery, **config: object) -> DiscoveryV5:
    node = DiscoveryV5(generate_private_key(), transport=net.open(), config=DiscoveryV5Config(**config))  # type: ignore[arg-type]
    await nursery.start(node.run)
    return node


def make_enr(port: int) -> ENR:
    return ENR.create(generate_private_key(), seq=1, pairs={"ip": "127.0.0.1", "udp": port})


async def test_ping_establishes_a_session_and_both_tables_learn(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery)
        pong = await a.ping(b.enr)
        assert pong is not None
        assert pong.enr_seq == b.enr.seq
        assert (str(pong.recipient_ip), pong.recipient_port) == ("127.0.0.1", a.port)
        # a pinged b and got an answer; b saw a's handshake from the address a's record names.
        assert b.node_id in a.table
        assert a.node_id in b.table
        assert a.statistics().handshakes == 1 and b.statistics().handshakes == 1
        nursery.cancel_scope.cancel()


async def test_find_node_by_distance_returns_the_table_bucket_and_own_record(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery)
        records = [make_enr(40000 + i) for i in range(60)]
        for record in records:
            b.add_to_table(record)
        assert await a.find_node(b.enr, (0,)) == [b.enr]
        by_distance: dict[int, set[bytes]] = {}
        for peer in b.table:
            by_distance.setdefault(log_distance(b.node_id, peer.node_id), set()).add(peer.node_id)
        for distance, ids in by_distance.items():
            got = await a.find_node(b.enr, (distance,))
            assert {r.node_id for r in got} == ids
            # b's table holds the 60 records and a itself (a's handshake came from the address a's record names).
            assert all(r.to_rlp() in {x.to_rlp() for x in [*records, a.enr]} for r in got)
        # Several distances at once: capped at 16 records in total, as geth and chainsafe do.
        got = await a.find_node(b.enr, tuple(range(256, 250, -1)))
        expected = sum(len(by_distance.get(d, ())) for d in range(256, 250, -1))
        assert len(got) == min(expected, NODES_RESULT_LIMIT)
        nursery.cancel_scope.cancel()


async def test_multi_message_nodes_answer_is_collected_by_total(autojump_clock: MockClock) -> None:
    """A hand-driven peer answers with 16 records in 6 NODES messages of 3 (as chainsafe does)."""
    net = MemoryNetwork()
    peer_key = generate_private_key()
    endpoint = net.open()
    peer_enr = ENR.create(peer_key, seq=1, pairs={"ip": "127.0.0.1", "udp": endpoint.local_address[1]})
    peer = Discv5Protocol(peer_key, peer_enr)
    # Records at distance 256 from the peer: the first bit of the id differs.
    records = []
    while len(records) < 16:
        candidate = make_enr(41000 + len(records))
        assert candidate.node_id is not None and peer_enr.node_id is not None
        if log_distance(peer_enr.node_id, candidate.node_id) == 256:
            records.append(candidate)

    async def serve() -> None:
        while True:
            data, addr = await endpoint.recvfrom()
            for event in peer.receive(data, addr, trio.current_time()):
                if isinstance(event, MessageReceived) and isinstance(event.message, FindNode):
                    chunks = [records[i : i + 3] for i in range(0, 16, 3)]
                    for chunk in chunks:
                        nodes = Nodes(
                            request_id=event.message.request_id, total=len(chunks), records=tuple(r.to_rlp() for r in chunk)
                        )
                        for out in peer.send_message(event.node_id, event.addr, nodes, now=trio.current_time()):
                            await endpoint.sendto(out.data, out.addr)
                elif hasattr(event, "data"):
                    await endpoint.sendto(event.data, event.addr)  # type: ignore[attr-defined]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        a = await start_v5(net, nursery)
        got = await a.find_node(peer_enr, (256,))
        assert sorted(r.to_rlp() for r in got) == sorted(r.to_rlp() for r in records)
        # Records at a distance nobody asked for are refused, not recorded.
        got = await a.find_node(peer_enr, (255,))
        assert got == []
        assert a.statistics().bad_records == 16
        nursery.cancel_scope.cancel()


async def test_talkreq_gets_an_empty_talkresp(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery)
        assert await a.talk(b.enr, b"portal", b"hello") == b""
        nursery.cancel_scope.cancel()


async def test_unanswered_request_times_out(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a = await start_v5(net, nursery, response_timeout=0.5)
        started = trio.current_time()
        assert await a.ping(make_enr(45000)) is None
        assert trio.current_time() - started == 0.5
        assert a.statistics().timeouts == 1
        nursery.cancel_scope.cancel()


async def test_v4_and_v5_share_one_socket(autojump_clock: MockClock) -> None:
    """One port: v4 packets go to the v4 node, everything else to v5; both answer through it."""
    net = MemoryNetwork()
    shared = net.open()
    node = DiscoveryNode(generate_private_key(), transport=shared)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        both_v4, both_v5, demux = node.v4, node.v5, node.demux
        assert both_v5 is not None and demux is not None
        assert both_v4.enr is not None and both_v4.enr.to_rlp() == both_v5.enr.to_rlp()

        v4_client = DiscoveryV4(generate_private_key(), transport=net.open())
        await nursery.start(v4_client.run)
        assert await v4_client.ping(both_v4.local_node) is not None
        v5_client = await start_v5(net, nursery)
        assert await v5_client.ping(both_v5.enr) is not None
        # Garbage is neither: it reaches v5, which drops it and carries on.
        await v5_client._socket.sendto(os.urandom(200), shared.local_address)  # type: ignore[union-attr]
        await trio.sleep(0.1)
        assert await v5_client.ping(both_v5.enr) is not None
        assert demux.v4.received >= 1 and demux.v5.received >= 3
        assert both_v4.statistics().bad_packets == 0
        nursery.cancel_scope.cancel()


async def test_whoareyou_flood_does_not_stop_the_node(autojump_clock: MockClock) -> None:
    """Thousands of unknown-session packets from one address: answers are rate limited, service goes on."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        target = await start_v5(net, nursery)
        flood_key = generate_private_key()
        flood_enr = ENR.create(flood_key, seq=1, pairs={"ip": "127.0.0.9", "udp": 46000})
        attacker = net.open("127.0.0.9", 46000)
        for _ in range(2000):
            # A fresh protocol each time, so every packet is a new session-less one that asks for a WHOAREYOU.
            flooder = Discv5Protocol(flood_key, flood_enr)
            for out in flooder.send_message(
                target.node_id, ("127.0.0.1", target.port), FindNode(request_id=b"\x01", distances=(256,)),
                target.enr, now=trio.current_time(),
            ):
                await attacker.sendto(out.data, out.addr)
            await trio.sleep(0.0001)
        stats = target.statistics()
        assert stats.rate_limited > 0
        # Answers (WHOAREYOUs) stayed within the per-IP budget, whatever the flood.
        whoareyous = sum(1 for src, _dst, _ in net.sent if src == ("127.0.0.1", target.port))
        # One node id at one IP: one WHOAREYOU per interval, over the flood's 0.2 s that is one.
        assert whoareyous == 1
        assert stats.rate_limited == 1999
        client = await start_v5(net, nursery)
        assert await client.ping(target.enr) is not None
        nursery.cancel_scope.cancel()


async def test_find_node_never_relays_unverified_entries(autojump_clock: MockClock) -> None:
    """discv5-theory: "implementations must avoid relaying any nodes whose liveness has not been verified"."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery)
        heard_of = make_enr(47000)
        assert heard_of.node_id is not None
        b.table.add_seen(V5Peer(enr=heard_of, node_id=heard_of.node_id, ip=heard_of.ip))
        distance = log_distance(b.node_id, heard_of.node_id)
        assert await a.find_node(b.enr, (distance,)) in ([], [a.enr])
        b.add_to_table(heard_of)  # now verified live
        assert heard_of.to_rlp() in {r.to_rlp() for r in await a.find_node(b.enr, (distance,))}
        nursery.cancel_scope.cancel()


async def test_nodes_after_the_timeout_reach_late_nodes(autojump_clock: MockClock) -> None:
    """A peer that answers FINDNODE after we gave up: its records still come out, checked, on late_nodes."""
    net = MemoryNetwork()
    peer_key = generate_private_key()
    endpoint = net.open()
    peer_enr = ENR.create(peer_key, seq=1, pairs={"ip": "127.0.0.1", "udp": endpoint.local_address[1]})
    peer = Discv5Protocol(peer_key, peer_enr)
    assert peer_enr.node_id is not None
    near = next(r for r in (make_enr(48000 + i) for i in range(200)) if log_distance(peer_enr.node_id, r.node_id or b"") == 256)
    far = next(r for r in (make_enr(49000 + i) for i in range(200)) if log_distance(peer_enr.node_id, r.node_id or b"") == 255)

    async def answer_late(event: MessageReceived) -> None:
        await trio.sleep(3.0)
        assert isinstance(event.message, FindNode)
        nodes = Nodes(request_id=event.message.request_id, total=1, records=(near.to_rlp(), far.to_rlp()))
        for out in peer.send_message(event.node_id, event.addr, nodes, now=trio.current_time()):
            await endpoint.sendto(out.data, out.addr)

    async def serve(nursery: trio.Nursery) -> None:
        while True:
            data, addr = await endpoint.recvfrom()
            for event in peer.receive(data, addr, trio.current_time()):
                if isinstance(event, MessageReceived) and isinstance(event.message, FindNode):
                    nursery.start_soon(answer_late, event)
                elif hasattr(event, "data"):
                    await endpoint.sendto(event.data, event.addr)  # type: ignore[attr-defined]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, nursery)
        a = await start_v5(net, nursery)
        assert await a.find_node(peer_enr, (256,)) is None  # nothing came in time
        with trio.fail_after(5):
            late = await a.late_nodes.receive()
        assert late.sender_id == peer_enr.node_id
        # Checked like a timely answer: the record at a distance nobody asked for is refused.
        assert [r.to_rlp() for r in late.records] == [near.to_rlp()]
        assert a.statistics().late_nodes == 1 and a.statistics().bad_records == 1
        nursery.cancel_scope.cancel()


class Chatty(DiscoveryV5):
    """Answers every FINDNODE with 40 NODES messages of one record each, all claiming total=40."""

    async def _answer(self, event: MessageReceived) -> None:
        message = event.message
        if not isinstance(message, FindNode):
            await super()._answer(event)
            return
        self.last_request = (event.node_id, event.addr, message.request_id)
        protocol = self._require_protocol()
        records = [r for r in (make_enr(50000 + i) for i in range(400)) if log_distance(self.node_id, r.node_id or b"") == 256]
        for record in records[:40]:
            nodes = Nodes(request_id=message.request_id, total=40, records=(record.to_rlp(),))
            for out in protocol.send_message(event.node_id, event.addr, nodes, now=trio.current_time()):
                await self._send(out)


async def test_nodes_beyond_the_message_cap_and_replays_are_not_taken(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a = await start_v5(net, nursery)
        chatty = Chatty(generate_private_key(), transport=net.open())
        await nursery.start(chatty.run)
        got = await a.find_node(chatty.enr, (256,))
        assert got is not None and len(got) == MAX_NODES_MESSAGES  # one record per message, capped
        # The answer was whole (as far as we take it): the 32 messages after the cap, and replays, are not late answers.
        node_id, addr, request_id = chatty.last_request
        for _ in range(20):
            replay = Nodes(request_id=request_id, total=1, records=(chatty.enr.to_rlp(),))
            for out in chatty._require_protocol().send_message(node_id, addr, replay, now=trio.current_time()):
                await chatty._send(out)
        await trio.sleep(1)
        assert a.statistics().late_nodes == 0
        with pytest.raises(trio.WouldBlock):
            a.late_nodes.receive_nowait()
        nursery.cancel_scope.cancel()


async def test_find_node_does_not_relay_loopback_entries_to_a_public_requester(autojump_clock: MockClock) -> None:
    """geth's CheckRelayIP on the answering side: LAN and loopback entries only go to askers that can use them."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        b = await start_v5(net, nursery)
        local = make_enr(51000)
        assert local.node_id is not None
        b.add_to_table(local)
        distance = log_distance(b.node_id, local.node_id)
        public = DiscoveryV5(generate_private_key(), host="198.51.100.7", transport=net.open("198.51.100.7"))
        await nursery.start(public.run)
        assert await public.find_node(b.enr, (distance,)) == []
        nearby = await start_v5(net, nursery)
        assert local.to_rlp() in {r.to_rlp() for r in await nearby.find_node(b.enr, (distance,)) or ()}
        nursery.cancel_scope.cancel()


async def test_a_handshake_over_the_family_the_record_does_not_prefer_still_verifies(autojump_clock: MockClock) -> None:
    """A dual-stack node names ip and ip6; reaching us over IPv6 from the ip6 its record names is from its own address."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a = await start_v5(net, nursery)
        key = generate_private_key()
        b = DiscoveryV5(key, host="::1", transport=net.open("::1"))
        await nursery.start(b.run)
        b.set_local_enr(make_local_enr(key, "::", b.port, b.port, seq=2, learned=[("127.0.0.5", b.port), ("::1", b.port)]))
        assert enr_address(b.enr) == ("127.0.0.5", b.port)  # the record prefers IPv4 (a tie: both loopback)
        assert await b.ping(a.enr) is not None
        assert b.node_id in a.table
        # A record naming neither address the handshake came from still does not get in.
        c_key = generate_private_key()
        c = DiscoveryV5(c_key, host="::1", transport=net.open("::1"))
        await nursery.start(c.run)
        c.set_local_enr(make_local_enr(c_key, "::", c.port, c.port, seq=2, learned=[("127.0.0.6", c.port), ("::1", c.port + 1)]))
        assert await c.ping(a.enr) is not None
        assert c.node_id not in a.table
        nursery.cancel_scope.cancel()


async def test_a_peer_known_to_be_slow_gets_a_window_of_its_round_trips(autojump_clock: MockClock) -> None:
    """b answers 0.9 s after a request, beyond geth's 0.7 s.  Once its round trip is known (v4 measures it on
    the same node: one path), the window is two of them per handshake leg; with fixed windows it is never heard."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await start_v5(net, nursery), await start_v5(net, nursery, reply_delay=0.9)
        fixed = await start_v5(net, nursery, rtt_windows=False)
        assert a.response_window(b.node_id, legs=2) == 0.7  # never heard from: geth's respTimeoutV5
        assert await a.ping(b.enr) is None
        a.round_trips.observe(b.node_id, 0.5)
        fixed.round_trips.observe(b.node_id, 0.5)
        assert a.response_window(b.node_id, legs=2) == 2.0  # 2 legs x 2 x 0.5 s, capped at 2 s
        assert await a.ping(b.enr) is not None
        assert await fixed.ping(b.enr) is None
        nursery.cancel_scope.cancel()
