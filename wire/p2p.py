"""The "p2p" capability of RLPx: Hello, Disconnect, Ping, Pong; capability
negotiation; and the snappy compression that wraps every message after Hello.

Messages are plain values: :func:`encode_p2p` turns one into ``(code,
payload)`` for an RLPx frame and :func:`decode_p2p` does the reverse.  The
payload here is always the *uncompressed* RLP; compressing it is the session's
business (see :func:`compress` / :func:`decompress` and ``rlpx/session.py``),
because whether snappy applies depends on both Hellos.

Decoders follow EIP-8: a Hello with a higher version or extra list elements is
accepted and the extras kept in ``rest``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Mapping, Sequence, TypeAlias, Union

import cramjam

from .errors import DecompressionError, LocalProtocolError, MalformedMessage, UnknownPacketType
from .rlpcodec import Item, as_bytes, as_list, as_uint, decode, encode, encode_uint, freeze

__all__ = [
    "P2P_VERSION",
    "SNAPPY_MIN_VERSION",
    "BASE_PROTOCOL_LENGTH",
    "MAX_MESSAGE_SIZE",
    "MESSAGE_COUNTS",
    "Capability",
    "SharedCapability",
    "Hello",
    "DisconnectReason",
    "Disconnect",
    "Ping",
    "Pong",
    "P2PMessage",
    "P2P_MESSAGES",
    "encode_p2p",
    "decode_p2p",
    "negotiate",
    "compress",
    "decompress",
]

#: The devp2p "p2p" capability version we speak (EIP-706 snappy is version 5).
P2P_VERSION: Final = 5
#: Snappy applies when *both* Hellos carry at least this version (EIP-706).
SNAPPY_MIN_VERSION: Final = 5
#: Message ids 0x00-0x0f belong to "p2p"; shared capabilities start after them.
BASE_PROTOCOL_LENGTH: Final = 0x10
#: bytes; the uncompressed-size cap on any message (rlpx.md, "Message Encoding").
MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024

#: How many message ids each (protocol, version) occupies, from caps/eth.md and
#: caps/snap.md: eth/62 had 0x00-0x07; eth/63..68 go up to Receipts (0x10);
#: eth/69 and eth/70 add BlockRangeUpdate (0x11); eth/71 adds the BAL pair
#: (0x12-0x13); eth/72 adds GetCells/Cells (0x14-0x15).  snap/1 has 0x00-0x07;
#: snap/2 adds 0x08-0x09 (0x06-0x07 stay reserved, so they still count).
MESSAGE_COUNTS: Final[Mapping[tuple[str, int], int]] = {
    ("eth", 62): 8,
    ("eth", 63): 17,
    ("eth", 64): 17,
    ("eth", 65): 17,
    ("eth", 66): 17,
    ("eth", 67): 17,
    ("eth", 68): 17,
    ("eth", 69): 18,
    ("eth", 70): 18,
    ("eth", 71): 20,
    ("eth", 72): 22,
    ("snap", 1): 8,
    ("snap", 2): 10,
}

# Client ids are free text; real ones stay well under this, and it keeps a
# hostile Hello from making us store megabytes per peer.
_MAX_CLIENT_ID = 1024  # bytes
_MAX_CAPABILITIES = 64  # entries; geth offers a handful
_MAX_CAP_NAME = 32  # bytes; the spec says 8 ASCII characters, we tolerate more


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Capability:
    """One ``[name, version]`` entry of a Hello's capability list."""

    name: str
    version: int

    def __post_init__(self) -> None:
        if not 0 <= self.version < 2**64:
            raise LocalProtocolError(f"capability version {self.version} out of uint64 range")
        if len(self.name.encode()) > _MAX_CAP_NAME:
            raise LocalProtocolError(f"capability name {self.name!r} longer than {_MAX_CAP_NAME} bytes")

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedCapability:
    """A negotiated capability: its message ids are ``offset .. offset+length-1``."""

    name: str
    version: int
    offset: int
    length: int

    def __str__(self) -> str:
        return f"{self.name}/{self.version}@{self.offset:#x}+{self.length}"



