"""The devnet's routing tables, planned: Kademlia-shaped, IP-limited like go-ethereum's, walkable from the bootnode.

Pure (ids in, index lists out, the RNG injected), shared by every devnet
profile.  Records are numbered 0..N-1; only the first ``owners`` of them (the
live nodes) get a table, the others (stale records, NAT'd nodes, sybils) are
only entries in those tables.

A table holds the node's ``TABLE_CLOSEST`` nearest records by XOR distance
plus ``TABLE_FAR`` random others (as a Kademlia table fills: dense near, sparse
far), at most ``BUCKET_SIZE`` per log distance.  With ``subnets`` given, it
also keeps go-ethereum's IP limits (``table.BUCKET_IP_LIMIT`` per /24 in a
bucket, ``table.TABLE_IP_LIMIT`` in the table) for every record whose subnet
is not None; the live nodes' shared loopback addresses are exempt, as geth
exempts loopback, or no table could hold more than ten of them.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Collection, Sequence

from .table import BUCKET_IP_LIMIT, TABLE_IP_LIMIT, bucket_index

__all__ = [
    "BUCKET_SIZE", "TABLE_CLOSEST", "TABLE_FAR", "add_holders", "connect_all", "fill", "plan_tables", "reachable",
    "served",
]

TABLE_CLOSEST = 16  # nearest nodes by XOR distance in each table (discv4's bucket size k)
TABLE_FAR = 3  # random other nodes in each table: the sparse far buckets of a real table
BUCKET_SIZE = 16  # a planned table never puts more in one log-distance bucket
# The K XOR-nearest ids lie close in sorted order; scanning this many neighbours
# on each side finds them without comparing every pair (10,000 nodes: 10^8 pairs).
NEAREST_SCAN = 48  # ids each side in sorted order
CONNECT_TRIES = 64  # random reached nodes tried for room before the bootnode takes a missing node

Protocols = Sequence[frozenset[str]]  # per record: the discovery protocols it speaks
Subnets = Sequence[int | None]  # per record: its /24 for the IP limits, None when exempt


def _log_distance(a: int, b: int) -> int:
    return (a ^ b).bit_length()


def plan_tables(ids: list[int], owners: int, rng: random.Random, subnets: Subnets | None = None) -> list[list[int]]:
    """Tables for records ``0..owners-1``: nearest ids by XOR plus a few random far ones, within the limits."""
    n = len(ids)
    order = sorted(range(n), key=ids.__getitem__)
    position = {index: pos for pos, index in enumerate(order)}
    tables: list[list[int]] = []
    for i in range(owners):
        pos = position[i]
        window = order[max(0, pos - NEAREST_SCAN) : pos + NEAREST_SCAN + 1]
        nearest = sorted((j for j in window if j != i), key=lambda j: ids[i] ^ ids[j])[:TABLE_CLOSEST]
        others = [j for j in rng.sample(range(n), min(n, TABLE_FAR + 1)) if j != i][:TABLE_FAR]
        tables.append(fill(i, [], nearest + others, ids, subnets))
    return tables


def fill(i: int, table: list[int], candidates: list[int], ids: list[int], subnets: Subnets | None = None) -> list[int]:
    """Add ``candidates`` to ``i``'s table where the bucket and the IP limits leave room; returns the table."""
    buckets = Counter(_log_distance(ids[i], ids[j]) for j in table)
    per_subnet: Counter[int] = Counter()
    per_bucket_subnet: Counter[tuple[int, int]] = Counter()
    if subnets is not None:
        for j in table:
            key = subnets[j]
            if key is not None:
                per_subnet[key] += 1
                per_bucket_subnet[_log_distance(ids[i], ids[j]), key] += 1
    for j in candidates:
        d = _log_distance(ids[i], ids[j])
        if j == i or j in table or buckets[d] >= BUCKET_SIZE:
            continue
        key = subnets[j] if subnets is not None else None
        if key is not None:
            if per_subnet[key] >= TABLE_IP_LIMIT or per_bucket_subnet[d, key] >= BUCKET_IP_LIMIT:
                continue
            per_subnet[key] += 1
            per_bucket_subnet[d, key] += 1
        table.append(j)
        buckets[d] += 1
    return table


