"""Discovery v5 throughput between two in-process nodes, each figure beside the crypto it cannot avoid.

    python bench/discv5_bench.py               # about 20 seconds
    python bench/discv5_bench.py --quick       # a few seconds, rougher
    python bench/discv5_bench.py --profile "FINDNODE"   # cProfile of the first matching figure

Two :class:`~ethcrawl.wire.discv5.session.Discv5Protocol` instances, A (the
crawler) and B (a node it asks), hand each other datagrams directly: no sockets,
no trio, so what is measured is the wire layer and the session state machine.

The method is bench/wire_bench.py's.  The crypto an exchange does is COUNTED by
running it under cProfile and counting calls into the primitives (PRIMITIVES),
so the bound follows the code; the sizes each sized primitive (AES-GCM, AES-CTR
masking, keccak) ran on are read off the same calls, and every primitive is then
timed alone, straight on the libraries (coincurve, pycryptodome, hashlib), in
the same run.  Ratio = our CPU seconds per exchange / the CPU seconds of its
primitives (1.00 would mean "nothing but crypto").  Wall and CPU time
(time.perf_counter, time.process_time) are both reported per exchange.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import itertools
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from types import FrameType
from typing import Any

from coincurve import PrivateKey as RawPrivateKey
from coincurve import PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from Crypto.Cipher import AES
from Crypto.Hash import SHA256, keccak

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crypto_cost import per_second  # noqa: E402
from ethcrawl.wire.crypto import generate_private_key  # noqa: E402
from ethcrawl.wire.discv5.crypto import ID_SIGNATURE_TEXT, KDF_INFO_TEXT, TAG_SIZE  # noqa: E402
from ethcrawl.wire.discv5.messages import FindNode, Message, Nodes, Ping, Pong, split_nodes  # noqa: E402
from ethcrawl.wire.discv5.session import (  # noqa: E402
    Address,
    Config,
    Discv5Protocol,
    HandshakeCompleted,
    MessageReceived,
    Outgoing,
    PacketDropped,
)
from ethcrawl.wire.enr import ENR  # noqa: E402
from wire_bench import describe, header, real_records  # noqa: E402

__all__ = [
    "PRIMITIVES",
    "Budget",
    "Cost",
    "Figure",
    "Link",
    "Peer",
    "bench",
    "count_primitives",
    "crypto_bound",
    "main",
    "make_peer",
    "measure_cost",
    "scenarios",
    "trace_primitives",
]

RECORDS_SERVED = 16  # ENRs in B's answer to one FINDNODE: a full Kademlia bucket (the spec's and geth's limit)
CHAINSAFE_PER_PACKET = 3  # records per NODES message @chainsafe/discv5 sends (INTEROP.md), so 16 take 6 packets
HANDSHAKE_INITIATORS = 16  # A's cycled through in the handshake figures, so no cache favours one key pair
CLOCK_STEP = 10.0  # s of injected time per exchange: past every rate limit and timeout of Config
FIRST_PORT = 30400  # UDP ports in the peers' ENRs; nothing binds them
ROUNDS = 3  # timing rounds per figure, the best one kept
PROFILE_RUNS = 500  # exchanges under cProfile for --profile

# (file suffix, function) -> primitive name.  Calls are counted under cProfile.  The
# ephemeral key is counted at the session's _ephemeral_key and the id-proof hash at
# _id_signature_hash: the wire layer has no public function for either.
PRIMITIVES = {
    ("wire/crypto.py", "ecdh_compressed"): "ECDH",
    ("wire/crypto.py", "sign_recoverable"): "sign",
    ("wire/crypto.py", "verify_compact"): "ECDSA verify",
    ("wire/crypto.py", "keccak256"): "keccak",
    ("wire/discv5/session.py", "_ephemeral_key"): "keygen",
    ("wire/discv5/crypto.py", "derive_keys"): "HKDF",
    ("wire/discv5/crypto.py", "_id_signature_hash"): "SHA-256 id proof",
    ("wire/discv5/crypto.py", "encrypt_message"): "AES-GCM seal",
    ("wire/discv5/crypto.py", "decrypt_message"): "AES-GCM open",
    ("wire/discv5/crypto.py", "mask"): "AES-CTR mask",
}


def _sizes_mask(args: dict[str, Any]) -> tuple[int, ...]:
    return (len(args["data"]),)


def _sizes_seal(args: dict[str, Any]) -> tuple[int, ...]:
    return (len(args["plaintext"]), len(args["ad"]))


def _sizes_open(args: dict[str, Any]) -> tuple[int, ...]:
    return (max(len(args["ciphertext"]) - TAG_SIZE, 0), len(args["ad"]))


def _sizes_keccak(args: dict[str, Any]) -> tuple[int, ...]:
    return (len(args["data"]),)


# The input sizes a sized primitive's cost depends on, read from the call's arguments.
SIZED: dict[str, Callable[[dict[str, Any]], tuple[int, ...]]] = {
    "AES-CTR mask": _sizes_mask,
    "AES-GCM seal": _sizes_seal,
    "AES-GCM open": _sizes_open,
    "keccak": _sizes_keccak,
}


# --- measuring -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cost:
    """Seconds per operation on the wall clock and in process CPU time."""

    wall: float
    cpu: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.wall + other.wall, self.cpu + other.cpu)

    def scaled(self, factor: float) -> Cost:
        return Cost(self.wall * factor, self.cpu * factor)


ZERO = Cost(0.0, 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """How long to measure: ``figure_time`` s per figure, ``primitive_time`` s per primitive and size."""

    figure_time: float
    primitive_time: float
    batch: int | None = None  # calls between clock reads; None: per kind of operation


FULL = Budget(figure_time=1.5, primitive_time=0.15)
QUICK = Budget(figure_time=0.2, primitive_time=0.03)


def measure_cost(fn: Callable[[], object], *, min_time: float, batch: int) -> Cost:
    """Best-of-ROUNDS mean wall and CPU seconds per call of ``fn``, each round running >= min_time/ROUNDS."""
    best_wall = best_cpu = float("inf")
    for _ in range(ROUNDS):
        n = 0
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        while True:
            for _ in range(batch):
                fn()
            n += batch
            wall = time.perf_counter() - wall_start
            if wall >= min_time / ROUNDS:
                break
        cpu = time.process_time() - cpu_start
        best_wall, best_cpu = min(best_wall, wall / n), min(best_cpu, cpu / n)
    return Cost(best_wall, best_cpu)


def _primitive_of(filename: str, function: str) -> str | None:
    path = filename.replace(os.sep, "/")
    for (suffix, name), primitive in PRIMITIVES.items():
        if function == name and path.endswith(suffix):
            return primitive
    return None


def count_primitives(fn: Callable[[], object], repeat: int = 1) -> Counter[str]:
    """Calls into each of PRIMITIVES made by one ``fn()`` (averaged over ``repeat`` runs, rounded)."""
    profiler = cProfile.Profile()
    for _ in range(repeat):
        profiler.runcall(fn)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    counts: Counter[str] = Counter()
    for (filename, _line, function), (_cc, calls, *_rest) in stats.items():
        primitive = _primitive_of(filename, function)
        if primitive is not None:
            counts[primitive] += calls
    return Counter({name: round(n / repeat) for name, n in counts.items()})


def trace_primitives(fn: Callable[[], object]) -> list[tuple[str, tuple[int, ...]]]:
    """Every call into PRIMITIVES made by one ``fn()``, in order, with the input sizes its cost depends on."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    seen: dict[tuple[str, str], str | None] = {}

    def hook(frame: FrameType, event: str, _arg: object) -> None:
        if event != "call":
            return
        code = frame.f_code
        where = (code.co_filename, code.co_name)
        if where not in seen:
            seen[where] = _primitive_of(*where)
        primitive = seen[where]
        if primitive is not None:
            sizes = SIZED.get(primitive)
            calls.append((primitive, sizes(frame.f_locals) if sizes else ()))

    sys.setprofile(hook)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


