"""Ethereum Node Records (EIP-778): decode, verify, create and read.

A record is the RLP list ``[signature, seq, k1, v1, k2, v2, ...]`` with keys
sorted and unique, at most 300 bytes encoded; its text form is ``enr:`` plus
unpadded URL-safe base64.  :class:`ENR` keeps the exact bytes it was decoded
from and every pair as its decoded RLP item, unknown keys included, so a
record passes through us unchanged and its signature stays checkable.

Reading is lenient, checking is strict:

* The *structure* (size, list shape, canonical ``seq``, sorted unique keys) is
  enforced when decoding; a violation raises :class:`BadENR`.
* The *values* are read lazily by typed accessors that return ``None`` for an
  absent or odd-shaped value instead of raising: one client writing a strange
  ``eth`` entry (@chainsafe/enr writes it as a byte string holding RLP) must not
  make the record's IP and ports unreadable.

Identity schemes: only "v4" (secp256k1 + keccak256) is known.  A record with
another or no ``id`` decodes with ``verify=False``, but :meth:`ENR.verify`
returns False for it and ``from_rlp(..., verify=True)`` raises :class:`BadENR`;
:attr:`ENR.node_id` is ``None`` for it, since only the scheme defines the
address.

Verification uses one ECDSA verify against the record's compressed key (about
half the cost of recovering with both recovery ids and comparing).  Like
go-ethereum's ``crypto.VerifySignature``, libsecp256k1 accepts only low-s
signatures.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .crypto import (
    PrivateKey,
    compress_pubkey,
    decompress_pubkey,
    keccak256,
    node_id_from_pubkey,
    sign_recoverable,
    verify_compact,
)
from .enode import IPAddress, Node
from .errors import BadENR, BadSignature, LocalProtocolError, WireError
from .forkid import ForkId
from .rlpcodec import Item, as_bytes, as_list, as_uint, decode, encode, encode_uint, length_prefix
from .unchecked import construct_unchecked

__all__ = ["ENR", "MAX_RECORD_SIZE", "TEXT_PREFIX"]

MAX_RECORD_SIZE = 300  # bytes of RLP, EIP-778 limit (records travel in DNS TXT and UDP)
TEXT_PREFIX = "enr:"
# base64 of 300 bytes is 400 characters; anything longer is rejected before decoding.
MAX_TEXT_LENGTH = len(TEXT_PREFIX) + 4 * ((MAX_RECORD_SIZE + 2) // 3)  # characters
V4_SCHEME = "v4"
V4_SIGNATURE_SIZE = 64  # bytes, r || s without the recovery id (EIP-778 "v4")
COMPRESSED_KEY_SIZE = 33  # bytes, secp256k1 compressed public key
ETH2_SIZE = 16  # bytes: SSZ ENRForkID = fork_digest(4) next_fork_version(4) next_fork_epoch(8, LE)

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# Keys whose values the JSON view shows under their own name, not in "other".
_ENDPOINT_KEYS = (b"ip", b"udp", b"tcp", b"ip6", b"udp6", b"tcp6")


# go-ethereum's net/netip IsPrivate: RFC 1918 and RFC 4193 only (Python's is_private also counts
# documentation and IETF blocks such as 2001::/23, which would demote real global addresses).
_PRIVATE_NETWORKS = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("fc00::/7"),
)


def _locality(ip: IPAddress) -> int:
    """How far an address reaches, 0 (unspecified) to 4 (global): go-ethereum enode's localityScore."""
    if ip.is_unspecified:
        return 0
    if ip.is_loopback:
        return 1
    if ip.is_link_local:
        return 2
    if any(ip in net for net in _PRIVATE_NETWORKS):
        return 3
    return 4


def _bytes_value(item: Item | None) -> bytes | None:
    return item if isinstance(item, bytes) else None


def _port(item: Item | None) -> int | None:
    """A canonical big-endian uint16, as go-ethereum's ``enr.UDP``/``enr.TCP`` decode it."""
    raw = _bytes_value(item)
    if raw is None or len(raw) > 2 or raw[:1] == b"\x00":
        return None
    return int.from_bytes(raw, "big")


def _fork_ids_from_entry(entry: Item) -> list[ForkId] | None:
    # The eth entry is [[hash, next], ...]: a list whose first element is the
    # fork id; later elements are reserved for extensions and ignored (enr-entries/eth.md).
    if not isinstance(entry, list) or not entry:
        return None
    try:
        return [ForkId.from_rlp_item(entry[0])]
    except WireError:
        return None


