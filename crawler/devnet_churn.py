"""A devnet that changes on a script between a monitor's cycles, and what each cycle must then have stored.

Nodes leave (their sockets close; others' tables keep them, as real tables do), join (known to nobody until
then), come back at a new port, move to a new address, publish a new record (seq + 1, a new RLPx port),
upgrade their client (a new Hello client id) and switch the ``next`` of their EIP-2124 fork id (what their
Status says).  A :class:`ChurnScript` says which, after which cycle; :func:`expectations` says, from the script
and the devnet's plan alone (no sockets), what each cycle must find: which nodes answered, their client ids,
record seqs and fork ``next``.  :class:`ChurnDevnet` carries the script out on a running devnet, one step per
finished cycle (``after_cycle``, e.g. the monitor's ``on_cycle``), so a test's timing never decides what a
cycle sees.

The network is small and fully meshed (every live node in every live node's tables), so a walk from the bootnode
finds every node that is up, whoever left.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import trio

from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.forkid import ForkId, fork_id

from .devnet import Devnet, DevnetNode, DevnetPlan, open_devnet, plan_devnet, DevnetConfig
from .devnet_chain import ChainHead, chain_head
from .discovery import make_local_enr

__all__ = [
    "CHURN_CYCLE_KINDS",
    "Change",
    "ChurnScript",
    "CycleExpectation",
    "ChurnDevnet",
    "default_fork_next",
    "default_script",
    "expectations",
    "node_ids",
    "open_churn_devnet",
]

# What a monitor with --cycles 3 runs when one revalidation pass falls between two walks.
CHURN_CYCLE_KINDS = ("crawl", "revalidation", "crawl", "revalidation", "crawl")
CHANGES = ("leave", "join", "return", "move", "enr", "upgrade", "fork-next")
FIRST_SEQ = 1  # a devnet node's record starts at seq 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change to node ``node``: CHANGES; ``value`` is the new client id (upgrade), the new host (move) or
    the new fork ``next`` (fork-next)."""

    node: int
    what: str
    value: str | int | None = None

    def __post_init__(self) -> None:
        if self.what not in CHANGES:
            raise ValueError(f"unknown change {self.what!r}")
        if self.node == 0:
            raise ValueError("the bootnode stays as it is: it is every walk's seed")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChurnScript:
    nodes: int
    seed: int
    hidden: frozenset[int]  # up, but known to nobody until a "join"
    steps: tuple[tuple[Change, ...], ...]  # steps[k]: applied after cycle k
    kinds: tuple[str, ...]  # the kind of each cycle, as the monitor is set up to run them
    network: str = "mainnet"

    @property
    def config(self) -> DevnetConfig:
        # awkward=False: every node a plain execution node, so what changes is only what the script changes.
        return DevnetConfig(nodes=self.nodes, seed=self.seed, network=self.network, awkward=False)


NEW_NEXT = 2_000_000_000  # a fork time (2033) the chain's schedule does not have: "ready for a fork" announced