# --- the primitives alone, straight on the libraries -----------------------------------------


def _ecdh() -> Callable[[], object]:
    secret = RawPrivateKey().secret
    other = RawPrivateKey().public_key.format(compressed=True)  # peers' keys arrive compressed (ENR, eph key)
    return lambda: PublicKey(other).multiply(secret).format(compressed=True)


def _keygen() -> Callable[[], object]:
    # A random scalar and one point multiplication: what an ephemeral key needs (coincurve's
    # PrivateKey also derives an x-only key, a second multiplication; see the --profile notes).
    return lambda: PublicKey.from_secret(os.urandom(32)).format(compressed=True)


def _sign() -> Callable[[], object]:
    key, digest = RawPrivateKey(), os.urandom(32)
    return lambda: key.sign_recoverable(digest, hasher=None)


def _verify() -> Callable[[], object]:
    key, digest = RawPrivateKey(), os.urandom(32)
    signature = key.sign_recoverable(digest, hasher=None)[:64]
    public = key.public_key.format(compressed=True)  # ENRs and id proofs both check against the 33-byte key

    def verify() -> None:
        if not PublicKey(public).verify(cdata_to_der(deserialize_compact(signature)), digest, hasher=None):
            raise RuntimeError("the timed signature does not verify")

    return verify


