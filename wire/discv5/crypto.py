"""The cryptography of discovery v5.1: header masking, message sealing, session keys, id proofs.

Four pieces, each a pure function of its inputs (the "v4" identity scheme):

* header masking: AES-128-CTR keyed by the first 16 bytes of the destination
  node id, with the packet's 16-byte masking IV as the initial counter block;
* message encryption: AES-128-GCM with a 12-byte nonce, the 16-byte tag
  appended to the ciphertext;
* session keys: HKDF-SHA256 over the compressed ECDH point, salted with the
  WHOAREYOU challenge data;
* the id-signature: a 64-byte ``r || s`` secp256k1 signature over
  ``sha256("discovery v5 identity proof" || challenge-data || eph-pubkey || node-id-B)``.

The secp256k1 primitives come from :mod:`ethcrawl.wire.crypto`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto import PrivateKey, ecdh_compressed, sign_recoverable, verify_compact
from ..errors import BadSignature, DecryptionFailed, LocalProtocolError

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "MASKING_IV_SIZE",
    "TAG_SIZE",
    "ID_SIGNATURE_SIZE",
    "SessionKeys",
    "mask",
    "encrypt_message",
    "decrypt_message",
    "ecdh",
    "derive_keys",
    "id_sign",
    "id_verify",
]

KEY_SIZE = 16  # bytes, AES-128 session and masking keys
NONCE_SIZE = 12  # bytes, the AES-GCM nonce every message packet carries
MASKING_IV_SIZE = 16  # bytes, one AES block: the CTR initial counter
TAG_SIZE = 16  # bytes, the AES-GCM tag appended to every ciphertext
ID_SIGNATURE_SIZE = 64  # bytes, r || s without a recovery id ("v4" scheme)
NODE_ID_SIZE = 32  # bytes, keccak256 of the public key

KDF_INFO_TEXT = b"discovery v5 key agreement"
ID_SIGNATURE_TEXT = b"discovery v5 identity proof"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionKeys:
    """The two keys one handshake yields; the initiator writes with the first, the recipient with the second."""

    initiator_key: bytes
    recipient_key: bytes


def _check_size(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise LocalProtocolError(f"{what} must be {size} bytes, got {len(value)}")


def mask(dest_id: bytes, masking_iv: bytes, data: bytes) -> bytes:
    """AES-128-CTR of ``data`` under ``dest_id[:16]``; CTR is its own inverse, so this also unmasks."""
    _check_size(dest_id, NODE_ID_SIZE, "destination node id")
    _check_size(masking_iv, MASKING_IV_SIZE, "masking iv")
    # The whole 16-byte IV is a big-endian counter, as Go's cipher.NewCTR counts (and OpenSSL's CTR).
    masker = Cipher(algorithms.AES(dest_id[:KEY_SIZE]), modes.CTR(masking_iv)).encryptor()
    return masker.update(data) + masker.finalize()


def encrypt_message(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """AES-128-GCM ciphertext of ``plaintext`` with the tag appended."""
    _check_size(key, KEY_SIZE, "message key")
    _check_size(nonce, NONCE_SIZE, "message nonce")
    return AESGCM(key).encrypt(nonce, plaintext, ad)  # the 16-byte tag appended, as the spec lays it out


def decrypt_message(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """The plaintext of an AES-128-GCM ``ciphertext || tag``; DecryptionFailed if it does not authenticate."""
    _check_size(key, KEY_SIZE, "message key")
    _check_size(nonce, NONCE_SIZE, "message nonce")
    if len(ciphertext) < TAG_SIZE:
        raise DecryptionFailed(f"message of {len(ciphertext)} bytes is shorter than the {TAG_SIZE}-byte GCM tag")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag as exc:
        raise DecryptionFailed("message does not authenticate under the session key (GCM tag mismatch)") from exc


def ecdh(private_key: PrivateKey, pubkey: bytes) -> bytes:
    """The 33-byte compressed shared point; BadSignature if ``pubkey`` is not on the curve."""
    return ecdh_compressed(private_key, pubkey)


def derive_keys(secret: bytes, initiator_id: bytes, recipient_id: bytes, challenge_data: bytes) -> SessionKeys:
    """HKDF-SHA256: extract with the challenge data as salt, expand 32 bytes with the two node ids."""
    _check_size(initiator_id, NODE_ID_SIZE, "initiator node id")
    _check_size(recipient_id, NODE_ID_SIZE, "recipient node id")
    info = KDF_INFO_TEXT + initiator_id + recipient_id
    # RFC 5869 written out: 32 bytes of output take one expand block.  Two
    # hmac.digest calls cost ~3 us; pycryptodome's generic HKDF took ~30 us
    # (bench/discv5_bench.py), twice per handshake.
    prk = hmac.digest(challenge_data, secret, "sha256")
    key_data = hmac.digest(prk, info + b"\x01", "sha256")
    return SessionKeys(initiator_key=key_data[:KEY_SIZE], recipient_key=key_data[KEY_SIZE:])


def _id_signature_hash(challenge_data: bytes, eph_pubkey: bytes, dest_id: bytes) -> bytes:
    return hashlib.sha256(ID_SIGNATURE_TEXT + challenge_data + eph_pubkey + dest_id).digest()


def id_sign(static_key: PrivateKey, challenge_data: bytes, eph_pubkey: bytes, dest_id: bytes) -> bytes:
    """The 64-byte id-signature proving we hold ``static_key`` (RFC 6979 nonce, so deterministic)."""
    _check_size(dest_id, NODE_ID_SIZE, "destination node id")
    digest = _id_signature_hash(challenge_data, eph_pubkey, dest_id)
    return sign_recoverable(static_key, digest)[:ID_SIGNATURE_SIZE]


def id_verify(pubkey: bytes, signature: bytes, challenge_data: bytes, eph_pubkey: bytes, dest_id: bytes) -> None:
    """Raise BadSignature unless ``signature`` is the id-signature of ``pubkey`` over the handshake inputs."""
    if len(signature) != ID_SIGNATURE_SIZE:
        raise BadSignature(f"id-signature must be {ID_SIGNATURE_SIZE} bytes, got {len(signature)}")
    digest = _id_signature_hash(challenge_data, eph_pubkey, dest_id)
    if not verify_compact(signature, digest, pubkey):
        raise BadSignature("id-signature does not verify against the node's public key")
