"""discovery v5.1 crypto: the primitives' properties beyond the spec vectors (test_discv5_vectors.py).

ECDH agrees both ways and is the compressed point; HKDF keys differ by role;
masking is its own inverse; AES-GCM rejects any altered byte with
DecryptionFailed; the id-signature binds every input; wire.crypto's two new
helpers (ecdh_compressed, verify_compact) against coincurve directly.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import (
    PrivateKey,
    ecdh_compressed,
    ecdh_x,
    pubkey_from_private,
    sign_recoverable,
    verify_compact,
)
from ethcrawl.wire.discv5 import crypto
from ethcrawl.wire.errors import BadSignature, DecryptionFailed, LocalProtocolError

ALICE = PrivateKey(bytes.fromhex("eef77acb6c6a6eebc5b363a475ac583ec7eccdb42b6481424c60f59aa326547f"))
BOB = PrivateKey(bytes.fromhex("66fb62bfbd66b9177a138c1e5cddbe4f7c30c343e94e68df8769459cb1cde628"))
ID_A = bytes.fromhex("aaaa8419e9f49d0083561b48287df592939a8d19947d8c0ef88f2a4856a69fbb")
ID_B = bytes.fromhex("bbbb9d047f0488c0b5a93c1c3f2d8bafc7c8ff337024a55434a0d0555de64db9")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

secrets = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda n: PrivateKey(n.to_bytes(32, "big")))


@settings(max_examples=50, deadline=None)
@given(secrets, secrets)
def test_ecdh_agrees_and_is_the_compressed_point(a: PrivateKey, b: PrivateKey) -> None:
    shared = crypto.ecdh(a, b.public_key.format(compressed=True))
    assert shared == crypto.ecdh(b, pubkey_from_private(a))  # 33- and 64-byte keys both accepted
    assert len(shared) == 33 and shared[0] in (2, 3)
    assert shared[1:] == ecdh_x(a, pubkey_from_private(b))
    assert ecdh_compressed(a, pubkey_from_private(b)) == shared


def test_ecdh_rejects_a_point_off_the_curve() -> None:
    with pytest.raises(BadSignature):
        crypto.ecdh(ALICE, b"\x02" + bytes(32))


def test_derived_keys_depend_on_every_input() -> None:
    secret = crypto.ecdh(ALICE, BOB.public_key.format())
    base = crypto.derive_keys(secret, ID_A, ID_B, b"challenge")
    assert base.initiator_key != base.recipient_key
    assert len(base.initiator_key) == len(base.recipient_key) == crypto.KEY_SIZE
    for other in (
        crypto.derive_keys(secret, ID_B, ID_A, b"challenge"),
        crypto.derive_keys(secret, ID_A, ID_B, b"challengf"),
        crypto.derive_keys(crypto.ecdh(BOB, BOB.public_key.format()), ID_A, ID_B, b"challenge"),
    ):
        assert other.initiator_key != base.initiator_key


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16), st.binary(max_size=300))
def test_mask_is_its_own_inverse(dest: bytes, iv: bytes, data: bytes) -> None:
    masked = crypto.mask(dest, iv, data)
    assert len(masked) == len(data)
    assert crypto.mask(dest, iv, masked) == data


def test_mask_counts_over_the_whole_iv() -> None:
    # A CTR counter that only counted the low 64 bits would repeat the keystream here.
    iv = bytes.fromhex("00000000000000ffffffffffffffffff")
    stream = crypto.mask(ID_B, iv, bytes(32))
    assert stream[:16] != stream[16:]
    assert crypto.mask(ID_B, (int.from_bytes(iv, "big") + 1).to_bytes(16, "big"), bytes(16)) == stream[16:]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=60), st.data())
def test_gcm_round_trip_and_every_bit_flip_fails(plaintext: bytes, ad: bytes, data: st.DataObject) -> None:
    key, nonce = bytes(range(16)), bytes(range(12))
    sealed = crypto.encrypt_message(key, nonce, plaintext, ad)
    assert len(sealed) == len(plaintext) + crypto.TAG_SIZE
    assert crypto.decrypt_message(key, nonce, sealed, ad) == plaintext
    index = data.draw(st.integers(0, len(sealed) - 1))
    flipped = bytearray(sealed)
    flipped[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_message(key, nonce, bytes(flipped), ad)
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_message(key, nonce, sealed, ad + b"x")
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_message(key, nonce, sealed[: data.draw(st.integers(0, len(sealed) - 1))], ad)


def test_gcm_rejects_wrong_key_sizes_as_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        crypto.encrypt_message(bytes(15), bytes(12), b"", b"")
    with pytest.raises(LocalProtocolError):
        crypto.decrypt_message(bytes(16), bytes(11), bytes(16), b"")


def test_id_signature_binds_every_input() -> None:
    eph = BOB.public_key.format()
    signature = crypto.id_sign(ALICE, b"challenge", eph, ID_B)
    assert len(signature) == crypto.ID_SIGNATURE_SIZE
    crypto.id_verify(ALICE.public_key.format(), signature, b"challenge", eph, ID_B)
    crypto.id_verify(pubkey_from_private(ALICE), signature, b"challenge", eph, ID_B)
    for args in (
        (BOB.public_key.format(), signature, b"challenge", eph, ID_B),
        (ALICE.public_key.format(), signature, b"challengf", eph, ID_B),
        (ALICE.public_key.format(), signature, b"challenge", ALICE.public_key.format(), ID_B),
        (ALICE.public_key.format(), signature, b"challenge", eph, ID_A),
        (ALICE.public_key.format(), signature[:63], b"challenge", eph, ID_B),
        (ALICE.public_key.format(), bytes(64), b"challenge", eph, ID_B),
        (ALICE.public_key.format(), b"\xff" * 64, b"challenge", eph, ID_B),
        (b"\x02" + bytes(32), signature, b"challenge", eph, ID_B),
    ):
        with pytest.raises(BadSignature):
            crypto.id_verify(*args)


@settings(max_examples=50, deadline=None)
@given(secrets, st.binary(min_size=32, max_size=32))
def test_verify_compact_matches_signing(key: PrivateKey, digest: bytes) -> None:
    signature = sign_recoverable(key, digest)[:64]
    assert verify_compact(signature, digest, key.public_key.format())
    assert verify_compact(signature, digest, pubkey_from_private(key))
    assert not verify_compact(signature, bytes(a ^ 1 for a in digest), key.public_key.format())
    assert not verify_compact(signature + b"\x00", digest, key.public_key.format())
