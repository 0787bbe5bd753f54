"""crawler.table: distances, geth's bucket layout, seen/verified/replacement rules, IP limits."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.crawler.table import (
    BUCKET_SIZE,
    MAX_REPLACEMENTS,
    N_BUCKETS,
    AddResult,
    RoutingTable,
    distance,
    is_lan,
    log_distance,
)
from ethcrawl.wire.errors import LocalProtocolError

ZERO = bytes(32)


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeNode:
    node_id: bytes
    ip: IPv4Address | IPv6Address | None


def id_at(local: bytes, d: int, rng: random.Random) -> bytes:
    """A random id at log distance exactly ``d`` (1..256) from ``local``."""
    offset = (1 << (d - 1)) | rng.getrandbits(d - 1) if d > 1 else 1
    return (int.from_bytes(local, "big") ^ offset).to_bytes(32, "big")


def node_at(local: bytes, d: int, rng: random.Random, ip: str = "127.0.0.1") -> FakeNode:
    return FakeNode(node_id=id_at(local, d, rng), ip=ip_address(ip))


def new_table(local: bytes = ZERO, seed: int = 1) -> RoutingTable[FakeNode]:
    return RoutingTable(local, rng=random.Random(seed))


# -- distances ----------------------------------------------------------------

DISTANCE_CASES = [
    # (a, b, log distance)
    (ZERO, ZERO, 0),
    (b"\xab" * 32, b"\xab" * 32, 0),
    (ZERO, bytes(31) + b"\x01", 1),
    (ZERO, bytes(31) + b"\x02", 2),
    (ZERO, bytes(31) + b"\x03", 2),
    (ZERO, bytes(31) + b"\xff", 8),
    (ZERO, bytes(30) + b"\x01\x00", 9),
    (ZERO, b"\x80" + bytes(31), 256),
    (ZERO, b"\xff" * 32, 256),
    (b"\xff" * 32, b"\x7f" + b"\xff" * 31, 256),
    (b"\x80" + bytes(31), b"\xc0" + bytes(31), 255),
    (ZERO, b"\x00\x01" + bytes(30), 241),
    (ZERO, b"\x00\x00\x80" + bytes(29), 240),
    (ZERO, b"\x00\x00\x40" + bytes(29), 239),
]


@pytest.mark.parametrize(("a", "b", "want"), DISTANCE_CASES)
def test_log_distance(a: bytes, b: bytes, want: int) -> None:
    assert log_distance(a, b) == want
    assert log_distance(b, a) == want
    assert distance(a, b).bit_length() == want


def test_distance_is_xor() -> None:
    a, b = bytes(range(32)), bytes(range(32, 64))
    assert distance(a, b) == int.from_bytes(bytes(x ^ y for x, y in zip(a, b)), "big")


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), bytes(64)])
def test_distance_wants_32_byte_ids(bad: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        log_distance(ZERO, bad)
    with pytest.raises(LocalProtocolError):
        RoutingTable(bad)


# -- layout ---------------------------------------------------------------------

BUCKET_CASES = [(256, 16), (255, 15), (242, 2), (241, 1), (240, 0), (239, 0), (100, 0), (1, 0)]


@pytest.mark.parametrize(("d", "bucket"), BUCKET_CASES)
def test_bucket_of_follows_geth_layout(d: int, bucket: int) -> None:
    rng = random.Random(d)
    local = rng.randbytes(32)
    table = new_table(local)
    for _ in range(5):
        assert table.bucket_of(id_at(local, d, rng)) == bucket


def test_seventeen_buckets() -> None:
    assert N_BUCKETS == 17
    table = new_table()
    assert {table.bucket_of(id_at(ZERO, d, random.Random(0))) for d in range(1, 257)} == set(range(17))


def test_self_is_never_stored() -> None:
    table = new_table()
    me = FakeNode(node_id=ZERO, ip=ip_address("1.2.3.4"))
    assert table.add_seen(me) is AddResult.SELF
    assert table.add_verified(me) is AddResult.SELF
    assert len(table) == 0


# -- seen / verified --------------------------------------------------------------


def test_seen_goes_to_back_verified_to_front() -> None:
    rng = random.Random(2)
    table = new_table()
    a, b, c = (node_at(ZERO, 256, rng) for _ in range(3))
    assert table.add_seen(a) is AddResult.ADDED
    assert table.add_seen(b) is AddResult.ADDED
    assert table.add_verified(c) is AddResult.ADDED
    assert table.bucket_entries(16) == [c, a, b]
    assert table.is_verified(c.node_id) and not table.is_verified(a.node_id)
    # Seeing a present node again changes nothing; verifying it moves it to the front.
    assert table.add_seen(b) is AddResult.PRESENT
    assert table.bucket_entries(16) == [c, a, b]
    assert table.add_verified(b) is AddResult.BUMPED
    assert table.bucket_entries(16) == [b, c, a]
    assert table.is_verified(b.node_id)
    assert len(table) == 3 and list(table) == [b, c, a]
    assert b.node_id in table and table.get(b.node_id) == b
    assert table.get(bytes([1]) * 32) is None


def test_full_bucket_keeps_old_entries_and_files_replacements() -> None:
    rng = random.Random(3)
    table = new_table()
    olds = [node_at(ZERO, 255, rng) for _ in range(BUCKET_SIZE)]
    for n in olds:
        assert table.add_seen(n) is AddResult.ADDED
    news = [node_at(ZERO, 255, rng) for _ in range(MAX_REPLACEMENTS + 3)]
    for i, n in enumerate(news):
        result = table.add_verified(n) if i % 2 else table.add_seen(n)
        assert result is AddResult.REPLACEMENT
    assert table.bucket_entries(15) == olds
    # Newest first, capped: the three oldest candidates fell off the end.
    assert table.bucket_replacements(15) == news[::-1][:MAX_REPLACEMENTS]
    assert table.add_seen(news[-1]) is AddResult.REPLACEMENT  # already filed: no duplicate
    assert len(table.bucket_replacements(15)) == MAX_REPLACEMENTS


def test_remove_pulls_a_replacement_in() -> None:
    rng = random.Random(4)
    table = new_table(seed=7)
    olds = [node_at(ZERO, 254, rng) for _ in range(BUCKET_SIZE)]
    spares = [node_at(ZERO, 254, rng) for _ in range(3)]
    for n in olds + spares:
        table.add_seen(n)
    pulled = table.remove(olds[5].node_id)
    assert pulled in spares
    assert olds[5] not in table.bucket_entries(14)
    assert table.bucket_entries(14)[-1] == pulled  # unproven: the back of the bucket
    assert len(table.bucket_entries(14)) == BUCKET_SIZE
    assert pulled not in table.bucket_replacements(14)
    assert len(table.bucket_replacements(14)) == 2
    # Removing a replacement just drops it; removing an unknown id is a no-op.
    left = table.bucket_replacements(14)
    assert table.remove(left[0].node_id) is None
    assert table.bucket_replacements(14) == left[1:]
    assert table.remove(id_at(ZERO, 254, rng)) is None
    assert len(table) == BUCKET_SIZE


def test_remove_without_replacements_shrinks_the_bucket() -> None:
    rng = random.Random(5)
    table = new_table()
    a, b = node_at(ZERO, 250, rng), node_at(ZERO, 250, rng)
    table.add_seen(a)
    table.add_seen(b)
    assert table.remove(a.node_id) is None
    assert table.bucket_entries(10) == [b]


# -- IP limits ------------------------------------------------------------------------


def test_bucket_ip_limit_two_per_slash24() -> None:
    rng = random.Random(8)
    table = new_table()
    same = [node_at(ZERO, 256, rng, f"203.0.113.{i}") for i in range(1, 4)]
    assert table.add_seen(same[0]) is AddResult.ADDED
    assert table.add_verified(same[1]) is AddResult.ADDED
    assert table.add_seen(same[2]) is AddResult.IP_LIMIT
    assert table.add_verified(same[2]) is AddResult.IP_LIMIT
    # Another /24, or the same /24 in another bucket, is fine.
    assert table.add_seen(node_at(ZERO, 256, rng, "203.0.114.1")) is AddResult.ADDED
    assert table.add_seen(node_at(ZERO, 255, rng, "203.0.113.9")) is AddResult.ADDED
    # Removing frees the slot.
    table.remove(same[0].node_id)
    assert table.add_seen(same[2]) is AddResult.ADDED


def test_table_ip_limit_ten_per_slash24() -> None:
    rng = random.Random(9)
    table = new_table()
    # Two per bucket in buckets 16..12 fills the table-wide quota of 10.
    for d in range(256, 251, -1):
        for host in (1, 2):
            assert table.add_seen(node_at(ZERO, d, rng, f"198.51.100.{d - 240}{host}")) is AddResult.ADDED
    assert table.add_seen(node_at(ZERO, 251, rng, "198.51.100.200")) is AddResult.IP_LIMIT
    assert table.add_seen(node_at(ZERO, 251, rng, "198.51.101.200")) is AddResult.ADDED
    assert len(table) == 11


def test_replacements_count_against_the_limits() -> None:
    rng = random.Random(10)
    table = new_table()
    for i in range(BUCKET_SIZE):
        table.add_seen(node_at(ZERO, 256, rng, f"192.0.{i}.1"))
    assert table.add_seen(node_at(ZERO, 256, rng, "192.0.200.1")) is AddResult.REPLACEMENT
    assert table.add_seen(node_at(ZERO, 256, rng, "192.0.200.2")) is AddResult.REPLACEMENT
    assert table.add_seen(node_at(ZERO, 256, rng, "192.0.200.3")) is AddResult.IP_LIMIT
    assert len(table.bucket_replacements(16)) == 2


@pytest.mark.parametrize(
    "ip", ["127.0.0.1", "10.1.2.3", "172.16.5.5", "192.168.1.1", "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1"]
)
def test_loopback_and_lan_are_exempt(ip: str) -> None:
    """A loopback or LAN devnet must fill a table: no per-/24 limits for these."""
    assert is_lan(ip_address(ip))
    rng = random.Random(11)
    table = new_table()
    for _ in range(BUCKET_SIZE):
        assert table.add_seen(node_at(ZERO, 256, rng, ip)) is AddResult.ADDED
    for _ in range(3):
        assert table.add_seen(node_at(ZERO, 255, rng, ip)) is AddResult.ADDED


@pytest.mark.parametrize("ip", ["8.8.8.8", "100.64.0.1", "2001:db8::1", "::ffff:8.8.8.8"])
def test_public_addresses_are_limited(ip: str) -> None:
    assert not is_lan(ip_address(ip))
    rng = random.Random(12)
    table = new_table()
    results = [table.add_seen(node_at(ZERO, 256, rng, ip)) for _ in range(3)]
    assert results == [AddResult.ADDED, AddResult.ADDED, AddResult.IP_LIMIT]


def test_ipv6_is_masked_to_slash24_like_geth() -> None:
    rng = random.Random(13)
    table = new_table()
    ips = ["2001:db8:1::1", "2001:db9::1", "2001:dff::1"]  # all in 2001:d00::/24
    results = [table.add_seen(node_at(ZERO, 256, rng, ip)) for ip in ips]
    assert results == [AddResult.ADDED, AddResult.ADDED, AddResult.IP_LIMIT]
    assert table.add_seen(node_at(ZERO, 256, rng, "2002::1")) is AddResult.ADDED


def test_node_without_ip_is_refused() -> None:
    table = new_table()
    assert table.add_seen(FakeNode(node_id=b"\x80" + bytes(31), ip=None)) is AddResult.IP_LIMIT
    assert len(table) == 0


@pytest.mark.parametrize("ip", ["0.0.0.0", "::"])
def test_node_at_the_unspecified_address_is_refused_like_geth(ip: str) -> None:
    """geth's addIP: an unspecified address reaches nobody (and :: is no LAN address to be exempt)."""
    table = new_table()
    assert table.add_verified(FakeNode(node_id=b"\x80" + bytes(31), ip=ip_address(ip))) is AddResult.IP_LIMIT
    assert len(table) == 0


