"""The sybil bound: address limits (pure) and the engine's per-source budget of unconfirmed new nodes."""

from __future__ import annotations

from ipaddress import ip_address

import trio

from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.engine import CrawlConfig, Crawler
from ethcrawl.crawler.sybil import IDS_PER_ENDPOINT, NODES_PER_IP, AddressBound, AddressLimits
from ethcrawl.crawler.targets import TargetTable
from ethcrawl.wire.crypto import generate_private_key, pubkey_from_private
from ethcrawl.wire.enode import Node


def test_one_endpoint_is_one_node_everywhere_loopback_included() -> None:
    bound = AddressBound()
    for ip in ("127.0.0.1", "10.1.2.3", "8.8.8.8", "2001:db8::1"):
        verdicts = [bound.admit(ip_address(ip), 30303) for _ in range(IDS_PER_ENDPOINT + 2)]
        assert verdicts == [None] * IDS_PER_ENDPOINT + ["endpoint", "endpoint"], ip
    # Another port of the same address is another socket.
    assert bound.admit(ip_address("127.0.0.1"), 30304) is None


def test_a_mapped_address_counts_as_the_ipv4_address_it_wraps() -> None:
    bound = AddressBound(AddressLimits(nodes_per_ip=2))
    spellings = ("8.8.8.8", "::ffff:8.8.8.8", "8.8.8.8")
    assert [bound.admit(ip_address(ip), port) for port, ip in enumerate(spellings, 40000)] == [None, None, "ip"]
    assert [bound.admit(ip_address(ip), 30303) for ip in ("127.0.0.1", "::ffff:127.0.0.1", "127.0.0.1", "::ffff:127.0.0.1")] == [
        None, None, None, "endpoint"
    ]


def test_ip_and_subnet_limits_spare_lan_and_loopback() -> None:
    bound = AddressBound(AddressLimits(nodes_per_ip=2, nodes_per_subnet=3))
    public = ip_address("203.0.113.7")
    assert [bound.admit(public, port) for port in (1, 2, 3)] == [None, None, "ip"]
    assert bound.admit(ip_address("203.0.113.8"), 1) is None
    assert bound.admit(ip_address("203.0.113.9"), 1) == "subnet"  # the /24 holds 3 already
    assert bound.admit(ip_address("203.0.114.9"), 1) is None  # another /24
    # geth exempts LAN and loopback addresses from its IP limits: a devnet lives on one address.
    for lan in ("127.0.0.1", "192.168.1.1", "10.0.0.1", "fe80::1"):
        assert all(bound.admit(ip_address(lan), port) is None for port in range(100, 120)), lan
    # IPv6 subnets are /48s; the family is part of the key.
    v6 = AddressBound(AddressLimits(nodes_per_ip=NODES_PER_IP, nodes_per_subnet=2))
    assert [v6.admit(ip_address(f"2001:db8:1:{n}::1"), 1) for n in range(3)] == [None, None, "subnet"]
    assert v6.admit(ip_address("2001:db8:2::1"), 1) is None


def _node(ip: str, port: int) -> Node:
    return Node(pubkey=pubkey_from_private(generate_private_key()), ip=ip_address(ip), udp=port, tcp=None)


async def test_a_source_gets_a_budget_of_unconfirmed_news_that_confirmation_refills() -> None:
    send, receive = trio.open_memory_channel[object](1000)
    crawler = Crawler(
        DiscoveryV4(generate_private_key()), TargetTable.default(), send, crawl_id=1,
        config=CrawlConfig(unconfirmed_per_source=2),
    )
    liar = await crawler._learn(_node("127.0.0.1", 1100), source="bootnode")
    honest = await crawler._learn(_node("127.0.0.1", 1101), source="bootnode")
    first, second, third = (_node("127.0.0.1", port) for port in (2001, 2002, 2003))
    for node in (first, second):
        assert crawler._take_relayed([], liar, node, source="neighbors", protocol="v4") == 1
    assert crawler._take_relayed([], liar, third, source="neighbors", protocol="v4") == 0
    assert dict(crawler.statistics().dropped_by_rule)["source"] == 1
    # Another peer returning one of them confirms it: the liar's budget has room again.
    assert crawler._take_relayed([], honest, first, source="neighbors", protocol="v4") == 1
    assert crawler._take_relayed([], liar, third, source="neighbors", protocol="v4") == 1
    # Returning a node again (its own, or a confirmed one) is no news and costs nothing.
    assert crawler._take_relayed([], liar, first, source="neighbors", protocol="v4") == 0
    stats = crawler.statistics()
    assert stats.discovered == 5 and stats.dropped == 1 and stats.edges == 4
