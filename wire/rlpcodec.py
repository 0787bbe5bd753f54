"""Thin, typed access to RLP items, translating every failure into wire errors.

The ``rlp`` package does the encoding and decoding; this module only checks
shapes (list vs byte string, lengths, canonical integers) with messages that
name the field, so each message codec stays a few readable lines.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeAlias, Union

import rlp
from rlp.exceptions import DecodingError

from .errors import MalformedMessage, MalformedRLP

__all__ = [
    "Item",
    "decode",
    "decode_prefix",
    "encode",
    "encode_uint",
    "as_list",
    "as_bytes",
    "as_uint",
]

#: A decoded RLP item: a byte string or a (nested) list of them.
Item: TypeAlias = Union[bytes, list[Any]]


def encode(item: Any) -> bytes:
    """RLP-encode ``item`` (ints, bytes, str and nested sequences of them)."""
    encoded: bytes = rlp.encode(item)
    return encoded


def decode(data: bytes) -> Item:
    """Decode exactly one RLP item that spans all of ``data``."""
    try:
        return rlp.decode(data, strict=True)  # type: ignore[no-any-return]
    except DecodingError as exc:
        raise MalformedRLP(f"invalid RLP: {exc}") from exc
    except (ValueError, TypeError, IndexError) as exc:
        raise MalformedRLP(f"invalid RLP: {exc!r}") from exc


def decode_prefix(data: bytes) -> tuple[Item, bytes]:
    """Decode the first RLP item of ``data``; return it and the bytes after it.

    EIP-8 asks receivers to ignore data after the RLP payload of a packet.
    """
    try:
        item, _per_item, end = rlp.codec.consume_item(data, 0)
    except DecodingError as exc:
        raise MalformedRLP(f"invalid RLP: {exc}") from exc
    except (ValueError, TypeError, IndexError) as exc:
        raise MalformedRLP(f"invalid RLP: {exc!r}") from exc
    # pyrlp's consume_item trusts the length prefix: a string that claims more
    # bytes than remain comes back short instead of failing.
    if end > len(data):
        raise MalformedRLP(f"invalid RLP: item claims {end} bytes, only {len(data)} present")
    return item, data[end:]


def encode_uint(value: int) -> bytes:
    """Big-endian, minimal-length encoding of a non-negative integer (0 -> b"")."""
    if value < 0:
        raise ValueError(f"negative integer {value} cannot be RLP-encoded")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def as_list(item: Item, field: str, *, min_len: int = 0) -> list[Any]:
    """``item`` as a list of at least ``min_len`` elements, else MalformedMessage."""
    if not isinstance(item, list):
        raise MalformedMessage(f"{field}: expected an RLP list, got a byte string")
    if len(item) < min_len:
        raise MalformedMessage(f"{field}: expected at least {min_len} elements, got {len(item)}")
    return item


def as_bytes(item: Item, field: str, *, length: int | None = None, max_len: int | None = None) -> bytes:
    """``item`` as a byte string (of exactly ``length`` / at most ``max_len`` bytes)."""
    if not isinstance(item, bytes):
        raise MalformedMessage(f"{field}: expected a byte string, got a list")
    if length is not None and len(item) != length:
        raise MalformedMessage(f"{field}: expected {length} bytes, got {len(item)}")
    if max_len is not None and len(item) > max_len:
        raise MalformedMessage(f"{field}: expected at most {max_len} bytes, got {len(item)}")
    return item


def as_uint(item: Item, field: str, *, bits: int = 64) -> int:
    """``item`` as a canonical unsigned integer of at most ``bits`` bits.

    Canonical means no leading zero bytes, as go-ethereum's rlp package demands.
    """
    raw = as_bytes(item, field)
    if raw[:1] == b"\x00":
        raise MalformedMessage(f"{field}: integer has leading zero bytes")
    if len(raw) * 8 > bits:
        raise MalformedMessage(f"{field}: integer wider than {bits} bits")
    return int.from_bytes(raw, "big")


def as_sequence_of_bytes(items: Sequence[Item], field: str) -> list[bytes]:
    return [as_bytes(x, f"{field}[{i}]") for i, x in enumerate(items)]
