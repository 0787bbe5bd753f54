"""How many peers the crawl visits at once: wider while visits wait on the network, back when the CPU is the limit.

Most visits of a real network wait out timeouts on dead records, and a slot
waiting costs nothing: the wider the pipe, the sooner the crawl ends, until
the CPU is the limit (one core handles about 1,000 discv4 exchanges a second,
BENCHMARKS.md).  Past that point more visits at once do harm: answers queue
in the socket while the event loop is busy, their windows expire, and live
peers look dead.  So the crawl measures, once a ``PERIOD``: the event loop's
lag, whether visits waited while every slot was busy, the crawl process's CPU
share (CPU seconds used over wall seconds of the period) and the answers that
came after their window.  Loop lag alone does not show a saturated core when
most tasks wait on timers (at 30,000 and 100,000 records it stayed under
``LAG_LIMIT`` with the core saturated, and the limit went to its ceiling), so
the CPU share gates widening.  The rule, in order:

* the event loop late by more than ``LAG_LIMIT``: the CPU is the limit (ours,
  or the share of it the machine gives us, which our CPU share cannot show:
  a process starved by others uses little CPU), narrow (``STEP_DOWN``);
* the CPU share at or above ``CPU_LIMIT`` and answers came late: the
  saturated core made them wait in the socket, narrow (``STEP_DOWN``);
* the CPU share at or above ``CPU_LIMIT`` otherwise: hold, even with visits
  waiting (the core has no room for more);
* every slot busy, visits waiting, and room on the core: the pipe is the
  limit, widen by ``STEP_UP``, or by less when the share is near
  ``CPU_LIMIT``: by ``CPU_LIMIT / share``, the step that would bring the share
  to ``CPU_LIMIT`` if it grew with the limit (it grows slower: the part of
  the work that does not scale with the visits, and the slots that only wait,
  make the step err short);
* else hold.  Never below the floor (``--concurrency``) nor above the ceiling.

It settles near the CPU's limit: widening slows down as the share nears
``CPU_LIMIT`` and stops there, and a saturated period without late answers
holds.  Answers that keep coming late at the limit swing it between about 0.7x
and 1x of it (one ``STEP_DOWN``, then steps back up sized to the share), not
between the floor and the ceiling.

Pure: the engine measures and calls :meth:`Governor.adjust`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CPU_LIMIT", "LAG_LIMIT", "PERIOD", "STEP_DOWN", "STEP_UP", "Governor", "cpu_saturated"]

PERIOD = 1.0  # s between two adjustments: several round trips of most peers, so a change shows
# s the event loop may run late before the CPU counts as the limit: a tenth of geth's 0.5 s window, so
# answers that wait this long in the socket still arrive well inside it.
LAG_LIMIT = 0.05
# The crawl's CPU share (CPU s per wall s) at which its core counts as saturated.  The event loop runs on one core
# at a time (the GIL), so 1.0 is the most it can use; a datagram waits for the loop like a customer for a busy
# server, roughly busy / (1 - busy) service times: 9 at 0.9, 19 at 0.95, without bound near 1.0.  0.9 keeps that
# wait short while leaving the crawl most of the core.
CPU_LIMIT = 0.9
STEP_UP = 1.5  # a dirty network needs 4-8x the floor (BENCHMARKS.md): a few periods get there
STEP_DOWN = 0.7  # one step down about undoes one step up (1.5 x 0.7 = 1.05): it settles near the CPU's limit


def cpu_saturated(cpu_share: float) -> bool:
    """Whether a period's CPU share leaves the core no room (the one definition the stats count too)."""
    return cpu_share >= CPU_LIMIT


@dataclass(slots=True)
class Governor:
    """The visit limit between ``floor`` and ``ceiling``, adjusted once a period."""

    floor: int
    ceiling: int
    limit: int = 0  # 0: start at the floor

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, not {self.floor}..{self.ceiling}")
        self.limit = min(max(self.limit or self.floor, self.floor), self.ceiling)

    @property
    def fixed(self) -> bool:
        return self.floor == self.ceiling

    def adjust(self, *, lag: float, backlogged: bool, cpu_share: float, late_answers: int) -> int:
        """The new limit after a period whose event loop ran ``lag`` s late, with (or without) visits waiting
        while every slot was busy, in which the crawl used ``cpu_share`` of a core and ``late_answers`` answers
        came after their window."""
        saturated = cpu_saturated(cpu_share)
        if lag > LAG_LIMIT or (saturated and late_answers > 0):
            self.limit = max(self.floor, int(self.limit * STEP_DOWN))
        elif backlogged and not saturated:
            step = STEP_UP if cpu_share * STEP_UP <= CPU_LIMIT else CPU_LIMIT / cpu_share
            self.limit = min(self.ceiling, math.ceil(self.limit * step))
        return self.limit
