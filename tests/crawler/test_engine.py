"""The crawl engine over an in-memory network of real discovery nodes (MockClock)."""

from __future__ import annotations

import random
import sys
from array import array
from ipaddress import ip_address

import trio
from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.engine import (
    EDGE_PROTOCOL_BIT,
    EDGE_PROTOCOL_BITS,
    CrawlConfig,
    Crawler,
    _add_edge,
)
from ethcrawl.crawler.relay import relay_error
from ethcrawl.crawler.targets import TargetTable
from ethcrawl.db.records import EdgeSeen, NodeSeen
from ethcrawl.wire.crypto import generate_private_key, pubkey_from_private
from ethcrawl.wire.enode import Node
from memnet import MemoryNetwork
from trio.testing import MockClock

WALL_EPOCH = 1_700_000_000.0


def wall_clock() -> float:
    return WALL_EPOCH + trio.current_time()


async def start_tree(net: MemoryNetwork, nursery: trio.Nursery, count: int, fanout: int) -> list[DiscoveryV4]:
    """``count`` nodes; node k's table holds only its children fanout*k+1 .. fanout*k+fanout."""
    nodes = []
    for _ in range(count):
        node = DiscoveryV4(generate_private_key(), transport=net.open(), wall_clock=wall_clock)
        await nursery.start(node.run)
        nodes.append(node)
    for k, node in enumerate(nodes):
        for child in nodes[fanout * k + 1 : fanout * k + fanout + 1]:
            node.table.add_verified(child.local_node)
    return nodes


