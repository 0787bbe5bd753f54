"""Fork identifiers (EIP-2124): compute them, name them, and check a peer's.

A fork id is ``[FORK_HASH, FORK_NEXT]``: the CRC32 of the genesis hash and every
passed fork point, and the next fork point we know of (0 for none).  Block
forks are fed before time forks (EIP-6122 extends EIP-2124 with timestamps);
forks at 0 are part of the genesis ruleset and points shared by several forks
count once.

Three uses, all pure functions of the chain data in :mod:`.chains`:

- :func:`fork_id` — what a node at ``(head_block, head_time)`` announces;
- :func:`classify` — which network and fork a peer's announced id belongs to,
  and whether it announces the upgrade we know is next (a crawler's question);
- :func:`validate` — the EIP-2124 connect/reject rules (a peer's question).
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass
from typing import Mapping

from .chains import CHAINS, Chain
from .errors import LocalProtocolError, MalformedMessage
from .rlpcodec import Item, as_bytes, as_list, as_uint, encode_uint

__all__ = [
    "ForkId",
    "ForkEpoch",
    "fork_id",
    "fork_hashes",
    "Readiness",
    "ForkClassification",
    "classify",
    "ForkCheck",
    "validate",
    "TIMESTAMP_THRESHOLD",
]

#: A FORK_NEXT above this is a unix time, not a block number (geth's
#: ``timestampThreshold``: mainnet's genesis time, 2015-07-30, which no block
#: number will reach for centuries).
TIMESTAMP_THRESHOLD = 1438269973

#: Name of the epoch before any fork, when the genesis ruleset is Frontier.
GENESIS_FORK_NAME = "Frontier"

_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkId:
    """``[fork_hash, fork_next]``: CRC32 of genesis hash and past forks, next fork point."""

    hash: bytes
    next: int

    def __post_init__(self) -> None:
        if len(self.hash) != 4:
            raise ValueError(f"fork hash must be 4 bytes, got {len(self.hash)}")
        if not 0 <= self.next < 2**64:
            raise ValueError(f"fork next {self.next} out of uint64 range")

    def to_rlp_item(self) -> list[bytes]:
        return [self.hash, encode_uint(self.next)]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "ForkId":
        """Decode ``[hash, next]``; extra trailing elements are tolerated (EIP-8 style)."""
        fields = as_list(item, "forkid", min_len=2)
        fork_hash = as_bytes(fields[0], "forkid.hash", length=4)
        try:
            return cls(hash=fork_hash, next=as_uint(fields[1], "forkid.next"))
        except ValueError as exc:  # pragma: no cover - as_uint already bounds it
            raise MalformedMessage(str(exc)) from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkEpoch:
    """The span between two fork points, during which a node announces one fork id.

    ``name`` is the last fork activated when the epoch begins ("Frontier" for a
    chain's first epoch unless forks are in its genesis ruleset); ``forks``
    lists every fork activated at that point (several can share one).
    ``start`` is the block or time the epoch begins (0 for genesis), ``next``
    the point where it ends (0 for the last epoch we know).
    """

    name: str
    forks: tuple[str, ...]
    start: int
    by_time: bool
    hash: bytes
    next: int

    @property
    def fork_id(self) -> ForkId:
        return ForkId(hash=self.hash, next=self.next)


def _checksum_update(crc: int, point: int) -> int:
    return zlib.crc32(point.to_bytes(8, "big"), crc)


def _schedule(chain: Chain) -> list[tuple[int, bool, list[str]]]:
    """Fork points in checksum order: ``(point, by_time, fork names)``.

    Block points first, then time points; each ascending, deduplicated, and
    without 0 (a fork at genesis is part of the genesis ruleset, not a fork).
    """
    points: list[tuple[int, bool, list[str]]] = []
    for by_time in (False, True):
        grouped: dict[int, list[str]] = {}
        for fork in chain.forks:
            if fork.by_time == by_time and fork.at != 0:
                grouped.setdefault(fork.at, []).append(fork.name)
        points.extend((at, by_time, names) for at, names in sorted(grouped.items()))
    return points


def _genesis_name(chain: Chain) -> tuple[str, tuple[str, ...]]:
    at_genesis = tuple(f.name for f in chain.forks if f.at == 0)
    return (at_genesis[-1] if at_genesis else GENESIS_FORK_NAME), at_genesis


def fork_hashes(chain: Chain) -> tuple[ForkEpoch, ...]:
    """Every epoch of ``chain`` in order, each with the fork id nodes in it announce."""
    schedule = _schedule(chain)
    crc = zlib.crc32(chain.genesis_hash)
    name, at_genesis = _genesis_name(chain)
    epochs = []
    start, by_time, forks = 0, False, at_genesis
    for point, point_by_time, names in schedule:
        epochs.append(
            ForkEpoch(
                name=name, forks=forks, start=start, by_time=by_time,
                hash=crc.to_bytes(4, "big"), next=point,
            )
        )
        crc = _checksum_update(crc, point)
        name, start, by_time, forks = names[-1], point, point_by_time, tuple(names)
    epochs.append(
        ForkEpoch(
            name=name, forks=forks, start=start, by_time=by_time,
            hash=crc.to_bytes(4, "big"), next=0,
        )
    )
    return tuple(epochs)


def _current_epoch(chain: Chain, head_block: int, head_time: int) -> int:
    """Index into :func:`fork_hashes` of the epoch a node at this head is in."""
    schedule = _schedule(chain)
    for index, (point, by_time, _names) in enumerate(schedule):
        # Forks pass in checksum order: the first unpassed point ends the scan,
        # so a time fork never counts as passed before an earlier block fork.
        if (head_time if by_time else head_block) < point:
            return index
    return len(schedule)


def _check_head(head_block: int, head_time: int) -> None:
    if not (0 <= head_block <= _UINT64_MAX and 0 <= head_time <= _UINT64_MAX):
        raise LocalProtocolError(f"head ({head_block}, {head_time}) out of uint64 range")


def fork_id(chain: Chain, head_block: int, head_time: int) -> ForkId:
    """The fork id a node of ``chain`` announces at head block number and block time."""
    _check_head(head_block, head_time)
    return fork_hashes(chain)[_current_epoch(chain, head_block, head_time)].fork_id


# -- classification (what a crawler wants to know about a peer) ---------------


class Readiness(enum.Enum):
    """How a peer's FORK_NEXT compares with the next fork we know for its epoch."""

    #: Announces exactly the next fork we know (or nothing, when none is scheduled).
    READY = "ready"
    #: Announces no next fork though one is scheduled after its epoch: old software.
    STALE = "stale"
    #: Announces a next fork we do not know (newer software, or another schedule).
    UNKNOWN_NEXT = "unknown-next"
    #: The fork hash belongs to no epoch of any chain we know.
    UNKNOWN_NETWORK = "unknown-network"


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkClassification:
    """Which network and fork a fork id belongs to, and whether it is upgrade-ready."""

    network: str | None
    fork: str | None
    epoch: ForkEpoch | None
    readiness: Readiness
    announced_next: int

    @property
    def known(self) -> bool:
        return self.network is not None

    @property
    def latest(self) -> bool:
        """True when the peer is in the last epoch we know of for its network."""
        return self.epoch is not None and self.epoch.next == 0


def _hash_index(chains: Mapping[str, Chain]) -> dict[bytes, tuple[str, ForkEpoch]]:
    index: dict[bytes, tuple[str, ForkEpoch]] = {}
    for name, chain in chains.items():
        for epoch in fork_hashes(chain):
            # A CRC32 collision between two known networks would be news; keep
            # the first so the answer is at least deterministic.
            index.setdefault(epoch.hash, (name, epoch))
    return index


_DEFAULT_INDEX = _hash_index(CHAINS)


def classify(remote: ForkId, chains: Mapping[str, Chain] = CHAINS) -> ForkClassification:
    """Name the network and fork of ``remote`` and judge its FORK_NEXT."""
    index = _DEFAULT_INDEX if chains is CHAINS else _hash_index(chains)
    found = index.get(remote.hash)
    if found is None:
        return ForkClassification(
            network=None, fork=None, epoch=None,
            readiness=Readiness.UNKNOWN_NETWORK, announced_next=remote.next,
        )
    network, epoch = found
    if remote.next == epoch.next:
        readiness = Readiness.READY
    elif remote.next == 0:
        readiness = Readiness.STALE
    else:
        readiness = Readiness.UNKNOWN_NEXT
    return ForkClassification(
        network=network, fork=epoch.name, epoch=epoch,
        readiness=readiness, announced_next=remote.next,
    )


# -- validation (EIP-2124 "Validation rules") ---------------------------------


class ForkCheck(enum.Enum):
    """Outcome of the EIP-2124 validation rules; the value names the rule."""

    #: Rule 1b: same fork state, and the remote's next fork has not passed locally.
    SAME_FORK = "1b"
    #: Rule 2: remote is behind us on our chain and announces our following fork.
    REMOTE_SYNCING = "2"
    #: Rule 3: remote is ahead of us on a fork schedule we know.
    LOCAL_SYNCING = "3"
    #: Rule 1a: remote announces a fork we already passed without it (geth's
    #: ErrLocalIncompatibleOrStale).
    REMOTE_FORK_PASSED = "1a"
    #: Rule 2 failing: remote is on a past epoch of ours but does not know the
    #: fork that ended it (geth's ErrRemoteStale).
    REMOTE_STALE = "2-stale"
    #: Rule 4: no match at all: another chain, or we need a software update.
    INCOMPATIBLE = "4"

    @property
    def ok(self) -> bool:
        return self in (ForkCheck.SAME_FORK, ForkCheck.REMOTE_SYNCING, ForkCheck.LOCAL_SYNCING)


def validate(local: Chain, head_block: int, head_time: int, remote: ForkId) -> ForkCheck:
    """Apply the EIP-2124 rules for a node of ``local`` at this head meeting ``remote``."""
    _check_head(head_block, head_time)
    epochs = fork_hashes(local)
    current = _current_epoch(local, head_block, head_time)
    ours = epochs[current]
    if remote.hash == ours.hash:
        # Rule 1: same fork state.  FORK_NEXT is a block number or a time;
        # geth tells them apart by size (TIMESTAMP_THRESHOLD).
        if remote.next != 0 and (
            (remote.next <= head_block)
            or (remote.next > TIMESTAMP_THRESHOLD and remote.next <= head_time)
        ):
            return ForkCheck.REMOTE_FORK_PASSED  # rule 1a
        return ForkCheck.SAME_FORK  # rule 1b
    for past in epochs[:current]:
        if past.hash == remote.hash:
            # Rule 2: remote is a subset of our past forks; it must know the
            # fork that ended its epoch, or it will never follow us.
            return ForkCheck.REMOTE_SYNCING if past.next == remote.next else ForkCheck.REMOTE_STALE
    if any(future.hash == remote.hash for future in epochs[current + 1 :]):
        return ForkCheck.LOCAL_SYNCING  # rule 3: remote is a superset we can complete
    return ForkCheck.INCOMPATIBLE  # rule 4
