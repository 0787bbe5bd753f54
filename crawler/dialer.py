"""The RLPx dialer: learn a node's client id and chain Status over TCP.

One dial = connect, EIP-8 handshake, Hello both ways, and when eth is shared a
Status exchange (ours mirrors the peer's network, genesis and fork id so that a
node of any network talks to us), then a request for the peer's head header to
tell whether it is synced, then a polite Disconnect.  Every attempt ends in
exactly one typed :class:`Outcome`, and whatever was learned before the end
(e.g. a Hello followed by "too many peers") is kept.

The protocol work is done by the sans-I/O ``PeerSession``; this module only
moves bytes between it and a trio stream, with a deadline per phase.
"""

from __future__ import annotations

import enum
import functools
import logging
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Awaitable, Callable

import trio

from ethcrawl.wire.clientid import ClientId, parse_client_id
from ethcrawl.wire.crypto import PrivateKey, is_valid_pubkey, pubkey_from_private
from ethcrawl.wire.enode import Node
from ethcrawl.wire.errors import WireError
from ethcrawl.wire.eth import BlockHeaders, GetBlockHeaders, Status
from ethcrawl.wire.p2p import Capability, DisconnectReason, Hello
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx import session as rlpx_session
from ethcrawl.wire.rlpx.session import PeerSession, SessionEvent

from .session_stream import SessionStream

__all__ = [
    "CONNECT_TIMEOUT", "SILENT_CONNECT_TIMEOUT", "Outcome", "DialResult", "DialConfig", "dial", "serve_session",
    "local_hello", "client_id_string",
]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0  # s, TCP connect
# s, TCP connect to a record that never answered discovery in this crawl.  Most such records are stale (nothing
# listens: the SYN is dropped or refused) or behind NAT (the SYN is dropped), and each dial waits out its connect
# timeout: 20,000 of them at 64 dials at once and 5 s each add ~26 minutes after discovery ends.  A TCP connect is one
# round trip (the longest real paths are ~0.3-0.4 s), and Linux sends an unanswered SYN again after 1 s
# (TCP_TIMEOUT_INIT): 2 s covers one lost SYN on any real path.  A live node that answered keeps CONNECT_TIMEOUT.
SILENT_CONNECT_TIMEOUT = 2.0
HANDSHAKE_TIMEOUT = 5.0  # s, auth/ack and both Hellos (geth: handshakeTimeout 5 s)
STATUS_TIMEOUT = 5.0  # s, the eth Status after Hello
HEADER_TIMEOUT = 5.0  # s, the head header answer
DISCONNECT_GRACE = 1.0  # s, to flush our Disconnect before closing
# A node whose head block is older than this is not synced (mainnet makes a block every 12 s).
SYNCED_HEAD_AGE = 3600.0  # s

# We speak eth/68 (and every newer version our wire layer decodes) and snap/1.
OUR_CAPABILITIES = (Capability(name="eth", version=68), Capability(name="eth", version=69), Capability(name="snap", version=1))


class Outcome(str, enum.Enum):
    """How a dial ended (db/records.py OUTCOMES holds the same strings).

    ``protocol-error`` also covers a node key that is no curve point (never
    dialed) and any error no other outcome names; ``DialResult.error`` says which.
    """

    OK = "ok"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"
    TOO_MANY_PEERS = "too-many-peers"
    USELESS_PEER = "useless-peer"
    DISCONNECT_OTHER = "disconnect-other"
    PROTOCOL_ERROR = "protocol-error"
    NOT_ETH = "not-eth"


@dataclass(frozen=True, slots=True, kw_only=True)
class DialConfig:
    connect_timeout: float = CONNECT_TIMEOUT
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    status_timeout: float = STATUS_TIMEOUT
    header_timeout: float = HEADER_TIMEOUT
    synced_head_age: float = SYNCED_HEAD_AGE


@dataclass(frozen=True, slots=True, kw_only=True)
class DialResult:
    """Everything one RLPx attempt learned, whatever its outcome."""

    node_id: bytes
    direction: str  # "outbound" or "inbound"
    started_at: float  # unix seconds
    outcome: Outcome
    error: str | None = None
    disconnect_reason: int | None = None
    remote_pubkey: bytes | None = None
    hello: Hello | None = None
    client: ClientId | None = None
    capabilities: tuple[Capability, ...] = ()
    eth_version: int | None = None
    status: Status | None = None
    head_number: int | None = None
    head_time: int | None = None
    synced: bool | None = None


@functools.cache
def client_id_string() -> str:
    """``ethcrawl/v<version>/<os>-<arch>/python<x.y>`` like other clients' ids.

    Once per process: ``importlib.metadata.version`` reads and parses the package's metadata files each call,
    and every dial's Hello carries this (8% of a 3,000-node crawl's CPU samples went there).
    """
    try:
        ours = version("ethcrawl")
    except PackageNotFoundError:  # running from a source tree without install
        ours = "0.0.0"
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    return f"ethcrawl/v{ours}/{sys.platform}-{machine}/python{sys.version_info.major}.{sys.version_info.minor}"


