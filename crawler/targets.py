"""FINDNODE targets that land in a chosen bucket of a peer's table.

A discv4 FINDNODE names a 64-byte target; the peer answers with the 16 nodes
of its table closest to ``keccak256(target)`` (geth: ``findnodeByID`` on the
target's hash).  The peer never checks that the target is a curve point, so
any 64 bytes will do, and we can pick inputs whose hash falls where we want.

Why one target per bucket enumerates a table.  Let the peer's id be ``P`` and
``H = keccak256(target)`` with ``log_distance(H, P) = d``: H agrees with P
above bit ``d`` and differs at bit ``d``.  Every node N of the peer's bucket at
distance ``d`` does the same, so ``N XOR H < 2**(d-1)``; every other node
differs from H at some bit ``>= d``, so ``N XOR H >= 2**(d-1)``.  The whole
bucket is therefore closer to H than anything else, and since a bucket holds
at most 16 nodes, the reply contains all of it (topped up with nodes from the
neighbouring buckets).  This holds for any XOR-metric table, not only geth's.
Caveat: geth answers with *liveness-checked* entries only when it has any
(``preferLive``), so what we see of a bucket is its verified part.

Which distances.  A geth table has 17 buckets (see :mod:`.table`): buckets
1..16 hold log distances 241..256, which are fixed by the top 16 bits of H;
bucket 0 holds every distance ``<= 240``, i.e. every id whose top 16 bits equal
P's.  So a 16-bit prefix of the hash is all we ever need to control:

* distance ``d`` in 241..256: prefix ``top16(P) XOR (1 << (d - 241))``, giving
  exactly ``log_distance(H, P) == d``;
* bucket 0: prefix ``top16(P)`` itself (no bit flipped: flipping any bit of the
  top 16 would leave bucket 0), giving ``log_distance(H, P) <= 240``.  We label
  it distance 240 (:data:`BUCKET0_DISTANCE`); any requested ``d <= 240`` means it.

The order we ask in, :data:`CRAWL_DISTANCES`, is 256, 255, ..., 241, 240: half
of a random network sits at distance 256 from any peer, a quarter at 255, and
so on, so the first answers are the fullest.

Where the inputs come from.  We need, for each of the 65536 prefixes, one input
whose hash starts with it.  Searching for them takes ~707k keccak256 calls (a
coupon collector over 65536 prefixes): about 2.7 s in CPython on the machine
this was written on.  Instead of paying that at every start (or keeping a cache
file in the user's home that can go stale, be half-written or be missing), we
commit the answer: for each prefix the smallest counter ``i`` such that
``keccak256(i as a 64-byte big-endian number)`` starts with it, 4 bytes per
prefix, 256 KiB (``data/findnode_targets.bin``).  It is deterministic, so a
reviewer can regenerate it bit for bit (``python tools/gen_findnode_targets.py
--check``); loading it is one file read and one keccak over it (about 1 ms);
and the tests re-hash every entry.  If the file is missing (an install without
the package data) :meth:`TargetTable.default` regenerates it in memory, with a
warning.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Iterable, Sequence

from ethcrawl.wire.crypto import keccak256
from ethcrawl.wire.errors import LocalProtocolError

from .table import BUCKET_MIN_DISTANCE, HASH_BITS, ID_LENGTH

__all__ = [
    "TargetTable",
    "CorruptTargetTable",
    "targets_for_peer",
    "generate_counters",
    "target_input",
    "hash_prefix",
    "PREFIX_BITS",
    "TARGET_LENGTH",
    "COUNTER_BYTES",
    "BUCKET0_DISTANCE",
    "CRAWL_DISTANCES",
    "DATA_FILE",
    "DATA_FILE_KECCAK",
]

log = logging.getLogger(__name__)

TARGET_LENGTH = 64  # bytes: a FINDNODE target is a raw public key's size
# The top 16 bits of a hash fix its log distance to a peer down to 241, below
# which geth's table has a single bucket; so 16 bits reach every bucket.
PREFIX_BITS = HASH_BITS - BUCKET_MIN_DISTANCE - 1  # 16
COUNTER_BYTES = 4  # per prefix in the data file; the largest counter is 706,614
BUCKET0_DISTANCE = BUCKET_MIN_DISTANCE + 1  # 240: the label for geth's merged bucket 0
# Most populated buckets first: distance 256 holds half of a random network.
CRAWL_DISTANCES: tuple[int, ...] = tuple(range(HASH_BITS, BUCKET0_DISTANCE - 1, -1))
DATA_FILE = Path(__file__).resolve().parent / "data" / "findnode_targets.bin"
# keccak256 of DATA_FILE, so a truncated or altered copy is refused at load time.
DATA_FILE_KECCAK = bytes.fromhex(
    "62ce0249a9327270ccf7c224b5be4607367bd06a062e457c09d45f62d42497b6"
)


class CorruptTargetTable(ValueError):
    """Raised when a target table's bytes are the wrong size or do not hash as committed."""


def target_input(counter: int) -> bytes:
    """The 64-byte FINDNODE target for ``counter``: the counter as a big-endian number."""
    return counter.to_bytes(TARGET_LENGTH, "big")


def hash_prefix(hash_: bytes, bits: int = PREFIX_BITS) -> int:
    """The top ``bits`` bits of a 32-byte hash (or node id), as a number."""
    return int.from_bytes(hash_, "big") >> (HASH_BITS - bits)


