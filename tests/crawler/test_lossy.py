"""The devnet's slow, lossy link: loss rates, delays within bounds, one sender's order kept, one task for all.

Everything on trio's MockClock over an in-memory transport that notes when
each datagram really left.
"""

from __future__ import annotations

import random

import pytest
import trio
from trio.testing import MockClock

from ethcrawl.crawler.lossy import DelayLine, LinkProfile, LossyTransport

Address = tuple[str, int]
PEER: Address = ("127.0.0.1", 9)


class Wire:
    """An inner transport: notes (time, data) of every send; ``inbox`` feeds recvfrom."""

    def __init__(self, port: int = 1) -> None:
        self.local_address: Address = ("127.0.0.1", port)
        self.sent: list[tuple[float, bytes]] = []
        self.inbox_send, self._inbox = trio.open_memory_channel[tuple[bytes, Address]](100_000)

    async def sendto(self, data: bytes, addr: Address) -> None:
        self.sent.append((trio.current_time(), data))

    async def recvfrom(self) -> tuple[bytes, Address]:
        return await self._inbox.receive()


async def _start(nursery: trio.Nursery) -> DelayLine:
    line = DelayLine()
    await nursery.start(line.run)
    return line


async def test_loss_rate_both_directions(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    wire = Wire()
    link = LossyTransport(wire, await _start(nursery), LinkProfile(loss=0.1), random.Random(1))
    for i in range(5000):
        await link.sendto(i.to_bytes(4, "big"), PEER)
        wire.inbox_send.send_nowait((i.to_bytes(4, "big"), PEER))
    received = 0
    with trio.move_on_after(1):
        while True:
            await link.recvfrom()
            received += 1
    assert 0.08 < link.dropped_out / 5000 < 0.12 and len(wire.sent) == 5000 - link.dropped_out
    assert 0.08 < link.dropped_in / 5000 < 0.12 and received == 5000 - link.dropped_in


async def test_delays_stay_within_the_round_trip_and_its_jitter(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    wire = Wire()
    link = LossyTransport(wire, await _start(nursery), LinkProfile(rtt=0.1, jitter=0.5), random.Random(2))
    sent_at = {}
    for i in range(200):
        sent_at[i] = trio.current_time()
        await link.sendto(i.to_bytes(4, "big"), PEER)
        await trio.sleep(0.013)
    await trio.sleep(1)
    assert len(wire.sent) == 200
    delays = [at - sent_at[int.from_bytes(data, "big")] for at, data in wire.sent]
    assert all(0.1 - 1e-9 <= d <= 0.15 + 0.013 + 1e-9 for d in delays)  # jitter, or waiting for an earlier one
    assert max(delays) > 0.13 and min(delays) < 0.11  # the jitter does spread them
    # One sender's datagrams leave in the order it sent them, jitter or not.
    assert [int.from_bytes(data, "big") for _, data in wire.sent] == list(range(200))


async def test_one_line_orders_many_senders_by_due_time(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    line = await _start(nursery)
    slow_wire, fast_wire = Wire(1), Wire(2)
    slow = LossyTransport(slow_wire, line, LinkProfile(rtt=0.3), random.Random(3))
    fast = LossyTransport(fast_wire, line, LinkProfile(rtt=0.05), random.Random(4))
    await slow.sendto(b"slow", PEER)
    await fast.sendto(b"fast", PEER)  # due before the head of the line: the sender must wake early
    await trio.sleep(0.06)
    assert [d for _, d in fast_wire.sent] == [b"fast"] and slow_wire.sent == []
    await trio.sleep(0.3)
    assert slow_wire.sent[0][0] == pytest.approx(0.3)
    assert fast_wire.sent[0][0] == pytest.approx(0.05)
    assert line.sent == 2 and len(line) == 0


async def test_a_closed_link_sends_nothing_more(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    wire = Wire()
    link = LossyTransport(wire, await _start(nursery), LinkProfile(rtt=0.2), random.Random(5))
    await link.sendto(b"late", PEER)
    link.close()
    await trio.sleep(1)
    assert wire.sent == []


async def test_no_delay_sends_at_once_without_the_line(autojump_clock: MockClock) -> None:
    wire = Wire()
    line = DelayLine()  # never started: nothing may wait on it
    link = LossyTransport(wire, line, LinkProfile(), random.Random(6))
    await link.sendto(b"now", PEER)
    assert wire.sent == [(trio.current_time(), b"now")] and len(line) == 0


def test_bad_links_are_refused() -> None:
    for bad in ({"rtt": -1.0}, {"loss": 1.5}, {"jitter": -0.1}):
        with pytest.raises(ValueError):
            LinkProfile(**bad)  # type: ignore[arg-type]
