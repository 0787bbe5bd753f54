"""The secp256k1 and keccak primitives every protocol here is built from.

One module so that each primitive has exactly one implementation (and one place
to benchmark): node ids, discovery signatures, ENR "v4" signatures and the RLPx
ECDH all come through here.

Public keys travel in two forms: 64 bytes (x || y, as in enode URLs, discv4
and RLPx) and 33 bytes (compressed, as in ENRs).  Functions accept either the
64-byte raw form or a coincurve ``PublicKey``; they return raw 64-byte keys.
"""

from __future__ import annotations

from typing import Protocol

from coincurve import PrivateKey, PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact

# safe-pysha3 (the maintained fork of pysha3, wheels for CPython 3.10-3.15): one C call per hash, ~0.6 us for
# 100 bytes where pycryptodome's keccak.new(...).digest() takes ~4 us in ctypes/cffi wrappers.  A crawl hashes
# every packet it sends or receives and every relayed key (~130,000 hashes for 1,000 nodes; BENCHMARKS.md).
from sha3 import keccak_256 as _keccak_256

from .errors import BadSignature

__all__ = [
    "keccak256",
    "new_keccak256",
    "KeccakState",
    "node_id_from_pubkey",
    "pubkey_from_private",
    "compress_pubkey",
    "decompress_pubkey",
    "is_valid_pubkey",
    "sign_recoverable",
    "recover_pubkey",
    "ecdh_x",
    "ecdh_compressed",
    "verify_compact",
    "generate_private_key",
    "PrivateKey",
    "PublicKey",
]


class KeccakState(Protocol):
    """A running Keccak-256 state (what :func:`new_keccak256` returns)."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (the pre-standard SHA-3 Ethereum uses) of ``data``."""
    digest: bytes = _keccak_256(data).digest()
    return digest


def new_keccak256() -> KeccakState:
    """A running Keccak-256 state whose digest can be read between updates.

    RLPx's ingress/egress MACs are such running states.
    """
    state: KeccakState = _keccak_256()
    return state


def generate_private_key() -> PrivateKey:
    return PrivateKey()


def pubkey_from_private(key: PrivateKey) -> bytes:
    """The raw 64-byte public key of ``key``."""
    return key.public_key.format(compressed=False)[1:]


def _to_point(pubkey: bytes) -> PublicKey:
    try:
        if len(pubkey) == 64:
            return PublicKey(b"\x04" + pubkey)
        return PublicKey(pubkey)
    except (ValueError, TypeError) as exc:
        raise BadSignature(f"not a secp256k1 public key: {pubkey.hex()[:20]}... ({exc})") from exc


def node_id_from_pubkey(pubkey: bytes) -> bytes:
    """keccak256 of the 64-byte public key (accepts 33, 64 or 65 byte forms)."""
    if len(pubkey) != 64:
        pubkey = _to_point(pubkey).format(compressed=False)[1:]
    return keccak256(pubkey)


def compress_pubkey(pubkey: bytes) -> bytes:
    """64 (or 65) byte public key -> 33-byte compressed form."""
    return _to_point(pubkey).format(compressed=True)


def decompress_pubkey(pubkey: bytes) -> bytes:
    """33 (or 65) byte public key -> raw 64-byte form; BadSignature if not on the curve."""
    return _to_point(pubkey).format(compressed=False)[1:]


def is_valid_pubkey(pubkey: bytes) -> bool:
    """Whether ``pubkey`` (64, 33 or 65 bytes) is a point on secp256k1.

    One libsecp256k1 parse (~0.6 us for the 64-byte form): cheap enough to run
    on every key a stranger relays, before its node id is worth anything.
    """
    try:
        PublicKey(b"\x04" + pubkey if len(pubkey) == 64 else pubkey)
    except (ValueError, TypeError):  # what coincurve raises for bytes that are no point
        return False
    return True


def sign_recoverable(key: PrivateKey, msg_hash: bytes) -> bytes:
    """65-byte ``r || s || v`` signature (v in {0, 1}) over a 32-byte hash."""
    return key.sign_recoverable(msg_hash, hasher=None)


def recover_pubkey(signature: bytes, msg_hash: bytes) -> bytes:
    """The raw 64-byte key that made ``signature`` (65 bytes, r||s||v) over ``msg_hash``."""
    if len(signature) != 65:
        raise BadSignature(f"signature must be 65 bytes, got {len(signature)}")
    if signature[64] > 3:
        raise BadSignature(f"signature recovery id {signature[64]} out of range")
    try:
        key = PublicKey.from_signature_and_message(signature, msg_hash, hasher=None)
    except Exception as exc:  # coincurve raises bare Exception on bad input
        raise BadSignature(f"cannot recover public key from signature ({exc})") from exc
    return key.format(compressed=False)[1:]


def ecdh_x(key: PrivateKey, pubkey: bytes) -> bytes:
    """The x coordinate of ``key * pubkey`` (RLPx and ECIES use it unhashed)."""
    point = _to_point(pubkey).multiply(key.secret)
    return point.format(compressed=True)[1:]


def ecdh_compressed(key: PrivateKey, pubkey: bytes) -> bytes:
    """``key * pubkey`` as a 33-byte compressed point (discv5's "ecdh": parity byte || x)."""
    return _to_point(pubkey).multiply(key.secret).format(compressed=True)


def verify_compact(signature: bytes, msg_hash: bytes, pubkey: bytes) -> bool:
    """Whether the 64-byte ``r || s`` ``signature`` over ``msg_hash`` was made by ``pubkey``.

    Accepts 33, 64 or 65 byte keys.  libsecp256k1 accepts only low-s signatures,
    as go-ethereum's ``crypto.VerifySignature`` does.
    """
    if len(signature) != 64:
        return False
    try:
        der = cdata_to_der(deserialize_compact(signature))
        return bool(_to_point(pubkey).verify(der, msg_hash, hasher=None))
    except Exception:  # BadSignature for a key off the curve; coincurve's bare Exception for r, s out of range
        return False