def test_a_mapped_address_shares_its_ipv4_subnet_count() -> None:
    """::ffff:a.b.c.d is a.b.c.d: spelling an address in IPv6 does not double its /24's share."""
    rng = random.Random(15)
    table = new_table()
    results = [table.add_seen(node_at(ZERO, 256, rng, ip)) for ip in ("8.8.8.1", "::ffff:8.8.8.2", "8.8.8.3")]
    assert results == [AddResult.ADDED, AddResult.ADDED, AddResult.IP_LIMIT]


def test_bump_to_a_full_subnet_keeps_the_old_endpoint() -> None:
    rng = random.Random(14)
    table = new_table()
    a = node_at(ZERO, 256, rng, "203.0.113.1")
    b = node_at(ZERO, 256, rng, "203.0.113.2")
    c = node_at(ZERO, 256, rng, "198.51.100.1")
    for n in (a, b, c):
        table.add_seen(n)
    moved = FakeNode(node_id=c.node_id, ip=ip_address("203.0.113.3"))
    assert table.add_verified(moved) is AddResult.IP_LIMIT
    assert table.bucket_entries(16) == [a, b, c]
    # A new endpoint that fits is taken, and the old /24 slot is freed.
    moved_ok = FakeNode(node_id=a.node_id, ip=ip_address("192.0.2.1"))
    assert table.add_verified(moved_ok) is AddResult.BUMPED
    assert table.bucket_entries(16) == [moved_ok, b, c]
    assert table.add_seen(node_at(ZERO, 256, rng, "203.0.113.4")) is AddResult.ADDED