def local_hello(private_key: PrivateKey, *, listen_port: int = 0) -> Hello:
    return Hello(
        protocol_version=5,
        client_id=client_id_string(),
        capabilities=OUR_CAPABILITIES,
        listen_port=listen_port,
        node_pubkey=pubkey_from_private(private_key),
    )


def _classify_disconnect(reason: int) -> Outcome:
    if reason == DisconnectReason.TOO_MANY_PEERS:
        return Outcome.TOO_MANY_PEERS
    if reason == DisconnectReason.USELESS_PEER:
        return Outcome.USELESS_PEER
    return Outcome.DISCONNECT_OTHER


def _classify_os_error(exc: OSError) -> Outcome:
    # trio.open_tcp_stream wraps the per-address errors in an ExceptionGroup cause.
    causes: list[BaseException] = [exc]
    if isinstance(exc.__cause__, BaseExceptionGroup):
        causes += list(exc.__cause__.exceptions)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return Outcome.REFUSED
    if any(isinstance(c, TimeoutError) for c in causes):
        return Outcome.TIMEOUT
    return Outcome.RESET


@dataclass(eq=False)
class _Progress:
    """What a dial has learned so far; turned into a DialResult at the end."""

    hello: Hello | None = None
    remote_pubkey: bytes | None = None
    status: Status | None = None
    head_number: int | None = None
    head_time: int | None = None
    disconnect_reason: int | None = None
    capabilities: tuple[Capability, ...] = ()
    eth_version: int | None = None
    events: list[object] = field(default_factory=list)


class _Exchange(SessionStream):
    """A SessionStream that notes what the dial learns as events go by."""

    def __init__(self, stream: trio.abc.Stream, session: PeerSession, progress: _Progress) -> None:
        super().__init__(stream, session)
        self.progress = progress

    async def next_event(self) -> SessionEvent:
        event = await super().next_event()
        self._note(event)
        return event

    def _note(self, event: object) -> None:
        p = self.progress
        if isinstance(event, rlpx_session.HandshakeCompleted):
            p.remote_pubkey = event.remote_pubkey
        elif isinstance(event, rlpx_session.HelloReceived):
            p.hello = event.hello
            p.capabilities = tuple(event.hello.capabilities)
            p.eth_version = self.session.eth_version
        elif isinstance(event, rlpx_session.StatusReceived):
            p.status = event.status
        elif isinstance(event, rlpx_session.DisconnectReceived):
            p.disconnect_reason = int(event.reason)


class _Ended(Exception):
    """The exchange ended early with this outcome."""

    def __init__(self, outcome: Outcome, error: str | None = None) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome
        self.error = error


async def _wait_for(exchange: _Exchange, kind: type, timeout: float) -> object:
    """Next event of ``kind``; a Disconnect or EOF on the way ends the exchange."""
    with trio.fail_after(timeout):
        while True:
            event = await exchange.next_event()
            if isinstance(event, kind):
                return event
            if isinstance(event, rlpx_session.DisconnectReceived):
                raise _Ended(_classify_disconnect(int(event.reason)))
            if isinstance(event, rlpx_session.ConnectionClosed):
                raise _Ended(Outcome.RESET, "connection closed by peer")


def mirror_status(theirs: Status) -> Status:
    """A Status the peer cannot reject: its own network, genesis and fork id."""
    return theirs


async def _eth_exchange(exchange: _Exchange, config: DialConfig, wall_clock: Callable[[], float]) -> None:
    status_event = await _wait_for(exchange, rlpx_session.StatusReceived, config.status_timeout)
    assert isinstance(status_event, rlpx_session.StatusReceived)
    exchange.session.send_status(mirror_status(status_event.status))
    await exchange.flush()
    head = status_event.status.head_hash
    request = GetBlockHeaders(request_id=1, origin=head, amount=1, skip=0, reverse=False)
    exchange.session.send_eth(request)
    await exchange.flush()
    # The Status is what we came for; a missing or refused header only leaves "synced" unknown.
    try:
        with trio.fail_after(config.header_timeout):
            while True:
                event = await _wait_for(exchange, rlpx_session.EthMessageReceived, config.header_timeout)
                assert isinstance(event, rlpx_session.EthMessageReceived)
                msg = event.msg
                if isinstance(msg, BlockHeaders) and msg.request_id == 1:
                    if msg.headers:
                        exchange.progress.head_number = msg.headers[0].number
                        exchange.progress.head_time = msg.headers[0].timestamp
                    return
    except (trio.TooSlowError, _Ended) as exc:
        log.debug("no head header node=%s why=%r", exchange.progress.remote_pubkey, exc)
        return


async def run_exchange(
    stream: trio.abc.Stream,
    session: PeerSession,
    progress: _Progress,
    config: DialConfig,
    wall_clock: Callable[[], float],
) -> Outcome:
    """Handshake, Hello, Status and head header over an open stream; the outcome."""
    exchange = _Exchange(stream, session, progress)
    await exchange.flush()
    await _wait_for(exchange, rlpx_session.HelloReceived, config.handshake_timeout)
    if session.eth_version is None:
        session.send_disconnect(DisconnectReason.USELESS_PEER)
        await exchange.flush()
        return Outcome.NOT_ETH
    await _eth_exchange(exchange, config, wall_clock)
    session.send_disconnect(DisconnectReason.CLIENT_QUITTING)
    await exchange.flush()
    return Outcome.OK


