"""The datagram transport discovery runs on: a real UDP socket, or any stand-in.

Discovery code talks to a ``DatagramTransport`` only, so tests can run two
nodes over an in-memory network under trio's MockClock (as go-ethereum's tests
inject a ``UDPConn``), and the real socket's quirks are handled in one place.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Awaitable, Callable, Protocol

import trio

__all__ = ["Address", "DatagramTransport", "UDPSocket", "open_udp_socket", "serve_datagrams", "DatagramLane", "ProtocolDemux"]

log = logging.getLogger(__name__)

Address = tuple[str, int]

RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes, SO_RCVBUF: bursts of NEIGHBORS during a crawl
MAX_DATAGRAM = 65535  # bytes; decoders enforce the protocol's own limits
# Datagrams queued per protocol between the socket reader and the protocol's
# handler; beyond that they are dropped and counted, never block the reader
# (a flood aimed at one protocol must not starve the other).
LANE_BUFFER = 4096


class DatagramTransport(Protocol):
    local_address: Address

    async def sendto(self, data: bytes, addr: Address) -> None: ...

    async def recvfrom(self) -> tuple[bytes, Address]: ...


class UDPSocket:
    """A bound trio UDP socket with send errors logged rather than raised."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.local_address: Address = (host, port)

    async def sendto(self, data: bytes, addr: Address) -> None:
        try:
            await self._sock.sendto(data, addr)
        except OSError as exc:
            # Unreachable or filtered destinations are routine in a crawl.
            log.debug("udp send failed addr=%s:%d err=%s", addr[0], addr[1], exc)

    async def recvfrom(self) -> tuple[bytes, Address]:
        while True:
            try:
                data, addr = await self._sock.recvfrom(MAX_DATAGRAM)
            except ConnectionResetError:
                # An ICMP port-unreachable for an earlier send surfaces here on some systems.
                continue
            return data, (addr[0], addr[1])

    async def __aenter__(self) -> "UDPSocket":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._sock.close()


class DatagramLane:
    """One protocol's view of a shared socket: its own inbound queue, sends go out on the shared socket."""

    def __init__(self, transport: DatagramTransport, name: str, buffer: int = LANE_BUFFER) -> None:
        self.name = name
        self._transport = transport
        self.local_address: Address = transport.local_address
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, Address]](buffer)
        self.received = 0
        self.overflowed = 0

    async def sendto(self, data: bytes, addr: Address) -> None:
        await self._transport.sendto(data, addr)

    async def recvfrom(self) -> tuple[bytes, Address]:
        return await self._receive.receive()

    def deliver(self, data: bytes, addr: Address) -> None:
        self.received += 1
        try:
            self._send.send_nowait((data, addr))
        except trio.WouldBlock:
            self.overflowed += 1
            log.debug("udp lane %s full, datagram from %s:%d dropped", self.name, addr[0], addr[1])


class ProtocolDemux:
    """Splits one UDP socket between discovery v4 and v5, as go-ethereum does.

    Every datagram that ``is_v4`` accepts goes to :attr:`v4`, all others to
    :attr:`v5`; each protocol reads its lane like a socket of its own.  Run
    :meth:`run` in a nursery next to the two protocol tasks.  A protocol
    nobody serves (``serve_v5=False``) gets a lane without a queue: its
    datagrams are counted and dropped.
    """

    def __init__(
        self,
        transport: DatagramTransport,
        is_v4: Callable[[bytes], bool],
        buffer: int = LANE_BUFFER,
        *,
        serve_v4: bool = True,
        serve_v5: bool = True,
    ) -> None:
        self._transport = transport
        self._is_v4 = is_v4
        self.local_address: Address = transport.local_address
        self.v4 = DatagramLane(transport, "v4", buffer if serve_v4 else 0)
        self.v5 = DatagramLane(transport, "v5", buffer if serve_v5 else 0)

    async def run(self) -> None:
        while True:
            data, addr = await self._transport.recvfrom()
            (self.v4 if self._is_v4(data) else self.v5).deliver(data, addr)


async def open_udp_socket(host: str, port: int) -> UDPSocket:
    family = trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET
    sock = trio.socket.socket(family, trio.socket.SOCK_DGRAM)
    try:
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError:  # some kernels cap it; not fatal
        log.debug("could not enlarge the UDP receive buffer")
    try:
        await sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return UDPSocket(sock)


async def serve_datagrams(
    transport: DatagramTransport | None, host: str, port: int, serve: Callable[[DatagramTransport], Awaitable[None]]
) -> None:
    """Run ``serve`` on ``transport``, or on a UDP socket bound to ``host:port`` (closed afterwards) if there is none.

    How every discovery service starts: tests and shared sockets hand in a
    transport, a stand-alone node binds its own.
    """
    if transport is not None:
        await serve(transport)
        return
    async with await open_udp_socket(host, port) as socket:
        await serve(socket)
