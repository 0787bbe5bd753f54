"""Discovery v4 between our node (crawler.discovery.DiscoveryV4) and @ethereumjs/devp2p 10.0.0 on 127.0.0.1.

Theirs is js/dpt_network.mjs: ethereumjs DPT nodes whose tables form a tree rooted at node 0, unchanged
while the test runs (see dpt_network.py). Both directions are checked: we ping, bond and query them; one of
them pings, bonds with and queries us. What we rely on about ethereumjs is in fixtures/INTEROP.md and was
re-checked here: Pong echoes the ping hash and carries no ENR seq; it pings back an unknown pinger's `from`
endpoint; it answers FINDNODE without a bond; it has no ENRRequest; it puts 16 nodes in one NEIGHBORS.

Every datagram goes through a recording transport, so the tests see the bytes that crossed the socket.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import trio
from dpt_network import (  # noqa: F401 (dpt_network_fixture provides the dpt_network fixture)
    LOOPBACK,
    DptNetwork,
    DptNetworkLauncher,
    dpt_network_fixture,
)
from ethcrawl.crawler.discovery import DiscoveryConfig, DiscoveryV4
from ethcrawl.crawler.udp import Address, UDPSocket, open_udp_socket
from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import generate_private_key, keccak256, pubkey_from_private
from ethcrawl.wire.discv4 import MAX_NEIGHBORS, MAX_PACKET_SIZE, FindNode, Neighbors, NodeRecord, Pong
from ethcrawl.wire.enode import Node
from ethcrawl.wire.errors import LocalProtocolError
from ethcrawl.wire.p2p import Capability, DisconnectReason, Hello
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import HelloReceived, PeerSession, StatusReceived
from rlpx_transport import SessionStream

pytestmark = pytest.mark.interop

# s per test: each takes 1-4 s (a short NEIGHBORS answer waits one 0.5 s timeout)
TEST_DEADLINE = 15.0
SETTLE_DEADLINE = 3.0  # s: a ping-back comes ~100 ms after the ping it answers
# s: issue 3's bound for `ethcrawl crawl` over the 20-node network (it takes ~14 s)
CRAWL_LIMIT = 60.0
MAINNET_GENESIS = "0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8f0db1cb8fa3"
MAINNET_PRAGUE_FORK_HASH = "0xc376cf8b"  # what @ethereumjs/common 10.0.0 announces for mainnet


@dataclass(eq=False)
class RecordingTransport:
    """A real UDP socket that keeps every datagram sent and received, in order."""

    socket: UDPSocket
    sent: list[tuple[bytes, Address]] = field(default_factory=list)
    received: list[tuple[bytes, Address]] = field(default_factory=list)

    @property
    def local_address(self) -> Address:
        return self.socket.local_address

    async def sendto(self, data: bytes, addr: Address) -> None:
        self.sent.append((data, addr))
        await self.socket.sendto(data, addr)

    async def recvfrom(self) -> tuple[bytes, Address]:
        data, addr = await self.socket.recvfrom()
        self.received.append((data, addr))
        return data, addr

    def received_types(self, addr: Address) -> list[int]:
        return [data[97] for data, source in self.received if source == addr and len(data) > 97]


@asynccontextmanager
async def our_node(
    config: DiscoveryConfig | None = None,
) -> AsyncIterator[tuple[DiscoveryV4, RecordingTransport]]:
    async with await open_udp_socket(LOOPBACK, 0) as sock:
        transport = RecordingTransport(sock)
        node = DiscoveryV4(
            generate_private_key(),
            host=LOOPBACK,
            transport=transport,
            config=config or DiscoveryConfig(),
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            yield node, transport
            nursery.cancel_scope.cancel()


def udp_addr(node: Node) -> Address:
    assert node.udp is not None
    return (str(node.ip), node.udp)


def as_record(node: Node) -> NodeRecord:
    assert node.udp is not None and node.tcp is not None
    return NodeRecord(ip=node.ip, udp=node.udp, tcp=node.tcp, pubkey=node.pubkey)


def random_node(port: int) -> Node:
    # Never contacted: the JS side only reads these from our NEIGHBORS.
    return Node(
        pubkey=pubkey_from_private(generate_private_key()),
        ip=IPv4Address(LOOPBACK),
        udp=port,
        tcp=port,
    )


def served_as_js(nodes: list[Node]) -> list[dict[str, Any]]:
    """Our table entries in the JSON shape js/dpt_network.mjs reports a NEIGHBORS entry in."""
    return [
        {"pubkey": n.pubkey.hex(), "address": str(n.ip), "udp": n.udp, "tcp": n.tcp} for n in nodes
    ]


async def wait_until_in_table(ours: DiscoveryV4, node: Node) -> None:
    with trio.fail_after(SETTLE_DEADLINE):
        while node.node_id not in ours.table:
            await trio.sleep(0.02)


# ---------------------------------------------------------------------------------------------- (a)


async def test_we_ping_bond_and_query_ethereumjs(dpt_network: DptNetworkLauncher) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with dpt_network(7, fanout=3) as net, our_node() as (ours, wire):
            boot = net.bootnode
            pong = await ours.ping(boot.node)
            assert isinstance(pong, Pong)
            ping_bytes = [data for data, addr in wire.sent if addr == udp_addr(boot.node)]
            assert len(ping_bytes) == 1 and ping_bytes[0][97] == discv4.Ping.packet_type
            # The Pong quotes the hash of the exact datagram we sent; ethereumjs sends no ENR seq.
            assert pong.ping_hash == ping_bytes[0][:32] == keccak256(ping_bytes[0][32:])
            assert (pong.to.ip, pong.to.udp) == (IPv4Address(LOOPBACK), ours.port)
            assert pong.enr_seq is None

            # It pings back the `from` endpoint of our Ping (~100 ms later): bond() sees that and answers.
            assert await ours.bond(boot.node)
            assert ours.is_bonded(boot.node)
            assert discv4.Ping.packet_type in wire.received_types(udp_addr(boot.node))
            boot_stats = (await net.stats())[0]
            assert ours.pubkey.hex() in boot_stats["pingers"]
            assert boot_stats["ping_backs"] >= 1

            # Its NEIGHBORS list exactly the table it was seeded with: node 0's children.
            target = pubkey_from_private(generate_private_key())
            for parent in (boot, net.nodes[1]):
                records = await ours.find_node(parent.node, target)
                expected = [as_record(net.nodes[child].node) for child in parent.children]
                assert len(parent.children) == 3
                assert sorted(records, key=lambda r: r.pubkey) == sorted(
                    expected, key=lambda r: r.pubkey
                )
            # A leaf knows nobody and says so (an empty NEIGHBORS), rather than staying silent.
            leaf = net.nodes[6]
            assert leaf.children == ()
            assert await ours.find_node(leaf.node, target) == []
            assert Neighbors.packet_type in wire.received_types(udp_addr(leaf.node))

            # No EIP-868: the ENRRequest goes unanswered, which is an ordinary outcome, not an error.  Silence
            # after a request makes us bond again and ask once more (the peer may have lost our endpoint proof):
            # two timeouts, the Pong of the new bond answered in between.
            timeouts = ours.statistics().timeouts
            assert await ours.request_enr(boot.node) is None
            stats = ours.statistics()
            assert stats.timeouts == timeouts + 2
            assert stats.bad_packets == stats.unsolicited == stats.expired_packets == 0


# ---------------------------------------------------------------------------------------------- (b)


async def test_ethereumjs_pings_bonds_and_queries_us(dpt_network: DptNetworkLauncher) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with dpt_network(2, fanout=1) as net, our_node() as (ours, wire):
            known = [random_node(40000 + i) for i in range(5)]
            for node in known:
                ours.table.add_verified(node)
            client = net.nodes[0]

            answer = await net.ping_from(0, ours.local_node)
            assert answer["ok"] and answer["from"] == ours.pubkey.hex()
            # We ping back an unverified pinger, as geth does; its Pong bonds it, and it enters our table.
            await wait_until_in_table(ours, client.node)
            assert ours.table.is_verified(client.node_id)
            assert discv4.Pong.packet_type in wire.received_types(udp_addr(client.node))
            assert ours.pubkey.hex() in (await net.stats())[0]["pingers"]

            target = pubkey_from_private(generate_private_key())
            got = await net.find_node_from(0, ours.local_node, target)
            served = ours.table.closest(keccak256(target))
            assert len(served) == len(known) + 1  # our five, and the client itself
            assert got["packets"] == 1
            assert got["nodes"] == served_as_js(served)

            # Node 1 never pinged us: no bond, so no answer (no amplification), like geth.
            unsolicited = ours.statistics().unsolicited
            stranger = await net.find_node_from(1, ours.local_node, target)
            assert stranger["packets"] == 0 and stranger["nodes"] == []
            assert ours.statistics().unsolicited == unsolicited + 1
            assert ours.statistics().bad_packets == 0


async def test_ethereumjs_gets_a_long_answer_in_packets_of_at_most_1280_bytes(
    dpt_network: DptNetworkLauncher,
) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with dpt_network(1) as net, our_node() as (ours, wire):
            for i in range(MAX_NEIGHBORS + 2):
                ours.table.add_verified(random_node(41000 + i))
            client = net.nodes[0]
            assert (await net.ping_from(0, ours.local_node))["ok"]
            await wait_until_in_table(ours, client.node)

            target = pubkey_from_private(generate_private_key())
            got = await net.find_node_from(0, ours.local_node, target)
            served = ours.table.closest(keccak256(target))
            assert len(served) == MAX_NEIGHBORS + 3
            sent = [
                data for data, addr in wire.sent if addr == udp_addr(client.node) and data[97] == 4
            ]
            assert got["packets"] == len(sent) == 2
            assert all(len(data) <= MAX_PACKET_SIZE for data in sent)
            # Datagrams on loopback keep their order, but the test need not rely on it.
            key = lambda entry: entry["pubkey"]
            assert sorted(got["nodes"], key=key) == sorted(served_as_js(served), key=key)


# ---------------------------------------------------------------------------------------------- (c)


async def test_oversize_neighbors_from_ethereumjs_are_accepted_by_default(
    dpt_network: DptNetworkLauncher,
) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with dpt_network(17, fanout=16) as net:
            boot = net.bootnode
            expected = sorted(
                (as_record(net.nodes[c].node) for c in boot.children), key=lambda r: r.pubkey
            )
            assert len(expected) == 16
            target = pubkey_from_private(generate_private_key())

            async with our_node() as (ours, wire):
                assert await ours.bond(boot.node)
                records = await ours.find_node(boot.node, target)
                assert sorted(records, key=lambda r: r.pubkey) == expected
                answers = [d for d, a in wire.received if a == udp_addr(boot.node) and d[97] == 4]
                # All 16 in one datagram, over discv4's 1280 bytes: we could not even send one like it.
                assert (
                    len(answers) == 1
                    and MAX_PACKET_SIZE < len(answers[0]) <= ours.config.max_receive_size
                )
                with pytest.raises(LocalProtocolError):
                    discv4.encode(
                        Neighbors(nodes=tuple(records), expiration=2**32), ours.private_key
                    )
                assert ours.statistics().bad_packets == 0

            # The strict alternative, spelled out: with the spec's limit the answer is dropped as bad.  A dropped
            # answer is silence to the request, so it bonds again and asks once more: that answer is dropped too.
            async with our_node(DiscoveryConfig(max_receive_size=MAX_PACKET_SIZE)) as (strict, _):
                assert await strict.bond(boot.node)
                assert await strict.find_node(boot.node, target) is None  # silence: no answer was accepted
                assert strict.statistics().bad_packets == 2


# ------------------------------------------------------------------------------- the network itself


async def crawl_by_hand(ours: DiscoveryV4, net: DptNetwork) -> dict[bytes, NodeRecord]:
    """Breadth-first FINDNODE walk from the bootnode, one level at a time, each level concurrently."""
    target = pubkey_from_private(generate_private_key())
    found: dict[bytes, NodeRecord] = {}
    level = [net.bootnode.node]
    while level:
        answers: list[list[NodeRecord]] = []

        async def ask(node: Node, into: list[list[NodeRecord]]) -> None:
            into.append(await ours.find_node(node, target) or [])

        async with trio.open_nursery() as nursery:
            for node in level:
                nursery.start_soon(ask, node, answers)
        level = []
        for record in (r for answer in answers for r in answer):
            node_id = keccak256(record.pubkey)
            if node_id not in found:
                found[node_id] = record
                level.append(
                    Node(pubkey=record.pubkey, ip=record.ip, udp=record.udp, tcp=record.tcp)
                )
    return found


async def test_network_is_found_only_by_walking_from_the_bootnode(
    dpt_network: DptNetworkLauncher,
) -> None:
    with trio.fail_after(TEST_DEADLINE):
        async with dpt_network(20, fanout=4) as net, our_node() as (ours, transport):
            assert len({node.client_id for node in net.nodes}) == 20
            found = await crawl_by_hand(ours, net)
            by_id = net.by_id()
            assert set(found) == set(by_id) - {net.bootnode.node_id}
            for node_id, record in found.items():
                assert record == as_record(by_id[node_id].node)
            # Every node was asked by us only (once, or twice if an answer was late and we asked again after
            # bonding: DiscoveryConfig.rebond_on_silence), and nobody else's table changed meanwhile.
            stats = await net.stats()
            asked = [
                sum(1 for data, addr in transport.sent if addr == (LOOPBACK, n.node.udp) and data[97] == FindNode.packet_type)
                for n in net.nodes
            ]
            assert [s["findnodes_in"] for s in stats] == asked and all(1 <= a <= 2 for a in asked), asked
            # Only we may have pinged (to bond again after a late answer), and only those we asked twice.
            for s, a in zip(stats, asked):
                assert s["pingers"] == ([] if a == 1 else [ours.pubkey.hex()]), (s, a)

            # A node's RLPx side says what the manifest says: its client id and the mainnet Status.
            member = net.nodes[7]
            key = generate_private_key()
            stream = await trio.open_tcp_stream(LOOPBACK, member.node.tcp or 0)
            hello = Hello(
                protocol_version=5,
                client_id="ethcrawl/interop-test",
                capabilities=(Capability(name="eth", version=68),),
                listen_port=0,
                node_pubkey=pubkey_from_private(key),
            )
            io = SessionStream(
                PeerSession(RLPxConnection.initiator(key, member.pubkey, eip8=True), hello=hello),
                stream,
            )
            await io.flush()
            assert (await io.wait_for(HelloReceived)).hello.client_id == member.client_id
            status = (await io.wait_for(StatusReceived)).status
            assert status.network_id == net.status["network_id"] == 1
            assert "0x" + status.genesis.hex() == net.status["genesis_hash"] == MAINNET_GENESIS
            assert (
                "0x" + status.fork_id.hash.hex()
                == net.status["fork_id"]["hash"]
                == MAINNET_PRAGUE_FORK_HASH
            )
            assert status.fork_id.next == net.status["fork_id"]["next"]
            assert (
                status.td == int(net.status["td"])
                and "0x" + status.head.hex() == net.status["best_hash"]
            )
            io.session.send_disconnect(DisconnectReason.CLIENT_QUITTING)
            await io.flush()
            await io.aclose()
            with trio.fail_after(SETTLE_DEADLINE):
                while (await net.stats())[7]["disconnects"] < 1:
                    await trio.sleep(0.05)
            assert (await net.stats())[7]["connections"] == 1


# ------------------------------------------------------------------------- issue 3: the crawl itself


async def test_ethcrawl_crawl_finds_every_node_from_one_bootnode(
    dpt_network: DptNetworkLauncher, tmp_path: Path
) -> None:
    database = tmp_path / "crawl.db"
    with trio.fail_after(CRAWL_LIMIT + 15):
        async with dpt_network(20, fanout=4, max_seconds=CRAWL_LIMIT + 30) as net:
            command = [
                sys.executable,
                "-m",
                "ethcrawl.crawler",
                "crawl",
                "--bootnode",
                net.bootnode.enode,
            ]
            command += ["--udp", f"{LOOPBACK}:0", "--db", str(database)]
            started = trio.current_time()
            done = await trio.run_process(
                command, capture_stdout=True, capture_stderr=True, check=False
            )
            elapsed = trio.current_time() - started
            output = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
            assert done.returncode == 0, output
            # It ended by itself (no --duration), well within the bound.
            assert elapsed < CRAWL_LIMIT, output
            # The crawler has exited: every connection it made is closed by now, or very soon.
            with trio.fail_after(SETTLE_DEADLINE):
                stats = await net.stats()
                while any(s["disconnects"] < s["connections"] for s in stats):
                    await trio.sleep(0.05)
                    stats = await net.stats()

    by_id = net.by_id()
    with sqlite3.connect(database) as db:
        nodes = {
            bytes(row[0]): row[1:]
            for row in db.execute("SELECT node_id, ip, udp_port, tcp_port FROM nodes")
        }
        edges = {
            (bytes(a), bytes(b)) for a, b in db.execute("SELECT from_node, to_node FROM edges")
        }
        dials = db.execute(
            "SELECT node_id, outcome, client_id, eth_version, network_id, genesis_hash, fork_hash, fork_next,"
            " head_hash, total_difficulty FROM dial_attempts"
        ).fetchall()
    assert nodes == {n.node_id: (LOOPBACK, n.node.udp, n.node.tcp) for n in net.nodes}
    # What each node told us is exactly its table: the edges are the tree the network was built as.
    assert edges == {(n.node_id, net.nodes[c].node_id) for n in net.nodes for c in n.children}

    want = net.status
    assert sorted(bytes(row[0]) for row in dials) == sorted(by_id)  # each node dialled once
    for node_id, outcome, client_id, eth, network, genesis, fork_hash, fork_next, head, td in dials:
        member = by_id[bytes(node_id)]
        assert (outcome, client_id) == ("ok", member.client_id)
        assert (eth, network) == (want["version"], want["network_id"])
        assert "0x" + bytes(genesis).hex() == want["genesis_hash"]
        assert ("0x" + bytes(fork_hash).hex(), fork_next) == (
            want["fork_id"]["hash"],
            want["fork_id"]["next"],
        )
        assert ("0x" + bytes(head).hex(), int(td)) == (want["best_hash"], int(want["td"]))
    # The ethereumjs side agrees: one connection each, Status both ways, and the crawler left.
    assert [(s["connections"], s["status_sent"], s["status_received"]) for s in stats] == [
        (1, 1, 1)
    ] * 20
    assert all(s["findnodes_in"] >= 1 for s in stats)
