"""A loopback network of virtual devp2p nodes in one process: ``ethcrawl devnet``.

Each node is a real discovery v4 and v5 endpoint (our :class:`DiscoveryV4`
and :class:`DiscoveryV5` sharing its one UDP socket, as go-ethereum does; its
ENR carries the ``eth`` fork id of its chain) plus, unless it is meant to be
unreachable, an RLPx listener on the same port number that answers Hello, eth
Status and the head header the way execution clients do.  Pre-EIP-868 nodes
(``Kind.NO_ENR``) speak v4 only, as such old clients do; consensus-layer nodes
(``Kind.CONSENSUS``, beacon nodes) speak v5 only, publish ``eth2`` (the
network's current fork digest), ``attnets`` and ``syncnets``, and advertise a
libp2p TCP port where nothing speaks RLPx.  All nodes share one trio event loop, so thousands
fit in one process on one core; nodes spread over 127.0.0.1, 127.0.0.2, ...
(``NODES_PER_ADDRESS`` each) so ports do not run out.

Everything about the network comes from ``--seed``: keys, client ids, which
nodes are awkward, and the routing tables (``devnet_tables``: Kademlia-shaped,
so no node knows everyone and only a walk finds the whole network; the plan
adds links, if needed, until every node is reachable from the bootnode).

``DevnetConfig.dirt`` (``devnet_profile``; ``--profile mainnet``) makes the
network as dirty as the real one: dead records in the tables (stale, old keys,
NAT'd, sybils; no sockets), per-node latency and loss (``lossy``), and nodes
that join, leave and change their records while it runs (``devnet_dirt``).
The default, ``ideal``, plans exactly what the devnet always planned.

The split: :func:`plan_devnet` is pure (config in, :class:`DevnetPlan` out,
no sockets); :func:`run_devnet` binds and serves it; :func:`open_devnet` wraps
that for tests and benchmarks.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from ipaddress import ip_address, ip_network
from typing import Any

import trio
from ethcrawl.wire.chains import CHAINS
from ethcrawl.wire.classify import CONSENSUS_NETWORKS, fork_digests
from ethcrawl.wire.crypto import PrivateKey, node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.enode import Node, format_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError
from ethcrawl.wire.p2p import Capability, Hello
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import PeerSession

from .devnet_chain import ChainHead, chain_head, converse
from .devnet_clients import NIMBUS, choose_client
from .devnet_dirt import DeadEntry, dead_entries, dead_manifest_entry, dirt_summary, run_schedule
from .devnet_profile import (
    IDEAL,
    DeadRecord,
    DirtConfig,
    NodeEvents,
    Role,
    derive_key,
    plan_dead_records,
    plan_events,
)
from .devnet_tables import add_holders, connect_all, plan_tables, reachable, served
from .open_files import TooFewOpenFiles, fit_open_files
from .discovery import DiscoveryConfig, DiscoveryV4, make_local_enr
from .discovery_v5 import DiscoveryV5, DiscoveryV5Config
from .node import DiscoveryNode
from .lossy import DelayLine, LinkProfile, LossyTransport
from .session_stream import SessionStream
from .udp import DatagramTransport, UDPSocket, open_udp_socket

__all__ = [
    "EXPECTED_OUTCOME",
    "Devnet",
    "DevnetConfig",
    "DevnetNode",
    "DevnetPlan",
    "Kind",
    "NodeSpec",
    "open_devnet",
    "plan_devnet",
    "run_devnet",
]

log = logging.getLogger(__name__)

NODES_PER_ADDRESS = 1000  # nodes per loopback address: 2 sockets each stay far below the port range
SLOW_REPLY_DELAY = 0.2  # s, slow responders: late but inside geth's 0.5 s respTimeout
SESSION_TIMEOUT = 15.0  # s, longest one RLPx session with a devnet node may last
LISTEN_BACKLOG = 128  # pending TCP connections per node
BIND_ATTEMPTS = 20  # OS-chosen ports: retries when the UDP twin of a TCP port is taken
FDS_PER_NODE = 2  # UDP socket + TCP listener
KEY_DOMAIN = b"ethcrawl-devnet-key"
# With dead records (127.1.x.x and up, devnet_profile), live nodes must stay below them.
LIVE_ADDRESSES_DIRTY = "127.0.0.0/16"
# Among mostly dead records a live node may sit in one live table only; real ones sit in their
# neighbours' tables.  Each live node is put in at least this many live tables.
DIRTY_HOLDERS = 3


class Kind(str, enum.Enum):
    """How a node behaves; everything but NORMAL is one of the awkward kinds real crawls meet."""

    NORMAL = "normal"
    NO_LISTENER = "no-listener"  # discovery only: nothing listens on its TCP port
    TOO_MANY_PEERS = "too-many-peers"  # Disconnect(too many peers) right after Hello
    NO_ENR = "no-enr"  # pre-EIP-868 discovery, as nimbus-eth1: no ENR seq, ENRRequest ignored
    NOT_ETH = "not-eth"  # Hello without eth (les, bzz...)
    OTHER_NETWORK = "other-network"  # a proper Status, of another chain
    SLOW = "slow"  # every discovery answer and the Status come late
    CONSENSUS = "consensus"  # a beacon node: discv5 only, eth2/attnets/syncnets, no RLPx


#: Share of each awkward kind (the rest are NORMAL); a network of at least
#: ``2 * len(Kind)`` nodes has at least one of each.
AWKWARD_SHARES: dict[Kind, float] = {
    Kind.NO_LISTENER: 0.08,
    Kind.TOO_MANY_PEERS: 0.10,
    Kind.NO_ENR: 0.03,
    Kind.NOT_ETH: 0.03,
    Kind.OTHER_NETWORK: 0.04,
    Kind.SLOW: 0.05,
    Kind.CONSENSUS: 0.10,
}

#: What a crawler's RLPx dial of each kind should conclude (``dialer.Outcome`` values).
EXPECTED_OUTCOME: dict[Kind, str] = {
    Kind.NORMAL: "ok",
    Kind.NO_LISTENER: "refused",
    Kind.TOO_MANY_PEERS: "too-many-peers",
    Kind.NO_ENR: "ok",
    Kind.NOT_ETH: "not-eth",
    Kind.OTHER_NETWORK: "ok",
    Kind.SLOW: "ok",
    Kind.CONSENSUS: "not-dialed",  # not an execution-layer record: the crawler leaves it alone
}

#: Kinds with nothing listening on their TCP port: dials there are refused.
WITHOUT_RLPX_LISTENER = frozenset({Kind.NO_LISTENER, Kind.CONSENSUS})

#: The discovery protocols each kind speaks; a planned table link is only usable over a shared one.
PROTOCOLS: dict[Kind, frozenset[str]] = {kind: frozenset({"v4", "v5"}) for kind in Kind}
PROTOCOLS[Kind.NO_ENR] = frozenset({"v4"})
PROTOCOLS[Kind.CONSENSUS] = frozenset({"v5"})

# Beacon clients and their rough shares, for the manifest (they tell no client id over discovery).
CONSENSUS_CLIENTS = (("lighthouse", 0.40), ("prysm", 0.30), ("teku", 0.12), ("nimbus", 0.08), ("lodestar", 0.05), ("grandine", 0.05))
ATTNETS_BITS = 64  # attestation subnets (SSZ bitvector, 8 bytes)
SYNCNETS_BITS = 4  # sync committee subnets (1 byte)
FAR_FUTURE_EPOCH = 2**64 - 1  # next_fork_epoch when no fork is scheduled
SECONDS_PER_EPOCH = 384  # 32 slots of 12 s

# Capability sets of nodes that share no eth with anyone.
NON_ETH_CAPABILITIES = (
    (Capability(name="les", version=4),),
    (Capability(name="bzz", version=11), Capability(name="hive", version=11)),
    (Capability(name="snap", version=1),),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetConfig:
    nodes: int
    host: str = "127.0.0.1"  # first loopback address; more follow every NODES_PER_ADDRESS nodes
    base_port: int = 0  # 0: ports chosen by the OS
    network: str = "mainnet"
    seed: int = 0
    awkward: bool = True  # False: every node NORMAL (benchmarks of the plain walk)
    dirt: DirtConfig = IDEAL  # how far the network departs from a friendly one (devnet_profile.PROFILES)
    dial_out: Node | None = None  # where NAT'd nodes that dial out dial (a crawler's --listen)
    # This process binds the live nodes whose index % shards == shard (``ethcrawl devnet --shards``);
    # every shard plans the whole network from the seed, so it can file the others' nodes in its tables.
    shard: int = 0
    shards: int = 1

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"a devnet needs at least 1 node, not {self.nodes}")
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard} is not one of 0..{self.shards - 1}")
        if self.shards > 1 and not self.base_port:
            # Another shard's nodes are known by their planned endpoint: ports must not be left to the OS.
            raise ValueError("a devnet in several shards needs a --base-port")
        if self.network not in CHAINS:
            raise ValueError(f"unknown network {self.network!r} (known: {', '.join(sorted(CHAINS))})")
        try:
            first = ip_address(self.host)
        except ValueError:
            raise ValueError(f"host {self.host!r} is not an IP address") from None
        last_index = (self.nodes - 1) // NODES_PER_ADDRESS
        if not first.is_loopback:
            raise ValueError(f"host {self.host} is not a loopback address: the devnet binds only loopback")
        try:
            last = first + last_index
        except ValueError:  # past 255.255.255.255
            raise ValueError(f"{self.nodes} nodes need {last_index + 1} loopback addresses from {self.host}") from None
        if not last.is_loopback:
            raise ValueError(
                f"{self.nodes} nodes need {last_index + 1} loopback addresses from {self.host} "
                f"({NODES_PER_ADDRESS} per address); {last} is not loopback"
            )
        if self.dirt.has_dead_records and not all(ip in ip_network(LIVE_ADDRESSES_DIRTY) for ip in (first, last)):
            raise ValueError(
                f"with stale, NAT'd or sybil records the live nodes must stay in {LIVE_ADDRESSES_DIRTY} "
                f"(dead records take the rest of 127.0.0.0/8), not {first}..{last}"
            )
        if self.base_port:
            top = self.base_port + min(self.nodes, NODES_PER_ADDRESS) - 1
            if not 1024 < self.base_port <= 65535 or top > 65535:
                raise ValueError(f"ports {self.base_port}..{top} are not all in 1025..65535")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSpec:
    """One planned node: who it is, what it says, whom it knows.  No sockets yet."""

    index: int
    private_key: bytes
    pubkey: bytes
    node_id: bytes
    host: str
    port: int  # UDP and TCP; 0 = chosen by the OS when bound
    kind: Kind
    client_name: str
    client_id: str
    capabilities: tuple[Capability, ...]
    network: str  # the chain its Status is of
    known: tuple[int, ...]  # indices of the records in its routing table (live nodes first, then dead ones)
    events: NodeEvents = NodeEvents()  # its round trip, and when it joins, leaves or changes its record

    def served_by(self, config: DevnetConfig) -> bool:
        """Whether this process (``config.shard``) binds the node; the others only know its record."""
        return self.index % config.shards == config.shard


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetPlan:
    config: DevnetConfig
    nodes: tuple[NodeSpec, ...]
    records: tuple[DeadRecord, ...] = ()  # entries with no socket behind them; index = len(nodes) + position

    def _protocols(self) -> list[frozenset[str]]:
        # Dead records were execution nodes that spoke both: whoever holds them hands them out.
        return [PROTOCOLS[s.kind] for s in self.nodes] + [PROTOCOLS[Kind.NORMAL]] * len(self.records)

    def reachable_from(self, start: int = 0, protocol: str | None = None) -> set[int]:
        """Indices a walk of the routing tables from ``start`` can reach over ``protocol`` (None: either)."""
        return reachable([s.known for s in self.nodes], self._protocols(), protocol, start)

    def findable(self) -> set[int]:
        """Records a crawl from the bootnode could find: reachable through what the tables of nodes that stay
        serve (``devnet_tables.served``: at most a bucket's worth per bucket)."""
        stay = {s.index for s in self.nodes if s.events.leave_at is None}
        ids = [int.from_bytes(s.node_id, "big") for s in self.nodes] + [
            int.from_bytes(r.node_id, "big") for r in self.records
        ]
        joiners = {s.index for s in self.nodes if s.events.join_at is not None}
        tables = [served(s.index, s.known, ids, joiners) for s in self.nodes]
        return reachable(tables, self._protocols(), None, 0, forwarders=stay)


def _private_key(seed: int, index: int) -> PrivateKey:
    return derive_key(KEY_DOMAIN, seed, index)


def _kinds(config: DevnetConfig, rng: random.Random) -> list[Kind]:
    n = config.nodes
    kinds: list[Kind] = []
    if config.awkward:
        each_at_least_one = n >= 2 * len(Kind)
        for kind, share in AWKWARD_SHARES.items():
            kinds += [kind] * max(int(each_at_least_one), round(share * n))
    kinds = kinds[: max(n - 1, 0)]
    kinds += [Kind.NORMAL] * (n - 1 - len(kinds))
    rng.shuffle(kinds)
    return [Kind.NORMAL] + kinds  # the bootnode answers everything


def plan_devnet(config: DevnetConfig) -> DevnetPlan:
    """Keys, kinds, client ids and routing tables for ``config``: the same seed gives the same network."""
    rng = random.Random(config.seed)
    keys = [_private_key(config.seed, i) for i in range(config.nodes)]
    pubkeys = [pubkey_from_private(k) for k in keys]
    node_ids = [node_id_from_pubkey(p) for p in pubkeys]
    ids = [int.from_bytes(i, "big") for i in node_ids]
    kinds = _kinds(config, rng)
    records, events = _plan_dirt(config, kinds)
    ids += [int.from_bytes(r.node_id, "big") for r in records]
    protocols = [PROTOCOLS[k] for k in kinds] + [PROTOCOLS[Kind.NORMAL]] * len(records)
    live_subnets: list[int | None] = [None] * config.nodes  # loopback: exempt, as in geth
    subnets = live_subnets + [r.subnet for r in records] if config.dirt.ip_limits else None
    tables = plan_tables(ids, config.nodes, rng, subnets)
    leavers = {i for i, e in enumerate(events) if e.leave_at is not None}
    stay = set(range(config.nodes)) - leavers if leavers else None
    connect_all(tables, ids, protocols, rng, forwarders=stay, subnets=subnets)
    if records:
        add_holders(tables, ids, protocols, rng, DIRTY_HOLDERS, forwarders=stay, subnets=subnets)
    others = sorted(name for name in CHAINS if name != config.network)
    first = ip_address(config.host)
    specs = []
    for i in range(config.nodes):
        kind = kinds[i]
        profile, client_id, caps = choose_client(rng, NIMBUS if kind is Kind.NO_ENR else None)
        client_name = profile.name
        if kind is Kind.NOT_ETH:
            caps = NON_ETH_CAPABILITIES[rng.randrange(len(NON_ETH_CAPABILITIES))]
        if kind is Kind.CONSENSUS:
            client_name = rng.choices([c for c, _ in CONSENSUS_CLIENTS], [w for _, w in CONSENSUS_CLIENTS])[0]
            client_id, caps = "", ()
        network = others[rng.randrange(len(others))] if kind is Kind.OTHER_NETWORK and others else config.network
        specs.append(
            NodeSpec(
                index=i,
                private_key=keys[i].secret,
                pubkey=pubkeys[i],
                node_id=node_ids[i],
                host=str(first + i // NODES_PER_ADDRESS),
                port=config.base_port + i % NODES_PER_ADDRESS if config.base_port else 0,
                kind=kind,
                client_name=client_name,
                client_id=client_id,
                capabilities=caps,
                network=network,
                known=tuple(tables[i]),
                events=events[i],
            )
        )
    return DevnetPlan(config=config, nodes=tuple(specs), records=tuple(records))


def _plan_dirt(config: DevnetConfig, kinds: list[Kind]) -> tuple[list[DeadRecord], list[NodeEvents]]:
    """The dead records and per-node events of ``config.dirt``.

    From an RNG of their own: the ideal profile plans what it always planned.
    """
    if config.dirt == IDEAL:
        return [], [NodeEvents()] * config.nodes
    rng = random.Random(f"ethcrawl-devnet-dirt-{config.seed}")
    others = range(1, config.nodes)  # the bootnode stays, keeps its key and its record
    first = ip_address(config.host)
    hosts = [str(first + i // NODES_PER_ADDRESS) for i in range(config.nodes)]
    records = plan_dead_records(config.dirt, hosts, others, config.seed, rng)
    # A record change shows only to nodes with an RLPx listener that serve their record (EIP-868).
    changers = [i for i in others if kinds[i] not in WITHOUT_RLPX_LISTENER and kinds[i] is not Kind.NO_ENR]
    return records, plan_events(config.dirt, config.nodes, others, changers, rng)


# ---------------------------------------------------------------------- running nodes


def _current_fork_digest(network: str, now: float) -> bytes:
    """The fork digest a synced beacon node of ``network`` announces at ``now`` (unix s)."""
    consensus = CONSENSUS_NETWORKS[network]
    started = [f for f in fork_digests(consensus) if consensus.genesis_time + f.epoch * SECONDS_PER_EPOCH <= now]
    return max(started, key=lambda f: f.epoch).digest


# ENRForkID's tail when no fork is scheduled: next_fork_version (the current one is as good as any) and FAR_FUTURE.
_FAR_FUTURE_FORK = bytes(4) + FAR_FUTURE_EPOCH.to_bytes(8, "little")




class DevnetNode:
    """One virtual node: discovery on UDP, RLPx on TCP (same port), behaving as its ``Kind`` says.

    With a ``line`` (a slow, lossy profile) its UDP socket is wrapped in a
    :class:`~ethcrawl.crawler.lossy.LossyTransport`; the protocol code above
    does not know.
    """

    def __init__(self, spec: NodeSpec, heads: dict[str, ChainHead], *, dirt: DirtConfig = IDEAL, line: DelayLine | None = None) -> None:
        self.spec = spec
        self._key = PrivateKey(spec.private_key)
        self._head = heads[spec.network]
        delay = SLOW_REPLY_DELAY if spec.kind is Kind.SLOW else 0.0
        self._config = DiscoveryConfig(
            serve_enr_requests=spec.kind is not Kind.NO_ENR, reply_delay=delay, bond_expiration=dirt.bond_expiry
        )
        self._v5_config = DiscoveryV5Config(reply_delay=delay)
        self._endpoint: DiscoveryNode | None = None
        self._line = line
        self._link = LinkProfile(rtt=spec.events.rtt, jitter=dirt.jitter, loss=dirt.loss)
        self.transport: LossyTransport | None = None
        self.port = spec.port  # the UDP port, once bound
        self._scope = trio.CancelScope()  # leave() ends the node
        self._nursery: trio.Nursery | None = None
        self._rlpx: tuple[trio.CancelScope, trio.SocketListener] | None = None
        self.left = False
        self._remote_enr: ENR | None = None  # a node another shard serves: its record, as planned

    @classmethod
    def remote(cls, spec: NodeSpec, heads: dict[str, ChainHead]) -> DevnetNode:
        """A node another shard binds: known here by the record it will have at its planned port."""
        node = cls(spec, heads)
        assert spec.port, "another shard's node needs its planned port"
        node._remote_enr = make_local_enr(
            node._key, spec.host, spec.port, spec.port, seq=1, extra=node._record_entries()
        )
        return node

    @property
    def is_remote(self) -> bool:
        return self._remote_enr is not None

    @property
    def protocols(self) -> frozenset[str]:
        return PROTOCOLS[self.spec.kind]

    @property
    def discovery(self) -> DiscoveryV4 | None:
        """The node's v4 side (None for v5-only consensus nodes)."""
        assert self._endpoint is not None, "run() must be started first"
        return self._endpoint.v4 if "v4" in self.protocols else None

    @property
    def discovery_v5(self) -> DiscoveryV5 | None:
        """The node's v5 side (None for v4-only nodes)."""
        assert self._endpoint is not None, "run() must be started first"
        return self._endpoint.v5

    @property
    def enr(self) -> ENR:
        if self._remote_enr is not None:
            return self._remote_enr
        assert self._endpoint is not None, "run() must be started first"
        return self._endpoint.enr

    @property
    def node(self) -> Node:
        return self.enr.to_node()

    def _record_entries(self) -> dict[str, object]:
        """What the node's ENR says besides its endpoint: the execution fork id, or a beacon node's fields."""
        if self.spec.kind is not Kind.CONSENSUS:
            # Execution clients publish their chain's fork id in the record (EIP-2124's ENR entry).
            return {"eth": [self._head.fork_id]}
        rng = random.Random(self.spec.private_key)  # the same subnets every run of the same seed
        attnets = sum(1 << bit for bit in rng.sample(range(ATTNETS_BITS), 2))
        syncnets = 1 << rng.randrange(SYNCNETS_BITS) if rng.random() < 0.25 else 0
        return {
            "eth2": _current_fork_digest(self.spec.network, time.time()) + _FAR_FUTURE_FORK,
            "attnets": attnets.to_bytes(ATTNETS_BITS // 8, "little"),
            "syncnets": bytes([syncnets]),
        }

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind UDP and (unless NO_LISTENER) TCP on one port, report it, serve until cancelled or :meth:`leave`."""
        with self._scope:
            udp, listener = await self._bind()
            self.port = udp.local_address[1]
            transport: DatagramTransport = udp
            if self._line is not None:
                rng = random.Random(self.spec.private_key)  # its losses are the same every run of the seed
                transport = self.transport = LossyTransport(udp, self._line, self._link, rng)
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._endpoint = DiscoveryNode(
                        self._key, host=self.spec.host, port=self.port, v4_config=self._config,
                        v5_config=self._v5_config, speaks_v4="v4" in self.protocols, speaks_v5="v5" in self.protocols,
                        transport=transport, enr_extra=self._record_entries(),
                    )
                    await nursery.start(self._endpoint.run)
                    if listener is not None:
                        self._serve_listener(listener)
                    task_status.started(self.port)
            finally:
                if self.transport is not None:
                    self.transport.close()
                await udp.__aexit__(None, None, None)
                if self._rlpx is not None:
                    await self._rlpx[1].aclose()

    def leave(self) -> None:
        """Close the node's sockets: from now on it is a stale entry in other nodes' tables."""
        self.left = True
        self._scope.cancel()

    def announce(self, head: ChainHead) -> None:
        """From the next session on, say ``head`` in Status (the churning devnet's fork id switches)."""
        self._head = head

    def _serve_listener(self, listener: trio.SocketListener) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._rlpx = (scope, listener)

        async def serve() -> None:
            with scope:
                await trio.serve_listeners(self._serve_rlpx, [listener])

        self._nursery.start_soon(serve)

    async def move_rlpx(self, avoid: frozenset[int] = frozenset()) -> ENR:
        """Listen for RLPx on a new TCP port and publish it in a record with the next seq; the new record.

        ``avoid``: ports of this host's nodes without a listener, whose TCP
        twins must stay closed (dials there must be refused).
        """
        assert self._rlpx is not None and self._endpoint is not None, "a node with a listener, running"
        old_scope, old_listener = self._rlpx
        for _ in range(BIND_ATTEMPTS):
            listener = (await trio.open_tcp_listeners(0, host=self.spec.host, backlog=LISTEN_BACKLOG))[0]
            port = listener.socket.getsockname()[1]
            if port not in avoid and port != self.port:
                break
            await listener.aclose()
        else:  # pragma: no cover - the OS hands out the same few ports again and again
            raise OSError(f"no free TCP port for node {self.spec.index}")
        old_scope.cancel()
        await old_listener.aclose()
        self._serve_listener(listener)
        enr = make_local_enr(
            self._key, self.spec.host, self.port, port, seq=self.enr.seq + 1, extra=self._record_entries()
        )
        v4 = self.discovery
        if v4 is not None:
            v4.tcp_port = port
            v4.set_local_enr(enr)
        if self.discovery_v5 is not None:
            self.discovery_v5.set_local_enr(enr)
        log.info("devnet node %d moved its RLPx port to %d (record seq %d)", self.spec.index, port, enr.seq)
        return enr

    async def _bind(self) -> tuple[UDPSocket, trio.SocketListener | None]:
        """UDP on the planned port (or one the OS picks) and TCP on the same number."""
        for attempt in range(BIND_ATTEMPTS):
            udp = await open_udp_socket(self.spec.host, self.spec.port)
            if self.spec.kind in WITHOUT_RLPX_LISTENER:
                # Nothing listens on TCP here: with its UDP twin ours, no other
                # devnet node can hold this TCP port, so dials are refused (a
                # beacon node's libp2p port would not speak RLPx either).
                return udp, None
            port = udp.local_address[1]
            family = trio.socket.AF_INET6 if ip_address(self.spec.host).version == 6 else trio.socket.AF_INET
            sock = trio.socket.socket(family)
            # A fixed port (--base-port, --shards) may still hold TIME_WAIT connections of the last run's
            # dials: a listener may bind over them, as every server does (trio's open_tcp_listeners too).
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            try:
                await sock.bind((self.spec.host, port))
                sock.listen(LISTEN_BACKLOG)
            except OSError:
                sock.close()
                await udp.__aexit__(None, None, None)
                if self.spec.port or attempt == BIND_ATTEMPTS - 1:
                    raise
                continue
            return udp, trio.SocketListener(sock)
        raise AssertionError("unreachable")  # pragma: no cover

    def _hello(self) -> Hello:
        return Hello(
            protocol_version=5, client_id=self.spec.client_id, capabilities=self.spec.capabilities,
            listen_port=self.node.tcp or 0, node_pubkey=self.spec.pubkey,
        )

    async def _serve_rlpx(self, stream: trio.SocketStream) -> None:
        session = PeerSession(RLPxConnection.recipient(self._key), hello=self._hello())
        pump = SessionStream(stream, session)
        kind = self.spec.kind
        delay = SLOW_REPLY_DELAY if kind is Kind.SLOW else 0.0
        try:
            with trio.move_on_after(SESSION_TIMEOUT):
                await converse(pump, self._head, too_many_peers=kind is Kind.TOO_MANY_PEERS, status_delay=delay)
        except (WireError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("devnet rlpx session ended node=%d err=%r", self.spec.index, exc)
        finally:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await stream.aclose()

    def manifest_entry(self, findable: bool = True) -> dict[str, Any]:
        spec = self.spec
        node = self.node
        enr = self.enr
        events = spec.events
        return {
            "index": spec.index,
            "node_id": spec.node_id.hex(),
            "enode": format_enode(node),
            "enr": enr.to_text(),
            "ip": spec.host,
            "udp": node.udp,
            "tcp": node.tcp,
            "kind": spec.kind.value,
            "role": Role.LIVE.value,
            "findable": findable,
            "dialable": spec.kind not in WITHOUT_RLPX_LISTENER,
            "expected_outcome": EXPECTED_OUTCOME[spec.kind],
            "client_name": spec.client_name,
            "client_id": spec.client_id,
            "capabilities": [f"{c.name}/{c.version}" for c in spec.capabilities],
            "network": spec.network,
            "network_id": CHAINS[spec.network].network_id,
            "table": list(spec.known),
            "protocols": sorted(self.protocols),
            "layer": "consensus" if spec.kind is Kind.CONSENSUS else "execution",
            # The dirt (all None/0 in the ideal profile): s after the devnet is up.
            "rtt_ms": round(events.rtt * 1000, 1),
            "joins_at": events.join_at,
            "leaves_at": events.leave_at,
            "enr_changes_at": events.enr_change_at,
        }


@dataclass(eq=False)
class Devnet:
    """A running devnet: its nodes, its dead records, bootnode URLs and manifest."""

    plan: DevnetPlan
    nodes: list[DevnetNode]
    dead: list[DeadEntry] = field(default_factory=list)  # plan.records, with their endpoints and signed records

    @property
    def bootnode(self) -> DevnetNode:
        return self.nodes[0]

    @property
    def served(self) -> list[DevnetNode]:
        """The nodes this process binds (all of them unless the devnet runs in shards)."""
        return [node for node in self.nodes if not node.is_remote]

    @property
    def bootnode_enode(self) -> str:
        return format_enode(self.bootnode.node)

    @property
    def bootnode_enr(self) -> str:
        return self.bootnode.enr.to_text()

    def introduce(self, holder: DevnetNode, j: int) -> None:
        """File record ``j`` (a node, or a dead record) in ``holder``'s tables, over each protocol both speak."""
        v4, v5 = holder.discovery, holder.discovery_v5
        if j < len(self.nodes):
            other = self.nodes[j]  # served here or by another shard: its record says where it is
            if v4 is not None and "v4" in other.protocols:
                v4.table.add_verified(other.node)
            if v5 is not None and "v5" in other.protocols:
                v5.add_to_table(other.enr)
            return
        dead = self.dead[j - len(self.nodes)]
        if v4 is not None:
            v4.table.add_verified(dead.node)
        if v5 is not None:
            v5.add_to_table(dead.enr)

    def manifest(self) -> dict[str, Any]:
        config = self.plan.config
        findable = self.plan.findable()
        return {
            "network": config.network,
            "network_id": CHAINS[config.network].network_id,
            "seed": config.seed,
            "dirt": asdict(config.dirt),
            "bootnodes": [{"enode": self.bootnode_enode, "enr": self.bootnode_enr}],
            "nodes": [n.manifest_entry(n.spec.index in findable) for n in self.nodes],
            "records": [dead_manifest_entry(d, d.record.index in findable) for d in self.dead],
        }

    def summary(self) -> str:
        """One line: size, network, execution client mix, awkward kinds, beacon nodes (and the dirt, if any)."""
        config = self.plan.config
        execution = Counter(n.spec.client_name for n in self.nodes if n.spec.kind is not Kind.CONSENSUS)
        beacon = Counter(n.spec.client_name for n in self.nodes if n.spec.kind is Kind.CONSENSUS)
        kinds: Counter[Kind] = Counter(n.spec.kind for n in self.nodes if n.spec.kind not in (Kind.NORMAL, Kind.CONSENSUS))
        hosts = sorted({n.spec.host for n in self.nodes}, key=ip_address)
        where = hosts[0] if len(hosts) == 1 else f"{hosts[0]}-{hosts[-1]}"
        mix = ", ".join(f"{name} {count}" for name, count in execution.most_common())
        odd = ", ".join(f"{k.value} {kinds[k]}" for k in Kind if kinds[k]) or "none"
        beacons = ", ".join(f"{name} {count}" for name, count in beacon.most_common()) or "none"
        line = (
            f"devnet: {len(self.nodes)} nodes on {where} ({config.network}, seed {config.seed}); "
            f"execution clients: {mix}; awkward: {odd}; beacon nodes (discv5 only): {beacons}"
        )
        return line + dirt_summary(self.plan) if config.dirt != IDEAL else line


def _ensure_descriptors(plan: DevnetPlan) -> None:
    """Raise the soft open-files limit to fit the plan's sockets, or say why it cannot."""
    # A UDP socket per node, and a TCP listener for every node that has one; dead records need none.
    served = [spec for spec in plan.nodes if spec.served_by(plan.config)]
    sockets = sum(FDS_PER_NODE - (spec.kind in WITHOUT_RLPX_LISTENER) for spec in served)
    try:
        fit_open_files(sockets)
    except TooFewOpenFiles as exc:
        raise OSError(
            f"{len(served)} nodes need {exc.needed} open files; the hard limit is {exc.hard} (raise ulimit -Hn, or use "
            "--shards)"
        ) from None


async def run_devnet(config: DevnetConfig, *, task_status: trio.TaskStatus[Devnet] = trio.TASK_STATUS_IGNORED) -> None:
    """Bind every node of ``plan_devnet(config)``, fill their tables, report the Devnet, serve until cancelled.

    Then, if the profile says so, nodes join, leave and change their records,
    and NAT'd nodes dial out, on the plan's schedule (``devnet_dirt.run_schedule``).
    """
    plan = plan_devnet(config)
    _ensure_descriptors(plan)
    wall = time.time()  # the head header's age; nodes read their own clock for expirations
    heads = {name: chain_head(name, wall) for name in {s.network for s in plan.nodes} | {config.network}}
    line = DelayLine() if config.dirt.shapes_links else None
    nodes = [
        DevnetNode(spec, heads, dirt=config.dirt, line=line) if spec.served_by(config) else DevnetNode.remote(spec, heads)
        for spec in plan.nodes
    ]
    async with trio.open_nursery() as nursery:
        if line is not None:
            await nursery.start(line.run)
        for node in nodes:
            if not node.is_remote:
                await nursery.start(node.run)
        net = Devnet(plan=plan, nodes=nodes, dead=dead_entries(plan.records, nodes, heads[config.network]))
        joiners = {s.index for s in plan.nodes if s.events.join_at is not None}
        for node in net.served:
            for j in node.spec.known:
                if j not in joiners:  # nobody knows a joiner before it joins
                    net.introduce(node, j)
        await nursery.start(run_schedule, net, heads[config.network])
        log.info(
            "devnet up nodes=%d records=%d network=%s seed=%d",
            len(nodes), len(plan.records), config.network, config.seed,
        )
        task_status.started(net)


@asynccontextmanager
async def open_devnet(**kwargs: Any) -> AsyncIterator[Devnet]:
    """``async with open_devnet(nodes=30, seed=1) as net:`` — the network stops when the block ends."""
    config = DevnetConfig(**kwargs)
    async with trio.open_nursery() as nursery:
        net: Devnet = await nursery.start(run_devnet, config)
        try:
            yield net
        finally:
            nursery.cancel_scope.cancel()
