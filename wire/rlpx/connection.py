"""One RLPx connection, sans-I/O and h11-shaped: bytes in, events out; frames in, bytes out.

The caller owns the socket.  It writes :meth:`RLPxConnection.data_to_send`,
feeds every read to :meth:`RLPxConnection.receive_data` (``b""`` on EOF) and
acts on the events::

    conn = RLPxConnection.initiator(private_key, remote_pubkey)   # auth queued
    await stream.send_all(conn.data_to_send())
    for event in conn.receive_data(await stream.receive_some()):
        ...   # HandshakeCompleted, FrameReceived, ConnectionClosed

Bad input raises a :class:`~ethcrawl.wire.errors.RemoteProtocolError`
subclass out of ``receive_data`` and leaves the connection in
:attr:`ConnectionState.ERROR`, after which it accepts nothing more: the stream
can no longer be trusted, so close the socket.  Snappy and the p2p messages
live a layer up.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Iterator, Union

from ..crypto import PrivateKey
from ..errors import HandshakeError, LocalProtocolError, RemoteProtocolError
from .frame import MAX_FRAME_SIZE, MAX_UINT24, FrameCodec
from .handshake import Initiator, Recipient, ack_size, auth_size, eip8_size

__all__ = [
    "ConnectionState",
    "HandshakeCompleted",
    "FrameReceived",
    "ConnectionClosed",
    "Event",
    "RLPxConnection",
]


class ConnectionState(enum.Enum):
    AWAITING_AUTH = "awaiting auth"  # recipient, before the auth arrived
    AWAITING_ACK = "awaiting ack"  # initiator, auth queued or sent
    ESTABLISHED = "established"  # secrets derived: frames flow both ways
    CLOSED = "closed"  # the peer closed its side (EOF)
    ERROR = "error"  # the peer sent bad bytes; nothing more is accepted


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeCompleted:
    """The auth/ack exchange succeeded; ``remote_pubkey`` is the peer's 64-byte static key."""

    remote_pubkey: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameReceived:
    """One frame: message ``code`` and its ``payload`` (possibly snappy-compressed)."""

    code: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """The peer closed the stream (EOF)."""


Event = Union[HandshakeCompleted, FrameReceived, ConnectionClosed]


