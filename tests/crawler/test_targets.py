"""crawler.targets: the committed prefix table, and targets that hit each bucket of a peer."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.crawler import targets as targets_module
from ethcrawl.crawler.table import BUCKET_SIZE, N_BUCKETS, RoutingTable, log_distance
from ethcrawl.crawler.targets import (
    BUCKET0_DISTANCE,
    COUNTER_BYTES,
    CRAWL_DISTANCES,
    DATA_FILE,
    MISFITS_TO_SWITCH,
    PREFIX_BITS,
    CorruptTargetTable,
    RankingCheck,
    RegionWalk,
    TargetTable,
    generate_counters,
    hash_prefix,
    random_target,
    target_input,
    targets_for_peer,
)
from ethcrawl.wire.crypto import keccak256
from ethcrawl.wire.errors import LocalProtocolError

N_PREFIXES = 1 << PREFIX_BITS


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeNode:
    node_id: bytes
    ip: IPv4Address


@pytest.fixture(scope="module")
def table() -> TargetTable:
    return TargetTable.load()


# -- the committed data file ------------------------------------------------------------


def test_every_prefix_has_a_target_that_hashes_to_it(table: TargetTable) -> None:
    """Complete and correct: all 65536 entries re-hashed (~0.25 s)."""
    wrong = [p for p in range(N_PREFIXES) if hash_prefix(keccak256(table.target_for_prefix(p))) != p]
    assert wrong == []


def test_counters_are_the_smallest_ones(table: TargetTable) -> None:
    """The generator's rule, checked over the first 20000 counters (a full check is 707k hashes).

    Each counter i below the bound must not undercut the entry for its prefix,
    and must be that entry when it is the first i with that prefix.
    """
    bound = 20_000
    first: dict[int, int] = {}
    for i in range(bound):
        first.setdefault(hash_prefix(keccak256(target_input(i))), i)
    for prefix, i in first.items():
        assert table.counter(prefix) == i
    assert all(table.counter(p) >= bound for p in range(N_PREFIXES) if p not in first)


def test_data_file_layout() -> None:
    data = DATA_FILE.read_bytes()
    assert len(data) == N_PREFIXES * COUNTER_BYTES
    assert TargetTable(data).to_bytes() == data


def test_generator_rule_on_a_small_prefix() -> None:
    """generate_counters() against its definition, on 10-bit prefixes (~7k hashes)."""
    counters = generate_counters(10)
    assert len(counters) == 1 << 10
    prefixes = [hash_prefix(keccak256(target_input(i)), 10) for i in range(max(counters) + 1)]
    for prefix, counter in enumerate(counters):
        assert prefixes[counter] == prefix
        assert prefix not in prefixes[:counter]


def test_generated_table_matches_committed_prefix(table: TargetTable) -> None:
    """The 10-bit search and the 16-bit file agree wherever a 10-bit answer is a 16-bit one."""
    small = generate_counters(10)
    for prefix10, counter in enumerate(small):
        prefix16 = hash_prefix(keccak256(target_input(counter)))
        assert prefix16 >> (PREFIX_BITS - 10) == prefix10
        assert table.counter(prefix16) <= counter


@pytest.mark.parametrize("bits", [0, 17, -1])
def test_generator_rejects_bad_widths(bits: int) -> None:
    with pytest.raises(LocalProtocolError):
        generate_counters(bits)


def test_load_refuses_altered_or_truncated_files(tmp_path: Path) -> None:
    data = bytearray(DATA_FILE.read_bytes())
    data[1234] ^= 1
    altered = tmp_path / "altered.bin"
    altered.write_bytes(bytes(data))
    with pytest.raises(CorruptTargetTable, match="keccak256"):
        TargetTable.load(altered)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(bytes(data[:-4]))
    with pytest.raises(CorruptTargetTable, match="bytes"):
        TargetTable.load(truncated, expected_keccak=None)
    with pytest.raises(CorruptTargetTable):
        TargetTable.from_counters([1 << 32] * N_PREFIXES)


def test_default_generates_when_the_file_is_missing(
    table: TargetTable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The real search takes seconds; what is under test is the fallback path.
    calls: list[int] = []

    def fake_generate(prefix_bits: int = PREFIX_BITS) -> list[int]:
        calls.append(prefix_bits)
        return [table.counter(p) for p in range(N_PREFIXES)]

    monkeypatch.setattr(targets_module, "generate_counters", fake_generate)
    with caplog.at_level(logging.WARNING, logger="ethcrawl.crawler.targets"):
        got = TargetTable.default(tmp_path / "absent.bin")
    assert calls == [PREFIX_BITS]
    assert got.to_bytes() == table.to_bytes()
    assert "findnode target table missing" in caplog.text
    assert TargetTable.default().to_bytes() == table.to_bytes()


@pytest.mark.parametrize("prefix", [-1, N_PREFIXES])
def test_prefix_out_of_range(table: TargetTable, prefix: int) -> None:
    with pytest.raises(LocalProtocolError):
        table.target_for_prefix(prefix)


# -- targets for a peer -----------------------------------------------------------------

EDGE_PEERS = [bytes(32), b"\xff" * 32, b"\x80" + bytes(31), b"\x00\x01" + b"\xff" * 30, bytes(range(32))]


def check_targets(table: TargetTable, peer: bytes) -> None:
    pairs = table.targets_for_peer(peer)
    assert [d for d, _ in pairs] == list(CRAWL_DISTANCES)
    routing: RoutingTable[FakeNode] = RoutingTable(peer)
    buckets = []
    for d, target in pairs:
        assert len(target) == 64
        got = log_distance(keccak256(target), peer)
        if d > BUCKET0_DISTANCE:
            assert got == d
        else:
            assert got <= BUCKET0_DISTANCE
        buckets.append(routing.bucket_of(keccak256(target)))
    assert buckets == list(range(N_BUCKETS - 1, -1, -1))  # every bucket once, fullest first


@pytest.mark.parametrize("peer", EDGE_PEERS, ids=lambda p: p.hex()[:8])
def test_every_distance_for_edge_peers(table: TargetTable, peer: bytes) -> None:
    check_targets(table, peer)


@settings(max_examples=200, deadline=None)
@given(peer=st.binary(min_size=32, max_size=32))
def test_every_distance_for_random_peers(table: TargetTable, peer: bytes) -> None:
    check_targets(table, peer)


def test_crawl_order_is_fullest_first() -> None:
    assert CRAWL_DISTANCES == tuple(range(256, 239, -1))
    assert len(CRAWL_DISTANCES) == N_BUCKETS


def test_low_distances_collapse_into_bucket_zero(table: TargetTable) -> None:
    peer = bytes(range(32))
    pairs = table.targets_for_peer(peer, [256, 12, 240, 239, 0, 241])
    assert [d for d, _ in pairs] == [256, 240, 241]
    assert pairs[1][1] == table.target_for_distance(peer, 0) == table.target_for_distance(peer, 240)


@pytest.mark.parametrize("d", [-1, 257])
def test_distance_out_of_range(table: TargetTable, d: int) -> None:
    with pytest.raises(LocalProtocolError):
        table.targets_for_peer(bytes(32), [d])


def test_peer_id_must_be_32_bytes(table: TargetTable) -> None:
    with pytest.raises(LocalProtocolError):
        table.targets_for_peer(bytes(64))


def test_module_function_uses_the_committed_table(table: TargetTable) -> None:
    peer = keccak256(b"peer")
    assert targets_for_peer(peer) == table.targets_for_peer(peer)


# -- the point of it all: the targets enumerate a peer's table ---------------------------


@pytest.mark.parametrize("seed", range(5))
def test_findnode_on_every_target_reveals_the_whole_table(table: TargetTable, seed: int) -> None:
    """A peer answering FINDNODE with its 16 closest entries shows us every entry."""
    rng = random.Random(seed)
    peer = rng.randbytes(32)
    remote: RoutingTable[FakeNode] = RoutingTable(peer, rng=random.Random(seed))
    # A random network, plus nodes forced into every bucket (deep ones never occur by chance).
    candidates = [rng.randbytes(32) for _ in range(3000)]
    for d in range(1, 257):
        offset = (1 << (d - 1)) | rng.getrandbits(d - 1) if d > 1 else 1
        candidates.append((int.from_bytes(peer, "big") ^ offset).to_bytes(32, "big"))
    for node_id in candidates:
        remote.add_seen(FakeNode(node_id=node_id, ip=IPv4Address("127.0.0.1")))
    assert all(remote.bucket_entries(i) for i in range(N_BUCKETS))

    revealed: set[bytes] = set()
    for d, target in table.targets_for_peer(peer):
        answer = remote.closest(keccak256(target), BUCKET_SIZE)
        bucket = {n.node_id for n in remote.bucket_entries(remote.bucket_of(keccak256(target)))}
        assert bucket <= {n.node_id for n in answer}, f"distance {d} missed part of its bucket"
        revealed |= {n.node_id for n in answer}
    assert revealed == {n.node_id for n in remote}


# -- random in the raw space too (issue 12) ----------------------------------------------


def counter_target(counter: int) -> bytes:
    """What the table's targets used to be: the counter as a 64-byte big-endian number."""
    return counter.to_bytes(64, "big")


