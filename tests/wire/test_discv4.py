"""discovery v4 packets: the EIP-8 vectors, round trips, every failure check,
size limits (strict and lenient), NEIGHBORS splitting, expiry and fuzzing."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import PrivateKey, keccak256, pubkey_from_private, sign_recoverable
from ethcrawl.wire.discv4 import (
    EXPIRATION,
    HEAD_SIZE,
    MAX_NEIGHBORS,
    MAX_PACKET_SIZE,
    PACKET_TYPES,
    Endpoint,
    ENRRequest,
    ENRResponse,
    FindNode,
    Neighbors,
    NodeRecord,
    Packet,
    Ping,
    Pong,
)
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import (
    BadHash,
    BadSignature,
    Expired,
    LocalProtocolError,
    MalformedMessage,
    MalformedRLP,
    PacketTooLarge,
    PacketTooSmall,
    UnknownPacketType,
    WireError,
)
from ethcrawl.wire.rlpcodec import encode as rlp_encode

from ground_truth import load_fixture_json_at_collection

_DISCV4 = load_fixture_json_at_collection("vectors", "eip8.json")["discv4"]
SIGNER = PrivateKey(bytes.fromhex(_DISCV4["signer_private_key"]))
SIGNER_PUBKEY = pubkey_from_private(SIGNER)
VECTORS = [pytest.param(p, id=p["name"]) for p in _DISCV4["packets"]]
VECTOR_TYPES = {1: Ping, 2: Pong, 3: FindNode, 4: Neighbors}

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
UINT64_MAX = (1 << 64) - 1
LENIENT_SIZE = 2048  # bytes, what a crawler may accept to hear stock ethereumjs
EXP = 1136239445  # the vectors' expiration


def sign_raw(key: PrivateKey, body: bytes) -> bytes:
    """hash || sig || body, built here independently of discv4.encode.

    ``body`` is ``type || anything``: lets tests hash and sign packets that
    encode() would refuse (oversized, malformed, unknown type).
    """
    signature = sign_recoverable(key, keccak256(body))
    return keccak256(signature + body) + signature + body


def ep(ip: str | None, udp: int, tcp: int) -> Endpoint:
    return Endpoint(ip=None if ip is None else ipaddress.ip_address(ip), udp=udp, tcp=tcp)


def ping(**overrides: Any) -> Ping:
    fields: dict[str, Any] = dict(
        version=4, from_=ep("127.0.0.1", 30303, 30303), to=ep("10.0.0.2", 30301, 0), expiration=EXP, enr_seq=3
    )
    fields.update(overrides)
    return Ping(**fields)


@functools.cache
def node_key(i: int) -> bytes:
    """A real public key, one per ``i``: decoding drops NEIGHBORS entries whose key is no curve point."""
    return pubkey_from_private(PrivateKey(keccak256(i.to_bytes(4, "big"))))


def ipv6_node(i: int) -> NodeRecord:
    # Worst case for size: 16-byte ip, 3-byte ports.
    return NodeRecord(
        ip=ipaddress.IPv6Address(0x2001_0DB8 << 96 | i), udp=65535, tcp=65000 + i % 500, pubkey=node_key(i % 256)
    )


def ipv4_node(i: int) -> NodeRecord:
    return NodeRecord(ip=ipaddress.IPv4Address(0x0A000000 + i), udp=30303, tcp=30303, pubkey=node_key(i))


# ---------------------------------------------------------------- EIP-8 vectors


def test_vector_list_is_complete() -> None:
    assert [p["name"] for p in _DISCV4["packets"]] == [
        "ping_v4_extra",
        "ping_v555_extra_trailing",
        "pong_extra_trailing",
        "findnode_extra_trailing",
        "neighbours_extra_trailing",
    ]


def _check_endpoint(got: Endpoint, want: list[Any]) -> None:
    assert (got.ip, got.udp, got.tcp) == (ipaddress.ip_address(want[0]), want[1], want[2])


@pytest.mark.parametrize("vector", VECTORS)
def test_eip8_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expect = vector["expect"]
    decoded = discv4.decode(data)
    packet = decoded.packet

    assert decoded.sender_pubkey == SIGNER_PUBKEY
    assert decoded.sender_id == keccak256(SIGNER_PUBKEY)
    assert decoded.hash == data[:32]
    assert type(packet) is VECTOR_TYPES[expect["type"]]
    assert type(packet).packet_type == expect["type"] == data[HEAD_SIZE]
    assert packet.expiration == expect["expiration"]
    if isinstance(packet, (Ping, Pong)):
        # A vector without "enr_seq" has a non-integer (an EIP-8 filler list) in that slot.
        assert packet.enr_seq == expect.get("enr_seq")
        _check_endpoint(packet.to, expect["to"])
    if isinstance(packet, Ping):
        assert packet.version == expect["version"]
        _check_endpoint(packet.from_, expect["from"])
    if isinstance(packet, Pong):
        assert packet.ping_hash == bytes.fromhex(expect["ping_hash"])
    if isinstance(packet, FindNode):
        assert packet.target == bytes.fromhex(expect["target"])
    if isinstance(packet, Neighbors):
        assert [(n.ip, n.udp, n.tcp, n.pubkey) for n in packet.nodes] == [
            (ipaddress.ip_address(n["ip"]), n["udp"], n["tcp"], bytes.fromhex(n["id"])) for n in expect["nodes"]
        ]
    # Every vector carries extra list elements: kept, not dropped.
    assert packet.rest
    # Re-encoding reproduces the received list byte for byte (extras included);
    # only the trailing bytes after it, and so hash and signature, differ.
    again = discv4.encode(packet, SIGNER)
    assert data[HEAD_SIZE:].startswith(again[HEAD_SIZE:])
    assert discv4.decode(again).packet == packet


def test_vector_extras_are_kept_as_raw_rlp() -> None:
    by_name = {p["name"]: discv4.decode(bytes.fromhex(p["hex"])).packet for p in _DISCV4["packets"]}
    assert by_name["ping_v4_extra"].rest == (b"\x02",)
    assert by_name["ping_v555_extra_trailing"].rest == (bytes.fromhex("c50102030405"),)
    assert by_name["pong_extra_trailing"].rest == (bytes.fromhex("c6010203c20405"), b"\x06")
    assert by_name["findnode_extra_trailing"].rest == (bytes.fromhex("829999"), bytes.fromhex("83999999"))
    assert by_name["neighbours_extra_trailing"].rest == (b"\x01", b"\x02", b"\x03")


# ---------------------------------------------------------------- round trips

private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: PrivateKey(k.to_bytes(32, "big")))
ips = st.none() | st.ip_addresses()
ports = st.integers(0, 65535)
uint64 = st.integers(0, UINT64_MAX)
endpoints = st.builds(Endpoint, ip=ips, udp=ports, tcp=ports)
rlp_items = st.recursive(st.binary(max_size=10), lambda inner: st.lists(inner, max_size=3), max_leaves=6)
rests = st.lists(rlp_items.map(rlp_encode), max_size=3).map(tuple)
node_records = st.builds(NodeRecord, ip=ips, udp=ports, tcp=ports, pubkey=private_keys.map(pubkey_from_private))


@st.composite
def enr_slot(draw: st.DrawFn) -> tuple[int | None, tuple[bytes, ...]]:
    enr_seq = draw(st.none() | uint64)
    rest = draw(rests)
    if enr_seq is None and rest:
        # A leading byte-string extra would read back as the enr_seq; lead with a list.
        rest = (rlp_encode(draw(st.lists(rlp_items, max_size=2))),) + rest
    return enr_seq, rest


@st.composite
def pings(draw: st.DrawFn) -> Ping:
    enr_seq, rest = draw(enr_slot())
    return Ping(
        version=draw(uint64), from_=draw(endpoints), to=draw(endpoints), expiration=draw(uint64), enr_seq=enr_seq, rest=rest
    )


@st.composite
def pongs(draw: st.DrawFn) -> Pong:
    enr_seq, rest = draw(enr_slot())
    return Pong(
        to=draw(endpoints),
        ping_hash=draw(st.binary(min_size=32, max_size=32)),
        expiration=draw(uint64),
        enr_seq=enr_seq,
        rest=rest,
    )


def _make_enr(key_int: int, seq: int) -> bytes:
    key = PrivateKey(key_int.to_bytes(32, "big"))
    return ENR.create(key, seq=seq, pairs={"ip": "10.1.2.3", "udp": 30303}).to_rlp()


packets = st.one_of(
    pings(),
    pongs(),
    st.builds(FindNode, target=st.binary(min_size=64, max_size=64), expiration=uint64, rest=rests),
    st.builds(
        Neighbors, nodes=st.lists(node_records, max_size=MAX_NEIGHBORS).map(tuple), expiration=uint64, rest=rests
    ),
    st.builds(ENRRequest, expiration=uint64, rest=rests),
    st.builds(
        ENRResponse,
        request_hash=st.binary(min_size=32, max_size=32),
        record=st.builds(_make_enr, st.integers(1, 2**64), uint64),
        rest=rests,
    ),
)


@settings(max_examples=300, deadline=None)
@given(packet=packets, key=private_keys)
def test_round_trip(packet: Packet, key: PrivateKey) -> None:
    data = discv4.encode(packet, key)
    assert len(data) <= MAX_PACKET_SIZE
    decoded = discv4.decode(data)
    assert decoded.packet == packet
    assert decoded.sender_pubkey == pubkey_from_private(key)
    assert decoded.sender_id == keccak256(pubkey_from_private(key))
    assert decoded.hash == data[:32] == keccak256(data[32:])


@pytest.mark.parametrize("cls", [Ping, Pong, FindNode, Neighbors, ENRRequest, ENRResponse])
def test_registry(cls: type[Packet]) -> None:
    assert PACKET_TYPES[cls.packet_type] is cls
    assert cls.name.endswith("/v4")


def test_registry_types_and_names_are_distinct() -> None:
    assert sorted(PACKET_TYPES) == [1, 2, 3, 4, 5, 6]
    assert len({cls.name for cls in PACKET_TYPES.values()}) == 6


def test_enr_response_record_decodes_and_verifies() -> None:
    record = ENR.create(SIGNER, seq=7, pairs={"ip": "10.1.2.3", "udp": 30303})
    response = ENRResponse(request_hash=b"\x11" * 32, record=record.to_rlp())
    decoded = discv4.decode(discv4.encode(response, SIGNER))
    assert isinstance(decoded.packet, ENRResponse)
    assert decoded.packet.enr() == record
    assert decoded.packet.enr().seq == 7


def test_enr_response_bad_record_raises_wire_error_from_enr() -> None:
    record = bytearray(ENR.create(SIGNER, seq=7, pairs={"udp": 30303}).to_rlp())
    record[5] ^= 0xFF  # inside the signature: still RLP, no longer verifies
    response = ENRResponse(request_hash=b"\x11" * 32, record=bytes(record))
    with pytest.raises(WireError):
        response.enr()


def test_findnode_target_need_not_be_a_curve_point() -> None:
    packet = FindNode(target=b"\xff" * 64, expiration=EXP)
    assert discv4.decode(discv4.encode(packet, SIGNER)).packet == packet


def test_ping_version_is_not_checked() -> None:
    packet = ping(version=555)
    decoded = discv4.decode(discv4.encode(packet, SIGNER)).packet
    assert isinstance(decoded, Ping) and decoded.version == 555


# ---------------------------------------------------------------- building

@pytest.mark.parametrize(
    "build",
    [
        lambda: Endpoint(ip=None, udp=65536, tcp=0),
        lambda: Endpoint(ip=None, udp=0, tcp=-1),
        lambda: NodeRecord(ip=None, udp=0, tcp=0, pubkey=b"\x01" * 63),
        lambda: ping(expiration=UINT64_MAX + 1),
        lambda: ping(enr_seq=-1),
        lambda: ping(enr_seq=None, rest=(b"\x01",)),  # would decode back as enr_seq=1
        lambda: ping(rest=(b"\x82\x01",)),  # not a whole RLP item
        lambda: ping(rest=(b"\x01\x02",)),  # two items in one element
        lambda: Pong(to=ep(None, 1, 1), ping_hash=b"\x00" * 31, expiration=EXP),
        lambda: FindNode(target=b"\x00" * 65, expiration=EXP),
        lambda: ENRResponse(request_hash=b"\x00" * 32, record=b"\x83abc"),  # a string, not a list
        lambda: ENRResponse(request_hash=b"\x00" * 32, record=b"\xc0\xc0"),
        lambda: ENRResponse(request_hash=b"\x00" * 32, record=b"\xc5\x01"),
    ],
)
def test_invalid_construction_is_local_error(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_encode_refuses_over_1280_bytes() -> None:
    with pytest.raises(LocalProtocolError, match="1280"):
        discv4.encode(Neighbors(nodes=tuple(ipv4_node(i) for i in range(16)), expiration=EXP), SIGNER)


def test_max_neighbors_is_tight_for_ipv6() -> None:
    nodes = tuple(ipv6_node(i) for i in range(MAX_NEIGHBORS + 1))
    assert len(discv4.encode(Neighbors(nodes=nodes[:-1], expiration=UINT64_MAX), SIGNER)) <= MAX_PACKET_SIZE
    with pytest.raises(LocalProtocolError):
        discv4.encode(Neighbors(nodes=nodes, expiration=UINT64_MAX), SIGNER)


# ---------------------------------------------------------------- tolerance

def _ping_body(from_ip: bytes, *extra: Any) -> bytes:
    return b"\x01" + rlp_encode([4, [from_ip, 30303, 30303], [b"\x7f\x00\x00\x01", 1, 0], EXP, *extra])


@pytest.mark.parametrize("odd_ip", [b"", b"\x01", b"\x01\x02\x03", b"\x01" * 5, b"\x01" * 15, b"\x01" * 17])
def test_odd_length_ip_decodes_as_none(odd_ip: bytes) -> None:
    # geth reads an ip that is neither 4 nor 16 bytes as nil; the rest of the packet stands.
    packet = discv4.decode(sign_raw(SIGNER, _ping_body(odd_ip))).packet
    assert isinstance(packet, Ping)
    assert packet.from_.ip is None and packet.from_.udp == 30303
    assert packet.to.ip == ipaddress.IPv4Address("127.0.0.1")
    node_list = [[odd_ip, 1, 2, node_key(5)], [b"\x01\x02\x03\x04", 3, 4, node_key(6)]]
    neighbors = discv4.decode(sign_raw(SIGNER, b"\x04" + rlp_encode([node_list, EXP]))).packet
    assert isinstance(neighbors, Neighbors)
    assert [n.ip for n in neighbors.nodes] == [None, ipaddress.IPv4Address("1.2.3.4")]


def test_ip_list_instead_of_bytes_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="ping.from.ip"):
        discv4.decode(sign_raw(SIGNER, b"\x01" + rlp_encode([4, [[], 1, 1], [b"", 1, 1], EXP])))


@pytest.mark.parametrize(
    ("slot", "enr_seq"),
    [(1, 1), (b"", 0), (UINT64_MAX, UINT64_MAX), ([1, 2], None), (b"\x00\x01", None), (b"\x01" * 9, None)],
)
def test_enr_seq_slot(slot: Any, enr_seq: int | None) -> None:
    # Only a canonical uint64 is an enr-seq; anything else there is an EIP-8 filler kept in rest.
    packet = discv4.decode(sign_raw(SIGNER, _ping_body(b"\x7f\x00\x00\x01", slot, b"x"))).packet
    assert isinstance(packet, Ping)
    assert packet.enr_seq == enr_seq
    assert packet.rest == ((b"x",) if enr_seq is not None else (rlp_encode(slot), b"x"))


def test_trailing_data_after_list_is_ignored() -> None:
    packet = ping()
    body = b"\x01" + rlp_encode(packet.rlp_fields())
    for trailing in (b"\x00", b"\xff" * 100, rlp_encode([1, 2, 3])):
        assert discv4.decode(sign_raw(SIGNER, body + trailing)).packet == packet


def test_extra_endpoint_and_node_elements_are_ignored() -> None:
    body = b"\x01" + rlp_encode([4, [b"\x01\x02\x03\x04", 1, 2, b"more"], [b"", 3, 4, [5]], EXP])
    packet = discv4.decode(sign_raw(SIGNER, body)).packet
    assert isinstance(packet, Ping) and packet.from_ == ep("1.2.3.4", 1, 2) and packet.to == ep(None, 3, 4)
    body = b"\x04" + rlp_encode([[[b"", 1, 2, node_key(7), b"more"]], EXP])
    neighbors = discv4.decode(sign_raw(SIGNER, body)).packet
    assert isinstance(neighbors, Neighbors) and neighbors.nodes == (NodeRecord(ip=None, udp=1, tcp=2, pubkey=node_key(7)),)


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ([b"\x0a\x00\x00\x09", b"\x00\x01", 30303, node_key(7)], "neighbors.nodes[1].udp: integer has leading zero"),
        ([b"\x0a\x00\x00\x09", 30303, 2**16, node_key(7)], "neighbors.nodes[1].tcp: integer wider than 16 bits"),
        ([[b"\x0a"], 30303, 30303, node_key(7)], "neighbors.nodes[1].ip: expected a byte string"),
        ([b"\x0a\x00\x00\x09", 30303, 30303, node_key(7)[:63]], "neighbors.nodes[1].pubkey: expected 64 bytes"),
        ([b"\x0a\x00\x00\x09", 30303, 30303, [node_key(7)]], "neighbors.nodes[1].pubkey: expected a byte string"),
        ([b"\x0a\x00\x00\x09", 30303, 30303], "neighbors.nodes[1]: expected at least 4 elements"),
    ],
)
def test_a_malformed_neighbors_entry_is_named_in_the_error(entry: list[Any], error: str) -> None:
    # Well-formed entries decode the short way (no field names formatted); a malformed one still says where.
    body = b"\x04" + rlp_encode([[ipv4_node(1).to_rlp_item(), entry], EXP])
    with pytest.raises(MalformedMessage, match=re.escape(error)):
        discv4.decode(sign_raw(SIGNER, body))


def test_neighbors_entries_naming_one_address_share_its_object() -> None:
    # Each node is listed by many peers: one IP object per address, not one per entry.
    entries = [NodeRecord(ip=ipaddress.ip_address("10.0.0.9"), udp=30303 + i, tcp=0, pubkey=node_key(i + 1)) for i in range(3)]
    packet = discv4.decode(discv4.encode(Neighbors(nodes=tuple(entries), expiration=EXP), SIGNER)).packet
    assert isinstance(packet, Neighbors) and packet.nodes == tuple(entries)
    assert packet.nodes[0].ip is packet.nodes[2].ip and packet.nodes[2].tcp == 0


# ---------------------------------------------------------------- keys that are no curve point

# Each is 64 bytes that no secp256k1 public key encodes; the node id (their keccak) means nothing.
OFF_CURVE_KEYS = [
    pytest.param(b"\x07" * 64, id="off-curve"),
    pytest.param(b"\x00" * 64, id="zeros"),  # the point at infinity has no affine encoding
    pytest.param(b"\xff" * 64, id="x-and-y-over-p"),
]


@pytest.mark.parametrize("bad_key", OFF_CURVE_KEYS)
def test_neighbors_entry_with_an_off_curve_key_is_dropped_and_counted(bad_key: bytes) -> None:
    # geth's nodeFromRPC fails such an entry (DecodePubkey) and keeps the packet's other entries.
    first, last = ipv4_node(1), ipv6_node(2)
    bad_entry = [b"\x0a\x00\x00\x09", 30303, 30303, bad_key]
    body = b"\x04" + rlp_encode([[first.to_rlp_item(), bad_entry, last.to_rlp_item()], EXP])
    packet = discv4.decode(sign_raw(SIGNER, body)).packet
    assert isinstance(packet, Neighbors)
    assert packet.nodes == (first, last)
    assert packet.invalid_keys == 1


def test_neighbors_of_only_off_curve_keys_decodes_empty() -> None:
    entries = [[b"\x0a\x00\x00\x09", 30303, 30303, bytes([i]) * 64] for i in range(5, 9)]
    packet = discv4.decode(sign_raw(SIGNER, b"\x04" + rlp_encode([entries, EXP]))).packet
    assert isinstance(packet, Neighbors) and packet.nodes == () and packet.invalid_keys == 4


def test_neighbors_we_build_count_no_invalid_keys() -> None:
    packet = Neighbors(nodes=(ipv4_node(1),), expiration=EXP)
    assert packet.invalid_keys == 0
    assert discv4.decode(discv4.encode(packet, SIGNER)).packet == packet
    with pytest.raises(LocalProtocolError):
        Neighbors(nodes=(), expiration=EXP, invalid_keys=-1)


# ---------------------------------------------------------------- size limits

def test_lenient_size_accepts_ethereumjs_16_node_neighbors() -> None:
    # Stock ethereumjs answers with 16 nodes in one ~1373-byte datagram: over the
    # spec limit.  decode() refuses it by default; the crawler's lenient limit takes it.
    nodes = [ipv4_node(i) for i in range(16)]
    data = sign_raw(SIGNER, b"\x04" + rlp_encode([[n.to_rlp_item() for n in nodes], EXP]))
    assert MAX_PACKET_SIZE < len(data) < LENIENT_SIZE
    with pytest.raises(PacketTooLarge):
        discv4.decode(data)
    packet = discv4.decode(data, max_size=LENIENT_SIZE).packet
    assert isinstance(packet, Neighbors) and list(packet.nodes) == nodes


def test_exactly_1280_bytes_is_accepted_and_1281_refused() -> None:
    base = b"\x03" + rlp_encode([b"\x00" * 64, EXP])
    fill = MAX_PACKET_SIZE - HEAD_SIZE - len(base)
    assert isinstance(discv4.decode(sign_raw(SIGNER, base + b"\x00" * fill)).packet, FindNode)
    with pytest.raises(PacketTooLarge):
        discv4.decode(sign_raw(SIGNER, base + b"\x00" * (fill + 1)))


# ---------------------------------------------------------------- failures

VALID = discv4.encode(ping(), SIGNER)


@pytest.mark.parametrize("length", range(0, len(VALID)))
def test_truncated(length: int) -> None:
    expected = PacketTooSmall if length <= HEAD_SIZE else BadHash
    with pytest.raises(expected):
        discv4.decode(VALID[:length])


# The last field is a multi-byte string: cutting into it must not yield a shorter value.
VALID_BODIES = [
    VALID[HEAD_SIZE:],
    discv4.encode(FindNode(target=b"\x01" * 64, expiration=UINT64_MAX), SIGNER)[HEAD_SIZE:],
    discv4.encode(Neighbors(nodes=(ipv6_node(1), ipv4_node(2)), expiration=EXP), SIGNER)[HEAD_SIZE:],
]


@pytest.mark.parametrize(
    "body", [pytest.param(b[:n], id=f"{b[0]}-{n}") for b in VALID_BODIES for n in range(1, len(b))]
)
def test_truncated_body_resigned_is_malformed(body: bytes) -> None:
    # Hash and signature fit, so the cut RLP itself must be caught.
    with pytest.raises((MalformedRLP, MalformedMessage)):
        discv4.decode(sign_raw(SIGNER, body))


@pytest.mark.parametrize("position", [0, 31, 32, 96, 97, 98, len(VALID) - 1])
def test_bad_hash(position: int) -> None:
    data = bytearray(VALID)
    data[position] ^= 0x01
    with pytest.raises(BadHash):
        discv4.decode(bytes(data))


def _reseal(signature: bytes, body: bytes) -> bytes:
    return keccak256(signature + body) + signature + body


@pytest.mark.parametrize(
    "signature",
    [
        b"\x00" * 65,  # r = s = 0
        VALID[32:96] + b"\x04",  # recovery id out of range
        VALID[32:96] + b"\xff",
        b"\xff" * 64 + b"\x00",  # r, s above the group order
    ],
)
def test_bad_signature(signature: bytes) -> None:
    with pytest.raises(BadSignature):
        discv4.decode(_reseal(signature, VALID[HEAD_SIZE:]))


def test_signature_over_other_data_recovers_another_key() -> None:
    # A well-formed signature over a different hash is not an error by itself:
    # it yields some other key, so replies can never be attributed to the signer.
    other = sign_recoverable(SIGNER, keccak256(b"something else"))
    decoded = discv4.decode(_reseal(other, VALID[HEAD_SIZE:]))
    assert decoded.sender_pubkey != SIGNER_PUBKEY


@pytest.mark.parametrize("packet_type", [0, 7, 8, 0x7F, 0xFF])
def test_unknown_type(packet_type: int) -> None:
    with pytest.raises(UnknownPacketType, match=f"0x{packet_type:02x}"):
        discv4.decode(sign_raw(SIGNER, bytes([packet_type]) + VALID[HEAD_SIZE + 1 :]))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\x01", MalformedRLP),  # no RLP at all
        (b"\x01" + rlp_encode(b"not a list"), MalformedMessage),
        (b"\x01" + rlp_encode([4, [b"", 1, 1], [b"", 1, 1]]), MalformedMessage),  # 3 of 4 fields
        (b"\x02" + rlp_encode([[b"", 1, 1], b"\x00" * 31, EXP]), MalformedMessage),  # short ping hash
        (b"\x03" + rlp_encode([b"\x00" * 63, EXP]), MalformedMessage),  # short target
        (b"\x03" + rlp_encode([b"\x00" * 64, b"\x00\x01"]), MalformedMessage),  # non-canonical integer
        (b"\x03" + rlp_encode([b"\x00" * 64, b"\x01" * 9]), MalformedMessage),  # expiration over 64 bits
        (b"\x04" + rlp_encode([b"nodes", EXP]), MalformedMessage),
        (b"\x04" + rlp_encode([[[b"", 1, 2]], EXP]), MalformedMessage),  # node without key
        (b"\x04" + rlp_encode([[[b"", 65536, 2, b"\x00" * 64]], EXP]), MalformedMessage),  # port over 16 bits
        (b"\x05" + rlp_encode([]), MalformedMessage),
        (b"\x06" + rlp_encode([b"\x00" * 32, b"record as string"]), MalformedMessage),
        (b"\x06" + rlp_encode([b"\x00" * 31, [b"sig", 1]]), MalformedMessage),
        (b"\x01" + b"\xb8\x01\x01", MalformedRLP),  # non-canonical length prefix
    ],
)
def test_malformed_bodies(body: bytes, error: type[WireError]) -> None:
    with pytest.raises(error):
        discv4.decode(sign_raw(SIGNER, body))


# ---------------------------------------------------------------- fuzzing

def _decode_or_wire_error(data: bytes, max_size: int = MAX_PACKET_SIZE) -> None:
    try:
        discv4.decode(data, max_size=max_size)
    except WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=1400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_or_wire_error(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packet_type=st.integers(0, 8), body=st.binary(max_size=300) | rlp_items.map(rlp_encode))
def test_fuzz_signed_random_bodies(packet_type: int, body: bytes) -> None:
    # Valid hash and signature, so the RLP and field checks face the garbage.
    _decode_or_wire_error(sign_raw(SIGNER, bytes([packet_type]) + body), LENIENT_SIZE)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    packet = draw(packets)
    data = bytearray(discv4.encode(packet, SIGNER)[HEAD_SIZE:])
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        del data[draw(st.integers(1, len(data))) :]
    elif kind == "extend":
        data += draw(st.binary(min_size=1, max_size=50))
    else:
        at = draw(st.integers(1, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=mutated())
def test_fuzz_mutated_valid_packets(body: bytes) -> None:
    # Raw mutation breaks the hash; re-signing it tests the parser behind.
    with pytest.raises(BadHash):
        discv4.decode(keccak256(b"x") + sign_recoverable(SIGNER, keccak256(body)) + body)
    _decode_or_wire_error(sign_raw(SIGNER, body), LENIENT_SIZE)


# ---------------------------------------------------------------- NEIGHBORS splitting

@pytest.mark.parametrize("count", [16, 30, 100])
def test_split_neighbors(count: int) -> None:
    nodes = [ipv6_node(i) for i in range(count)]
    chunks = discv4.split_neighbors(nodes, UINT64_MAX)
    assert len(chunks) == -(-count // MAX_NEIGHBORS)
    assert all(0 < len(c.nodes) <= MAX_NEIGHBORS for c in chunks)
    assert [n for c in chunks for n in c.nodes] == nodes
    for chunk in chunks:
        data = discv4.encode(chunk, SIGNER)
        assert len(data) <= MAX_PACKET_SIZE
        assert discv4.decode(data).packet == chunk
        assert chunk.expiration == UINT64_MAX


def test_split_neighbors_without_nodes_still_answers() -> None:
    assert discv4.split_neighbors([], EXP) == [Neighbors(nodes=(), expiration=EXP)]


# ---------------------------------------------------------------- expiration

def test_expiration_for_is_now_plus_window() -> None:
    assert EXPIRATION == 20
    assert discv4.expiration_for(1000.0) == 1020
    assert discv4.expiration_for(1000.9) == 1020  # whole seconds, never later than now + 20 s


@pytest.mark.parametrize(("expiration", "now", "expired"), [(100, 99.5, False), (100, 100.0, False), (100, 100.5, True), (0, 1.0, True)])
def test_is_expired(expiration: int, now: float, expired: bool) -> None:
    assert discv4.is_expired(expiration, now) is expired


def test_own_packets_stay_fresh_for_the_window() -> None:
    expiration = discv4.expiration_for(5000.2)
    assert not discv4.is_expired(expiration, 5000.2 + EXPIRATION - 1)
    assert discv4.is_expired(expiration, 5000.2 + EXPIRATION + 1)


@pytest.mark.parametrize(
    "packet",
    [
        ping(expiration=100),
        Pong(to=ep(None, 1, 1), ping_hash=b"\x00" * 32, expiration=100),
        FindNode(target=b"\x00" * 64, expiration=100),
        Neighbors(nodes=(), expiration=100),
        ENRRequest(expiration=100),
    ],
    ids=lambda p: p.name,
)
def test_check_expiration(packet: Packet) -> None:
    discv4.check_expiration(packet, 99.0)
    discv4.check_expiration(packet, 100.0)
    with pytest.raises(Expired, match=packet.name):
        discv4.check_expiration(packet, 101.0)


def test_check_expiration_ignores_enr_response() -> None:
    record = ENR.create(SIGNER, seq=1, pairs={}).to_rlp()
    discv4.check_expiration(ENRResponse(request_hash=b"\x00" * 32, record=record), 1e12)
