"""discovery v5.1 messages: round trips of all six, EIP-8-style extras, field checks,
NODES splitting within 1280-byte packets, and fuzzing of the decoder."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.discv5.messages import (
    MAX_NODES_MESSAGE_SIZE,
    MESSAGE_TYPES,
    FindNode,
    Message,
    Nodes,
    Ping,
    Pong,
    TalkReq,
    TalkResp,
    decode_message,
    encode_message,
    split_nodes,
)
from ethcrawl.wire.discv5.packet import MAX_PACKET_SIZE, MESSAGE_PACKET_OVERHEAD
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import LocalProtocolError, MalformedMessage, MalformedRLP, UnknownPacketType, WireError
from ethcrawl.wire.rlpcodec import encode as rlp_encode

KEY = PrivateKey(bytes(31) + b"\x07")
SMALL_ENR = ENR.create(KEY, seq=1, pairs={"ip": "127.0.0.1", "udp": 30303})
# The biggest record ENR.create allows: padded with an opaque value up to 300 bytes.
BIG_ENR = ENR.create(KEY, seq=2**64 - 1, pairs={"ip": "127.0.0.1", "zz": bytes(159)})

request_ids = st.binary(max_size=8)
uint64 = st.integers(0, 2**64 - 1)
ips = st.one_of(
    st.ip_addresses(v=4).map(lambda a: ipaddress.IPv4Address(int(a))),
    st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Address(int(a))),
)
rest = st.lists(st.one_of(st.binary(max_size=10), st.lists(st.binary(max_size=4), max_size=3)), max_size=3).map(
    lambda items: tuple(rlp_encode(i) for i in items)
)
records = st.lists(st.sampled_from([SMALL_ENR.raw, BIG_ENR.raw, rlp_encode([b"", b"x"])]), max_size=5).map(tuple)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Ping, request_id=request_ids, enr_seq=uint64, rest=rest),
    st.builds(Pong, request_id=request_ids, enr_seq=uint64, recipient_ip=ips, recipient_port=st.integers(0, 65535), rest=rest),
    st.builds(FindNode, request_id=request_ids, distances=st.lists(st.integers(0, 65535), max_size=20).map(tuple), rest=rest),
    st.builds(Nodes, request_id=request_ids, total=uint64, records=records, rest=rest),
    st.builds(TalkReq, request_id=request_ids, protocol=st.binary(max_size=20), request=st.binary(max_size=200), rest=rest),
    st.builds(TalkResp, request_id=request_ids, response=st.binary(max_size=200), rest=rest),
)


def test_big_enr_is_at_the_limit() -> None:
    assert len(BIG_ENR.raw) == 300


@settings(max_examples=300, deadline=None)
@given(messages)
def test_round_trip(message: Message) -> None:
    data = encode_message(message)
    assert data[0] == message.message_type
    assert MESSAGE_TYPES[data[0]] is type(message)
    assert decode_message(data) == message


@pytest.mark.parametrize(
    ("message", "encoded"),
    [
        # The spec vector's PING, and the rest written out by hand from the wire spec.
        (Ping(request_id=b"\x00\x00\x00\x01", enr_seq=2), "01c6840000000102"),
        (Pong(request_id=b"\x01", enr_seq=0, recipient_ip=ipaddress.IPv4Address("127.0.0.1"), recipient_port=30303),
         "02ca0180847f00000182765f"),
        (FindNode(request_id=b"\x01", distances=(256, 255)), "03c701c582010081ff"),
        (Nodes(request_id=b"\x01", total=1, records=()), "04c30101c0"),
        (TalkReq(request_id=b"\x01", protocol=b"p", request=b""), "05c3017080"),
        (TalkResp(request_id=b"", response=b"ok"), "06c480826f6b"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else "",
)
def test_known_encodings(message: Message, encoded: str) -> None:
    assert encode_message(message).hex() == encoded
    assert decode_message(bytes.fromhex(encoded)) == message


def test_request_id_keeps_leading_zero_bytes() -> None:
    ping = decode_message(encode_message(Ping(request_id=b"\x00\x00\x07", enr_seq=1)))
    assert isinstance(ping, Ping) and ping.request_id == b"\x00\x00\x07"


def test_extra_list_elements_are_kept() -> None:
    data = b"\x01" + rlp_encode([b"\x01", b"\x05", b"future", [b"x"]])
    ping = decode_message(data)
    assert ping == Ping(request_id=b"\x01", enr_seq=5, rest=(rlp_encode(b"future"), rlp_encode([b"x"])))
    assert encode_message(ping) == data


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedMessage),
        (b"\x07\xc0", UnknownPacketType),  # REGTOPIC: not spoken here
        (b"\x00\xc0", UnknownPacketType),
        (b"\x01", MalformedRLP),
        (b"\x01\xc1\x01", MalformedMessage),  # too few fields
        (b"\x01\x01", MalformedMessage),  # not a list
        (b"\x01\xc2\x01\x01\x00", MalformedRLP),  # trailing bytes after the list
        (b"\x01" + rlp_encode([bytes(9), b"\x01"]), MalformedMessage),  # request id over 8 bytes
        (b"\x01" + rlp_encode([b"\x01", b"\x00\x01"]), MalformedMessage),  # non-canonical seq
        (b"\x01" + rlp_encode([b"\x01", bytes(9)]), MalformedMessage),  # seq over 64 bits
        (b"\x02" + rlp_encode([b"\x01", b"\x01", b"\x7f\x00\x00", b"\x01"]), MalformedMessage),  # 3-byte ip
        (b"\x02" + rlp_encode([b"\x01", b"\x01", b"\x7f\x00\x00\x01", b"\x01\x00\x00"]), MalformedMessage),  # port
        (b"\x03" + rlp_encode([b"\x01", b"\x01"]), MalformedMessage),  # distances not a list
        (b"\x03" + rlp_encode([b"\x01", [b"\x01\x00\x00"]]), MalformedMessage),  # distance over 16 bits
        (b"\x04" + rlp_encode([b"\x01", b"\x01", [b"notalist"]]), MalformedMessage),
        (b"\x05" + rlp_encode([b"\x01", [b"p"], b""]), MalformedMessage),
        (b"\x06" + rlp_encode([[], b""]), MalformedMessage),
    ],
)
def test_bad_messages(data: bytes, error: type[WireError]) -> None:
    with pytest.raises(error):
        decode_message(data)


def test_fields_are_validated_when_built() -> None:
    with pytest.raises(LocalProtocolError):
        Ping(request_id=bytes(9), enr_seq=0)
    with pytest.raises(LocalProtocolError):
        Ping(request_id=b"", enr_seq=-1)
    with pytest.raises(LocalProtocolError):
        Pong(request_id=b"", enr_seq=0, recipient_ip=ipaddress.IPv4Address("1.2.3.4"), recipient_port=65536)
    with pytest.raises(LocalProtocolError):
        FindNode(request_id=b"", distances=(65536,))
    with pytest.raises(LocalProtocolError):
        Nodes(request_id=b"", total=1, records=(b"\x80",))  # a byte string, not a record list
    with pytest.raises(LocalProtocolError):
        Nodes(request_id=b"", total=1, records=(b"\xc1",))  # not one whole RLP item
    with pytest.raises(LocalProtocolError):
        TalkResp(request_id=b"", response=b"", rest=(b"\xc1",))


def test_nodes_enrs_separates_good_and_bad_records() -> None:
    forged = bytearray(SMALL_ENR.raw)
    forged[5] ^= 1  # inside the signature
    nodes = Nodes(request_id=b"\x01", total=1, records=(SMALL_ENR.raw, bytes(forged), BIG_ENR.raw))
    good, bad = nodes.enrs()
    assert good == [SMALL_ENR, BIG_ENR]
    assert len(bad) == 1
    assert good[0].raw == SMALL_ENR.raw  # byte-identical


@pytest.mark.parametrize("count", [0, 1, 3, 4, 16, 40])
@pytest.mark.parametrize("record", [SMALL_ENR, BIG_ENR], ids=["small", "300-byte"])
@pytest.mark.parametrize("request_id", [b"", b"\xff" * 8], ids=["empty-id", "8-byte-id"])
def test_split_nodes_fits_packets_and_keeps_every_record(count: int, record: ENR, request_id: bytes) -> None:
    replies = split_nodes(request_id, [record.raw] * count)
    assert [r for reply in replies for r in reply.records] == [record.raw] * count
    assert all(reply.total == len(replies) and reply.request_id == request_id for reply in replies)
    for reply in replies:
        assert MESSAGE_PACKET_OVERHEAD + len(encode_message(reply)) <= MAX_PACKET_SIZE
    if record is BIG_ENR:
        # Three 300-byte records fit one packet, four do not: so replies are as few as that allows.
        assert len(replies) == max(1, -(-count // 3))
    # Greedy packing: no reply could have taken the next one's first record.
    for this, following in zip(replies, replies[1:]):
        merged = Nodes(request_id=request_id, total=len(replies), records=this.records + following.records[:1])
        assert len(encode_message(merged)) > MAX_NODES_MESSAGE_SIZE


def test_split_nodes_rejects_oversized_records() -> None:
    with pytest.raises(LocalProtocolError):
        split_nodes(b"", [rlp_encode([bytes(400)])])
    with pytest.raises(LocalProtocolError):
        split_nodes(b"", [BIG_ENR.raw], max_size=200)


VALID = [encode_message(m) for m in (
    Ping(request_id=b"\x01\x02", enr_seq=9),
    Pong(request_id=b"\x01", enr_seq=1, recipient_ip=ipaddress.IPv6Address("::1"), recipient_port=9000),
    FindNode(request_id=b"\x01", distances=(256, 255, 254)),
    Nodes(request_id=b"\x01", total=2, records=(SMALL_ENR.raw, BIG_ENR.raw)),
    TalkReq(request_id=b"\x01", protocol=b"portal", request=b"\x00" * 10),
    TalkResp(request_id=b"\x01", response=b"\x01" * 10),
)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_wire_errors(data: bytes) -> None:
    try:
        decode_message(data)
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
        mutated += draw.draw(st.binary(min_size=1, max_size=50))
    try:
        message = decode_message(bytes(mutated))
    except WireError:
        return
    assert decode_message(encode_message(message)) == message
