"""A loopback network of @ethereumjs/devp2p nodes (js/dpt_network.mjs) for discovery and crawl tests.

``async with open_dpt_network(js, 20) as net:`` starts N ethereumjs nodes in one Node.js process, each with
discv4 on UDP and RLPx (eth/68) on TCP port ``base + i`` of 127.0.0.1, and returns once all of them listen.
Their tables form a tree rooted at node 0 (node k knows only nodes ``fanout*k+1 .. fanout*k+fanout``), so
only a walk from ``net.bootnode`` finds every node. The tables do not change while the network runs.

``net.nodes[i]`` says what a crawler should find: enode, node id, client id, ports, children; ``net.status``
is the eth Status every node sends. The process also takes commands: ``await net.stats()`` (per-node
counters of pings, FINDNODEs, connections and Status messages), ``await net.ping_from(i, node)`` and
``await net.find_node_from(i, node, target)`` (node i as a discv4 client of ``node``).

Dirt (see js/dpt_network.mjs): ``stale=K, stale_pool=M`` (K dead entries per table from M identities on ports
where nothing listens; ``net.stale``), ``latency_ms=(lo, hi)`` (a per-node delay on every datagram it receives),
``loss=p`` (each datagram in and out dropped with probability p), ``settle_seconds=s`` (the library's own
discovery runs that long before the network reports ready, so tables are full and no longer a tree;
``node.table`` is what each table holds then).

The ``dpt_network`` fixture (import ``dpt_network_fixture`` into a test module to use it) is the same
context manager with the ``js`` launcher already bound: ``async with dpt_network(20) as net:``.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

import pytest
from ethcrawl.wire.enode import Node, format_enode, parse_enode
from js_process import JsLauncher, JsProcess

__all__ = [
    "LOOPBACK",
    "DptNetwork",
    "NetworkNode",
    "dpt_network_fixture",
    "free_port_range",
    "open_dpt_network",
]

LOOPBACK = "127.0.0.1"
SCRIPT = "dpt_network.mjs"
# Ports below Linux's ephemeral range (32768-60999), so that no outgoing connection of another test
# takes one between our bind check and the JS process binding it.
PORT_RANGE = (20000, 32000)
PORT_ATTEMPTS = 20  # candidate base ports tried before giving up
START_ATTEMPTS = 3  # a base port can still be taken between the check and the bind: start again
READY_TIMEOUT = 15.0  # s: 50 nodes are up in ~0.1 s; node's own start takes ~0.3 s
COMMAND_TIMEOUT = 10.0  # s: a command is answered in ms, a findnode after its wait_ms
DEFAULT_FINDNODE_WAIT = (
    0.8  # s: NEIGHBORS arrive within ms on loopback; leave room for a second packet
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkNode:
    """One ethereumjs node of the network, as the ready manifest describes it."""

    index: int
    enode: str
    node: Node
    client_id: str
    children: tuple[int, ...]
    table: tuple[bytes, ...] = ()  # public keys in its table when the network reported ready
    delay_ms: int = 0  # its delay on every datagram it receives

    @property
    def node_id(self) -> bytes:
        return self.node.node_id

    @property
    def pubkey(self) -> bytes:
        return self.node.pubkey


def _parse_manifest_node(item: dict[str, Any]) -> NetworkNode:
    node = parse_enode(item["enode"])
    # The manifest states each fact twice (enode and fields): a disagreement is a bug in the script.
    assert node.node_id.hex() == item["node_id"], item
    assert node.pubkey.hex() == item["pubkey"], item
    assert (node.udp, node.tcp, node.ip) == (item["udp"], item["tcp"], IPv4Address(LOOPBACK)), item
    return NetworkNode(
        index=item["index"],
        enode=item["enode"],
        node=node,
        client_id=item["client_id"],
        children=tuple(item["children"]),
        table=tuple(bytes.fromhex(pubkey) for pubkey in item.get("table", ())),
        delay_ms=item.get("delay_ms", 0),
    )


@dataclass(eq=False, kw_only=True)
class DptNetwork:
    """A running network: its manifest, and commands to the JS process."""

    process: JsProcess
    nodes: tuple[NetworkNode, ...]
    status: dict[str, Any]
    fanout: int
    base_port: int
    stale: tuple[Node, ...] = ()  # the stale pool: identities nothing answers for

    @property
    def bootnode(self) -> NetworkNode:
        return self.nodes[0]

    def by_id(self) -> dict[bytes, NetworkNode]:
        return {node.node_id: node for node in self.nodes}

    async def command(self, cmd: dict[str, Any]) -> None:
        stdin = self.process.process.stdin
        assert stdin is not None
        await stdin.send_all(json.dumps(cmd).encode() + b"\n")

    async def stats(self) -> list[dict[str, Any]]:
        """Per-node counters, indexed like ``nodes`` (see js/dpt_network.mjs for the fields)."""
        await self.command({"cmd": "stats"})
        # One answer per request, in order; wait_for hands each event out once.
        event = await self.process.wait_for("stats", timeout=COMMAND_TIMEOUT)
        nodes: list[dict[str, Any]] = event["nodes"]
        return nodes

    async def ping_from(self, index: int, node: Node) -> dict[str, Any]:
        """Node ``index`` pings ``node`` (its table stays as is); the event says whether a Pong came
        (``ok``) and from whom (``from``: the 64-byte public key in hex, as ethereumjs names peers)."""
        enode = format_enode(node)
        await self.command({"cmd": "ping", "node": index, "enode": enode})
        # The library's own ping timeout is 4 s.
        return await self.process.wait_for("pong", timeout=COMMAND_TIMEOUT, node=index, to=enode)

    async def find_node_from(
        self, index: int, node: Node, target: bytes, *, wait: float = DEFAULT_FINDNODE_WAIT
    ) -> dict[str, Any]:
        """Node ``index`` sends FINDNODE(target) to ``node``; every NEIGHBORS it got back within ``wait``."""
        if len(target) != 64:
            raise ValueError("a discv4 FINDNODE target is a 64-byte public key")
        await self.command(
            {
                "cmd": "findnode",
                "node": index,
                "enode": format_enode(node),
                "target": target.hex(),
                "wait_ms": int(wait * 1000),
            }
        )
        return await self.process.wait_for(
            "neighbours", timeout=wait + COMMAND_TIMEOUT, node=index, **{"from": node.pubkey.hex()}
        )


def _ports_free(base: int, count: int) -> bool:
    for port in range(base, base + count):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as probe:
                try:
                    probe.bind((LOOPBACK, port))
                except OSError:
                    return False
    return True


def free_port_range(count: int, rng: random.Random | None = None) -> int:
    """A base port P with P..P+count-1 free for both TCP and UDP on 127.0.0.1 (checked, not reserved)."""
    rng = rng or random.Random()
    low, high = PORT_RANGE
    for _ in range(PORT_ATTEMPTS):
        base = rng.randrange(low, high - count)
        if _ports_free(base, count):
            return base
    pytest.fail(
        f"no {count} consecutive free TCP+UDP ports on {LOOPBACK} in {PORT_RANGE}", pytrace=False
    )


@asynccontextmanager
async def open_dpt_network(
    js: JsLauncher,
    n: int,
    *,
    fanout: int = 4,
    max_seconds: float = 60,
    seed: str | None = None,
    ping_back: bool = True,
    trace: bool = False,
    network: str = "mainnet",
    stale: int = 0,
    stale_pool: int = 0,
    latency_ms: tuple[int, int] = (0, 0),
    loss: float = 0.0,
    settle_seconds: float = 0.0,
) -> AsyncIterator[DptNetwork]:
    """Start ``n`` ethereumjs nodes and yield once all listen; they are stopped when the block ends."""
    for attempt in range(START_ATTEMPTS):
        base = free_port_range(n + stale_pool)  # the stale pool's ports must stay silent too
        args = ["--nodes", str(n), "--base-port", str(base), "--fanout", str(fanout)]
        args += ["--max-seconds", str(max_seconds), "--network", network]
        args += ["--ping-back", "1" if ping_back else "0", "--trace", "1" if trace else "0"]
        args += ["--stale", str(stale), "--stale-pool", str(stale_pool), "--loss", str(loss)]
        args += ["--latency-ms", f"{latency_ms[0]}-{latency_ms[1]}", "--settle-seconds", str(settle_seconds)]
        if seed is not None:
            args += ["--seed", seed]
        async with js(SCRIPT, *args) as process:
            event = await process.next_event(timeout=READY_TIMEOUT + settle_seconds)
            if event is not None and event["event"] == "ready":
                nodes = tuple(_parse_manifest_node(item) for item in event["nodes"])
                assert [node.index for node in nodes] == list(range(n))
                yield DptNetwork(
                    process=process,
                    nodes=nodes,
                    status=event["status"],
                    fanout=event["fanout"],
                    base_port=base,
                    stale=tuple(
                        Node(
                            pubkey=bytes.fromhex(item["pubkey"]),
                            ip=IPv4Address(LOOPBACK),
                            udp=item["udp"],
                            tcp=item["udp"],
                        )
                        for item in event.get("stale", ())
                    ),
                )
                return
            taken = event is not None and "could not listen" in str(event.get("message"))
            if not taken or attempt == START_ATTEMPTS - 1:
                process.fail(f"did not report ready (attempt {attempt + 1}, base port {base})")


DptNetworkLauncher = Callable[..., AbstractAsyncContextManager[DptNetwork]]


@pytest.fixture(name="dpt_network")
def dpt_network_fixture(js: JsLauncher) -> DptNetworkLauncher:
    """``async with dpt_network(20, fanout=4) as net:`` (see :func:`open_dpt_network`)."""

    def launch(n: int, **options: Any) -> AbstractAsyncContextManager[DptNetwork]:
        return open_dpt_network(js, n, **options)

    return launch
