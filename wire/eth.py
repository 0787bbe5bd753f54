"""The "eth" capability messages a crawler needs: Status (both layouts),
GetBlockHeaders/BlockHeaders, BlockRangeUpdate; every other eth message is
carried through undecoded as :class:`RawEthMessage`.

Codes here are *relative* to the eth capability's offset (Status is 0x00);
the session adds and removes the offset.  Payloads are uncompressed RLP.

Status changed shape in eth/69 (EIP-7642): ``td`` and the head hash went, a
block range came.  :class:`Status66` is the eth/64..68 layout,
:class:`Status69` the eth/69+ one; both offer ``version``, ``network_id``,
``genesis``, ``fork_id`` and ``head_hash``, so a crawler can record either
without caring which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Mapping, TypeAlias, Union

from .crypto import keccak256
from .errors import LocalProtocolError, MalformedMessage, UnknownPacketType
from .forkid import ForkId
from .rlpcodec import Item, as_bytes, as_list, as_uint, decode, encode, encode_uint, freeze
from .p2p import MESSAGE_COUNTS

__all__ = [
    "STATUS69_MIN_VERSION",
    "MAX_HEADERS",
    "ETH_MESSAGE_NAMES",
    "ETH_MESSAGES",
    "Status66",
    "Status69",
    "Status",
    "GetBlockHeaders",
    "BlockHeader",
    "BlockHeaders",
    "BlockRangeUpdate",
    "RawEthMessage",
    "EthMessage",
    "encode_eth",
    "decode_eth",
    "decode_status",
]

#: The first eth version whose Status carries the block range (EIP-7642).
STATUS69_MIN_VERSION: Final = 69
#: Headers per BlockHeaders we accept; geth serves at most 1024 (maxHeadersServe).
MAX_HEADERS: Final = 1024
_MAX_TD_BITS = 256  # td is a big.Int in geth; 256 bits is far beyond any chain's

#: Relative code -> message name, from caps/eth.md (0x0d/0x0e existed up to eth/66).
ETH_MESSAGE_NAMES: Final[Mapping[int, str]] = {
    0x00: "Status",
    0x01: "NewBlockHashes",
    0x02: "Transactions",
    0x03: "GetBlockHeaders",
    0x04: "BlockHeaders",
    0x05: "GetBlockBodies",
    0x06: "BlockBodies",
    0x07: "NewBlock",
    0x08: "NewPooledTransactionHashes",
    0x09: "GetPooledTransactions",
    0x0A: "PooledTransactions",
    0x0D: "GetNodeData",
    0x0E: "NodeData",
    0x0F: "GetReceipts",
    0x10: "Receipts",
    0x11: "BlockRangeUpdate",
    0x12: "GetBlockAccessLists",
    0x13: "BlockAccessLists",
    0x14: "GetCells",
    0x15: "Cells",
}


def _hash32(item: Item, name: str) -> bytes:
    return as_bytes(item, name, length=32)


def _check_hash(value: bytes, name: str) -> None:
    if len(value) != 32:
        raise LocalProtocolError(f"{name} must be 32 bytes, got {len(value)}")


def _check_uint(value: int, name: str, bits: int = 64) -> None:
    if not 0 <= value < 2**bits:
        raise LocalProtocolError(f"{name} {value} out of uint{bits} range")



@dataclass(frozen=True, slots=True, kw_only=True)
class Status66:
    """eth/64..68 Status: ``[version, networkid, td, head, genesis, forkid, ...]``."""

    code: ClassVar[int] = 0x00
    name: ClassVar[str] = "Status"

    version: int
    network_id: int
    td: int
    head: bytes
    genesis: bytes
    fork_id: ForkId
    rest: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_uint(self.version, "version")
        _check_uint(self.network_id, "network id")
        _check_uint(self.td, "total difficulty", _MAX_TD_BITS)
        _check_hash(self.head, "head hash")
        _check_hash(self.genesis, "genesis hash")
        object.__setattr__(self, "rest", freeze(self.rest))

    @property
    def head_hash(self) -> bytes:
        return self.head

    def to_rlp_item(self) -> list[Any]:
        return [
            encode_uint(self.version),
            encode_uint(self.network_id),
            encode_uint(self.td),
            self.head,
            self.genesis,
            self.fork_id.to_rlp_item(),
            *self.rest,
        ]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "Status66":
        fields = as_list(item, "status", min_len=6)
        return cls(
            version=as_uint(fields[0], "status.version"),
            network_id=as_uint(fields[1], "status.network_id"),
            td=as_uint(fields[2], "status.td", bits=_MAX_TD_BITS),
            head=_hash32(fields[3], "status.head"),
            genesis=_hash32(fields[4], "status.genesis"),
            fork_id=ForkId.from_rlp_item(fields[5]),
            rest=tuple(fields[6:]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Status69:
    """eth/69+ Status: ``[version, networkid, genesis, forkid, earliest, latest, latestHash, ...]``."""

    code: ClassVar[int] = 0x00
    name: ClassVar[str] = "Status"

    version: int
    network_id: int
    genesis: bytes
    fork_id: ForkId
    earliest_block: int
    latest_block: int
    latest_hash: bytes
    rest: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_uint(self.version, "version")
        _check_uint(self.network_id, "network id")
        _check_uint(self.earliest_block, "earliest block")
        _check_uint(self.latest_block, "latest block")
        _check_hash(self.genesis, "genesis hash")
        _check_hash(self.latest_hash, "latest hash")
        object.__setattr__(self, "rest", freeze(self.rest))

    @property
    def head_hash(self) -> bytes:
        return self.latest_hash

    def to_rlp_item(self) -> list[Any]:
        return [
            encode_uint(self.version),
            encode_uint(self.network_id),
            self.genesis,
            self.fork_id.to_rlp_item(),
            encode_uint(self.earliest_block),
            encode_uint(self.latest_block),
            self.latest_hash,
            *self.rest,
        ]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "Status69":
        fields = as_list(item, "status", min_len=7)
        return cls(
            version=as_uint(fields[0], "status.version"),
            network_id=as_uint(fields[1], "status.network_id"),
            genesis=_hash32(fields[2], "status.genesis"),
            fork_id=ForkId.from_rlp_item(fields[3]),
            earliest_block=as_uint(fields[4], "status.earliest_block"),
            latest_block=as_uint(fields[5], "status.latest_block"),
            latest_hash=_hash32(fields[6], "status.latest_hash"),
            rest=tuple(fields[7:]),
        )


Status: TypeAlias = Union[Status66, Status69]


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBlockHeaders:
    """``[request-id, [origin: hash | number, amount, skip, reverse]]`` (eth/66+)."""

    code: ClassVar[int] = 0x03
    name: ClassVar[str] = "GetBlockHeaders"

    request_id: int
    origin: bytes | int
    amount: int
    skip: int = 0
    reverse: bool = False

    def __post_init__(self) -> None:
        _check_uint(self.request_id, "request id")
        if isinstance(self.origin, bytes):
            _check_hash(self.origin, "origin hash")
        else:
            _check_uint(self.origin, "origin number")
        _check_uint(self.amount, "amount")
        _check_uint(self.skip, "skip")

    def to_rlp_item(self) -> list[Any]:
        origin = self.origin if isinstance(self.origin, bytes) else encode_uint(self.origin)
        query = [origin, encode_uint(self.amount), encode_uint(self.skip), encode_uint(int(self.reverse))]
        return [encode_uint(self.request_id), query]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "GetBlockHeaders":
        fields = as_list(item, "get_block_headers", min_len=2)
        query = as_list(fields[1], "get_block_headers.query", min_len=4)
        raw_origin = as_bytes(query[0], "get_block_headers.origin")
        # Like geth's HashOrNumber: 32 bytes is a hash, up to 8 a number.
        origin: bytes | int
        if len(raw_origin) == 32:
            origin = raw_origin
        elif len(raw_origin) <= 8:
            origin = as_uint(raw_origin, "get_block_headers.origin")
        else:
            raise MalformedMessage(f"get_block_headers.origin: {len(raw_origin)} bytes is neither hash nor number")
        reverse = as_uint(query[3], "get_block_headers.reverse")
        if reverse > 1:
            raise MalformedMessage(f"get_block_headers.reverse: {reverse} is not a boolean")
        return cls(
            request_id=as_uint(fields[0], "get_block_headers.request_id"),
            origin=origin,
            amount=as_uint(query[1], "get_block_headers.amount"),
            skip=as_uint(query[2], "get_block_headers.skip"),
            reverse=bool(reverse),
        )


# Header field positions (caps/eth.md "Block Encoding"): number is the 9th
# field, time the 12th; everything before London has exactly 15 fields.
_HEADER_NUMBER = 8
_HEADER_TIME = 11
_HEADER_MIN_FIELDS = 15


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader:
    """A header decoded just enough for a crawl: number, time and hash.

    ``rlp`` is the header's exact encoding; its keccak is the block hash.
    """

    number: int
    timestamp: int
    rlp: bytes

    @property
    def hash(self) -> bytes:
        return keccak256(self.rlp)

    @classmethod
    def from_rlp_item(cls, item: Item, index: int = 0) -> "BlockHeader":
        name = f"block_headers.headers[{index}]"
        fields = as_list(item, name, min_len=_HEADER_MIN_FIELDS)
        return cls(
            number=as_uint(fields[_HEADER_NUMBER], f"{name}.number"),
            timestamp=as_uint(fields[_HEADER_TIME], f"{name}.time"),
            # The strict decoder only accepts canonical RLP, so re-encoding
            # reproduces the peer's bytes exactly (and with them the hash).
            rlp=encode(item),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeaders:
    """``[request-id, [header, ...]]`` (eth/66+)."""

    code: ClassVar[int] = 0x04
    name: ClassVar[str] = "BlockHeaders"

    request_id: int
    headers: tuple[BlockHeader, ...]

    def __post_init__(self) -> None:
        _check_uint(self.request_id, "request id")
        object.__setattr__(self, "headers", tuple(self.headers))

    def to_rlp_item(self) -> list[Any]:
        return [encode_uint(self.request_id), [decode(h.rlp) for h in self.headers]]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "BlockHeaders":
        fields = as_list(item, "block_headers", min_len=2)
        headers = as_list(fields[1], "block_headers.headers")
        if len(headers) > MAX_HEADERS:
            raise MalformedMessage(f"block_headers: {len(headers)} headers, at most {MAX_HEADERS}")
        return cls(
            request_id=as_uint(fields[0], "block_headers.request_id"),
            headers=tuple(BlockHeader.from_rlp_item(h, i) for i, h in enumerate(headers)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockRangeUpdate:
    """eth/69+ ``[earliest, latest, latestHash]``: the peer's new block range."""

    code: ClassVar[int] = 0x11
    name: ClassVar[str] = "BlockRangeUpdate"

    earliest_block: int
    latest_block: int
    latest_hash: bytes

    def __post_init__(self) -> None:
        _check_uint(self.earliest_block, "earliest block")
        _check_uint(self.latest_block, "latest block")
        _check_hash(self.latest_hash, "latest hash")

    def to_rlp_item(self) -> list[Any]:
        return [encode_uint(self.earliest_block), encode_uint(self.latest_block), self.latest_hash]

    @classmethod
    def from_rlp_item(cls, item: Item) -> "BlockRangeUpdate":
        fields = as_list(item, "block_range_update", min_len=3)
        return cls(
            earliest_block=as_uint(fields[0], "block_range_update.earliest_block"),
            latest_block=as_uint(fields[1], "block_range_update.latest_block"),
            latest_hash=_hash32(fields[2], "block_range_update.latest_hash"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RawEthMessage:
    """An eth message we do not model (Transactions, NewPooledTransactionHashes, ...).

    ``payload`` is its uncompressed RLP, not checked beyond being bytes.
    """

    code: int
    payload: bytes

    @property
    def name(self) -> str:
        return ETH_MESSAGE_NAMES.get(self.code, f"eth-{self.code:#x}")


EthMessage: TypeAlias = Union[Status66, Status69, GetBlockHeaders, BlockHeaders, BlockRangeUpdate, RawEthMessage]

#: Relative code -> decoded class, for the messages modelled here.  Status is
#: absent: its class depends on the version (see :func:`decode_status`).
ETH_MESSAGES: Final[Mapping[int, type[GetBlockHeaders] | type[BlockHeaders] | type[BlockRangeUpdate]]] = {
    GetBlockHeaders.code: GetBlockHeaders,
    BlockHeaders.code: BlockHeaders,
    BlockRangeUpdate.code: BlockRangeUpdate,
}


def encode_eth(msg: EthMessage) -> tuple[int, bytes]:
    """``(relative code, uncompressed RLP payload)`` of an eth message."""
    if isinstance(msg, RawEthMessage):
        return msg.code, msg.payload
    return msg.code, encode(msg.to_rlp_item())


def decode_status(payload: bytes, version: int | None = None) -> Status:
    """Decode a Status; the layout follows ``version`` (the negotiated eth version).

    Without ``version`` the message's own version field decides.  A peer that
    negotiated one version and claims another in Status is decoded by the
    negotiated one; comparing the two is the caller's call (geth disconnects).
    """
    item = decode(payload)
    if version is None:
        version = as_uint(as_list(item, "status", min_len=1)[0], "status.version")
    if version >= STATUS69_MIN_VERSION:
        return Status69.from_rlp_item(item)
    return Status66.from_rlp_item(item)


def decode_eth(code: int, payload: bytes, version: int) -> EthMessage:
    """Decode an eth message of relative ``code`` under negotiated eth ``version``."""
    count = MESSAGE_COUNTS.get(("eth", version))
    if count is not None and not 0 <= code < count:
        raise UnknownPacketType(f"eth/{version} has no message code {code:#x}")
    if code == 0x00:
        return decode_status(payload, version)
    cls = ETH_MESSAGES.get(code)
    if cls is None or (cls is BlockRangeUpdate and version < STATUS69_MIN_VERSION):
        if code not in ETH_MESSAGE_NAMES:
            raise UnknownPacketType(f"unknown eth message code {code:#x}")
        return RawEthMessage(code=code, payload=payload)
    return cls.from_rlp_item(decode(payload))
