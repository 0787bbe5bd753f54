"""A slow, lossy datagram transport: the internet between a devnet node and whoever asks it.

:class:`LossyTransport` wraps a node's ``DatagramTransport`` (``udp.py``), so
the discovery code above it is untouched: each datagram in either direction
is dropped with probability ``loss``, and each one the node sends leaves after
the node's round trip plus up to ``jitter`` of it.  Delaying only what the
node sends puts the whole round trip on the answer, where a crawler feels it.

Delays do not cost a task per packet: every transport of a devnet hands its
datagrams to one :class:`DelayLine`, a heap ordered by due time that one task
drains.  A node's datagrams leave in the order it sent them (jitter never
reorders one sender's packets: a Pong still precedes the Ping-back that
follows it, as on most real paths).
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass

import trio

from .udp import Address, DatagramTransport

__all__ = ["DelayLine", "LinkProfile", "LossyTransport"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkProfile:
    """One node's path to the world."""

    rtt: float = 0.0  # s added to every datagram the node sends
    jitter: float = 0.0  # extra delay per datagram: uniform in 0..jitter * rtt
    loss: float = 0.0  # probability a datagram is dropped, each direction

    def __post_init__(self) -> None:
        if self.rtt < 0 or self.jitter < 0 or not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"a link needs rtt >= 0, jitter >= 0 and loss within 0..1, not {self}")


@dataclass(order=True, slots=True)
class _Due:
    at: float
    seq: int  # ties leave in the order they were scheduled
    transport: LossyTransport
    data: bytes
    addr: Address


class DelayLine:
    """Datagrams due later, sent by one task: start :meth:`run` in a nursery, then schedule from anywhere."""

    def __init__(self) -> None:
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._earlier = trio.Event()  # set when a datagram due before the current head arrives
        self.sent = 0

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, at: float, transport: LossyTransport, data: bytes, addr: Address) -> None:
        due = _Due(at, next(self._seq), transport, data, addr)
        if not self._heap or due < self._heap[0]:
            self._earlier.set()
        heapq.heappush(self._heap, due)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._earlier = trio.Event()
            if not self._heap:
                await self._earlier.wait()
                continue
            head = self._heap[0]
            if head.at > trio.current_time():
                with trio.move_on_at(head.at):
                    await self._earlier.wait()
                continue
            heapq.heappop(self._heap)
            self.sent += 1
            await head.transport.send_now(head.data, head.addr)


class LossyTransport:
    """``inner`` with loss both ways and a delay on the way out; counts what it dropped."""

    def __init__(self, inner: DatagramTransport, line: DelayLine, link: LinkProfile, rng: random.Random) -> None:
        self._inner = inner
        self._line = line
        self.link = link
        self._rng = rng
        self.local_address: Address = inner.local_address
        self._last_due = float("-inf")  # when our latest datagram leaves: later ones never overtake it
        self.dropped_in = 0
        self.dropped_out = 0
        self.closed = False

    async def sendto(self, data: bytes, addr: Address) -> None:
        if self._rng.random() < self.link.loss:
            self.dropped_out += 1
            return
        delay = self.link.rtt * (1.0 + self._rng.uniform(0.0, self.link.jitter))
        if delay <= 0:
            await self.send_now(data, addr)
            return
        self._last_due = max(trio.current_time() + delay, self._last_due)
        self._line.schedule(self._last_due, self, data, addr)

    async def recvfrom(self) -> tuple[bytes, Address]:
        while True:
            data, addr = await self._inner.recvfrom()
            if self._rng.random() < self.link.loss:
                self.dropped_in += 1
                continue
            return data, addr

    async def send_now(self, data: bytes, addr: Address) -> None:
        """Send at once (the delay line calls this when a datagram is due); nothing once closed."""
        if self.closed:
            return
        try:
            await self._inner.sendto(data, addr)
        except trio.ClosedResourceError:  # the node left while this was on the line
            self.closed = True

    def close(self) -> None:
        """Drop whatever is still on the line for us: the node is gone."""
        self.closed = True
