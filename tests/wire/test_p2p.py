"""p2p capability: the EIP-8 Hello vector, message round trips, Disconnect
encodings, capability negotiation, snappy limits, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.errors import DecompressionError, UnknownPacketType, WireError
from ethcrawl.wire.p2p import (
    MAX_MESSAGE_SIZE,
    MESSAGE_COUNTS,
    P2P_MESSAGES,
    Capability,
    Disconnect,
    DisconnectReason,
    Hello,
    Ping,
    Pong,
    SharedCapability,
    compress,
    decode_p2p,
    decompress,
    encode_p2p,
    negotiate,
)
from ethcrawl.wire.rlpcodec import encode

from ground_truth import load_fixture_json_at_collection

HELLO_VECTOR = load_fixture_json_at_collection("vectors", "eip8.json")["p2p_hello"]
KEY = bytes(range(64))


def caps(*specs: str) -> tuple[Capability, ...]:
    out = []
    for spec in specs:
        name, _, version = spec.partition("/")
        out.append(Capability(name=name, version=int(version)))
    return tuple(out)


# -- the official vector -------------------------------------------------------


def test_eip8_hello_vector_decodes() -> None:
    expect = HELLO_VECTOR["expect"]
    msg = decode_p2p(0x00, bytes.fromhex(HELLO_VECTOR["hex"]))
    assert isinstance(msg, Hello)
    assert msg.protocol_version == expect["version"]
    assert msg.client_id == expect["client_id"]
    assert [[c.name, c.version] for c in msg.capabilities] == expect["capabilities"]
    assert msg.listen_port == expect["listen_port"]
    assert msg.node_pubkey.hex() == expect["node_pubkey"]
    # The extra elements are kept, and re-encoding gives the vector back.
    assert msg.rest == ((b"foo", b"bar"), b"\x03", b"\x04")
    assert encode_p2p(msg) == (0x00, bytes.fromhex(HELLO_VECTOR["hex"]))


# -- round trips -----------------------------------------------------------------

capabilities = st.builds(
    Capability,
    name=st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=1, max_size=8),
    version=st.integers(0, 2**64 - 1),
)
hellos = st.builds(
    Hello,
    protocol_version=st.integers(0, 2**64 - 1),
    client_id=st.text(max_size=60),
    capabilities=st.lists(capabilities, max_size=6).map(tuple),
    listen_port=st.integers(0, 2**64 - 1),
    node_pubkey=st.binary(min_size=64, max_size=64),
    rest=st.lists(st.binary(max_size=8), max_size=3).map(tuple),
)
disconnects = st.builds(Disconnect, reason=st.integers(0, 2**64 - 1))
p2p_messages = st.one_of(hellos, disconnects, st.just(Ping()), st.just(Pong()))


@settings(max_examples=200, deadline=None)
@given(p2p_messages)
def test_round_trip(msg: Hello | Disconnect | Ping | Pong) -> None:
    code, payload = encode_p2p(msg)
    assert code == msg.code
    assert decode_p2p(code, payload) == msg


def test_message_codes() -> None:
    assert {code: cls.name for code, cls in P2P_MESSAGES.items()} == {
        0x00: "Hello", 0x01: "Disconnect", 0x02: "Ping", 0x03: "Pong",
    }
    assert encode_p2p(Ping()) == (0x02, b"\xc0")
    assert encode_p2p(Pong()) == (0x03, b"\xc0")


@pytest.mark.parametrize("code", range(0x04, 0x10))
def test_unknown_p2p_code(code: int) -> None:
    with pytest.raises(UnknownPacketType):
        decode_p2p(code, b"\xc0")


def test_hello_with_bad_node_key_is_rejected() -> None:
    good = Hello(protocol_version=5, client_id="x", capabilities=(), listen_port=0, node_pubkey=KEY)
    item = good.to_rlp_item()
    item[4] = KEY[:63]
    with pytest.raises(WireError, match="node_pubkey"):
        decode_p2p(0x00, encode(item))


# -- Disconnect ------------------------------------------------------------------

SPEC_REASONS = {
    0x00: "DISCONNECT_REQUESTED", 0x01: "TCP_SUBSYSTEM_ERROR", 0x02: "BREACH_OF_PROTOCOL",
    0x03: "USELESS_PEER", 0x04: "TOO_MANY_PEERS", 0x05: "ALREADY_CONNECTED",
    0x06: "INCOMPATIBLE_P2P_VERSION", 0x07: "NULL_NODE_IDENTITY", 0x08: "CLIENT_QUITTING",
    0x09: "UNEXPECTED_IDENTITY", 0x0A: "CONNECTED_TO_SELF", 0x0B: "PING_TIMEOUT",
    0x10: "SUBPROTOCOL_ERROR",
}


def test_every_spec_reason_is_named() -> None:
    assert {r.value: r.name for r in DisconnectReason} == SPEC_REASONS


@pytest.mark.parametrize("code", sorted(SPEC_REASONS))
def test_disconnect_list_and_bare_encodings(code: int) -> None:
    as_list = decode_p2p(0x01, encode([code]))
    bare = decode_p2p(0x01, encode(code))
    assert as_list == bare == Disconnect(reason=DisconnectReason(code))
    assert isinstance(as_list, Disconnect) and isinstance(as_list.reason, DisconnectReason)
    assert encode_p2p(as_list) == (0x01, encode([code]))


@pytest.mark.parametrize("payload", [b"", b"\xc0", b"\x80"], ids=["empty", "empty-list", "empty-string"])
def test_disconnect_without_reason(payload: bytes) -> None:
    assert decode_p2p(0x01, payload) == Disconnect(reason=DisconnectReason.DISCONNECT_REQUESTED)


@pytest.mark.parametrize("code", [0x0C, 0x0F, 0x11, 0xFF, 0x1234])
def test_unknown_disconnect_code_is_kept(code: int) -> None:
    msg = decode_p2p(0x01, encode([code]))
    assert isinstance(msg, Disconnect)
    assert msg.reason == code and not isinstance(msg.reason, DisconnectReason)


def test_disconnect_with_extra_elements() -> None:
    assert decode_p2p(0x01, encode([4, b"why"])) == Disconnect(reason=DisconnectReason.TOO_MANY_PEERS)


# -- negotiation -----------------------------------------------------------------

NEGOTIATION_CASES = [
    pytest.param(caps("eth/68"), caps("eth/66", "eth/67"), (), id="eth68-vs-eth66-67-nothing-shared"),
    pytest.param(
        caps("eth/68", "eth/69"), caps("eth/69", "eth/68"),
        (SharedCapability(name="eth", version=69, offset=0x10, length=18),), id="eth68-69-both-picks-69",
    ),
    pytest.param(
        caps("eth/68", "eth/69", "snap/1"), caps("snap/1", "eth/68"),
        (SharedCapability(name="eth", version=68, offset=0x10, length=17),
         SharedCapability(name="snap", version=1, offset=0x21, length=8)), id="eth68-snap1-offsets",
    ),
    pytest.param(
        caps("snap/1", "eth/69"), caps("eth/69", "snap/1"),
        (SharedCapability(name="eth", version=69, offset=0x10, length=18),
         SharedCapability(name="snap", version=1, offset=0x22, length=8)), id="sorted-by-name",
    ),
    pytest.param(caps("snap/1"), caps("snap/1"), (SharedCapability(name="snap", version=1, offset=0x10, length=8),),
                 id="snap-only"),
    pytest.param(
        caps("eth/68", "les/4", "snap/1"), caps("eth/68", "les/4", "snap/1"),
        (SharedCapability(name="eth", version=68, offset=0x10, length=17),
         SharedCapability(name="snap", version=1, offset=0x21, length=8)), id="unknown-length-skipped",
    ),
    pytest.param(caps("eth/68"), caps("ETH/68"), (), id="names-case-sensitive"),
    pytest.param(caps(), caps("eth/68"), (), id="nothing-local"),
    pytest.param(
        caps("eth/66", "eth/67", "eth/68"), caps("eth/66", "eth/67"),
        (SharedCapability(name="eth", version=67, offset=0x10, length=17),), id="highest-common",
    ),
]


@pytest.mark.parametrize(("local", "remote", "expected"), NEGOTIATION_CASES)
def test_negotiate(local: tuple[Capability, ...], remote: tuple[Capability, ...],
                   expected: tuple[SharedCapability, ...]) -> None:
    assert negotiate(local, remote) == expected
    # Both sides must agree on the id space whichever way round they compute it.
    assert negotiate(remote, local) == expected


def test_negotiate_with_explicit_lengths() -> None:
    shared = negotiate(caps("les/4", "snap/1"), caps("les/4", "snap/1"), lengths={("les", 4): 24, ("snap", 1): 8})
    assert [(c.name, c.offset, c.length) for c in shared] == [("les", 0x10, 24), ("snap", 0x28, 8)]


def test_message_counts_match_spec() -> None:
    # eth/68 ends at Receipts 0x10, eth/69 adds BlockRangeUpdate 0x11, snap/1 ends at TrieNodes 0x07.
    assert MESSAGE_COUNTS[("eth", 68)] == 0x10 + 1
    assert MESSAGE_COUNTS[("eth", 69)] == 0x11 + 1
    assert MESSAGE_COUNTS[("snap", 1)] == 0x07 + 1


# -- snappy ----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=4096))
def test_snappy_round_trip(data: bytes) -> None:
    assert decompress(compress(data)) == data


def test_snappy_compresses() -> None:
    assert len(compress(b"\x00" * 10_000)) < 1000


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_snappy_oversize_header_rejected_before_inflating() -> None:
    # A tiny block claiming 16 MiB + 1: refused on the header alone.
    with pytest.raises(DecompressionError, match="exceeds"):
        decompress(_varint(MAX_MESSAGE_SIZE + 1) + b"\x00")
    with pytest.raises(DecompressionError, match="exceeds"):
        decompress(_varint(2**32 - 1))


def test_snappy_exactly_16mib_is_accepted() -> None:
    data = b"\x00" * MAX_MESSAGE_SIZE
    assert decompress(compress(data)) == data


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\xff\xff\xff\xff\xff\xff", b"\x05abc", b"\x0a\x00\x01", compress(b"hello world" * 20)[:-3]],
    ids=["empty", "truncated-varint", "overlong-varint", "bad-offset", "short-literal", "truncated"],
)
def test_snappy_corrupt(data: bytes) -> None:
    with pytest.raises(DecompressionError):
        decompress(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_snappy_random_bytes_only_wire_errors(data: bytes) -> None:
    try:
        decompress(data)
    except WireError:
        pass


# -- fuzz ------------------------------------------------------------------------

VALID = [
    (0x00, bytes.fromhex(HELLO_VECTOR["hex"])),
    (0x01, encode([4])),
    (0x01, encode(4)),
    (0x02, b"\xc0"),
    (0x03, b"\xc0"),
]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0x0F), st.binary(max_size=200))
def test_random_payloads_only_wire_errors(code: int, payload: bytes) -> None:
    try:
        decode_p2p(code, payload)
    except WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_mutated_payloads_only_wire_errors(valid: tuple[int, bytes], data: st.DataObject) -> None:
    code, payload = valid
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(payload) - 1))
        mutated = payload[:i] + bytes([payload[i] ^ data.draw(st.integers(1, 255))]) + payload[i + 1:]
    elif kind == "truncate":
        mutated = payload[: data.draw(st.integers(0, len(payload) - 1))]
    else:
        mutated = payload + data.draw(st.binary(min_size=1, max_size=16))
    try:
        decode_p2p(code, mutated)
    except WireError:
        pass
