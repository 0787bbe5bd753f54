"""Each wire benchmark runs with a tiny iteration count; what it counted and built is checked, never its speed.

The crypto counts are the hand counts written in BENCHMARKS.md (read off wire/discv4.py,
wire/enr.py, wire/rlpx/handshake.py and ecies.py): if the code changes what it computes,
the benchmark's bound follows it and these tests say the write-up must change too.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from ethcrawl.wire.enr import ENR

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    # bench/ is not a package on the test path; load the scripts the way `python bench/x.py` would.
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


wire_bench = _load("wire_bench")
crypto_cost = _load("crypto_cost")

TINY = wire_bench.Timing(min_time=0.0, batch=1)  # three calls per figure
# Not measured: unit costs of 1 us each, so the bounds are plain sums of the counts.
UNIT = crypto_cost.CryptoCost(sign=1e-6, recover=1e-6, ecdh=1e-6, keygen=1e-6, keccak_small=1e-6)


def _sane(figure: object) -> None:
    assert figure.seconds > 0 and figure.crypto > 0  # type: ignore[attr-defined]
    assert math.isfinite(figure.ratio) and figure.ratio > 0  # type: ignore[attr-defined]


def test_discv4_counts_one_signature_or_recovery_per_packet() -> None:
    figures = wire_bench.bench_discv4(UNIT, TINY)
    assert len(figures) == 10  # five packet types, encode and decode each
    for figure in figures:
        _sane(figure)
        if "encode+sign" in figure.name:
            assert figure.counted == "2 keccak + 1 sign"
        else:
            # hash check, signing hash and the sender's node id
            assert figure.counted == "3 keccak + 1 recover"


def test_enr_verify_is_one_ecdsa_verify_and_one_keccak() -> None:
    records = wire_bench.real_records(5)
    assert len(records) == 5
    (figure,) = wire_bench.bench_enr(TINY, records)
    _sane(figure)
    assert figure.counted == "1 ECDSA verify + 1 keccak"


def test_enr_records_are_the_published_ones_from_fixtures() -> None:
    published = json.loads(wire_bench.DNSLIST.read_text())
    assert wire_bench.DNSLIST.is_relative_to(BENCH.parent / "fixtures")
    first = next(iter(published.values()))["record"]
    assert wire_bench.real_records(1) == [ENR.from_text(first).to_rlp()]


def test_enr_records_missing_is_an_error_naming_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No made-up records in its place: a benchmark of records we signed ourselves would measure something else.
    missing = tmp_path / "mainnet.part.nodes.json"
    monkeypatch.setattr(wire_bench, "DNSLIST", missing)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        wire_bench.real_records(5)


@pytest.mark.parametrize(("eip8", "keccaks"), [(True, 8), (False, 10)])
def test_handshake_crypto_matches_the_hand_count(eip8: bool, keccaks: int) -> None:
    a, b = wire_bench.generate_private_key(), wire_bench.generate_private_key()
    counts = wire_bench.count_primitives(lambda: wire_bench.handshake(a, b, eip8=eip8))
    # Per side: ephemeral key + ECIES key; static ECDH, ECIES encrypt, ECIES decrypt, ephemeral ECDH;
    # 4 keccak in derive_secrets and 2 MAC states.  Legacy adds the ephemeral-key hash on both sides.
    assert counts == Counter(
        {"keygen": 4, "ECDH": 8, "sign": 1, "recover": 1, "ECIES sym": 4, "keccak": keccaks, "keccak MAC state": 4}
    )
    bound = wire_bench.handshake_bound(counts, UNIT, ecies_symmetric=1e-6)
    assert bound == pytest.approx(sum(counts.values()) * 1e-6)


def test_handshake_figures() -> None:
    figures = wire_bench.bench_handshakes(UNIT, TINY)
    assert [f.name for f in figures] == ["RLPx handshake EIP-8 (both sides)", "RLPx handshake legacy (both sides)"]
    for figure in figures:
        _sane(figure)
        assert "8 ECDH" in figure.counted and "1 sign" in figure.counted and "1 recover" in figure.counted


def test_frames_flow_both_ways() -> None:
    figures = wire_bench.bench_frames(TINY, sizes=(1024, 4096))
    assert [f.name for f in figures] == [
        "RLPx frames 1 KiB dialer->listener",
        "RLPx frames 1 KiB listener->dialer",
        "RLPx frames 4 KiB dialer->listener",
        "RLPx frames 4 KiB listener->dialer",
    ]
    for figure, size in zip(figures, (1024, 1024, 4096, 4096)):
        _sane(figure)
        assert figure.unit == "MB/s" and figure.value == pytest.approx(size / figure.seconds / 1e6)


def test_table_has_every_column() -> None:
    figures = wire_bench.bench_enr(TINY, wire_bench.real_records(2))
    text = wire_bench.table(UNIT, figures)
    assert "secp256k1 recover" in text
    (row,) = [line for line in text.splitlines() if line.strip().startswith("ENR decode+verify")]
    assert "records/s" in row and "1 ECDSA verify + 1 keccak" in row
    assert f"{figures[0].ratio:5.2f}" in row


def test_profile_names_the_figure_and_a_wire_function() -> None:
    text = wire_bench.profile_figure("discv4 decode+verify Ping")
    assert text.startswith("cProfile of 2,000 x discv4 decode+verify Ping")
    assert "discv4.py" in text
    assert "no figure matches" in wire_bench.profile_figure("no such figure")


def test_cli_help_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "wire_bench.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--profile" in done.stdout


def test_seconds_per_op_reads_the_clock_it_is_given() -> None:
    """crawl_bench compares the crawler's CPU time with the crypto's: both must be read on a CPU clock."""
    ticks = iter(range(1_000_000))

    def clock() -> float:  # 10 ms of "CPU" between two reads, however long the calls took on the wall
        return next(ticks) * 0.01

    assert crypto_cost.seconds_per_op(lambda: None, min_time=0.03, batch=100, clock=clock) == pytest.approx(1e-4)
