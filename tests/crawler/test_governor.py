"""The visit limit (``governor.Governor``): pure, fed the event loop's lag and whether visits waited."""

from __future__ import annotations

import pytest

from ethcrawl.crawler.governor import LAG_LIMIT, Governor


def test_it_widens_while_visits_wait_and_the_loop_keeps_up_up_to_the_ceiling() -> None:
    governor = Governor(floor=256, ceiling=2048)
    assert governor.limit == 256 and not governor.fixed
    limits = [governor.adjust(lag=0.001, backlogged=True) for _ in range(8)]
    assert limits[:3] == [384, 576, 864] and limits[-1] == 2048
    assert governor.adjust(lag=0.0, backlogged=False) == 2048  # nothing waiting: no reason to move


def test_it_narrows_when_the_loop_runs_late_never_below_the_floor() -> None:
    governor = Governor(floor=256, ceiling=2048, limit=1024)
    assert governor.adjust(lag=LAG_LIMIT * 2, backlogged=True) == 716  # late wins over waiting visits
    for _ in range(10):
        governor.adjust(lag=1.0, backlogged=True)
    assert governor.limit == 256


def test_a_fixed_limit_and_bad_bounds() -> None:
    governor = Governor(floor=64, ceiling=64)
    assert governor.fixed and governor.adjust(lag=0.0, backlogged=True) == 64
    with pytest.raises(ValueError):
        Governor(floor=0, ceiling=10)
    with pytest.raises(ValueError):
        Governor(floor=20, ceiling=10)
