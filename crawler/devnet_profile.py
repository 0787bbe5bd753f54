"""How dirty a devnet is: ``ethcrawl devnet --profile ideal|mainnet`` and the knobs behind it.

The real discovery network is nothing like a friendly devnet.  Most records
a crawl hears of point at nothing (the node is gone, or changed its key), some
nodes sit behind NAT (alive, in tables, never answering), round trips are tens
to hundreds of milliseconds, UDP loses packets, some addresses host many
identities, and nodes come, go and change their records while a crawl runs.
:class:`DirtConfig` says how much of each; :data:`PROFILES` holds the presets
(``ideal``: none of it, the devnet as it always was; ``mainnet``: shares from
published crawls), and every knob is also a flag of ``ethcrawl devnet``.

:func:`plan_dead_records` and :func:`plan_events` are pure: the same seed
gives the same dirt.  Dead records (stale, NAT'd, sybil) need no socket, so a
devnet of 30,000 records needs sockets for its live nodes only: they are
entries in the live nodes' tables, at ``127.a.b.c`` addresses where nothing
listens (the crawler's relay filter refuses documentation ranges as special
addresses, and a dead loopback address is as dead as any).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields
from ipaddress import IPv4Address

from ethcrawl.wire.crypto import PrivateKey, keccak256, node_id_from_pubkey, pubkey_from_private

from .discovery import BOND_EXPIRATION

__all__ = [
    "DEAD_ADDRESS_FIRST_OCTET",
    "IDEAL",
    "MAINNET",
    "PROFILES",
    "DeadRecord",
    "DirtConfig",
    "NodeEvents",
    "Role",
    "derive_key",
    "draw_rtt",
    "plan_dead_records",
    "plan_events",
]

DEFAULT_PORT = 30303  # most stale records name the default port, as real ones do
DEFAULT_PORT_SHARE = 0.7  # of dead records; the rest a random port above 1024
MIN_PORT = 1025  # the crawler's relay filter refuses ports <= 1024
# Dead records live in 127.1.0.0-127.254.255.255; live nodes stay on 127.0.0.x (one
# address per 1,000 nodes), so no dead address ever has a socket behind it.
DEAD_ADDRESS_FIRST_OCTET = 1  # second octet of the first dead address: 127.1.x.x
DEAD_ADDRESS_LAST_OCTET = 254
SYBIL_OCTET = 255  # sybil clusters: 127.255.c.1, one /24 per cluster
# Per-node round trips: log-uniform between the bounds, skewed towards the fast end, so most
# nodes answer in tens of ms and a tail takes hundreds (published RTT spreads of public nodes).
RTT_SKEW = 1.5  # exponent on the uniform draw; 1 = log-uniform
KEY_DOMAIN = b"ethcrawl-devnet-dead-key"


class Role(str, enum.Enum):
    """What a devnet record is, as the manifest says."""

    LIVE = "live"  # a node with sockets: answers discovery (and RLPx, as its Kind says)
    STALE = "stale"  # the node is gone: nothing answers at its address
    STALE_OLD_KEY = "stale-old-key"  # a live node's address under the key it had before
    NAT = "nat"  # alive, behind NAT: in tables, never answers; some dial out
    SYBIL = "sybil"  # one of many ids on one IP:port or one IP; nothing answers


@dataclass(frozen=True, slots=True, kw_only=True)
class DirtConfig:
    """How far a devnet departs from the friendly one; the defaults are the ``ideal`` profile."""

    stale_share: float = 0.0  # of all records: nothing answers at their address
    old_key_share: float = 0.0  # of stale records: a live node's address, an old key
    nat_share: float = 0.0  # of all records: NAT'd nodes
    nat_dial_share: float = 0.0  # of NAT'd nodes: dial out to the --dial-out target, if one is given
    rtt_min: float = 0.0  # s, fastest per-node round trip
    rtt_max: float = 0.0  # s, slowest
    jitter: float = 0.0  # per-packet extra delay, at most this share of the node's round trip
    loss: float = 0.0  # per-packet drop rate, each direction
    bond_expiry: float = BOND_EXPIRATION  # s a node remembers an endpoint proof (geth: 24 h)
    ip_limits: bool = False  # geth's 2 per /24 per bucket, 10 per /24 per table, over the claimed addresses
    sybil_clusters: int = 0  # even ones share one IP:port, odd ones one IP
    sybil_size: int = 0  # ids per cluster
    enr_change_share: float = 0.0  # of live nodes: a new record (seq + 1, new TCP port) during the run
    churn_share: float = 0.0  # of live nodes: leave during the run; as many more join
    churn_window: float = 0.0  # s after the devnet is up within which changes, churn and dial-outs happen

    def __post_init__(self) -> None:
        for name in ("stale_share", "old_key_share", "nat_share", "nat_dial_share", "loss", "enr_change_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {value}")
        if self.stale_share + self.nat_share >= 1.0:
            raise ValueError("stale and NAT'd records must leave room for live nodes (stale_share + nat_share < 1)")
        if not 0.0 <= self.churn_share <= 0.5:
            raise ValueError(f"churn_share must be within 0..0.5 (as many join as leave), not {self.churn_share}")
        if not 0.0 <= self.rtt_min <= self.rtt_max:
            raise ValueError(f"round trips must satisfy 0 <= min <= max, not {self.rtt_min}..{self.rtt_max}")
        for name in ("jitter", "churn_window", "sybil_clusters", "sybil_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.bond_expiry <= 0:
            raise ValueError("bond_expiry must be positive")

    @property
    def has_dead_records(self) -> bool:
        return self.stale_share > 0 or self.nat_share > 0 or (self.sybil_clusters > 0 and self.sybil_size > 0)

    @property
    def shapes_links(self) -> bool:
        """Whether nodes need the lossy, slow transport (``lossy.LossyTransport``)."""
        return self.rtt_max > 0 or self.loss > 0

    def overridden(self, **changes: object) -> DirtConfig:
        """This profile with the given knobs changed (None values are left alone: flags not given)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown knobs: {', '.join(sorted(unknown))}")
        current = {name: getattr(self, name) for name in known}
        current.update({k: v for k, v in changes.items() if v is not None})
        return DirtConfig(**current)


