"""Wire-layer throughput, each figure beside the crypto it cannot avoid, measured in the same run.

    python bench/wire_bench.py            # about a minute
    python bench/wire_bench.py --quick    # a few seconds, rougher

Ratio = our seconds per operation / the seconds of the unavoidable crypto of the
same operation (1.0 would mean "nothing but crypto").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import dataclass
from importlib.metadata import version
from ipaddress import ip_address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crypto_cost import CryptoCost, measure_crypto_cost, per_second, seconds_per_op  # noqa: E402

from ethcrawl.wire import discv4  # noqa: E402
from ethcrawl.wire.crypto import PrivateKey, generate_private_key, pubkey_from_private  # noqa: E402
from ethcrawl.wire.discv4 import ENRResponse, Endpoint, FindNode, Neighbors, NodeRecord, Ping, Pong  # noqa: E402
from ethcrawl.wire.enr import ENR  # noqa: E402
from ethcrawl.wire.rlpx.connection import HandshakeCompleted, RLPxConnection  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EXPIRATION = 2_000_000_000  # a fixed far-future expiration; decode does not read the clock


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    seconds: float  # per operation
    crypto: float  # seconds of unavoidable crypto per operation
    crypto_what: str

    @property
    def ratio(self) -> float:
        return self.seconds / self.crypto if self.crypto else float("nan")


def sample_packets() -> dict[str, discv4.Packet]:
    here = Endpoint(ip=ip_address("127.0.0.1"), udp=30303, tcp=30303)
    there = Endpoint(ip=ip_address("10.1.2.3"), udp=30303, tcp=30303)
    nodes = tuple(
        NodeRecord(ip=ip_address(f"2001:db8::{i + 1}"), udp=30303, tcp=30303, pubkey=pubkey_from_private(generate_private_key()))
        for i in range(discv4.MAX_NEIGHBORS)
    )
    record = ENR.create(generate_private_key(), seq=7, pairs={"ip": ip_address("127.0.0.1"), "udp": 30303, "tcp": 30303})
    return {
        "Ping": Ping(version=4, from_=here, to=there, expiration=EXPIRATION, enr_seq=3),
        "Pong": Pong(to=there, ping_hash=b"\x01" * 32, expiration=EXPIRATION, enr_seq=3),
        "FindNode": FindNode(target=b"\x02" * 64, expiration=EXPIRATION),
        "Neighbors (12 IPv6)": Neighbors(nodes=nodes, expiration=EXPIRATION),
        "ENRResponse": ENRResponse(request_hash=b"\x03" * 32, record=record.to_rlp()),
    }


def handshake(a: PrivateKey, b: PrivateKey, eip8: bool) -> None:
    """One complete handshake between two static keys, both sides in this process."""
    initiator = RLPxConnection.initiator(a, pubkey_from_private(b), eip8=eip8)
    recipient = RLPxConnection.recipient(b)
    done = 0
    for event in recipient.receive_data(initiator.data_to_send()):
        done += isinstance(event, HandshakeCompleted)
    for event in initiator.receive_data(recipient.data_to_send()):
        done += isinstance(event, HandshakeCompleted)
    assert done == 2


def frame_pair(size: int) -> tuple[RLPxConnection, RLPxConnection, bytes]:
    a, b = generate_private_key(), generate_private_key()
    initiator = RLPxConnection.initiator(a, pubkey_from_private(b))
    recipient = RLPxConnection.recipient(b)
    recipient.receive_data(initiator.data_to_send())
    initiator.receive_data(recipient.data_to_send())
    return initiator, recipient, os.urandom(size)


def real_records(limit: int = 200) -> list[bytes]:
    path = SHARED / "data" / "dnslists" / "mainnet.part.nodes.json"
    if not path.exists():
        return [ENR.create(generate_private_key(), seq=1, pairs={"udp": 30303}).to_rlp() for _ in range(limit)]
    entries = json.loads(path.read_text())
    return [ENR.from_text(e["record"]).to_rlp() for e in list(entries.values())[:limit]]


def measure(min_time: float) -> tuple[CryptoCost, list[Figure], list[tuple[str, float]]]:
    cost = measure_crypto_cost(min_time)
    key = generate_private_key()
    figures: list[Figure] = []
    # encode+sign: keccak(type||data) to sign, one signature, keccak(sig||type||data) for the hash.
    sign_bound = cost.sign + 2 * cost.keccak_small
    # decode+verify: the hash check, the signing hash, one recovery, and the node id keccak.
    verify_bound = cost.recover + 3 * cost.keccak_small
    for name, packet in sample_packets().items():
        data = discv4.encode(packet, key)
        figures.append(Figure(f"discv4 encode+sign {name}", seconds_per_op(lambda: discv4.encode(packet, key), min_time=min_time), sign_bound, "sign + 2 keccak"))
        figures.append(Figure(f"discv4 decode+verify {name}", seconds_per_op(lambda: discv4.decode(data), min_time=min_time), verify_bound, "recover + 3 keccak"))
    # One RLPx handshake, both sides (counted in wire/rlpx/handshake.py and ecies.py):
    # initiator: ephemeral key + ECIES key (2 keygens), static ECDH for the auth token, ECIES
    #   encrypt (1 ECDH), ECIES decrypt of the ack (1 ECDH), ephemeral ECDH for the secrets, 1 sign;
    # recipient: ECIES decrypt (1 ECDH), static ECDH, 1 recovery of the initiator's ephemeral key,
    #   ephemeral key + ECIES key (2 keygens), ECIES encrypt (1 ECDH), ephemeral ECDH.
    hs_bound = 4 * cost.keygen + 7 * cost.ecdh + cost.sign + cost.recover
    hs_what = "4 keygen + 7 ECDH + sign + recover"
    static = [(generate_private_key(), generate_private_key()) for _ in range(64)]
    pick = [0]

    def handshake_pair(eip8: bool) -> None:
        a, b = static[pick[0] % len(static)]
        pick[0] += 1
        handshake(a, b, eip8)

    figures.append(Figure("RLPx handshake EIP-8 (both sides)", seconds_per_op(lambda: handshake_pair(True), min_time=min_time, batch=5), hs_bound, hs_what))
    figures.append(Figure("RLPx handshake legacy (both sides)", seconds_per_op(lambda: handshake_pair(False), min_time=min_time, batch=5), hs_bound, hs_what))
    records = real_records()
    index = [0]

    def decode_record() -> None:
        ENR.from_rlp(records[index[0] % len(records)])
        index[0] += 1

    # ENR verify: one ECDSA verification (about one recovery's cost) and one keccak.
    figures.append(Figure("ENR decode+verify (real mainnet records)", seconds_per_op(decode_record, min_time=min_time), cost.recover + cost.keccak_small, "verify + keccak"))
    throughput: list[tuple[str, float]] = []
    for size in (1024, 65536):
        initiator, recipient, payload = frame_pair(size)

        def one_frame() -> None:
            initiator.send_frame(0x10, payload)
            recipient.receive_data(initiator.data_to_send())

        seconds = seconds_per_op(one_frame, min_time=min_time, batch=20)
        throughput.append((f"RLPx frames {size // 1024} KiB, encrypt+MAC+decrypt+verify", size / seconds / 1e6))
    return cost, figures, throughput


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter measurements (rougher figures)")
    args = parser.parse_args()
    min_time = 0.1 if args.quick else 0.6
    print(f"python {platform.python_version()} on {cpu_model()}, {os.cpu_count()} cores")
    print("coincurve " + version("coincurve") + ", pycryptodome " + version("pycryptodome") + ", rlp " + version("rlp"))
    cost, figures, throughput = measure(min_time)
    print("\nraw crypto (same run)")
    for name, secs in cost.table():
        print(f"  {name:44s} {secs * 1e6:9.1f} us  {per_second(secs):11,.0f} /s")
    print(f"\n  {'figure':44s} {'per op':>9s}  {'per second':>11s}  {'crypto bound':>12s}  {'ratio':>5s}  bound is")
    for f in figures:
        print(f"  {f.name:44s} {f.seconds * 1e6:7.1f}us  {per_second(f.seconds):11,.0f}  {f.crypto * 1e6:10.1f}us  {f.ratio:5.2f}  {f.crypto_what}")
    print()
    for name, mb in throughput:
        print(f"  {name:60s} {mb:8.1f} MB/s")


if __name__ == "__main__":
    main()
