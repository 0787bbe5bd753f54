"""Which part of Ethereum a node record belongs to: execution, consensus or other.

A discovery DHT (v5 above all) holds records of three kinds, told apart by
their keys:

* **execution** -- an ``eth`` entry ``[[fork_hash, fork_next], ...]`` (EIP-2124
  fork id; devp2p ``enr-entries/eth.md``), named through ``forkid.classify``;
* **consensus** -- an ``eth2`` entry, the SSZ ``ENRForkID``
  ``fork_digest(4) || next_fork_version(4) || next_fork_epoch(8, LE)``, plus the
  ``attnets`` (bitvector[64]) and ``syncnets`` (bitvector[4]) subnet bitfields
  (consensus-specs ``phase0/p2p-interface.md``, ``altair/p2p-interface.md``);
* **other** -- neither: portal, L2s, tools, bare discv5 nodes.

A record with both ``eth`` and ``eth2`` is classified **consensus**, with both
sets of fields filled in.  No client we know writes both into one record: a
beacon node and its execution client run separate discovery stacks with
separate keys.  A record that has ``eth2`` was therefore written by a beacon
node's networking stack, whose ``tcp`` port is libp2p, not RLPx: calling it
"execution" would send an RLPx dial to a port that cannot answer it.

Fork digests are computed, not listed: ``sha256(version || 28 zero bytes ||
genesis_validators_root)[:4]`` (``compute_fork_data_root``), and from Fulu on
XORed with ``sha256(le64(epoch) || le64(max_blobs_per_block))[:4]`` of the blob
parameters active at that epoch (EIP-7892, consensus-specs ``fulu/beacon-chain.md``
``compute_fork_digest``).  The per-network versions, epochs, blob schedules and
genesis validators roots are data in ``data/consensus_forks.json``.

Reading never fails: :func:`classify` takes any decoded record and returns a
:class:`Classification`; a known key with an odd value leaves its fields None
and adds a short note to ``problems`` (``@chainsafe/enr``'s ``eth`` written as
a byte string holding RLP is read, as ``ENR.eth`` reads it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Mapping

from .enr import ENR, _key_text
from .forkid import ForkId
from .forkid import classify as classify_fork_id

__all__ = [
    "LAYERS",
    "EXECUTION",
    "CONSENSUS",
    "OTHER",
    "ConsensusFork",
    "ConsensusNetwork",
    "CONSENSUS_NETWORKS",
    "compute_fork_digest",
    "fork_digests",
    "consensus_fork_by_digest",
    "Classification",
    "classify",
]

EXECUTION: Final = "execution"
CONSENSUS: Final = "consensus"
OTHER: Final = "other"
LAYERS = (EXECUTION, CONSENSUS, OTHER)

#: The package resource holding the consensus network configs.
CONSENSUS_RESOURCE = "data/consensus_forks.json"

ENR_FORK_ID_SIZE = 16  # bytes: fork_digest(4) + next_fork_version(4) + next_fork_epoch(8)
FORK_DIGEST_SIZE = 4  # bytes
FORK_VERSION_SIZE = 4  # bytes
ROOT_SIZE = 32  # bytes, an SSZ hash_tree_root
ATTNETS_SIZE = 8  # bytes: ATTESTATION_SUBNET_COUNT = 64 bits
SYNCNETS_SIZE = 1  # byte: SYNC_COMMITTEE_SUBNET_COUNT = 4 bits, the upper 4 must be zero
SYNCNETS_BITS = 4

# Keys whose values classification or the record itself reads; every other key is
# reported by name in ``other_keys``.
_INTERPRETED_KEYS = frozenset(
    (b"id", b"secp256k1", b"ip", b"ip6", b"udp", b"tcp", b"udp6", b"tcp6", b"eth", b"eth2", b"attnets", b"syncnets")
)


# ---------------------------------------------------------------- consensus networks


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusFork:
    """One digest a beacon node of ``network`` can announce, and the fork it means.

    ``name`` is a consensus fork ("Phase0" .. "Fulu") or a blob-parameter-only
    fork ("BPO1"), whose digest changes although its ``version`` does not.
    """

    network: str
    name: str
    version: bytes
    epoch: int
    digest: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusNetwork:
    name: str
    genesis_time: int  # unix s; fork epochs start at genesis_time + epoch * 384
    genesis_validators_root: bytes
    # (name, version, epoch) in activation order.
    forks: tuple[tuple[str, bytes, int], ...]
    # (name, epoch, max_blobs_per_block): EIP-7892 blob-parameter-only forks.
    blob_schedule: tuple[tuple[str, int, int], ...]
    max_blobs_per_block_electra: int

    def __post_init__(self) -> None:
        if len(self.genesis_validators_root) != ROOT_SIZE:
            raise ValueError(f"{self.name}: genesis_validators_root must be {ROOT_SIZE} bytes")
        names = [name for name, _, _ in self.forks]
        if any(len(version) != FORK_VERSION_SIZE for _, version, _ in self.forks):
            raise ValueError(f"{self.name}: fork versions must be {FORK_VERSION_SIZE} bytes")
        if [e for _, _, e in self.forks] != sorted(e for _, _, e in self.forks):
            raise ValueError(f"{self.name}: forks out of epoch order")
        if "Electra" not in names:
            raise ValueError(f"{self.name}: Electra is needed for the pre-BPO blob parameters")

    def epoch_of(self, fork: str) -> int | None:
        return next((epoch for name, _, epoch in self.forks if name == fork), None)

    def blob_parameters(self, epoch: int) -> tuple[int, int]:
        """consensus-specs fulu ``get_blob_parameters``: (epoch, max blobs) in force at ``epoch``."""
        for _name, start, max_blobs in sorted(self.blob_schedule, key=lambda entry: entry[1], reverse=True):
            if epoch >= start:
                return start, max_blobs
        electra = self.epoch_of("Electra")
        assert electra is not None  # checked in __post_init__
        return electra, self.max_blobs_per_block_electra


def compute_fork_digest(
    version: bytes, genesis_validators_root: bytes, blob_parameters: tuple[int, int] | None = None
) -> bytes:
    """The 4-byte fork digest; pass ``blob_parameters`` (epoch, max blobs) from Fulu on."""
    # hash_tree_root(ForkData) of two 32-byte chunks is one sha256 over them.
    base = hashlib.sha256(version.ljust(ROOT_SIZE, b"\x00") + genesis_validators_root).digest()
    if blob_parameters is None:
        return base[:FORK_DIGEST_SIZE]
    epoch, max_blobs = blob_parameters
    mask = hashlib.sha256(epoch.to_bytes(8, "little") + max_blobs.to_bytes(8, "little")).digest()
    return bytes(a ^ b for a, b in zip(base[:FORK_DIGEST_SIZE], mask[:FORK_DIGEST_SIZE]))


def fork_digests(network: ConsensusNetwork) -> tuple[ConsensusFork, ...]:
    """Every digest of ``network``: one per fork version, one per blob-parameter fork.

    Forks that share an epoch (several at genesis on testnets) each get their
    own digest: a node that never upgraded still announces its old one.
    """
    fulu = network.epoch_of("Fulu")
    out: list[ConsensusFork] = []
    for name, version, epoch in network.forks:
        params = network.blob_parameters(epoch) if fulu is not None and epoch >= fulu and name == "Fulu" else None
        digest = compute_fork_digest(version, network.genesis_validators_root, params)
        out.append(ConsensusFork(network=network.name, name=name, version=version, epoch=epoch, digest=digest))
    if fulu is not None:
        fulu_version = next(v for n, v, _ in network.forks if n == "Fulu")
        for name, epoch, max_blobs in network.blob_schedule:
            digest = compute_fork_digest(fulu_version, network.genesis_validators_root, (epoch, max_blobs))
            out.append(ConsensusFork(network=network.name, name=name, version=fulu_version, epoch=epoch, digest=digest))
    return tuple(out)


def _load_networks(text: str) -> Mapping[str, ConsensusNetwork]:
    document: dict[str, Any] = json.loads(text)
    electra_blobs = int(document["max_blobs_per_block_electra"])
    networks: dict[str, ConsensusNetwork] = {}
    for entry in document["networks"]:
        network = ConsensusNetwork(
            name=entry["name"],
            genesis_time=int(entry["genesis_time"]),
            genesis_validators_root=bytes.fromhex(entry["genesis_validators_root"]),
            forks=tuple((f["name"], bytes.fromhex(f["version"]), int(f["epoch"])) for f in entry["forks"]),
            blob_schedule=tuple(
                (b["name"], int(b["epoch"]), int(b["max_blobs_per_block"])) for b in entry["blob_schedule"]
            ),
            max_blobs_per_block_electra=electra_blobs,
        )
        if network.name in networks:
            raise ValueError(f"consensus network {network.name!r} listed twice")
        networks[network.name] = network
    return MappingProxyType(networks)


#: Consensus networks we know, by name ("mainnet", "sepolia", "holesky", "hoodi").
CONSENSUS_NETWORKS: Mapping[str, ConsensusNetwork] = _load_networks(
    resources.files(__package__ or "ethcrawl.wire").joinpath(CONSENSUS_RESOURCE).read_text(encoding="utf-8")
)


def _digest_index(networks: Mapping[str, ConsensusNetwork]) -> dict[bytes, ConsensusFork]:
    index: dict[bytes, ConsensusFork] = {}
    for network in networks.values():
        for fork in fork_digests(network):
            # A 32-bit collision between two networks would be news; keep the first, deterministically.
            index.setdefault(fork.digest, fork)
    return index


_DIGESTS = _digest_index(CONSENSUS_NETWORKS)


def consensus_fork_by_digest(digest: bytes) -> ConsensusFork | None:
    """The network and fork a fork digest belongs to, or None for one we do not know."""
    return _DIGESTS.get(digest)


# ---------------------------------------------------------------- classification


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """What a record says about its node.  Fields a record does not carry are None.

    ``other_keys`` names every key not interpreted here (e.g. ``snap``, ``les``,
    ``quic``, ``cgc``), sorted; ``problems`` holds a short note per known key
    whose value could not be read.
    """

    layer: str
    # execution (eth entry)
    fork_id: ForkId | None = None
    execution_network: str | None = None
    execution_fork: str | None = None
    # consensus (eth2 / attnets / syncnets)
    fork_digest: bytes | None = None
    next_fork_version: bytes | None = None
    next_fork_epoch: int | None = None
    consensus_network: str | None = None
    consensus_fork: str | None = None
    attnets_count: int | None = None
    syncnets_count: int | None = None
    other_keys: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"layer {self.layer!r} is not one of {', '.join(LAYERS)}")


def _shape(value: object) -> str:
    return "a list" if isinstance(value, list) else f"{len(value)} bytes" if isinstance(value, bytes) else "odd"


def _bit_count(record: ENR, key: bytes, size: int, bits: int, problems: list[str]) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, bytes) or len(value) != size:
        problems.append(f"{key.decode()}: {_shape(value)}, expected {size} bytes")
        return None
    number = int.from_bytes(value, "little")
    if number >> bits:
        # SSZ requires the padding bits of a bitvector to be zero.
        problems.append(f"{key.decode()}: bits set beyond the {bits} subnets")
        return None
    return number.bit_count()


def classify(record: ENR) -> Classification:
    """Layer, fork and subnet facts of ``record``; never raises for a decoded record."""
    problems: list[str] = []
    fields: dict[str, Any] = {}

    has_eth = record.get(b"eth") is not None
    if has_eth:
        fork_ids = record.eth  # reads the nested list and the @chainsafe/enr byte-string form
        if fork_ids:
            found = classify_fork_id(fork_ids[0])
            fields.update(fork_id=fork_ids[0], execution_network=found.network, execution_fork=found.fork)
        else:
            problems.append("eth: not a [[fork_hash, fork_next]] entry")

    eth2 = record.get(b"eth2")
    has_eth2 = eth2 is not None
    if has_eth2:
        if isinstance(eth2, bytes) and len(eth2) == ENR_FORK_ID_SIZE:
            digest = eth2[:FORK_DIGEST_SIZE]
            fork = consensus_fork_by_digest(digest)
            fields.update(
                fork_digest=digest,
                next_fork_version=eth2[FORK_DIGEST_SIZE : FORK_DIGEST_SIZE + FORK_VERSION_SIZE],
                next_fork_epoch=int.from_bytes(eth2[FORK_DIGEST_SIZE + FORK_VERSION_SIZE :], "little"),
                consensus_network=None if fork is None else fork.network,
                consensus_fork=None if fork is None else fork.name,
            )
        else:
            problems.append(f"eth2: {_shape(eth2)}, expected {ENR_FORK_ID_SIZE} bytes")
    fields["attnets_count"] = _bit_count(record, b"attnets", ATTNETS_SIZE, 8 * ATTNETS_SIZE, problems)
    fields["syncnets_count"] = _bit_count(record, b"syncnets", SYNCNETS_SIZE, SYNCNETS_BITS, problems)

    layer = CONSENSUS if has_eth2 else EXECUTION if has_eth else OTHER
    other = tuple(sorted(_key_text(key) for key in record.pairs if key not in _INTERPRETED_KEYS))
    return Classification(layer=layer, other_keys=other, problems=tuple(problems), **fields)
