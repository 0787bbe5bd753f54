"""The discv5 benchmark runs with tiny iteration counts; the crypto it counts is checked, never its speed.

The counts below are hand counts from discv5-theory.md ("Handshake Steps") and
discv5-wire.md, per exchange and both sides together.  If the wire layer starts
computing more or less, the benchmark's bound follows it and these tests say the
write-up in BENCHMARKS.md must change too.

Handshake (A initiates with a PING, B answers PONG):
  A: mask the random packet; unmask WHOAREYOU; ephemeral key; ECDH; HKDF; sha256 + sign
     for the id-signature; seal the PING and mask the handshake header; unmask and open the PONG.
  B: unmask the random packet; mask WHOAREYOU; unmask the handshake; sha256 + verify of the
     id-signature; ECDH; HKDF; open the PING; seal and mask the PONG.  With A's record in the
     handshake B also checks the record: keccak of its content + one verify, and keccak of its
     key for the node id it must compare with src-id.
FINDNODE over k NODES packets: A seals and masks the FINDNODE, B unmasks and opens it; B seals
  and masks k NODES, A unmasks and opens them; A verifies each of the 16 records (keccak of the
  content + one verify) and computes its node id (one keccak).
"""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
from collections import Counter
from ipaddress import ip_address
from pathlib import Path
from types import ModuleType

import pytest
from ethcrawl.wire.discv5.messages import Ping, Pong, encode_message, split_nodes
from ethcrawl.wire.discv5.packet import MESSAGE_PACKET_OVERHEAD, STATIC_HEADER_SIZE

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _import_bench() -> ModuleType:
    # bench/ is a folder of scripts, not a package: import it the way `python bench/x.py` would see it.
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("discv5_bench")
    finally:
        sys.path.remove(str(BENCH))


bench = _import_bench()

TINY = bench.Budget(figure_time=0.0, primitive_time=0.0, batch=1)  # three calls per timing
RECORDS = bench.real_records(bench.RECORDS_SERVED)
NODE_ID_SIZE = 32
PUBKEY_SIZE = 64
MASKING_IV_SIZE = 16
MESSAGE_AD_SIZE = MASKING_IV_SIZE + STATIC_HEADER_SIZE + NODE_ID_SIZE  # masking-iv || header of a message packet
# session.add_enr recomputes the node id of a record the handshake has already matched to src-id:
# one keccak per handshake that the protocol does not need (reported as a cheap win).
REDUNDANT_NODE_ID_KECCAK = 1

HANDSHAKE = Counter(
    {
        "AES-CTR mask": 8,  # 4 packets, each masked once and unmasked once
        "keygen": 1,
        "ECDH": 2,
        "HKDF": 2,
        "SHA-256 id proof": 2,
        "sign": 1,
        "ECDSA verify": 1,
        "AES-GCM seal": 2,  # PING (in the handshake packet), PONG
        "AES-GCM open": 2,
        "keccak": REDUNDANT_NODE_ID_KECCAK,
    }
)
RECORD_CHECK = Counter({"ECDSA verify": 1, "keccak": 2})  # content hash + node id of the record


def test_served_records_are_sixteen_real_mainnet_enrs() -> None:
    assert len(RECORDS) == 16 and len(set(RECORDS)) == 16
    assert all(150 <= len(record) <= 300 for record in RECORDS)


@pytest.mark.parametrize("with_enr", [True, False])
def test_handshake_crypto_matches_the_hand_count(with_enr: bool) -> None:
    counts = bench.count_primitives(bench.handshake_op(with_enr=with_enr), repeat=3)
    assert counts == (HANDSHAKE + RECORD_CHECK if with_enr else HANDSHAKE)


def test_a_handshake_carries_the_record_only_when_b_does_not_know_it() -> None:
    for with_enr in (True, False):
        op = bench.handshake_op(with_enr=with_enr)
        calls = bench.trace_primitives(op)
        # The keccak over 64 bytes is a node id; the record's content hash runs over the record.
        keccak_sizes = sorted(sizes[0] for name, sizes in calls if name == "keccak")
        if with_enr:
            assert keccak_sizes[:2] == [PUBKEY_SIZE, PUBKEY_SIZE] and keccak_sizes[2] > PUBKEY_SIZE
        else:
            assert keccak_sizes == [PUBKEY_SIZE]


