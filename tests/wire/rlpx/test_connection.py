"""RLPxConnection: two peers in memory (h11's ConnectionPair, geth's net.Pipe), both roles and formats."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ground_truth import load_fixture_json_at_collection
from ethcrawl.wire import rlpcodec
from ethcrawl.wire.crypto import PrivateKey, ecdh_x, generate_private_key, pubkey_from_private, sign_recoverable
from ethcrawl.wire.errors import BadMAC, HandshakeError, LocalProtocolError, PacketTooLarge, WireError
from ethcrawl.wire.rlpx import ecies
from ethcrawl.wire.rlpx.connection import (
    ConnectionClosed,
    ConnectionState,
    Event,
    FrameReceived,
    HandshakeCompleted,
    RLPxConnection,
)
from ethcrawl.wire.rlpx.handshake import LEGACY_ACK_SIZE, LEGACY_AUTH_SIZE

RLPX = load_fixture_json_at_collection("vectors", "eip8.json")["rlpx"]
PACKETS = {p["name"]: bytes.fromhex(p["hex"]) for p in RLPX["packets"]}

ALICE, BOB = generate_private_key(), generate_private_key()
ALICE_PUB, BOB_PUB = pubkey_from_private(ALICE), pubkey_from_private(BOB)


def pair(*, eip8: bool = True, answer: bool | None = None) -> tuple[RLPxConnection, RLPxConnection]:
    """Alice dials Bob; the handshake is completed by passing bytes both ways."""
    alice = RLPxConnection.initiator(ALICE, BOB_PUB, eip8=eip8)
    bob = RLPxConnection.recipient(BOB, eip8=answer)
    assert bob.receive_data(alice.data_to_send()) == [HandshakeCompleted(remote_pubkey=ALICE_PUB)]
    assert alice.receive_data(bob.data_to_send()) == [HandshakeCompleted(remote_pubkey=BOB_PUB)]
    return alice, bob


def frames_of(events: list[Event]) -> list[tuple[int, bytes]]:
    assert all(isinstance(e, FrameReceived) for e in events)
    return [(e.code, e.payload) for e in events if isinstance(e, FrameReceived)]


def feed_in_pieces(conn: RLPxConnection, data: bytes, piece: int) -> list[Event]:
    events: list[Event] = []
    for start in range(0, len(data), piece):
        events += conn.receive_data(data[start : start + piece])
    return events


@pytest.mark.parametrize("answer", [None, True, False], ids=["answer-alike", "answer-eip8", "answer-legacy"])
@pytest.mark.parametrize("eip8", [True, False], ids=["eip8", "legacy"])
def test_handshake_formats(eip8: bool, answer: bool | None) -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB, eip8=eip8)
    bob = RLPxConnection.recipient(BOB, eip8=answer)
    assert (alice.state, bob.state) == (ConnectionState.AWAITING_ACK, ConnectionState.AWAITING_AUTH)
    assert alice.remote_pubkey == BOB_PUB and bob.remote_pubkey is None
    assert not alice.handshake_complete and not bob.handshake_complete
    auth = alice.data_to_send()
    assert (len(auth) == LEGACY_AUTH_SIZE) is not eip8
    assert alice.data_to_send() == b""  # drained
    assert bob.receive_data(auth) == [HandshakeCompleted(remote_pubkey=ALICE_PUB)]
    assert bob.remote_pubkey == ALICE_PUB and bob.state is ConnectionState.ESTABLISHED
    ack = bob.data_to_send()
    answered_eip8 = eip8 if answer is None else answer
    assert (len(ack) == LEGACY_ACK_SIZE) is not answered_eip8
    assert alice.receive_data(ack) == [HandshakeCompleted(remote_pubkey=BOB_PUB)]
    assert alice.handshake_complete and alice.state is ConnectionState.ESTABLISHED


@pytest.mark.parametrize("eip8", [True, False], ids=["eip8", "legacy"])
def test_hundred_frames_each_way(eip8: bool) -> None:
    alice, bob = pair(eip8=eip8)
    rng = random.Random(1)
    to_bob = [(rng.randrange(0, 40), rng.randbytes(rng.randrange(0, 2000))) for _ in range(100)]
    to_alice = [(rng.randrange(0, 40), rng.randbytes(rng.randrange(0, 2000))) for _ in range(100)]
    for (code_ab, payload_ab), (code_ba, payload_ba) in zip(to_bob, to_alice):
        alice.send_frame(code_ab, payload_ab)
        bob.send_frame(code_ba, payload_ba)
    assert frames_of(bob.receive_data(alice.data_to_send())) == to_bob
    assert frames_of(alice.receive_data(bob.data_to_send())) == to_alice


@pytest.mark.parametrize("eip8", [True, False], ids=["eip8", "legacy"])
def test_whole_conversation_fed_byte_by_byte(eip8: bool) -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB, eip8=eip8)
    bob = RLPxConnection.recipient(BOB)
    events = feed_in_pieces(bob, alice.data_to_send(), 1)
    assert events == [HandshakeCompleted(remote_pubkey=ALICE_PUB)]
    bob.send_frame(0, b"hello from bob")  # the recipient may send its first frame right after the ack
    events = feed_in_pieces(alice, bob.data_to_send(), 1)
    assert events == [HandshakeCompleted(remote_pubkey=BOB_PUB), FrameReceived(code=0, payload=b"hello from bob")]
    sent = [(code, os.urandom(code * 11)) for code in range(30)]
    for code, payload in sent:
        alice.send_frame(code, payload)
    assert frames_of(feed_in_pieces(bob, alice.data_to_send(), 1)) == sent


def test_ack_and_first_frames_in_one_read() -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB)
    bob = RLPxConnection.recipient(BOB)
    bob.receive_data(alice.data_to_send())
    bob.send_frame(0, b"hello")
    bob.send_frame(2, b"")
    events = alice.receive_data(bob.data_to_send())
    assert events == [
        HandshakeCompleted(remote_pubkey=BOB_PUB),
        FrameReceived(code=0, payload=b"hello"),
        FrameReceived(code=2, payload=b""),
    ]


def test_large_frames() -> None:
    alice, bob = pair()
    big = os.urandom(4 * 1024 * 1024)
    alice.send_frame(0x10, big)
    bob.send_frame(0x11, big[::-1])
    assert frames_of(feed_in_pieces(bob, alice.data_to_send(), 65536)) == [(0x10, big)]
    assert frames_of(alice.receive_data(bob.data_to_send())) == [(0x11, big[::-1])]


def test_receive_cap_is_passed_to_the_codec() -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB)
    bob = RLPxConnection.recipient(BOB, max_frame_size=1000)
    bob.receive_data(alice.data_to_send())
    alice.receive_data(bob.data_to_send())
    alice.send_frame(1, bytes(1000))
    with pytest.raises(PacketTooLarge):
        bob.receive_data(alice.data_to_send())


def test_max_frame_size_can_change_between_frames_of_one_read() -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB)
    bob = RLPxConnection.recipient(BOB, max_frame_size=100)  # before the handshake: held for the codec
    bob.receive_data(alice.data_to_send())
    alice.receive_data(bob.data_to_send())
    alice.send_frame(1, bytes(10))
    alice.send_frame(2, bytes(1000))
    events = bob.iter_events(alice.data_to_send())
    assert next(events) == FrameReceived(code=1, payload=bytes(10))
    bob.max_frame_size = 2000  # the second frame's header is not read yet
    assert next(events) == FrameReceived(code=2, payload=bytes(1000))
    assert bob.max_frame_size == 2000
    bob.max_frame_size = 100
    alice.send_frame(3, bytes(1000))
    with pytest.raises(PacketTooLarge):
        bob.receive_data(alice.data_to_send()[:32])  # refused on the header alone
    with pytest.raises(LocalProtocolError):
        bob.max_frame_size = 0


def test_frames_before_the_handshake_are_our_bug() -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB)
    bob = RLPxConnection.recipient(BOB)
    with pytest.raises(LocalProtocolError):
        alice.send_frame(0, b"too early")
    with pytest.raises(LocalProtocolError):
        bob.send_frame(0, b"too early")
    bob.receive_data(alice.data_to_send())
    with pytest.raises(LocalProtocolError):
        alice.send_frame(0, b"ack not yet received")


def test_eof() -> None:
    alice, bob = pair()
    alice.send_frame(1, b"last words")
    assert frames_of(bob.receive_data(alice.data_to_send())) == [(1, b"last words")]
    assert bob.receive_data(b"") == [ConnectionClosed()]
    assert bob.state is ConnectionState.CLOSED
    with pytest.raises(LocalProtocolError):
        bob.receive_data(b"more")


def test_eof_during_handshake() -> None:
    bob = RLPxConnection.recipient(BOB)
    assert bob.receive_data(b"\x01\xb3\x04") == []
    assert bob.receive_data(b"") == [ConnectionClosed()]
    assert not bob.handshake_complete


def test_every_tampered_frame_byte_is_a_bad_mac() -> None:
    probe_alice, _probe_bob = pair()
    probe_alice.send_frame(5, b"a payload of forty-odd bytes for tampering")
    length = len(probe_alice.data_to_send())
    for index in range(length):
        alice, bob = pair()
        alice.send_frame(5, b"a payload of forty-odd bytes for tampering")
        wire = bytearray(alice.data_to_send())
        wire[index] ^= 0x10
        with pytest.raises(BadMAC):
            bob.receive_data(bytes(wire))
        assert bob.state is ConnectionState.ERROR
        with pytest.raises(LocalProtocolError):
            bob.receive_data(b"anything")
        with pytest.raises(LocalProtocolError):
            bob.send_frame(0, b"after failure")


def test_tampered_auth_is_a_handshake_error() -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB)
    auth = bytearray(alice.data_to_send())
    auth[100] ^= 1
    bob = RLPxConnection.recipient(BOB)
    with pytest.raises(HandshakeError):
        bob.receive_data(bytes(auth))
    assert bob.state is ConnectionState.ERROR


def test_official_eip8_auth_through_a_connection() -> None:
    key_a = PrivateKey(bytes.fromhex(RLPX["static_key_a"]))
    for name in ("auth2", "auth3"):
        bob = RLPxConnection.recipient(PrivateKey(bytes.fromhex(RLPX["static_key_b"])))
        events = feed_in_pieces(bob, PACKETS[name], 7)
        assert events == [HandshakeCompleted(remote_pubkey=pubkey_from_private(key_a))]


def test_eip8_auth_whose_size_prefix_starts_with_0x04() -> None:
    # EIP-8's read order: 307 bytes are tried as a legacy auth first; when that fails, the
    # 2-byte prefix (here 0x04..) gives the size of the EIP-8 message to wait for.
    ephemeral, nonce = generate_private_key(), os.urandom(32)
    static_shared = ecdh_x(ALICE, BOB_PUB)
    signature = sign_recoverable(ephemeral, bytes(a ^ b for a, b in zip(static_shared, nonce)))
    listed = rlpcodec.encode([signature, ALICE_PUB, nonce, 4, [b"future"] * 3])
    body = listed + bytes(0x480 - ecies.OVERHEAD - len(listed))  # 1152 bytes after the prefix
    prefix = (len(body) + ecies.OVERHEAD).to_bytes(2, "big")
    assert prefix[0] == 0x04
    auth = prefix + ecies.encrypt(BOB_PUB, body, prefix)
    bob = RLPxConnection.recipient(BOB)
    assert feed_in_pieces(bob, auth[:LEGACY_AUTH_SIZE], 50) == []
    assert bob.state is ConnectionState.AWAITING_AUTH
    assert feed_in_pieces(bob, auth[LEGACY_AUTH_SIZE:], 50) == [HandshakeCompleted(remote_pubkey=ALICE_PUB)]
    ack = bob.data_to_send()
    assert ack[0] != 0x04 or len(ack) != LEGACY_ACK_SIZE  # answered in EIP-8


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=800), st.integers(1, 64))
def test_garbage_into_a_recipient_only_raises_wire_errors(data: bytes, piece: int) -> None:
    bob = RLPxConnection.recipient(BOB)
    try:
        events = feed_in_pieces(bob, data, piece)
    except WireError:
        assert bob.state is ConnectionState.ERROR
        return
    assert events == []  # garbage never completes a handshake; it can only leave bob waiting
    assert bob.state is ConnectionState.AWAITING_AUTH


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=600))
def test_garbage_into_an_initiator_only_raises_wire_errors(data: bytes) -> None:
    alice = RLPxConnection.initiator(ALICE, BOB_PUB)
    try:
        events = alice.receive_data(data)
    except WireError:
        return
    assert events == []


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_garbage_after_the_handshake_only_raises_wire_errors(data: bytes) -> None:
    alice, bob = pair()
    try:
        events = bob.receive_data(data)
    except WireError:
        assert bob.state is ConnectionState.ERROR
        return
    assert events == []  # fewer than a header's worth of bytes: still waiting


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=500)), max_size=6), st.integers(1, 100))
def test_frames_round_trip(sent: list[tuple[int, bytes]], piece: int) -> None:
    alice, bob = pair()
    for code, payload in sent:
        bob.send_frame(code, payload)
    assert frames_of(feed_in_pieces(alice, bob.data_to_send(), piece)) == sent
