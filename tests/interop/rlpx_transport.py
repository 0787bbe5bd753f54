"""A minimal trio transport for one sans-I/O ``PeerSession`` over a TCP stream, for the interop tests.

Deliberately small: it writes whatever the session has queued, feeds it every chunk read, and keeps
every session event it produced so a test can wait for one kind and then look at all of them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from ethcrawl.wire.rlpx.session import ConnectionClosed, PeerSession

READ_SIZE = 65536  # bytes per receive_some: a whole RLPx frame of a Status or Hello fits many times
EVENT_TIMEOUT = 10.0  # s: default wait for one session event

E = TypeVar("E")


class SessionStream:
    """Drives ``session`` over ``stream``; ``seen`` holds every session event in arrival order."""

    def __init__(self, session: PeerSession, stream: trio.abc.Stream) -> None:
        self.session = session
        self.stream = stream
        self.seen: list[Any] = []
        self._unread: list[Any] = []
        self.closed = False

    async def flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def _read_more(self) -> None:
        try:
            data = bytes(await self.stream.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        events = self.session.receive_data(data)
        if not data and not any(isinstance(event, ConnectionClosed) for event in events):
            # The session owns the protocol; the transport only guarantees EOF is never missed.
            events = [*events, ConnectionClosed()]
        self.seen.extend(events)
        self._unread.extend(events)
        if any(isinstance(event, ConnectionClosed) for event in events):
            self.closed = True
        else:
            # The session answers some messages itself (our Hello after the handshake, Pong for Ping).
            await self.flush()

    async def next_event(self, timeout: float = EVENT_TIMEOUT) -> Any:
        with trio.fail_after(timeout):
            while not self._unread:
                if self.closed:
                    raise EOFError("the connection is closed and every event was read")
                await self._read_more()
        return self._unread.pop(0)

    async def wait_for(self, kind: type[E], timeout: float = EVENT_TIMEOUT) -> E:
        """The next event of type ``kind``; AssertionError naming what came instead if the stream ends."""
        with trio.fail_after(timeout):
            while True:
                try:
                    event = await self.next_event(timeout=timeout)
                except EOFError:
                    raise AssertionError(
                        f"connection closed before {kind.__name__}; session events: {self.seen}"
                    ) from None
                if isinstance(event, kind):
                    return event

    async def aclose(self) -> None:
        await self.stream.aclose()
