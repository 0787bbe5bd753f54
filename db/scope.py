"""Which crawls a query reads: one crawl, a time window, or every crawl (``CrawlScope``).

Every share query, history period, uptime count and export takes one scope, so "in scope" means the same
everywhere (README, "What the numbers mean"): the crawls of either kind -- DHT walks and the monitor's
revalidation passes -- that *started* in ``[since, until)``, and if ``crawl_id`` is given, that crawl only
(it must then also lie in the window).  A crawl belongs wholly to the window its start falls in, so a period's
counts never change as later crawls are added.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select, true
from sqlalchemy.orm import Session

from .errors import InvalidRecord, NotFound
from .models import Crawl

__all__ = ["CrawlScope", "EVERY_CRAWL", "scope_of", "share"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlScope:
    """Crawls of either kind started in ``[since, until)`` (None: unbounded), narrowed to ``crawl_id`` if given."""

    crawl_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise InvalidRecord(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")

    @property
    def everything(self) -> bool:
        return self.crawl_id is None and self.since is None and self.until is None

    def within(self, since: datetime | None, until: datetime | None) -> CrawlScope:
        """This scope narrowed to crawls started in ``[since, until)`` as well (a history period)."""
        later = since if self.since is None or (since is not None and since > self.since) else self.since
        earlier = until if self.until is None or (until is not None and until < self.until) else self.until
        return replace(self, since=later, until=earlier)

    def of_crawl(self, crawl_id: int) -> CrawlScope:
        return replace(self, crawl_id=crawl_id)

    def crawl_condition(self) -> ColumnElement[bool]:
        """The condition on ``Crawl`` rows for crawls in scope."""
        conditions: list[ColumnElement[bool]] = []
        if self.crawl_id is not None:
            conditions.append(Crawl.id == self.crawl_id)
        if self.since is not None:
            conditions.append(Crawl.started_at >= self.since)
        if self.until is not None:
            conditions.append(Crawl.started_at < self.until)
        return and_(true(), *conditions)

    def crawl_ids(self) -> Select[int]:
        """``SELECT id FROM crawls WHERE <in scope>``, for ``column.in_(...)``."""
        return select(Crawl.id).where(self.crawl_condition())

    def holds(self, crawl_column: Any) -> ColumnElement[bool]:
        """The condition on a row's crawl id column (e.g. ``DialAttempt.crawl_id``): its crawl is in scope.

        Every crawl: no condition at all (rows of any crawl), so the unscoped queries stay as fast as before.
        """
        if self.everything:
            return true()
        if self.since is None and self.until is None:
            condition: ColumnElement[bool] = crawl_column == self.crawl_id
        else:
            condition = crawl_column.in_(self.crawl_ids())
        return condition

    def crawls(self, session: Session) -> list[Crawl]:
        """The crawls in scope, oldest first."""
        return list(session.scalars(select(Crawl).where(self.crawl_condition()).order_by(Crawl.id)))


EVERY_CRAWL = CrawlScope()


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def scope_of(session: Session, crawl_id: int | None, since: datetime | None, until: datetime | None) -> CrawlScope:
    """The scope a user named (--crawl, --since, --until); NotFound for a crawl the database does not hold or a
    window no crawl can start in."""
    if since is not None and until is not None and since >= until:
        raise NotFound(f"no crawl starts at or after {_iso(since)} and before {_iso(until)}: --since is not before --until")
    if crawl_id is not None and session.get(Crawl, crawl_id) is None:
        raise NotFound(f"the database holds no crawl {crawl_id}")
    return CrawlScope(crawl_id=crawl_id, since=since, until=until)


def share(part: int, whole: int) -> float:
    """``part`` as a percentage of ``whole``, to one decimal (0.0 of nothing): every ``share`` column."""
    return round(100 * part / whole, 1) if whole else 0.0