def test_targets_look_random_in_the_raw_space(table: TargetTable) -> None:
    """Every bit position of the 65536 targets is set about half the time, the top bytes above all.

    The old counter targets had their top 61 bytes all zero: "near zero" to a peer ranking by the raw target.
    """
    targets = [table.target_for_prefix(p) for p in range(0, N_PREFIXES, 4)]  # 16384 of them
    assert len(set(targets)) == len(targets)
    as_numbers = [int.from_bytes(t, "big") for t in targets]
    for bit in range(512):
        share = sum(n >> bit & 1 for n in as_numbers) / len(as_numbers)
        assert 0.45 < share < 0.55, (bit, share)  # 16384 draws: 1 sd is 0.004
    top_bytes = {t[0] for t in targets}
    assert len(top_bytes) == 256
    assert all(t[:8] != bytes(8) for t in targets)


def test_target_input_is_two_independent_hashes_of_the_counter() -> None:
    target = target_input(7)
    assert target == keccak256(b"\x00" + (7).to_bytes(4, "big")) + keccak256(b"\x01" + (7).to_bytes(4, "big"))
    assert target[:32] != target[32:]


def test_random_targets_are_fresh_and_full_size() -> None:
    drawn = {random_target() for _ in range(100)}
    assert len(drawn) == 100 and all(len(t) == 64 for t in drawn)


