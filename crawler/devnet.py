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
nodes are awkward, and the routing tables.  A table holds the node's
``TABLE_CLOSEST`` nearest nodes by XOR distance plus ``TABLE_FAR`` random
others (as a Kademlia table fills: dense near, sparse far), so no node knows
everyone and only a walk finds the whole network; the plan adds links, if
needed, until every node is reachable from the bootnode.

The split: :func:`plan_devnet` is pure (config in, :class:`DevnetPlan` out,
no sockets); :func:`run_devnet` binds and serves it; :func:`open_devnet` wraps
that for tests and benchmarks.
"""

from __future__ import annotations

import enum
import logging
import random
import resource
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import trio
from ethcrawl.wire import rlpcodec
from ethcrawl.wire.chains import CHAINS, Chain
from ethcrawl.wire.classify import CONSENSUS_NETWORKS, fork_digests
from ethcrawl.wire.crypto import PrivateKey, keccak256, node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.enode import Node, format_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError
from ethcrawl.wire.eth import BlockHeader, BlockHeaders, GetBlockHeaders, Status, Status66, Status69
from ethcrawl.wire.forkid import ForkId, fork_id
from ethcrawl.wire.p2p import Capability, DisconnectReason, Hello
from ethcrawl.wire.rlpx import session as rlpx_session
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import PeerSession

from .devnet_clients import NIMBUS, choose_client
from .discovery import DiscoveryConfig, DiscoveryV4
from .discovery_v5 import DiscoveryV5, DiscoveryV5Config
from .node import DiscoveryNode
from .session_stream import SessionStream
from .udp import UDPSocket, open_udp_socket

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
TABLE_CLOSEST = 16  # nearest nodes by XOR distance in each table (discv4's bucket size k)
TABLE_FAR = 3  # random other nodes in each table: the sparse far buckets of a real table
BUCKET_SIZE = 16  # a planned table never puts more in one log-distance bucket
# The K XOR-nearest ids lie close in sorted order; scanning this many neighbours
# on each side finds them without comparing every pair (10,000 nodes: 10^8 pairs).
NEAREST_SCAN = 48  # ids each side in sorted order
SLOW_REPLY_DELAY = 0.2  # s, slow responders: late but inside geth's 0.5 s respTimeout
SESSION_TIMEOUT = 15.0  # s, longest one RLPx session with a devnet node may last
LISTEN_BACKLOG = 128  # pending TCP connections per node
BIND_ATTEMPTS = 20  # OS-chosen ports: retries when the UDP twin of a TCP port is taken
FDS_PER_NODE = 2  # UDP socket + TCP listener
FD_HEADROOM = 256  # descriptors left for the rest of the process
KEY_DOMAIN = b"ethcrawl-devnet-key"

# Head block per network for the Status and the header we serve (mid-2025 heights).
HEAD_BLOCKS = {"mainnet": 22_800_000, "sepolia": 8_700_000, "holesky": 4_100_000, "hoodi": 800_000}
# Status66 carries the total difficulty: the chains' terminal total difficulty since the merge.
TOTAL_DIFFICULTY = {
    "mainnet": 58_750_003_716_598_352_816_469,
    "sepolia": 17_000_018_015_853_232,
    "holesky": 1,
    "hoodi": 0,
}
BLOCK_TIME = 12  # s, the head header is this old


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

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"a devnet needs at least 1 node, not {self.nodes}")
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
    known: tuple[int, ...]  # indices of the nodes in its routing table


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetPlan:
    config: DevnetConfig
    nodes: tuple[NodeSpec, ...]

    def reachable_from(self, start: int = 0, protocol: str | None = None) -> set[int]:
        """Indices a walk of the routing tables from ``start`` can reach over ``protocol`` (None: either)."""
        kinds = [spec.kind for spec in self.nodes]
        return _reachable([list(spec.known) for spec in self.nodes], kinds, protocol, start)


def _private_key(seed: int, index: int) -> PrivateKey:
    counter = 0
    while True:
        secret = keccak256(KEY_DOMAIN + seed.to_bytes(8, "big", signed=True) + index.to_bytes(4, "big") + bytes([counter]))
        try:
            return PrivateKey(secret)
        except ValueError:  # zero or >= the curve order: astronomically rare
            counter += 1


def _log_distance(a: int, b: int) -> int:
    return (a ^ b).bit_length()


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


def _tables(ids: list[int], rng: random.Random) -> list[list[int]]:
    """Per node: its nearest ids by XOR plus a few random far ones, at most BUCKET_SIZE per bucket."""
    n = len(ids)
    order = sorted(range(n), key=ids.__getitem__)
    position = {index: pos for pos, index in enumerate(order)}
    tables: list[list[int]] = []
    for i in range(n):
        pos = position[i]
        window = order[max(0, pos - NEAREST_SCAN) : pos + NEAREST_SCAN + 1]
        nearest = sorted((j for j in window if j != i), key=lambda j: ids[i] ^ ids[j])[:TABLE_CLOSEST]
        others = [j for j in rng.sample(range(n), min(n, TABLE_FAR + 1)) if j != i][:TABLE_FAR]
        tables.append(_fill(i, [], nearest + others, ids))
    return tables


def _fill(i: int, table: list[int], candidates: list[int], ids: list[int]) -> list[int]:
    buckets = Counter(_log_distance(ids[i], ids[j]) for j in table)
    for j in candidates:
        d = _log_distance(ids[i], ids[j])
        if j != i and j not in table and buckets[d] < BUCKET_SIZE:
            table.append(j)
            buckets[d] += 1
    return table


def _usable(kinds: list[Kind], i: int, j: int, protocol: str | None) -> bool:
    """Whether ``i`` hands out ``j`` over ``protocol`` (None: over any protocol both speak)."""
    shared = PROTOCOLS[kinds[i]] & PROTOCOLS[kinds[j]]
    return protocol in shared if protocol is not None else bool(shared)


def _reachable(tables: list[list[int]], kinds: list[Kind], protocol: str | None, start: int = 0) -> set[int]:
    seen = {start}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        for j in tables[i]:
            if j not in seen and _usable(kinds, i, j, protocol):
                seen.add(j)
                queue.append(j)
    return seen


def _connect_all(tables: list[list[int]], ids: list[int], kinds: list[Kind], rng: random.Random) -> None:
    """Add links until a walk from node 0 over each protocol reaches every node speaking it.

    A sparse plan can leave islands, and a link only counts over a protocol
    both ends speak (a v4-only node cannot lead to a v5-only one), so a v4
    walk finds every v4 node and a v5 walk every v5 node.  Node 0 speaks both.
    """
    for protocol in ("v4", "v5"):
        speakers = {j for j, kind in enumerate(kinds) if protocol in PROTOCOLS[kind]}
        while True:
            seen = _reachable(tables, kinds, protocol)
            missing = sorted(speakers - seen)
            if not missing:
                break
            reached = sorted(seen)
            for j in missing:
                for _ in range(64):  # a reached node with room in the right bucket
                    i = reached[rng.randrange(len(reached))]
                    if j in _fill(i, tables[i], [j], ids):
                        break
                else:  # every try hit a full bucket: the bootnode takes it anyway
                    if j not in tables[0]:
                        tables[0].append(j)


def plan_devnet(config: DevnetConfig) -> DevnetPlan:
    """Keys, kinds, client ids and routing tables for ``config``: the same seed gives the same network."""
    rng = random.Random(config.seed)
    keys = [_private_key(config.seed, i) for i in range(config.nodes)]
    pubkeys = [pubkey_from_private(k) for k in keys]
    node_ids = [node_id_from_pubkey(p) for p in pubkeys]
    ids = [int.from_bytes(i, "big") for i in node_ids]
    kinds = _kinds(config, rng)
    tables = _tables(ids, rng)
    _connect_all(tables, ids, kinds, rng)
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
            )
        )
    return DevnetPlan(config=config, nodes=tuple(specs))


# ---------------------------------------------------------------------- chain state


@dataclass(frozen=True, slots=True)
class _ChainHead:
    """What a synced node of one chain announces: Status fields and its head header."""

    chain: Chain
    header: BlockHeader
    td: int

    @property
    def fork_id(self) -> ForkId:
        return fork_id(self.chain, self.header.number, self.header.timestamp)

    def status(self, eth_version: int) -> Status:
        fid = self.fork_id
        if eth_version >= 69:
            return Status69(
                version=eth_version, network_id=self.chain.network_id, genesis=self.chain.genesis_hash,
                fork_id=fid, earliest_block=0, latest_block=self.header.number, latest_hash=self.header.hash,
            )
        return Status66(
            version=eth_version, network_id=self.chain.network_id, td=self.td, head=self.header.hash,
            genesis=self.chain.genesis_hash, fork_id=fid,
        )


def _chain_head(name: str, now: float) -> _ChainHead:
    chain = CHAINS[name]
    number = HEAD_BLOCKS.get(name, 1_000_000)
    # A header with the fields crawlers read (number, time) and the post-London layout.
    parent = keccak256(chain.genesis_hash + number.to_bytes(8, "big"))
    fields: list[object] = [parent, *([b"\x00" * 32] * 7)]
    fields += [number, 30_000_000, 15_000_000, int(now) - BLOCK_TIME, b"", b"\x00" * 32, b"\x00" * 8, 7]
    header = BlockHeader.from_rlp_item(rlpcodec.decode(rlpcodec.encode(fields)))
    return _ChainHead(chain=chain, header=header, td=TOTAL_DIFFICULTY.get(name, 0))


# ---------------------------------------------------------------------- running nodes


def _current_fork_digest(network: str, now: float) -> bytes:
    """The fork digest a synced beacon node of ``network`` announces at ``now`` (unix s)."""
    consensus = CONSENSUS_NETWORKS[network]
    started = [f for f in fork_digests(consensus) if consensus.genesis_time + f.epoch * SECONDS_PER_EPOCH <= now]
    return max(started, key=lambda f: f.epoch).digest


# ENRForkID's tail when no fork is scheduled: next_fork_version (the current one is as good as any) and FAR_FUTURE.
_FAR_FUTURE_FORK = bytes(4) + FAR_FUTURE_EPOCH.to_bytes(8, "little")


_ENDS = (rlpx_session.DisconnectReceived, rlpx_session.ConnectionClosed)


class DevnetNode:
    """One virtual node: discovery on UDP, RLPx on TCP (same port), behaving as its ``Kind`` says."""

    def __init__(self, spec: NodeSpec, heads: dict[str, _ChainHead]) -> None:
        self.spec = spec
        self._key = PrivateKey(spec.private_key)
        self._head = heads[spec.network]
        delay = SLOW_REPLY_DELAY if spec.kind is Kind.SLOW else 0.0
        self._config = DiscoveryConfig(serve_enr_requests=spec.kind is not Kind.NO_ENR, reply_delay=delay)
        self._v5_config = DiscoveryV5Config(reply_delay=delay)
        self._endpoint: DiscoveryNode | None = None

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
        """Bind UDP and (unless NO_LISTENER) TCP on one port, report it, serve until cancelled."""
        udp, listener = await self._bind()
        port = udp.local_address[1]
        try:
            async with trio.open_nursery() as nursery:
                self._endpoint = DiscoveryNode(
                    self._key, host=self.spec.host, port=port, v4_config=self._config, v5_config=self._v5_config,
                    speaks_v4="v4" in self.protocols, speaks_v5="v5" in self.protocols, transport=udp,
                    enr_extra=self._record_entries(),
                )
                await nursery.start(self._endpoint.run)
                if listener is not None:
                    nursery.start_soon(trio.serve_listeners, self._serve_rlpx, [listener])
                task_status.started(port)
        finally:
            await udp.__aexit__(None, None, None)
            if listener is not None:
                await listener.aclose()

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
        try:
            with trio.move_on_after(SESSION_TIMEOUT):
                await self._converse(pump)
        except (WireError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("devnet rlpx session ended node=%d err=%r", self.spec.index, exc)
        finally:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await stream.aclose()

    async def _converse(self, pump: SessionStream) -> None:
        session = pump.session
        while True:  # until the peer's Hello
            event = await pump.next_event()
            if isinstance(event, _ENDS):
                return
            if isinstance(event, rlpx_session.HelloReceived):
                break
        if self.spec.kind is Kind.TOO_MANY_PEERS:
            session.send_disconnect(DisconnectReason.TOO_MANY_PEERS)
            await pump.flush()
            return
        version = session.eth_version
        if version is not None:
            if self.spec.kind is Kind.SLOW:
                await trio.sleep(SLOW_REPLY_DELAY)
            session.send_status(self._head.status(version))
        # Serve until the peer leaves: header requests answered, the rest ignored.
        while True:
            event = await pump.next_event()
            if isinstance(event, _ENDS):
                return
            if isinstance(event, rlpx_session.EthMessageReceived) and isinstance(event.msg, GetBlockHeaders):
                session.send_eth(BlockHeaders(request_id=event.msg.request_id, headers=self._headers(event.msg)))

    def _headers(self, request: GetBlockHeaders) -> tuple[BlockHeader, ...]:
        head = self._head.header
        if request.amount >= 1 and request.origin in (head.hash, head.number):
            return (head,)
        return ()  # we hold only the head; a real node answers an unknown block the same way

    def manifest_entry(self) -> dict[str, Any]:
        spec = self.spec
        node = self.node
        enr = self.enr
        return {
            "index": spec.index,
            "node_id": spec.node_id.hex(),
            "enode": format_enode(node),
            "enr": enr.to_text(),
            "ip": spec.host,
            "udp": node.udp,
            "tcp": node.tcp,
            "kind": spec.kind.value,
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
        }


@dataclass(eq=False)
class Devnet:
    """A running devnet: its nodes, bootnode URLs and manifest."""

    plan: DevnetPlan
    nodes: list[DevnetNode]

    @property
    def bootnode(self) -> DevnetNode:
        return self.nodes[0]

    @property
    def bootnode_enode(self) -> str:
        return format_enode(self.bootnode.node)

    @property
    def bootnode_enr(self) -> str:
        return self.bootnode.enr.to_text()

    def manifest(self) -> dict[str, Any]:
        config = self.plan.config
        return {
            "network": config.network,
            "network_id": CHAINS[config.network].network_id,
            "seed": config.seed,
            "bootnodes": [{"enode": self.bootnode_enode, "enr": self.bootnode_enr}],
            "nodes": [n.manifest_entry() for n in self.nodes],
        }

    def summary(self) -> str:
        """One line: size, network, execution client mix, awkward kinds, beacon nodes."""
        config = self.plan.config
        execution = Counter(n.spec.client_name for n in self.nodes if n.spec.kind is not Kind.CONSENSUS)
        beacon = Counter(n.spec.client_name for n in self.nodes if n.spec.kind is Kind.CONSENSUS)
        kinds: Counter[Kind] = Counter(n.spec.kind for n in self.nodes if n.spec.kind not in (Kind.NORMAL, Kind.CONSENSUS))
        hosts = sorted({n.spec.host for n in self.nodes}, key=ip_address)
        where = hosts[0] if len(hosts) == 1 else f"{hosts[0]}-{hosts[-1]}"
        mix = ", ".join(f"{name} {count}" for name, count in execution.most_common())
        odd = ", ".join(f"{k.value} {kinds[k]}" for k in Kind if kinds[k]) or "none"
        beacons = ", ".join(f"{name} {count}" for name, count in beacon.most_common()) or "none"
        return (
            f"devnet: {len(self.nodes)} nodes on {where} ({config.network}, seed {config.seed}); "
            f"execution clients: {mix}; awkward: {odd}; beacon nodes (discv5 only): {beacons}"
        )


def _ensure_descriptors(plan: DevnetPlan) -> None:
    """Raise the soft open-files limit to fit the plan's sockets, or say why it cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = len(plan.nodes)
    # A UDP socket per node, and a TCP listener for every node that has one.
    sockets = sum(FDS_PER_NODE - (spec.kind in WITHOUT_RLPX_LISTENER) for spec in plan.nodes)
    needed = sockets + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            raise OSError(f"{count} nodes need {needed} open files; the hard limit is {hard} (raise ulimit -Hn)")


async def run_devnet(config: DevnetConfig, *, task_status: trio.TaskStatus[Devnet] = trio.TASK_STATUS_IGNORED) -> None:
    """Bind every node of ``plan_devnet(config)``, fill their tables, report the Devnet, serve until cancelled."""
    plan = plan_devnet(config)
    _ensure_descriptors(plan)
    wall = time.time()  # the head header's age; nodes read their own clock for expirations
    heads = {name: _chain_head(name, wall) for name in {s.network for s in plan.nodes}}
    nodes = [DevnetNode(spec, heads) for spec in plan.nodes]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        for node in nodes:
            for j in node.spec.known:
                # Each protocol's table holds the planned neighbours that speak it too.
                v4, known_v4 = node.discovery, nodes[j].discovery
                if v4 is not None and known_v4 is not None:
                    v4.table.add_verified(known_v4.local_node)
                v5, known_v5 = node.discovery_v5, nodes[j].discovery_v5
                if v5 is not None and known_v5 is not None:
                    v5.add_to_table(known_v5.enr)
        log.info("devnet up nodes=%d network=%s seed=%d", len(nodes), config.network, config.seed)
        task_status.started(Devnet(plan=plan, nodes=nodes))


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
