"""Learning our endpoint from peers' PONGs, and the record that follows (in memory, MockClock)."""

from __future__ import annotations

import trio
from memnet import MemoryNetwork
from trio.testing import MockClock

from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.discovery_v5 import DiscoveryV5
from ethcrawl.crawler.endpoint import MIN_STATEMENTS, EndpointPredictor
from ethcrawl.crawler.node import DiscoveryNode
from ethcrawl.wire.crypto import generate_private_key

SEEN_AS = ("198.51.100.20", 40400)  # in-memory only: where the peers see our node


def test_prediction_needs_enough_distinct_recent_voters() -> None:
    predictor = EndpointPredictor(min_statements=3, window=10.0)
    for _ in range(5):
        predictor.add("192.0.2.1", SEEN_AS, now=0.0)  # one voter, however often
    assert predictor.predict(1.0) is None
    predictor.add("192.0.2.2", SEEN_AS, now=1.0)
    predictor.add("192.0.2.3", ("192.0.2.99", 1), now=1.0)  # a dissenter
    assert predictor.predict(1.0) is None
    predictor.add("192.0.2.4", SEEN_AS, now=2.0)
    assert predictor.predict(2.0) == SEEN_AS
    assert predictor.predict(10.5) is None  # the first statement has expired


def test_nonsense_statements_are_ignored() -> None:
    predictor = EndpointPredictor(min_statements=1)
    for endpoint in (("0.0.0.0", 30303), ("224.0.0.1", 30303), ("not an ip", 30303), ("192.0.2.5", 0)):
        predictor.add("192.0.2.1", endpoint, now=0.0)
    assert predictor.predict(0.0) is None


async def test_a_node_on_an_unspecified_address_learns_its_endpoint(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        learner = DiscoveryNode(generate_private_key(), host="0.0.0.0", transport=net.open(*SEEN_AS))
        await nursery.start(learner.run)
        assert learner.learn_endpoint and learner.enr.ip is None and learner.enr.seq == 1
        assert learner.v5 is not None
        peers = []
        for i in range(MIN_STATEMENTS):
            host = f"127.0.0.{i + 2}"  # one vote per peer address
            peer = DiscoveryV5(generate_private_key(), host=host, transport=net.open(host, 30303))
            await nursery.start(peer.run)
            peers.append(peer)
        for i, peer in enumerate(peers):
            assert await learner.v5.ping(peer.enr) is not None
            assert learner.advertised.get(4) == (SEEN_AS if i == MIN_STATEMENTS - 1 else None)
        record = learner.enr
        assert (str(record.ip), record.udp, record.seq) == (*SEEN_AS, 2)
        assert learner.v4.enr == record  # both protocols serve the same new record
        # A newcomer asking for our record over v5 gets the new one.
        newcomer = DiscoveryV5(generate_private_key(), host="127.0.0.99", transport=net.open("127.0.0.99", 30303))
        await nursery.start(newcomer.run)
        assert await newcomer.find_node(record, (0,)) == [record]
        nursery.cancel_scope.cancel()


async def test_a_node_with_a_real_listen_address_keeps_it(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        node = DiscoveryNode(generate_private_key(), host="127.0.0.1", transport=net.open())
        await nursery.start(node.run)
        assert not node.learn_endpoint and str(node.enr.ip) == "127.0.0.1"
        nursery.cancel_scope.cancel()


async def test_v4_pongs_count_too_and_our_pings_then_name_the_learned_endpoint(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        learner = DiscoveryNode(generate_private_key(), host="0.0.0.0", transport=net.open(*SEEN_AS))
        await nursery.start(learner.run)
        peers = []
        for i in range(MIN_STATEMENTS):
            host = f"127.0.1.{i + 2}"
            peer = DiscoveryV4(generate_private_key(), host=host, transport=net.open(host, 30303))
            await nursery.start(peer.run)
            peers.append(peer)
        for peer in peers:
            assert await learner.v4.ping(peer.local_node) is not None
        assert learner.advertised == {4: SEEN_AS} and learner.v4.enr is not None and learner.v4.enr.seq == 2
        # ethereumjs pings back the `from` of our Ping: it now names where we are reachable.
        ping = learner.v4._ping_packet(("127.0.1.2", 30303))
        assert (str(ping.from_.ip), ping.from_.udp, ping.enr_seq) == (*SEEN_AS, 2)
        nursery.cancel_scope.cancel()


SEEN_AS_6 = ("2001:db8::20", 40400)  # in-memory only: where IPv6 peers see the same (dual-stack) node


def test_each_family_is_predicted_from_its_own_statements() -> None:
    predictor = EndpointPredictor(min_statements=2)
    predictor.add("192.0.2.1", SEEN_AS, now=0.0)
    predictor.add("192.0.2.2", ("::ffff:" + SEEN_AS[0], SEEN_AS[1]), now=0.0)  # a dual-stack peer's spelling is IPv4
    predictor.add("2001:db8::1", SEEN_AS_6, now=0.0)
    assert predictor.predict(0.0) == predictor.predict(0.0, 4) == SEEN_AS
    assert predictor.predict(0.0, 6) is None  # one IPv6 voter is not enough; IPv4 votes do not count for it
    predictor.add("2001:db8::2", SEEN_AS_6, now=0.0)
    assert predictor.predict(0.0, 6) == SEEN_AS_6 and predictor.predict(0.0, 4) == SEEN_AS


async def test_a_dual_stack_node_learns_both_endpoints_and_pings_from_the_right_one(autojump_clock: MockClock) -> None:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        learner = DiscoveryNode(generate_private_key(), host="::", transport=net.open_dual(SEEN_AS, SEEN_AS_6))
        await nursery.start(learner.run)
        assert learner.learn_endpoint
        record = learner.enr
        assert (record.ip, record.ip6, record.udp, record.udp6) == (None, None, SEEN_AS[1], None)  # ports only, both families
        peers = []
        for i in range(MIN_STATEMENTS):
            for host in (f"127.0.2.{i + 2}", f"2001:db8::{i + 2}"):
                peer = DiscoveryV4(generate_private_key(), host=host, transport=net.open(host, 30303))
                await nursery.start(peer.run)
                peers.append(peer)
        for peer in peers:
            assert await learner.v4.ping(peer.local_node) is not None
        assert learner.advertised == {4: SEEN_AS, 6: SEEN_AS_6}
        record = learner.enr
        assert (str(record.ip), str(record.ip6), record.udp, record.udp6) == (SEEN_AS[0], SEEN_AS_6[0], SEEN_AS[1], None)  # geth: no udp6, same port
        assert record.seq > 1 and learner.v5 is not None and learner.v5.enr == record
        # Our Ping's `from` names us in the family of the peer it goes to.
        for to, seen in ((("127.0.2.2", 30303), SEEN_AS), (("2001:db8::2", 30303), SEEN_AS_6)):
            ping = learner.v4._ping_packet(to)
            assert (str(ping.from_.ip), ping.from_.udp) == seen
        nursery.cancel_scope.cancel()
