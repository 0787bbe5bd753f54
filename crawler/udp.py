"""The datagram transport discovery runs on: a real UDP socket, or any stand-in.

Discovery code talks to a ``DatagramTransport`` only, so tests can run two
nodes over an in-memory network under trio's MockClock (as go-ethereum's tests
inject a ``UDPConn``), and the real socket's quirks are handled in one place.

Both address families from one port: the default listen address ``::`` binds
one dual-stack socket (IPV6_V6ONLY off, as go-ethereum listens on ``:30303``)
rather than one socket per family, so the crawl keeps one transport, one port
and one demultiplexer.  The kernel shows IPv4 peers on it as IPv4-mapped
addresses (``::ffff:a.b.c.d``); :class:`UDPSocket` unwraps them on the way in
and maps IPv4 destinations on the way out, so everything above it sees plain
IPv4 and IPv6 text and compares, records and relays one spelling per address.
Where the machine has no IPv6, ``::`` falls back to ``0.0.0.0`` with a log line.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections import deque
from ipaddress import ip_address
from pathlib import Path
from types import TracebackType
from typing import Awaitable, Callable, Protocol

import trio

__all__ = [
    "Address",
    "DatagramTransport",
    "UDPSocket",
    "open_udp_socket",
    "bind_socket",
    "unmapped",
    "kernel_udp_drops",
    "serve_datagrams",
    "DatagramLane",
    "ProtocolDemux",
    "DUAL_STACK_HOST",
]

log = logging.getLogger(__name__)

Address = tuple[str, int]

RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes, SO_RCVBUF: bursts of NEIGHBORS during a crawl (Nebula: >= 1 MiB)
# Linux's per-socket UDP tables; their last column counts datagrams dropped for a full receive buffer.
PROC_UDP_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))
MAX_DATAGRAM = 65535  # bytes; decoders enforce the protocol's own limits
# Datagrams queued per protocol between the socket reader and the protocol's
# handler; beyond that they are dropped and counted, never block the reader
# (a flood aimed at one protocol must not starve the other).
LANE_BUFFER = 4096
# Datagrams taken from the kernel, or from a lane, per trip through trio's scheduler.  Read one at a time,
# every datagram waits a whole scheduler tick (all runnable tasks run once): measured on the dirty devnet at
# ~2,000 visits at once, v5 PONGs waited 1.4 s median on loopback and half the v5 nodes timed out.
RECEIVE_BURST = 256
DUAL_STACK_HOST = "::"  # the listen address that serves both families on one port
IPV4_ANY = "0.0.0.0"  # where a dual-stack bind falls back to on a machine without IPv6
# How the kernel spells an IPv4 peer on a dual-stack socket (RFC 4291 2.5.5.2, inet_ntop's form).
MAPPED_PREFIX = "::ffff:"
# A dual-stack socket cannot be had: no IPv6 in the kernel or on the machine, or no IPV6_V6ONLY control.
NO_IPV6_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL, errno.ENOPROTOOPT, errno.EINVAL})


class DatagramTransport(Protocol):
    local_address: Address

    async def sendto(self, data: bytes, addr: Address) -> None: ...

    async def recvfrom(self) -> tuple[bytes, Address]: ...


def unmapped(host: str) -> str:
    """``host`` as IPv4 text when it is an IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer)."""
    if host.startswith(MAPPED_PREFIX) and "." in host:
        return host[len(MAPPED_PREFIX) :]
    return host


class UDPSocket:
    """A bound trio UDP socket: send errors logged rather than raised, IPv4 peers in IPv4 spelling."""

    def __init__(self, sock: socket.socket) -> None:
        # The one socket, seen two ways: read and written directly while the kernel has data or room,
        # through trio (which waits for readiness) when it has not.
        self._raw = sock
        self._sock = trio.socket.from_stdlib_socket(sock)
        host, port = sock.getsockname()[:2]
        self.local_address: Address = (host, port)
        self._ipv6 = sock.family == socket.AF_INET6
        #: Serves IPv4 peers as well as IPv6 ones (an AF_INET6 socket with IPV6_V6ONLY off).
        self.dual_stack = self._ipv6 and not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        self.unreachable = 0  # datagrams for a family this socket cannot send to, dropped
        self._pending: deque[tuple[bytes, Address]] = deque()

    @property
    def receive_buffer(self) -> int:
        """The kernel's receive buffer for this socket, in bytes (Linux reports twice what was granted)."""
        return int(self._raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped for this socket (its receive buffer was full), or None where unknown.

        Linux counts them per socket in /proc/net/udp{,6} (the last column, found by the socket's inode).
        """
        return kernel_udp_drops(os.fstat(self._raw.fileno()).st_ino)

    def reaches(self, host: str) -> bool:
        """Whether a datagram to ``host`` (IP text) can leave this socket: its family is served."""
        if ":" in host:
            return self._ipv6
        return self.dual_stack or not self._ipv6

    async def sendto(self, data: bytes, addr: Address) -> None:
        host = addr[0]
        if not self.reaches(host):
            # Pinned to the other family (or no IPv6 here): no packet can go; the request simply times out.
            self.unreachable += 1
            log.debug("udp send skipped addr=%s:%d err=address family not served", host, addr[1])
            return
        if self._ipv6 and ":" not in host:
            # Mapped by hand: trio would resolve a bare IPv4 text through getaddrinfo on every send.
            addr = (MAPPED_PREFIX + host, addr[1])
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            try:
                self._raw.sendto(data, addr)
            except BlockingIOError:
                await self._sock.sendto(data, addr)  # the send buffer is full: wait for room, as trio does
        except OSError as exc:
            # Unreachable or filtered destinations are routine in a crawl.
            log.debug("udp send failed addr=%s:%d err=%s", host, addr[1], exc)

    async def recvfrom(self) -> tuple[bytes, Address]:
        """The next datagram.  The kernel's queue is read in bursts (see ``RECEIVE_BURST``): one scheduler
        checkpoint per burst, the burst's datagrams handed out without one."""
        while not self._pending:
            if self._take_burst():
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.wait_readable(self._raw)
        return self._pending.popleft()

    def _take_burst(self) -> int:
        """Move up to ``RECEIVE_BURST`` datagrams the kernel holds into ``_pending``; how many."""
        taken = 0
        for _ in range(RECEIVE_BURST):
            try:
                data, addr = self._raw.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionResetError:
                # An ICMP port-unreachable for an earlier send surfaces here on some systems.
                continue
            self._pending.append((data, (unmapped(addr[0]), addr[1])))
            taken += 1
        return taken

    async def __aenter__(self) -> "UDPSocket":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._raw.close()


class DatagramLane:
    """One protocol's view of a shared socket: its own inbound queue, sends go out on the shared socket."""

    def __init__(self, transport: DatagramTransport, name: str, buffer: int = LANE_BUFFER) -> None:
        self.name = name
        self._transport = transport
        self.local_address: Address = transport.local_address
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, Address]](buffer)
        self.received = 0
        self.overflowed = 0
        self._burst = 0  # datagrams handed out since this lane last went through the scheduler

    async def sendto(self, data: bytes, addr: Address) -> None:
        await self._transport.sendto(data, addr)

    async def recvfrom(self) -> tuple[bytes, Address]:
        # Queued datagrams go out without a checkpoint, up to RECEIVE_BURST in a row (as UDPSocket reads).
        if self._burst < RECEIVE_BURST:
            try:
                datagram = self._receive.receive_nowait()
            except trio.WouldBlock:
                pass
            else:
                self._burst += 1
                return datagram
        self._burst = 0
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


