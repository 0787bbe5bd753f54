"""One sans-I/O PeerSession driven over one trio stream.

The dialer, the inbound listener and the devnet's virtual nodes all need the
same loop: send what the session queued, read, feed, and hand out the
session's events in order.  Automatic replies (the Pong to a Ping) leave as
soon as they are queued.
"""

from __future__ import annotations

from collections import deque

import trio

from ethcrawl.wire.rlpx.session import ConnectionClosed, PeerSession, SessionEvent

__all__ = ["SessionStream", "READ_SIZE"]

READ_SIZE = 65536  # bytes per receive


class SessionStream:
    def __init__(self, stream: trio.abc.Stream, session: PeerSession) -> None:
        self.stream = stream
        self.session = session
        self._pending: deque[SessionEvent] = deque()

    async def flush(self) -> None:
        """Write whatever the session has queued."""
        data = self.session.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def next_event(self) -> SessionEvent:
        """The next session event; ConnectionClosed once the peer has closed (call no further)."""
        while not self._pending:
            await self.flush()
            data = bytes(await self.stream.receive_some(READ_SIZE))
            self._pending.extend(self.session.receive_data(data))
            if not data and not self._pending:
                self._pending.append(ConnectionClosed())
        await self.flush()
        return self._pending.popleft()