def raw_ranked(keys: list[bytes], target: bytes) -> list[bytes]:
    """@ethereumjs/devp2p's answer: the 16 keys (64-byte public keys) closest to the raw target."""
    point = int.from_bytes(target, "big")
    return sorted(keys, key=lambda k: int.from_bytes(k, "big") ^ point)[:BUCKET_SIZE]


def test_a_raw_ranking_peer_gives_different_answers_to_our_targets(table: TargetTable) -> None:
    """The failure issue 12 measured, and its cure: same answer to every counter target, varied ones to ours."""
    rng = random.Random(12)
    keys = [rng.randbytes(64) for _ in range(200)]
    peer = rng.randbytes(32)
    old = {tuple(raw_ranked(keys, counter_target(i))) for i in range(17)}
    assert old == {tuple(sorted(keys)[:BUCKET_SIZE])}  # the 16 lowest keys, every time
    ours = [tuple(raw_ranked(keys, target)) for _, target in table.targets_for_peer(peer)]
    assert len(set(ours)) >= 15
    assert len({k for answer in ours for k in answer}) > 100


def test_iter_targets_for_peer_matches_the_list(table: TargetTable) -> None:
    peer = keccak256(b"lazy")
    walk = table.iter_targets_for_peer(peer)
    assert next(walk) == table.targets_for_peer(peer)[0]
    assert [next(walk) for _ in range(3)] == table.targets_for_peer(peer)[1:4]


