"""The crawl engine over discovery v5 and over a mixed v4/v5 network (in memory, MockClock)."""

from __future__ import annotations

import trio
from memnet import MemoryNetwork, collect_records
from trio.testing import MockClock

from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.crawl import v5_protocol_config
from ethcrawl.crawler.discovery_v5 import DiscoveryV5, DiscoveryV5Config
from ethcrawl.crawler.engine import EDGE_PROTOCOL_BIT, CrawlConfig, Crawler, _looks_like_execution, _NodeState
from ethcrawl.crawler.node import DiscoveryNode
from ethcrawl.crawler.table import log_distance
from ethcrawl.crawler.targets import TargetTable
from ethcrawl.db.records import EdgeSeen, NodeSeen
from ethcrawl.wire.crypto import generate_private_key
from ethcrawl.wire.discv5.messages import FindNode
from ethcrawl.wire.discv5.session import Config as SessionConfig
from ethcrawl.wire.discv5.session import MessageReceived
from ethcrawl.wire.enode import Node
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.forkid import ForkId

WALL_EPOCH = 1_700_000_000.0


def wall_clock() -> float:
    return WALL_EPOCH + trio.current_time()


async def v5_node(net: MemoryNetwork, nursery: trio.Nursery) -> DiscoveryV5:
    node = DiscoveryV5(generate_private_key(), transport=net.open())
    await nursery.start(node.run)
    return node


async def v4_node(net: MemoryNetwork, nursery: trio.Nursery) -> DiscoveryV4:
    node = DiscoveryV4(generate_private_key(), transport=net.open(), wall_clock=wall_clock)
    await nursery.start(node.run)
    return node


async def dual_node(net: MemoryNetwork, nursery: trio.Nursery) -> tuple[DiscoveryV4, DiscoveryV5]:
    node = DiscoveryNode(generate_private_key(), transport=net.open(), wall_clock=wall_clock)
    await nursery.start(node.run)
    assert node.v5 is not None
    return node.v4, node.v5


def link_tree_v5(nodes: list[DiscoveryV5], fanout: int) -> None:
    for k, node in enumerate(nodes):
        for child in nodes[fanout * k + 1 : fanout * k + fanout + 1]:
            node.add_to_table(child.enr)


def link_tree_v4(nodes: list[DiscoveryV4], fanout: int) -> None:
    for k, node in enumerate(nodes):
        for child in nodes[fanout * k + 1 : fanout * k + fanout + 1]:
            node.table.add_verified(child.local_node)


async def crawl(
    net: MemoryNetwork, seeds: list[Node | ENR], *, v4: bool, v5: bool, **config: object
) -> tuple[list[object], Crawler]:
    send, receive = trio.open_memory_channel[object](100_000)
    async with trio.open_nursery() as nursery:
        own_v4, own_v5 = await dual_node(net, nursery)
        crawler = Crawler(
            own_v4 if v4 else None,
            TargetTable.default(),
            send,
            crawl_id=1,
            config=CrawlConfig(**config),  # type: ignore[arg-type]
            wall_clock=wall_clock,
            discovery_v5=own_v5 if v5 else None,
        )
        await crawler.run(seeds)
        nursery.cancel_scope.cancel()
    send.close()
    return await collect_records(receive), crawler


def final_protocols(records: list[object]) -> dict[bytes, set[str]]:
    seen: dict[bytes, set[str]] = {}
    for record in records:
        if isinstance(record, NodeSeen):
            seen.setdefault(record.node_id, set()).update(record.protocols)
    return seen