# -- closest() and invariants under random use ---------------------------------------

ids = st.binary(min_size=32, max_size=32)
ops = st.lists(
    st.tuples(
        st.sampled_from(["seen", "verified", "remove"]),
        st.integers(min_value=236, max_value=256),  # log distance from the local id
        st.integers(min_value=0, max_value=2**64),  # id bits below the distance
        st.sampled_from(["127.0.0.1", "10.0.0.1", "203.0.113.1", "203.0.113.2", "198.51.100.7", "2001:db8::1"]),
    ),
    max_size=150,
)


def apply_ops(local: bytes, steps: list[tuple[str, int, int, str]]) -> tuple[RoutingTable[FakeNode], list[bytes]]:
    table: RoutingTable[FakeNode] = RoutingTable(local, rng=random.Random(0))
    known: list[bytes] = []
    for kind, d, low, ip in steps:
        offset = (1 << (d - 1)) | (low % (1 << (d - 1)))
        node_id = (int.from_bytes(local, "big") ^ offset).to_bytes(32, "big")
        node = FakeNode(node_id=node_id, ip=ip_address(ip))
        if kind == "seen":
            table.add_seen(node)
        elif kind == "verified":
            table.add_verified(node)
        elif known:
            table.remove(known[low % len(known)])
        known.append(node_id)
    return table, known


