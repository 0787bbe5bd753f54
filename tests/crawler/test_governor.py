"""The visit limit (``governor.Governor``): pure, fed the event loop's lag, whether visits waited, the crawl's CPU
share and the answers that came late."""

from __future__ import annotations

import pytest

from ethcrawl.crawler.governor import CPU_LIMIT, LAG_LIMIT, Governor

IDLE = 0.1  # a CPU share with room on the core


def test_it_widens_while_visits_wait_and_the_loop_keeps_up_up_to_the_ceiling() -> None:
    governor = Governor(floor=256, ceiling=2048)
    assert governor.limit == 256 and not governor.fixed
    limits = [governor.adjust(lag=0.001, backlogged=True, cpu_share=IDLE, late_answers=0) for _ in range(8)]
    assert limits[:3] == [384, 576, 864] and limits[-1] == 2048
    # nothing waiting: no reason to move
    assert governor.adjust(lag=0.0, backlogged=False, cpu_share=IDLE, late_answers=0) == 2048


def test_it_narrows_when_the_loop_runs_late_never_below_the_floor() -> None:
    governor = Governor(floor=256, ceiling=2048, limit=1024)
    # late wins over waiting visits, whatever the share (a machine that gives us little CPU)
    assert governor.adjust(lag=LAG_LIMIT * 2, backlogged=True, cpu_share=IDLE, late_answers=0) == 716
    for _ in range(10):
        governor.adjust(lag=1.0, backlogged=True, cpu_share=IDLE, late_answers=0)
    assert governor.limit == 256


def test_a_saturated_core_stops_the_widening_though_visits_wait() -> None:
    """The measured failure (BENCHMARKS.md, 30,000 records): every slot busy, the loop under LAG_LIMIT late, the
    core saturated; the limit used to widen to its ceiling."""
    for share in (CPU_LIMIT, 0.97, 1.0, 1.3):  # above 1.0: threads ran beside the loop (C code without the GIL)
        governor = Governor(floor=256, ceiling=2048, limit=512)
        for _ in range(10):
            governor.adjust(lag=0.01, backlogged=True, cpu_share=share, late_answers=0)
        assert governor.limit == 512, share


def test_a_saturated_core_with_a_late_loop_or_late_answers_narrows_to_the_floor() -> None:
    governor = Governor(floor=256, ceiling=2048, limit=1024)
    assert governor.adjust(lag=LAG_LIMIT * 2, backlogged=True, cpu_share=0.95, late_answers=0) == 716
    assert governor.adjust(lag=0.01, backlogged=True, cpu_share=0.95, late_answers=3) == 501
    for _ in range(5):
        governor.adjust(lag=0.01, backlogged=False, cpu_share=1.0, late_answers=1)
    assert governor.limit == 256


def test_late_answers_on_a_core_with_room_are_the_peers_not_ours() -> None:
    """A slow peer answers after its window once (then its window fits its round trip): no reason to narrow."""
    governor = Governor(floor=256, ceiling=2048, limit=512)
    assert governor.adjust(lag=0.01, backlogged=True, cpu_share=0.5, late_answers=20) == 768


def test_widening_slows_down_near_the_cpu_limit_and_settles_there() -> None:
    """Steps are sized to bring the share to CPU_LIMIT, not past it, if the share grew with the limit; fed a share
    that does (plus work that does not scale), the limit stops just past the CPU's limit and stays."""
    per_slot, fixed = 0.0004, 0.05  # a core saturates at (CPU_LIMIT - fixed) / per_slot = 2,125 slots
    governor = Governor(floor=256, ceiling=8192)
    limits = []
    for _ in range(30):
        share = fixed + per_slot * governor.limit
        limits.append(governor.adjust(lag=0.01, backlogged=True, cpu_share=share, late_answers=0))
    assert limits[:2] == [384, 576]  # far from the limit: STEP_UP
    assert limits[-1] == limits[-10]  # settled
    assert 2125 <= limits[-1] < 2125 * 1.1, limits
    assert all(fixed + per_slot * limit < 1.0 for limit in limits)  # never stepped past a whole core


def test_late_answers_at_the_cpu_limit_swing_it_by_one_step_down_not_to_the_floor() -> None:
    """Answers that keep coming late while the core is saturated: one step down, then back up in steps sized to
    the share; the limit stays within 0.7x-1x of the CPU's limit."""
    per_slot = 0.0005  # a core saturated (CPU_LIMIT) at 1,800 slots
    governor = Governor(floor=256, ceiling=8192, limit=2000)
    limits = []
    for _ in range(40):
        share = per_slot * governor.limit
        limits.append(governor.adjust(lag=0.01, backlogged=True, cpu_share=share, late_answers=5))
    assert min(limits[5:]) >= 1800 * 0.7 - 1 and max(limits[5:]) <= 1800 * 1.01, limits


def test_a_fixed_limit_and_bad_bounds() -> None:
    governor = Governor(floor=64, ceiling=64)
    assert governor.fixed and governor.adjust(lag=0.0, backlogged=True, cpu_share=IDLE, late_answers=0) == 64
    assert governor.adjust(lag=1.0, backlogged=True, cpu_share=1.0, late_answers=9) == 64
    with pytest.raises(ValueError):
        Governor(floor=0, ceiling=10)
    with pytest.raises(ValueError):
        Governor(floor=20, ceiling=10)
