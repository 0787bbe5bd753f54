"""The sans-I/O devp2p peer session: Hello, capabilities, snappy, Ping/Pong,
and decoded eth messages, on top of an :class:`RLPxConnection`.

Bytes in (:meth:`PeerSession.receive_data`), typed events out; calls in
(``send_*``), bytes out (:meth:`PeerSession.data_to_send`).  What happens on
its own, as geth's ``p2p.Peer`` does it:

- once the RLPx handshake completes, our Hello is queued;
- the peer's Hello fixes the shared capabilities and their message-id
  offsets, and switches snappy on when both Hellos say version >= 5;
- a Ping is answered with a Pong (the event is still reported);
- until the peer's Hello and (when eth is shared) its Status are in, a frame
  over :data:`HANDSHAKE_MAX_FRAME_SIZE` fails the session on its header;
  then the connection's own limit applies again.

A Disconnect may come instead of, or right after, the peer's Hello; the Hello
is still reported (and stays readable as :attr:`PeerSession.remote_hello`),
because "too many peers" after a Hello still tells a crawler the client.

When the peer's bytes break the protocol, :meth:`receive_data` raises the
:class:`RemoteProtocolError` and the session is finished: events decoded
earlier in that same call are lost, but what they taught the session
(``remote_hello``, ``remote_status``, ``disconnect_reason``) stays readable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Final, TypeAlias, Union

from ..errors import (
    DecompressionError,
    HandshakeError,
    LocalProtocolError,
    RemoteProtocolError,
    UnexpectedMessage,
    UnknownPacketType,
)
from ..eth import EthMessage, Status, Status66, Status69, decode_eth, encode_eth
from ..p2p import (
    BASE_PROTOCOL_LENGTH,
    SNAPPY_MIN_VERSION,
    Disconnect,
    DisconnectReason,
    Hello,
    P2PMessage,
    Ping,
    Pong,
    SharedCapability,
    compress,
    decode_p2p,
    decompress,
    encode_p2p,
    negotiate,
)
from .connection import ConnectionClosed as _TransportClosed
from .connection import FrameReceived as _FrameReceived
from .connection import HandshakeCompleted as _TransportHandshakeCompleted
from .connection import RLPxConnection

__all__ = [
    "HANDSHAKE_MAX_FRAME_SIZE",
    "SessionState",
    "PeerSession",
    "SessionEvent",
    "HandshakeCompleted",
    "HelloReceived",
    "DisconnectReceived",
    "PingReceived",
    "PongReceived",
    "StatusReceived",
    "EthMessageReceived",
    "ProtocolMessageReceived",
    "ConnectionClosed",
]

#: bytes of frame data a peer may send before its Hello and Status are in.  A Hello is under
#: 4 KiB (a 1 KiB client id, 64 capabilities) and a Status ~150 bytes, so 64 KiB refuses no
#: real peer; the connection's 16 MiB would let each of thousands of dials buffer a frame that
#: large from a stranger who has not even said which chain it follows.
HANDSHAKE_MAX_FRAME_SIZE: Final = 64 * 1024

_HELLO_CODE: Final = Hello.code
_DISCONNECT_CODE: Final = Disconnect.code
_ETH: Final = "eth"


class SessionState(enum.Enum):
    HANDSHAKE = "handshake"  # RLPx auth/ack not done yet
    AWAITING_HELLO = "awaiting-hello"  # our Hello sent, theirs not yet seen
    ACTIVE = "active"  # both Hellos exchanged
    CLOSED = "closed"  # a Disconnect went either way, or the transport closed
    ERROR = "error"  # the peer broke the protocol; only send_disconnect, if the transport is intact


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeCompleted:
    """The RLPx handshake finished; ``remote_pubkey`` is the peer's 64-byte key."""

    remote_pubkey: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloReceived:
    """The peer's Hello, with the capabilities both sides share."""

    hello: Hello
    shared: tuple[SharedCapability, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectReceived:
    reason: DisconnectReason | int


@dataclass(frozen=True, slots=True, kw_only=True)
class PingReceived:
    """The peer pinged; the Pong is already queued."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PongReceived:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReceived:
    status: Status


@dataclass(frozen=True, slots=True, kw_only=True)
class EthMessageReceived:
    """Any eth message but Status (those come as :class:`StatusReceived`)."""

    msg: EthMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolMessageReceived:
    """A message of a shared capability other than eth; ``code`` is relative to its offset."""

    protocol: str
    version: int
    code: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """The transport reported the connection closed."""


SessionEvent: TypeAlias = Union[
    HandshakeCompleted,
    HelloReceived,
    DisconnectReceived,
    PingReceived,
    PongReceived,
    StatusReceived,
    EthMessageReceived,
    ProtocolMessageReceived,
    ConnectionClosed,
]


class PeerSession:
    """One devp2p peer, sans I/O.  ``hello`` is the Hello we send."""

    def __init__(self, connection: RLPxConnection, *, hello: Hello) -> None:
        self._conn = connection
        self._hello = hello
        # Restored once the peer's Hello and Status are in (_end_handshake_limit).
        self._max_frame_size = connection.max_frame_size
        connection.max_frame_size = min(self._max_frame_size, HANDSHAKE_MAX_FRAME_SIZE)
        self._state = SessionState.HANDSHAKE
        self._remote_pubkey: bytes | None = None
        self._remote_hello: Hello | None = None
        self._remote_status: Status | None = None
        self._disconnect_reason: DisconnectReason | int | None = None
        self._shared: tuple[SharedCapability, ...] = ()
        self._snappy = False
        self._sent_disconnect = False
        self._p2p_handlers: dict[type, Callable[[P2PMessage, list[SessionEvent]], None]] = {
            Hello: self._on_second_hello,
            Disconnect: self._on_disconnect,
            Ping: self._on_ping,
            Pong: self._on_pong,
        }

    # -- what the session knows -------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def local_hello(self) -> Hello:
        return self._hello

    @property
    def remote_pubkey(self) -> bytes | None:
        return self._remote_pubkey

    @property
    def remote_hello(self) -> Hello | None:
        return self._remote_hello

    @property
    def remote_status(self) -> Status | None:
        return self._remote_status

    @property
    def disconnect_reason(self) -> DisconnectReason | int | None:
        """The reason of the Disconnect the peer sent, if it sent one."""
        return self._disconnect_reason

    @property
    def shared_capabilities(self) -> tuple[SharedCapability, ...]:
        return self._shared

    @property
    def snappy(self) -> bool:
        """Whether message data is snappy-compressed (both Hellos at version >= 5)."""
        return self._snappy

    @property
    def eth_version(self) -> int | None:
        """The negotiated eth version, or None when eth is not shared (or no Hello yet)."""
        cap = self._capability(_ETH)
        return None if cap is None else cap.version

    def _capability(self, name: str) -> SharedCapability | None:
        for cap in self._shared:
            if cap.name == name:
                return cap
        return None

    # -- bytes in, events out ---------------------------------------------------

    def data_to_send(self) -> bytes:
        return self._conn.data_to_send()

    def receive_data(self, data: bytes) -> list[SessionEvent]:
        """Feed bytes from the peer; the events they complete, in order."""
        if self._state is SessionState.ERROR:
            raise LocalProtocolError("receive_data after the peer broke the protocol")
        events: list[SessionEvent] = []
        try:
            # One event at a time: the limit lifted on the Status holds the frame right behind it.
            for transport_event in self._conn.iter_events(data):
                if isinstance(transport_event, _TransportHandshakeCompleted):
                    self._on_handshake(transport_event.remote_pubkey, events)
                elif isinstance(transport_event, _FrameReceived):
                    self._on_frame(transport_event.code, transport_event.payload, events)
                elif isinstance(transport_event, _TransportClosed):
                    self._state = SessionState.CLOSED
                    events.append(ConnectionClosed())
        except RemoteProtocolError:
            self._state = SessionState.ERROR
            raise
        return events

    def _on_handshake(self, remote_pubkey: bytes, events: list[SessionEvent]) -> None:
        self._remote_pubkey = remote_pubkey
        events.append(HandshakeCompleted(remote_pubkey=remote_pubkey))
        if self._state is SessionState.HANDSHAKE:
            self._state = SessionState.AWAITING_HELLO
            code, payload = encode_p2p(self._hello)
            self._conn.send_frame(code, payload)  # Hello is never compressed

    def _on_frame(self, code: int, payload: bytes, events: list[SessionEvent]) -> None:
        if self._state is SessionState.CLOSED:
            return  # after a Disconnect nothing the peer says matters
        if self._state is not SessionState.ACTIVE:
            self._on_frame_before_hello(code, payload, events)
        elif code < BASE_PROTOCOL_LENGTH:
            msg = decode_p2p(code, self._inflate(code, payload))
            self._p2p_handlers[type(msg)](msg, events)
        else:
            self._on_capability_frame(code, payload, events)

    def _on_frame_before_hello(self, code: int, payload: bytes, events: list[SessionEvent]) -> None:
        # Neither Hello nor a Disconnect sent in place of it is compressed.
        if code == _DISCONNECT_CODE:
            self._on_disconnect(decode_p2p(code, payload), events)
            return
        if code != _HELLO_CODE:
            raise UnexpectedMessage(f"message {code:#x} before the peer's Hello")
        hello = decode_p2p(code, payload)
        assert isinstance(hello, Hello)
        if self._remote_pubkey is not None and hello.node_pubkey != self._remote_pubkey:
            raise HandshakeError("Hello node key differs from the key of the RLPx handshake")
        self._remote_hello = hello
        self._shared = negotiate(self._hello.capabilities, hello.capabilities)
        self._snappy = min(self._hello.protocol_version, hello.protocol_version) >= SNAPPY_MIN_VERSION
        self._state = SessionState.ACTIVE
        if self.eth_version is None:
            self._end_handshake_limit()  # no Status will come
        events.append(HelloReceived(hello=hello, shared=self._shared))

    def _end_handshake_limit(self) -> None:
        self._conn.max_frame_size = self._max_frame_size

    def _inflate(self, code: int, payload: bytes) -> bytes:
        if not self._snappy:
            return payload
        try:
            # The frame limit bounds what a message may inflate to as well: before the Status a small frame
            # could otherwise claim 16 MiB once decompressed.
            return decompress(payload, max_size=self._conn.max_frame_size)
        except DecompressionError:
            # Some clients send their last words uncompressed even after v5
            # Hellos; a Disconnect is too useful to a crawler to drop for that.
            if code == _DISCONNECT_CODE:
                return payload
            raise

    def _on_second_hello(self, msg: P2PMessage, events: list[SessionEvent]) -> None:
        raise UnexpectedMessage("second Hello from the peer")

    def _on_disconnect(self, msg: P2PMessage, events: list[SessionEvent]) -> None:
        assert isinstance(msg, Disconnect)
        self._disconnect_reason = msg.reason
        self._state = SessionState.CLOSED
        events.append(DisconnectReceived(reason=msg.reason))

    def _on_ping(self, msg: P2PMessage, events: list[SessionEvent]) -> None:
        if not self._sent_disconnect:
            self._send_p2p(Pong())
        events.append(PingReceived())

    def _on_pong(self, msg: P2PMessage, events: list[SessionEvent]) -> None:
        events.append(PongReceived())

    def _on_capability_frame(self, code: int, payload: bytes, events: list[SessionEvent]) -> None:
        cap = next((c for c in self._shared if c.offset <= code < c.offset + c.length), None)
        if cap is None:
            raise UnknownPacketType(f"message code {code:#x} is in no shared capability's range")
        relative = code - cap.offset
        data = self._inflate(code, payload)
        if cap.name != _ETH:
            events.append(ProtocolMessageReceived(protocol=cap.name, version=cap.version, code=relative, payload=data))
            return
        msg = decode_eth(relative, data, cap.version)
        if isinstance(msg, (Status66, Status69)):
            self._remote_status = msg
            self._end_handshake_limit()
            events.append(StatusReceived(status=msg))
        else:
            events.append(EthMessageReceived(msg=msg))

    # -- calls in, bytes out ----------------------------------------------------

    def _require_active(self, what: str) -> None:
        if self._state is not SessionState.ACTIVE or self._sent_disconnect:
            raise LocalProtocolError(f"cannot send {what} in state {self._state.value}"
                                     + (" after our Disconnect" if self._sent_disconnect else ""))

    def _send_frame(self, code: int, payload: bytes) -> None:
        self._conn.send_frame(code, compress(payload) if self._snappy else payload)

    def _send_p2p(self, msg: P2PMessage) -> None:
        code, payload = encode_p2p(msg)
        self._send_frame(code, payload)

    def send_ping(self) -> None:
        self._require_active("Ping")
        self._send_p2p(Ping())

    def send_disconnect(self, reason: DisconnectReason | int = DisconnectReason.DISCONNECT_REQUESTED) -> None:
        """Queue a Disconnect; allowed any time after the RLPx handshake, once."""
        if self._state is SessionState.HANDSHAKE:
            raise LocalProtocolError("cannot send Disconnect before the RLPx handshake completes")
        if self._sent_disconnect:
            raise LocalProtocolError("Disconnect already sent")
        self._sent_disconnect = True
        self._send_p2p(Disconnect(reason=reason))

    def send_status(self, status: Status) -> None:
        self.send_eth(status)

    def send_eth(self, msg: EthMessage) -> None:
        """Queue an eth message (Status included) under the negotiated offset."""
        self._require_active(msg.name)
        cap = self._capability(_ETH)
        if cap is None:
            raise LocalProtocolError("eth is not a shared capability of this session")
        code, payload = encode_eth(msg)
        if not 0 <= code < cap.length:
            raise LocalProtocolError(f"eth/{cap.version} has no message code {code:#x}")
        self._send_frame(cap.offset + code, payload)

    def send_protocol_message(self, protocol: str, code: int, payload: bytes) -> None:
        """Queue a message of another shared capability (``code`` relative, payload uncompressed)."""
        self._require_active(f"{protocol} message")
        cap = self._capability(protocol)
        if cap is None:
            raise LocalProtocolError(f"{protocol} is not a shared capability of this session")
        if not 0 <= code < cap.length:
            raise LocalProtocolError(f"{protocol}/{cap.version} has no message code {code:#x}")
        self._send_frame(cap.offset + code, payload)