class RLPxConnection:
    """Handshake, then frames, for either role.  Build it with :meth:`initiator` or :meth:`recipient`."""

    def __init__(
        self,
        handshake: Initiator | Recipient,
        *,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        self._handshake = handshake
        self._max_frame_size = max_frame_size
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._codec: FrameCodec | None = None
        # EIP-8: a message starting with 0x04 is read as legacy first; once that failed it
        # can only be an EIP-8 message whose size prefix says how much more to wait for.
        self._legacy_ruled_out = False
        if isinstance(handshake, Initiator):
            self._state = ConnectionState.AWAITING_ACK
            self._outgoing += handshake.auth_message()
        else:
            self._state = ConnectionState.AWAITING_AUTH

    @classmethod
    def initiator(
        cls,
        private_key: PrivateKey,
        remote_pubkey: bytes,
        *,
        eip8: bool = True,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
        rng: random.Random | None = None,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> RLPxConnection:
        """The dialing side; the auth message is queued in :meth:`data_to_send` at once."""
        handshake = Initiator(
            private_key, remote_pubkey, eip8=eip8, ephemeral_key=ephemeral_key, nonce=nonce, rng=rng
        )
        return cls(handshake, max_frame_size=max_frame_size)

    @classmethod
    def recipient(
        cls,
        private_key: PrivateKey,
        *,
        eip8: bool | None = None,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
        rng: random.Random | None = None,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> RLPxConnection:
        """The accepting side; it answers the auth in the auth's format unless ``eip8`` forces one."""
        handshake = Recipient(private_key, eip8=eip8, ephemeral_key=ephemeral_key, nonce=nonce, rng=rng)
        return cls(handshake, max_frame_size=max_frame_size)

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def max_frame_size(self) -> int:
        """The largest frame data, in bytes, accepted from the peer (and sent).

        Settable at any time; a frame whose header has not been read yet is
        held to the new value (see :meth:`iter_events`).
        """
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, size: int) -> None:
        if size <= 0:
            raise LocalProtocolError(f"max_frame_size must be positive, got {size}")
        self._max_frame_size = size
        if self._codec is not None:
            self._codec.max_frame_size = min(size, MAX_UINT24)

    @property
    def handshake_complete(self) -> bool:
        return self._codec is not None

    @property
    def is_initiator(self) -> bool:
        return isinstance(self._handshake, Initiator)

    @property
    def remote_pubkey(self) -> bytes | None:
        """The peer's 64-byte static key: known from the start when dialing, after the auth when not."""
        return self._handshake.remote_pubkey

    def data_to_send(self) -> bytes:
        """Everything queued for the socket since the last call (possibly b"")."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def send_frame(self, code: int, payload: bytes) -> None:
        """Queue one frame; only once the handshake is done (the recipient may send right after its ack)."""
        if self._codec is None:
            raise LocalProtocolError(f"cannot send a frame in state {self._state.value!r}: handshake not done")
        if self._state is ConnectionState.ERROR:
            raise LocalProtocolError("cannot send a frame: the connection failed")
        self._outgoing += self._codec.encode_frame(code, payload)

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the socket (b"" at EOF); the events they complete, in order."""
        return list(self.iter_events(data))

    def iter_events(self, data: bytes) -> Iterator[Event]:
        """:meth:`receive_data`, one event at a time: take them all before feeding more.

        Each frame's header is read only when the event before it has been
        taken, so a caller that changes :attr:`max_frame_size` on an event
        (the session does after the peer's Status) holds the very next frame
        to the new limit, even one that arrived in the same read.
        """
        if self._state is ConnectionState.ERROR:
            raise LocalProtocolError("the connection already failed on bad input; close it")
        if self._state is ConnectionState.CLOSED:
            raise LocalProtocolError("data received after EOF")
        if not data:
            self._state = ConnectionState.CLOSED
            yield ConnectionClosed()
            return
        try:
            yield from self._receive(data)
        except RemoteProtocolError:
            self._state = ConnectionState.ERROR
            raise

    def _receive(self, data: bytes) -> Iterator[Event]:
        if self._codec is None:
            self._incoming += data
            while self._codec is None:
                message = self._take_handshake_message()
                if message is None:
                    return
                completed = self._complete_handshake(message)
                if completed is not None:
                    yield completed
            data = bytes(self._incoming)  # anything the peer sent after its handshake message
            self._incoming.clear()
        codec = self._codec
        codec.receive(data)
        while (frame := codec.next_frame()) is not None:
            yield FrameReceived(code=frame[0], payload=frame[1])

    def _take_handshake_message(self) -> bytes | None:
        """The whole auth or ack at the head of the buffer, once it is all there (EIP-8's read order)."""
        size_of = ack_size if self.is_initiator else auth_size
        buffer = bytes(self._incoming)
        size = eip8_size(buffer) if self._legacy_ruled_out else size_of(buffer)
        if size is None or len(buffer) < size:
            return None
        del self._incoming[:size]
        return buffer[:size]

    def _complete_handshake(self, message: bytes) -> HandshakeCompleted | None:
        """Process a whole auth/ack; None if it must be re-read as a longer EIP-8 message."""
        handshake = self._handshake
        try:
            if isinstance(handshake, Initiator):
                secrets = handshake.receive_ack(message)
            else:
                self._outgoing += handshake.receive_auth(message)
                assert handshake.secrets is not None
                secrets = handshake.secrets
        except HandshakeError:
            eip8_total = eip8_size(message)
            if self._legacy_ruled_out or eip8_total is None or eip8_total <= len(message):
                raise
            # A failed legacy read of a 0x04-prefixed message: wait for the EIP-8 size instead.
            self._legacy_ruled_out = True
            self._incoming[:0] = message
            return None
        self._codec = FrameCodec(secrets, max_frame_size=self._max_frame_size)
        self._state = ConnectionState.ESTABLISHED
        return HandshakeCompleted(remote_pubkey=secrets.remote_pubkey)