def _hkdf() -> Callable[[], object]:
    # RFC 5869 with HMAC-SHA256 for 32 bytes: one extract, one expand block.
    secret, salt = os.urandom(33), os.urandom(63)  # compressed point; challenge-data
    info = KDF_INFO_TEXT + os.urandom(64)

    def hkdf() -> bytes:
        prk = hmac.digest(salt, secret, "sha256")
        return hmac.digest(prk, info + b"\x01", "sha256")

    return hkdf


def _id_proof_hash() -> Callable[[], object]:
    data = ID_SIGNATURE_TEXT + os.urandom(63 + 33 + 32)  # challenge-data, eph-pubkey, node-id-B
    return lambda: hashlib.sha256(data).digest()


def _gcm_seal(plaintext_size: int, ad_size: int) -> Callable[[], object]:
    key, nonce, plaintext, ad = os.urandom(16), os.urandom(12), os.urandom(plaintext_size), os.urandom(ad_size)

    def seal() -> object:
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
        cipher.update(ad)
        return cipher.encrypt_and_digest(plaintext)

    return seal


def _gcm_open(plaintext_size: int, ad_size: int) -> Callable[[], object]:
    key, nonce, ad = os.urandom(16), os.urandom(12), os.urandom(ad_size)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(ad)
    ciphertext, tag = cipher.encrypt_and_digest(os.urandom(plaintext_size))

    def open_() -> object:
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
        cipher.update(ad)
        return cipher.decrypt_and_verify(ciphertext, tag)

    return open_


def _ctr(size: int) -> Callable[[], object]:
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(size)
    return lambda: AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(data)


def _keccak(size: int) -> Callable[[], object]:
    data = os.urandom(size)
    return lambda: keccak.new(data=data, digest_bits=256).digest()


PRIMITIVE_OPS: dict[str, Callable[..., Callable[[], object]]] = {
    "ECDH": _ecdh,
    "keygen": _keygen,
    "sign": _sign,
    "ECDSA verify": _verify,
    "HKDF": _hkdf,
    "SHA-256 id proof": _id_proof_hash,
    "AES-GCM seal": _gcm_seal,
    "AES-GCM open": _gcm_open,
    "AES-CTR mask": _ctr,
    "keccak": _keccak,
}

# What the wire layer's own calls cost where they go through a slower path than the
# bound above (printed beside the raw table; the gap is ours, not the crypto's).
def _coincurve_private_key() -> Callable[[], object]:
    return lambda: RawPrivateKey(os.urandom(32)).public_key.format(compressed=True)


AS_CALLED: dict[str, Callable[[], Callable[[], object]]] = {
    "keygen as the session makes it (coincurve PrivateKey)": _coincurve_private_key,
}


