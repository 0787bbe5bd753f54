"""RLPx frames (rlpx.md "Framing", "MAC"): layout, round trips, incremental decoding, MAC checks, limits."""

from __future__ import annotations

import os
import random

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import new_keccak256
from ethcrawl.wire.errors import BadMAC, LocalProtocolError, MalformedMessage, PacketTooLarge, WireError
from ethcrawl.wire.rlpx.frame import HEADER_SIZE, MAC_SIZE, MAX_FRAME_SIZE, FrameCodec
from ethcrawl.wire.rlpx.handshake import Initiator, Recipient, Secrets
from ethcrawl.wire.crypto import generate_private_key, pubkey_from_private


def _secrets(aes: bytes, mac: bytes, egress_seed: bytes, ingress_seed: bytes) -> Secrets:
    egress, ingress = new_keccak256(), new_keccak256()
    egress.update(egress_seed)
    ingress.update(ingress_seed)
    return Secrets(remote_pubkey=bytes(64), aes_secret=aes, mac_secret=mac, egress_mac=egress, ingress_mac=ingress)


def codec_pair(max_frame_size: int = MAX_FRAME_SIZE) -> tuple[FrameCodec, FrameCodec, bytes]:
    """Two codecs facing each other (A's egress MAC state is B's ingress one), and the AES secret."""
    aes, mac, seed_ab, seed_ba = (os.urandom(32) for _ in range(4))
    a = FrameCodec(_secrets(aes, mac, seed_ab, seed_ba), max_frame_size=max_frame_size)
    b = FrameCodec(_secrets(aes, mac, seed_ba, seed_ab), max_frame_size=max_frame_size)
    return a, b, aes


def handshake_codecs() -> tuple[FrameCodec, FrameCodec]:
    key_a, key_b = generate_private_key(), generate_private_key()
    initiator = Initiator(key_a, pubkey_from_private(key_b))
    recipient = Recipient(key_b)
    secrets_a = initiator.receive_ack(recipient.receive_auth(initiator.auth_message()))
    assert recipient.secrets is not None
    return FrameCodec(secrets_a), FrameCodec(recipient.secrets)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000])
