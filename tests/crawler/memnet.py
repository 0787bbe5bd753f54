"""An in-memory datagram network for discovery tests under trio's MockClock.

Each endpoint is a ``DatagramTransport``; datagrams to unknown addresses are
dropped, as UDP would, and a full receive queue drops too.  ``drop`` lets a
test lose packets on purpose.
"""

from __future__ import annotations

from typing import Callable

import trio

Address = tuple[str, int]


class MemoryNetwork:
    def __init__(self) -> None:
        self.endpoints: dict[Address, MemoryEndpoint] = {}
        self.drop: Callable[[bytes, Address, Address], bool] = lambda data, src, dst: False
        self.sent: list[tuple[Address, Address, bytes]] = []
        self._next_port = 30000

    def open(self, host: str = "127.0.0.1", port: int = 0) -> "MemoryEndpoint":
        if not port:
            self._next_port += 1
            port = self._next_port
        endpoint = MemoryEndpoint(self, (host, port))
        self.endpoints[(host, port)] = endpoint
        return endpoint

    def open_dual(self, v4: Address, v6: Address) -> "MemoryEndpoint":
        """One endpoint at an IPv4 and an IPv6 address, as a dual-stack socket: it sends from the destination's family."""
        endpoint = MemoryEndpoint(self, v4, ipv6_address=v6)
        self.endpoints[v4] = self.endpoints[v6] = endpoint
        return endpoint


class MemoryEndpoint:
    def __init__(self, network: MemoryNetwork, address: Address, ipv6_address: Address | None = None) -> None:
        self.network = network
        self.local_address = address
        self._ipv6_address = ipv6_address
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, Address]](1024)

    async def sendto(self, data: bytes, addr: Address) -> None:
        source = self._ipv6_address if self._ipv6_address is not None and ":" in addr[0] else self.local_address
        self.network.sent.append((source, addr, data))
        target = self.network.endpoints.get(addr)
        if target is None or self.network.drop(data, source, addr):
            return
        try:
            target._send.send_nowait((data, source))
        except trio.WouldBlock:
            pass

    async def recvfrom(self) -> tuple[bytes, Address]:
        return await self._receive.receive()


async def collect_records(receive: trio.MemoryReceiveChannel[object]) -> list[object]:
    """Every record the crawl engine sent until the channel closed, as the writer takes them.

    The engine sends a record, or a list of the records one answer made (one channel send per answer).
    """
    records: list[object] = []
    async for item in receive:
        records.extend(item if isinstance(item, list) else [item])
    return records
