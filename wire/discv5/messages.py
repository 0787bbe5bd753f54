"""Discovery v5.1 messages: PING, PONG, FINDNODE, NODES, TALKREQ, TALKRESP.

A message plaintext is ``message-type || rlp([request-id, ...])``.  The
request id is an opaque byte string of at most 8 bytes, kept exactly as sent
(leading zero bytes included), so a reply can mirror it byte for byte.

Decoding tolerates extra elements at the end of a message's list, kept in
``rest`` as raw RLP (like go-ethereum's ``rlp:"tail"``), so a newer peer's
additions do not make its messages unreadable.  NODES keeps its records as raw
RLP: the crawler stores them byte-identical and verifies them with
:meth:`Nodes.enrs`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence, TypeAlias

from ..enr import ENR, MAX_RECORD_SIZE
from ..errors import BadENR, LocalProtocolError, MalformedMessage, UnknownPacketType, WireError
from ..rlpcodec import Item, as_bytes, as_list, as_uint, encode_uint, length_prefix
from ..rlpcodec import decode as rlp_decode
from ..rlpcodec import encode as rlp_encode
from ..unchecked import construct_unchecked
from .packet import MAX_PACKET_SIZE, MESSAGE_PACKET_OVERHEAD

__all__ = [
    "MAX_REQUEST_ID_SIZE",
    "MAX_DISTANCE",
    "MAX_NODES_MESSAGE_SIZE",
    "IPAddress",
    "Ping",
    "Pong",
    "FindNode",
    "Nodes",
    "TalkReq",
    "TalkResp",
    "Message",
    "MESSAGE_TYPES",
    "encode_message",
    "decode_message",
    "split_nodes",
]

MAX_REQUEST_ID_SIZE = 8  # bytes, the spec's limit
MAX_DISTANCE = 256  # log2 distances run 0 (the node itself) to 256
UINT64_BITS = 64  # enr-seq and NODES total
PORT_BITS = 16
DISTANCE_BITS = 16  # decoded distances may exceed 256 (peers ignore those), but not absurdly
# Largest NODES plaintext that still fits one ordinary message packet of 1280 bytes.
MAX_NODES_MESSAGE_SIZE = MAX_PACKET_SIZE - MESSAGE_PACKET_OVERHEAD  # bytes, 1193

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


def _check_uint(value: int, bits: int, what: str) -> None:
    if not 0 <= value < 1 << bits:
        raise LocalProtocolError(f"{what} {value} does not fit an unsigned {bits}-bit integer")


def _check_request_id(request_id: bytes) -> None:
    if len(request_id) > MAX_REQUEST_ID_SIZE:
        raise LocalProtocolError(f"request id of {len(request_id)} bytes, at most {MAX_REQUEST_ID_SIZE} allowed")


def _check_item(raw: bytes, what: str) -> Item:
    # Raw items are spliced verbatim into a list, so each must be exactly one RLP item.
    try:
        return rlp_decode(raw)
    except WireError as exc:
        raise LocalProtocolError(f"{what} is not exactly one RLP item: {exc}") from exc


def _check_rest(rest: tuple[bytes, ...]) -> None:
    for i, raw in enumerate(rest):
        _check_item(raw, f"rest[{i}]")


def _raw(items: Sequence[Item]) -> tuple[bytes, ...]:
    # The decoder only accepts canonical RLP, so re-encoding gives back the bytes received.
    return tuple(rlp_encode(item) for item in items)


def _request_id(item: Item, name: str) -> bytes:
    return as_bytes(item, f"{name}.request_id", max_len=MAX_REQUEST_ID_SIZE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """PING (0x01): liveness check carrying the sender's ENR sequence number."""

    message_type: ClassVar[int] = 0x01
    name: ClassVar[str] = "PING/v5"
    min_fields: ClassVar[int] = 2

    request_id: bytes
    enr_seq: int
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_uint(self.enr_seq, UINT64_BITS, "ping enr_seq")
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [self.request_id, encode_uint(self.enr_seq)]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> Ping:
        return cls(
            request_id=_request_id(items[0], "ping"),
            enr_seq=as_uint(items[1], "ping.enr_seq", bits=UINT64_BITS),
            rest=_raw(items[2:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """PONG (0x02): the sender's ENR seq and the address it saw the PING come from."""

    message_type: ClassVar[int] = 0x02
    name: ClassVar[str] = "PONG/v5"
    min_fields: ClassVar[int] = 4

    request_id: bytes
    enr_seq: int
    recipient_ip: IPAddress
    recipient_port: int
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_uint(self.enr_seq, UINT64_BITS, "pong enr_seq")
        _check_uint(self.recipient_port, PORT_BITS, "pong recipient_port")
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [
            self.request_id,
            encode_uint(self.enr_seq),
            self.recipient_ip.packed,
            encode_uint(self.recipient_port),
        ]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> Pong:
        raw_ip = as_bytes(items[2], "pong.recipient_ip")
        ip: IPAddress
        if len(raw_ip) == 4:
            ip = ipaddress.IPv4Address(raw_ip)
        elif len(raw_ip) == 16:
            ip = ipaddress.IPv6Address(raw_ip)
        else:
            raise MalformedMessage(f"pong.recipient_ip: expected 4 or 16 bytes, got {len(raw_ip)}")
        return cls(
            request_id=_request_id(items[0], "pong"),
            enr_seq=as_uint(items[1], "pong.enr_seq", bits=UINT64_BITS),
            recipient_ip=ip,
            recipient_port=as_uint(items[3], "pong.recipient_port", bits=PORT_BITS),
            rest=_raw(items[4:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FindNode:
    """FINDNODE (0x03): ask for the records at these log2 distances (0 = the recipient itself).

    Distances above 256 are kept as received (up to 16 bits): the spec's
    answerers simply find nothing there.
    """

    message_type: ClassVar[int] = 0x03
    name: ClassVar[str] = "FINDNODE/v5"
    min_fields: ClassVar[int] = 2

    request_id: bytes
    distances: tuple[int, ...]
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        for distance in self.distances:
            _check_uint(distance, DISTANCE_BITS, "findnode distance")
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [self.request_id, [encode_uint(d) for d in self.distances]]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> FindNode:
        distances = as_list(items[1], "findnode.distances")
        return cls(
            request_id=_request_id(items[0], "findnode"),
            distances=tuple(
                as_uint(d, f"findnode.distances[{i}]", bits=DISTANCE_BITS) for i, d in enumerate(distances)
            ),
            rest=_raw(items[2:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Nodes:
    """NODES (0x04): one of ``total`` replies, each record the raw RLP of an ENR.

    Records are only checked to be RLP lists here; :meth:`enrs` decodes and
    verifies them.  Any count decodes; :func:`split_nodes` builds replies that
    each fit one packet.
    """

    message_type: ClassVar[int] = 0x04
    name: ClassVar[str] = "NODES/v5"
    min_fields: ClassVar[int] = 3

    request_id: bytes
    total: int
    records: tuple[bytes, ...]
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_uint(self.total, UINT64_BITS, "nodes total")
        for i, record in enumerate(self.records):
            if not isinstance(_check_item(record, f"nodes record #{i}"), list):
                raise LocalProtocolError(f"nodes record #{i} must be an RLP list, got a byte string")
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [self.request_id, encode_uint(self.total), _RawList(self.records)]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> Nodes:
        records = as_list(items[2], "nodes.records")
        for i, record in enumerate(records):
            as_list(record, f"nodes.records[{i}]")
        # Checked here item by item; the constructor's check would decode every
        # record's bytes once more (a tenth of a FINDNODE's cost, bench/discv5_bench.py).
        return construct_unchecked(
            cls,
            request_id=_request_id(items[0], "nodes"),
            total=as_uint(items[1], "nodes.total", bits=UINT64_BITS),
            records=_raw(records),
            rest=_raw(items[3:]),
        )

    def enrs(self) -> tuple[list[ENR], list[BadENR]]:
        """The records that decode and verify, and the errors of those that do not.

        One bad record must not hide the others, so the errors are returned,
        not raised.
        """
        good: list[ENR] = []
        bad: list[BadENR] = []
        for record in self.records:
            try:
                good.append(ENR.from_rlp(record))
            except BadENR as exc:
                bad.append(exc)
        return good, bad


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkReq:
    """TALKREQ (0x05): an application request for ``protocol``; unknown protocols get an empty TALKRESP."""

    message_type: ClassVar[int] = 0x05
    name: ClassVar[str] = "TALKREQ/v5"
    min_fields: ClassVar[int] = 3

    request_id: bytes
    protocol: bytes
    request: bytes
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [self.request_id, self.protocol, self.request]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> TalkReq:
        return cls(
            request_id=_request_id(items[0], "talkreq"),
            protocol=as_bytes(items[1], "talkreq.protocol"),
            request=as_bytes(items[2], "talkreq.request"),
            rest=_raw(items[3:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkResp:
    """TALKRESP (0x06): the answer to a TALKREQ (empty when its protocol is unknown)."""

    message_type: ClassVar[int] = 0x06
    name: ClassVar[str] = "TALKRESP/v5"
    min_fields: ClassVar[int] = 2

    request_id: bytes
    response: bytes
    rest: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_rest(self.rest)

    def rlp_fields(self) -> list[Any]:
        return [self.request_id, self.response]

    @classmethod
    def from_rlp_items(cls, items: list[Item]) -> TalkResp:
        return cls(
            request_id=_request_id(items[0], "talkresp"),
            response=as_bytes(items[1], "talkresp.response"),
            rest=_raw(items[2:]),
        )


Message: TypeAlias = Ping | Pong | FindNode | Nodes | TalkReq | TalkResp

MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.message_type: cls for cls in (Ping, Pong, FindNode, Nodes, TalkReq, TalkResp)
}


@dataclass(frozen=True, slots=True)
class _RawList:
    """Already-encoded RLP items to splice into a list unchanged (NODES records keep their exact bytes)."""

    items: tuple[bytes, ...]


def _encode_field(value: Any) -> bytes:
    if isinstance(value, _RawList):
        body = b"".join(value.items)
        return length_prefix(len(body), 0xC0) + body
    return rlp_encode(value)


def encode_message(message: Message) -> bytes:
    """The plaintext ``message-type || rlp(message-data)`` that goes into a packet."""
    body = b"".join(_encode_field(f) for f in message.rlp_fields()) + b"".join(message.rest)
    return bytes((message.message_type,)) + length_prefix(len(body), 0xC0) + body


def decode_message(plaintext: bytes) -> Message:
    """Parse a decrypted message; MalformedMessage/MalformedRLP if bad, UnknownPacketType for other types.

    The RLP must span the rest of the plaintext exactly (the plaintext is
    authenticated, so trailing bytes are the sender's bug, not line noise).
    """
    if not plaintext:
        raise MalformedMessage("empty discv5 message plaintext: no message type")
    cls = MESSAGE_TYPES.get(plaintext[0])
    if cls is None:
        raise UnknownPacketType(f"unknown discv5 message type 0x{plaintext[0]:02x}")
    items = as_list(rlp_decode(plaintext[1:]), cls.name, min_len=cls.min_fields)
    return cls.from_rlp_items(items)


def split_nodes(request_id: bytes, records: Sequence[bytes], *, max_size: int = MAX_NODES_MESSAGE_SIZE) -> list[Nodes]:
    """NODES replies that carry ``records`` in order, each encoding to at most ``max_size`` bytes.

    Records are packed greedily by their real size (three 300-byte records
    always fit one packet; small ones fit more), and every reply carries the
    same ``total``.  No records still gives one empty reply, so the asker need
    not wait for its timeout.  LocalProtocolError if a record alone cannot fit.
    """
    records = tuple(records)
    for i, record in enumerate(records):
        if len(record) > MAX_RECORD_SIZE:
            raise LocalProtocolError(f"record #{i} is {len(record)} bytes, over the {MAX_RECORD_SIZE}-byte ENR limit")
    # Pack against total = len(records) + 1, which encodes at least as long as the real
    # total (at most one reply per record, at least one reply), so the real replies only shrink.
    placeholder = len(records) + 1
    groups: list[list[bytes]] = [[]]
    for record in records:
        candidate = groups[-1] + [record]
        if _nodes_size(request_id, placeholder, candidate) <= max_size:
            groups[-1] = candidate
            continue
        if _nodes_size(request_id, placeholder, [record]) > max_size:
            raise LocalProtocolError(f"a {len(record)}-byte record cannot fit a {max_size}-byte NODES message")
        groups.append([record])
    return [Nodes(request_id=request_id, total=len(groups), records=tuple(group)) for group in groups]


def _nodes_size(request_id: bytes, total: int, records: list[bytes]) -> int:
    records_size = sum(len(r) for r in records)
    records_field = len(length_prefix(records_size, 0xC0)) + records_size
    body = len(rlp_encode(request_id)) + len(rlp_encode(total)) + records_field
    return 1 + len(length_prefix(body, 0xC0)) + body
