"""Wire-layer throughput, each figure beside the crypto it cannot avoid, measured in the same run.

    python bench/wire_bench.py               # about half a minute
    python bench/wire_bench.py --quick       # a few seconds, rougher
    python bench/wire_bench.py --profile "Neighbors"   # cProfile of the first matching figure

Ratio = our seconds per operation / the seconds of the unavoidable crypto of the
same operation (1.00 would mean "nothing but crypto").  The crypto of discv4,
ENR and handshakes is counted by running the operation under cProfile and
counting calls into the primitives (PRIMITIVES), so the bound follows the code
if it changes; the count is printed beside each figure.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import json
import os
import platform
import pstats
import sys
from collections import Counter
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from ipaddress import ip_address
from pathlib import Path
from typing import Callable, Sequence

from coincurve import PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from Crypto.Cipher import AES
from Crypto.Hash import keccak

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crypto_cost import CryptoCost, measure_crypto_cost, per_second, seconds_per_op  # noqa: E402

from ethcrawl.wire import discv4  # noqa: E402
from ethcrawl.wire.crypto import PrivateKey, generate_private_key, keccak256, pubkey_from_private  # noqa: E402
from ethcrawl.wire.discv4 import ENRResponse, Endpoint, FindNode, Neighbors, NodeRecord, Ping, Pong  # noqa: E402
from ethcrawl.wire.enr import ENR  # noqa: E402
from ethcrawl.wire.rlpcodec import as_list, decode as rlp_decode, encode as rlp_encode  # noqa: E402
from ethcrawl.wire.rlpx.connection import FrameReceived, HandshakeCompleted, RLPxConnection  # noqa: E402

__all__ = [
    "Figure",
    "Timing",
    "bench_discv4",
    "bench_enr",
    "bench_frames",
    "bench_handshakes",
    "count_primitives",
    "main",
]

# Real mainnet records, copied into the repository so the figures never depend on a folder beside it.
DNSLIST = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "dnslists" / "mainnet.part.nodes.json"
EXPIRATION = 2_000_000_000  # s since 1970: fixed, far in the future; decode does not read the clock
ECIES_PLAINTEXT = 300  # bytes, about an EIP-8 auth body with padding: the size the ECIES bound is timed on
FRAME_SIZES = (1024, 65536)  # bytes of payload: a typical eth message, and a large block body
HANDSHAKE_KEYS = 64  # static key pairs cycled through, so no cache can favour one pair

# (file suffix, function) -> primitive name.  Calls are counted under cProfile; the
# ECIES entries stand for its symmetric part (KDF, AES-CTR, HMAC): its ECDH and key
# generation are counted on their own.
PRIMITIVES = {
    ("wire/crypto.py", "sign_recoverable"): "sign",
    ("wire/crypto.py", "recover_pubkey"): "recover",
    ("wire/crypto.py", "ecdh_x"): "ECDH",
    ("wire/crypto.py", "generate_private_key"): "keygen",
    ("wire/crypto.py", "keccak256"): "keccak",
    ("wire/crypto.py", "new_keccak256"): "keccak MAC state",
    ("wire/rlpx/ecies.py", "encrypt"): "ECIES sym",
    ("wire/rlpx/ecies.py", "decrypt"): "ECIES sym",
    ("wire/crypto.py", "verify_compact"): "ECDSA verify",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """How long to measure: ``min_time`` seconds per figure, ``batch`` calls between clock reads (None: per bench)."""

    min_time: float
    batch: int | None = None

    def seconds(self, fn: Callable[[], object], default_batch: int = 100) -> float:
        return seconds_per_op(fn, min_time=self.min_time, batch=self.batch or default_batch)


FULL = Timing(min_time=0.6)
QUICK = Timing(min_time=0.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    name: str
    seconds: float  # ours, per operation
    crypto: float  # seconds of unavoidable crypto per operation
    counted: str  # what the crypto bound is made of
    unit: str = "/s"
    value: float | None = None  # None: operations per second

    @property
    def shown(self) -> float:
        return per_second(self.seconds) if self.value is None else self.value

    @property
    def ratio(self) -> float:
        return self.seconds / self.crypto if self.crypto else float("nan")


def count_primitives(fn: Callable[[], object], repeat: int = 1) -> Counter[str]:
    """Calls into each of PRIMITIVES made by one ``fn()`` (averaged over ``repeat`` runs, rounded)."""
    profiler = cProfile.Profile()
    for _ in range(repeat):
        profiler.runcall(fn)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    counts: Counter[str] = Counter()
    for (filename, _line, function), (_cc, calls, *_rest) in stats.items():
        for (suffix, name), primitive in PRIMITIVES.items():
            if function == name and filename.replace(os.sep, "/").endswith(suffix):
                counts[primitive] += calls
    return Counter({name: round(n / repeat) for name, n in counts.items()})


def describe(counts: Counter[str]) -> str:
    return " + ".join(f"{n} {name}" for name, n in sorted(counts.items()) if n)


def _keccak_of(data: bytes, timing: Timing) -> float:
    return timing.seconds(lambda: keccak256(data))


# --- discv4 --------------------------------------------------------------------------------


def sample_packets() -> dict[str, discv4.Packet]:
    here = Endpoint(ip=ip_address("127.0.0.1"), udp=30303, tcp=30303)
    there = Endpoint(ip=ip_address("10.1.2.3"), udp=30303, tcp=30303)
    nodes = tuple(
        NodeRecord(
            ip=ip_address(f"2001:db8::{i + 1}"), udp=30303, tcp=30303, pubkey=pubkey_from_private(generate_private_key())
        )
        for i in range(discv4.MAX_NEIGHBORS)
    )
    record = real_records(1)[0]
    return {
        "Ping": Ping(version=4, from_=here, to=there, expiration=EXPIRATION, enr_seq=3),
        "Pong": Pong(to=there, ping_hash=b"\x01" * 32, expiration=EXPIRATION, enr_seq=3),
        "FindNode": FindNode(target=b"\x02" * 64, expiration=EXPIRATION),
        "Neighbors (12 IPv6)": Neighbors(nodes=nodes, expiration=EXPIRATION),
        "ENRResponse (mainnet ENR)": ENRResponse(request_hash=b"\x03" * 32, record=record),
    }


def bench_discv4(cost: CryptoCost, timing: Timing) -> list[Figure]:
    """encode+sign and decode+verify of each packet type; keccak bounds timed on the packet's own bytes."""
    key = generate_private_key()
    figures: list[Figure] = []
    for name, packet in sample_packets().items():
        data = discv4.encode(packet, key)
        signed, body = data[discv4.HASH_SIZE + discv4.SIGNATURE_SIZE :], data[discv4.HASH_SIZE :]
        # encode: keccak(type || data) is signed; keccak(sig || type || data) is the packet hash.
        encode_counts = count_primitives(lambda: discv4.encode(packet, key))
        sign_bound = cost.sign + _keccak_of(signed, timing) + _keccak_of(body, timing)
        # decode: the hash check over sig || type || data, the signing hash, and (if decode
        # computes it) the sender's node id over the 64-byte key.
        decode_counts = count_primitives(lambda: discv4.decode(data))
        verify_bound = cost.recover + _keccak_of(body, timing) + _keccak_of(signed, timing)
        verify_bound += (decode_counts["keccak"] - 2) * cost.keccak_small
        figures.append(
            Figure(
                name=f"discv4 encode+sign {name}",
                seconds=timing.seconds(lambda: discv4.encode(packet, key)),
                crypto=sign_bound,
                counted=describe(encode_counts),
                unit="packets/s",
            )
        )
        figures.append(
            Figure(
                name=f"discv4 decode+verify {name}",
                seconds=timing.seconds(lambda: discv4.decode(data)),
                crypto=verify_bound,
                counted=describe(decode_counts),
                unit="packets/s",
            )
        )
    return figures


