"""wire.lru.LRU: bounded, forgets the least recently used entry."""

from __future__ import annotations

import pytest

from ethcrawl.wire.errors import LocalProtocolError
from ethcrawl.wire.lru import LRU


def test_forgets_the_least_recently_used() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.set("a", 1)
    lru.set("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.set("c", 3)
    assert "b" not in lru and "a" in lru and "c" in lru and len(lru) == 2
    assert sorted(lru.values()) == [1, 3]
    assert lru.pop("a") == 1 and lru.pop("a") is None and len(lru) == 1


def test_refuses_a_limit_below_one() -> None:
    with pytest.raises(LocalProtocolError):
        LRU(0)
