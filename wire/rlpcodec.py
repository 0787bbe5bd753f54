"""Thin, typed access to RLP items, translating every failure into wire errors.

The ``rlp`` package does the encoding and decoding; this module only checks
shapes (list vs byte string, lengths, canonical integers) with messages that
name the field, so each message codec stays a few readable lines.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeAlias, Union

from .errors import MalformedMessage, MalformedRLP

__all__ = [
    "Item",
    "decode",
    "decode_prefix",
    "encode",
    "encode_uint",
    "length_prefix",
    "freeze",
    "as_list",
    "as_bytes",
    "as_uint",
]

#: A decoded RLP item: a byte string or a (nested) list of them.
Item: TypeAlias = Union[bytes, list[Any]]


def length_prefix(length: int, offset: int) -> bytes:
    """The RLP header of a string (offset 0x80) or list (0xC0) payload of ``length`` bytes."""
    if length < 56:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def encode(item: Any) -> bytes:
    """RLP-encode ``item`` (bytes, non-negative ints, str and nested sequences of them).

    Written out rather than delegated to ``rlp.encode``: pyrlp infers a sedes
    for every element, which made it most of the cost of signing a NEIGHBORS
    packet or verifying an ENR (see BENCHMARKS.md).  Output is identical.
    """
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
        if len(data) == 1 and data[0] < 0x80:
            return data
        return length_prefix(len(data), 0x80) + data
    if isinstance(item, (list, tuple)):
        body = b"".join([encode(x) for x in item])
        return length_prefix(len(body), 0xC0) + body
    if isinstance(item, int):
        return encode(encode_uint(item))
    if isinstance(item, str):
        return encode(item.encode("utf-8"))
    raise TypeError(f"cannot RLP-encode {type(item).__name__}")


# Nesting deeper than this is no protocol's and would only exhaust the stack.
MAX_DEPTH = 64


def _item_at(data: bytes, pos: int, end: int, depth: int = 0) -> tuple[Item, int]:
    """The item starting at ``pos`` (which must end by ``end``) and the position after it.

    Canonical RLP only, like go-ethereum's decoder: a single byte below 0x80
    must stand for itself, short lengths must use the short form, and long
    lengths have no leading zero bytes.
    """
    if pos >= end:
        raise MalformedRLP(f"invalid RLP: input ends at byte {pos}, an item was expected")
    first = data[pos]
    if first < 0x80:
        return data[pos : pos + 1], pos + 1
    if first < 0xB8:
        length, start, is_list = first - 0x80, pos + 1, False
        if length == 1 and start < end and data[start] < 0x80:
            raise MalformedRLP(f"invalid RLP: byte {data[start]:#04x} at {start} must be encoded as itself")
    elif first < 0xC0:
        length, start, is_list = _long_length(data, pos, end, first - 0xB7), pos + 1 + first - 0xB7, False
    elif first < 0xF8:
        length, start, is_list = first - 0xC0, pos + 1, True
    else:
        length, start, is_list = _long_length(data, pos, end, first - 0xF7), pos + 1 + first - 0xF7, True
    stop = start + length
    if stop > end:
        raise MalformedRLP(f"invalid RLP: item at {pos} claims {stop} bytes, only {end} present")
    if not is_list:
        return data[start:stop], stop
    if depth >= MAX_DEPTH:
        raise MalformedRLP(f"invalid RLP: lists nested deeper than {MAX_DEPTH}")
    items: list[Any] = []
    while start < stop:
        # Short byte strings (ids, ports, keys, IPs: most of every packet) are cut here rather than in a call
        # of their own; anything else, including every malformed case, goes through _item_at and its errors.
        lead = data[start]
        if lead < 0x80:
            items.append(data[start : start + 1])
            start += 1
            continue
        after = start + lead - 0x7F
        if lead < 0xB8 and after <= stop and (lead != 0x81 or data[start + 1] >= 0x80):
            items.append(data[start + 1 : after])
            start = after
            continue
        item, start = _item_at(data, start, stop, depth + 1)
        items.append(item)
    return items, stop


def _long_length(data: bytes, pos: int, end: int, size: int) -> int:
    if pos + 1 + size > end:
        raise MalformedRLP(f"invalid RLP: length of item at {pos} runs past the input")
    raw = data[pos + 1 : pos + 1 + size]
    if raw[0] == 0:
        raise MalformedRLP(f"invalid RLP: length of item at {pos} has leading zero bytes")
    length = int.from_bytes(raw, "big")
    if length < 56:
        raise MalformedRLP(f"invalid RLP: item at {pos} uses the long form for {length} bytes")
    return length


def decode(data: bytes) -> Item:
    """Decode exactly one RLP item that spans all of ``data``."""
    item, rest = decode_prefix(data)
    if rest:
        raise MalformedRLP(f"invalid RLP: {len(rest)} bytes after the item")
    return item


def decode_prefix(data: bytes) -> tuple[Item, bytes]:
    """Decode the first RLP item of ``data``; return it and the bytes after it.

    EIP-8 asks receivers to ignore data after the RLP payload of a packet.
    Written out rather than delegated to pyrlp (which was most of the cost of a
    NEIGHBORS decode, and slices past the end of short input).
    """
    data = bytes(data)
    item, end = _item_at(data, 0, len(data))
    return item, data[end:]


def freeze(item: Any) -> Any:
    """Nested lists -> tuples, so messages holding raw RLP items stay hashable."""
    if isinstance(item, (list, tuple)):
        return tuple(freeze(x) for x in item)
    return item


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