# --- ENR -----------------------------------------------------------------------------------


def real_records(limit: int = 200) -> list[bytes]:
    """RLP of real mainnet records from the published DNS list in fixtures/; raises if that file is missing.

    No made-up fallback: records we sign ourselves have other sizes and keys than real ones, so the
    figures would silently measure something else.
    """
    if not DNSLIST.exists():
        raise FileNotFoundError(f"{DNSLIST} is missing: the ENR figures need the real records (restore fixtures/)")
    entries = json.loads(DNSLIST.read_text())
    return [ENR.from_text(e["record"]).to_rlp() for e in list(entries.values())[:limit]]


def _raw_verify_cost(record: ENR, timing: Timing) -> float:
    """coincurve alone: parse the compressed key, convert the signature, verify; plus keccak of the content."""
    key = record.pairs[b"secp256k1"]
    assert isinstance(key, bytes)
    content = rlp_encode(as_list(rlp_decode(record.raw), "record")[1:])  # everything but the signature
    content_hash = keccak256(content)

    def verify() -> None:
        der = cdata_to_der(deserialize_compact(record.signature))
        assert PublicKey(key).verify(der, content_hash, hasher=None)

    return timing.seconds(verify) + _keccak_of(content, timing)


def bench_enr(timing: Timing, records: Sequence[bytes] | None = None) -> list[Figure]:
    """ENR.from_rlp (decode + v4 signature check) cycling over real records."""
    records = list(records) if records is not None else real_records()
    index = [0]

    def decode_record() -> None:
        ENR.from_rlp(records[index[0] % len(records)])
        index[0] += 1

    counts = count_primitives(lambda: ENR.from_rlp(records[0]))
    bound = _raw_verify_cost(ENR.from_rlp(records[0]), timing)
    return [
        Figure(
            name=f"ENR decode+verify ({len(records)} real records)",
            seconds=timing.seconds(decode_record),
            crypto=bound,
            counted=describe(counts),
            unit="records/s",
        )
    ]