def test_frame_layout(size: int) -> None:
    a, _b, aes = codec_pair()
    frame = a.encode_frame(0x10, b"\xaa" * size)
    frame_data_size = 1 + size  # msg-id 0x10 is one RLP byte
    padded = -(-frame_data_size // 16) * 16
    assert len(frame) == HEADER_SIZE + MAC_SIZE + padded + MAC_SIZE
    # Decrypting with an independent AES-256-CTR (zero IV) shows the plaintext the spec prescribes.
    stream = AES.new(aes, AES.MODE_CTR, nonce=b"", initial_value=bytes(16))
    header = stream.decrypt(frame[:HEADER_SIZE])
    assert header == frame_data_size.to_bytes(3, "big") + b"\xc2\x80\x80" + bytes(10)
    body = stream.decrypt(frame[HEADER_SIZE + MAC_SIZE : -MAC_SIZE])
    assert body == b"\x10" + b"\xaa" * size + bytes(padded - frame_data_size)


def test_cipher_stream_continues_across_frames() -> None:
    a, b, _aes = codec_pair()
    first, second = a.encode_frame(1, b"same"), a.encode_frame(1, b"same")
    assert first != second
    assert b.feed(first + second) == [(1, b"same"), (1, b"same")]


def test_handshake_secrets_drive_codecs_both_ways() -> None:
    a, b = handshake_codecs()
    assert b.feed(a.encode_frame(0, b"hello from a")) == [(0, b"hello from a")]
    assert a.feed(b.encode_frame(0, b"hello from b")) == [(0, b"hello from b")]


codes = st.integers(min_value=0, max_value=2**64 - 1)
frames = st.lists(st.tuples(codes, st.binary(max_size=300)), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(sent=frames, seed=st.integers(0, 2**32))
def test_round_trip_in_random_chunks(sent: list[tuple[int, bytes]], seed: int) -> None:
    a, b, _aes = codec_pair()
    wire = b"".join(a.encode_frame(code, payload) for code, payload in sent)
    rng = random.Random(seed)
    received: list[tuple[int, bytes]] = []
    position = 0
    while position < len(wire):
        step = rng.randint(1, 70)
        received += b.feed(wire[position : position + step])
        position += step
    assert received == sent


def test_byte_by_byte_feeding() -> None:
    a, b, _aes = codec_pair()
    sent = [(code, os.urandom(code * 7)) for code in range(20)]
    wire = b"".join(a.encode_frame(code, payload) for code, payload in sent)
    received = []
    for index in range(len(wire)):
        got = b.feed(wire[index : index + 1])
        if got:
            # A frame completes exactly on its last byte, not earlier.
            assert len(got) == 1
        received += got
    assert received == sent


def test_largest_frame_round_trips() -> None:
    a, b, _aes = codec_pair()
    payload = os.urandom(2**24 - 1 - 1)  # frame data = 1-byte id + payload = the 24-bit maximum
    assert b.feed(a.encode_frame(3, payload)) == [(3, payload)]


def test_too_large_to_send_is_our_bug() -> None:
    a, _b, _aes = codec_pair()
    with pytest.raises(LocalProtocolError):
        a.encode_frame(3, bytes(2**24 - 1))  # one byte over once the id is added
    small, _b, _aes = codec_pair(max_frame_size=100)
    with pytest.raises(LocalProtocolError):
        small.encode_frame(3, bytes(100))


@pytest.mark.parametrize("code", [-1, 2**64])
def test_bad_codes_are_our_bug(code: int) -> None:
    a, _b, _aes = codec_pair()
    with pytest.raises(LocalProtocolError):
        a.encode_frame(code, b"")


def test_frame_above_the_receive_cap_is_refused_after_its_header() -> None:
    aes, mac, seed_ab, seed_ba = (os.urandom(32) for _ in range(4))
    sender = FrameCodec(_secrets(aes, mac, seed_ab, seed_ba))
    receiver = FrameCodec(_secrets(aes, mac, seed_ba, seed_ab), max_frame_size=1024)
    frame = sender.encode_frame(1, bytes(1024))
    with pytest.raises(PacketTooLarge):
        receiver.feed(frame[: HEADER_SIZE + MAC_SIZE])  # refused before the body is buffered


def test_every_tampered_byte_is_a_bad_mac() -> None:
    probe, _b, _aes = codec_pair()
    length = len(probe.encode_frame(7, b"payload of some length, 40 bytes long.."))
    for index in range(length):
        a, b, _aes = codec_pair()
        b.feed(a.encode_frame(1, b"earlier frame"))
        frame = bytearray(a.encode_frame(7, b"payload of some length, 40 bytes long.."))
        frame[index] ^= 0x04
        with pytest.raises(BadMAC):
            b.feed(bytes(frame))


def test_frames_out_of_order_fail() -> None:
    a, b, _aes = codec_pair()
    first, second = a.encode_frame(1, b"one"), a.encode_frame(2, b"two")
    with pytest.raises(BadMAC):
        b.feed(second + first)


def test_own_frames_do_not_decode_as_the_peers() -> None:
    # Each direction has its own MAC state, so a reflected frame is refused.
    a, _b, _aes = codec_pair()
    with pytest.raises(BadMAC):
        a.feed(a.encode_frame(1, b"echo"))


@pytest.mark.parametrize(
    ("frame_data", "match"),
    [
        (b"", "message id"),
        (b"\xc0", "list"),
        (b"\xf9\x01\x00" + bytes(256), "list"),
        (b"\x81\x05payload", "message id"),  # non-canonical single byte
        (b"\x82\x00\x10", "message id"),  # leading zero
        (b"\x89" + b"\x01" * 9, "message id"),  # wider than uint64
        (b"\x85\x01", "message id"),  # string longer than the frame
    ],
)
def test_bad_message_ids(frame_data: bytes, match: str) -> None:
    a, b, _aes = codec_pair()
    with pytest.raises(MalformedMessage, match=match):
        b.feed(a.encode_raw(frame_data))


@pytest.mark.parametrize(("frame_data", "expected"), [(b"\x80", (0, b"")), (b"\x88" + b"\xff" * 8 + b"x", (2**64 - 1, b"x"))])
def test_edge_message_ids(frame_data: bytes, expected: tuple[int, bytes]) -> None:
    a, b, _aes = codec_pair()
    assert b.feed(a.encode_raw(frame_data)) == [expected]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=HEADER_SIZE + MAC_SIZE, max_size=400))
def test_random_bytes_are_a_bad_mac(data: bytes) -> None:
    _a, b, _aes = codec_pair()
    with pytest.raises(BadMAC):
        b.feed(data)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_frames_only_raise_wire_errors(data: st.DataObject) -> None:
    a, b, _aes = codec_pair()
    wire = bytearray(a.encode_frame(data.draw(codes), data.draw(st.binary(max_size=100))))
    mutation = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if mutation == "flip":
        wire[data.draw(st.integers(0, len(wire) - 1))] ^= data.draw(st.integers(1, 255))
        with pytest.raises(BadMAC):
            b.feed(bytes(wire))
    elif mutation == "truncate":
        assert b.feed(bytes(wire[: data.draw(st.integers(0, len(wire) - 1))])) == []  # waits for more
    else:
        extra = data.draw(st.binary(min_size=1, max_size=64))
        try:
            frames = b.feed(bytes(wire) + extra)
        except WireError:
            return  # the extension formed a bad next header
        assert len(frames) == 1
