"""Questions about time: shares per period, churn between two walks, per-node uptime.

Definitions (README, "What the numbers mean"; one function each):

- A node is **present** in a crawl when it answered discovery in it (a v4 bond or v5 PONG: its sighting's
  ``responded``, ``ANSWERED``) or one of the crawl's RLPx attempts with it received its Hello
  (``queries.HELLO_RECEIVED``).  ``presence`` (churn) and ``uptimes`` are built from those two conditions only.
- A node was **checked** by a crawl when the crawl sighted it (a walk heard of it, a revalidation pass re-checked
  it) or made an RLPx attempt with it.
- **History**: a period's counts are the share query's counts over the crawls started in that period (a crawl, a
  UTC day, an ISO week from Monday 00:00 UTC), so a period never changes once its crawls are written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select, union, union_all
from sqlalchemy.orm import Session

from .errors import InvalidRecord, NotFound
from .models import Crawl, DialAttempt, Sighting
from .queries import HELLO_RECEIVED, fork_readiness, hello_counts, layer_counts, network_counts, outcome_counts
from .scope import EVERY_CRAWL, CrawlScope, share

__all__ = [
    "HISTORY_KINDS", "PERIODS", "ANSWERED", "HistoryRow", "value_counts", "share_history", "presence", "CHURN_CHANGES",
    "ChurnRow", "Churn", "churn", "NodeUptime", "uptimes", "UPTIME_BUCKETS", "uptime_distribution",
]

# The share queries history can follow, each as `ethcrawl query KIND` counts it.
HISTORY_KINDS = ("clients", "versions", "os", "runtimes", "networks", "forks", "layers", "outcomes")  # = _COUNTS
PERIODS = ("crawl", "day", "week")
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
CRAWL_KIND_WALK = "crawl"  # records.CRAWL_KINDS: a walk of the DHT, the only kind churn compares
CHURN_CHANGES = ("new", "gone", "returned", "upgraded")
UPTIME_BUCKETS = 10  # the distribution's buckets: uptime in tenths, the last one closed (0.9-1.0 holds 1.0)
UPTIME_DIGITS = 4  # decimals of an uptime: a node checked 10,000 times still shows one miss
# A sighting whose node answered discovery in that crawl: half of "present" (HELLO_RECEIVED is the other).
ANSWERED: ColumnElement[bool] = Sighting.responded.is_(True)


# ---------------------------------------------------------------- shares over time


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRow:
    period: int | str  # a crawl id, or a UTC day / a week's Monday as ISO date text
    value: str
    nodes: int
    share: float  # percent of the period's nodes counted (forks: of the network's)


Counted = list[tuple[str, int, str]]  # (value, nodes, share group)


def _hello(kind: str) -> Callable[[Session, CrawlScope], Counted]:
    def count(session: Session, scope: CrawlScope) -> Counted:
        return [(c.value, c.nodes, "") for c in hello_counts(session, kind, scope=scope)]

    return count


def _versions(session: Session, scope: CrawlScope) -> Counted:
    counts = hello_counts(session, "versions", scope=scope, by_client=True)
    return [(f"{c.client or 'unknown'} {c.value}", c.nodes, "") for c in counts]


def _networks(session: Session, scope: CrawlScope) -> Counted:
    return [(f"{c.network} {c.fork}", c.nodes, "") for c in network_counts(session, scope=scope)]


def _forks(session: Session, scope: CrawlScope) -> Counted:
    return [(f"{network} {ready}", n, network) for network, ready, n in fork_readiness(session, scope=scope)]


def _layers(session: Session, scope: CrawlScope) -> Counted:
    layers: Counter[str] = Counter()
    for layer, _, n in layer_counts(session, scope).by_protocols:
        layers[layer or "unknown"] += n
    return [(layer, n, "") for layer, n in sorted(layers.items(), key=lambda kv: (-kv[1], kv[0]))]


def _outcomes(session: Session, scope: CrawlScope) -> Counted:
    return [(outcome, n, "") for outcome, n in outcome_counts(session, scope=scope)]


# Each history KIND -> the share query it follows (HISTORY_KINDS, in that order).
_COUNTS: dict[str, Callable[[Session, CrawlScope], Counted]] = {
    "clients": _hello("clients"), "versions": _versions, "os": _hello("os"), "runtimes": _hello("runtimes"),
    "networks": _networks, "forks": _forks, "layers": _layers, "outcomes": _outcomes,
}  # fmt: skip


def value_counts(session: Session, kind: str, scope: CrawlScope = EVERY_CRAWL) -> Counted:
    """(value, nodes, share group) for one share query over ``scope``: the same numbers as ``ethcrawl query KIND``.

    Values are one text each: versions "client version", networks "network fork", forks "network readiness".
    Shares are taken within a group: the whole result, except forks (within the network, as query forks).
    """
    count = _COUNTS.get(kind)
    if count is None:
        raise InvalidRecord(f"no history of {kind!r}; one of {', '.join(HISTORY_KINDS)}")
    return count(session, scope)


def _midnight(when: datetime) -> datetime:
    return datetime.combine(when.astimezone(timezone.utc).date(), time(), tzinfo=timezone.utc)


def _periods(session: Session, every: str, scope: CrawlScope) -> list[tuple[int | str, CrawlScope]]:
    """(label, scope) of each period holding a crawl in ``scope``, oldest first."""
    crawls = scope.crawls(session)
    if every == "crawl":
        return [(c.id, scope.of_crawl(c.id)) for c in crawls]
    if every not in PERIODS:
        raise InvalidRecord(f"no period {every!r}; one of {', '.join(PERIODS)}")
    starts: list[datetime] = []
    for crawl in crawls:
        start = _midnight(crawl.started_at)
        if every == "week":
            start -= timedelta(days=start.weekday())  # ISO weeks begin on Monday
        if start not in starts:
            starts.append(start)
    length = DAY if every == "day" else WEEK
    return [(start.date().isoformat(), scope.within(start, start + length)) for start in sorted(starts)]


def share_history(session: Session, kind: str, every: str, scope: CrawlScope = EVERY_CRAWL) -> list[HistoryRow]:
    """One row per period and value: ``value_counts`` over each period's crawls; periods oldest first, values
    largest first."""
    rows: list[HistoryRow] = []
    for label, period in _periods(session, every, scope):
        counts = value_counts(session, kind, period)
        wholes: Counter[str] = Counter()
        for _, nodes, group in counts:
            wholes[group] += nodes
        rows += [
            HistoryRow(period=label, value=value, nodes=nodes, share=share(nodes, wholes[group]))
            for value, nodes, group in counts
        ]
    return rows


# ---------------------------------------------------------------- presence and churn


def presence(scope: CrawlScope) -> Select[tuple[int, bytes]]:
    """(crawl_id, node_id) for every node present in a crawl in ``scope``: it answered discovery or sent a Hello."""
    answered = select(Sighting.crawl_id, Sighting.node_id).where(ANSWERED, scope.holds(Sighting.crawl_id))
    hello = select(DialAttempt.crawl_id, DialAttempt.node_id).where(HELLO_RECEIVED, scope.holds(DialAttempt.crawl_id))
    both = union(answered, hello).subquery()
    return select(both.c.crawl_id, both.c.node_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChurnRow:
    node_id: bytes
    change: str  # CHURN_CHANGES
    client_name: str | None  # from the node's latest Hello up to the crawl (for gone: up to the earlier one)
    client_version: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Churn:
    crawl_id: int
    against: int
    rows: list[ChurnRow]  # by CHURN_CHANGES order, then node id

    def counts(self) -> list[tuple[str, int]]:
        """(change, nodes) for every change, in CHURN_CHANGES order (zeros included)."""
        found = Counter(row.change for row in self.rows)
        return [(change, found[change]) for change in CHURN_CHANGES]


def _present(session: Session, crawls: Callable[[Any], ColumnElement[bool]]) -> set[bytes]:
    """Nodes present in the crawls whose ids meet ``crawls(crawl_id column)``."""
    rows = presence(EVERY_CRAWL).subquery()
    return {bytes(n) for (n,) in session.execute(select(rows.c.node_id).where(crawls(rows.c.crawl_id)).distinct())}


def _clients_up_to(session: Session, crawl_id: int, nodes: set[bytes]) -> dict[bytes, tuple[str | None, str | None]]:
    """(client name, version) of each node's latest attempt that received a Hello, in crawls up to ``crawl_id``."""
    latest = (
        select(func.max(DialAttempt.id))
        .where(HELLO_RECEIVED, DialAttempt.crawl_id <= crawl_id)
        .group_by(DialAttempt.node_id)
    )
    query = select(DialAttempt.node_id, DialAttempt.client_name, DialAttempt.client_version).where(DialAttempt.id.in_(latest))
    return {bytes(n): (name, version) for n, name, version in session.execute(query) if bytes(n) in nodes}


