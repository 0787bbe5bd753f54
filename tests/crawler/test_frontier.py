"""crawler.frontier: the most likely alive first, ties in discovery order, stale entries skipped."""

from __future__ import annotations

import pytest

from ethcrawl.crawler.frontier import Frontier


class Item:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def drain(frontier: Frontier[Item]) -> list[str]:
    return [frontier.pop().name for _ in range(len(frontier))]


def test_higher_priority_first_and_ties_in_the_order_queued() -> None:
    frontier: Frontier[Item] = Frontier()
    for name, priority in (("a", 0), ("b", 2), ("c", 0), ("d", 2), ("e", 1)):
        frontier.push(Item(name), priority)
    assert len(frontier) == 5 and frontier
    assert drain(frontier) == ["b", "d", "e", "a", "c"]
    assert not frontier and len(frontier) == 0
    with pytest.raises(IndexError):
        frontier.pop()


def test_raising_a_waiting_item_moves_it_up_once() -> None:
    frontier: Frontier[Item] = Frontier()
    a, b, c = Item("a"), Item("b"), Item("c")
    for item in (a, b, c):
        frontier.push(item, 0)
    frontier.push(c, 3)  # a third peer returned c
    frontier.push(c, 1)  # a lower priority never lowers it
    assert len(frontier) == 3 and frontier.waiting(c)
    assert drain(frontier) == ["c", "a", "b"]  # c once, though the heap held it three times


def test_an_item_can_be_queued_again_after_its_visit() -> None:
    frontier: Frontier[Item] = Frontier()
    a, b = Item("a"), Item("b")
    frontier.push(a, 0)
    frontier.push(a, 2)
    assert frontier.pop() is a and not frontier.waiting(a)
    frontier.push(b, 1)
    frontier.push(a, 0)  # e.g. its record arrived later: visit it again over v5
    assert drain(frontier) == ["b", "a"]


def test_stale_entries_are_swept_and_the_order_is_kept() -> None:
    frontier: Frontier[Item] = Frontier()
    items = [Item(str(i)) for i in range(200)]
    for item in items:
        frontier.push(item, 0)
    # Every item returned by eight more peers: eight pushes each, seven of them leaving a stale entry behind.
    for priority in range(1, 9):
        for item in items[:100]:
            frontier.push(item, priority)
    assert len(frontier) == 200
    assert len(frontier._heap) <= 2 * 200 + 64  # 1,000 entries without the sweep
    # The raised ones first (in the order queued), then the rest; nothing lost, nothing twice.
    assert drain(frontier) == [str(i) for i in range(200)]