def served(i: int, table: Sequence[int], ids: list[int], late: Collection[int] = ()) -> list[int]:
    """What ``i``'s running node can hand out of its planned ``table``: the first ``BUCKET_SIZE`` filed in each of its
    routing table's buckets (the rest wait as replacements, never served), in the order the devnet files them (the
    table's order, records in ``late`` after the others: joiners are filed when they join).

    The plan caps each log distance, but the routing table caps each bucket, and the nearest distances share
    bucket 0; and a plan that found no room for a node files it with the bootnode anyway (``connect_all``).  At
    100,000 records the bootnode's plan held 8,464 records, of which it served 142: 730 live nodes counted as
    findable that no walk could find.
    """
    kept: list[int] = []
    per_bucket: Counter[int] = Counter()
    for j in [j for j in table if j not in late] + [j for j in table if j in late]:
        bucket = bucket_index(_log_distance(ids[i], ids[j]))
        if per_bucket[bucket] < BUCKET_SIZE:
            per_bucket[bucket] += 1
            kept.append(j)
    return kept


def _usable(protocols: Protocols, i: int, j: int, protocol: str | None) -> bool:
    """Whether ``i`` hands out ``j`` over ``protocol`` (None: over any protocol both speak)."""
    shared = protocols[i] & protocols[j]
    return protocol in shared if protocol is not None else bool(shared)


def reachable(
    tables: Sequence[Sequence[int]],
    protocols: Protocols,
    protocol: str | None,
    start: int = 0,
    forwarders: Collection[int] | None = None,
) -> set[int]:
    """Records a walk from ``start`` can reach over ``protocol``, asking only ``forwarders`` (None: every owner)."""
    seen = {start}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        if i >= len(tables) or (forwarders is not None and i not in forwarders):
            continue  # a record nobody can ask: it is found, but leads nowhere
        for j in tables[i]:
            if j not in seen and _usable(protocols, i, j, protocol):
                seen.add(j)
                queue.append(j)
    return seen


def connect_all(
    tables: list[list[int]],
    ids: list[int],
    protocols: Protocols,
    rng: random.Random,
    forwarders: Collection[int] | None = None,
    subnets: Subnets | None = None,
) -> None:
    """Add links until a walk from record 0 over each protocol reaches every owner speaking it.

    A sparse plan can leave islands, and a link only counts over a protocol
    both ends speak (a v4-only node cannot lead to a v5-only one), so a v4
    walk finds every v4 node and a v5 walk every v5 node.  Record 0 speaks
    both.  With ``forwarders``, only their tables carry the walk (nodes that
    leave during the run, say, cannot be relied on), and only forwarders
    must be reached.
    """
    owners = range(len(tables)) if forwarders is None else forwarders
    for protocol in ("v4", "v5"):
        speakers = {j for j in owners if protocol in protocols[j]}
        while True:
            seen = reachable(tables, protocols, protocol, forwarders=forwarders)
            missing = sorted(speakers - seen)
            if not missing:
                break
            hubs = sorted(i for i in seen if i < len(tables) and (forwarders is None or i in forwarders))
            for j in missing:
                for _ in range(CONNECT_TRIES):  # a reached node with room in the right bucket
                    i = hubs[rng.randrange(len(hubs))]
                    if j in fill(i, tables[i], [j], ids, subnets):
                        break
                else:  # every try hit a full bucket: the bootnode takes it anyway
                    if j not in tables[0]:
                        tables[0].append(j)


def add_holders(
    tables: list[list[int]],
    ids: list[int],
    protocols: Protocols,
    rng: random.Random,
    minimum: int,
    forwarders: Collection[int] | None = None,
    subnets: Subnets | None = None,
) -> None:
    """Put every owner in at least ``minimum`` forwarders' tables (where buckets leave room).

    In a network of mostly dead records a live node can end up in one live
    table only, and one lost packet then hides it.  Real live nodes sit in the
    tables of all their near neighbours; a few holders each is closer to that.
    """
    stay = set(range(len(tables)) if forwarders is None else forwarders)
    holders = Counter(j for i in stay for j in tables[i])
    hubs = sorted(stay)
    for j in sorted(stay):
        for _ in range(CONNECT_TRIES):
            if holders[j] >= minimum:
                break
            i = hubs[rng.randrange(len(hubs))]
            if i == j or j in tables[i] or not _usable(protocols, i, j, None):
                continue
            if j in fill(i, tables[i], [j], ids, subnets):
                holders[j] += 1
