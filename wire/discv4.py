"""Node discovery v4 packets: sign, verify and (de)serialize, with no I/O.

A packet is ``hash(32) || signature(65) || packet-type(1) || rlp(packet-data)``
where ``signature`` signs ``keccak256(packet-type || packet-data)`` and
``hash = keccak256(signature || packet-type || packet-data)``.  The hash of a
PING (or ENRREQUEST) is what its PONG (or ENRRESPONSE) quotes back.

Following EIP-8, decoding tolerates extra elements at the end of every packet's
list (kept in ``rest`` as raw RLP, like go-ethereum's ``rlp:"tail"``) and any
bytes after the list.  Expiration is a pure function of a caller-supplied
``now``: nothing here reads the clock.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Sequence, TypeAlias


from .crypto import PrivateKey, is_valid_pubkey, keccak256, node_id_from_pubkey, recover_pubkey, sign_recoverable
from .errors import (
    BadHash,
    Expired,
    LocalProtocolError,
    PacketTooLarge,
    PacketTooSmall,
    UnknownPacketType,
    WireError,
)
from .rlpcodec import Item, as_bytes, as_list, as_uint, decode_prefix, encode_uint, length_prefix
from .rlpcodec import decode as rlp_decode
from .rlpcodec import encode as rlp_encode
from .unchecked import construct_unchecked

if TYPE_CHECKING:
    from .enr import ENR

__all__ = [
    "MAX_PACKET_SIZE",
    "HEAD_SIZE",
    "MAX_NEIGHBORS",
    "EXPIRATION",
    "IPAddress",
    "Endpoint",
    "NodeRecord",
    "Ping",
    "Pong",
    "FindNode",
    "Neighbors",
    "ENRRequest",
    "ENRResponse",
    "Packet",
    "PACKET_TYPES",
    "Decoded",
    "encode",
    "decode",
    "is_expired",
    "expiration_for",
    "check_expiration",
    "split_neighbors",
    "looks_like_v4",
]

MAX_PACKET_SIZE = 1280  # bytes, discv4 limit (the IPv6 minimum MTU)
HASH_SIZE = 32  # bytes, keccak256
SIGNATURE_SIZE = 65  # bytes, r || s || recovery id
HEAD_SIZE = HASH_SIZE + SIGNATURE_SIZE  # bytes before the packet-type byte
MAX_NEIGHBORS = 12  # nodes per NEIGHBORS that fit 1280 bytes with IPv6 (13 take 1296)
EXPIRATION = 20  # s, how far ahead we date our packets (geth's expiration)
PUBKEY_SIZE = 64  # bytes, raw x || y
PORT_BITS = 16  # ports are uint16 in geth's Endpoint and Node
UINT64_BITS = 64  # expiration, enr-seq and version are uint64 / uint in geth

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


def _check_uint(value: int, bits: int, what: str) -> None:
    if not 0 <= value < 1 << bits:
        raise LocalProtocolError(f"{what} {value} does not fit an unsigned {bits}-bit integer")


def _check_size(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise LocalProtocolError(f"{what} must be {size} bytes, got {len(value)}")


def _check_rest(rest: tuple[bytes, ...]) -> None:
    # Each element is spliced verbatim into the list, so it must be one whole RLP item.
    for i, raw in enumerate(rest):
        try:
            rlp_decode(raw)
        except WireError as exc:
            raise LocalProtocolError(f"rest[{i}] is not exactly one RLP item: {exc}") from exc


def _reads_as_enr_seq(item: Item) -> bool:
    return isinstance(item, bytes) and item[:1] != b"\x00" and len(item) * 8 <= UINT64_BITS


def _check_enr_seq_slot(enr_seq: int | None, rest: tuple[bytes, ...]) -> None:
    if enr_seq is not None:
        _check_uint(enr_seq, UINT64_BITS, "enr_seq")
    elif rest:
        # Otherwise the encoding would decode back with rest[0] as enr_seq.
        if _reads_as_enr_seq(rlp_decode(rest[0])):
            raise LocalProtocolError("enr_seq is None but rest[0] would decode as an enr_seq")


def _split_enr_seq(tail: list[Item]) -> tuple[int | None, tuple[bytes, ...]]:
    """EIP-868's optional enr-seq, then the EIP-8 extras as raw RLP.

    A first extra element that is not a uint64 is an older EIP-8 filler rather
    than an enr-seq: it goes to ``rest`` instead of failing the packet.
    """
    if not tail:
        return None, ()
    first = tail[0]
    if _reads_as_enr_seq(first):
        assert isinstance(first, bytes)
        return int.from_bytes(first, "big"), _raw(tail[1:])
    return None, _raw(tail)


def _raw(items: Sequence[Item]) -> tuple[bytes, ...]:
    # The decoder only accepts canonical RLP, so re-encoding gives the bytes received.
    return tuple(rlp_encode(item) for item in items)


def _ip_from_rlp(item: Item, field: str) -> IPAddress | None:
    return _ip_from_packed(as_bytes(item, field))


# Addresses recur: each node is listed by ~17 peers' answers.  One object per address saves the parse (~1 us)
# and the memory of a copy per holder; bounded, as the addresses come from strangers (~0.2 MB).
@lru_cache(maxsize=2048)
def _ip_from_packed(raw: bytes) -> IPAddress | None:
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    if len(raw) == 16:
        return ipaddress.IPv6Address(raw)
    # geth decodes such an ip as nil: the rest of the packet is still useful.
    return None


def _short_uint(item: Item, bits: int) -> int | None:
    """``item`` as a canonical unsigned integer of at most ``bits`` bits, or None (then ``as_uint`` says why)."""
    if type(item) is bytes and len(item) * 8 <= bits and item[:1] != b"\x00":
        return int.from_bytes(item, "big")
    return None


def _ip_to_rlp(ip: IPAddress | None) -> bytes:
    return b"" if ip is None else ip.packed


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """An address in PING/PONG; ``ip`` is None when the peer sent neither 4 nor 16 bytes."""

    ip: IPAddress | None
    udp: int
    tcp: int

    def __post_init__(self) -> None:
        _check_uint(self.udp, PORT_BITS, "endpoint udp port")
        _check_uint(self.tcp, PORT_BITS, "endpoint tcp port")

    def to_rlp_item(self) -> list[bytes]:
        return [_ip_to_rlp(self.ip), encode_uint(self.udp), encode_uint(self.tcp)]

    @classmethod
    def from_rlp_item(cls, item: Item, field: str) -> Endpoint:
        # Extra endpoint elements are ignored, as EIP-8 asks of lists.
        ip_item, udp, tcp = as_list(item, field, min_len=3)[:3]
        return cls(
            ip=_ip_from_rlp(ip_item, f"{field}.ip"),
            udp=as_uint(udp, f"{field}.udp", bits=PORT_BITS),
            tcp=as_uint(tcp, f"{field}.tcp", bits=PORT_BITS),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    """One NEIGHBORS entry.

    The constructor checks ``pubkey``'s size only (our own answers carry keys
    we already hold); :class:`Neighbors` decoding drops entries whose key is
    not a secp256k1 point, so a decoded record's key is always one.
    """

    ip: IPAddress | None
    udp: int
    tcp: int
    pubkey: bytes

    def __post_init__(self) -> None:
        _check_uint(self.udp, PORT_BITS, "node udp port")
        _check_uint(self.tcp, PORT_BITS, "node tcp port")
        _check_size(self.pubkey, PUBKEY_SIZE, "node pubkey")

    def to_rlp_item(self) -> list[bytes]:
        return [_ip_to_rlp(self.ip), encode_uint(self.udp), encode_uint(self.tcp), self.pubkey]

    @classmethod
    def from_rlp_item(cls, item: Item, field: str) -> NodeRecord:
        ip_item, udp, tcp, pubkey = as_list(item, field, min_len=4)[:4]
        # Every field is checked as it is read; the constructor would check them again.  A well-formed entry
        # (all of them, from an honest peer) takes the short way, with no field names formatted for errors.
        udp_port, tcp_port = _short_uint(udp, PORT_BITS), _short_uint(tcp, PORT_BITS)
        if udp_port is None or tcp_port is None or type(ip_item) is not bytes or type(pubkey) is not bytes:
            return cls._from_rlp_checked(ip_item, udp, tcp, pubkey, field)
        if len(pubkey) != PUBKEY_SIZE:
            return cls._from_rlp_checked(ip_item, udp, tcp, pubkey, field)
        return construct_unchecked(cls, ip=_ip_from_packed(ip_item), udp=udp_port, tcp=tcp_port, pubkey=pubkey)

    @classmethod
    def _from_rlp_checked(cls, ip_item: Item, udp: Item, tcp: Item, pubkey: Item, field: str) -> NodeRecord:
        return construct_unchecked(
            cls,
            ip=_ip_from_rlp(ip_item, f"{field}.ip"),
            udp=as_uint(udp, f"{field}.udp", bits=PORT_BITS),
            tcp=as_uint(tcp, f"{field}.tcp", bits=PORT_BITS),
            pubkey=as_bytes(pubkey, f"{field}.pubkey", length=PUBKEY_SIZE),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """PING (0x01).  ``version`` is not checked: the spec says to ignore mismatches."""

    packet_type: ClassVar[int] = 0x01
    name: ClassVar[str] = "PING/v4"

    version: int
    from_: Endpoint
    to: Endpoint
    expiration: int
    enr_seq: int | None = None
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_uint(self.version, UINT64_BITS, "ping version")
        _check_uint(self.expiration, UINT64_BITS, "expiration")
        _check_rest(self.rest)
        _check_enr_seq_slot(self.enr_seq, self.rest)

    def rlp_fields(self) -> list[Any]:
        fields: list[Any] = [encode_uint(self.version), self.from_.to_rlp_item(), self.to.to_rlp_item()]
        fields.append(encode_uint(self.expiration))
        if self.enr_seq is not None:
            fields.append(encode_uint(self.enr_seq))
        return fields

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> Ping:
        version, from_, to, expiration = items[:4]
        enr_seq, rest = _split_enr_seq(items[4:])
        return cls(
            version=as_uint(version, "ping.version", bits=UINT64_BITS),
            from_=Endpoint.from_rlp_item(from_, "ping.from"),
            to=Endpoint.from_rlp_item(to, "ping.to"),
            expiration=as_uint(expiration, "ping.expiration", bits=UINT64_BITS),
            enr_seq=enr_seq,
            rest=rest,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """PONG (0x02), quoting the hash of the PING it answers."""

    packet_type: ClassVar[int] = 0x02
    name: ClassVar[str] = "PONG/v4"

    to: Endpoint
    ping_hash: bytes
    expiration: int
    enr_seq: int | None = None
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_size(self.ping_hash, HASH_SIZE, "pong ping_hash")
        _check_uint(self.expiration, UINT64_BITS, "expiration")
        _check_rest(self.rest)
        _check_enr_seq_slot(self.enr_seq, self.rest)

    def rlp_fields(self) -> list[Any]:
        fields: list[Any] = [self.to.to_rlp_item(), self.ping_hash, encode_uint(self.expiration)]
        if self.enr_seq is not None:
            fields.append(encode_uint(self.enr_seq))
        return fields

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> Pong:
        to, ping_hash, expiration = items[:3]
        enr_seq, rest = _split_enr_seq(items[3:])
        return cls(
            to=Endpoint.from_rlp_item(to, "pong.to"),
            ping_hash=as_bytes(ping_hash, "pong.ping_hash", length=HASH_SIZE),
            expiration=as_uint(expiration, "pong.expiration", bits=UINT64_BITS),
            enr_seq=enr_seq,
            rest=rest,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FindNode:
    """FINDNODE (0x03).  ``target`` is any 64 bytes, not necessarily a curve point."""

    packet_type: ClassVar[int] = 0x03
    name: ClassVar[str] = "FINDNODE/v4"

    target: bytes
    expiration: int
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_size(self.target, PUBKEY_SIZE, "findnode target")
        _check_uint(self.expiration, UINT64_BITS, "expiration")
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [self.target, encode_uint(self.expiration)]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> FindNode:
        target, expiration = items[:2]
        return cls(
            target=as_bytes(target, "findnode.target", length=PUBKEY_SIZE),
            expiration=as_uint(expiration, "findnode.expiration", bits=UINT64_BITS),
            rest=_raw(items[2:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Neighbors:
    """NEIGHBORS (0x04).  Any number of nodes decodes; :func:`encode` enforces the size limit.

    An entry whose key is not a secp256k1 point is dropped on decoding and
    counted in ``invalid_keys`` (not sent on the wire): its node id means
    nothing and no handshake with it can start.  The other entries stand, as
    in go-ethereum, whose ``nodeFromRPC`` fails only that entry.  A malformed
    entry still fails the whole packet.
    """

    packet_type: ClassVar[int] = 0x04
    name: ClassVar[str] = "NEIGHBORS/v4"

    nodes: tuple[NodeRecord, ...]
    expiration: int
    rest: tuple[bytes, ...] = ()
    invalid_keys: int = 0

    def __post_init__(self) -> None:
        _check_uint(self.expiration, UINT64_BITS, "expiration")
        _check_rest(self.rest)
        if self.invalid_keys < 0:
            raise LocalProtocolError(f"invalid_keys {self.invalid_keys} is negative")

    def rlp_fields(self) -> list[Any]:
        return [[node.to_rlp_item() for node in self.nodes], encode_uint(self.expiration)]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> Neighbors:
        nodes, expiration = items[:2]
        records = [
            NodeRecord.from_rlp_item(node, f"neighbors.nodes[{i}]")
            for i, node in enumerate(as_list(nodes, "neighbors.nodes"))
        ]
        valid = tuple(record for record in records if is_valid_pubkey(record.pubkey))
        return cls(
            nodes=valid,
            expiration=as_uint(expiration, "neighbors.expiration", bits=UINT64_BITS),
            rest=_raw(items[2:]),
            invalid_keys=len(records) - len(valid),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ENRRequest:
    """ENRREQUEST (0x05, EIP-868)."""

    packet_type: ClassVar[int] = 0x05
    name: ClassVar[str] = "ENRREQUEST/v4"

    expiration: int
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_uint(self.expiration, UINT64_BITS, "expiration")
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [encode_uint(self.expiration)]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> ENRRequest:
        return cls(
            expiration=as_uint(items[0], "enrrequest.expiration", bits=UINT64_BITS),
            rest=_raw(items[1:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ENRResponse:
    """ENRRESPONSE (0x06, EIP-868).  ``record`` is the ENR's raw RLP, checked only by :meth:`enr`."""

    packet_type: ClassVar[int] = 0x06
    name: ClassVar[str] = "ENRRESPONSE/v4"

    request_hash: bytes
    record: bytes
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_size(self.request_hash, HASH_SIZE, "enrresponse request_hash")
        try:
            item = rlp_decode(self.record)
        except WireError as exc:
            raise LocalProtocolError(f"enrresponse record is not exactly one RLP item: {exc}") from exc
        if not isinstance(item, list):
            raise LocalProtocolError("enrresponse record must be an RLP list, got a byte string")
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        # Splicing the record's own bytes keeps them exactly as signed.
        return [self.request_hash, _Raw(self.record)]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> ENRResponse:
        request_hash, record = items[:2]
        as_list(record, "enrresponse.record")
        return cls(
            request_hash=as_bytes(request_hash, "enrresponse.request_hash", length=HASH_SIZE),
            record=rlp_encode(record),
            rest=_raw(items[2:]),
        )

    def enr(self) -> ENR:
        """The record decoded and its signature verified; raises BadENR (a WireError) if bad."""
        from .enr import ENR  # enr.py is the larger module; most packets never need it

        return ENR.from_rlp(self.record)


