"""Discovery v5.1 packets: the masked header, the three kinds of authdata, encode and decode.

A packet is ``masking-iv || masked-header || message`` where the header is

    static-header = "discv5" || version (2) || flag (1) || nonce (12) || authdata-size (2)
    header        = static-header || authdata

masked with AES-128-CTR under the first 16 bytes of the *destination* node id
(so only the addressee can read who sent it).  ``flag`` picks the authdata:

* 0, ordinary message: ``src-id``;
* 1, WHOAREYOU: ``id-nonce (16) || enr-seq (8)``, and no message;
* 2, handshake: ``src-id || sig-size || eph-key-size || id-signature || eph-pubkey || record``.

The message is AES-128-GCM ciphertext whose associated data is
``masking-iv || header`` (:attr:`Packet.message_ad`).  This module only frames
and unframes; :mod:`.session` decides which keys to use.  Like go-ethereum's
v5wire, the decoder checks sizes before it unmasks anything else, and raises
only :class:`~ethcrawl.wire.errors.WireError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from ..errors import LocalProtocolError, MalformedMessage, PacketTooLarge, PacketTooSmall, UnknownPacketType
from .crypto import MASKING_IV_SIZE, NODE_ID_SIZE, NONCE_SIZE, TAG_SIZE, mask

__all__ = [
    "PROTOCOL_ID",
    "VERSION",
    "MIN_PACKET_SIZE",
    "MAX_PACKET_SIZE",
    "STATIC_HEADER_SIZE",
    "ID_NONCE_SIZE",
    "FLAG_MESSAGE",
    "FLAG_WHOAREYOU",
    "FLAG_HANDSHAKE",
    "MESSAGE_PACKET_OVERHEAD",
    "MessageAuthdata",
    "WhoareyouAuthdata",
    "HandshakeAuthdata",
    "Authdata",
    "Header",
    "Packet",
    "encode_packet",
    "decode_packet",
]

PROTOCOL_ID = b"discv5"
VERSION = 1  # discv5.1
MAX_PACKET_SIZE = 1280  # bytes, the spec's limit (the IPv6 minimum MTU)
# masking-iv, static header and the smallest authdata (WHOAREYOU's 24 bytes): the spec's minimum, 63.
STATIC_HEADER_SIZE = len(PROTOCOL_ID) + 2 + 1 + NONCE_SIZE + 2  # bytes, 23
ID_NONCE_SIZE = 16  # bytes, the random challenge in a WHOAREYOU
ENR_SEQ_SIZE = 8  # bytes, uint64 big-endian in WHOAREYOU authdata
WHOAREYOU_AUTHDATA_SIZE = ID_NONCE_SIZE + ENR_SEQ_SIZE  # bytes, 24
MIN_PACKET_SIZE = MASKING_IV_SIZE + STATIC_HEADER_SIZE + WHOAREYOU_AUTHDATA_SIZE  # bytes, 63
HANDSHAKE_HEAD_SIZE = NODE_ID_SIZE + 2  # bytes: src-id, sig-size, eph-key-size
MAX_AUTHDATA_SIZE = MAX_PACKET_SIZE - MASKING_IV_SIZE - STATIC_HEADER_SIZE  # bytes, what can fit at all

FLAG_MESSAGE = 0
FLAG_WHOAREYOU = 1
FLAG_HANDSHAKE = 2

# Bytes an ordinary message packet adds around the message plaintext; NODES splitting budgets with it.
MESSAGE_PACKET_OVERHEAD = MASKING_IV_SIZE + STATIC_HEADER_SIZE + NODE_ID_SIZE + TAG_SIZE  # bytes, 87


def _check_size(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise LocalProtocolError(f"{what} must be {size} bytes, got {len(value)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAuthdata:
    """Authdata of an ordinary message packet (flag 0): who sent it."""

    flag: ClassVar[int] = FLAG_MESSAGE

    src_id: bytes

    def __post_init__(self) -> None:
        _check_size(self.src_id, NODE_ID_SIZE, "message authdata src_id")

    def encode(self) -> bytes:
        return self.src_id

    @classmethod
    def decode(cls, data: bytes) -> MessageAuthdata:
        if len(data) != NODE_ID_SIZE:
            raise MalformedMessage(f"message packet authdata must be {NODE_ID_SIZE} bytes, got {len(data)}")
        return cls(src_id=data)


@dataclass(frozen=True, slots=True, kw_only=True)
class WhoareyouAuthdata:
    """Authdata of a WHOAREYOU (flag 1): the challenge and the requester's ENR seq we know (0: none)."""

    flag: ClassVar[int] = FLAG_WHOAREYOU

    id_nonce: bytes
    enr_seq: int

    def __post_init__(self) -> None:
        _check_size(self.id_nonce, ID_NONCE_SIZE, "whoareyou id_nonce")
        if not 0 <= self.enr_seq < 1 << (8 * ENR_SEQ_SIZE):
            raise LocalProtocolError(f"whoareyou enr_seq {self.enr_seq} does not fit uint64")

    def encode(self) -> bytes:
        return self.id_nonce + self.enr_seq.to_bytes(ENR_SEQ_SIZE, "big")

    @classmethod
    def decode(cls, data: bytes) -> WhoareyouAuthdata:
        if len(data) != WHOAREYOU_AUTHDATA_SIZE:
            raise MalformedMessage(f"WHOAREYOU authdata must be {WHOAREYOU_AUTHDATA_SIZE} bytes, got {len(data)}")
        return cls(id_nonce=data[:ID_NONCE_SIZE], enr_seq=int.from_bytes(data[ID_NONCE_SIZE:], "big"))


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeAuthdata:
    """Authdata of a handshake packet (flag 2).

    ``record`` is the sender's ENR as raw RLP, or ``b""`` when omitted; it is
    checked by the session layer (:meth:`ENR.from_rlp`), not here.  Signature
    and key sizes are whatever the packet declares; the "v4" scheme's 64 and
    33 are enforced by the session layer too.
    """

    flag: ClassVar[int] = FLAG_HANDSHAKE

    src_id: bytes
    id_signature: bytes
    eph_pubkey: bytes
    record: bytes = b""

    def __post_init__(self) -> None:
        _check_size(self.src_id, NODE_ID_SIZE, "handshake authdata src_id")
        if len(self.id_signature) > 0xFF or len(self.eph_pubkey) > 0xFF:
            raise LocalProtocolError("handshake id_signature and eph_pubkey sizes must each fit one byte")

    def encode(self) -> bytes:
        sizes = bytes((len(self.id_signature), len(self.eph_pubkey)))
        return self.src_id + sizes + self.id_signature + self.eph_pubkey + self.record

    @classmethod
    def decode(cls, data: bytes) -> HandshakeAuthdata:
        if len(data) < HANDSHAKE_HEAD_SIZE:
            raise MalformedMessage(f"handshake authdata of {len(data)} bytes, need at least {HANDSHAKE_HEAD_SIZE}")
        sig_size, key_size = data[NODE_ID_SIZE], data[NODE_ID_SIZE + 1]
        key_start = HANDSHAKE_HEAD_SIZE + sig_size
        record_start = key_start + key_size
        if record_start > len(data):
            raise MalformedMessage(
                f"handshake authdata of {len(data)} bytes cannot hold a {sig_size}-byte signature"
                f" and a {key_size}-byte key"
            )
        return cls(
            src_id=data[:NODE_ID_SIZE],
            id_signature=data[HANDSHAKE_HEAD_SIZE:key_start],
            eph_pubkey=data[key_start:record_start],
            record=data[record_start:],
        )