def _walk_before(session: Session, crawl_id: int | None) -> int | None:
    """The latest walk before crawl ``crawl_id`` (None: the latest walk of all)."""
    query = select(func.max(Crawl.id)).where(Crawl.kind == CRAWL_KIND_WALK)
    if crawl_id is not None:
        query = query.where(Crawl.id < crawl_id)
    return session.scalar(query)


def churn(session: Session, crawl_id: int | None = None, against: int | None = None) -> Churn:
    """Nodes that changed between crawl ``against`` and the later crawl ``crawl_id``.

    Defaults: ``crawl_id`` the latest walk, ``against`` the walk before ``crawl_id``.  new: present in the crawl
    and in no crawl up to ``against``; returned: present, absent from ``against``, present in a crawl before
    ``against``; gone: present in ``against``, absent from the crawl; upgraded: present in both, and the client
    name or version of its latest Hello up to the crawl differs from that up to ``against`` (both known).
    NotFound otherwise.

    New and returned look back from ``against``, not from the crawl: against an older crawl, a node that first
    appeared in between is new since then, and "returned" says it was there before ``against`` and gone in it.
    """
    if crawl_id is None:
        crawl_id = _walk_before(session, None)
        if crawl_id is None:
            raise NotFound("the database holds no walk (crawl) yet")
    elif session.get(Crawl, crawl_id) is None:
        raise NotFound(f"the database holds no crawl {crawl_id}")
    if against is None:
        against = _walk_before(session, crawl_id)
        if against is None:
            raise NotFound(f"no walk before crawl {crawl_id} to compare it with (give --against)")
    elif session.get(Crawl, against) is None:
        raise NotFound(f"the database holds no crawl {against}")
    elif against >= crawl_id:
        raise NotFound(f"--against {against} is not a crawl before {crawl_id}")
    now = _present(session, lambda c: c == crawl_id)
    then = _present(session, lambda c: c == against)
    before = _present(session, lambda c: c < against)
    clients_now = _clients_up_to(session, crawl_id, now)
    clients_then = _clients_up_to(session, against, then)
    changes: list[tuple[str, bytes]] = []
    for node in now - then:
        changes.append(("returned" if node in before else "new", node))
    changes += [("gone", node) for node in then - now]
    for node in now & then:
        old, new = clients_then.get(node), clients_now.get(node)
        if old is not None and new is not None and None not in old + new and old != new:
            changes.append(("upgraded", node))
    changes.sort(key=lambda c: (CHURN_CHANGES.index(c[0]), c[1]))
    rows = []
    for change, node in changes:
        name, version = (clients_then if change == "gone" else clients_now).get(node, (None, None))
        rows.append(ChurnRow(node_id=node, change=change, client_name=name, client_version=version))
    return Churn(crawl_id=crawl_id, against=against, rows=rows)


