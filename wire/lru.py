"""A bounded mapping that forgets the least recently used entry: caches and per-peer bookkeeping.

Anything keyed by what peers send us (node ids, addresses, nonces) must be
bounded, or a peer inventing fresh keys grows it without end.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import LocalProtocolError

__all__ = ["LRU"]

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A dict of at most ``limit`` entries that forgets the least recently set or read one."""

    __slots__ = ("_data", "_limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise LocalProtocolError(f"an LRU holds at least 1 entry, not {limit}")
        self._data: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def set(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._limit:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def values(self) -> Iterator[V]:
        return iter(self._data.values())

    def __len__(self) -> int:
        return len(self._data)