async def test_v5_walk_finds_a_tree_reachable_only_from_its_root(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        nodes = [await v5_node(net, nursery) for _ in range(40)]
        link_tree_v5(nodes, fanout=2)
        records, crawler = await crawl(net, [nodes[0].enr], v4=False, v5=True)
        nursery.cancel_scope.cancel()
    seen = {r.node_id: r for r in records if isinstance(r, NodeSeen)}
    assert set(seen) == {n.node_id for n in nodes}
    # Every record came back byte-identical to what the node signed.
    enrs = {r.node_id: r.enr for r in records if isinstance(r, NodeSeen) and r.enr is not None}
    assert all(enrs[n.node_id] == n.enr.to_rlp() for n in nodes)
    edges = {(e.from_id, e.to_id) for e in records if isinstance(e, EdgeSeen)}
    expected = {(nodes[k].node_id, nodes[c].node_id) for k in range(40) for c in (2 * k + 1, 2 * k + 2) if c < 40}
    # The tree's edges, plus nodes that learned their crawler-parent back from its handshake.
    assert expected <= edges
    assert all(e.protocol == "v5" for e in records if isinstance(e, EdgeSeen))
    assert all(final_protocols(records)[n.node_id] == {"v5"} for n in nodes)
    stats = crawler.statistics()
    assert stats.answered_v5 == 40 and stats.answered_v4 == 0


async def test_mixed_network_marks_each_node_with_the_protocols_it_speaks(autojump_clock: MockClock) -> None:
    """v4-only and v5-only subtrees hang off nodes that speak both; one crawl from a dual node finds all."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        only_v4 = [await v4_node(net, nursery) for _ in range(10)]
        only_v5 = [await v5_node(net, nursery) for _ in range(10)]
        duals = [await dual_node(net, nursery) for _ in range(4)]
        link_tree_v4(only_v4, fanout=2)
        link_tree_v5(only_v5, fanout=2)
        # dual 0 knows dual 1 (v4) and dual 2 (v5); dual 1 knows the v4 tree's root, dual 2 the v5 tree's,
        # dual 3 is known only through dual 2's v4 table.
        duals[0][0].table.add_verified(duals[1][0].local_node)
        duals[0][1].add_to_table(duals[2][1].enr)
        duals[1][0].table.add_verified(only_v4[0].local_node)
        duals[2][1].add_to_table(only_v5[0].enr)
        duals[2][0].table.add_verified(duals[3][0].local_node)
        root_enr = duals[0][1].enr
        records, _crawler = await crawl(net, [root_enr], v4=True, v5=True)
        nursery.cancel_scope.cancel()
    protocols = final_protocols(records)
    for node in only_v4:
        assert protocols[node.node_id] == {"v4"}
    for v5 in only_v5:
        assert protocols[v5.node_id] == {"v5"}
    for _, v5 in duals:
        assert protocols[v5.node_id] == {"v4", "v5"}
    assert len(protocols) == 24
    edge_protocols = {(e.from_id, e.to_id): e.protocol for e in records if isinstance(e, EdgeSeen)}
    assert edge_protocols[(duals[1][1].node_id, only_v4[0].node_id)] == "v4"
    assert edge_protocols[(duals[2][1].node_id, only_v5[0].node_id)] == "v5"


async def test_v4_only_crawl_leaves_v5_alone(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        only_v5 = [await v5_node(net, nursery) for _ in range(3)]
        link_tree_v5(only_v5, fanout=2)
        dual_v4, dual_v5 = await dual_node(net, nursery)
        dual_v5.add_to_table(only_v5[0].enr)
        records, crawler = await crawl(net, [dual_v5.enr], v4=True, v5=False)
        nursery.cancel_scope.cancel()
    assert final_protocols(records) == {dual_v5.node_id: {"v4"}}
    assert crawler.statistics().answered_v5 == 0


def state_for(enr: ENR | None, protocols: set[str]) -> _NodeState:
    key = generate_private_key()
    node = Node(pubkey=key.public_key.format(compressed=False)[1:], ip=None, udp=None, tcp=30303)
    state = _NodeState(node=node, source="neighbors", index=0, answered=sum(EDGE_PROTOCOL_BIT[p] for p in protocols))
    if enr is not None:
        state.keep_enr(enr)
    return state


def test_dial_filter_follows_the_record_layer() -> None:
    key = generate_private_key()
    execution = ENR.create(key, seq=1, pairs={"ip": "127.0.0.1", "tcp": 30303, "eth": [ForkId(hash=b"\x01\x02\x03\x04", next=0)]})
    consensus = ENR.create(key, seq=1, pairs={"ip": "127.0.0.1", "tcp": 9000, "eth2": bytes(16)})
    bare = ENR.create(key, seq=1, pairs={"ip": "127.0.0.1", "tcp": 30303})
    assert _looks_like_execution(state_for(None, set()))  # an enode URL or pre-EIP-868 v4 node
    assert _looks_like_execution(state_for(execution, {"v5"}))
    assert not _looks_like_execution(state_for(consensus, {"v4", "v5"}))
    assert _looks_like_execution(state_for(bare, {"v4"}))
    assert not _looks_like_execution(state_for(bare, {"v5"}))


class SlowFinder(DiscoveryV5):
    """Answers PING at once and FINDNODE only after the asker's 0.7 s timeout (but before the walk gives up on it,
    after two silent requests: 1.4 s)."""

    async def _answer(self, event: MessageReceived) -> None:
        if isinstance(event.message, FindNode):
            self._spawn(self._answer_late, event)
            return
        await super()._answer(event)

    async def _answer_late(self, event: MessageReceived) -> None:
        await trio.sleep(1.0)
        await super()._answer(event)


async def test_late_nodes_answers_still_reach_the_crawl(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        root = SlowFinder(generate_private_key(), transport=net.open())
        await nursery.start(root.run)
        children: list[DiscoveryV5] = []
        while len(children) < 4:
            # All at distance 256 from the root: the walk's first FINDNODE is the one answered late.
            child = await v5_node(net, nursery)
            if log_distance(root.node_id, child.node_id) == 256:
                children.append(child)
        for child in children:
            root.add_to_table(child.enr)
        records, crawler = await crawl(net, [root.enr], v4=False, v5=True)
        nursery.cancel_scope.cancel()
    found = {r.node_id for r in records if isinstance(r, NodeSeen)}
    assert found == {root.node_id, *(c.node_id for c in children)}
    edges = {(e.from_id, e.to_id) for e in records if isinstance(e, EdgeSeen)}
    assert {(root.node_id, c.node_id) for c in children} <= edges
    assert crawler.discovery_v5 is not None and crawler.discovery_v5.statistics().late_nodes >= 1


class LossyFinder(DiscoveryV5):
    """Loses the first FINDNODE of every set of distances (a datagram lost on the way), answers the second."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lost: set[tuple[int, ...]] = set()

    async def _answer(self, event: MessageReceived) -> None:
        message = event.message
        if isinstance(message, FindNode) and message.distances not in self.lost:
            self.lost.add(message.distances)
            return
        await super()._answer(event)


