"""The crawl's frontier: nodes waiting for a visit, the most likely alive first.

Most records a crawl of the real network hears of are stale: the node is gone,
or sits behind a NAT and never answers, and each costs a visit that waits out
its timeouts.  A record that several peers return is far more likely alive
than one a single peer remembers (stale entries linger in few tables), and a
seed was chosen by the user.  Visiting in that order makes the useful part of
the network known early, so that ``--duration`` cuts the least valuable tail.

A node's priority only rises (one more peer returned it); it is pushed again
then, and the older heap entry is skipped when it comes up.  Such stale entries
(up to RETURNS_THAT_COUNT per node) are swept out whenever they outnumber the
waiting ones, so they neither hold memory nor outlive the crawl's frontier.  Ties keep the
order of discovery, so a network where every node is returned equally often
is walked breadth-first, as before.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import count
from typing import Generic, TypeVar

__all__ = ["Frontier", "RETURNS_THAT_COUNT", "SEED_PRIORITY"]

# Returns by distinct peers that still raise a node's priority: past a handful, a record is as good as confirmed,
# and a cap keeps a popular node (a bootnode every table holds) from being re-pushed at every answer.
RETURNS_THAT_COUNT = 8
# Seeds go first: the user named them (bootnodes, --from-db, DNS lists).
SEED_PRIORITY = RETURNS_THAT_COUNT + 1
# The heap is rebuilt without its stale entries once it holds more than this many times the waiting items (plus a
# few, so a small frontier is not swept at every push): ~140 bytes an entry, and a 3,000-node crawl left ~2.9 stale
# entries per node behind (BENCHMARKS.md, bytes per known node).  A sweep is linear; pushes between two are at least
# as many as the entries it drops, so its cost per push stays constant.
STALE_SWEEP_FACTOR = 2
STALE_SWEEP_SLACK = 64  # entries

T = TypeVar("T")


@dataclass(order=True, slots=True)
class _Entry(Generic[T]):
    key: tuple[int, int]
    item: T = field(compare=False)


class Frontier(Generic[T]):
    """A priority queue of items to visit; each item is queued at most once at a time (``push`` again to raise it)."""

    def __init__(self) -> None:
        self._heap: list[_Entry[T]] = []
        self._queued: dict[int, int] = {}  # id(item) -> its current priority, for items waiting
        self._order = count()

    def __len__(self) -> int:
        return len(self._queued)

    def __bool__(self) -> bool:
        return bool(self._queued)

    def push(self, item: T, priority: int) -> None:
        """Queue ``item`` (or raise its priority if it waits already; a lower one is ignored)."""
        current = self._queued.get(id(item))
        if current is not None and current >= priority:
            return
        self._queued[id(item)] = priority
        heapq.heappush(self._heap, _Entry((-priority, next(self._order)), item))
        if len(self._heap) > STALE_SWEEP_FACTOR * len(self._queued) + STALE_SWEEP_SLACK:
            self._sweep()

    def pop(self) -> T:
        """The waiting item of highest priority (the earliest queued among equals); IndexError when empty."""
        while self._heap:
            entry = heapq.heappop(self._heap)
            if self._queued.get(id(entry.item)) == -entry.key[0]:
                del self._queued[id(entry.item)]
                return entry.item
        raise IndexError("pop from an empty frontier")

    def waiting(self, item: T) -> bool:
        return id(item) in self._queued

    def _sweep(self) -> None:
        """Drop the entries of items that were pushed again since (or popped): only current ones stay."""
        queued = self._queued
        self._heap = [entry for entry in self._heap if queued.get(id(entry.item)) == -entry.key[0]]
        heapq.heapify(self._heap)
