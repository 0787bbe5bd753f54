"""RLPx auth/ack (rlpx.md "Initial Handshake", EIP-8): the official vectors, both roles, both formats."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ground_truth import load_fixture_json_at_collection
from ethcrawl.wire import rlpcodec
from ethcrawl.wire.crypto import (
    PrivateKey,
    ecdh_x,
    generate_private_key,
    keccak256,
    pubkey_from_private,
    sign_recoverable,
)
from ethcrawl.wire.errors import HandshakeError, LocalProtocolError, WireError
from ethcrawl.wire.rlpx import ecies
from ethcrawl.wire.rlpx.handshake import (
    LEGACY_ACK_SIZE,
    LEGACY_AUTH_SIZE,
    Initiator,
    Recipient,
    ack_size,
    auth_size,
    decode_ack_plaintext,
    decode_auth_plaintext,
    derive_secrets,
    eip8_size,
)

RLPX = load_fixture_json_at_collection("vectors", "eip8.json")["rlpx"]
PACKETS = {p["name"]: bytes.fromhex(p["hex"]) for p in RLPX["packets"]}
SECRETS_AT_B = {k: bytes.fromhex(v) for k, v in RLPX["secrets_auth2_ack2_at_b"].items()}


def key(name: str) -> PrivateKey:
    return PrivateKey(bytes.fromhex(RLPX[name]))


KEY_A, KEY_B = key("static_key_a"), key("static_key_b")
EPH_A, EPH_B = key("ephemeral_key_a"), key("ephemeral_key_b")
NONCE_A, NONCE_B = bytes.fromhex(RLPX["nonce_a"]), bytes.fromhex(RLPX["nonce_b"])
PUB_A, PUB_B = pubkey_from_private(KEY_A), pubkey_from_private(KEY_B)

# What each vector holds, per its description in EIP-8: (EIP-8 format?, version, extra list elements).
AUTH_EXPECTED = {"auth1": (False, 4, 0), "auth2": (True, 4, 0), "auth3": (True, 56, 3)}
ACK_EXPECTED = {"ack1": (False, 4, 0), "ack2": (True, 4, 0), "ack3": (True, 57, 3)}


def test_vector_file_holds_exactly_the_expected_packets() -> None:
    # So that a renamed or added vector cannot silently drop out of the parametrized cases.
    assert set(PACKETS) == set(AUTH_EXPECTED) | set(ACK_EXPECTED)


def recipient_b(**kwargs: Any) -> Recipient:
    return Recipient(KEY_B, ephemeral_key=EPH_B, nonce=NONCE_B, **kwargs)


def initiator_a(**kwargs: Any) -> Initiator:
    return Initiator(KEY_A, PUB_B, ephemeral_key=EPH_A, nonce=NONCE_A, **kwargs)


@pytest.mark.parametrize("name", sorted(AUTH_EXPECTED))
def test_official_auth(name: str) -> None:
    eip8, version, extra = AUTH_EXPECTED[name]
    recipient = recipient_b()
    ack = recipient.receive_auth(PACKETS[name])
    assert recipient.auth is not None
    assert recipient.auth_was_eip8 is eip8
    assert recipient.remote_pubkey == PUB_A
    assert recipient.remote_ephemeral_pubkey == pubkey_from_private(EPH_A)
    assert recipient.auth.nonce == NONCE_A
    assert recipient.auth.version == version
    assert len(recipient.auth.rest) == extra
    # Answered in the auth's own format, as geth does.
    assert (len(ack) == LEGACY_ACK_SIZE) is not eip8
    assert auth_size(PACKETS[name]) == (len(PACKETS[name]) if not eip8 else eip8_size(PACKETS[name]))


@pytest.mark.parametrize("name", sorted(ACK_EXPECTED))
def test_official_ack(name: str) -> None:
    eip8, version, extra = ACK_EXPECTED[name]
    initiator = initiator_a(eip8=eip8)
    secrets = initiator.receive_ack(PACKETS[name])
    assert initiator.ack is not None
    assert initiator.ack.ephemeral_pubkey == pubkey_from_private(EPH_B)
    assert initiator.ack.nonce == NONCE_B
    assert initiator.ack.version == version
    assert len(initiator.ack.rest) == extra
    assert secrets.remote_pubkey == PUB_B
    # aes/mac secrets depend on keys and nonces only, which every ack vector shares.
    assert secrets.aes_secret == SECRETS_AT_B["aes_secret"]
    assert secrets.mac_secret == SECRETS_AT_B["mac_secret"]
    assert ack_size(PACKETS[name]) == (len(PACKETS[name]) if not eip8 else eip8_size(PACKETS[name]))


def test_official_secrets_at_b_for_auth2_ack2() -> None:
    secrets = derive_secrets(
        initiator=False,
        ephemeral_key=EPH_B,
        remote_ephemeral_pubkey=pubkey_from_private(EPH_A),
        initiator_nonce=NONCE_A,
        recipient_nonce=NONCE_B,
        auth=PACKETS["auth2"],
        ack=PACKETS["ack2"],
        remote_pubkey=PUB_A,
    )
    assert secrets.aes_secret == SECRETS_AT_B["aes_secret"]
    assert secrets.mac_secret == SECRETS_AT_B["mac_secret"]
    secrets.ingress_mac.update(b"foo")
    assert secrets.ingress_mac.digest() == SECRETS_AT_B["ingress_mac_foo"]


def test_official_ingress_mac_through_the_recipient() -> None:
    # B's ingress MAC is keyed over the auth only, so our recipient reproduces it from auth2.
    recipient = recipient_b()
    recipient.receive_auth(PACKETS["auth2"])
    assert recipient.secrets is not None
    assert recipient.secrets.aes_secret == SECRETS_AT_B["aes_secret"]
    assert recipient.secrets.mac_secret == SECRETS_AT_B["mac_secret"]
    recipient.secrets.ingress_mac.update(b"foo")
    assert recipient.secrets.ingress_mac.digest() == SECRETS_AT_B["ingress_mac_foo"]


def test_a_egress_mac_mirrors_b_ingress_mac() -> None:
    secrets_a = derive_secrets(
        initiator=True,
        ephemeral_key=EPH_A,
        remote_ephemeral_pubkey=pubkey_from_private(EPH_B),
        initiator_nonce=NONCE_A,
        recipient_nonce=NONCE_B,
        auth=PACKETS["auth2"],
        ack=PACKETS["ack2"],
        remote_pubkey=PUB_B,
    )
    secrets_a.egress_mac.update(b"foo")
    assert secrets_a.egress_mac.digest() == SECRETS_AT_B["ingress_mac_foo"]


@pytest.mark.parametrize("name", sorted(AUTH_EXPECTED))
def test_our_ack_to_official_auth_gives_a_the_same_secrets(name: str) -> None:
    recipient = recipient_b()
    ack = recipient.receive_auth(PACKETS[name])
    initiator = initiator_a(eip8=AUTH_EXPECTED[name][0])
    secrets_a = initiator.receive_ack(ack)
    assert recipient.secrets is not None
    assert secrets_a.aes_secret == recipient.secrets.aes_secret == SECRETS_AT_B["aes_secret"]


@pytest.mark.parametrize("answer", [True, False])
@pytest.mark.parametrize("name", ["auth1", "auth2"])
def test_recipient_can_force_the_ack_format(name: str, answer: bool) -> None:
    ack = recipient_b(eip8=answer).receive_auth(PACKETS[name])
    assert (len(ack) == LEGACY_ACK_SIZE and ack[0] == 0x04) is not answer
    assert initiator_a().receive_ack(ack).aes_secret == SECRETS_AT_B["aes_secret"]


def _pad_length(message: bytes, recipient: PrivateKey) -> int:
    plaintext = ecies.decrypt(recipient, message[2:], message[:2])
    _body, padding = rlpcodec.decode_prefix(plaintext)
    return len(padding)


def test_eip8_padding_is_100_to_300_bytes_and_deterministic_under_a_seeded_rng() -> None:
    lengths = set()
    for seed in range(40):
        auth = initiator_a(rng=random.Random(seed)).auth_message()
        again = initiator_a(rng=random.Random(seed)).auth_message()
        assert len(auth) == len(again) == eip8_size(auth)
        padding = _pad_length(auth, KEY_B)
        assert 100 <= padding <= 300
        lengths.add(padding)
    assert len(lengths) > 10  # the size varies, as EIP-8 recommends


def test_legacy_auth_is_307_bytes_and_auth_message_is_stable() -> None:
    initiator = initiator_a(eip8=False)
    auth = initiator.auth_message()
    assert len(auth) == LEGACY_AUTH_SIZE and auth[0] == 0x04
    assert initiator.auth_message() == auth


@pytest.mark.parametrize(
    ("prefix", "auth", "ack"),
    [
        (b"", None, None),
        (b"\x01", None, None),
        (b"\x04", LEGACY_AUTH_SIZE, LEGACY_ACK_SIZE),
        (b"\x04\xff", LEGACY_AUTH_SIZE, LEGACY_ACK_SIZE),
        (b"\x01\xb3", 2 + 0x1B3, 2 + 0x1B3),
        (b"\x00\x00", 2, 2),
        (b"\xff\xff\x00", 2 + 0xFFFF, 2 + 0xFFFF),
    ],
)
def test_message_sizes(prefix: bytes, auth: int | None, ack: int | None) -> None:
    assert auth_size(prefix) == auth
    assert ack_size(prefix) == ack


def test_eip8_size() -> None:
    assert eip8_size(b"\x04") is None
    assert eip8_size(b"\x04\x10") == 2 + 0x0410


private_keys = st.integers(min_value=1, max_value=2**255).map(PrivateKey.from_int)


@settings(max_examples=60, deadline=None)
@given(
    key_a=private_keys,
    key_b=private_keys,
    nonce_a=st.binary(min_size=32, max_size=32),
    nonce_b=st.binary(min_size=32, max_size=32),
    eip8=st.booleans(),
    answer=st.sampled_from([None, True, False]),
)
def test_round_trip(
    key_a: PrivateKey, key_b: PrivateKey, nonce_a: bytes, nonce_b: bytes, eip8: bool, answer: bool | None
) -> None:
    initiator = Initiator(key_a, pubkey_from_private(key_b), eip8=eip8, nonce=nonce_a)
    recipient = Recipient(key_b, eip8=answer, nonce=nonce_b)
    ack = recipient.receive_auth(initiator.auth_message())
    secrets_a = initiator.receive_ack(ack)
    secrets_b = recipient.secrets
    assert secrets_b is not None
    assert recipient.auth_was_eip8 is eip8
    assert recipient.remote_pubkey == secrets_b.remote_pubkey == pubkey_from_private(key_a)
    assert secrets_a.remote_pubkey == pubkey_from_private(key_b)
    assert recipient.auth is not None and recipient.auth.nonce == nonce_a
    assert initiator.ack is not None and initiator.ack.nonce == nonce_b
    assert (secrets_a.aes_secret, secrets_a.mac_secret) == (secrets_b.aes_secret, secrets_b.mac_secret)
    secrets_a.egress_mac.update(b"x")
    secrets_b.ingress_mac.update(b"x")
    assert secrets_a.egress_mac.digest() == secrets_b.ingress_mac.digest()
    secrets_b.egress_mac.update(b"y")
    secrets_a.ingress_mac.update(b"y")
    assert secrets_b.egress_mac.digest() == secrets_a.ingress_mac.digest()


item = st.recursive(st.binary(max_size=8), lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(
    version=st.integers(min_value=0, max_value=2**64 - 1),
    rest=st.lists(item, max_size=4),
    padding=st.binary(max_size=50),
    sig=st.binary(min_size=65, max_size=65),
    pub=st.binary(min_size=64, max_size=64),
    nonce=st.binary(min_size=32, max_size=32),
)
def test_eip8_bodies_tolerate_any_version_extra_elements_and_trailing_data(
    version: int, rest: list[Any], padding: bytes, sig: bytes, pub: bytes, nonce: bytes
) -> None:
    auth = decode_auth_plaintext(rlpcodec.encode([sig, pub, nonce, version, *rest]) + padding, eip8=True)
    assert (auth.signature, auth.initiator_pubkey, auth.nonce, auth.version) == (sig, pub, nonce, version)
    assert list(auth.rest) == rest
    ack = decode_ack_plaintext(rlpcodec.encode([pub, nonce, version, *rest]) + padding, eip8=True)
    assert (ack.ephemeral_pubkey, ack.nonce, ack.version, list(ack.rest)) == (pub, nonce, version, rest)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        rlpcodec.encode(b"not a list"),
        rlpcodec.encode([b"\x00" * 65, b"\x00" * 64, b"\x00" * 32]),  # no version
        rlpcodec.encode([b"\x00" * 64, b"\x00" * 64, b"\x00" * 32, 4]),  # short signature
        rlpcodec.encode([b"\x00" * 65, b"\x00" * 63, b"\x00" * 32, 4]),  # short key
        rlpcodec.encode([b"\x00" * 65, b"\x00" * 64, b"\x00" * 31, 4]),  # short nonce
        rlpcodec.encode([b"\x00" * 65, b"\x00" * 64, b"\x00" * 32, b"\x00\x04"]),  # non-canonical version
        rlpcodec.encode([b"\x00" * 65, b"\x00" * 64, b"\x00" * 32, [4]]),  # list as version
    ],
)
def test_bad_eip8_auth_bodies(body: bytes) -> None:
    with pytest.raises(HandshakeError, match="auth"):
        decode_auth_plaintext(body, eip8=True)


@pytest.mark.parametrize(
    "body",
    [
        b"\xc0",
        rlpcodec.encode([b"\x00" * 64, b"\x00" * 32]),
        rlpcodec.encode([b"\x00" * 65, b"\x00" * 32, 4]),
        rlpcodec.encode([b"\x00" * 64, b"\x00" * 33, 4]),
    ],
)
def test_bad_eip8_ack_bodies(body: bytes) -> None:
    with pytest.raises(HandshakeError, match="ack"):
        decode_ack_plaintext(body, eip8=True)


@pytest.mark.parametrize("cut", [1, 3, 20])
def test_eip8_body_cut_short_inside_its_list(cut: int) -> None:
    # The list's last string runs past the end: no padding can make up for that.
    body = rlpcodec.encode([b"\x01" * 65, b"\x02" * 64, b"\x03" * 32, b"\x04" * 30])
    with pytest.raises(HandshakeError, match=r"claims \d+ bytes, only \d+ present"):
        decode_auth_plaintext(body[:-cut], eip8=True)
    ack = rlpcodec.encode([b"\x02" * 64, b"\x03" * 32, b"\x04" * 30])
    with pytest.raises(HandshakeError, match=r"claims \d+ bytes, only \d+ present"):
        decode_ack_plaintext(ack[:-cut], eip8=True)


def test_bad_legacy_plaintext_lengths() -> None:
    with pytest.raises(HandshakeError, match="legacy auth"):
        decode_auth_plaintext(bytes(193), eip8=False)
    with pytest.raises(HandshakeError, match="legacy ack"):
        decode_ack_plaintext(bytes(98), eip8=False)


def test_legacy_auth_with_wrong_ephemeral_hash_is_rejected() -> None:
    static_shared = ecdh_x(KEY_A, PUB_B)
    sig = sign_recoverable(EPH_A, bytes(a ^ b for a, b in zip(static_shared, NONCE_A)))
    wrong_hash = keccak256(b"not the ephemeral key")
    auth = ecies.encrypt(PUB_B, sig + wrong_hash + PUB_A + NONCE_A + b"\x00")
    with pytest.raises(HandshakeError, match="hash"):
        recipient_b().receive_auth(auth)


def _eip8_auth(sig: bytes) -> bytes:
    plaintext = rlpcodec.encode([sig, PUB_A, NONCE_A, 4]) + bytes(100)
    prefix = (len(plaintext) + ecies.OVERHEAD).to_bytes(2, "big")
    return prefix + ecies.encrypt(PUB_B, plaintext, prefix)


@pytest.mark.parametrize("sig", [bytes(65), b"\x01" * 64 + b"\x07"], ids=["zero", "bad-recovery-id"])
def test_auth_with_unrecoverable_signature_is_rejected(sig: bytes) -> None:
    with pytest.raises(HandshakeError):
        recipient_b().receive_auth(_eip8_auth(sig))


def test_auth_to_someone_else_is_rejected() -> None:
    with pytest.raises(HandshakeError):
        Recipient(generate_private_key()).receive_auth(PACKETS["auth2"])


@pytest.mark.parametrize("name", sorted(AUTH_EXPECTED))
def test_every_flipped_auth_byte_is_rejected(name: str) -> None:
    packet = PACKETS[name]
    for index in range(0, len(packet), 3):
        tampered = bytearray(packet)
        tampered[index] ^= 0x80
        with pytest.raises(HandshakeError):
            recipient_b().receive_auth(bytes(tampered))


@pytest.mark.parametrize("name", sorted(ACK_EXPECTED))
def test_truncated_or_extended_ack_is_rejected(name: str) -> None:
    packet = PACKETS[name]
    for bad in (packet[:-1], packet + b"\x00", packet[:2], packet[:1]):
        with pytest.raises(HandshakeError):
            initiator_a().receive_ack(bad)


def test_each_side_receives_once() -> None:
    recipient = recipient_b()
    recipient.receive_auth(PACKETS["auth2"])
    with pytest.raises(LocalProtocolError):
        recipient.receive_auth(PACKETS["auth2"])
    initiator = initiator_a()
    initiator.receive_ack(PACKETS["ack2"])
    with pytest.raises(LocalProtocolError):
        initiator.receive_ack(PACKETS["ack2"])


def test_api_misuse_is_local() -> None:
    with pytest.raises(LocalProtocolError):
        Initiator(KEY_A, PUB_B[:63])
    with pytest.raises(LocalProtocolError):
        Initiator(KEY_A, PUB_B, nonce=bytes(31))
    with pytest.raises(LocalProtocolError):
        Initiator(KEY_A, bytes(64)).auth_message()  # not a curve point
    with pytest.raises(LocalProtocolError):
        Recipient(KEY_B, nonce=bytes(33))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700))
def test_random_auth_only_raises_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        recipient_b().receive_auth(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500))
def test_random_ack_only_raises_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        initiator_a().receive_ack(data)