def _eth_fork_ids(item: Item) -> list[ForkId] | None:
    if isinstance(item, list):
        return _fork_ids_from_entry(item)
    # @chainsafe/enr stores the entry RLP-encoded inside a byte string; some
    # writers put the bare [hash, next] in there rather than the [[hash, next]] entry.
    try:
        inner = decode(item)
    except WireError:
        return None
    if isinstance(inner, list) and len(inner) >= 2 and isinstance(inner[0], bytes):
        try:
            return [ForkId.from_rlp_item(inner)]
        except WireError:
            return None
    return _fork_ids_from_entry(inner)


def _key_text(key: bytes) -> str:
    """A pair key as JSON text: the ASCII name, or 0x-hex when not printable."""
    if key.isascii() and all(0x21 <= b <= 0x7E for b in key) and not key.startswith(b"0x"):
        return key.decode("ascii")
    return "0x" + key.hex()


def _encode_value(key: bytes, value: object) -> Item:
    """A ``create()`` value as its RLP item, in the encodings EIP-778 and geth use."""
    if isinstance(value, bool):
        raise LocalProtocolError(f"ENR value for {key!r}: bool is ambiguous, pass an int")
    if isinstance(value, int):
        if value < 0:
            raise LocalProtocolError(f"ENR value for {key!r}: negative integer {value}")
        return encode_uint(value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value.packed
    if isinstance(value, str):
        if key in (b"ip", b"ip6"):
            try:
                return ipaddress.ip_address(value).packed
            except ValueError as exc:
                raise LocalProtocolError(f"ENR value for {key!r}: {exc}") from exc
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, ForkId):
        return value.to_rlp_item()
    if isinstance(value, (list, tuple)):
        return [_encode_value(key, element) for element in value]
    raise LocalProtocolError(f"ENR value for {key!r}: cannot encode {type(value).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ENR:
    """A node record, exactly as received (or as :meth:`create` made it).

    Build one with :meth:`from_rlp`, :meth:`from_text` or :meth:`create`; the
    plain constructor only checks that ``raw`` encodes the other fields.
    ``pairs`` maps each key to its decoded RLP item (bytes or nested lists),
    in record order.  Two records are equal when their bytes are.
    """

    seq: int
    signature: bytes
    pairs: Mapping[bytes, Item]
    raw: bytes = field(repr=False)
    # The parsed key and node id, worked out once: a crawl asks for them many
    # times per record, and each parse is a curve point decompression.
    _key: tuple[bytes, bytes] | None = field(default=None, init=False, repr=False)
    _key_done: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if encode(self._items()) != self.raw:
            raise LocalProtocolError("ENR.raw does not encode the given seq, signature and pairs")
        # A caller's dict must not change under a record that claims to be immutable.
        object.__setattr__(self, "pairs", MappingProxyType(dict(self.pairs)))

    @classmethod
    def _from_canonical(cls, seq: int, signature: bytes, pairs: dict[bytes, Item], raw: bytes) -> "ENR":
        """A record whose fields were decoded from ``raw`` by the canonical decoder.

        Such fields re-encode to ``raw`` by construction, so the constructor's
        re-encoding check (a third of a verification's cost) is skipped.
        """
        return construct_unchecked(
            cls, seq=seq, signature=signature, pairs=MappingProxyType(pairs), raw=raw, _key=None, _key_done=False
        )

    def _items(self) -> list[Item]:
        items: list[Item] = [self.signature, encode_uint(self.seq)]
        for key, value in self.pairs.items():
            items += [key, value]
        return items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ENR):
            return NotImplemented
        return self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    # ------------------------------------------------------------- decoding

    @classmethod
    def from_rlp(cls, data: bytes, *, verify: bool = True) -> "ENR":
        """Decode a record; with ``verify`` (the default) also check its "v4" signature.

        Raises :class:`BadENR` for anything wrong: size, RLP, shape, key order,
        and (when verifying) an unknown identity scheme or a bad signature.
        """
        if len(data) > MAX_RECORD_SIZE:
            raise BadENR(f"record is {len(data)} bytes, more than the {MAX_RECORD_SIZE}-byte limit")
        try:
            items = as_list(decode(data), "record", min_len=2)
            signature = as_bytes(items[0], "record.signature")
            seq = as_uint(items[1], "record.seq", bits=64)
            if len(items) % 2:
                raise BadENR("record has a key without a value (odd number of list elements)")
            pairs: dict[bytes, Item] = {}
            previous: bytes | None = None
            for i in range(2, len(items), 2):
                key = as_bytes(items[i], f"record key #{i // 2}")
                if previous is not None and key <= previous:
                    what = "duplicate key" if key == previous else "keys not sorted"
                    raise BadENR(f"record {what}: {key!r} after {previous!r}")
                pairs[key] = items[i + 1]
                previous = key
        except BadENR:
            raise
        except WireError as exc:
            raise BadENR(f"malformed record: {exc}") from exc
        record = cls._from_canonical(seq, signature, pairs, bytes(data))
        if verify:
            record.check_signature()
        return record

    @classmethod
    def from_text(cls, text: str, *, verify: bool = True) -> "ENR":
        """Decode ``enr:<base64url>``; padding is optional (the spec writes none)."""
        if len(text) > MAX_TEXT_LENGTH + 2:  # + 2 for padding some writers add
            raise BadENR(f"record text is {len(text)} characters, too long for {MAX_RECORD_SIZE} bytes")
        if not text.startswith(TEXT_PREFIX):
            raise BadENR(f"record text must start with {TEXT_PREFIX!r}: {text[:12]!r}")
        body = text[len(TEXT_PREFIX):].rstrip("=")
        if not _BASE64URL.fullmatch(body):
            bad = next(c for c in body if not _BASE64URL.fullmatch(c))
            raise BadENR(f"not base64: character {bad!r} is not in the URL-safe alphabet")
        if len(body) % 4 == 1:
            raise BadENR(f"not base64: {len(body)} characters cannot encode whole bytes")
        try:
            data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:  # pragma: no cover - excluded by the checks above
            raise BadENR(f"not base64: {exc}") from exc
        return cls.from_rlp(data, verify=verify)

    # ------------------------------------------------------------- creating

    @classmethod
    def create(
        cls,
        private_key: PrivateKey,
        *,
        seq: int,
        pairs: Mapping[str, object] | Mapping[bytes, object] | Mapping[str | bytes, object],
    ) -> "ENR":
        """Sign a "v4" record over ``pairs`` (sorted here) with sequence number ``seq``.

        Values: ints (big-endian, minimal), ``ipaddress`` objects or IP strings
        for ``ip``/``ip6``, other strings as UTF-8, bytes as they are, ForkIds
        and (nested) lists of these.  ``id`` defaults to "v4" and ``secp256k1``
        to the key's compressed form (a given 64-byte raw key is compressed);
        both must agree with ``private_key``.  Raises :class:`LocalProtocolError`
        on a value it cannot encode or a record over 300 bytes.
        """
        if not 0 <= seq < 2**64:
            raise LocalProtocolError(f"ENR seq {seq} out of uint64 range")
        own_key = private_key.public_key.format(compressed=True)
        encoded: dict[bytes, Item] = {b"id": V4_SCHEME.encode(), b"secp256k1": own_key}
        seen: set[bytes] = set()
        for name, value in pairs.items():
            key = name.encode("utf-8") if isinstance(name, str) else bytes(name)
            if key in seen:
                raise LocalProtocolError(f"ENR key {key!r} given twice")
            seen.add(key)
            if key == b"secp256k1" and isinstance(value, (bytes, bytearray)) and len(value) != COMPRESSED_KEY_SIZE:
                try:
                    value = compress_pubkey(bytes(value))
                except BadSignature as exc:
                    raise LocalProtocolError(f"ENR secp256k1 value is not a public key: {exc}") from exc
            encoded[key] = _encode_value(key, value)
        if encoded[b"id"] != V4_SCHEME.encode():
            raise LocalProtocolError(f"ENR.create signs with the v4 scheme, not id={encoded[b'id']!r}")
        if encoded[b"secp256k1"] != own_key:
            raise LocalProtocolError("ENR secp256k1 value is not the signing key's public key")

        ordered = dict(sorted(encoded.items()))
        content: list[Item] = [encode_uint(seq)]
        for key, value in ordered.items():
            content += [key, value]
        signature = sign_recoverable(private_key, keccak256(encode(content)))[:V4_SIGNATURE_SIZE]
        raw = encode([signature, *content])
        if len(raw) > MAX_RECORD_SIZE:
            raise LocalProtocolError(f"ENR would be {len(raw)} bytes, more than {MAX_RECORD_SIZE}")
        return cls(seq=seq, signature=signature, pairs=ordered, raw=raw)

    # ------------------------------------------------------------- encoding

    def to_rlp(self) -> bytes:
        """The record's exact RLP bytes."""
        return self.raw

    def to_text(self) -> str:
        """``enr:`` plus unpadded URL-safe base64 of the RLP bytes."""
        return TEXT_PREFIX + base64.urlsafe_b64encode(self.raw).decode("ascii").rstrip("=")

    def __str__(self) -> str:
        return self.to_text()

    # ------------------------------------------------------------- signature

    def verify(self) -> bool:
        """True if the record is "v4" and signed by its own ``secp256k1`` key."""
        key = self.public_key
        if self.id_scheme != V4_SCHEME or key is None:
            return False
        return verify_compact(self.signature, keccak256(self._content()), key)

    def _content(self) -> bytes:
        """RLP of ``[seq, k, v, ...]``, the signed content, cut out of ``raw`` rather than re-encoded.

        ``raw`` is canonical (the decoder accepts nothing else, and :meth:`create`
        and the constructor check it), so the content's payload is ``raw``'s
        payload after the signature item.
        """
        first = self.raw[0]
        header = 1 if first <= 0xF7 else 1 + first - 0xF7
        signature_item = len(length_prefix(len(self.signature), 0x80)) + len(self.signature)
        if len(self.signature) == 1 and self.signature[0] < 0x80:
            signature_item = 1  # a single low byte is its own encoding
        payload = self.raw[header + signature_item :]
        return length_prefix(len(payload), 0xC0) + payload

    def check_signature(self) -> None:
        """Like :meth:`verify`, but raise :class:`BadENR` saying what failed."""
        scheme = self.id_scheme
        if scheme != V4_SCHEME:
            shown = "no" if b"id" not in self.pairs else repr(scheme or self.pairs[b"id"])
            raise BadENR(f"record has {shown} identity scheme; only 'v4' can be verified")
        if self.public_key is None:
            raise BadENR("v4 record has no valid 33-byte secp256k1 public key")
        if not self.verify():
            raise BadENR("record signature does not match its secp256k1 key")

    # ------------------------------------------------------------- accessors

    def get(self, key: str | bytes) -> Item | None:
        """The raw RLP item stored under ``key``, or None."""
        return self.pairs.get(key.encode("utf-8") if isinstance(key, str) else key)

    @property
    def id_scheme(self) -> str | None:
        raw = _bytes_value(self.get(b"id"))
        return raw.decode("ascii") if raw is not None and raw.isascii() else None

    @property
    def public_key(self) -> bytes | None:
        """The 33-byte compressed ``secp256k1`` key, if present and on the curve."""
        key = self._parsed_key()
        return None if key is None else key[0]

    @property
    def public_key_raw(self) -> bytes | None:
        """The public key as 64 raw bytes (x || y), as enode URLs and discv4 use it."""
        key = self._parsed_key()
        return None if key is None else key[1]

    def _parsed_key(self) -> tuple[bytes, bytes] | None:
        if not self._key_done:
            key: tuple[bytes, bytes] | None = None
            raw = _bytes_value(self.get(b"secp256k1"))
            if raw is not None and len(raw) == COMPRESSED_KEY_SIZE:
                try:
                    key = (raw, decompress_pubkey(raw))
                except WireError:
                    key = None
            object.__setattr__(self, "_key", key)
            object.__setattr__(self, "_key_done", True)
        return self._key

    @property
    def node_id(self) -> bytes | None:
        """keccak256 of the raw public key, for "v4" records (None otherwise)."""
        key = self.public_key_raw
        if key is None or self.id_scheme != V4_SCHEME:
            return None
        return node_id_from_pubkey(key)

    @property
    def ip(self) -> ipaddress.IPv4Address | None:
        raw = _bytes_value(self.get(b"ip"))
        return ipaddress.IPv4Address(raw) if raw is not None and len(raw) == 4 else None

    @property
    def ip6(self) -> ipaddress.IPv6Address | None:
        raw = _bytes_value(self.get(b"ip6"))
        return ipaddress.IPv6Address(raw) if raw is not None and len(raw) == 16 else None

    @property
    def udp(self) -> int | None:
        return _port(self.get(b"udp"))

    @property
    def tcp(self) -> int | None:
        return _port(self.get(b"tcp"))

    @property
    def udp6(self) -> int | None:
        return _port(self.get(b"udp6"))

    @property
    def tcp6(self) -> int | None:
        return _port(self.get(b"tcp6"))

    @property
    def eth(self) -> list[ForkId] | None:
        """The ``eth`` entry's fork id(s); None if absent or not readable."""
        item = self.get(b"eth")
        return None if item is None else _eth_fork_ids(item)

    @property
    def eth2(self) -> bytes | None:
        """The consensus layer's SSZ ENRForkID; its first 4 bytes are the fork digest."""
        return _bytes_value(self.get(b"eth2"))

    @property
    def attnets(self) -> bytes | None:
        """Attestation subnet bitfield (consensus layer), raw bytes."""
        return _bytes_value(self.get(b"attnets"))

    @property
    def syncnets(self) -> bytes | None:
        """Sync committee subnet bitfield (consensus layer), raw bytes."""
        return _bytes_value(self.get(b"syncnets"))

    def endpoint(self) -> tuple[IPAddress | None, int | None, int | None]:
        """(ip, udp, tcp) to reach the node, choosing between ``ip`` and ``ip6`` as go-ethereum does.

        The more global address wins (see :func:`_locality`), IPv4 on a tie: a record announcing a
        private or loopback IPv4 beside a global IPv6 is reached over IPv6, not at an address that
        cannot answer. Multicast addresses are no endpoint. ``udp6``/``tcp6`` default to
        ``udp``/``tcp``, as EIP-778 says; an IPv4-mapped ``ip6`` counts as IPv4.
        """
        ip4, ip6 = self.ip, self.ip6
        if ip4 is not None and ip4.is_multicast:
            ip4 = None
        if ip6 is not None and ip6.is_multicast:
            ip6 = None
        mapped = None if ip6 is None else ip6.ipv4_mapped
        if ip6 is not None and (ip4 is None or _locality(mapped or ip6) > _locality(ip4)):
            if mapped is not None:
                return mapped, self.udp, self.tcp
            udp6, tcp6 = self.udp6, self.tcp6
            return ip6, self.udp if udp6 is None else udp6, self.tcp if tcp6 is None else tcp6
        return ip4, self.udp, self.tcp

    def to_node(self) -> Node:
        """The record as a :class:`Node`; BadENR if it has no usable public key."""
        key = self.public_key_raw
        if key is None:
            raise BadENR("record has no valid secp256k1 public key")
        ip, udp, tcp = self.endpoint()
        return Node(pubkey=key, ip=ip, udp=udp, tcp=tcp)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields: endpoints by name, ``eth`` fork ids, ``other`` pairs.

        ``other`` holds every remaining pair -- and any endpoint or ``eth``
        value too odd to read -- readable for known keys, else as the hex of
        its RLP encoding, so nothing in the record is hidden.
        """
        node_id = self.node_id
        out: dict[str, Any] = {
            "node_id": None if node_id is None else node_id.hex(),
            "seq": self.seq,
        }
        values: dict[bytes, Any] = {
            b"ip": self.ip, b"udp": self.udp, b"tcp": self.tcp,
            b"ip6": self.ip6, b"udp6": self.udp6, b"tcp6": self.tcp6,
        }
        for key in _ENDPOINT_KEYS:
            value = values[key]
            out[key.decode()] = str(value) if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else value
        eth = self.eth
        if eth is not None:
            out["eth"] = [{"fork_hash": f.hash.hex(), "fork_next": f.next} for f in eth]
        other: dict[str, Any] = {}
        for key, item in self.pairs.items():
            if (key in values and values[key] is not None) or (key == b"eth" and eth is not None):
                continue
            other[_key_text(key)] = self._readable(key, item)
        out["other"] = other
        out["valid_signature"] = self.verify()
        return out

    def _readable(self, key: bytes, item: Item) -> Any:
        if isinstance(item, bytes):
            if key == b"id" and self.id_scheme is not None:
                return self.id_scheme
            if key == b"secp256k1" and self.public_key is not None:
                return item.hex()
            if key == b"eth2" and len(item) == ETH2_SIZE:
                return {
                    "fork_digest": item[:4].hex(),
                    "next_fork_version": item[4:8].hex(),
                    "next_fork_epoch": int.from_bytes(item[8:], "little"),
                }
            if key in (b"eth2", b"attnets", b"syncnets"):
                return item.hex()
        return encode(item).hex()