def _result(
    node_id: bytes,
    direction: str,
    started_at: float,
    outcome: Outcome,
    progress: _Progress,
    config: DialConfig,
    wall_clock: Callable[[], float],
    error: str | None = None,
) -> DialResult:
    synced: bool | None = None
    if progress.head_time is not None:
        synced = wall_clock() - progress.head_time <= config.synced_head_age
    hello = progress.hello
    return DialResult(
        node_id=node_id,
        direction=direction,
        started_at=started_at,
        outcome=outcome,
        error=error,
        disconnect_reason=progress.disconnect_reason,
        remote_pubkey=progress.remote_pubkey,
        hello=hello,
        client=parse_client_id(hello.client_id) if hello is not None else None,
        capabilities=progress.capabilities,
        eth_version=progress.eth_version,
        status=progress.status,
        head_number=progress.head_number,
        head_time=progress.head_time,
        synced=synced,
    )


async def serve_session(
    stream: trio.abc.Stream,
    session: PeerSession,
    *,
    node_id: bytes,
    direction: str,
    config: DialConfig = DialConfig(),
    wall_clock: Callable[[], float] = time.time,
) -> DialResult:
    """Run one RLPx exchange over an open stream (either direction) and classify it."""
    started = wall_clock()
    progress = _Progress()
    try:
        outcome, error = await _outcome_of(run_exchange(stream, session, progress, config, wall_clock), node_id)
    finally:
        # Whatever ended the exchange, even a cancellation, the stream is ours to close.
        with trio.move_on_after(DISCONNECT_GRACE) as cleanup:
            cleanup.shield = True
            try:
                await stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
    # A Hello followed by a Disconnect before our Status still tells the client;
    # an OK with a Disconnect after our Status is still OK.
    return _result(node_id, direction, started, outcome, progress, config, wall_clock, error)


async def _outcome_of(exchange: Awaitable[Outcome], node_id: bytes) -> tuple[Outcome, str | None]:
    """Run ``exchange``; whatever it raises (but a cancellation) becomes a typed outcome and its error text."""
    try:
        return await exchange, None
    except _Ended as ended:
        return ended.outcome, ended.error
    except trio.TooSlowError:
        return Outcome.TIMEOUT, "timed out"
    except WireError as exc:
        # LocalProtocolError included: our side refusing the peer's bytes ends this dial, not the crawl.
        return Outcome.PROTOCOL_ERROR, f"{type(exc).__name__}: {exc}"
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        return Outcome.RESET, str(exc) or "connection broken"
    except OSError as exc:
        return _classify_os_error(exc), str(exc)
    except Exception as exc:
        # A bug of ours, most likely, that some peer's bytes reached: one line at warning, so it gets
        # fixed, and the traceback at debug; a crawl of thousands of dials must not die of one.
        log.warning("dial ended by an unexpected error node=%s err=%s: %s", node_id.hex()[:16], type(exc).__name__, exc)
        log.debug("unexpected dial error node=%s", node_id.hex()[:16], exc_info=True)
        return Outcome.PROTOCOL_ERROR, f"{type(exc).__name__}: {exc}"


async def dial(
    node: Node,
    private_key: PrivateKey,
    *,
    config: DialConfig = DialConfig(),
    wall_clock: Callable[[], float] = time.time,
    listen_port: int = 0,
) -> DialResult:
    """Dial ``node`` over RLPx and learn what it tells; never raises for network or peer trouble.

    Exactly one :class:`DialResult` per call; a connection it opens is closed before it returns.
    """
    started = wall_clock()

    def ended(outcome: Outcome, error: str) -> DialResult:
        return DialResult(node_id=node.node_id, direction="outbound", started_at=started, outcome=outcome, error=error)

    if node.ip is None or not node.tcp:
        return ended(Outcome.REFUSED, "no TCP endpoint")
    if not is_valid_pubkey(node.pubkey):
        # Whoever handed us this key lied; no handshake can be built for it, so nothing is opened.
        return ended(Outcome.PROTOCOL_ERROR, "node key is not a secp256k1 point: not dialed")
    # Built before connecting: what raises here has no socket to leak.
    connection = RLPxConnection.initiator(private_key, node.pubkey, eip8=True)
    session = PeerSession(connection, hello=local_hello(private_key, listen_port=listen_port))
    try:
        with trio.fail_after(config.connect_timeout):
            stream = await trio.open_tcp_stream(str(node.ip), node.tcp)
    except trio.TooSlowError:
        return ended(Outcome.TIMEOUT, "connect timed out")
    except OSError as exc:
        return ended(_classify_os_error(exc), str(exc))
    result = await serve_session(stream, session, node_id=node.node_id, direction="outbound", config=config, wall_clock=wall_clock)
    return replace(result, started_at=started)
