"""PeerSession pair tests: two sessions over RLPx connections in memory (like
h11's ConnectionPair), plus a hand-driven "raw" peer for misbehaviour."""

from __future__ import annotations

import random
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import PrivateKey, pubkey_from_private
from ethcrawl.wire.errors import (
    DecompressionError,
    HandshakeError,
    LocalProtocolError,
    PacketTooLarge,
    UnexpectedMessage,
    UnknownPacketType,
    WireError,
)
from ethcrawl.wire.eth import BlockHeader, BlockHeaders, GetBlockHeaders, RawEthMessage, Status66, Status69, encode_eth
from ethcrawl.wire.forkid import ForkId
from ethcrawl.wire.p2p import Capability, DisconnectReason, Hello, compress, encode_p2p
from ethcrawl.wire.rlpcodec import decode, encode
from ethcrawl.wire.rlpx import connection as transport
from ethcrawl.wire.rlpx import session as s
from ethcrawl.wire.rlpx.session import PeerSession, SessionState

ALICE_KEY = PrivateKey(bytes.fromhex("49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee"))
BOB_KEY = PrivateKey(bytes.fromhex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291"))
GENESIS = bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3")
FORK_ID = ForkId(hash=bytes.fromhex("fc64ec04"), next=1150000)
STATUS68 = Status66(version=68, network_id=1, td=2**70, head=b"\x11" * 32, genesis=GENESIS, fork_id=FORK_ID)
STATUS69 = Status69(version=69, network_id=1, genesis=GENESIS, fork_id=FORK_ID, earliest_block=0,
                    latest_block=22_000_000, latest_hash=b"\x22" * 32)


def caps(*specs: str) -> tuple[Capability, ...]:
    return tuple(Capability(name=n, version=int(v)) for n, _, v in (x.partition("/") for x in specs))


def hello_of(key: PrivateKey, *specs: str, version: int = 5, client: str = "test/v1") -> Hello:
    return Hello(protocol_version=version, client_id=client, capabilities=caps(*specs), listen_port=30303,
                 node_pubkey=pubkey_from_private(key))


def make_pair(alice_hello: Hello, bob_hello: Hello) -> tuple[PeerSession, PeerSession]:
    alice = PeerSession(transport.RLPxConnection.initiator(ALICE_KEY, pubkey_from_private(BOB_KEY), eip8=True),
                        hello=alice_hello)
    bob = PeerSession(transport.RLPxConnection.recipient(BOB_KEY), hello=bob_hello)
    return alice, bob


def pump(alice: Any, bob: Any) -> tuple[list[Any], list[Any]]:
    """Move bytes both ways until both are quiet; every event each side saw."""
    alice_events: list[Any] = []
    bob_events: list[Any] = []
    for _ in range(20):
        a_out, b_out = alice.data_to_send(), bob.data_to_send()
        if not a_out and not b_out:
            return alice_events, bob_events
        if a_out:
            bob_events += bob.receive_data(a_out)
        if b_out:
            alice_events += alice.receive_data(b_out)
    raise AssertionError("sessions never went quiet")


def of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
def eth68_pair() -> Iterator[tuple[PeerSession, PeerSession]]:
    alice, bob = make_pair(hello_of(ALICE_KEY, "eth/68", "snap/1"), hello_of(BOB_KEY, "eth/68", "snap/1"))
    pump(alice, bob)
    yield alice, bob


# -- the happy path ---------------------------------------------------------------


def test_hello_both_ways() -> None:
    a_hello = hello_of(ALICE_KEY, "eth/68", "eth/69", "snap/1", client="alice/v1")
    b_hello = hello_of(BOB_KEY, "eth/69", "snap/1", client="bob/v2")
    alice, bob = make_pair(a_hello, b_hello)
    assert alice.state is SessionState.HANDSHAKE
    a_events, b_events = pump(alice, bob)
    assert [type(e) for e in a_events] == [s.HandshakeCompleted, s.HelloReceived]
    assert [type(e) for e in b_events] == [s.HandshakeCompleted, s.HelloReceived]
    assert a_events[0].remote_pubkey == pubkey_from_private(BOB_KEY)
    assert b_events[0].remote_pubkey == pubkey_from_private(ALICE_KEY)
    assert a_events[1].hello == b_hello and b_events[1].hello == a_hello
    assert alice.remote_hello == b_hello and bob.remote_hello == a_hello
    shared = [(c.name, c.version, c.offset, c.length) for c in alice.shared_capabilities]
    assert shared == [("eth", 69, 0x10, 18), ("snap", 1, 0x22, 8)]
    assert alice.shared_capabilities == bob.shared_capabilities == a_events[1].shared
    assert alice.eth_version == bob.eth_version == 69
    assert alice.snappy and bob.snappy
    assert alice.state is bob.state is SessionState.ACTIVE


def test_no_eth_shared_on_version_mismatch() -> None:
    # ethereumjs shares a capability only on an exact version match.
    alice, bob = make_pair(hello_of(ALICE_KEY, "eth/68"), hello_of(BOB_KEY, "eth/66", "eth/67"))
    pump(alice, bob)
    assert alice.eth_version is None and bob.eth_version is None
    with pytest.raises(LocalProtocolError, match="not a shared"):
        alice.send_status(STATUS68)


@pytest.mark.parametrize(("cap", "status"), [("eth/68", STATUS68), ("eth/69", STATUS69)], ids=["eth68", "eth69"])
@pytest.mark.parametrize("p2p_version", [5, 4], ids=["snappy", "plain"])
def test_status_exchange(cap: str, status: Status66 | Status69, p2p_version: int) -> None:
    alice, bob = make_pair(hello_of(ALICE_KEY, cap), hello_of(BOB_KEY, cap, version=p2p_version))
    pump(alice, bob)
    assert alice.snappy is bob.snappy is (p2p_version >= 5)
    alice.send_status(status)
    bob.send_status(status)
    a_events, b_events = pump(alice, bob)
    assert a_events == [s.StatusReceived(status=status)]
    assert b_events == [s.StatusReceived(status=status)]
    assert alice.remote_status == bob.remote_status == status


def test_snappy_really_compresses_on_the_wire(eth68_pair: tuple[PeerSession, PeerSession]) -> None:
    alice, bob = eth68_pair
    big = RawEthMessage(code=0x02, payload=encode([b"\x00" * 50_000]))
    alice.send_eth(big)
    wire = alice.data_to_send()
    assert len(wire) < 10_000
    assert bob.receive_data(wire) == [s.EthMessageReceived(msg=big)]


def test_header_request_and_answer(eth68_pair: tuple[PeerSession, PeerSession]) -> None:
    alice, bob = eth68_pair
    request = GetBlockHeaders(request_id=9, origin=STATUS68.head, amount=1)
    alice.send_eth(request)
    _, b_events = pump(alice, bob)
    assert b_events == [s.EthMessageReceived(msg=request)]
    header = BlockHeader.from_rlp_item(decode(encode([b"\x00" * 32] * 8 + [123, 1, 2, 456, b"", b"\x00" * 32, b"\x00" * 8])))
    bob.send_eth(BlockHeaders(request_id=9, headers=(header,)))
    a_events, _ = pump(alice, bob)
    [event] = a_events
    assert isinstance(event.msg, BlockHeaders) and event.msg.headers[0].number == 123
    assert event.msg.headers[0].timestamp == 456


def test_ping_is_answered_automatically(eth68_pair: tuple[PeerSession, PeerSession]) -> None:
    alice, bob = eth68_pair
    alice.send_ping()
    a_events, b_events = pump(alice, bob)
    assert b_events == [s.PingReceived()]
    assert a_events == [s.PongReceived()]


def test_other_protocols_pass_through(eth68_pair: tuple[PeerSession, PeerSession]) -> None:
    alice, bob = eth68_pair
    alice.send_protocol_message("snap", 0x01, encode([1, [], []]))
    _, b_events = pump(alice, bob)
    assert b_events == [s.ProtocolMessageReceived(protocol="snap", version=1, code=0x01, payload=encode([1, [], []]))]


def test_disconnect_right_after_hello_still_reports_hello() -> None:
    alice, bob = make_pair(hello_of(ALICE_KEY, "eth/68"), hello_of(BOB_KEY, "eth/68", client="full/v1"))
    alice_out = alice.data_to_send()
    assert bob.receive_data(alice_out) == [s.HandshakeCompleted(remote_pubkey=pubkey_from_private(ALICE_KEY))]
    bob.send_disconnect(DisconnectReason.TOO_MANY_PEERS)  # Hello is already queued ahead of it
    a_events = alice.receive_data(bob.data_to_send())
    assert [type(e) for e in a_events] == [s.HandshakeCompleted, s.HelloReceived, s.DisconnectReceived]
    assert a_events[1].hello.client_id == "full/v1"
    assert a_events[2].reason is DisconnectReason.TOO_MANY_PEERS
    assert alice.remote_hello is not None and alice.disconnect_reason is DisconnectReason.TOO_MANY_PEERS
    assert alice.state is SessionState.CLOSED


def test_disconnect_after_active_is_compressed_and_reported(eth68_pair: tuple[PeerSession, PeerSession]) -> None:
    alice, bob = eth68_pair
    bob.send_disconnect(0x42)
    a_events, _ = pump(alice, bob)
    assert a_events == [s.DisconnectReceived(reason=0x42)]
    with pytest.raises(LocalProtocolError):
        bob.send_ping()
    with pytest.raises(LocalProtocolError):
        bob.send_disconnect()


# -- a hand-driven peer --------------------------------------------------------------


class RawPeer:
    """Bob as a bare RLPx connection: sends whatever frames a test wants."""

    def __init__(self) -> None:
        self.conn = transport.RLPxConnection.recipient(BOB_KEY)
        self.frames: list[tuple[int, bytes]] = []

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()

    def receive_data(self, data: bytes) -> list[Any]:
        events = self.conn.receive_data(data)
        self.frames += [(e.code, e.payload) for e in events if isinstance(e, transport.FrameReceived)]
        return events

    def send(self, code: int, payload: bytes) -> None:
        self.conn.send_frame(code, payload)


def raw_pair(*alice_caps: str) -> tuple[PeerSession, RawPeer]:
    alice = PeerSession(transport.RLPxConnection.initiator(ALICE_KEY, pubkey_from_private(BOB_KEY), eip8=True),
                        hello=hello_of(ALICE_KEY, *alice_caps))
    bob = RawPeer()
    bob.receive_data(alice.data_to_send())  # auth in, ack out
    alice.receive_data(bob.data_to_send())  # ack in, Alice's Hello out
    bob.receive_data(alice.data_to_send())
    return alice, bob


def active_raw_pair() -> tuple[PeerSession, RawPeer]:
    alice, bob = raw_pair("eth/68", "snap/1")
    bob.send(*encode_p2p(hello_of(BOB_KEY, "eth/68", "snap/1")))
    [event] = alice.receive_data(bob.data_to_send())
    assert isinstance(event, s.HelloReceived) and alice.snappy
    return alice, bob


def test_our_hello_goes_first_and_uncompressed() -> None:
    alice, bob = raw_pair("eth/68")
    assert bob.frames == [encode_p2p(alice.local_hello)]


def test_disconnect_instead_of_hello() -> None:
    alice, bob = raw_pair("eth/68")
    bob.send(0x01, encode([DisconnectReason.TOO_MANY_PEERS]))
    assert alice.receive_data(bob.data_to_send()) == [s.DisconnectReceived(reason=DisconnectReason.TOO_MANY_PEERS)]
    assert alice.remote_hello is None and alice.state is SessionState.CLOSED


@pytest.mark.parametrize("code", [0x02, 0x03, 0x10, 0x11])
def test_message_before_hello_is_a_protocol_error(code: int) -> None:
    alice, bob = raw_pair("eth/68")
    bob.send(code, b"\xc0")
    with pytest.raises(UnexpectedMessage, match="before the peer's Hello"):
        alice.receive_data(bob.data_to_send())
    assert alice.state is SessionState.ERROR
    with pytest.raises(LocalProtocolError):
        alice.receive_data(b"")
    alice.send_disconnect(DisconnectReason.BREACH_OF_PROTOCOL)  # still allowed, to say goodbye


def test_sending_before_hello_is_our_error() -> None:
    alice, _bob = raw_pair("eth/68")
    for call in (alice.send_ping, lambda: alice.send_status(STATUS68)):
        with pytest.raises(LocalProtocolError):
            call()


def test_hello_with_another_key_is_rejected() -> None:
    alice, bob = raw_pair("eth/68")
    bob.send(*encode_p2p(hello_of(ALICE_KEY, "eth/68")))
    with pytest.raises(HandshakeError):
        alice.receive_data(bob.data_to_send())


def test_uncompressed_disconnect_after_snappy_is_tolerated() -> None:
    alice, bob = active_raw_pair()
    bob.send(0x01, encode([DisconnectReason.CLIENT_QUITTING]))
    assert alice.receive_data(bob.data_to_send()) == [s.DisconnectReceived(reason=DisconnectReason.CLIENT_QUITTING)]


@pytest.mark.parametrize(
    ("code", "payload", "error"),
    [
        (0x00, compress(encode_p2p(hello_of(BOB_KEY, "eth/68"))[1]), UnexpectedMessage),
        (0x02, b"\xc0", DecompressionError),  # not compressed though snappy is on
        (0x04, compress(b"\xc0"), UnknownPacketType),
        (0x10 + 17 + 8, compress(b"\xc0"), UnknownPacketType),  # past eth/68 (17) and snap/1 (8)
        (0x10 + 0x0B, compress(b"\xc0"), UnknownPacketType),  # an eth/68 gap
    ],
    ids=["second-hello", "uncompressed-ping", "unknown-p2p-code", "beyond-all-capabilities", "eth-gap"],
)
def test_bad_messages_after_hello(code: int, payload: bytes, error: type[WireError]) -> None:
    alice, bob = active_raw_pair()
    bob.send(code, payload)
    with pytest.raises(error):
        alice.receive_data(bob.data_to_send())


def test_ping_pong_on_the_wire() -> None:
    alice, bob = active_raw_pair()
    bob.send(0x02, compress(b"\xc0"))
    assert alice.receive_data(bob.data_to_send()) == [s.PingReceived()]
    bob.receive_data(alice.data_to_send())
    assert bob.frames[-1] == (0x03, compress(b"\xc0"))


def test_error_after_hello_in_the_same_chunk_keeps_the_hello() -> None:
    alice, bob = raw_pair("eth/68")
    bob.send(*encode_p2p(hello_of(BOB_KEY, "eth/68", client="kept/v1")))
    bob.send(0x10, b"not snappy")
    with pytest.raises(DecompressionError):
        alice.receive_data(bob.data_to_send())
    assert alice.remote_hello is not None and alice.remote_hello.client_id == "kept/v1"
    assert alice.eth_version == 68


# -- frame sizes before the Hello and Status ------------------------------------------

BIG = s.HANDSHAKE_MAX_FRAME_SIZE + 1  # bytes of frame data: one more than a peer may send so early
SNAP_OFFSET = 0x10 + 17  # snap/1's first message id, after p2p (16) and eth/68 (17)


def test_handshake_limit_is_far_above_any_hello_or_status() -> None:
    hello = hello_of(BOB_KEY, *(f"cap{i:04}/{i}" for i in range(64)), client="x" * 1024)
    assert len(encode_p2p(hello)[1]) * 8 < s.HANDSHAKE_MAX_FRAME_SIZE
    assert s.HANDSHAKE_MAX_FRAME_SIZE < transport.MAX_FRAME_SIZE


def test_a_big_frame_before_hello_is_refused_on_its_header() -> None:
    alice, bob = raw_pair("eth/68")
    bob.send(0x00, bytes(BIG - 1))  # msg-id byte + payload = BIG bytes of frame data
    frame = bob.data_to_send()
    with pytest.raises(PacketTooLarge, match=str(s.HANDSHAKE_MAX_FRAME_SIZE)):
        alice.receive_data(frame[:32])  # header and its MAC: nothing of the body is needed, or buffered
    assert alice.state is SessionState.ERROR


def test_a_big_frame_between_hello_and_status_is_refused() -> None:
    alice, bob = active_raw_pair()
    bob.send(0x10, bytes(BIG - 1))
    with pytest.raises(PacketTooLarge):
        alice.receive_data(bob.data_to_send()[:32])


def test_a_small_frame_inflating_past_the_limit_before_status_is_refused() -> None:
    """A frame under the limit whose snappy block inflates past it: refused on the block's size header."""
    alice, bob = active_raw_pair()
    inflated = bytes(BIG)  # zeros: snappy shrinks them to a few KiB, far below the frame limit
    compressed = compress(inflated)
    assert len(compressed) < s.HANDSHAKE_MAX_FRAME_SIZE // 8
    bob.send(0x10, compressed)
    with pytest.raises(DecompressionError, match=str(s.HANDSHAKE_MAX_FRAME_SIZE)):
        alice.receive_data(bob.data_to_send())
    assert alice.state is SessionState.ERROR


def test_the_limit_lifts_with_the_status_even_within_one_read() -> None:
    alice, bob = active_raw_pair()
    code, payload = encode_eth(STATUS68)
    bob.send(0x10 + code, compress(payload))
    big = random.Random(1).randbytes(2 * BIG)  # random bytes: snappy cannot shrink them below BIG
    bob.send(SNAP_OFFSET, compress(big))
    events = alice.receive_data(bob.data_to_send())  # both frames in one read
    assert [type(e) for e in events] == [s.StatusReceived, s.ProtocolMessageReceived]
    assert events[1].payload == big


def test_without_eth_the_limit_lifts_with_the_hello() -> None:
    alice, bob = raw_pair("snap/1")
    bob.send(*encode_p2p(hello_of(BOB_KEY, "snap/1")))
    bob.send(0x10, compress(random.Random(2).randbytes(BIG)))  # snap/1 is the only shared capability: its offset is 0x10
    events = alice.receive_data(bob.data_to_send())
    assert [type(e) for e in events] == [s.HelloReceived, s.ProtocolMessageReceived]


def test_eof_closes_the_session(eth68_pair: tuple[PeerSession, PeerSession]) -> None:
    alice, _bob = eth68_pair
    assert alice.receive_data(b"") == [s.ConnectionClosed()]
    assert alice.state is SessionState.CLOSED


# -- fuzz --------------------------------------------------------------------------------

_VALID_FRAMES = [
    (0x01, encode([4])),
    (0x02, b"\xc0"),
    (0x10, encode(STATUS68.to_rlp_item())),
    (0x13, encode([1, [b"\x00" * 32, 1, 0, 0]])),
    (0x14, encode([1, []])),
    (0x21, encode([1, b"\x00" * 32, b"\x00" * 32, b"\xff" * 32, 1000])),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_VALID_FRAMES), st.data())
def test_mutated_frames_only_wire_errors(frame: tuple[int, bytes], data: st.DataObject) -> None:
    alice, bob = active_raw_pair()
    code, payload = frame
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "code", "raw"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(payload) - 1))
        payload = payload[:i] + bytes([payload[i] ^ data.draw(st.integers(1, 255))]) + payload[i + 1:]
    elif kind == "truncate":
        payload = payload[: data.draw(st.integers(0, len(payload) - 1))]
    elif kind == "extend":
        payload += data.draw(st.binary(min_size=1, max_size=16))
    elif kind == "code":
        code = data.draw(st.integers(0, 0x40))
    compressed = compress(payload)
    if kind == "raw":  # the compressed bytes themselves damaged
        i = data.draw(st.integers(0, len(compressed) - 1))
        compressed = compressed[:i] + bytes([compressed[i] ^ 0xFF]) + compressed[i + 1:]
    bob.send(code, compressed)
    try:
        events = alice.receive_data(bob.data_to_send())
    except WireError:
        assert alice.state is SessionState.ERROR
        return
    assert len(events) == 1