@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """``[protocolVersion, clientId, [[cap, version], ...], listenPort, nodeKey, ...]``."""

    code: ClassVar[int] = 0x00
    name: ClassVar[str] = "Hello"

    protocol_version: int
    client_id: str
    capabilities: tuple[Capability, ...]
    listen_port: int
    node_pubkey: bytes
    rest: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 0 <= self.protocol_version < 2**64:
            raise LocalProtocolError(f"protocol version {self.protocol_version} out of uint64 range")
        if not 0 <= self.listen_port < 2**64:
            raise LocalProtocolError(f"listen port {self.listen_port} out of uint64 range")
        if len(self.node_pubkey) != 64:
            raise LocalProtocolError(f"node key must be 64 bytes, got {len(self.node_pubkey)}")
        object.__setattr__(self, "capabilities", tuple(self.capabilities))
        object.__setattr__(self, "rest", freeze(self.rest))

    def to_rlp_item(self) -> list[Any]:
        return [
            encode_uint(self.protocol_version),
            self.client_id.encode(),
            [[cap.name.encode(), encode_uint(cap.version)] for cap in self.capabilities],
            encode_uint(self.listen_port),
            self.node_pubkey,
            *self.rest,
        ]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "Hello":
        fields = as_list(item, "hello", min_len=5)
        caps_item = as_list(fields[2], "hello.capabilities")
        if len(caps_item) > _MAX_CAPABILITIES:
            raise MalformedMessage(f"hello.capabilities: {len(caps_item)} entries, at most {_MAX_CAPABILITIES}")
        caps = []
        for i, cap in enumerate(caps_item):
            # EIP-8 spirit: tolerate extra elements inside a capability entry too.
            pair = as_list(cap, f"hello.capabilities[{i}]", min_len=2)
            cap_name = as_bytes(pair[0], f"hello.capabilities[{i}].name", max_len=_MAX_CAP_NAME)
            version = as_uint(pair[1], f"hello.capabilities[{i}].version")
            caps.append(Capability(name=cap_name.decode("utf-8", "replace"), version=version))
        client_id = as_bytes(fields[1], "hello.client_id", max_len=_MAX_CLIENT_ID)
        return cls(
            protocol_version=as_uint(fields[0], "hello.protocol_version"),
            # Client ids are meant to be ASCII; we record them even when not UTF-8.
            client_id=client_id.decode("utf-8", "replace"),
            capabilities=tuple(caps),
            listen_port=as_uint(fields[3], "hello.listen_port"),
            node_pubkey=as_bytes(fields[4], "hello.node_pubkey", length=64),
            rest=tuple(fields[5:]),
        )


class DisconnectReason(enum.IntEnum):
    """The reason codes of rlpx.md's Disconnect table."""

    DISCONNECT_REQUESTED = 0x00
    TCP_SUBSYSTEM_ERROR = 0x01
    BREACH_OF_PROTOCOL = 0x02
    USELESS_PEER = 0x03
    TOO_MANY_PEERS = 0x04
    ALREADY_CONNECTED = 0x05
    INCOMPATIBLE_P2P_VERSION = 0x06
    NULL_NODE_IDENTITY = 0x07
    CLIENT_QUITTING = 0x08
    UNEXPECTED_IDENTITY = 0x09
    CONNECTED_TO_SELF = 0x0A
    PING_TIMEOUT = 0x0B
    SUBPROTOCOL_ERROR = 0x10


