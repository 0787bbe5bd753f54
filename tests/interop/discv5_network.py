"""@chainsafe/discv5 11.0.0 nodes on 127.0.0.1 (js/discv5_network.mjs) for the discovery v5 interop tests.

``async with open_discv5_network(js, 20) as net:`` starts N chainsafe nodes in one Node.js process, each on
its own ephemeral UDP port with an ENR carrying ip=127.0.0.1 and that port, and returns once all of them
listen. Their tables form a tree rooted at node 0 (node k knows only nodes ``fanout*k+1 .. fanout*k+fanout``),
so only a walk from ``net.bootnode`` finds every node. A node that completes a handshake with us adds our
ENR to its table; nothing else changes while the network runs (see the script's header).

``await run_discv5_client(js, target)`` runs one chainsafe node as a *client* of ``target`` (our node): it
PINGs and sends FINDNODEs through the library's public API and reports the answers as it understood them.

The ``chainsafe_discv5`` fixture (tests/interop/conftest.py) binds ``js``:
``async with chainsafe_discv5.network(20) as net:`` and ``await chainsafe_discv5.client(enr, ...)``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from ethcrawl.wire.enr import ENR
from js_process import JsLauncher, JsProcess

__all__ = [
    "LOOPBACK",
    "ChainsafeClientResult",
    "ChainsafeDiscv5",
    "ChainsafeNode",
    "Discv5Network",
    "FindNodeAnswer",
    "open_discv5_network",
    "run_discv5_client",
]

LOOPBACK = "127.0.0.1"
SCRIPT = "discv5_network.mjs"
READY_TIMEOUT = 15.0  # s: 50 nodes start in ~0.3 s, node itself in ~0.3 s
COMMAND_TIMEOUT = 5.0  # s: a command is answered in ms
# s: the library times a request out after 1 s and retries once, so a dead peer costs ~2 s per request.
CLIENT_REQUEST_TIMEOUT = 3.0
CLIENT_START_TIMEOUT = 10.0  # s


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainsafeNode:
    """One chainsafe node as the harness printed it; ``enr_text`` is its record exactly as printed."""

    index: int
    enr_text: str
    enr: ENR
    node_id: bytes
    udp: int
    children: tuple[int, ...]

    @property
    def addr(self) -> tuple[str, int]:
        return (LOOPBACK, self.udp)


def _parse_node(event: dict[str, Any]) -> ChainsafeNode:
    enr = ENR.from_text(event["enr"])
    node_id = bytes.fromhex(event["node_id"])
    # The script states each fact twice (record and fields): a disagreement is a bug in the script.
    assert enr.node_id == node_id, event
    assert (enr.ip, enr.udp, enr.seq) == (IPv4Address(LOOPBACK), event["udp"], event["seq"]), event
    assert enr.seq >= 1, event
    return ChainsafeNode(
        index=event["index"],
        enr_text=event["enr"],
        enr=enr,
        node_id=node_id,
        udp=event["udp"],
        children=tuple(event["children"]),
    )


@dataclass(eq=False, kw_only=True)
class Discv5Network:
    """A running network: its manifest, and the one command the JS process takes."""

    process: JsProcess
    nodes: tuple[ChainsafeNode, ...]
    fanout: int

    @property
    def bootnode(self) -> ChainsafeNode:
        return self.nodes[0]

    def by_id(self) -> dict[bytes, ChainsafeNode]:
        return {node.node_id: node for node in self.nodes}

    async def tables(self) -> list[set[bytes]]:
        """Each node's routing table now (node ids), indexed like ``nodes``."""
        stdin = self.process.process.stdin
        assert stdin is not None
        await stdin.send_all(json.dumps({"cmd": "tables"}).encode() + b"\n")
        # One answer per request, in order; wait_for hands each event out once.
        event = await self.process.wait_for("tables", timeout=COMMAND_TIMEOUT)
        return [{bytes.fromhex(node_id) for node_id in item["node_ids"]} for item in event["nodes"]]