Packet: TypeAlias = Ping | Pong | FindNode | Neighbors | ENRRequest | ENRResponse

PACKET_TYPES: dict[int, type[Packet]] = {
    cls.packet_type: cls for cls in (Ping, Pong, FindNode, Neighbors, ENRRequest, ENRResponse)
}
# Fewest list elements each packet needs before any EIP-8 extras.
_MIN_FIELDS: dict[type[Packet], int] = {Ping: 4, Pong: 3, FindNode: 2, Neighbors: 2, ENRRequest: 1, ENRResponse: 2}


@dataclass(frozen=True, slots=True)
class _Raw:
    """An already-encoded RLP item to splice into a list unchanged."""

    data: bytes


def _encode_fields(fields: list[Any], rest: tuple[bytes, ...]) -> bytes:
    body = b"".join(f.data if isinstance(f, _Raw) else rlp_encode(f) for f in fields) + b"".join(rest)
    prefix = length_prefix(len(body), 0xC0)
    return prefix + body


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoded:
    """A verified packet with who sent it and its hash (what a reply must quote)."""

    packet: Packet
    sender_pubkey: bytes
    sender_id: bytes
    hash: bytes


def encode(packet: Packet, private_key: PrivateKey) -> bytes:
    """Sign ``packet`` with ``private_key``; LocalProtocolError if over MAX_PACKET_SIZE."""
    signed = bytes((packet.packet_type,)) + _encode_fields(packet.rlp_fields(), packet.rest)
    if HEAD_SIZE + len(signed) > MAX_PACKET_SIZE:
        raise LocalProtocolError(
            f"{packet.name} would be {HEAD_SIZE + len(signed)} bytes, over the {MAX_PACKET_SIZE}-byte limit"
        )
    signature = sign_recoverable(private_key, keccak256(signed))
    return keccak256(signature + signed) + signature + signed


