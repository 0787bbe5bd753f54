"""How many peers the crawl visits at once: wider while visits wait on the network, back when the CPU is the limit.

Most visits of a real network wait out timeouts on dead records, and a slot
waiting costs nothing: the wider the pipe, the sooner the crawl ends, until
the CPU is the limit (one core handles about 1,000 discv4 exchanges a second,
BENCHMARKS.md).  Past that point more visits at once do harm: answers queue
in the socket while the event loop is busy, their windows expire, and live
peers look dead.  So the crawl measures both and adapts, once a ``PERIOD``:

* every slot busy and visits waiting: the pipe is the limit, widen it
  (``STEP_UP``), up to the ceiling;
* the event loop late by more than ``LAG_LIMIT``: the CPU is the limit (ours,
  or the share of it the machine gives us), narrow it (``STEP_DOWN``), never
  below the floor (the configured ``--concurrency``).

Pure: the engine measures and calls :meth:`Governor.adjust`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LAG_LIMIT", "PERIOD", "STEP_DOWN", "STEP_UP", "Governor"]

PERIOD = 1.0  # s between two adjustments: several round trips of most peers, so a change shows
# s the event loop may run late before the CPU counts as the limit: a tenth of geth's 0.5 s window, so
# answers that wait this long in the socket still arrive well inside it.
LAG_LIMIT = 0.05
STEP_UP = 1.5  # a dirty network needs 4-8x the floor (BENCHMARKS.md): a few periods get there
STEP_DOWN = 0.7  # one step down about undoes one step up (1.5 x 0.7 = 1.05): it settles near the CPU's limit


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

    def adjust(self, *, lag: float, backlogged: bool) -> int:
        """The new limit after a period whose event loop ran ``lag`` s late, with (or without) visits waiting
        while every slot was busy."""
        if lag > LAG_LIMIT:
            self.limit = max(self.floor, int(self.limit * STEP_DOWN))
        elif backlogged:
            self.limit = min(self.ceiling, math.ceil(self.limit * STEP_UP))
        return self.limit
