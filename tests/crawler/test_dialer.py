"""The RLPx dialer against in-process peers on 127.0.0.1, one per outcome.

Each peer is our own sans-I/O PeerSession behind a trio TCP listener, told to
behave one way (answer fully, refuse with too-many-peers, speak no eth, stay
silent, send garbage); the dialer must classify each attempt and keep what it
learned.  Interop with an independent implementation is in tests/interop.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from ipaddress import ip_address
from typing import AsyncIterator, Awaitable, Callable

import pytest
import trio
from ipv6 import needs_ipv6

from ethcrawl.crawler import dialer
from ethcrawl.crawler.dialer import DialConfig, Outcome, dial, local_hello, serve_session
from ethcrawl.crawler.session_stream import READ_SIZE
from ethcrawl.wire import rlpcodec
from ethcrawl.wire.crypto import PrivateKey, generate_private_key, pubkey_from_private
from ethcrawl.wire.enode import Node
from ethcrawl.wire.eth import BlockHeader, BlockHeaders, GetBlockHeaders, Status66
from ethcrawl.wire.forkid import ForkId
from ethcrawl.wire.p2p import Capability, DisconnectReason, Hello
from ethcrawl.wire.rlpx import session as events
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.frame import MAX_FRAME_SIZE, MAX_UINT24
from ethcrawl.wire.rlpx.session import HANDSHAKE_MAX_FRAME_SIZE, PeerSession

FAST = DialConfig(connect_timeout=2, handshake_timeout=1, status_timeout=1, header_timeout=1)
NOW = 1_700_000_000
GENESIS = bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3")
HEAD = b"\x11" * 32
STATUS = Status66(version=68, network_id=1, td=2**70, head=HEAD, genesis=GENESIS, fork_id=ForkId(hash=bytes.fromhex("c376cf8b"), next=0))
CLIENT_ID = "Geth/v1.14.11-stable-f3c696fa/linux-amd64/go1.23.2"


def header(number: int, timestamp: int) -> BlockHeader:
    fields: list[object] = [b"\x00" * 32] * 8
    fields += [number, 30_000_000, 0, timestamp, b"", b"\x00" * 32, b"\x00" * 8]
    item = rlpcodec.decode(rlpcodec.encode(fields))
    return BlockHeader.from_rlp_item(item)


Behaviour = Callable[[trio.SocketStream, PeerSession], Awaitable[None]]


_pending: dict[int, list[object]] = {}


async def until(stream: trio.SocketStream, session: PeerSession, kind: type) -> object:
    """The next event of ``kind``; events read on the way are consumed in order, none dropped."""
    queue = _pending.setdefault(id(session), [])
    while True:
        while queue:
            event = queue.pop(0)
            if isinstance(event, kind):
                return event
            if isinstance(event, events.ConnectionClosed):
                raise EOFError
        await stream.send_all(session.data_to_send())
        data = await stream.receive_some(65536)
        queue.extend(session.receive_data(bytes(data)) if data else [events.ConnectionClosed()])
        out = session.data_to_send()
        if out:
            await stream.send_all(out)


async def full_peer(stream: trio.SocketStream, session: PeerSession) -> None:
    await until(stream, session, events.HelloReceived)
    session.send_status(STATUS)
    await until(stream, session, events.StatusReceived)
    request = await until(stream, session, events.EthMessageReceived)
    assert isinstance(request, events.EthMessageReceived) and isinstance(request.msg, GetBlockHeaders)
    session.send_eth(BlockHeaders(request_id=request.msg.request_id, headers=(header(20_000_000, NOW - 12),)))
    await until(stream, session, events.DisconnectReceived)


async def too_many_peers(stream: trio.SocketStream, session: PeerSession) -> None:
    await until(stream, session, events.HelloReceived)
    session.send_disconnect(DisconnectReason.TOO_MANY_PEERS)
    await stream.send_all(session.data_to_send())


async def not_eth(stream: trio.SocketStream, session: PeerSession) -> None:
    await until(stream, session, events.DisconnectReceived)


async def silent(stream: trio.SocketStream, session: PeerSession) -> None:
    await trio.sleep_forever()


async def garbage(stream: trio.SocketStream, session: PeerSession) -> None:
    await stream.receive_some(65536)
    await stream.send_all(b"\x00\x10" + b"\xff" * 400)
    await trio.sleep(5)


async def stale_head(stream: trio.SocketStream, session: PeerSession) -> None:
    await until(stream, session, events.HelloReceived)
    session.send_status(STATUS)
    await until(stream, session, events.StatusReceived)
    request = await until(stream, session, events.EthMessageReceived)
    assert isinstance(request, events.EthMessageReceived) and isinstance(request.msg, GetBlockHeaders)
    session.send_eth(BlockHeaders(request_id=request.msg.request_id, headers=(header(100, NOW - 86_400 * 30),)))
    await until(stream, session, events.DisconnectReceived)


@pytest.fixture
async def peer(nursery: trio.Nursery) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    async def start(
        behaviour: Behaviour, caps: tuple[Capability, ...] = (Capability(name="eth", version=68),), host: str | None = None
    ) -> Node:
        key = generate_private_key()

        async def handler(stream: trio.SocketStream) -> None:
            hello = Hello(protocol_version=5, client_id=CLIENT_ID, capabilities=caps, listen_port=0, node_pubkey=pubkey_from_private(key))
            session = PeerSession(RLPxConnection.recipient(key), hello=hello)
            try:
                await behaviour(stream, session)
            except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                await stream.aclose()

        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host=host))
        port = listeners[0].socket.getsockname()[1]
        return Node(pubkey=pubkey_from_private(key), ip=ip_address(host or "127.0.0.1"), udp=port, tcp=port)

    yield start


async def run_dial(node: Node) -> object:
    with trio.fail_after(10):
        return await dial(node, generate_private_key(), config=FAST, wall_clock=lambda: float(NOW))


async def test_full_exchange(peer) -> None:  # type: ignore[no-untyped-def]
    node = await peer(full_peer)
    result = await run_dial(node)
    assert result.outcome is Outcome.OK, result.error
    assert result.hello.client_id == CLIENT_ID
    assert result.client.name == "geth" and result.client.version.startswith("1.14.11")
    assert result.remote_pubkey == node.pubkey
    assert result.eth_version == 68
    assert result.status == STATUS
    assert result.head_number == 20_000_000
    assert result.synced is True


@needs_ipv6
async def test_an_ipv6_endpoint_is_dialed_over_ipv6(peer) -> None:  # type: ignore[no-untyped-def]
    node = await peer(full_peer, host="::1")  # listening on IPv6 loopback only
    result = await run_dial(node)
    assert result.outcome is Outcome.OK, result.error
    assert result.remote_pubkey == node.pubkey and result.synced is True


async def test_stale_head_is_not_synced(peer) -> None:  # type: ignore[no-untyped-def]
    result = await run_dial(await peer(stale_head))
    assert result.outcome is Outcome.OK
    assert result.head_number == 100
    assert result.synced is False


async def test_hello_is_kept_when_too_many_peers_follows(peer) -> None:  # type: ignore[no-untyped-def]
    result = await run_dial(await peer(too_many_peers))
    assert result.outcome is Outcome.TOO_MANY_PEERS
    assert result.disconnect_reason == DisconnectReason.TOO_MANY_PEERS
    assert result.hello is not None and result.hello.client_id == CLIENT_ID
    assert result.status is None


async def test_no_shared_eth_is_not_eth(peer) -> None:  # type: ignore[no-untyped-def]
    result = await run_dial(await peer(not_eth, caps=(Capability(name="snap", version=1),)))
    assert result.outcome is Outcome.NOT_ETH
    assert result.hello.client_id == CLIENT_ID
    assert result.eth_version is None


async def test_silent_peer_times_out(peer) -> None:  # type: ignore[no-untyped-def]
    result = await run_dial(await peer(silent))
    assert result.outcome is Outcome.TIMEOUT
    assert result.hello is None


async def test_garbage_is_a_protocol_error(peer) -> None:  # type: ignore[no-untyped-def]
    result = await run_dial(await peer(garbage))
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert result.error


async def test_closed_port_is_refused() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # bound then closed: nothing listens there
    node = Node(pubkey=pubkey_from_private(generate_private_key()), ip=ip_address("127.0.0.1"), udp=port, tcp=port)
    result = await run_dial(node)
    assert result.outcome is Outcome.REFUSED


async def test_inbound_session_is_served_and_classified(nursery: trio.Nursery) -> None:
    """Our recipient side (``--listen``): a peer dials us; we record its Hello and Status."""
    ours = generate_private_key()
    results: list[object] = []

    async def handler(stream: trio.SocketStream) -> None:
        session = PeerSession(RLPxConnection.recipient(ours), hello=local_hello(ours))
        results.append(await serve_session(stream, session, node_id=bytes(32), direction="inbound", config=FAST))

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    port = listeners[0].socket.getsockname()[1]
    theirs = generate_private_key()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    hello = Hello(protocol_version=5, client_id=CLIENT_ID, capabilities=(Capability(name="eth", version=68),), listen_port=0, node_pubkey=pubkey_from_private(theirs))
    session = PeerSession(RLPxConnection.initiator(theirs, pubkey_from_private(ours)), hello=hello)
    with trio.fail_after(10):
        await until(stream, session, events.HelloReceived)
        session.send_status(STATUS)
        status = await until(stream, session, events.StatusReceived)
        assert isinstance(status, events.StatusReceived) and status.status == STATUS  # mirrored back
        try:
            await until(stream, session, events.DisconnectReceived)
        except EOFError:
            pass
        while not results:
            await trio.sleep(0.01)
    result = results[0]
    assert result.outcome is Outcome.OK
    assert result.direction == "inbound"
    assert result.remote_pubkey == pubkey_from_private(theirs)
    assert result.hello.client_id == CLIENT_ID
    assert result.status == STATUS


# ---------------------------------------------------------------- whatever raises: one outcome, stream closed

OFF_CURVE_KEY = b"\x07" * 64  # 64 bytes that no secp256k1 public key encodes


async def test_off_curve_key_is_a_protocol_error_and_opens_no_connection(nursery: trio.Nursery) -> None:
    accepted: list[trio.SocketStream] = []

    async def handler(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    port = listeners[0].socket.getsockname()[1]
    node = Node(pubkey=OFF_CURVE_KEY, ip=ip_address("127.0.0.1"), udp=port, tcp=port)
    result = await run_dial(node)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert "secp256k1" in (result.error or "")
    assert result.node_id == node.node_id and result.direction == "outbound"
    await trio.sleep(0.2)  # a connection, had one been opened, would have reached the handler by now
    assert accepted == []


class FakeStream(trio.abc.Stream):
    """A stream whose receive_some raises ``error``; notes whether it was closed."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.closed = False
        self.sent = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += data

    async def wait_send_all_might_not_block(self) -> None:
        pass

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        raise self.error

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("error", "outcome", "says"),
    [
        (ValueError("a bug of ours"), Outcome.PROTOCOL_ERROR, "ValueError: a bug of ours"),
        (LookupError("another"), Outcome.PROTOCOL_ERROR, "LookupError: another"),
        (trio.BrokenResourceError("gone"), Outcome.RESET, "gone"),
        (ConnectionResetError(104, "reset by peer"), Outcome.RESET, "reset by peer"),
    ],
)
async def test_any_exception_in_a_session_is_one_outcome_and_the_stream_is_closed(
    error: Exception, outcome: Outcome, says: str
) -> None:
    key = generate_private_key()
    session = PeerSession(
        RLPxConnection.initiator(key, pubkey_from_private(generate_private_key())), hello=local_hello(key)
    )
    stream = FakeStream(error)
    with trio.fail_after(5):
        result = await serve_session(stream, session, node_id=bytes(32), direction="outbound", config=FAST)
    assert result.outcome is outcome
    assert says in (result.error or "")
    assert stream.closed
    assert stream.sent  # the auth went out before the read failed