def generate_counters(prefix_bits: int = PREFIX_BITS) -> list[int]:
    """For each ``prefix_bits``-bit prefix, the smallest counter whose target hashes to it.

    Deterministic: the data file is exactly ``generate_counters()`` packed as
    big-endian ``COUNTER_BYTES``-byte numbers.  ~707k hashes for 16 bits.
    """
    if not 1 <= prefix_bits <= PREFIX_BITS:
        raise LocalProtocolError(f"prefix_bits must be 1..{PREFIX_BITS}, got {prefix_bits}")
    size = 1 << prefix_bits
    counters = [-1] * size
    missing = size
    counter = 0
    while missing:
        prefix = hash_prefix(keccak256(target_input(counter)), prefix_bits)
        if counters[prefix] < 0:
            counters[prefix] = counter
            missing -= 1
        counter += 1
    return counters


class TargetTable:
    """For every 16-bit hash prefix, a 64-byte FINDNODE target whose keccak256 has it."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        """``data``: 65536 big-endian ``COUNTER_BYTES``-byte counters, prefix order."""
        expected = (1 << PREFIX_BITS) * COUNTER_BYTES
        if len(data) != expected:
            raise CorruptTargetTable(f"target table must be {expected} bytes, got {len(data)}")
        self._data = bytes(data)

    @classmethod
    def from_counters(cls, counters: Sequence[int]) -> TargetTable:
        try:
            data = b"".join(c.to_bytes(COUNTER_BYTES, "big") for c in counters)
        except OverflowError as exc:
            raise CorruptTargetTable(f"a counter does not fit in {COUNTER_BYTES} bytes") from exc
        return cls(data)

    @classmethod
    def generate(cls) -> TargetTable:
        """Search all prefixes now (~707k hashes, seconds): what the data file holds."""
        return cls.from_counters(generate_counters())

    @classmethod
    def load(cls, path: Path = DATA_FILE, *, expected_keccak: bytes | None = DATA_FILE_KECCAK) -> TargetTable:
        """Read a table file; refuse it unless it hashes to ``expected_keccak`` (None: any)."""
        data = path.read_bytes()
        if expected_keccak is not None and keccak256(data) != expected_keccak:
            raise CorruptTargetTable(
                f"{path} has keccak256 {keccak256(data).hex()}, expected {expected_keccak.hex()}; "
                "regenerate it with tools/gen_findnode_targets.py"
            )
        return cls(data)

    @classmethod
    def default(cls, path: Path = DATA_FILE) -> TargetTable:
        """The committed table, or, if its file is missing, one generated now."""
        try:
            return cls.load(path)
        except FileNotFoundError:
            log.warning("findnode target table missing, generating it path=%s", path)
            table = cls.generate()
            log.info("findnode target table generated prefixes=%d", 1 << PREFIX_BITS)
            return table

    def to_bytes(self) -> bytes:
        return self._data

    def counter(self, prefix: int) -> int:
        """The smallest counter whose target hashes to ``prefix``."""
        if not 0 <= prefix < 1 << PREFIX_BITS:
            raise LocalProtocolError(f"prefix must be a {PREFIX_BITS}-bit number, got {prefix}")
        at = prefix * COUNTER_BYTES
        return int.from_bytes(self._data[at : at + COUNTER_BYTES], "big")

    def target_for_prefix(self, prefix: int) -> bytes:
        """A 64-byte input whose keccak256 starts with the 16 bits ``prefix``."""
        return target_input(self.counter(prefix))

    def target_for_distance(self, peer_id: bytes, distance: int) -> bytes:
        """A target whose hash is at log distance ``distance`` from ``peer_id``.

        Exactly ``distance`` for 241..256; for 0..240 a target in geth's merged
        bucket 0, whose hash is at some log distance <= 240.
        """
        if len(peer_id) != ID_LENGTH:
            raise LocalProtocolError(f"peer ids are {ID_LENGTH} bytes, got {len(peer_id)}")
        if not 0 <= distance <= HASH_BITS:
            raise LocalProtocolError(f"log distance must be 0..{HASH_BITS}, got {distance}")
        prefix = hash_prefix(peer_id)
        if distance > BUCKET0_DISTANCE:
            prefix ^= 1 << (distance - BUCKET0_DISTANCE - 1)
        return self.target_for_prefix(prefix)

    def targets_for_peer(
        self, peer_id: bytes, distances: Iterable[int] = CRAWL_DISTANCES
    ) -> list[tuple[int, bytes]]:
        """``(distance, target)`` pairs, one per bucket, in the order of ``distances``.

        Distances <= 240 all name bucket 0: they are reported as 240 and asked once.
        """
        pairs: list[tuple[int, bytes]] = []
        asked: set[int] = set()
        for distance in distances:
            target = self.target_for_distance(peer_id, distance)
            label = max(distance, BUCKET0_DISTANCE)
            if label not in asked:
                asked.add(label)
                pairs.append((label, target))
        return pairs


@functools.cache
def _default_table() -> TargetTable:
    return TargetTable.default()


def targets_for_peer(
    peer_id: bytes, distances: Iterable[int] = CRAWL_DISTANCES
) -> list[tuple[int, bytes]]:
    """:meth:`TargetTable.targets_for_peer` on the committed table (loaded once)."""
    return _default_table().targets_for_peer(peer_id, distances)
