"""The RLPx auth/ack handshake as a sans-I/O state machine (rlpx.md, "Initial Handshake"; EIP-8).

The initiator sends ``auth``, the recipient answers ``ack``; both then derive
the same :class:`Secrets` for the frame layer.  Two wire formats exist:

* legacy (RLPx v4 before EIP-8): fixed-size plaintexts, so a whole auth is
  :data:`LEGACY_AUTH_SIZE` bytes and an ack :data:`LEGACY_ACK_SIZE`;
* EIP-8: an RLP list (extra elements and any version tolerated) plus random
  padding, ECIES-encrypted with the 2-byte big-endian size prefix as MAC data.

A legacy message starts with the 0x04 of its ECIES ephemeral key; an EIP-8
message starting with 0x04 would have to be at least 1026 bytes long, far
beyond what any client sends.  :func:`auth_size` and :func:`ack_size` therefore
ask for the legacy size first when they see 0x04, and EIP-8's rule applies
after that: if the legacy reading fails, :func:`eip8_size` says how many bytes
the EIP-8 reading needs.  Nothing here reads a socket; the caller brings whole
messages.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

from .. import rlpcodec
from ..crypto import (
    PrivateKey,
    ecdh_x,
    generate_private_key,
    KeccakState,
    keccak256,
    new_keccak256,
    pubkey_from_private,
    recover_pubkey,
    sign_recoverable,
)
from ..errors import BadSignature, HandshakeError, LocalProtocolError, MalformedMessage, MalformedRLP
from . import ecies

__all__ = [
    "HANDSHAKE_VERSION",
    "LEGACY_AUTH_SIZE",
    "LEGACY_ACK_SIZE",
    "AuthMessage",
    "AckMessage",
    "Secrets",
    "Initiator",
    "Recipient",
    "auth_size",
    "ack_size",
    "eip8_size",
    "derive_secrets",
    "decode_auth_plaintext",
    "decode_ack_plaintext",
]

HANDSHAKE_VERSION = 4  # auth-vsn / ack-vsn we send (EIP-8)
NONCE_SIZE = 32  # bytes, initiator-nonce / recipient-nonce
PUBKEY_SIZE = 64  # bytes, raw secp256k1 public key (x || y)
SIGNATURE_SIZE = 65  # bytes, r || s || v
SIZE_PREFIX = 2  # bytes, EIP-8 auth-size / ack-size, big-endian
# Legacy plaintexts: sig || keccak256(ephemeral-pubk) || pubk || nonce || token flag, and
# ephemeral-pubk || nonce || token flag.  The token flag (always 0) was never used.
LEGACY_AUTH_PLAINTEXT = SIGNATURE_SIZE + 32 + PUBKEY_SIZE + NONCE_SIZE + 1  # 194 bytes
LEGACY_ACK_PLAINTEXT = PUBKEY_SIZE + NONCE_SIZE + 1  # 97 bytes
LEGACY_AUTH_SIZE = LEGACY_AUTH_PLAINTEXT + ecies.OVERHEAD  # 307 bytes on the wire
LEGACY_ACK_SIZE = LEGACY_ACK_PLAINTEXT + ecies.OVERHEAD  # 210 bytes on the wire
# EIP-8 recommends 100-300 junk bytes: at least 100 keeps an EIP-8 auth longer than a legacy
# one, and a random amount varies the packet size.
PADDING_MIN = 100  # bytes
PADDING_MAX = 300  # bytes


# --- sizes of buffered messages ------------------------------------------------------------


def eip8_size(prefix: bytes) -> int | None:
    """Total bytes (prefix included) of the EIP-8 message ``prefix`` starts; None if < 2 bytes."""
    if len(prefix) < SIZE_PREFIX:
        return None
    return SIZE_PREFIX + int.from_bytes(prefix[:SIZE_PREFIX], "big")


def _message_size(prefix: bytes, legacy_size: int) -> int | None:
    if not prefix:
        return None
    if prefix[0] == 0x04:
        return legacy_size
    return eip8_size(prefix)


def auth_size(prefix: bytes) -> int | None:
    """Bytes the auth message starting with ``prefix`` needs first; None = read more.

    For a prefix starting with 0x04 this is the legacy size; should that reading
    fail, the message can only be EIP-8 and :func:`eip8_size` gives its size.
    """
    return _message_size(prefix, LEGACY_AUTH_SIZE)


def ack_size(prefix: bytes) -> int | None:
    """Like :func:`auth_size`, for the ack message."""
    return _message_size(prefix, LEGACY_ACK_SIZE)


def _open(private_key: PrivateKey, data: bytes, legacy_size: int, what: str) -> tuple[bytes, bool]:
    """(plaintext, is_eip8) of a whole handshake message, trying the legacy format first (EIP-8)."""
    size = eip8_size(data)
    if len(data) == legacy_size and data[0] == 0x04:
        try:
            return ecies.decrypt(private_key, data), False
        except HandshakeError as exc:
            if size != len(data):
                raise HandshakeError(f"{what}: not a legacy message ({exc}) nor an EIP-8 one") from exc
    if size is None or size != len(data):
        raise HandshakeError(f"{what}: EIP-8 size prefix says {size} bytes in all, got {len(data)}")
    try:
        return ecies.decrypt(private_key, data[SIZE_PREFIX:], data[:SIZE_PREFIX]), True
    except HandshakeError as exc:
        raise HandshakeError(f"{what}: {exc}") from exc


def _seal(remote_pubkey: bytes, body: list[Any], legacy_plaintext: bytes | None, rng: random.Random) -> bytes:
    """Encrypt a handshake body: legacy when ``legacy_plaintext`` is given, else EIP-8 with padding."""
    if legacy_plaintext is not None:
        return ecies.encrypt(remote_pubkey, legacy_plaintext)
    plaintext = rlpcodec.encode(body) + bytes(rng.randint(PADDING_MIN, PADDING_MAX))
    prefix = (len(plaintext) + ecies.OVERHEAD).to_bytes(SIZE_PREFIX, "big")
    return prefix + ecies.encrypt(remote_pubkey, plaintext, prefix)


def _leading_list(plaintext: bytes, what: str, *, min_len: int) -> list[Any]:
    """The RLP list an EIP-8 body starts with (padding after it ignored)."""
    item, _padding = rlpcodec.decode_prefix(plaintext)
    return rlpcodec.as_list(item, what, min_len=min_len)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


# --- message bodies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthMessage:
    """A decrypted auth body: [sig, initiator-pubk, initiator-nonce, auth-vsn, ...]."""

    signature: bytes
    initiator_pubkey: bytes
    nonce: bytes
    version: int = HANDSHAKE_VERSION
    #: Legacy only: keccak256 of the initiator's ephemeral key (None for EIP-8).
    ephemeral_hash: bytes | None = None
    rest: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AckMessage:
    """A decrypted ack body: [recipient-ephemeral-pubk, recipient-nonce, ack-vsn, ...]."""

    ephemeral_pubkey: bytes
    nonce: bytes
    version: int = HANDSHAKE_VERSION
    rest: tuple[Any, ...] = ()


def decode_auth_plaintext(plaintext: bytes, *, eip8: bool) -> AuthMessage:
    """Parse a decrypted auth body; HandshakeError if its shape is wrong."""
    if not eip8:
        if len(plaintext) != LEGACY_AUTH_PLAINTEXT:
            raise HandshakeError(f"legacy auth: plaintext is {len(plaintext)} bytes, want {LEGACY_AUTH_PLAINTEXT}")
        return AuthMessage(
            signature=plaintext[:65],
            ephemeral_hash=plaintext[65:97],
            initiator_pubkey=plaintext[97:161],
            nonce=plaintext[161:193],
        )
    try:
        fields = _leading_list(plaintext, "auth", min_len=4)
        return AuthMessage(
            signature=rlpcodec.as_bytes(fields[0], "auth.sig", length=SIGNATURE_SIZE),
            initiator_pubkey=rlpcodec.as_bytes(fields[1], "auth.initiator-pubk", length=PUBKEY_SIZE),
            nonce=rlpcodec.as_bytes(fields[2], "auth.nonce", length=NONCE_SIZE),
            version=rlpcodec.as_uint(fields[3], "auth.vsn"),
            rest=tuple(fields[4:]),
        )
    except (MalformedRLP, MalformedMessage) as exc:
        raise HandshakeError(f"EIP-8 auth body: {exc}") from exc


def decode_ack_plaintext(plaintext: bytes, *, eip8: bool) -> AckMessage:
    """Parse a decrypted ack body; HandshakeError if its shape is wrong."""
    if not eip8:
        if len(plaintext) != LEGACY_ACK_PLAINTEXT:
            raise HandshakeError(f"legacy ack: plaintext is {len(plaintext)} bytes, want {LEGACY_ACK_PLAINTEXT}")
        return AckMessage(ephemeral_pubkey=plaintext[:64], nonce=plaintext[64:96])
    try:
        fields = _leading_list(plaintext, "ack", min_len=3)
        return AckMessage(
            ephemeral_pubkey=rlpcodec.as_bytes(fields[0], "ack.ephemeral-pubk", length=PUBKEY_SIZE),
            nonce=rlpcodec.as_bytes(fields[1], "ack.nonce", length=NONCE_SIZE),
            version=rlpcodec.as_uint(fields[2], "ack.vsn"),
            rest=tuple(fields[3:]),
        )
    except (MalformedRLP, MalformedMessage) as exc:
        raise HandshakeError(f"EIP-8 ack body: {exc}") from exc


# --- secrets -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Secrets:
    """What both sides know after the handshake; the frame layer's keys.

    ``egress_mac`` and ``ingress_mac`` are running keccak256 states that the
    frame codec keeps updating: hand a Secrets to exactly one FrameCodec.
    """

    remote_pubkey: bytes
    aes_secret: bytes
    mac_secret: bytes
    egress_mac: KeccakState = field(repr=False)
    ingress_mac: KeccakState = field(repr=False)


def derive_secrets(
    *,
    initiator: bool,
    ephemeral_key: PrivateKey,
    remote_ephemeral_pubkey: bytes,
    initiator_nonce: bytes,
    recipient_nonce: bytes,
    auth: bytes,
    ack: bytes,
    remote_pubkey: bytes,
) -> Secrets:
    """The session secrets of rlpx.md for one side; ``auth``/``ack`` are the whole wire messages."""
    try:
        ephemeral_shared = ecdh_x(ephemeral_key, remote_ephemeral_pubkey)
    except BadSignature as exc:
        raise HandshakeError(f"remote ephemeral key is not on the curve: {exc}") from exc
    shared_secret = keccak256(ephemeral_shared + keccak256(recipient_nonce + initiator_nonce))
    aes_secret = keccak256(ephemeral_shared + shared_secret)
    mac_secret = keccak256(ephemeral_shared + aes_secret)
    # MAC over what was sent, keyed with the nonce the other side chose.
    auth_mac = new_keccak256()
    auth_mac.update(_xor(mac_secret, recipient_nonce) + auth)
    ack_mac = new_keccak256()
    ack_mac.update(_xor(mac_secret, initiator_nonce) + ack)
    egress, ingress = (auth_mac, ack_mac) if initiator else (ack_mac, auth_mac)
    return Secrets(
        remote_pubkey=remote_pubkey,
        aes_secret=aes_secret,
        mac_secret=mac_secret,
        egress_mac=egress,
        ingress_mac=ingress,
    )


# --- the two roles -------------------------------------------------------------------------


def _check_nonce(nonce: bytes | None) -> bytes:
    if nonce is None:
        return os.urandom(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise LocalProtocolError(f"handshake nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
    return nonce


class Initiator:
    """The dialing side: :meth:`auth_message` to send, then :meth:`receive_ack` for the secrets.

    ``ephemeral_key``, ``nonce`` and ``rng`` (padding length) are random unless
    given; tests pin them.
    """

    def __init__(
        self,
        private_key: PrivateKey,
        remote_pubkey: bytes,
        *,
        eip8: bool = True,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if len(remote_pubkey) != PUBKEY_SIZE:
            raise LocalProtocolError(f"remote public key must be {PUBKEY_SIZE} bytes, got {len(remote_pubkey)}")
        self.private_key = private_key
        self.remote_pubkey = remote_pubkey
        self.eip8 = eip8
        self.ephemeral_key = ephemeral_key if ephemeral_key is not None else generate_private_key()
        self.nonce = _check_nonce(nonce)
        self._rng = rng if rng is not None else random.SystemRandom()
        self._auth: bytes | None = None
        self.ack: AckMessage | None = None
        self.secrets: Secrets | None = None

    def auth_message(self) -> bytes:
        """The auth message to send (made once; the same bytes on every call)."""
        if self._auth is None:
            try:
                static_shared = ecdh_x(self.private_key, self.remote_pubkey)
            except BadSignature as exc:
                raise LocalProtocolError(f"remote public key is not on the curve: {exc}") from exc
            signature = sign_recoverable(self.ephemeral_key, _xor(static_shared, self.nonce))
            pubkey = pubkey_from_private(self.private_key)
            legacy = None
            if not self.eip8:
                ephemeral_hash = keccak256(pubkey_from_private(self.ephemeral_key))
                legacy = signature + ephemeral_hash + pubkey + self.nonce + b"\x00"
            body = [signature, pubkey, self.nonce, HANDSHAKE_VERSION]
            self._auth = _seal(self.remote_pubkey, body, legacy, self._rng)
        return self._auth

    def receive_ack(self, data: bytes) -> Secrets:
        """Decrypt the whole ack message ``data`` and derive the session secrets."""
        if self.secrets is not None:
            raise LocalProtocolError("the ack was already received")
        auth = self.auth_message()
        plaintext, eip8 = _open(self.private_key, data, LEGACY_ACK_SIZE, "ack")
        self.ack = decode_ack_plaintext(plaintext, eip8=eip8)
        self.secrets = derive_secrets(
            initiator=True,
            ephemeral_key=self.ephemeral_key,
            remote_ephemeral_pubkey=self.ack.ephemeral_pubkey,
            initiator_nonce=self.nonce,
            recipient_nonce=self.ack.nonce,
            auth=auth,
            ack=data,
            remote_pubkey=self.remote_pubkey,
        )
        return self.secrets


class Recipient:
    """The listening side: :meth:`receive_auth` returns the ack to send; then :attr:`secrets`.

    ``eip8=None`` answers in the format the auth came in (as geth does);
    True/False force a format.
    """

    def __init__(
        self,
        private_key: PrivateKey,
        *,
        eip8: bool | None = None,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.private_key = private_key
        self.eip8 = eip8
        self.ephemeral_key = ephemeral_key if ephemeral_key is not None else generate_private_key()
        self.nonce = _check_nonce(nonce)
        self._rng = rng if rng is not None else random.SystemRandom()
        self.auth: AuthMessage | None = None
        self.auth_was_eip8: bool | None = None
        self.remote_pubkey: bytes | None = None
        self.remote_ephemeral_pubkey: bytes | None = None
        self.secrets: Secrets | None = None

    def receive_auth(self, data: bytes) -> bytes:
        """Decrypt and verify the whole auth message ``data``; return the ack to send."""
        if self.secrets is not None:
            raise LocalProtocolError("the auth was already received")
        plaintext, eip8 = _open(self.private_key, data, LEGACY_AUTH_SIZE, "auth")
        auth = decode_auth_plaintext(plaintext, eip8=eip8)
        try:
            static_shared = ecdh_x(self.private_key, auth.initiator_pubkey)
            remote_ephemeral = recover_pubkey(auth.signature, _xor(static_shared, auth.nonce))
        except BadSignature as exc:
            raise HandshakeError(f"auth: {exc}") from exc
        if auth.ephemeral_hash is not None and auth.ephemeral_hash != keccak256(remote_ephemeral):
            raise HandshakeError("legacy auth: ephemeral key hash does not match the signature's key")
        answer_eip8 = eip8 if self.eip8 is None else self.eip8
        legacy = None
        if not answer_eip8:
            legacy = pubkey_from_private(self.ephemeral_key) + self.nonce + b"\x00"
        body = [pubkey_from_private(self.ephemeral_key), self.nonce, HANDSHAKE_VERSION]
        ack = _seal(auth.initiator_pubkey, body, legacy, self._rng)
        self.auth, self.auth_was_eip8 = auth, eip8
        self.remote_pubkey, self.remote_ephemeral_pubkey = auth.initiator_pubkey, remote_ephemeral
        self.secrets = derive_secrets(
            initiator=False,
            ephemeral_key=self.ephemeral_key,
            remote_ephemeral_pubkey=remote_ephemeral,
            initiator_nonce=auth.nonce,
            recipient_nonce=self.nonce,
            auth=data,
            ack=ack,
            remote_pubkey=auth.initiator_pubkey,
        )
        return ack
