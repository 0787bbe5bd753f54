"""A default crawl serves and walks both address families from one port.

The network mixes IPv4 nodes (127.0.0.x) and IPv6 nodes (::1) and can only be
walked across families: every IPv4 node's table lists IPv6 nodes only, and
every IPv6 node's table IPv4 nodes only.  A crawl bound to one family finds the
first node of the other and can go no further; the default crawl (``::``, one
dual-stack socket) must find and hear from every node, over v4 and v5, and
record the IPv4 nodes in IPv4 spelling.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from contextlib import asynccontextmanager
from ipaddress import ip_address
from pathlib import Path
from typing import AsyncIterator

import pytest
import trio

from ethcrawl.crawler.crawl import CrawlOptions, run_crawl
from ethcrawl.crawler.node import DiscoveryNode
from ethcrawl.db.engine import open_database
from ethcrawl.wire.crypto import generate_private_key
from ipv6 import needs_ipv6
from test_crawl import dial_in

NODES_PER_FAMILY = 4
CRAWL_DEADLINE = 30  # s for one crawl of the eight nodes (it takes a few)


@asynccontextmanager
async def mixed_network() -> AsyncIterator[list[DiscoveryNode]]:
    """IPv4 and IPv6 nodes alternating in a ring, each table listing only the next node (of the other family).

    Yields the nodes in ring order: v4, v6, v4, v6, ...
    """
    hosts = [h for i in range(NODES_PER_FAMILY) for h in (f"127.0.0.{i + 2}", "::1")]
    nodes = [DiscoveryNode(generate_private_key(), host=host) for host in hosts]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        for node, listed in zip(nodes, nodes[1:] + nodes[:1]):
            assert ip_address(node.host).version != ip_address(listed.host).version  # walkable only across families
            node.v4.table.add_verified(listed.v4.local_node)
            assert node.v5 is not None
            node.v5.add_to_table(listed.enr)
        yield nodes
        nursery.cancel_scope.cancel()


@needs_ipv6
@pytest.mark.parametrize("seed_family", [4, 6], ids=["ipv4-bootnode", "ipv6-bootnode"])
async def test_a_default_crawl_walks_a_network_that_alternates_families(tmp_path: Path, seed_family: int) -> None:
    path = tmp_path / "crawl.db"
    async with mixed_network() as nodes:
        seed = nodes[0] if seed_family == 4 else nodes[1]
        seed_ip = seed.enr.endpoint()[0]
        assert seed_ip is not None and seed_ip.version == seed_family
        db = open_database(path)
        options = CrawlOptions(seeds=(seed.enr,), dial=False)  # the default listen address
        with trio.fail_after(CRAWL_DEADLINE):
            summary = await run_crawl(db, options, handle_signals=False)
        db.close()
    assert summary.nodes == len(nodes)
    assert summary.responded == len(nodes)
    assert dict(summary.protocols) == {"v4,v5": len(nodes)}  # both protocols, on the one socket, in both families
    with sqlite3.connect(path) as conn:
        stored = {row[0] for row in conn.execute("SELECT ip FROM nodes")}
    assert stored == {f"127.0.0.{i + 2}" for i in range(NODES_PER_FAMILY)} | {"::1"}  # no ::ffff: spellings


@needs_ipv6
async def test_a_crawl_pinned_to_ipv4_stops_at_the_first_ipv6_node(tmp_path: Path) -> None:
    """What the default fixes: bound to 0.0.0.0 the walk cannot cross to IPv6 (nor, then, back)."""
    async with mixed_network() as nodes:
        db = open_database(tmp_path / "crawl.db")
        options = CrawlOptions(seeds=(nodes[0].enr,), dial=False, listen_host="0.0.0.0")
        with trio.fail_after(CRAWL_DEADLINE):
            summary = await run_crawl(db, options, handle_signals=False)
        db.close()
    assert (summary.nodes, summary.responded) == (2, 1)  # the bootnode answered; the IPv6 node it lists could not


@needs_ipv6
async def test_the_listener_on_the_unspecified_address_takes_both_families_on_one_port(tmp_path: Path) -> None:
    """--listen [::]:0: one port for IPv4 and IPv6 peers, and the IPv4 peer is recorded as IPv4, not ::ffff:."""
    path = tmp_path / "crawl.db"
    async with mixed_network() as nodes:
        db = open_database(path)
        ready: list[DiscoveryNode] = []
        options = CrawlOptions(seeds=(nodes[0].enr,), duration=5, dial=False, rlpx_listen=("::", 0), dial_timeout=1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_crawl(db, options, on_ready=ready.append, handle_signals=False))
            with trio.fail_after(CRAWL_DEADLINE):
                while not ready:
                    await trio.sleep(0.01)
                ours = ready[0].v4
                assert ours.enr is not None and ours.enr.tcp == ours.tcp_port  # the one port our record names
                for host in ("127.0.0.1", "::1"):
                    await dial_in(ours.tcp_port, ours.pubkey, host=host)
        db.close()
    with sqlite3.connect(path) as conn:
        inbound = conn.execute(
            "SELECT n.ip, d.outcome FROM dial_attempts d JOIN nodes n ON n.node_id = d.node_id WHERE d.direction = 'inbound'"
        ).fetchall()
    assert sorted(inbound) == [("127.0.0.1", "ok"), ("::1", "ok")]


async def test_without_ipv6_a_default_crawl_runs_on_ipv4_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(socket, "has_ipv6", False)  # what the dual-stack bind checks first
    async with trio.open_nursery() as nursery:
        nodes = [DiscoveryNode(generate_private_key(), host=f"127.0.0.{i + 2}") for i in range(2)]
        for node in nodes:
            await nursery.start(node.run)
        nodes[0].v4.table.add_verified(nodes[1].v4.local_node)
        db = open_database(tmp_path / "crawl.db")
        ready: list[DiscoveryNode] = []
        with caplog.at_level(logging.WARNING), trio.fail_after(CRAWL_DEADLINE):
            summary = await run_crawl(db, CrawlOptions(seeds=(nodes[0].enr,), dial=False), on_ready=ready.append, handle_signals=False)
        db.close()
        nursery.cancel_scope.cancel()
    assert ready[0].host == "0.0.0.0"
    assert (summary.nodes, summary.responded) == (2, 2)
    assert "no IPv6 here" in caplog.text