IDEAL = DirtConfig()
# Shares from published crawls (most records a crawl hears of are dead; a sizeable share of the
# live ones sit behind NAT), round trips of public nodes, and UDP loss on long paths.
MAINNET = DirtConfig(
    stale_share=0.60,
    old_key_share=0.05,
    nat_share=0.10,
    nat_dial_share=0.30,
    rtt_min=0.020,
    rtt_max=0.400,
    jitter=0.10,
    loss=0.02,
    ip_limits=True,
    sybil_clusters=4,
    sybil_size=24,
    enr_change_share=0.01,
    churn_share=0.02,
    churn_window=120.0,
)
PROFILES: dict[str, DirtConfig] = {"ideal": IDEAL, "mainnet": MAINNET}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadRecord:
    """A table entry with no socket behind it."""

    index: int  # its number among all records: live nodes come first
    private_key: bytes
    pubkey: bytes
    node_id: bytes
    host: str
    port: int  # UDP and TCP; 0: the port of live node ``twin`` (known once it is bound)
    role: Role
    twin: int | None = None  # stale-old-key: the live node now at this address
    cluster: int | None = None  # sybil: which cluster
    dial_out_at: float | None = None  # NAT'd: s after start it dials the --dial-out target

    @property
    def subnet(self) -> int | None:
        """Its /24 for the planned tables' IP limits; None at a live node's (loopback-exempt) address."""
        return None if self.twin is not None else int(IPv4Address(self.host)) >> 8


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEvents:
    """What happens to one live node during the run (s after the devnet is up)."""

    rtt: float = 0.0  # s added to each of its answers
    join_at: float | None = None  # before this, no other node knows it
    leave_at: float | None = None  # its sockets close then
    enr_change_at: float | None = None  # it moves its TCP port and bumps its record's seq then


def derive_key(domain: bytes, seed: int, index: int) -> PrivateKey:
    """The devnet's key number ``index`` for ``seed`` in ``domain`` (live nodes and dead records have one each)."""
    counter = 0
    while True:
        seeded = domain + seed.to_bytes(8, "big", signed=True) + index.to_bytes(4, "big")
        secret = keccak256(seeded + bytes([counter]))
        try:
            return PrivateKey(secret)
        except ValueError:  # zero or >= the curve order: astronomically rare
            counter += 1


def _dead_host(rng: random.Random) -> str:
    second = rng.randint(DEAD_ADDRESS_FIRST_OCTET, DEAD_ADDRESS_LAST_OCTET)
    return f"127.{second}.{rng.randrange(256)}.{rng.randint(1, 254)}"


