"""ECIES as RLPx uses it for the auth/ack handshake (rlpx.md, "ECIES Encryption").

secp256k1 ECDH (the bare x coordinate), the NIST SP 800-56 concatenation KDF
over SHA-256, AES-128-CTR with a random 16-byte IV and an HMAC-SHA256 tag keyed
with ``sha256(k_M)``.  The tag also covers ``shared_mac_data``, which EIP-8 sets
to the 2-byte size prefix of the handshake message, so the prefix cannot be
altered in transit.

A message is ``R || iv || c || d``: the sender's 65-byte uncompressed ephemeral
public key, the IV, the ciphertext (as long as the plaintext) and the 32-byte
tag.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from Crypto.Cipher import AES

from ..crypto import PrivateKey, ecdh_x, generate_private_key, pubkey_from_private
from ..errors import BadSignature, HandshakeError, LocalProtocolError

__all__ = [
    "OVERHEAD",
    "encrypt",
    "decrypt",
]

PUBKEY_SIZE = 65  # bytes, uncompressed secp256k1 point (0x04 || x || y) as R
IV_SIZE = 16  # bytes, one AES block: the CTR counter's starting value
TAG_SIZE = 32  # bytes, HMAC-SHA256 output
KEY_SIZE = 16  # bytes, AES-128 key (and as much again for the MAC key)
#: bytes an encryption adds to its plaintext (113): what makes a legacy auth 307 bytes.
OVERHEAD = PUBKEY_SIZE + IV_SIZE + TAG_SIZE


def _concat_kdf(shared: bytes, length: int) -> bytes:
    """NIST SP 800-56 concatenation KDF with SHA-256 and empty OtherInfo (geth's s1 = nil)."""
    out = b""
    counter = 1
    while len(out) < length:
        out += hashlib.sha256(counter.to_bytes(4, "big") + shared).digest()
        counter += 1
    return out[:length]


def _derive_keys(shared: bytes) -> tuple[bytes, bytes]:
    """(AES key, HMAC key) from the ECDH x coordinate."""
    material = _concat_kdf(shared, 2 * KEY_SIZE)
    return material[:KEY_SIZE], hashlib.sha256(material[KEY_SIZE:]).digest()


def _tag(mac_key: bytes, iv_and_ciphertext: bytes, shared_mac_data: bytes) -> bytes:
    return hmac.new(mac_key, iv_and_ciphertext + shared_mac_data, hashlib.sha256).digest()


def _aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # The whole 16-byte IV is the initial counter block, as Go's cipher.NewCTR uses it.
    return AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(data)


def encrypt(
    remote_pubkey: bytes,
    plaintext: bytes,
    shared_mac_data: bytes = b"",
    *,
    ephemeral_key: PrivateKey | None = None,
    iv: bytes | None = None,
) -> bytes:
    """Encrypt ``plaintext`` so only the holder of ``remote_pubkey``'s private key reads it.

    ``remote_pubkey`` is the raw 64-byte key.  ``ephemeral_key`` and ``iv`` are
    random unless given (tests pin them for reproducible output).
    """
    if iv is None:
        iv = os.urandom(IV_SIZE)
    if len(iv) != IV_SIZE:
        raise LocalProtocolError(f"ECIES IV must be {IV_SIZE} bytes, got {len(iv)}")
    if ephemeral_key is None:
        ephemeral_key = generate_private_key()
    try:
        shared = ecdh_x(ephemeral_key, remote_pubkey)
    except BadSignature as exc:
        raise LocalProtocolError(f"cannot encrypt to an invalid public key: {exc}") from exc
    enc_key, mac_key = _derive_keys(shared)
    iv_and_ciphertext = iv + _aes_ctr(enc_key, iv, plaintext)
    return (
        b"\x04"
        + pubkey_from_private(ephemeral_key)
        + iv_and_ciphertext
        + _tag(mac_key, iv_and_ciphertext, shared_mac_data)
    )


def decrypt(private_key: PrivateKey, ciphertext: bytes, shared_mac_data: bytes = b"") -> bytes:
    """The plaintext of an ECIES message to ``private_key``; HandshakeError if it is not one.

    The tag is checked (in constant time) before anything is decrypted.
    """
    if len(ciphertext) < OVERHEAD:
        raise HandshakeError(f"ECIES message too short: {len(ciphertext)} bytes, need at least {OVERHEAD}")
    if ciphertext[0] != 0x04:
        raise HandshakeError(f"ECIES ephemeral key must be uncompressed (0x04), starts with {ciphertext[0]:#04x}")
    ephemeral_pubkey = ciphertext[1:PUBKEY_SIZE]
    try:
        shared = ecdh_x(private_key, ephemeral_pubkey)
    except BadSignature as exc:
        raise HandshakeError(f"ECIES ephemeral key is not on the curve: {exc}") from exc
    enc_key, mac_key = _derive_keys(shared)
    iv_and_ciphertext = ciphertext[PUBKEY_SIZE:-TAG_SIZE]
    tag = ciphertext[-TAG_SIZE:]
    if not hmac.compare_digest(tag, _tag(mac_key, iv_and_ciphertext, shared_mac_data)):
        raise HandshakeError("ECIES tag mismatch: wrong key, or the message was altered")
    iv = iv_and_ciphertext[:IV_SIZE]
    return _aes_ctr(enc_key, iv, iv_and_ciphertext[IV_SIZE:])