def _decode_body(body: bytes) -> Item:
    """The packet-data item; EIP-8 says to ignore any bytes after it."""
    item, _trailing = decode_prefix(body)
    return item


def decode(data: bytes, *, max_size: int = MAX_PACKET_SIZE) -> Decoded:
    """Verify and parse one datagram.

    ``max_size`` defaults to the spec's 1280 bytes; a caller may pass more on
    purpose (stock ethereumjs sends ~1373-byte NEIGHBORS).  Checks run cheapest
    first, so garbage is dropped before the costly public-key recovery.
    """
    size = len(data)
    if size <= HEAD_SIZE:
        raise PacketTooSmall(f"discv4 packet of {size} bytes, need more than {HEAD_SIZE} (hash, signature, type)")
    if size > max_size:
        raise PacketTooLarge(f"discv4 packet of {size} bytes, over the {max_size}-byte limit")
    packet_hash = data[:HASH_SIZE]
    if keccak256(data[HASH_SIZE:]) != packet_hash:
        raise BadHash(f"discv4 packet hash {packet_hash.hex()} does not match its contents")
    packet_type = data[HEAD_SIZE]
    cls = PACKET_TYPES.get(packet_type)
    if cls is None:
        raise UnknownPacketType(f"unknown discv4 packet type 0x{packet_type:02x}")
    item = _decode_body(data[HEAD_SIZE + 1 :])
    packet = cls.from_rlp_items(as_list(item, cls.name, min_len=_MIN_FIELDS[cls]))
    pubkey = recover_pubkey(data[HASH_SIZE:HEAD_SIZE], keccak256(data[HEAD_SIZE:]))
    return Decoded(packet=packet, sender_pubkey=pubkey, sender_id=node_id_from_pubkey(pubkey), hash=packet_hash)