async def test_a_lost_findnode_is_asked_again_not_taken_for_an_empty_distance(autojump_clock: MockClock) -> None:
    """Silence is not an empty answer: a walk that took each lost FINDNODE for empty distances stopped after two
    and read nothing of these tables."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        nodes: list[DiscoveryV5] = []
        for _ in range(15):
            node = LossyFinder(generate_private_key(), transport=net.open())
            await nursery.start(node.run)
            nodes.append(node)
        link_tree_v5(nodes, fanout=2)
        records, crawler = await crawl(net, [nodes[0].enr], v4=False, v5=True)
        nursery.cancel_scope.cancel()
    assert {r.node_id for r in records if isinstance(r, NodeSeen)} == {n.node_id for n in nodes}
    assert crawler.statistics().answered_v5 == 15
    assert all(node.lost for node in nodes[:7])  # the parents did lose requests


async def _v5_handshakes_of_a_crawl(protocol: SessionConfig, nodes: int) -> tuple[int, int]:
    """A v5 crawl of a star of ``nodes`` (all visited at once) whose own wire layer has ``protocol``'s caches:
    (handshakes made, nodes answering v5)."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        peers = [await v5_node(net, nursery) for _ in range(nodes)]
        for peer in peers[1:]:
            peers[0].add_to_table(peer.enr)
            for other in peers[1:]:  # every peer has a table to walk, so every session is used for a while
                if other is not peer:
                    peer.add_to_table(other.enr)
        own = DiscoveryNode(
            generate_private_key(), transport=net.open(), wall_clock=wall_clock,
            v5_config=DiscoveryV5Config(protocol=protocol),
        )
        await nursery.start(own.run)
        send, receive = trio.open_memory_channel[object](100_000)
        crawler = Crawler(
            None, TargetTable.default(), send, crawl_id=1, wall_clock=wall_clock, discovery_v5=own.v5,
            config=CrawlConfig(concurrency=nodes, max_concurrency=nodes),
        )
        await crawler.run([peers[0].enr])
        nursery.cancel_scope.cancel()
    assert own.v5 is not None
    return own.v5.statistics().handshakes, crawler.statistics().answered_v5


async def test_a_session_cache_smaller_than_the_visits_at_once_makes_handshakes_again(autojump_clock: MockClock) -> None:
    """go-ethereum's 1,024 sessions against 2,048 visits at once: sessions evicted mid-walk, a handshake per
    request, refused by peers that allow one a second.  The crawl sizes its cache from its visit limit
    (``crawl.v5_protocol_config``)."""
    nodes = 24
    starved, answered_starved = await _v5_handshakes_of_a_crawl(SessionConfig(session_cache_size=4), nodes)
    sized, answered_sized = await _v5_handshakes_of_a_crawl(v5_protocol_config(nodes), nodes)
    assert answered_sized == nodes  # every peer read, one handshake each
    assert sized <= nodes + 2, sized
    # Starved: handshakes again and again (a peer allows one a second: geth's rate), and walks that failed for it.
    assert starved > sized and answered_starved < nodes, (starved, answered_starved, sized)
    assert v5_protocol_config(256).session_cache_size == SessionConfig().session_cache_size  # geth's 1,024 floor
    assert v5_protocol_config(2048).session_cache_size >= 2 * 2048


async def test_a_newer_record_without_an_address_does_not_end_the_visit(autojump_clock: MockClock) -> None:
    """A node re-signs its record without ip: we keep that record, go on asking the address that answered, and
    its v4 visit, running beside, is not cancelled."""
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        target_v4, target_v5 = await dual_node(net, nursery)
        children = [await v4_node(net, nursery) for _ in range(6)]
        for child in children:
            target_v4.table.add_verified(child.local_node)
        seed = target_v5.enr
        newer = ENR.create(target_v5.private_key, seq=2, pairs={"udp": target_v5.port})
        target_v5._require_protocol().update_local_enr(newer)
        records, _crawler = await crawl(net, [seed], v4=True, v5=True)
        nursery.cancel_scope.cancel()
    found = {r.node_id for r in records if isinstance(r, NodeSeen)}
    assert {c.node_id for c in children} <= found
    final = [r for r in records if isinstance(r, NodeSeen) and r.node_id == target_v5.node_id][-1]
    assert final.enr == newer.to_rlp() and set(final.protocols) == {"v4", "v5"}