# --- RLPx ----------------------------------------------------------------------------------


def handshake(a: PrivateKey, b: PrivateKey, *, eip8: bool) -> tuple[RLPxConnection, RLPxConnection]:
    """One complete handshake between static keys ``a`` (dialing) and ``b``, both sides in this process."""
    initiator = RLPxConnection.initiator(a, pubkey_from_private(b), eip8=eip8)
    recipient = RLPxConnection.recipient(b)
    events = recipient.receive_data(initiator.data_to_send())
    events += initiator.receive_data(recipient.data_to_send())
    if sum(isinstance(event, HandshakeCompleted) for event in events) != 2:
        raise RuntimeError(f"handshake did not complete on both sides: {events}")
    return initiator, recipient


def _ecies_symmetric_cost(timing: Timing) -> float:
    """ECIES without its ECDH: concat-KDF (SHA-256), the MAC key hash, AES-128-CTR and HMAC-SHA256."""
    shared, iv, plaintext = os.urandom(32), os.urandom(16), os.urandom(ECIES_PLAINTEXT)

    def symmetric() -> None:
        material = hashlib.sha256(b"\x00\x00\x00\x01" + shared).digest()
        mac_key = hashlib.sha256(material[16:]).digest()
        ciphertext = AES.new(material[:16], AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(plaintext)
        hmac.new(mac_key, iv + ciphertext, hashlib.sha256).digest()

    return timing.seconds(symmetric)


def handshake_bound(counts: Counter[str], cost: CryptoCost, ecies_symmetric: float) -> float:
    unit = {
        "keygen": cost.keygen,
        "ECDH": cost.ecdh,
        "sign": cost.sign,
        "recover": cost.recover,
        "keccak": cost.keccak_small,
        # a running state absorbing one auth/ack of a few hundred bytes: about one small keccak
        "keccak MAC state": cost.keccak_small,
        "ECIES sym": ecies_symmetric,
    }
    return sum(unit[name] * n for name, n in counts.items())


def bench_handshakes(cost: CryptoCost, timing: Timing) -> list[Figure]:
    """Full handshakes per second, both sides in one process, EIP-8 and legacy."""
    keys = [(generate_private_key(), generate_private_key()) for _ in range(HANDSHAKE_KEYS)]
    ecies_symmetric = _ecies_symmetric_cost(timing)
    figures = []
    for eip8, label in ((True, "EIP-8"), (False, "legacy")):
        pick = [0]

        def one() -> None:
            a, b = keys[pick[0] % len(keys)]
            pick[0] += 1
            handshake(a, b, eip8=eip8)

        counts = count_primitives(one, repeat=3)
        figures.append(
            Figure(
                name=f"RLPx handshake {label} (both sides)",
                seconds=timing.seconds(one, default_batch=5),
                crypto=handshake_bound(counts, cost, ecies_symmetric),
                counted=describe(counts),
                unit="handshakes/s",
            )
        )
    return figures


def _frame_crypto(size: int) -> Callable[[], None]:
    """The symmetric crypto of one frame of ``size`` payload bytes, sender and receiver (frame.py's work).

    Per side: AES-256-CTR over the 16-byte header and the padded frame data, the
    keccak state absorbing the frame ciphertext and two 16-byte seeds, five digests
    and two AES-ECB whitening blocks.
    """
    secret = os.urandom(32)
    padded = -(-(size + 1) // 16) * 16  # rlp(msg-id) is one byte here
    header, data, block = bytes(16), bytes(padded), bytes(16)
    sides = [
        (
            AES.new(secret, AES.MODE_CTR, nonce=b"", initial_value=bytes(16)),
            AES.new(secret, AES.MODE_ECB),
            keccak.new(digest_bits=256, update_after_digest=True),
        )
        for _ in range(2)
    ]

    def crypto() -> None:
        for ctr, ecb, state in sides:
            ctr.encrypt(header)
            ecb.encrypt(state.digest()[:16])
            state.update(block)
            state.digest()
            ctr.encrypt(data)
            state.update(data)
            state.digest()
            ecb.encrypt(state.digest()[:16])
            state.update(block)
            state.digest()

    return crypto


def bench_frames(timing: Timing, sizes: Sequence[int] = FRAME_SIZES) -> list[Figure]:
    """Payload MB/s through RLPxConnection (encode, MAC, decrypt, verify), each direction."""
    a, b = generate_private_key(), generate_private_key()
    figures = []
    for size in sizes:
        payload = os.urandom(size)
        bound = timing.seconds(_frame_crypto(size), default_batch=20)
        initiator, recipient = handshake(a, b, eip8=True)
        for sender, receiver, direction in ((initiator, recipient, "dialer->listener"), (recipient, initiator, "listener->dialer")):

            def one_frame(sender: RLPxConnection = sender, receiver: RLPxConnection = receiver) -> None:
                sender.send_frame(0x10, payload)
                (event,) = receiver.receive_data(sender.data_to_send())
                if not isinstance(event, FrameReceived) or len(event.payload) != size:
                    raise RuntimeError(f"frame did not arrive whole: {event}")

            seconds = timing.seconds(one_frame, default_batch=20)
            figures.append(
                Figure(
                    name=f"RLPx frames {size // 1024} KiB {direction}",
                    seconds=seconds,
                    crypto=bound,
                    counted="2 x (AES-CTR + keccak absorb of the frame, 5 digests, 2 AES-ECB)",
                    unit="MB/s",
                    value=size / seconds / 1e6,
                )
            )
    return figures


# --- the report ----------------------------------------------------------------------------


def measure(timing: Timing) -> tuple[CryptoCost, list[Figure]]:
    cost = measure_crypto_cost(timing.min_time)
    figures = bench_discv4(cost, timing)
    figures += bench_handshakes(cost, timing)
    figures += bench_enr(timing)
    figures += bench_frames(timing)
    return cost, figures


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def header() -> str:
    libraries = ", ".join(f"{name} {version(name)}" for name in ("coincurve", "pycryptodome", "cramjam"))
    return f"python {platform.python_version()} on {cpu_model()}, {os.cpu_count()} cores\n{libraries}"


def table(cost: CryptoCost, figures: Sequence[Figure]) -> str:
    out = io.StringIO()
    out.write("raw crypto (same run)\n")
    for name, secs in cost.table():
        out.write(f"  {name:44s} {secs * 1e6:9.1f} us  {per_second(secs):11,.0f} /s\n")
    out.write(
        f"\n  {'figure':46s} {'value':>11s} {'unit':12s} {'per op':>9s} {'crypto':>9s} {'ratio':>5s}  crypto counted\n"
    )
    for f in figures:
        out.write(
            f"  {f.name:46s} {f.shown:11,.{0 if f.shown >= 1000 else 1}f} {f.unit:12s} {f.seconds * 1e6:7.1f}us {f.crypto * 1e6:7.1f}us"
            f" {f.ratio:5.2f}  {f.counted}\n"
        )
    return out.getvalue()


def profile_figure(pattern: str) -> str:
    """cProfile of 2,000 runs of the figure named ``pattern`` (a prefix, else any substring): the top functions."""
    key = generate_private_key()
    ops: dict[str, Callable[[], object]] = {}
    for name, packet in sample_packets().items():
        data = discv4.encode(packet, key)
        ops[f"discv4 encode+sign {name}"] = partial(discv4.encode, packet, key)
        ops[f"discv4 decode+verify {name}"] = partial(discv4.decode, data)
    a, b = generate_private_key(), generate_private_key()
    ops["RLPx handshake EIP-8"] = lambda: handshake(a, b, eip8=True)
    ops["RLPx handshake legacy"] = lambda: handshake(a, b, eip8=False)
    records = real_records()
    ops["ENR decode+verify"] = lambda: [ENR.from_rlp(r) for r in records[:10]]
    wanted = pattern.lower()
    starting = [n for n in ops if n.lower().startswith(wanted)]
    chosen = next(iter(starting or [n for n in ops if wanted in n.lower()]), None)
    if chosen is None:
        return f"no figure matches {pattern!r}; one of: {', '.join(ops)}"
    profiler = cProfile.Profile()
    for _ in range(2000):
        profiler.runcall(ops[chosen])
    out = io.StringIO()
    out.write(f"cProfile of 2,000 x {chosen}\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter measurements (rougher figures)")
    parser.add_argument("--profile", metavar="FIGURE", help="profile the first figure whose name contains this")
    args = parser.parse_args(argv)
    timing = QUICK if args.quick else FULL
    print(header())
    if args.profile:
        print(profile_figure(args.profile))
        return
    cost, figures = measure(timing)
    print()
    print(table(cost, figures), end="")


if __name__ == "__main__":
    main()