@settings(max_examples=150, deadline=None)
@given(local=ids, steps=ops, target=ids, n=st.integers(min_value=0, max_value=40))
def test_closest_matches_brute_force(local: bytes, steps: list[tuple[str, int, int, str]], target: bytes, n: int) -> None:
    table, _ = apply_ops(local, steps)
    want = sorted(table, key=lambda node: distance(node.node_id, target))[:n]
    assert table.closest(target, n) == want


@settings(max_examples=150, deadline=None)
@given(local=ids, steps=ops)
def test_invariants_hold_under_random_use(local: bytes, steps: list[tuple[str, int, int, str]]) -> None:
    table, _ = apply_ops(local, steps)
    seen_ids: list[bytes] = []
    table_subnets: Counter[tuple[int, int]] = Counter()
    for i in range(N_BUCKETS):
        entries, spares = table.bucket_entries(i), table.bucket_replacements(i)
        assert len(entries) <= BUCKET_SIZE and len(spares) <= MAX_REPLACEMENTS
        assert not spares or len(entries) == BUCKET_SIZE  # replacements only wait on a full bucket
        bucket_subnets: Counter[tuple[int, int]] = Counter()
        for node in entries + spares:
            assert table.bucket_of(node.node_id) == i
            assert node.node_id != local
            seen_ids.append(node.node_id)
            assert node.ip is not None
            if not is_lan(node.ip):
                key = (node.ip.version, int(node.ip) >> (node.ip.max_prefixlen - 24))
                bucket_subnets[key] += 1
                table_subnets[key] += 1
        assert all(c <= 2 for c in bucket_subnets.values())
    assert all(c <= 10 for c in table_subnets.values())
    assert len(seen_ids) == len(set(seen_ids))
    assert len(table) == sum(len(table.bucket_entries(i)) for i in range(N_BUCKETS))


def test_closest_prefers_verified_when_asked() -> None:
    rng = random.Random(15)
    table = new_table()
    seen = [node_at(ZERO, 256, rng) for _ in range(4)]
    live = node_at(ZERO, 250, rng)
    for n in seen:
        table.add_seen(n)
    target = seen[0].node_id
    assert table.closest(target, 1) == [seen[0]]
    assert table.closest(target, 16, prefer_verified=True) == table.closest(target, 16)  # none verified
    table.add_verified(live)
    assert table.closest(target, 16, prefer_verified=True) == [live]
