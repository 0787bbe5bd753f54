"""A geth-shaped Kademlia routing table: XOR distance, 17 buckets, replacements, IP limits.

Pure logic: no sockets, no clock, the RNG injected.  The crawler keeps one of
these for its own node (to answer FINDNODE and to seed lookups), and the layout
mirrors go-ethereum's ``p2p/discover/table.go`` so that reasoning about a geth
peer's table (see :mod:`ethcrawl.crawler.targets`) and about ours is the same
reasoning.

Distances are between node ids (32 bytes, keccak256 of the public key), as in
the discv4 spec: ``distance(a, b) = a XOR b`` taken as a number, and the log
distance is the bit length of that number (0 for equal ids, 256 when the top
bit differs).

Layout.  A table could keep 256 buckets, but a random id is at log distance 256
from ours with probability 1/2, 255 with 1/4, ... so buckets below ~240 stay
empty in any real network.  geth keeps ``hashBits / 15 = 17`` buckets: bucket
``i`` (1..16) holds log distance ``240 + i``, and bucket 0 holds *every*
distance ``<= 240`` (geth's ``bucketAtDistance``: ``d <= bucketMinDistance``
(239) goes to bucket 0, and ``d = 240`` lands there too, as ``d - 239 - 1 = 0``).

Bucket semantics follow geth's ``addSeenNode`` / ``addVerifiedNode``:

* entries are ordered by last liveness proof, most recent first;
* a node merely *seen* (in a NEIGHBORS reply) goes to the back of its bucket;
  a node *verified* (it answered a PING) goes to the front, or is moved there;
* a full bucket keeps its old entries (old live nodes are the best predictor
  of future live nodes) and files the newcomer in a replacement list of 10,
  newest first; removing an entry pulls a random replacement in.

IP limits, like geth: at most 2 nodes from one /24 per bucket and 10 per /24 in
the whole table, counted over entries and replacement lists alike.  As in
geth, loopback and LAN addresses are exempt, so a devnet of many nodes on
127.0.0.1 (or one 10.x subnet) still fills a table; and a node without an IP
address (or only the unspecified one) is never added.  The /24 mask is
applied to IPv6 too (geth's ``DistinctNetSet{Subnet: 24}`` masks any address
length the same way), and an IPv4-mapped address counts as the IPv4 address it
wraps, so a dual-stack peer cannot double a subnet's share by spelling.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Generic, Iterator, Protocol, TypeVar

from ethcrawl.wire.errors import LocalProtocolError

__all__ = [
    "NodeLike",
    "AddResult",
    "RoutingTable",
    "log_distance",
    "distance",
    "is_lan",
    "unwrap_ipv4",
    "ID_LENGTH",
    "HASH_BITS",
    "BUCKET_SIZE",
    "MAX_REPLACEMENTS",
    "N_BUCKETS",
    "BUCKET_MIN_DISTANCE",
    "bucket_index",
    "BUCKET_IP_LIMIT",
    "TABLE_IP_LIMIT",
    "IP_SUBNET_BITS",
]

ID_LENGTH = 32  # bytes: a node id is keccak256(pubkey)
HASH_BITS = ID_LENGTH * 8  # 256, the largest possible log distance
BUCKET_SIZE = 16  # nodes per bucket, discv4's k (geth bucketSize)
MAX_REPLACEMENTS = 10  # per-bucket replacement list length (geth maxReplacements)
# geth keeps buckets for the upper 1/15 of distances only: anything closer is
# astronomically unlikely to exist, so it shares one bucket.
N_BUCKETS = HASH_BITS // 15  # 17
BUCKET_MIN_DISTANCE = HASH_BITS - N_BUCKETS  # 239; log distances <= 240 share bucket 0
BUCKET_IP_LIMIT = 2  # nodes per /24 in one bucket (geth bucketIPLimit)
TABLE_IP_LIMIT = 10  # nodes per /24 in the whole table (geth tableIPLimit)
IP_SUBNET_BITS = 24  # prefix length both limits count by (geth bucketSubnet/tableSubnet)

# geth's netutil.IsLAN: loopback plus these ranges are exempt from the IP limits.
LAN_NETWORKS: tuple[IPv4Network | IPv6Network, ...] = (
    IPv4Network("0.0.0.0/8"),  # "this" network
    IPv4Network("10.0.0.0/8"),  # private use
    IPv4Network("172.16.0.0/12"),  # private use
    IPv4Network("192.168.0.0/16"),  # private use
    IPv4Network("169.254.0.0/16"),  # link-local (geth: IsLinkLocalUnicast); cloud metadata lives here
    IPv6Network("fe80::/10"),  # link-local
    IPv6Network("fc00::/7"),  # unique-local
)


class NodeLike(Protocol):
    """What the table needs of a node: its 32-byte id and its IP address (or None)."""

    @property
    def node_id(self) -> bytes: ...

    @property
    def ip(self) -> IPv4Address | IPv6Address | None: ...


N = TypeVar("N", bound=NodeLike)


class AddResult(Enum):
    """What :meth:`RoutingTable.add_seen` / :meth:`RoutingTable.add_verified` did."""

    ADDED = "added"  # now a bucket entry
    BUMPED = "bumped"  # was an entry; moved to the front (verified only)
    PRESENT = "present"  # was an entry already; left where it was (seen only)
    REPLACEMENT = "replacement"  # bucket full: filed in (or already in) the replacement list
    IP_LIMIT = "ip-limit"  # refused: its /24 is at the bucket or table limit, or it has no IP
    SELF = "self"  # our own id; never stored


def _check_id(node_id: bytes) -> None:
    if len(node_id) != ID_LENGTH:
        raise LocalProtocolError(
            f"node ids are {ID_LENGTH} bytes (keccak256 of the public key), got {len(node_id)}"
        )


def distance(a: bytes, b: bytes) -> int:
    """The XOR distance between two 32-byte node ids, as a number."""
    _check_id(a)
    _check_id(b)
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def log_distance(a: bytes, b: bytes) -> int:
    """Bit length of ``distance(a, b)``: 0 for equal ids, 256 when the top bits differ."""
    return distance(a, b).bit_length()


_IPV4_BITS = 32  # an IPv4-compatible address is ::/96: the IPv4 address in its low 32 bits


def unwrap_ipv4(ip: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    """The IPv4 address inside an IPv4-mapped (``::ffff:a.b.c.d``) or IPv4-compatible
    (``::a.b.c.d``) IPv6 address; any other address unchanged.

    Every check of an address runs on this, so that a LAN, loopback or
    multicast address cannot pass for another by being spelled in IPv6
    (geth's ``AddrIsLAN`` unmaps too).  ``::`` and ``::1`` are IPv6's own
    unspecified and loopback addresses, not IPv4-compatible ones.
    """
    if isinstance(ip, IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    value = int(ip)
    if value >> _IPV4_BITS == 0 and value > 1:
        return IPv4Address(value)
    return ip


def is_lan(ip: IPv4Address | IPv6Address) -> bool:
    """True for loopback, private and link-local addresses, however spelled (geth's ``netutil.AddrIsLAN``)."""
    ip = unwrap_ipv4(ip)
    if ip.is_loopback:
        return True
    return any(ip.version == net.version and ip in net for net in LAN_NETWORKS)


def _subnet_key(ip: IPv4Address | IPv6Address) -> tuple[int, int]:
    ip = unwrap_ipv4(ip)
    return ip.version, int(ip) >> (ip.max_prefixlen - IP_SUBNET_BITS)


class _SubnetCounter:
    """How many nodes each /24 holds, with a limit (geth's ``DistinctNetSet``)."""

    __slots__ = ("limit", "counts")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[tuple[int, int], int] = {}

    def has_room(self, key: tuple[int, int]) -> bool:
        return self.counts.get(key, 0) < self.limit

    def add(self, key: tuple[int, int]) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def remove(self, key: tuple[int, int]) -> None:
        left = self.counts[key] - 1
        if left:
            self.counts[key] = left
        else:
            del self.counts[key]


@dataclass(slots=True)
class _Entry(Generic[N]):
    node: N
    id_int: int  # the id as a number, for distance sorting without re-parsing
    verified: bool = False


@dataclass(slots=True)
class _Bucket(Generic[N]):
    entries: list[_Entry[N]] = field(default_factory=list)  # most recently live first
    replacements: list[_Entry[N]] = field(default_factory=list)  # newest first
    ips: _SubnetCounter = field(default_factory=lambda: _SubnetCounter(BUCKET_IP_LIMIT))


def _find(entries: list[_Entry[N]], node_id: bytes) -> int:
    for i, entry in enumerate(entries):
        if entry.node.node_id == node_id:
            return i
    return -1


def bucket_index(log_dist: int) -> int:
    """The bucket (0..16) of a node at ``log_dist`` from the table's owner: the nearest distances share bucket 0."""
    return 0 if log_dist <= BUCKET_MIN_DISTANCE else log_dist - BUCKET_MIN_DISTANCE - 1


class RoutingTable(Generic[N]):
    """geth's 17-bucket Kademlia table around ``local_id``; see the module docstring."""

    def __init__(
        self,
        local_id: bytes,
        *,
        bucket_size: int = BUCKET_SIZE,
        replacements: int = MAX_REPLACEMENTS,
        rng: random.Random | None = None,
    ) -> None:
        _check_id(local_id)
        if bucket_size < 1 or replacements < 0:
            raise LocalProtocolError(
                f"bucket_size must be >= 1 and replacements >= 0, got {bucket_size}, {replacements}"
            )
        self.local_id = local_id
        self.bucket_size = bucket_size
        self.max_replacements = replacements
        self._local_int = int.from_bytes(local_id, "big")
        self._rng = rng if rng is not None else random.Random()
        self._buckets: list[_Bucket[N]] = [_Bucket() for _ in range(N_BUCKETS)]
        self._ips = _SubnetCounter(TABLE_IP_LIMIT)

    # -- layout -------------------------------------------------------------

    def bucket_of(self, node_id: bytes) -> int:
        """Index (0..16) of the bucket ``node_id`` belongs in."""
        return bucket_index(log_distance(self.local_id, node_id))

    def bucket_entries(self, index: int) -> list[N]:
        """The entries of bucket ``index``, most recently live first."""
        return [e.node for e in self._buckets[index].entries]

    def at_distance(self, log_dist: int) -> list[N]:
        """The entries at exactly ``log_dist`` from us (discovery v5 FINDNODE asks by distance)."""
        if not 1 <= log_dist <= ID_LENGTH * 8:
            return []
        bucket = self._buckets[bucket_index(log_dist)]
        return [e.node for e in bucket.entries if (e.id_int ^ self._local_int).bit_length() == log_dist]

    def bucket_replacements(self, index: int) -> list[N]:
        """The replacement list of bucket ``index``, newest first."""
        return [e.node for e in self._buckets[index].replacements]

    def __len__(self) -> int:
        return sum(len(b.entries) for b in self._buckets)

    def __iter__(self) -> Iterator[N]:
        """Every entry (not replacements), bucket 0 first, each bucket front to back."""
        for bucket in self._buckets:
            for entry in bucket.entries:
                yield entry.node

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, bytes) and self.get(node_id) is not None

    def get(self, node_id: bytes) -> N | None:
        """The entry with ``node_id`` (replacements are not looked at), or None."""
        bucket = self._buckets[self.bucket_of(node_id)]
        i = _find(bucket.entries, node_id)
        return bucket.entries[i].node if i >= 0 else None

    def is_verified(self, node_id: bytes) -> bool:
        """Whether the entry ``node_id`` has been added or bumped by :meth:`add_verified`."""
        bucket = self._buckets[self.bucket_of(node_id)]
        i = _find(bucket.entries, node_id)
        return i >= 0 and bucket.entries[i].verified

    # -- adding -------------------------------------------------------------

    def add_seen(self, node: N) -> AddResult:
        """File a node we heard of but have not checked: the back of its bucket.

        An entry already present stays where it is (and keeps its old endpoint);
        in a full bucket the node becomes a replacement candidate.
        """
        if node.node_id == self.local_id:
            return AddResult.SELF
        bucket = self._buckets[self.bucket_of(node.node_id)]
        if _find(bucket.entries, node.node_id) >= 0:
            return AddResult.PRESENT
        if len(bucket.entries) >= self.bucket_size:
            return self._add_replacement(bucket, node)
        return self._add_entry(bucket, node, front=False, verified=False)

    def add_verified(self, node: N) -> AddResult:
        """File a node that just proved it is alive: the front of its bucket.

        An entry already present moves to the front, taking the new endpoint if
        that endpoint fits the IP limits (otherwise nothing changes).
        """
        if node.node_id == self.local_id:
            return AddResult.SELF
        bucket = self._buckets[self.bucket_of(node.node_id)]
        i = _find(bucket.entries, node.node_id)
        if i >= 0:
            return self._bump(bucket, i, node)
        if len(bucket.entries) >= self.bucket_size:
            return self._add_replacement(bucket, node)
        return self._add_entry(bucket, node, front=True, verified=True)

    def _add_entry(self, bucket: _Bucket[N], node: N, *, front: bool, verified: bool) -> AddResult:
        # No need to look in the replacement list: it is empty whenever the bucket
        # has room, since remove() refills the bucket from it first.
        if not self._claim_ip(bucket, node.ip):
            return AddResult.IP_LIMIT
        entry = _Entry(node, int.from_bytes(node.node_id, "big"), verified)
        if front:
            bucket.entries.insert(0, entry)
        else:
            bucket.entries.append(entry)
        return AddResult.ADDED

    def _bump(self, bucket: _Bucket[N], i: int, node: N) -> AddResult:
        old = bucket.entries[i]
        if old.node.ip != node.ip:
            self._release_ip(bucket, old.node.ip)
            if not self._claim_ip(bucket, node.ip):
                # The new endpoint does not fit: keep the old one, where it was.
                self._claim_ip(bucket, old.node.ip)
                return AddResult.IP_LIMIT
        del bucket.entries[i]
        bucket.entries.insert(0, _Entry(node, old.id_int, True))
        return AddResult.BUMPED

    def _add_replacement(self, bucket: _Bucket[N], node: N) -> AddResult:
        if self.max_replacements == 0:
            return AddResult.REPLACEMENT
        if _find(bucket.replacements, node.node_id) >= 0:
            return AddResult.REPLACEMENT
        if not self._claim_ip(bucket, node.ip):
            return AddResult.IP_LIMIT
        bucket.replacements.insert(0, _Entry(node, int.from_bytes(node.node_id, "big")))
        if len(bucket.replacements) > self.max_replacements:
            dropped = bucket.replacements.pop()
            self._release_ip(bucket, dropped.node.ip)
        return AddResult.REPLACEMENT

    # -- removing -----------------------------------------------------------

    def remove(self, node_id: bytes) -> N | None:
        """Drop ``node_id`` (an entry or a replacement); returns the replacement pulled in.

        A removed entry's place goes to a random replacement (geth's ``replace``),
        which joins the back of the bucket: it has not proved itself yet.
        """
        bucket = self._buckets[self.bucket_of(node_id)]
        r = _find(bucket.replacements, node_id)
        if r >= 0:
            self._release_ip(bucket, bucket.replacements.pop(r).node.ip)
            return None
        i = _find(bucket.entries, node_id)
        if i < 0:
            return None
        self._release_ip(bucket, bucket.entries.pop(i).node.ip)
        if not bucket.replacements:
            return None
        pick = bucket.replacements.pop(self._rng.randrange(len(bucket.replacements)))
        bucket.entries.append(pick)
        return pick.node

    # -- queries ------------------------------------------------------------

    def closest(self, target_hash: bytes, n: int = BUCKET_SIZE, *, prefer_verified: bool = False) -> list[N]:
        """The ``n`` entries closest to ``target_hash`` by XOR distance, nearest first.

        ``target_hash`` is an id-space point: for a FINDNODE, keccak256 of its
        64-byte target.  With ``prefer_verified`` only verified entries are
        returned if there are any (geth's ``findnodeByID(preferLive)``).
        """
        _check_id(target_hash)
        target = int.from_bytes(target_hash, "big")
        entries = [e for b in self._buckets for e in b.entries]
        if prefer_verified:
            live = [e for e in entries if e.verified]
            if live:
                entries = live
        return [e.node for e in heapq.nsmallest(n, entries, key=lambda e: e.id_int ^ target)]

    # -- IP accounting ------------------------------------------------------

    def _claim_ip(self, bucket: _Bucket[N], ip: IPv4Address | IPv6Address | None) -> bool:
        if ip is None or ip.is_unspecified:
            return False  # like geth's addIP: a node we cannot reach does not belong in the table
        if is_lan(ip):
            return True
        key = _subnet_key(ip)
        if not (self._ips.has_room(key) and bucket.ips.has_room(key)):
            return False
        self._ips.add(key)
        bucket.ips.add(key)
        return True

    def _release_ip(self, bucket: _Bucket[N], ip: IPv4Address | IPv6Address | None) -> None:
        if ip is None or ip.is_unspecified or is_lan(ip):
            return
        key = _subnet_key(ip)
        self._ips.remove(key)
        bucket.ips.remove(key)
