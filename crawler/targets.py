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

Random in the raw space too.  Not every implementation hashes the target:
@ethereumjs/devp2p ranks its table by XOR distance to the raw 64 bytes.  A
target that is a small number (as this table's inputs once were) is "near
zero" there, so every such request got the same answer, the 16 lowest keys of
the table, and a settled ethereumjs network was found 21/30.  So each target is
a *random-looking preimage*: ``target_input(i) = keccak256(0x00 || i) ||
keccak256(0x01 || i)`` (``i`` as 4 big-endian bytes), uniform over the 64-byte
space wherever it is compared, whose own keccak256 still lands in the wanted
bucket.  For peers that rank by the raw target, :class:`RankingCheck` notices
and the engine reads them with a :class:`RegionWalk` instead (see engine._enumerate).

Where the inputs come from.  We need, for each of the 65536 prefixes, one input
whose hash starts with it.  Searching for them takes ~680k candidates (a coupon
collector over 65536 prefixes) of three keccak256 calls each: about 12 s of CPU in
CPython.  Drawing fresh random preimages per crawl costs the same search (2**k
hashes for a bucket k bits deep, 2**16 for the deepest, per peer or per pool),
so instead of paying that at every start (or keeping a cache file in the user's
home that can go stale, be half-written or be missing), we commit the answer:
for each prefix the smallest counter ``i`` whose ``target_input(i)`` hashes to
it, 4 bytes per prefix, 256 KiB (``data/findnode_targets.bin``) -- 16 times
smaller than storing the 64-byte preimages themselves.  It is deterministic, so
a reviewer can regenerate it bit for bit (``python tools/gen_findnode_targets.py
--check``); loading it is one file read and one keccak over it (about 1 ms);
expanding a counter into its target is two keccak256 calls (~10 us), done only
for the buckets a walk actually asks; and the tests re-hash every entry.  If
the file is missing (an install without the package data)
:meth:`TargetTable.default` regenerates it in memory, with a warning.
"""

from __future__ import annotations

import functools
import logging
import os
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ethcrawl.wire.crypto import keccak256
from ethcrawl.wire.errors import LocalProtocolError

from .table import BUCKET_MIN_DISTANCE, BUCKET_SIZE, HASH_BITS, ID_LENGTH

__all__ = [
    "TargetTable",
    "CorruptTargetTable",
    "RankingCheck",
    "RegionWalk",
    "targets_for_peer",
    "generate_counters",
    "target_input",
    "random_target",
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
COUNTER_BYTES = 4  # per prefix in the data file; the largest counter is 676,321
BUCKET0_DISTANCE = BUCKET_MIN_DISTANCE + 1  # 240: the label for geth's merged bucket 0
# Most populated buckets first: distance 256 holds half of a random network.
CRAWL_DISTANCES: tuple[int, ...] = tuple(range(HASH_BITS, BUCKET0_DISTANCE - 1, -1))
DATA_FILE = Path(__file__).resolve().parent / "data" / "findnode_targets.bin"
# keccak256 of DATA_FILE, so a truncated or altered copy is refused at load time.
DATA_FILE_KECCAK = bytes.fromhex(
    "9d3562fad9e834d1ba731e5d40fe746c741548bf015b3df32bdfc5a6c4dda878"
)


class CorruptTargetTable(ValueError):
    """Raised when a target table's bytes are the wrong size or do not hash as committed."""


# The two halves of a target: distinct inputs, so the halves are independent hashes.
_HALF_TAGS = (b"\x00", b"\x01")
# A full answer: what a table with more entries than this returns, so it says which entries ranked first.
FULL_ANSWER = BUCKET_SIZE
# Answers that break the hashed model (see RankingCheck) before a peer is treated as not hashing the target.
# One could be churn (an entry dropped between two requests); an implementation that ranks by anything
# else breaks it in most full answers, so the second one comes a request or two later.
MISFITS_TO_SWITCH = 2


def target_input(counter: int) -> bytes:
    """The 64-byte FINDNODE target for ``counter``: random-looking, derived from it by keccak256."""
    seed = counter.to_bytes(COUNTER_BYTES, "big")
    return b"".join(keccak256(tag + seed) for tag in _HALF_TAGS)


TARGET_BITS = TARGET_LENGTH * 8  # 512
# Times a region whose answer came back empty (lost, or the peer did not answer) is asked again.
REGION_RETRIES = 1


def random_target(prefix: int = 0, prefix_bits: int = 0) -> bytes:
    """A fresh random 64-byte FINDNODE target, whose top ``prefix_bits`` bits are ``prefix``."""
    if not 0 <= prefix_bits <= TARGET_BITS or not 0 <= prefix < 1 << prefix_bits:
        raise LocalProtocolError(f"prefix must be a {prefix_bits}-bit number (0..{TARGET_BITS} bits), got {prefix}")
    low_bits = TARGET_BITS - prefix_bits
    low = int.from_bytes(os.urandom(TARGET_LENGTH), "big") & ((1 << low_bits) - 1)
    return (prefix << low_bits | low).to_bytes(TARGET_LENGTH, "big")


def hash_prefix(hash_: bytes, bits: int = PREFIX_BITS) -> int:
    """The top ``bits`` bits of a 32-byte hash (or node id), as a number."""
    return int.from_bytes(hash_, "big") >> (HASH_BITS - bits)


def generate_counters(prefix_bits: int = PREFIX_BITS) -> list[int]:
    """For each ``prefix_bits``-bit prefix, the smallest counter whose target hashes to it.

    Deterministic: the data file is exactly ``generate_counters()`` packed as
    big-endian ``COUNTER_BYTES``-byte numbers.  ~680k candidates for 16 bits.
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
        """Search all prefixes now (~680k candidates, ~12 s): what the data file holds."""
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
        return list(self.iter_targets_for_peer(peer_id, distances))

    def iter_targets_for_peer(
        self, peer_id: bytes, distances: Iterable[int] = CRAWL_DISTANCES
    ) -> Iterator[tuple[int, bytes]]:
        """:meth:`targets_for_peer`, one pair at a time: a walk that stops early expands no more targets."""
        asked: set[int] = set()
        for distance in distances:
            target = self.target_for_distance(peer_id, distance)
            label = max(distance, BUCKET0_DISTANCE)
            if label not in asked:
                asked.add(label)
                yield label, target


class RankingCheck:
    """Does one peer rank its FINDNODE answers by ``keccak256(target)``, as go-ethereum does?

    Fed every answer of a walk (:meth:`observe`).  What the hashed model
    predicts, and what it is checked on: a full answer (16 entries: the peer's
    table holds more) is the 16 entries of the table closest to
    ``keccak256(target)``.  So no entry the peer returned before (it is in the
    table) and left out now may be closer to that hash than the farthest one it
    returned now.  A peer that ranks by something else -- @ethereumjs/devp2p by
    the raw target -- breaks this in most full answers once it has shown more
    than 16 entries, and so does a peer whose answers do not change with the
    target at all.  (The same answer to two targets is not by itself a misfit:
    a table of 17 gives many targets the same 16, leaving out the entry
    farthest from all of them.)  Answers that are not full carry the whole
    table under any ranking, so they only add to what is known.
    After :data:`MISFITS_TO_SWITCH` misfits, :attr:`hashed` is False.

    One case gives no evidence at all: full answers that never showed more
    than 16 entries in all (:attr:`undecided`).  That is a table of exactly 16
    under any ranking, or a bigger one whose raw ranking put every target so
    far in the same region: one random target tells them apart (the engine asks
    it before giving up on the peer).
    """

    __slots__ = ("_known", "misfits", "_full_answers")

    def __init__(self) -> None:
        self._known: dict[bytes, int] = {}  # node id -> as a number, every id the peer returned
        self.misfits = 0
        self._full_answers = 0

    @property
    def hashed(self) -> bool:
        return self.misfits < MISFITS_TO_SWITCH

    @property
    def undecided(self) -> bool:
        """Several full answers, but never more than one answer's worth of entries: no evidence either way."""
        return self._full_answers >= 2 and len(self._known) <= FULL_ANSWER

    def settle_undecided(self, random_answer_was_news: bool) -> None:
        """The answer to one random target, asked while :attr:`undecided`: news means the table holds more
        than the 16 every hashed target got, so the peer does not rank by keccak256(target)."""
        if random_answer_was_news:
            self.misfits = max(self.misfits, MISFITS_TO_SWITCH)

    def observe(self, target: bytes, returned_ids: Iterable[bytes]) -> None:
        """Check one answer (the node ids it named) to FINDNODE ``target`` against the hashed model."""
        answer = frozenset(returned_ids)
        if len(answer) >= FULL_ANSWER:
            self._full_answers += 1
            if self._misfits_hashed_ranking(target, answer):
                self.misfits += 1
        for node_id in answer:
            if node_id not in self._known:
                self._known[node_id] = int.from_bytes(node_id, "big")

    def _misfits_hashed_ranking(self, target: bytes, answer: frozenset[bytes]) -> bool:
        hashed = int.from_bytes(keccak256(target), "big")
        farthest = max(int.from_bytes(node_id, "big") ^ hashed for node_id in answer)
        return any(number ^ hashed < farthest for node_id, number in self._known.items() if node_id not in answer)


@functools.cache
def _default_table() -> TargetTable:
    return TargetTable.default()


def targets_for_peer(
    peer_id: bytes, distances: Iterable[int] = CRAWL_DISTANCES
) -> list[tuple[int, bytes]]:
    """:meth:`TargetTable.targets_for_peer` on the committed table (loaded once)."""
    return _default_table().targets_for_peer(peer_id, distances)


class RegionWalk:
    """Targets that read a whole table ranked by XOR distance to the raw 64-byte target (@ethereumjs/devp2p).

    Such a peer's keys are its entries' public keys.  A *region* is every key
    with a given bit prefix; a target inside it (the prefix, then random bits)
    is closer to every key of the region than to any key outside.  So an answer
    with fewer than 16 keys of the region holds the whole region, and a full one
    may have left some out: then each half of the region is asked, breadth
    first.  Reading a table of M keys takes about 2M/16 requests, whatever the
    ranking's luck; a random target alone would only sample it.  An empty answer
    (lost, or no answer at all: a non-empty table never answers empty) is asked
    again :data:`REGION_RETRIES` times.  Once no region is open,
    :meth:`next_target` hands out plain random targets (the caller decides when
    those stop bringing anything: a peer ranking some other way still gets
    sampled).

    Use: ``target = walk.next_target()``, ask it, ``walk.observe(pubkeys)``.
    """

    __slots__ = ("_open", "_asking")

    def __init__(self) -> None:
        # (prefix, prefix bits, retries left) of each region still to ask.
        self._open: deque[tuple[int, int, int]] = deque([(0, 0, REGION_RETRIES)])
        self._asking: tuple[int, int, int] | None = None

    @property
    def regions_open(self) -> int:
        return len(self._open) + (self._asking is not None)

    def next_target(self) -> bytes:
        """The next region's target, or a plain random one once every region is read."""
        if not self._open:
            self._asking = None
            return random_target()
        self._asking = self._open.popleft()
        prefix, bits, _ = self._asking
        return random_target(prefix, bits)

    def observe(self, returned_pubkeys: Iterable[bytes]) -> None:
        """The public keys the peer returned for the last :meth:`next_target`."""
        region, self._asking = self._asking, None
        if region is None:
            return
        prefix, bits, retries = region
        keys = set(returned_pubkeys)
        if not keys:
            if retries:
                self._open.append((prefix, bits, retries - 1))
            return
        low_bits = TARGET_BITS - bits
        inside = sum(1 for key in keys if int.from_bytes(key, "big") >> low_bits == prefix)
        if inside >= FULL_ANSWER and bits < TARGET_BITS:
            self._open.extend(((prefix << 1, bits + 1, REGION_RETRIES), (prefix << 1 | 1, bits + 1, REGION_RETRIES)))