Authdata: TypeAlias = MessageAuthdata | WhoareyouAuthdata | HandshakeAuthdata

_AUTHDATA_TYPES: dict[int, type[Authdata]] = {
    cls.flag: cls for cls in (MessageAuthdata, WhoareyouAuthdata, HandshakeAuthdata)
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """The unmasked header: packet kind (from the authdata's type), nonce and authdata."""

    nonce: bytes
    authdata: Authdata

    def __post_init__(self) -> None:
        _check_size(self.nonce, NONCE_SIZE, "packet nonce")

    @property
    def flag(self) -> int:
        return self.authdata.flag

    def encode(self) -> bytes:
        authdata = self.authdata.encode()
        if len(authdata) > MAX_AUTHDATA_SIZE:
            raise LocalProtocolError(f"authdata of {len(authdata)} bytes cannot fit a {MAX_PACKET_SIZE}-byte packet")
        static = PROTOCOL_ID + VERSION.to_bytes(2, "big") + bytes((self.flag,)) + self.nonce
        return static + len(authdata).to_bytes(2, "big") + authdata


@dataclass(frozen=True, slots=True, kw_only=True)
class Packet:
    """One packet, unmasked: ``message`` is still ciphertext (empty for WHOAREYOU).

    ``header_data`` holds the header bytes exactly as they were (or will be)
    masked: the message's associated data and a WHOAREYOU's challenge data are
    computed from it, never from a re-encoding.
    """

    masking_iv: bytes
    header: Header
    message: bytes = b""
    header_data: bytes = b""

    def __post_init__(self) -> None:
        _check_size(self.masking_iv, MASKING_IV_SIZE, "masking iv")
        if not self.header_data:
            object.__setattr__(self, "header_data", self.header.encode())

    @property
    def message_ad(self) -> bytes:
        """The associated data of the message's AES-GCM: ``masking-iv || header``."""
        return self.masking_iv + self.header_data

    @property
    def challenge_data(self) -> bytes:
        """For a WHOAREYOU: the handshake's input ``masking-iv || static-header || authdata``."""
        return self.masking_iv + self.header_data


def encode_packet(packet: Packet, dest_id: bytes) -> bytes:
    """Mask ``packet``'s header for ``dest_id`` and frame it; LocalProtocolError if over 1280 bytes."""
    size = MASKING_IV_SIZE + len(packet.header_data) + len(packet.message)
    if size > MAX_PACKET_SIZE:
        raise LocalProtocolError(f"discv5 packet would be {size} bytes, over the {MAX_PACKET_SIZE}-byte limit")
    return packet.masking_iv + mask(dest_id, packet.masking_iv, packet.header_data) + packet.message


def decode_packet(data: bytes, local_id: bytes) -> Packet:
    """Unmask and parse one datagram addressed to ``local_id``; the message stays encrypted.

    Raises PacketTooSmall/PacketTooLarge on size, MalformedMessage when the
    header is not discv5.1 (wrong protocol id or version, bad authdata size),
    UnknownPacketType on an unknown flag.
    """
    size = len(data)
    if size < MIN_PACKET_SIZE:
        raise PacketTooSmall(f"discv5 packet of {size} bytes, the minimum is {MIN_PACKET_SIZE}")
    if size > MAX_PACKET_SIZE:
        raise PacketTooLarge(f"discv5 packet of {size} bytes, over the {MAX_PACKET_SIZE}-byte limit")
    data = bytes(data)
    masking_iv = data[:MASKING_IV_SIZE]
    # Unmask the whole rest in one CTR pass; only the header part of it is used.
    plain = mask(local_id, masking_iv, data[MASKING_IV_SIZE:])
    if plain[: len(PROTOCOL_ID)] != PROTOCOL_ID:
        raise MalformedMessage("not a discv5 packet: protocol id does not match after unmasking")
    version = int.from_bytes(plain[6:8], "big")
    if version != VERSION:
        raise MalformedMessage(f"discv5 packet version {version:#06x}, only {VERSION:#06x} is known")
    flag = plain[8]
    nonce = plain[9 : 9 + NONCE_SIZE]
    authdata_size = int.from_bytes(plain[STATIC_HEADER_SIZE - 2 : STATIC_HEADER_SIZE], "big")
    header_end = STATIC_HEADER_SIZE + authdata_size
    if MASKING_IV_SIZE + header_end > size:
        raise PacketTooSmall(f"discv5 authdata-size {authdata_size} runs past the {size}-byte packet")
    authdata_type = _AUTHDATA_TYPES.get(flag)
    if authdata_type is None:
        raise UnknownPacketType(f"unknown discv5 packet flag {flag}")
    authdata = authdata_type.decode(plain[STATIC_HEADER_SIZE:header_end])
    return Packet(
        masking_iv=masking_iv,
        header=Header(nonce=nonce, authdata=authdata),
        message=data[MASKING_IV_SIZE + header_end :],
        header_data=plain[:header_end],
    )