def looks_like_v4(data: bytes) -> bool:
    """True when ``data`` carries a valid discv4 packet hash: the cheap test that splits a shared UDP port.

    A discv5 packet starts with a random masking IV, so its first 32 bytes
    match the keccak256 of the rest with probability 2**-256.  go-ethereum
    tries a full v4 decode and hands failures to v5; the hash alone decides
    the same for well-formed traffic without a public-key recovery.
    """
    return len(data) > HEAD_SIZE and keccak256(data[HASH_SIZE:]) == data[:HASH_SIZE]


def is_expired(expiration: int, now: float) -> bool:
    """Whether a packet dated ``expiration`` (UNIX seconds) is stale at ``now``."""
    return expiration < now


def expiration_for(now: float) -> int:
    """The expiration to put on a packet sent at ``now`` (UNIX seconds)."""
    return int(now) + EXPIRATION


def check_expiration(packet: Packet, now: float) -> None:
    """Raise Expired if ``packet`` is stale at ``now``; ENRRESPONSE carries no expiration."""
    if isinstance(packet, ENRResponse):
        return
    if is_expired(packet.expiration, now):
        raise Expired(f"{packet.name} expired at {packet.expiration}, now is {now:.0f}")


def split_neighbors(nodes: Sequence[NodeRecord], expiration: int) -> list[Neighbors]:
    """NEIGHBORS packets of at most MAX_NEIGHBORS nodes each, so each encodes within 1280 bytes.

    No nodes still gives one empty packet, as geth answers, so the asker need not
    wait for its timeout.
    """
    nodes = tuple(nodes)
    if not nodes:
        return [Neighbors(nodes=(), expiration=expiration)]
    return [
        Neighbors(nodes=nodes[start : start + MAX_NEIGHBORS], expiration=expiration)
        for start in range(0, len(nodes), MAX_NEIGHBORS)
    ]
