"""discovery v5.1 packets: round trips of the three kinds, every header check, and fuzzing.

The decoder is fed random bytes, and byte flips, truncations and extensions of
valid packets; only WireError subclasses may come out.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.discv5 import crypto
from ethcrawl.wire.discv5.packet import (
    MAX_PACKET_SIZE,
    MESSAGE_PACKET_OVERHEAD,
    MIN_PACKET_SIZE,
    STATIC_HEADER_SIZE,
    Authdata,
    HandshakeAuthdata,
    Header,
    MessageAuthdata,
    Packet,
    WhoareyouAuthdata,
    decode_packet,
    encode_packet,
)
from ethcrawl.wire.errors import (
    LocalProtocolError,
    MalformedMessage,
    PacketTooLarge,
    PacketTooSmall,
    UnknownPacketType,
    WireError,
)

DEST = bytes.fromhex("bbbb9d047f0488c0b5a93c1c3f2d8bafc7c8ff337024a55434a0d0555de64db9")
SRC = bytes.fromhex("aaaa8419e9f49d0083561b48287df592939a8d19947d8c0ef88f2a4856a69fbb")

ids = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=12, max_size=12)
ivs = st.binary(min_size=16, max_size=16)
authdatas: st.SearchStrategy[Authdata] = st.one_of(
    st.builds(MessageAuthdata, src_id=ids),
    st.builds(WhoareyouAuthdata, id_nonce=st.binary(min_size=16, max_size=16), enr_seq=st.integers(0, 2**64 - 1)),
    st.builds(
        HandshakeAuthdata,
        src_id=ids,
        id_signature=st.binary(max_size=80),
        eph_pubkey=st.binary(max_size=40),
        record=st.binary(max_size=300),
    ),
)


def _packet(authdata: Authdata, message: bytes = b"", iv: bytes = bytes(16)) -> Packet:
    return Packet(masking_iv=iv, header=Header(nonce=bytes(range(12)), authdata=authdata), message=message)


@settings(max_examples=200, deadline=None)
@given(authdatas, nonces, ivs, st.binary(max_size=400), ids)
def test_round_trip_every_kind(authdata: Authdata, nonce: bytes, iv: bytes, message: bytes, dest: bytes) -> None:
    packet = Packet(masking_iv=iv, header=Header(nonce=nonce, authdata=authdata), message=message)
    data = encode_packet(packet, dest)
    if len(data) < MIN_PACKET_SIZE:
        with pytest.raises(PacketTooSmall):
            decode_packet(data, dest)
        return
    decoded = decode_packet(data, dest)
    assert decoded == packet
    assert decoded.header.flag == authdata.flag
    assert decoded.message_ad == iv + packet.header.encode()
    # The header is masked: the protocol id is not visible on the wire (an all-zero keystream is 2**-48 odds).
    assert data[16:22] != b"discv5"


def test_message_packet_overhead_is_what_a_sealed_message_adds() -> None:
    plaintext = b"\x01\xc2\x01\x01"
    unsealed = _packet(MessageAuthdata(src_id=SRC))
    sealed = crypto.encrypt_message(bytes(16), unsealed.header.nonce, plaintext, unsealed.message_ad)
    data = encode_packet(_packet(MessageAuthdata(src_id=SRC), sealed), DEST)
    assert len(data) == MESSAGE_PACKET_OVERHEAD + len(plaintext)


def test_size_limits() -> None:
    whoareyou = encode_packet(_packet(WhoareyouAuthdata(id_nonce=bytes(16), enr_seq=0)), DEST)
    assert len(whoareyou) == MIN_PACKET_SIZE == 63
    with pytest.raises(PacketTooSmall):
        decode_packet(whoareyou[:-1], DEST)
    big = _packet(MessageAuthdata(src_id=SRC), bytes(MAX_PACKET_SIZE - MESSAGE_PACKET_OVERHEAD + 16))
    assert len(encode_packet(big, DEST)) == MAX_PACKET_SIZE
    decode_packet(encode_packet(big, DEST), DEST)
    with pytest.raises(LocalProtocolError):
        encode_packet(_packet(MessageAuthdata(src_id=SRC), bytes(MAX_PACKET_SIZE)), DEST)
    with pytest.raises(PacketTooLarge):
        decode_packet(encode_packet(big, DEST) + b"\x00", DEST)


def _reframe(header_plain: bytes, rest: bytes = b"") -> bytes:
    iv = bytes(16)
    return iv + crypto.mask(DEST, iv, header_plain) + rest


def test_wrong_destination_is_not_discv5() -> None:
    data = encode_packet(_packet(MessageAuthdata(src_id=SRC), bytes(16)), DEST)
    with pytest.raises(MalformedMessage, match="protocol id"):
        decode_packet(data, SRC)


def test_header_checks() -> None:
    good = _packet(MessageAuthdata(src_id=SRC)).header.encode()
    with pytest.raises(MalformedMessage, match="version"):
        decode_packet(_reframe(good[:6] + b"\x00\x02" + good[8:], bytes(16)), DEST)
    with pytest.raises(UnknownPacketType):
        decode_packet(_reframe(good[:8] + b"\x03" + good[9:], bytes(16)), DEST)
    # authdata-size claims more than the packet holds
    with pytest.raises(PacketTooSmall):
        decode_packet(_reframe(good[: STATIC_HEADER_SIZE - 2] + b"\x04\x00" + good[STATIC_HEADER_SIZE:], bytes(16)), DEST)
    # an ordinary message whose authdata is not 32 bytes
    short = good[: STATIC_HEADER_SIZE - 2] + b"\x00\x1f" + good[STATIC_HEADER_SIZE:]
    with pytest.raises(MalformedMessage, match="32 bytes"):
        decode_packet(_reframe(short, bytes(16)), DEST)
    whoareyou = _packet(WhoareyouAuthdata(id_nonce=bytes(16), enr_seq=7)).header.encode()
    long = whoareyou[: STATIC_HEADER_SIZE - 2] + b"\x00\x19" + whoareyou[STATIC_HEADER_SIZE:] + b"\x00"
    with pytest.raises(MalformedMessage, match="WHOAREYOU"):
        decode_packet(_reframe(long), DEST)


def test_handshake_authdata_sizes_must_fit() -> None:
    authdata = HandshakeAuthdata(src_id=SRC, id_signature=bytes(64), eph_pubkey=bytes(33), record=b"")
    assert HandshakeAuthdata.decode(authdata.encode()) == authdata
    raw = authdata.encode()
    with pytest.raises(MalformedMessage):
        HandshakeAuthdata.decode(raw[:33])
    with pytest.raises(MalformedMessage, match="cannot hold"):
        HandshakeAuthdata.decode(raw[:-1])
    with pytest.raises(MalformedMessage, match="cannot hold"):
        HandshakeAuthdata.decode(raw[:32] + b"\xff\xff" + raw[34:])


def test_fields_are_validated_when_built() -> None:
    with pytest.raises(LocalProtocolError):
        MessageAuthdata(src_id=bytes(31))
    with pytest.raises(LocalProtocolError):
        WhoareyouAuthdata(id_nonce=bytes(16), enr_seq=2**64)
    with pytest.raises(LocalProtocolError):
        HandshakeAuthdata(src_id=SRC, id_signature=bytes(256), eph_pubkey=b"")
    with pytest.raises(LocalProtocolError):
        Header(nonce=bytes(11), authdata=MessageAuthdata(src_id=SRC))
    with pytest.raises(LocalProtocolError):
        Packet(masking_iv=bytes(15), header=Header(nonce=bytes(12), authdata=MessageAuthdata(src_id=SRC)))


VALID = [
    encode_packet(_packet(MessageAuthdata(src_id=SRC), bytes(range(40))), DEST),
    encode_packet(_packet(WhoareyouAuthdata(id_nonce=bytes(16), enr_seq=3)), DEST),
    encode_packet(_packet(HandshakeAuthdata(src_id=SRC, id_signature=bytes(64), eph_pubkey=bytes(33), record=bytes(100)), bytes(30)), DEST),
]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1400))
def test_random_bytes_raise_only_wire_errors(data: bytes) -> None:
    try:
        decode_packet(data, DEST)
    except WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_mutations_raise_only_wire_errors(data: bytes, draw: st.DataObject) -> None:
    mutated = bytearray(data)
    kind = draw.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip":
        for _ in range(draw.draw(st.integers(1, 4))):
            mutated[draw.draw(st.integers(0, len(mutated) - 1))] ^= draw.draw(st.integers(1, 255))
    elif kind == "truncate":
        del mutated[draw.draw(st.integers(0, len(mutated) - 1)) :]
    else:
        mutated += draw.draw(st.binary(min_size=1, max_size=100))
    try:
        decode_packet(bytes(mutated), DEST)
    except WireError:
        pass
