"""wire.crypto against an independent implementation (eth-keys) and the keccak test vector."""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_keys import keys
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire import crypto
from ethcrawl.wire.errors import BadSignature

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secrets = st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(lambda n: n.to_bytes(32, "big"))


def test_keccak256_of_empty_input() -> None:
    assert crypto.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


@settings(max_examples=200)
@given(st.binary(max_size=3000))
def test_keccak256_matches_pycryptodome(data: bytes) -> None:
    # Sizes around the 136-byte rate and a NEIGHBORS packet's 1,280: the padding edge cases.
    assert crypto.keccak256(data) == pycryptodome_keccak.new(data=data, digest_bits=256).digest()


@settings(max_examples=50)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_running_keccak_matches_pycryptodome_after_each_update(chunks: list[bytes]) -> None:
    running = crypto.new_keccak256()
    reference = pycryptodome_keccak.new(digest_bits=256, update_after_digest=True)
    for chunk in chunks:
        running.update(chunk)
        reference.update(chunk)
        assert running.digest() == reference.digest()


def test_running_keccak_reads_between_updates() -> None:
    running = crypto.new_keccak256()
    running.update(b"ab")
    assert running.digest() == crypto.keccak256(b"ab")
    running.update(b"cd")
    assert running.digest() == crypto.keccak256(b"abcd")


@settings(max_examples=50)
@given(secrets, st.binary(min_size=32, max_size=32))
def test_sign_and_recover_agree_with_eth_keys(secret: bytes, msg_hash: bytes) -> None:
    ours = crypto.PrivateKey(secret)
    theirs = keys.PrivateKey(secret)
    assert crypto.pubkey_from_private(ours) == theirs.public_key.to_bytes()
    signature = crypto.sign_recoverable(ours, msg_hash)
    assert keys.Signature(signature).recover_public_key_from_msg_hash(msg_hash).to_bytes() == theirs.public_key.to_bytes()
    their_signature = theirs.sign_msg_hash(msg_hash).to_bytes()
    assert crypto.recover_pubkey(their_signature, msg_hash) == theirs.public_key.to_bytes()
    assert crypto.node_id_from_pubkey(theirs.public_key.to_bytes()) == crypto.keccak256(theirs.public_key.to_bytes())


@settings(max_examples=30)
@given(secrets, secrets)
def test_ecdh_is_symmetric_and_compression_round_trips(a: bytes, b: bytes) -> None:
    ka, kb = crypto.PrivateKey(a), crypto.PrivateKey(b)
    pa, pb = crypto.pubkey_from_private(ka), crypto.pubkey_from_private(kb)
    assert crypto.ecdh_x(ka, pb) == crypto.ecdh_x(kb, pa)
    compressed = crypto.compress_pubkey(pa)
    assert compressed == keys.PrivateKey(a).public_key.to_compressed_bytes()
    assert crypto.decompress_pubkey(compressed) == pa
    assert crypto.node_id_from_pubkey(compressed) == crypto.node_id_from_pubkey(pa)


@pytest.mark.parametrize(
    ("signature", "why"),
    [(b"\x00" * 64, "65 bytes"), (b"\x01" * 64 + b"\x04", "recovery id"), (b"\x00" * 65, "cannot recover")],
)
def test_bad_signatures_are_typed(signature: bytes, why: str) -> None:
    with pytest.raises(BadSignature, match=why):
        crypto.recover_pubkey(signature, b"\x00" * 32)


def test_a_point_off_the_curve_is_typed() -> None:
    with pytest.raises(BadSignature):
        crypto.decompress_pubkey(b"\x02" + b"\xff" * 32)


@given(secrets)
@settings(max_examples=25)
def test_every_real_key_is_valid_in_each_form(secret: bytes) -> None:
    raw = crypto.pubkey_from_private(crypto.PrivateKey(secret))
    for form in (raw, b"\x04" + raw, crypto.compress_pubkey(raw)):
        assert crypto.is_valid_pubkey(form)


@pytest.mark.parametrize(
    "key",
    [b"\x07" * 64, b"\x00" * 64, b"\xff" * 64, b"\x02" + b"\xff" * 32, b"\x04" + b"\x07" * 64, b"", b"\x01" * 63],
    ids=["off-curve", "zeros", "over-p", "compressed-over-p", "prefixed-off-curve", "empty", "63-bytes"],
)
def test_bytes_that_are_no_point_are_invalid(key: bytes) -> None:
    assert not crypto.is_valid_pubkey(key)