# ---------------------------------------------------------------- uptime


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUptime:
    node_id: bytes
    checks: int  # crawls in scope that checked the node (sighted it or dialed it)
    answered: int  # of those, crawls in which it was present
    first_seen: datetime | None  # earliest time a crawl met it in a crawl where it was present (None: never)
    last_seen: datetime | None  # latest such time

    @property
    def uptime(self) -> float:
        """answered / checks, to UPTIME_DIGITS decimals."""
        return round(self.answered / self.checks, UPTIME_DIGITS)


def uptimes(session: Session, scope: CrawlScope = EVERY_CRAWL) -> list[NodeUptime]:
    """Every node checked in ``scope``: checks, answered, and when it was met present; highest uptime first,
    then most checks, then node id."""
    contacts = union_all(
        select(
            Sighting.crawl_id, Sighting.node_id,
            case((ANSWERED, 1), else_=0).label("answered"),
            case((ANSWERED, Sighting.first_seen), else_=None).label("at"),
        ).where(scope.holds(Sighting.crawl_id)),
        select(
            DialAttempt.crawl_id, DialAttempt.node_id,
            case((HELLO_RECEIVED, 1), else_=0).label("answered"),
            case((HELLO_RECEIVED, DialAttempt.attempted_at), else_=None).label("at"),
        ).where(scope.holds(DialAttempt.crawl_id)),
    ).subquery()  # fmt: skip
    per_crawl = (
        select(
            contacts.c.node_id, func.max(contacts.c.answered).label("answered"),
            func.min(contacts.c.at).label("first"), func.max(contacts.c.at).label("last"),
        )
        .group_by(contacts.c.crawl_id, contacts.c.node_id)
        .subquery()
    )  # fmt: skip
    query = select(
        per_crawl.c.node_id, func.count(), func.sum(per_crawl.c.answered), func.min(per_crawl.c.first),
        func.max(per_crawl.c.last),
    ).group_by(per_crawl.c.node_id)  # fmt: skip
    found = [
        NodeUptime(node_id=bytes(n), checks=int(checks), answered=int(answered), first_seen=_utc(first), last_seen=_utc(last))
        for n, checks, answered, first, last in session.execute(query)
    ]
    return sorted(found, key=lambda u: (-u.answered / u.checks, -u.checks, u.node_id))


def _utc(value: object) -> datetime | None:
    """A timestamp read through a union (SQLite hands those back as text): an aware UTC datetime."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def uptime_distribution(found: list[NodeUptime]) -> list[tuple[str, int]]:
    """(bucket, nodes) for the UPTIME_BUCKETS buckets "0.0-0.1" ... "0.9-1.0", each holding its lower bound,
    the last its upper bound (1.0) too; empty buckets included, lowest first."""
    counts = [0] * UPTIME_BUCKETS
    for node in found:
        counts[min(int(node.answered * UPTIME_BUCKETS // node.checks), UPTIME_BUCKETS - 1)] += 1
    return [(f"{k / UPTIME_BUCKETS:.1f}-{(k + 1) / UPTIME_BUCKETS:.1f}", n) for k, n in enumerate(counts)]
