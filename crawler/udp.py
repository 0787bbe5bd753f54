"""The datagram transport discovery runs on: a real UDP socket, or any stand-in.

Discovery code talks to a ``DatagramTransport`` only, so tests can run two
nodes over an in-memory network under trio's MockClock (as go-ethereum's tests
inject a ``UDPConn``), and the real socket's quirks are handled in one place.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Protocol

import trio

__all__ = ["Address", "DatagramTransport", "UDPSocket", "open_udp_socket"]

log = logging.getLogger(__name__)

Address = tuple[str, int]

RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes, SO_RCVBUF: bursts of NEIGHBORS during a crawl
MAX_DATAGRAM = 65535  # bytes; decoders enforce the protocol's own limits


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