class PrimitiveTimer:
    """Times each primitive at each input size once per run and remembers the result."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self.costs: dict[tuple[str, tuple[int, ...]], Cost] = {}

    def cost(self, primitive: str, sizes: tuple[int, ...] = ()) -> Cost:
        key = (primitive, sizes)
        if key not in self.costs:
            op = PRIMITIVE_OPS[primitive](*sizes)
            self.costs[key] = measure_cost(op, min_time=self._budget.primitive_time, batch=self._budget.batch or 50)
        return self.costs[key]


def crypto_bound(calls: Sequence[tuple[str, tuple[int, ...]]], timer: PrimitiveTimer, runs: int = 1) -> Cost:
    """The summed cost of ``calls`` (from trace_primitives over ``runs`` exchanges), per exchange."""
    total = ZERO
    for primitive, sizes in calls:
        total = total + timer.cost(primitive, sizes)
    return total.scaled(1 / runs)


# --- two nodes in one process --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    node_id: bytes
    addr: Address
    enr: ENR
    proto: Discv5Protocol


def make_peer(port: int, config: Config | None = None) -> Peer:
    key = generate_private_key()
    addr: Address = ("127.0.0.1", port)
    enr = ENR.create(key, seq=1, pairs={"ip": addr[0], "udp": port})
    assert enr.node_id is not None
    return Peer(node_id=enr.node_id, addr=addr, enr=enr, proto=Discv5Protocol(key, enr, config=config))


class Link:
    """A (the asker) and B (the answerer) passing datagrams straight to each other.

    B answers as a discv5 node does: PING with PONG, FINDNODE with the NODES
    messages ``nodes_replies`` builds.  :meth:`exchange` runs one request to
    quiet and returns the messages A received; any dropped packet is a bug in
    the benchmark or the protocol, so it raises.
    """

    def __init__(self, a: Peer, b: Peer, nodes_replies: Callable[[bytes], list[Nodes]] | None = None) -> None:
        self.a, self.b = a, b
        a.proto.add_enr(b.enr)
        self._peers = {a.addr: a, b.addr: b}
        self._nodes_replies = nodes_replies or (lambda request_id: split_nodes(request_id, []))
        self._a_ip = ip_address(a.addr[0])
        self._answers: dict[type[Message], Callable[[Any], list[Message]]] = {
            Ping: self._pong,
            FindNode: self._nodes,
        }

    def _pong(self, ping: Ping) -> list[Message]:
        return [
            Pong(
                request_id=ping.request_id,
                enr_seq=self.b.enr.seq,
                recipient_ip=self._a_ip,
                recipient_port=self.a.addr[1],
            )
        ]

    def _nodes(self, findnode: FindNode) -> list[Message]:
        return list(self._nodes_replies(findnode.request_id))

    def exchange(self, request: Message, now: float) -> list[Message]:
        a, b = self.a, self.b
        queue = [(b, a.addr, out.data) for out in a.proto.send_message(b.node_id, b.addr, request, now=now)]
        received: list[Message] = []
        while queue:
            dest, src_addr, datagram = queue.pop(0)
            for event in dest.proto.receive(datagram, src_addr, now):
                if isinstance(event, Outgoing):
                    queue.append((self._peers[event.addr], dest.addr, event.data))
                elif isinstance(event, MessageReceived) and dest is b:
                    for reply in self._answers[type(event.message)](event.message):
                        sent = b.proto.send_message(a.node_id, a.addr, reply, now=now)
                        queue += [(a, b.addr, out.data) for out in sent]
                elif isinstance(event, MessageReceived):
                    received.append(event.message)
                elif isinstance(event, PacketDropped):
                    raise RuntimeError(f"{dest.addr} dropped a packet from {src_addr}: {event.error!r}")
                else:
                    assert isinstance(event, HandshakeCompleted)
        return received


def _request_ids() -> Iterator[bytes]:
    # Top bit set: no leading zero byte, which @chainsafe/discv5 11 strips (INTEROP.md).
    return ((1 << 63 | n).to_bytes(8, "big") for n in itertools.count())


def _clock() -> Iterator[float]:
    return itertools.count(0.0, CLOCK_STEP)


def _expect_pong(messages: list[Message]) -> None:
    if len(messages) != 1 or not isinstance(messages[0], Pong):
        raise RuntimeError(f"expected one PONG, got {messages}")


def handshake_op(*, with_enr: bool) -> Callable[[], object]:
    """One handshake carrying a PING, answered by a PONG; both sides' sessions are dropped after it.

    A's record travels in the handshake when B has never seen A (B challenges
    with enr-seq 0, as any node meeting a crawler does); B remembers one record
    only, so with HANDSHAKE_INITIATORS cycled it never has A's.  Without: B was
    given every A's record first, so its challenge names A's current seq.
    """
    b = make_peer(FIRST_PORT, Config(record_cache_size=1) if with_enr else None)
    links = [Link(make_peer(FIRST_PORT + 1 + i), b) for i in range(HANDSHAKE_INITIATORS)]
    if not with_enr:
        for link in links:
            b.proto.add_enr(link.a.enr)
    pick, clock, request_ids = itertools.cycle(links), _clock(), _request_ids()

    def op() -> None:
        link = next(pick)
        a = link.a
        _expect_pong(link.exchange(Ping(request_id=next(request_ids), enr_seq=a.enr.seq), next(clock)))
        a.proto.drop_session(b.node_id, b.addr)
        b.proto.drop_session(a.node_id, a.addr)

    return op


def _established(nodes_replies: Callable[[bytes], list[Nodes]] | None = None) -> tuple[Link, Iterator[float]]:
    link = Link(make_peer(FIRST_PORT + 1), make_peer(FIRST_PORT), nodes_replies)
    clock = _clock()
    _expect_pong(link.exchange(Ping(request_id=b"\x80", enr_seq=link.a.enr.seq), next(clock)))
    return link, clock


def ping_op() -> Callable[[], object]:
    """PING and PONG on an established session: the cheapest exchange there is."""
    link, clock = _established()
    request_ids = _request_ids()
    seq = link.a.enr.seq
    return lambda: _expect_pong(link.exchange(Ping(request_id=next(request_ids), enr_seq=seq), next(clock)))


def chainsafe_split(records: Sequence[bytes]) -> Callable[[bytes], list[Nodes]]:
    groups = [tuple(records[i : i + CHAINSAFE_PER_PACKET]) for i in range(0, len(records), CHAINSAFE_PER_PACKET)]
    return lambda request_id: [Nodes(request_id=request_id, total=len(groups), records=g) for g in groups]


def size_split(records: Sequence[bytes]) -> Callable[[bytes], list[Nodes]]:
    return lambda request_id: split_nodes(request_id, records)


Splitter = Callable[[Sequence[bytes]], Callable[[bytes], list[Nodes]]]


def findnode_op(records: Sequence[bytes], split: Splitter) -> Callable[[], object]:
    """FINDNODE([256]) answered by NODES over several packets; A decodes and verifies every ENR.

    Beyond the signature check A computes each record's node id, as the
    crawler must to file the record (and to check its distance).
    """
    link, clock = _established(split(records))
    request_ids = _request_ids()
    expected = len(records)

    def op() -> None:
        messages = link.exchange(FindNode(request_id=next(request_ids), distances=(256,)), next(clock))
        ids = []
        for message in messages:
            if not isinstance(message, Nodes):
                raise RuntimeError(f"expected NODES, got {message}")
            good, bad = message.enrs()
            if bad:
                raise RuntimeError(f"served records failed to verify: {bad}")
            ids += [record.node_id for record in good]
        if len(ids) != expected or None in ids:
            raise RuntimeError(f"{len(ids)} records verified, {expected} served")

    return op


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    unit: str
    make: Callable[[], Callable[[], object]]
    batch: int  # exchanges between clock reads


def scenarios(records: Sequence[bytes]) -> list[Scenario]:
    packets = len(split_nodes(b"\x80" * 8, records))
    chainsafe = -(-len(records) // CHAINSAFE_PER_PACKET)
    n = len(records)
    return [
        Scenario(
            name="handshake+PING/PONG, ENR in handshake",
            unit="handshakes/s",
            make=lambda: handshake_op(with_enr=True),
            batch=10,
        ),
        Scenario(
            name="handshake+PING/PONG, no ENR",
            unit="handshakes/s",
            make=lambda: handshake_op(with_enr=False),
            batch=10,
        ),
        Scenario(
            name=f"FINDNODE: {n} ENRs, {CHAINSAFE_PER_PACKET}/packet ({chainsafe} pkts)",
            unit="exchanges/s",
            make=lambda: findnode_op(records, chainsafe_split),
            batch=5,
        ),
        Scenario(
            name=f"FINDNODE: {n} ENRs, by size ({packets} pkts)",
            unit="exchanges/s",
            make=lambda: findnode_op(records, size_split),
            batch=5,
        ),
        Scenario(name="PING/PONG on a session", unit="exchanges/s", make=ping_op, batch=50),
    ]


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    name: str
    unit: str
    cost: Cost  # ours, per exchange
    crypto: Cost  # the counted primitives alone, per exchange
    counts: Counter[str]

    @property
    def per_second(self) -> float:
        return per_second(self.cost.wall)

    @property
    def ratio(self) -> float:
        """CPU per exchange over the CPU of its crypto."""
        return self.cost.cpu / self.crypto.cpu if self.crypto.cpu else float("nan")

    @property
    def counted(self) -> str:
        return describe(self.counts)


def bench(scenario: Scenario, timer: PrimitiveTimer, budget: Budget, *, count_runs: int = 4) -> Figure:
    op = scenario.make()
    counts = count_primitives(op, repeat=count_runs)
    calls: list[tuple[str, tuple[int, ...]]] = []
    for _ in range(count_runs):
        calls += trace_primitives(op)
    traced = Counter(primitive for primitive, _sizes in calls)
    if Counter({name: round(n / count_runs) for name, n in traced.items()}) != counts:
        raise RuntimeError(f"cProfile counted {counts}, the size trace saw {traced} over {count_runs} runs")
    return Figure(
        name=scenario.name,
        unit=scenario.unit,
        cost=measure_cost(op, min_time=budget.figure_time, batch=budget.batch or scenario.batch),
        crypto=crypto_bound(calls, timer, runs=count_runs),
        counts=counts,
    )


def _size_text(sizes: Sequence[tuple[int, ...]]) -> str:
    if not sizes or not sizes[0]:
        return ""
    first = sorted({s[0] for s in sizes})
    return f"{first[0]}-{first[-1]} B" if len(first) > 1 else f"{first[0]} B"


def table(timer: PrimitiveTimer, figures: Sequence[Figure], as_called: dict[str, Cost] | None = None) -> str:
    out = io.StringIO()
    out.write("raw crypto (same run; CPU per call, over the input sizes the exchanges used)\n")
    by_primitive: dict[str, list[tuple[tuple[int, ...], Cost]]] = {}
    for (primitive, sizes), cost in timer.costs.items():
        by_primitive.setdefault(primitive, []).append((sizes, cost))
    for primitive, entries in by_primitive.items():
        cpus = [c.cpu * 1e6 for _s, c in entries]
        shown = f"{min(cpus):.1f}" if len(cpus) == 1 else f"{min(cpus):.1f}-{max(cpus):.1f}"
        out.write(f"  {primitive:18s} {_size_text([s for s, _c in entries]):>12s} {shown:>12s} us\n")
    for name, cost in (as_called or {}).items():
        out.write(f"  ({name}: {cost.cpu * 1e6:.1f} us)\n")
    out.write(
        f"\n  {'figure':40s} {'value':>6s} {'unit':13s} {'wall/op':>10s} {'CPU/op':>10s} {'crypto':>10s} {'ratio':>5s}"
        "  crypto counted (both sides)\n"
    )
    for f in figures:
        out.write(
            f"  {f.name:40s} {f.per_second:6,.0f} {f.unit:13s} {f.cost.wall * 1e6:8.1f}us {f.cost.cpu * 1e6:8.1f}us"
            f" {f.crypto.cpu * 1e6:8.1f}us {f.ratio:5.2f}  {f.counted}\n"
        )
    return out.getvalue()


def measure(budget: Budget, records: Sequence[bytes]) -> tuple[PrimitiveTimer, list[Figure], dict[str, Cost]]:
    timer = PrimitiveTimer(budget)
    figures = [bench(scenario, timer, budget) for scenario in scenarios(records)]
    as_called = {
        name: measure_cost(make(), min_time=budget.primitive_time, batch=budget.batch or 50)
        for name, make in AS_CALLED.items()
    }
    return timer, figures, as_called


def profile_figure(pattern: str, records: Sequence[bytes], runs: int = PROFILE_RUNS) -> str:
    """cProfile of ``runs`` exchanges of the figure named ``pattern`` (a prefix, else any substring)."""
    named = scenarios(records)
    wanted = pattern.lower()
    starting = [s for s in named if s.name.lower().startswith(wanted)]
    chosen = next(iter(starting or [s for s in named if wanted in s.name.lower()]), None)
    if chosen is None:
        return f"no figure matches {pattern!r}; one of: {', '.join(s.name for s in named)}"
    op = chosen.make()
    profiler = cProfile.Profile()
    for _ in range(runs):
        profiler.runcall(op)
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(tottime for (_cc, _n, tottime, _cum, _callers) in raw.values())
    in_primitives = sum(
        cumtime for (filename, _line, function), (_cc, _n, _tot, cumtime, _callers) in raw.items()
        if _primitive_of(filename, function) is not None
    )
    out = io.StringIO()
    out.write(f"cProfile of {runs:,} x {chosen.name}\n")
    out.write(f"time inside the counted primitives (cumulative): {in_primitives / total:.0%} of {total:.2f} s\n")
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter measurements (rougher figures)")
    parser.add_argument("--profile", metavar="FIGURE", help="profile the first figure whose name contains this")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    records = real_records(RECORDS_SERVED)
    print(header())
    print(f"NODES serve {len(records)} real mainnet ENRs of {min(map(len, records))}-{max(map(len, records))} bytes")
    if args.profile:
        print(profile_figure(args.profile, records))
        return
    timer, figures, as_called = measure(budget, records)
    print()
    print(table(timer, figures, as_called), end="")


if __name__ == "__main__":
    main()
