"""ECIES (rlpx.md, "ECIES Encryption"): round trips, the official auth1 ciphertext, and tampering."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ground_truth import load_fixture_json_at_collection
from ethcrawl.wire.crypto import PrivateKey, generate_private_key, pubkey_from_private
from ethcrawl.wire.errors import HandshakeError, LocalProtocolError, WireError
from ethcrawl.wire.rlpx import ecies

RLPX = load_fixture_json_at_collection("vectors", "eip8.json")["rlpx"]
KEY_B = PrivateKey(bytes.fromhex(RLPX["static_key_b"]))
AUTH1 = bytes.fromhex(next(p["hex"] for p in RLPX["packets"] if p["name"] == "auth1"))

RECIPIENT = generate_private_key()
RECIPIENT_PUB = pubkey_from_private(RECIPIENT)


def test_overhead_is_key_iv_and_tag() -> None:
    assert ecies.OVERHEAD == 65 + 16 + 32


def test_official_legacy_auth_is_one_ecies_message() -> None:
    # auth1 (pre-EIP-8) is bare ECIES over a 194-byte plaintext, with no MAC data: decrypting it
    # checks the KDF, the AES-CTR and the HMAC key derivation against another implementation.
    plaintext = ecies.decrypt(KEY_B, AUTH1)
    assert len(plaintext) == len(AUTH1) - ecies.OVERHEAD == 194
    assert plaintext[-1] == 0  # the legacy token flag


@settings(max_examples=150, deadline=None)
@given(plaintext=st.binary(max_size=600), mac_data=st.binary(max_size=4))
def test_round_trip(plaintext: bytes, mac_data: bytes) -> None:
    message = ecies.encrypt(RECIPIENT_PUB, plaintext, mac_data)
    assert len(message) == len(plaintext) + ecies.OVERHEAD
    assert message[0] == 0x04
    assert ecies.decrypt(RECIPIENT, message, mac_data) == plaintext


def test_pinned_randomness_is_deterministic_and_fresh_randomness_is_not() -> None:
    ephemeral, iv = generate_private_key(), os.urandom(16)
    one = ecies.encrypt(RECIPIENT_PUB, b"hello", ephemeral_key=ephemeral, iv=iv)
    two = ecies.encrypt(RECIPIENT_PUB, b"hello", ephemeral_key=ephemeral, iv=iv)
    assert one == two
    assert one[1:65] == pubkey_from_private(ephemeral)
    assert one[65:81] == iv
    assert ecies.encrypt(RECIPIENT_PUB, b"hello") != ecies.encrypt(RECIPIENT_PUB, b"hello")


def test_wrong_key_fails() -> None:
    message = ecies.encrypt(RECIPIENT_PUB, b"secret")
    with pytest.raises(HandshakeError, match="tag mismatch"):
        ecies.decrypt(generate_private_key(), message)


def test_shared_mac_data_is_authenticated() -> None:
    message = ecies.encrypt(RECIPIENT_PUB, b"secret", b"\x01\x23")
    with pytest.raises(HandshakeError, match="tag mismatch"):
        ecies.decrypt(RECIPIENT, message, b"\x01\x24")
    with pytest.raises(HandshakeError, match="tag mismatch"):
        ecies.decrypt(RECIPIENT, message)


def test_every_flipped_byte_is_caught() -> None:
    message = ecies.encrypt(RECIPIENT_PUB, b"attack at dawn")
    for index in range(len(message)):
        tampered = bytearray(message)
        tampered[index] ^= 0x01
        with pytest.raises(HandshakeError):
            ecies.decrypt(RECIPIENT, bytes(tampered))


@pytest.mark.parametrize("cut", [0, 1, 64, 65, 81, ecies.OVERHEAD - 1])
def test_too_short(cut: int) -> None:
    message = ecies.encrypt(RECIPIENT_PUB, b"")
    with pytest.raises(HandshakeError, match="too short"):
        ecies.decrypt(RECIPIENT, message[:cut])


def test_truncated_or_extended_fails() -> None:
    message = ecies.encrypt(RECIPIENT_PUB, b"some plaintext")
    with pytest.raises(HandshakeError):
        ecies.decrypt(RECIPIENT, message[:-1])
    with pytest.raises(HandshakeError):
        ecies.decrypt(RECIPIENT, message + b"\x00")


def test_compressed_ephemeral_key_rejected() -> None:
    message = ecies.encrypt(RECIPIENT_PUB, b"x" * 40)
    with pytest.raises(HandshakeError, match="uncompressed"):
        ecies.decrypt(RECIPIENT, b"\x02" + message[1:])


def test_ephemeral_key_off_the_curve_rejected() -> None:
    message = ecies.encrypt(RECIPIENT_PUB, b"x" * 40)
    with pytest.raises(HandshakeError, match="not on the curve"):
        ecies.decrypt(RECIPIENT, b"\x04" + bytes(64) + message[65:])


def test_encrypting_to_a_bad_key_or_with_a_bad_iv_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        ecies.encrypt(bytes(64), b"x")
    with pytest.raises(LocalProtocolError):
        ecies.encrypt(RECIPIENT_PUB, b"x", iv=bytes(8))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        ecies.decrypt(RECIPIENT, data)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_uncompressed_prefix_only_raises_wire_errors(data: st.DataObject) -> None:
    # Past the first byte check, so the curve and tag checks are exercised too.
    body = data.draw(st.binary(min_size=64, max_size=300))
    with pytest.raises(WireError):
        ecies.decrypt(RECIPIENT, b"\x04" + body)