@asynccontextmanager
async def open_discv5_network(
    js: JsLauncher, n: int, *, fanout: int = 2, duration: float = 60, trace: bool = False
) -> AsyncIterator[Discv5Network]:
    """Start ``n`` chainsafe nodes and yield once all listen; they are stopped when the block ends."""
    args = ["--mode", "network", "--nodes", str(n), "--base-port", "0", "--fanout", str(fanout)]
    args += ["--duration", str(duration), "--trace", "1" if trace else "0"]
    async with js(SCRIPT, *args) as process:
        nodes: list[ChainsafeNode] = []
        while True:
            event = await process.next_event(timeout=READY_TIMEOUT)
            if event is None or event["event"] not in ("node", "ready", "enr_added", "session_established"):
                process.fail("did not report ready")
            if event["event"] == "node":
                nodes.append(_parse_node(event))
            elif event["event"] == "ready":
                break
        assert [node.index for node in nodes] == list(range(n)), "the script printed a node twice or skipped one"
        assert event["nodes"] == n and event["fanout"] == fanout, event
        yield Discv5Network(process=process, nodes=tuple(nodes), fanout=fanout)


@dataclass(frozen=True, slots=True, kw_only=True)
class FindNodeAnswer:
    """What the chainsafe client got for one FINDNODE: the records (text, as it re-encoded them) or an error."""

    distances: tuple[int, ...]
    ok: bool
    enrs: tuple[str, ...]
    message: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainsafeClientResult:
    """Everything a chainsafe client run reported."""

    enr: ENR  # the client's own record
    sessions: tuple[dict[str, Any], ...]  # session_established events (peer, direction, verified)
    pong: dict[str, Any] | None  # ok, enr_seq, ip, port  (None when not asked to ping)
    answers: tuple[FindNodeAnswer, ...]
    process: JsProcess


async def run_discv5_client(
    js: JsLauncher,
    target: ENR | str,
    *,
    requests: Sequence[Sequence[int]] = ((0,),),
    ping: bool = True,
) -> ChainsafeClientResult:
    """One chainsafe node PINGs ``target`` (unless ``ping`` is false), sends it one FINDNODE per entry of
    ``requests`` and exits; the answers as the library returned them. Our node must already be running."""
    text = target if isinstance(target, str) else target.to_text()
    budget = CLIENT_START_TIMEOUT + CLIENT_REQUEST_TIMEOUT * (len(requests) + 1)
    args = ["--mode", "client", "--target", text, "--requests", json.dumps([list(r) for r in requests])]
    args += ["--ping", "1" if ping else "0", "--duration", str(int(budget) + 1)]
    async with js(SCRIPT, *args) as process:
        started = await process.wait_for("client", timeout=CLIENT_START_TIMEOUT)
        await process.wait_for("done", timeout=budget)
        pongs = process.events_named("pong")
        answers = tuple(
            FindNodeAnswer(
                distances=tuple(event["distances"]),
                ok=event["ok"],
                enrs=tuple(event.get("enrs", ())),
                message=event.get("message"),
            )
            for event in process.events_named("nodes")
        )
        return ChainsafeClientResult(
            enr=ENR.from_text(started["enr"]),
            sessions=tuple(process.events_named("session_established")),
            pong=pongs[0] if pongs else None,
            answers=answers,
            process=process,
        )


@dataclass(frozen=True, slots=True)
class ChainsafeDiscv5:
    """The ``chainsafe_discv5`` fixture: the two entry points above with the ``js`` launcher bound."""

    js: JsLauncher

    def network(self, n: int, **options: Any) -> AbstractAsyncContextManager[Discv5Network]:
        return open_discv5_network(self.js, n, **options)

    async def client(self, target: ENR | str, **options: Any) -> ChainsafeClientResult:
        return await run_discv5_client(self.js, target, **options)