# -- RankingCheck: does a peer rank by keccak256(target)? --------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyedNode:
    pubkey: bytes
    ip: IPv4Address

    @property
    def node_id(self) -> bytes:
        return keccak256(self.pubkey)


def make_nodes(rng: random.Random, count: int) -> list[KeyedNode]:
    return [KeyedNode(pubkey=rng.randbytes(64), ip=IPv4Address("127.0.0.1")) for _ in range(count)]


def walk(table: TargetTable, peer: bytes, answer: Callable[[bytes], list[KeyedNode]]) -> RankingCheck:
    """The engine's bucket walk, all 17 targets, each answer fed to a RankingCheck."""
    check = RankingCheck()
    for _, target in table.targets_for_peer(peer):
        check.observe(target, [n.node_id for n in answer(target)])
    return check


@pytest.mark.parametrize("size", [3, 16, 17, 40, 300, 3000])
@pytest.mark.parametrize("seed", range(3))
def test_a_geth_like_peer_fits_the_hashed_model(table: TargetTable, size: int, seed: int) -> None:
    """A go-ethereum table (crawler/table.py: buckets, closest to keccak256(target)) is never switched."""
    rng = random.Random(seed)
    peer = rng.randbytes(32)
    remote: RoutingTable[KeyedNode] = RoutingTable(peer, rng=random.Random(seed))
    for node in make_nodes(rng, size):
        remote.add_seen(node)
    check = walk(table, peer, lambda target: remote.closest(keccak256(target), BUCKET_SIZE))
    assert check.hashed and check.misfits == 0


@pytest.mark.parametrize("seed", range(5))
def test_a_raw_ranking_peer_is_noticed_within_a_few_answers(table: TargetTable, seed: int) -> None:
    rng = random.Random(seed)
    keys = make_nodes(rng, 40)
    by_key = {n.pubkey: n for n in keys}
    check = RankingCheck()
    for answered, (_, target) in enumerate(table.targets_for_peer(rng.randbytes(32)), start=1):
        check.observe(target, [by_key[k].node_id for k in raw_ranked(list(by_key), target)])
        if not check.hashed:
            break
    assert not check.hashed
    assert answered <= 6  # the walk switches early, before its stop rule (2 empty answers) could end it


def test_a_peer_ignoring_the_target_is_noticed(table: TargetTable) -> None:
    """Answers that do not change with the target, from a peer that has shown more than one answer's worth."""
    rng = random.Random(3)
    nodes = make_nodes(rng, 20)
    check = RankingCheck()
    targets = [target for _, target in table.targets_for_peer(rng.randbytes(32))]
    check.observe(targets[0], [n.node_id for n in nodes[:10]])  # not full: the peer had only these then
    check.observe(targets[1], [n.node_id for n in nodes[4:]])  # full, and consistent so far
    check.observe(targets[2], [n.node_id for n in nodes[4:]])
    check.observe(targets[3], [n.node_id for n in nodes[4:]])
    assert check.misfits >= MISFITS_TO_SWITCH and not check.hashed


def test_small_tables_give_no_evidence_either_way(table: TargetTable) -> None:
    """A peer with 16 entries or fewer returns all of them to any target, under any ranking: no switch."""
    rng = random.Random(4)
    for size in (5, 16):
        keys = [n.pubkey for n in make_nodes(rng, size)]
        check = RankingCheck()
        for _, target in table.targets_for_peer(rng.randbytes(32)):
            check.observe(target, [keccak256(k) for k in raw_ranked(keys, target)])
        assert check.hashed and check.misfits == 0


# -- RegionWalk: reading a table ranked by the raw target --------------------------------