def _dead_port(rng: random.Random) -> int:
    return DEFAULT_PORT if rng.random() < DEFAULT_PORT_SHARE else rng.randint(MIN_PORT, 65535)


def _count(share: float, population: int) -> int:
    """``share`` of ``population``, at least one when the share is not zero (small test networks)."""
    return max(1, round(share * population)) if share > 0 and population > 0 else 0


def plan_dead_records(
    dirt: DirtConfig, hosts: Sequence[str], live_index: Sequence[int], seed: int, rng: random.Random
) -> list[DeadRecord]:
    """Stale, stale-old-key, NAT'd and sybil records for a devnet of live nodes on ``hosts`` (numbered after them).

    ``live_index`` lists the live nodes an old key may have belonged to (not
    the bootnode).  Shares are of all records: the live nodes are the rest.
    """
    live = len(hosts)
    total = live / (1.0 - dirt.stale_share - dirt.nat_share)
    stale = round(total * dirt.stale_share)
    nat = round(total * dirt.nat_share)
    old_keys = min(_count(dirt.old_key_share, stale), len(live_index), stale)
    twins = rng.sample(list(live_index), old_keys)
    plan: list[tuple[Role, str, int, int | None, int | None]] = []  # role, host, port, twin, cluster
    plan += [(Role.STALE_OLD_KEY, hosts[t], 0, t, None) for t in twins]
    plan += [(Role.STALE, _dead_host(rng), _dead_port(rng), None, None) for _ in range(stale - old_keys)]
    plan += [(Role.NAT, _dead_host(rng), _dead_port(rng), None, None) for _ in range(nat)]
    for c in range(dirt.sybil_clusters):
        address = f"127.{SYBIL_OCTET}.{c % 256}.1"
        shared = _dead_port(rng)
        for _ in range(dirt.sybil_size):
            # Even clusters: every id on one endpoint; odd ones: one IP, a port each.
            plan.append((Role.SYBIL, address, shared if c % 2 == 0 else rng.randint(MIN_PORT, 65535), None, c))
    dialers = set(rng.sample(range(nat), _count(dirt.nat_dial_share, nat))) if nat else set()
    records = []
    nat_seen = 0
    for offset, (role, host, record_port, twin, cluster) in enumerate(plan):
        key = derive_key(KEY_DOMAIN, seed, offset)
        pubkey = pubkey_from_private(key)
        dial_out_at = None
        if role is Role.NAT:
            if nat_seen in dialers:
                dial_out_at = rng.uniform(0.0, dirt.churn_window)
            nat_seen += 1
        records.append(
            DeadRecord(
                index=live + offset, private_key=key.secret, pubkey=pubkey, node_id=node_id_from_pubkey(pubkey),
                host=host, port=record_port, role=role, twin=twin, cluster=cluster, dial_out_at=dial_out_at,
            )
        )
    return records


def draw_rtt(dirt: DirtConfig, rng: random.Random) -> float:
    """One node's round trip: between the bounds, most near the fast end, a heavy tail towards the slow one."""
    if dirt.rtt_max <= 0:
        return 0.0
    low = max(dirt.rtt_min, dirt.rtt_max / 1000)  # log scale needs a positive floor
    return float(low * (dirt.rtt_max / low) ** (rng.random() ** RTT_SKEW))


def plan_events(
    dirt: DirtConfig, live: int, eligible: Sequence[int], changers: Sequence[int], rng: random.Random
) -> list[NodeEvents]:
    """Per live node: its round trip, and whether and when it joins, leaves or changes its record.

    ``eligible`` may join or leave (never the bootnode); ``changers`` may change
    their record (nodes with an RLPx listener and EIP-868).  A node does at
    most one of the three.
    """
    rtts = [draw_rtt(dirt, rng) for _ in range(live)]
    churn = min(_count(dirt.churn_share, live), len(eligible) // 2)
    movers = rng.sample(list(eligible), 2 * churn)
    leavers, joiners = set(movers[:churn]), set(movers[churn:])
    free = [i for i in changers if i not in leavers and i not in joiners]
    enr_changers = set(rng.sample(free, min(_count(dirt.enr_change_share, live), len(free))))

    def when(chosen: set[int], i: int) -> float | None:
        return rng.uniform(0.0, dirt.churn_window) if i in chosen else None

    return [
        NodeEvents(
            rtt=rtts[i], join_at=when(joiners, i), leave_at=when(leavers, i), enr_change_at=when(enr_changers, i)
        )
        for i in range(live)
    ]