@pytest.mark.parametrize(("split", "packets"), [("chainsafe", 6), ("size", 3)])
def test_findnode_crypto_matches_the_hand_count(split: str, packets: int) -> None:
    splitter = bench.chainsafe_split if split == "chainsafe" else bench.size_split
    if split == "size":
        # 16 records of at most 165 bytes: 7 fit the 1,193-byte NODES budget, so 7 + 7 + 2.
        assert len(split_nodes(b"\x80" * 8, RECORDS)) == packets
    counts = bench.count_primitives(bench.findnode_op(RECORDS, splitter), repeat=2)
    assert counts == Counter(
        {
            "AES-CTR mask": 2 * (1 + packets),
            "AES-GCM seal": 1 + packets,
            "AES-GCM open": 1 + packets,
            "ECDSA verify": 16,
            "keccak": 32,
        }
    )


def test_ping_on_a_session_is_two_sealed_and_masked_packets() -> None:
    op = bench.ping_op()
    assert bench.count_primitives(op, repeat=3) == Counter({"AES-CTR mask": 4, "AES-GCM seal": 2, "AES-GCM open": 2})


def test_traced_sizes_are_what_goes_on_the_wire() -> None:
    calls = bench.trace_primitives(bench.ping_op())
    ping = encode_message(Ping(request_id=b"\x80" * 8, enr_seq=1))
    # A is the peer at FIRST_PORT + 1; B's PONG names that address.
    a_ip, a_port = ip_address("127.0.0.1"), bench.FIRST_PORT + 1
    pong = Pong(request_id=b"\x80" * 8, enr_seq=1, recipient_ip=a_ip, recipient_port=a_port)
    pong_size = len(encode_message(pong))
    assert [sizes for name, sizes in calls if name == "AES-GCM seal"] == [
        (len(ping), MESSAGE_AD_SIZE),
        (pong_size, MESSAGE_AD_SIZE),
    ]
    assert [sizes for name, sizes in calls if name == "AES-GCM open"] == [
        (len(ping), MESSAGE_AD_SIZE),
        (pong_size, MESSAGE_AD_SIZE),
    ]
    # Masking: the sender masks the 55-byte header; the receiver unmasks all after the masking iv.
    header = STATIC_HEADER_SIZE + NODE_ID_SIZE
    masks = [sizes[0] for name, sizes in calls if name == "AES-CTR mask"]
    assert masks == [
        header,
        MESSAGE_PACKET_OVERHEAD - MASKING_IV_SIZE + len(ping),
        header,
        MESSAGE_PACKET_OVERHEAD - MASKING_IV_SIZE + pong_size,
    ]


class _UnitTimer(bench.PrimitiveTimer):  # type: ignore[misc,name-defined]
    """Every primitive costs 1 us of wall and 2 us of CPU: the bound is then a plain count."""

    def cost(self, primitive: str, sizes: tuple[int, ...] = ()) -> object:
        return bench.Cost(1e-6, 2e-6)


def test_the_bound_is_the_sum_over_the_traced_calls() -> None:
    calls = bench.trace_primitives(bench.ping_op()) * 3
    bound = bench.crypto_bound(calls, _UnitTimer(TINY), runs=3)
    assert bound.wall == pytest.approx(8e-6) and bound.cpu == pytest.approx(16e-6)


def test_every_figure_runs_and_has_a_sane_ratio() -> None:
    timer, figures, as_called = bench.measure(TINY, RECORDS)
    assert [f.name for f in figures] == [
        "handshake+PING/PONG, ENR in handshake",
        "handshake+PING/PONG, no ENR",
        "FINDNODE: 16 ENRs, 3/packet (6 pkts)",
        "FINDNODE: 16 ENRs, by size (3 pkts)",
        "PING/PONG on a session",
    ]
    for figure in figures:
        assert figure.cost.wall > 0 and figure.cost.cpu >= 0 and figure.crypto.cpu > 0
        assert math.isfinite(figure.ratio) and math.isfinite(figure.per_second)
    # Every primitive an exchange called was timed, at each size it ran on.
    assert {name for name, _sizes in timer.costs} == set(bench.PRIMITIVE_OPS)
    assert set(as_called) == set(bench.AS_CALLED)
    text = bench.table(timer, figures, as_called)
    for figure in figures:
        (row,) = [line for line in text.splitlines() if line.strip().startswith(figure.name)]
        assert f"{figure.ratio:5.2f}" in row and figure.counted in row


def test_profile_names_the_figure_and_a_wire_function() -> None:
    text = bench.profile_figure("PING/PONG", RECORDS, runs=5)
    assert text.startswith("cProfile of 5 x PING/PONG on a session")
    assert "time inside the counted primitives" in text and "discv5" in text
    assert "no figure matches" in bench.profile_figure("no such figure", RECORDS, runs=1)


def test_cli_help_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "discv5_bench.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--profile" in done.stdout