def test_random_target_keeps_its_prefix() -> None:
    for bits, prefix in [(0, 0), (1, 1), (7, 0b1010011), (512, (1 << 512) - 5)]:
        for _ in range(20):
            target = random_target(prefix, bits)
            assert len(target) == 64 and int.from_bytes(target, "big") >> (512 - bits) == prefix
    low = {random_target(0b10, 2)[1:] for _ in range(50)}
    assert len(low) == 50  # the bits below the prefix are fresh each time
    for bits, prefix in [(-1, 0), (513, 0), (3, 8), (3, -1)]:
        with pytest.raises(LocalProtocolError):
            random_target(prefix, bits)


def read_by_regions(keys: list[bytes], lose: Callable[[int], bool] = lambda n: False) -> tuple[set[bytes], int]:
    """Drive a RegionWalk against a raw-ranking peer until no region is open: (keys seen, requests)."""
    walk = RegionWalk()
    seen: set[bytes] = set()
    asked = 0
    while walk.regions_open:
        target = walk.next_target()
        answer = [] if lose(asked) else raw_ranked(keys, target)
        asked += 1
        seen |= set(answer)
        walk.observe(answer)
    return seen, asked


@pytest.mark.parametrize("size", [1, 16, 17, 60, 300, 1000])
def test_region_walk_reads_a_raw_ranked_table_whole(size: int) -> None:
    keys = [random.Random(size).randbytes(64) for _ in range(size)]
    seen, asked = read_by_regions(keys)
    assert seen == set(keys)
    # ~2 requests per 16 keys: the regions double until each holds fewer than one answer's worth.
    assert asked <= max(1, 5 * size // BUCKET_SIZE)


def test_region_walk_asks_a_lost_region_again() -> None:
    rng = random.Random(9)
    keys = [rng.randbytes(64) for _ in range(100)]
    seen, _ = read_by_regions(keys, lose=lambda n: n in (0, 2))  # the whole space's and a half's first answers
    assert seen == set(keys)
    assert read_by_regions(keys, lose=lambda n: n < 2)[1] == 2  # the whole space lost twice: given up
    # Each region asked at most twice: a region lost twice is given up.
    walk = RegionWalk()
    for _ in range(2):
        walk.next_target()
        walk.observe([])
    assert walk.regions_open == 0


def test_region_walk_splits_a_full_region_in_halves() -> None:
    rng = random.Random(2)
    keys = [rng.randbytes(64) for _ in range(40)]
    walk = RegionWalk()
    walk.next_target()
    walk.observe(keys[:16])  # the whole space, full: both halves next
    tops = sorted(walk.next_target()[0] >> 7 for _ in range(2))
    assert tops == [0, 1]
    assert walk.regions_open == 1  # the second half is being asked
    walk.observe([])  # lost: asked again later, then random targets
    walk.next_target()
    walk.observe([k for k in keys if k[0] >> 7 == 1][:3])  # not full: that half is read
    assert walk.regions_open == 0
    assert len({walk.next_target() for _ in range(10)}) == 10  # plain random targets from here on


def test_identical_full_answers_leave_the_check_undecided_until_a_random_target_settles_it(
    table: TargetTable,
) -> None:
    rng = random.Random(5)
    ids = [n.node_id for n in make_nodes(rng, 16)]
    targets = [target for _, target in table.targets_for_peer(rng.randbytes(32))]
    for settled_by_news in (False, True):
        check = RankingCheck()
        check.observe(targets[0], ids)
        assert not check.undecided  # one answer: nothing to compare yet
        check.observe(targets[1], ids)
        check.observe(targets[2], ids)
        assert check.undecided and check.hashed and check.misfits == 0
        check.settle_undecided(settled_by_news)
        assert check.hashed is not settled_by_news
    check.observe(targets[3], [n.node_id for n in make_nodes(rng, 16)])  # a 17th entry and more: decided
    assert not check.undecided
