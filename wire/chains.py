"""Known chain configurations (genesis hash and fork schedule), kept as data.

The configs live in ``data/chains.json`` inside the package, so a crawler
classifies fork ids without any file outside its install.  Adding a network is
a data change: append an entry there (the loader validates it at import).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

__all__ = [
    "Fork",
    "Chain",
    "CHAINS",
    "load_chains",
    "chain_by_name",
    "chain_by_network_id",
    "chain_by_genesis",
]

#: The package resource holding the configs.
CHAINS_RESOURCE = "data/chains.json"

#: Largest block number or timestamp a fork id can carry (FORK_NEXT is a uint64).
MAX_FORK_POINT = 2**64 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Fork:
    """One scheduled upgrade, activated at a block number or at a block time."""

    name: str
    block: int | None = None
    time: int | None = None

    def __post_init__(self) -> None:
        if (self.block is None) == (self.time is None):
            raise ValueError(f"fork {self.name!r} needs exactly one of block or time")
        if not 0 <= self.at <= MAX_FORK_POINT:
            raise ValueError(f"fork {self.name!r} activation {self.at} out of uint64 range")

    @property
    def at(self) -> int:
        """The activation point: a block number, or a unix time for time-based forks."""
        return self.block if self.block is not None else self.time  # type: ignore[return-value]

    @property
    def by_time(self) -> bool:
        return self.time is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Chain:
    """A network as far as fork ids see it: genesis hash plus the fork schedule."""

    name: str
    chain_id: int
    network_id: int
    genesis_hash: bytes
    forks: tuple[Fork, ...]

    def __post_init__(self) -> None:
        if len(self.genesis_hash) != 32:
            raise ValueError(f"chain {self.name!r}: genesis hash must be 32 bytes")
        # EIP-2124 feeds block forks first, then time forks; a schedule that
        # interleaves them (or goes backwards) would make fork names ambiguous.
        seen_time = False
        last = {False: 0, True: 0}
        for fork in self.forks:
            if seen_time and not fork.by_time:
                raise ValueError(f"chain {self.name!r}: block fork {fork.name} after a time fork")
            seen_time = seen_time or fork.by_time
            if fork.at < last[fork.by_time]:
                raise ValueError(f"chain {self.name!r}: fork {fork.name} is out of order")
            last[fork.by_time] = fork.at


def _chain_from_json(entry: Mapping[str, Any]) -> Chain:
    forks = tuple(
        Fork(name=f["name"], block=f.get("block"), time=f.get("time")) for f in entry["forks"]
    )
    return Chain(
        name=entry["name"],
        chain_id=int(entry["chain_id"]),
        network_id=int(entry["network_id"]),
        genesis_hash=bytes.fromhex(entry["genesis_hash"]),
        forks=forks,
    )


def load_chains(text: str) -> Mapping[str, Chain]:
    """Parse a ``chains.json`` document into a read-only ``{name: Chain}`` map."""
    document = json.loads(text)
    chains = {}
    for entry in document["chains"]:
        chain = _chain_from_json(entry)
        if chain.name in chains:
            raise ValueError(f"chain {chain.name!r} listed twice")
        chains[chain.name] = chain
    return MappingProxyType(chains)


#: Every network we know, by name ("mainnet", "sepolia", "holesky", "hoodi").
CHAINS: Mapping[str, Chain] = load_chains(
    resources.files(__package__ or "ethcrawl.wire").joinpath(CHAINS_RESOURCE).read_text(encoding="utf-8")
)


def chain_by_name(name: str, chains: Mapping[str, Chain] = CHAINS) -> Chain | None:
    return chains.get(name.lower())


def chain_by_network_id(network_id: int, chains: Mapping[str, Chain] = CHAINS) -> Chain | None:
    """The chain with this eth Status ``networkid``, or None if we know none."""
    return next((c for c in chains.values() if c.network_id == network_id), None)


def chain_by_genesis(genesis_hash: bytes, chains: Mapping[str, Chain] = CHAINS) -> Chain | None:
    """The chain with this genesis block hash, or None if we know none."""
    return next((c for c in chains.values() if c.genesis_hash == genesis_hash), None)