async def crawl(net: MemoryNetwork, seeds: list[Node], **config: int) -> tuple[list[object], Crawler]:
    crawler_node = DiscoveryV4(generate_private_key(), transport=net.open(), wall_clock=wall_clock)
    send, receive = trio.open_memory_channel[object](100_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(crawler_node.run)
        crawler = Crawler(
            crawler_node, TargetTable.default(), send, crawl_id=1, config=CrawlConfig(**config), wall_clock=wall_clock
        )
        await crawler.run(list(seeds))
        nursery.cancel_scope.cancel()
    send.close()
    return [record async for record in receive], crawler


async def test_walks_a_tree_only_reachable_from_the_root(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        nodes = await start_tree(net, nursery, count=40, fanout=3)
        started = trio.current_time()
        records, crawler = await crawl(net, [nodes[0].local_node])
        took = trio.current_time() - started
        nursery.cancel_scope.cancel()
    found = {r.node_id for r in records if isinstance(r, NodeSeen)}
    assert found == {n.node_id for n in nodes}
    # Every parent returned each of its children.
    edges = {(r.from_id, r.to_id) for r in records if isinstance(r, EdgeSeen)}
    for k, node in enumerate(nodes):
        for child in nodes[3 * k + 1 : 3 * k + 4]:
            assert (node.node_id, child.node_id) in edges
    stats = crawler.statistics()
    assert stats.visited == 40 and stats.responded == 40
    assert stats.queued == 0 and stats.in_flight == 0
    assert took < 60  # ends by itself, on the mock clock


async def test_unresponsive_nodes_do_not_stall_the_crawl(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        nodes = await start_tree(net, nursery, count=10, fanout=3)
        dead = nodes[2].local_node
        net.drop = lambda data, src, dst: dst == (str(dead.ip), dead.udp)
        records, crawler = await crawl(net, [nodes[0].local_node])
        nursery.cancel_scope.cancel()
    found = {r.node_id for r in records if isinstance(r, NodeSeen)}
    # nodes[2]'s children (7, 8, 9) can only be learned through it.
    assert found == {n.node_id for i, n in enumerate(nodes) if i not in (7, 8, 9)}
    assert crawler.statistics().responded == 6


def test_relay_rules() -> None:
    public = ip_address("8.8.4.4")
    loop = ip_address("127.0.0.1")
    lan = ip_address("192.168.1.5")
    assert relay_error(public, ip_address("1.2.3.4"), 30303) is None
    assert relay_error(loop, loop, 30303) is None
    assert relay_error(lan, lan, 30303) is None
    assert relay_error(public, lan, 30303) == "LAN address relayed by a public node"
    assert relay_error(public, loop, 30303) == "loopback address relayed by a non-loopback node"
    assert relay_error(public, ip_address("1.2.3.4"), 1024) == "port 1024 <= 1024"
    assert relay_error(public, ip_address("0.0.0.0"), 30303) == "unspecified address"
    assert relay_error(public, ip_address("224.0.0.1"), 30303) == "special-purpose address"
    assert relay_error(public, None, 30303) == "no address"


async def test_hostile_relays_are_not_crawled(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        nodes = await start_tree(net, nursery, count=2, fanout=1)
        bad_port = Node(pubkey=pubkey_from_private(generate_private_key()), ip=ip_address("127.0.0.9"), udp=80, tcp=80)
        nodes[0].table.add_verified(bad_port)
        records, crawler = await crawl(net, [nodes[0].local_node])
        nursery.cancel_scope.cancel()
    found = {r.node_id for r in records if isinstance(r, NodeSeen)}
    assert bad_port.node_id not in found
    assert crawler.statistics().relay_rejected >= 1  # once per answer that carried it


async def test_our_identities_and_self_listings_are_never_nodes_or_edges(autojump_clock: MockClock) -> None:
    """Peers list us (this crawl's key and an earlier identity of ours) and one lists itself: none of it is counted."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        nodes = await start_tree(net, nursery, count=3, fanout=2)
        crawler_node = DiscoveryV4(generate_private_key(), transport=net.open(), wall_clock=wall_clock)
        earlier = DiscoveryV4(generate_private_key(), transport=net.open(), wall_clock=wall_clock)  # a live old key
        for node in (crawler_node, earlier):
            await nursery.start(node.run)
            for peer in nodes:
                peer.table.add_verified(node.local_node)
        lister = nodes[1]
        closest = lister.table.closest
        lister.table.closest = lambda target, n=16, **kw: [lister.local_node, *closest(target, n, **kw)]  # type: ignore[method-assign]
        send, receive = trio.open_memory_channel[object](100_000)
        crawler = Crawler(
            crawler_node, TargetTable.default(), send, crawl_id=1, wall_clock=wall_clock,
            excluded=frozenset({earlier.node_id}),
        )
        # Seeds that are us are dropped too.
        await crawler.run([nodes[0].local_node, earlier.local_node, crawler_node.local_node])
        send.close()
        records = [record async for record in receive]
        nursery.cancel_scope.cancel()
    found = {r.node_id for r in records if isinstance(r, NodeSeen)}
    assert found == {n.node_id for n in nodes}
    edges = {(r.from_id, r.to_id) for r in records if isinstance(r, EdgeSeen)}
    assert edges == {(nodes[0].node_id, nodes[1].node_id), (nodes[0].node_id, nodes[2].node_id)}
    assert crawler.statistics().edges == len(edges)
    # The earlier identity was never visited: nothing went from the crawler to its address.
    ours, old = (str(crawler_node.local_node.ip), crawler_node.port), (str(earlier.local_node.ip), earlier.port)
    assert any(src == ours for src, _, _ in net.sent)
    assert not [dst for src, dst, _ in net.sent if src == ours and dst == old]
def test_edges_are_distinct_pairs_over_any_protocol_in_a_few_bytes_each() -> None:
    returned = array("I")
    assert _add_edge(returned, 7, EDGE_PROTOCOL_BIT["v4"]) == (True, True)
    assert _add_edge(returned, 7, EDGE_PROTOCOL_BIT["v4"]) == (False, False)  # a re-visit or a late NEIGHBORS
    assert _add_edge(returned, 7, EDGE_PROTOCOL_BIT["v5"]) == (False, True)  # same pair, new protocol
    assert _add_edge(returned, 3, EDGE_PROTOCOL_BIT["v5"]) == (True, True)
    assert [entry >> EDGE_PROTOCOL_BITS for entry in returned] == [3, 7]
    # The memory claim in _add_edge's docstring: 1,000 answering nodes returning 100 peers each.
    rng = random.Random(1)
    arrays, edges = [], 0
    for _ in range(1000):
        peers = array("I")
        for target in rng.sample(range(20_000), 100):
            edges += _add_edge(peers, target, EDGE_PROTOCOL_BIT["v4"])[0]
        arrays.append(peers)
    assert edges == 100_000
    assert sum(sys.getsizeof(a) for a in arrays) / edges < 5.0  # bytes per edge


def test_a_dial_goes_to_the_rlpx_port_of_the_newest_record() -> None:
    """A NEIGHBORS entry may name a port the node has left; its own newer record (signed) says where it listens.

    Found by ``devnet --profile mainnet``: a node that moved its port was dialed at the old one, refused.
    """
    from ethcrawl.crawler.discovery import make_local_enr
    from ethcrawl.crawler.engine import _dial_target, _NodeState

    key = generate_private_key()
    old = Node(pubkey=pubkey_from_private(key), ip=ip_address("127.0.0.1"), udp=30303, tcp=30303)
    moved = make_local_enr(key, "127.0.0.1", 30303, 30400, seq=2)
    assert _dial_target(_NodeState(node=old, source="neighbors", index=0, enr=moved)).tcp == 30400
    assert _dial_target(_NodeState(node=old, source="neighbors", index=0)) == old
    # A record naming another address does not move the dial there: we dial the address we know.
    elsewhere = make_local_enr(key, "127.0.0.2", 30303, 30400, seq=3)
    assert _dial_target(_NodeState(node=old, source="neighbors", index=0, enr=elsewhere)) == old