def _as_reason(code: int) -> DisconnectReason | int:
    try:
        return DisconnectReason(code)
    except ValueError:
        return code  # unknown codes are data for the crawl, not an error


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    """``[reason]``; decoding also accepts a bare reason or nothing (then 0x00)."""

    code: ClassVar[int] = 0x01
    name: ClassVar[str] = "Disconnect"

    reason: DisconnectReason | int = DisconnectReason.DISCONNECT_REQUESTED

    def __post_init__(self) -> None:
        if not 0 <= int(self.reason) < 2**64:
            raise LocalProtocolError(f"disconnect reason {self.reason} out of range")
        object.__setattr__(self, "reason", _as_reason(int(self.reason)))

    def to_rlp_item(self) -> list[Any]:
        return [encode_uint(int(self.reason))]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "Disconnect":
        # geth writes [reason]; some clients (old parity, ethereumjs on some
        # paths) write the bare integer, and the reason is optional anyway.
        if isinstance(item, list):
            if not item:
                return cls()
            item = item[0]
        return cls(reason=as_uint(item, "disconnect.reason"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """``[]``: asks for an immediate Pong."""

    code: ClassVar[int] = 0x02
    name: ClassVar[str] = "Ping"

    def to_rlp_item(self) -> list[Any]:
        return []

    @classmethod
    def from_rlp_item(cls, item: Item) -> "Ping":
        as_list(item, "ping")  # contents are ignored, as geth does
        return cls()


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """``[]``: the reply to Ping."""

    code: ClassVar[int] = 0x03
    name: ClassVar[str] = "Pong"

    def to_rlp_item(self) -> list[Any]:
        return []

    @classmethod
    def from_rlp_item(cls, item: Item) -> "Pong":
        as_list(item, "pong")
        return cls()


P2PMessage: TypeAlias = Union[Hello, Disconnect, Ping, Pong]

#: Message code -> class, for the "p2p" capability (ids 0x00-0x03).
P2P_MESSAGES: Final[Mapping[int, type[Hello] | type[Disconnect] | type[Ping] | type[Pong]]] = {
    cls.code: cls for cls in (Hello, Disconnect, Ping, Pong)
}


def encode_p2p(msg: P2PMessage) -> tuple[int, bytes]:
    """``(message code, uncompressed RLP payload)`` of a p2p message."""
    return msg.code, encode(msg.to_rlp_item())


def decode_p2p(code: int, payload: bytes) -> P2PMessage:
    """Decode an uncompressed p2p payload; UnknownPacketType for codes 0x04-0x0f."""
    cls = P2P_MESSAGES.get(code)
    if cls is None:
        raise UnknownPacketType(f"unknown p2p message code {code:#x}")
    if cls is Disconnect and len(payload) == 0:
        return Disconnect()
    return cls.from_rlp_item(decode(payload))


def negotiate(
    local: Sequence[Capability],
    remote: Sequence[Capability],
    *,
    lengths: Mapping[tuple[str, int], int] = MESSAGE_COUNTS,
) -> tuple[SharedCapability, ...]:
    """The shared capabilities and their message-id ranges (rlpx.md, "Multiplexing").

    A capability is shared only on an exact name *and* version match; per name
    the highest shared version wins; ranges are laid out from 0x10 in name
    order.  A shared capability whose message count is not in ``lengths`` is
    left out: geth only ever offers protocols it runs (whose ``Length`` it
    knows), so it never meets this case; for us leaving it out means the ids of
    capabilities sorted after it might disagree with the peer's, so offer only
    capabilities listed in ``lengths``.
    """
    remote_set = {(cap.name, cap.version) for cap in remote}
    best: dict[str, int] = {}
    for cap in local:
        key = (cap.name, cap.version)
        if key in remote_set and key in lengths and cap.version > best.get(cap.name, -1):
            best[cap.name] = cap.version
    shared = []
    offset = BASE_PROTOCOL_LENGTH
    for name in sorted(best):  # str order is byte order for the ASCII names in use
        length = lengths[(name, best[name])]
        shared.append(SharedCapability(name=name, version=best[name], offset=offset, length=length))
        offset += length
    return tuple(shared)


def compress(payload: bytes) -> bytes:
    """Snappy block format (no framing), as RLPx v5 sends message data."""
    if len(payload) > MAX_MESSAGE_SIZE:
        raise LocalProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return bytes(cramjam.snappy.compress_raw(payload))


def _uncompressed_length(data: bytes) -> int:
    """The varint (little-endian base-128) size header of a snappy block."""
    value = 0
    for i, byte in enumerate(data[:5]):  # 5 varint bytes cover 32 bits
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value
    raise DecompressionError("snappy: truncated or over-long length header")


def decompress(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> bytes:
    """Undo :func:`compress`; refuses blocks claiming more than ``max_size`` (16 MiB) before inflating."""
    size = _uncompressed_length(data)
    if size > max_size:
        raise DecompressionError(f"snappy: uncompressed size {size} exceeds {max_size}")
    try:
        out = bytes(cramjam.snappy.decompress_raw(data))
    except cramjam.DecompressionError as exc:
        raise DecompressionError(f"snappy: {exc}") from exc
    if len(out) != size:  # pragma: no cover - cramjam checks this itself
        raise DecompressionError(f"snappy: header says {size} bytes, got {len(out)}")
    return out