async def bind_socket(kind: int, host: str, port: int) -> trio.socket.SocketType:
    """A socket of ``kind`` (SOCK_DGRAM, SOCK_STREAM) bound to ``host:port``.

    ``::`` binds one dual-stack socket serving IPv4 and IPv6 on the same port;
    where that cannot be had (no IPv6 on the machine), it binds ``0.0.0.0``
    instead and says so in the log.  Any other address pins its own family.
    OSError for anything else (a port in use stays an error).
    """
    return trio.socket.from_stdlib_socket(await _bind_either(kind, host, port))


async def _bind_either(kind: int, host: str, port: int) -> socket.socket:
    if _is_unspecified_v6(host):
        try:
            return await _bind(kind, host, port, dual_stack=True)
        except OSError as exc:
            if exc.errno not in NO_IPV6_ERRNOS:
                raise
            log.warning("no IPv6 here (%s): serving IPv4 only on %s:%d", exc.strerror or exc, IPV4_ANY, port)
            host = IPV4_ANY
    return await _bind(kind, host, port, dual_stack=False)


def _is_unspecified_v6(host: str) -> bool:
    try:
        return ip_address(host) == ip_address(DUAL_STACK_HOST)
    except ValueError:
        return False


async def _bind(kind: int, host: str, port: int, *, dual_stack: bool) -> socket.socket:
    if dual_stack and not socket.has_ipv6:
        raise OSError(errno.EAFNOSUPPORT, "Python was built without IPv6")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.socket(family, kind)
    sock = trio.socket.from_stdlib_socket(raw)  # the same socket: trio's bind resolves a name without blocking
    try:
        if family == socket.AF_INET6:
            # Explicit both ways: the kernel's default (net.ipv6.bindv6only) differs between systems.
            raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        if kind == socket.SOCK_STREAM:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as trio's listeners: restart at once
        await sock.bind((host, port))
    except OSError:
        raw.close()
        raise
    return raw


async def open_udp_socket(host: str, port: int) -> UDPSocket:
    """A UDP socket on ``host:port`` (``::``: both families, see :func:`bind_socket`), its receive buffer enlarged."""
    sock = await _bind_either(socket.SOCK_DGRAM, host, port)
    _enlarge_receive_buffer(sock)
    return UDPSocket(sock)


def _enlarge_receive_buffer(sock: socket.socket, size: int = RECEIVE_BUFFER) -> None:
    """Ask for ``size`` bytes; past the kernel's cap (net.core.rmem_max), force it where we may (root on Linux).

    Linux grants SO_RCVBUF only up to rmem_max (often 208 KiB), too small for a crawl's bursts of answers;
    SO_RCVBUFFORCE ignores the cap but needs CAP_NET_ADMIN.  Whatever is granted is logged.
    """
    for option in (socket.SO_RCVBUF, getattr(socket, "SO_RCVBUFFORCE", None)):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        except OSError:  # not permitted, or no such option here
            continue
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= size:
            break
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if granted < size:
        log.info(
            "udp receive buffer is %d bytes, less than the %d asked (raise net.core.rmem_max to avoid drops)",
            granted, size,
        )


def kernel_udp_drops(inode: int, tables: tuple[Path, ...] = PROC_UDP_TABLES) -> int | None:
    """The kernel's drop count for the UDP socket with ``inode``, from /proc/net/udp{,6}; None where unreadable."""
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            if len(fields) >= 13 and fields[9] == str(inode):
                return int(fields[-1])
    return None


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