def default_script(seed: int = 7) -> ChurnScript:
    """Ten nodes over five cycles (crawl, revalidation, crawl, revalidation, crawl), every kind of change.

    Node 7 moves and then upgrades: one node whose story holds a new address, a new record and a new client.
    """
    geth_new = "Geth/v1.16.3-stable-d818a9af/linux-amd64/go1.24.6"
    # Newer than every version a devnet plan hands out (devnet_clients), so each upgrade is one.
    nethermind_new = "Nethermind/v1.32.2+5b1c7e2a/linux-x64/dotnet9.0.5"
    erigon_new = "erigon/v3.1.0-1e8c0f2d/linux-arm64/go1.24.4"
    return ChurnScript(
        nodes=10,
        seed=seed,
        hidden=frozenset({8, 9}),
        kinds=CHURN_CYCLE_KINDS,
        steps=(
            (Change(node=3, what="upgrade", value=geth_new), Change(node=4, what="fork-next", value=NEW_NEXT),
             Change(node=5, what="leave")),
            (Change(node=9, what="join"), Change(node=6, what="enr"), Change(node=7, what="move", value="127.0.0.2")),
            (Change(node=6, what="upgrade", value=nethermind_new), Change(node=2, what="leave"),
             Change(node=4, what="fork-next", value=0), Change(node=7, what="upgrade", value=erigon_new)),
            (Change(node=8, what="join"), Change(node=5, what="return")),
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleExpectation:
    """What cycle ``index`` must have stored, by node id: each answered node's client id (its dial got a Hello
    and Status), record seq and fork ``next``; for a revalidation pass also which nodes it checked."""

    index: int
    kind: str
    answered: frozenset[bytes]
    checked: frozenset[bytes] | None  # a pass's due nodes (None for a walk: whatever it finds)
    client_ids: Mapping[bytes, str]
    enr_seqs: Mapping[bytes, int]
    fork_next: Mapping[bytes, int]


@dataclass(slots=True)
class _State:
    up: bool
    known: bool  # in the others' tables
    client_id: str
    seq: int
    fork_next: int
    answered_last: bool = False  # its last check answered (due in the next pass)
    checked: bool = False  # ever checked
    at_stored: bool = True  # still at the address its last check found it at (a pass pings that one)


def default_fork_next(network: str, now: float | None = None) -> int:
    """The ``next`` a devnet node of ``network`` announces unless the script switches it."""
    return chain_head(network, time.time() if now is None else now).fork_id.next


def expectations(script: ChurnScript, plan: DevnetPlan | None = None) -> list[CycleExpectation]:
    """Per cycle, what a monitor of the churning devnet must store (pure: from the script and the plan)."""
    plan = plan if plan is not None else plan_devnet(script.config)
    base_next = default_fork_next(script.network)
    states = [
        _State(up=True, known=i not in script.hidden, client_id=spec.client_id, seq=FIRST_SEQ, fork_next=base_next)
        for i, spec in enumerate(plan.nodes)
    ]
    ids = [spec.node_id for spec in plan.nodes]
    out = []
    for index, kind in enumerate(script.kinds):
        if kind == "crawl":
            checked = [i for i, s in enumerate(states) if s.known]
        else:
            checked = [i for i, s in enumerate(states) if s.checked and s.answered_last]
        answered = [i for i in checked if states[i].up and (kind == "crawl" or states[i].at_stored)]
        for i in checked:
            states[i].checked = True
            states[i].answered_last = i in answered
            states[i].at_stored = states[i].at_stored or kind == "crawl"  # a walk learns where it is now
        out.append(
            CycleExpectation(
                index=index, kind=kind, answered=frozenset(ids[i] for i in answered),
                checked=None if kind == "crawl" else frozenset(ids[i] for i in checked),
                client_ids={ids[i]: states[i].client_id for i in answered},
                enr_seqs={ids[i]: states[i].seq for i in answered},
                fork_next={ids[i]: states[i].fork_next for i in answered},
            )
        )
        if index < len(script.steps):
            for change in script.steps[index]:
                _expect(states[change.node], change, base_next)
    return out


def _expect(state: _State, change: Change, base_next: int) -> None:
    if change.what == "leave":
        state.up = False
    elif change.what == "join":
        state.known = True
    elif change.what in ("return", "move"):
        # Back (or elsewhere) with a new port and a new record: a pass still pings the address it was last
        # found at and fails; a walk learns the new one from the tables.
        state.up, state.seq, state.at_stored = True, state.seq + 1, False
    elif change.what == "enr":
        state.seq += 1
    elif change.what == "upgrade":
        assert isinstance(change.value, str)
        state.client_id = change.value
    else:
        assert isinstance(change.value, int)
        state.fork_next = change.value


@dataclass(frozen=True, slots=True)
class AnnouncedHead(ChainHead):
    """A chain head whose fork id announces ``next_fork`` as its ``next`` (EIP-2124), whatever the schedule says."""

    next_fork: int = 0

    @property
    def fork_id(self) -> ForkId:
        current = fork_id(self.chain, self.header.number, self.header.timestamp)
        return ForkId(hash=current.hash, next=self.next_fork)


@dataclass(eq=False)
class ChurnDevnet:
    """A running devnet changing by ``script``: ``await churn.after_cycle(k)`` applies step ``k``."""

    script: ChurnScript
    net: Devnet
    nursery: trio.Nursery  # where restarted nodes run: they outlive the step that starts them
    head: ChainHead
    applied: list[int] = field(default_factory=list)

    def _running(self) -> list[DevnetNode]:
        hidden = {i for i in self.script.hidden if i not in self._joined}
        return [n for n in self.net.nodes if not n.left and n.spec.index not in hidden]

    @property
    def _joined(self) -> set[int]:
        return {c.node for k in self.applied for c in self.script.steps[k] if c.what == "join"}

    def _mesh(self, node: DevnetNode) -> None:
        """``node`` into every running node's tables and they into its (their current endpoints and records)."""
        for other in self._running():
            if other is not node:
                self.net.introduce(other, node.spec.index)
                self.net.introduce(node, other.spec.index)

    async def after_cycle(self, index: int) -> None:
        """Apply the script's step after cycle ``index`` (nothing past the last step)."""
        if index >= len(self.script.steps):
            return
        self.applied.append(index)
        for change in self.script.steps[index]:
            await self._apply(change)

    async def _apply(self, change: Change) -> None:
        node = self.net.nodes[change.node]
        if change.what == "leave":
            node.leave()
        elif change.what == "join":
            self._mesh(node)
        elif change.what in ("return", "move"):
            host = change.value if isinstance(change.value, str) else node.spec.host
            await self._restart(node, host)
        elif change.what == "enr":
            await node.move_rlpx()
            self._mesh(node)
        elif change.what == "upgrade":
            assert isinstance(change.value, str)
            node.spec = replace(node.spec, client_id=change.value)
        else:
            assert isinstance(change.value, int)
            node.announce(AnnouncedHead(self.head.chain, self.head.header, self.head.td, change.value))

    async def _restart(self, old: DevnetNode, host: str) -> None:
        """The node up again on ``host`` at a port of its own, its record one seq on."""
        seq = old.enr.seq
        old.leave()
        spec = replace(old.spec, host=host, port=0)
        new = DevnetNode(spec, {self.script.network: self.head})
        await self.nursery.start(new.run)
        enr = make_local_enr(
            PrivateKey(spec.private_key), host, new.port, new.port, seq=seq + 1, extra={"eth": [self.head.fork_id]}
        )
        for side in (new.discovery, new.discovery_v5):
            if side is not None:
                side.set_local_enr(enr)
        self.net.nodes[spec.index] = new
        self._mesh(new)


@asynccontextmanager
async def open_churn_devnet(script: ChurnScript) -> AsyncIterator[ChurnDevnet]:
    """The script's devnet, fully meshed, its hidden nodes in nobody's tables; stops when the block ends."""
    async with open_devnet(**_config_kwargs(script)) as net, trio.open_nursery() as nursery:
        head = chain_head(script.network, time.time())
        churn = ChurnDevnet(script=script, net=net, nursery=nursery, head=head)
        running = churn._running()
        for node in running:
            churn._mesh(node)
        for i in script.hidden:
            for holder in net.nodes:  # hidden ones too: one that joins must not bring another along
                for side in (holder.discovery, holder.discovery_v5):
                    if side is not None:
                        side.table.remove(net.nodes[i].spec.node_id)
        try:
            yield churn
        finally:
            nursery.cancel_scope.cancel()


def _config_kwargs(script: ChurnScript) -> dict[str, object]:
    config = script.config
    return {"nodes": config.nodes, "seed": config.seed, "network": config.network, "awkward": config.awkward}


def node_ids(script: ChurnScript) -> Sequence[bytes]:
    """The script's nodes' ids, by index."""
    return [spec.node_id for spec in plan_devnet(script.config).nodes]
