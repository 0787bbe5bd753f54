"""crawler.targets: the committed prefix table, and targets that hit each bucket of a peer."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
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
    PREFIX_BITS,
    CorruptTargetTable,
    TargetTable,
    generate_counters,
    hash_prefix,
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