async def test_unexpected_error_after_connect_closes_the_tcp_connection(
    peer, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """A real loopback dial whose session code raises something unforeseen once the ack arrives."""
    peer_saw_eof = trio.Event()

    async def waits_for_eof(stream: trio.SocketStream, session: PeerSession) -> None:
        try:
            await until(stream, session, events.HelloReceived)
        except EOFError:
            peer_saw_eof.set()

    node = await peer(waits_for_eof)

    class BrokenSession(PeerSession):
        def receive_data(self, data: bytes) -> list[events.SessionEvent]:
            raise RuntimeError("session bug")

    monkeypatch.setattr(dialer, "PeerSession", BrokenSession)  # the dialer's sessions only, not the peer's
    result = await run_dial(node)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert result.error == "RuntimeError: session bug"
    with trio.fail_after(5):
        await peer_saw_eof.wait()


# ---------------------------------------------------------------- a huge frame before the Hello

class CountingStream(trio.abc.Stream):
    """Wraps the dialer's TCP stream to count what it reads."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.received = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.received += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_16_mib_frame_header_before_hello_ends_the_dial_at_once(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_private_key()
    ack_sizes: list[int] = []
    body_sent = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        conn = RLPxConnection.recipient(key, max_frame_size=MAX_FRAME_SIZE)
        while not conn.handshake_complete:
            conn.receive_data(bytes(await stream.receive_some(65536)))
        ack = conn.data_to_send()
        ack_sizes.append(len(ack))
        await stream.send_all(ack)
        conn.send_frame(0x00, bytes(MAX_UINT24 - 1))  # msg-id byte + payload: 2**24 - 1 bytes announced
        frame = conn.data_to_send()
        try:
            await stream.send_all(frame[:32])  # the header and its MAC ...
            await stream.send_all(frame[32 : 32 + 1024 * 1024])  # ... and 1 MiB of the body, never the rest
            body_sent.set()
            await trio.sleep_forever()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the dialer hung up, as it should
        finally:
            await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    port = listeners[0].socket.getsockname()[1]
    streams: list[CountingStream] = []
    real_open = trio.open_tcp_stream

    async def counting_open(host: str, port: int) -> CountingStream:
        streams.append(CountingStream(await real_open(host, port)))
        return streams[-1]

    monkeypatch.setattr(trio, "open_tcp_stream", counting_open)
    node = Node(pubkey=pubkey_from_private(key), ip=ip_address("127.0.0.1"), udp=port, tcp=port)
    slow = replace(FAST, handshake_timeout=30)  # so that only the size check, not a timeout, can end it
    with trio.fail_after(10):
        result = await dial(node, generate_private_key(), config=slow, wall_clock=lambda: float(NOW))
    assert result.outcome is Outcome.PROTOCOL_ERROR, result.error
    assert "PacketTooLarge" in (result.error or "") and str(HANDSHAKE_MAX_FRAME_SIZE) in (result.error or "")
    # Decided on the header: at most one read past the ack, never the megabyte behind it.
    assert streams[0].received <= ack_sizes[0] + READ_SIZE


def test_our_client_id_reads_the_package_metadata_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dial's Hello carries our client id; importlib.metadata parses files per call (8% of a crawl's CPU)."""
    calls: list[str] = []

    def counting_version(name: str) -> str:
        calls.append(name)
        return "9.9.9"

    monkeypatch.setattr(dialer, "version", counting_version)
    dialer.client_id_string.cache_clear()
    try:
        ids = {local_hello(generate_private_key()).client_id for _ in range(50)}
    finally:
        dialer.client_id_string.cache_clear()
    assert calls == ["ethcrawl"]
    (only,) = ids
    assert only.startswith("ethcrawl/v9.9.9/")
