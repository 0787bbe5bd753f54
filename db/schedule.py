"""The monitor's revalidation schedule: which known nodes are due for a check, computed from the database.

A *check* of a node is its sighting in any crawl, a walk of the DHT or a revalidation pass (``crawls.kind``):
``sightings.first_seen`` is when it was checked and ``sightings.responded`` whether it answered discovery.
From those alone, per node, come its last check and its consecutive failures (sightings since the last one that
answered), so the schedule survives a restart: nothing about it lives in the process.

The back-off (node-crawler's style, :class:`Backoff`): a node that answered its last check is due again after
``answered``; one that failed once after ``first_failure`` (12 h), twice after ``repeated_failure`` (48 h), three
times or more after ``given_up`` (14 d).  Dead records, most of what a crawl hears of, so cost one check a fortnight
once they have failed three times, while a node that answers is followed closely.

Session functions take a caller-owned session and do not commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from .models import Crawl, Identity, Node, Sighting

__all__ = ["Backoff", "DueNode", "due_nodes", "next_due", "last_walk_started"]

ANSWERED_AGAIN = 600.0  # s: a node that answered is checked again this long after (the monitor's --revalidate)
FIRST_FAILURE = 12 * 3600.0  # s, node-crawler's first retry of a node that stopped answering
REPEATED_FAILURE = 48 * 3600.0  # s, after two failures in a row
GIVEN_UP = 14 * 24 * 3600.0  # s, after three or more: most likely a dead record
FAILURE_STEPS = 3  # failures in a row told apart: 1, 2, 3 or more


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Seconds from a node's last check to its next, by how many checks in a row it failed."""

    answered: float = ANSWERED_AGAIN
    first_failure: float = FIRST_FAILURE
    repeated_failure: float = REPEATED_FAILURE
    given_up: float = GIVEN_UP

    def __post_init__(self) -> None:
        for name in ("answered", "first_failure", "repeated_failure", "given_up"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")

    def delay(self, failures: int) -> float:
        """Seconds between a check and the next after ``failures`` failed checks in a row (0: it answered)."""
        steps = (self.answered, self.first_failure, self.repeated_failure, self.given_up)
        return steps[min(max(failures, 0), FAILURE_STEPS)]

    def scaled(self, factor: float) -> Backoff:
        """The failure delays times ``factor`` (tests and short-lived demos shrink days to seconds)."""
        return replace(
            self,
            first_failure=self.first_failure * factor,
            repeated_failure=self.repeated_failure * factor,
            given_up=self.given_up * factor,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DueNode:
    """A known node due for a check: where it was last heard of, what it last told, how its checks went."""

    node_id: bytes
    pubkey: bytes
    ip: str | None
    udp_port: int | None
    tcp_port: int | None
    enr: bytes | None
    enr_seq: int | None
    protocols: tuple[str, ...]  # discovery protocols that ever answered it
    layer: str | None
    last_check: datetime
    failures: int  # checks in a row that did not answer (0: the last one did)


def _checks() -> Any:
    """Per node: last check, consecutive failures (checks after the last answered one)."""
    last_ok = (
        select(Sighting.node_id, func.max(Sighting.first_seen).label("last_ok"))
        .where(Sighting.responded.is_(True))
        .group_by(Sighting.node_id)
        .subquery()
    )
    failed = (last_ok.c.last_ok.is_(None)) | (Sighting.first_seen > last_ok.c.last_ok)
    return (
        select(
            Sighting.node_id,
            func.max(Sighting.first_seen).label("last_check"),
            func.sum(case((failed, 1), else_=0)).label("failures"),
        )
        .outerjoin(last_ok, last_ok.c.node_id == Sighting.node_id)
        .group_by(Sighting.node_id)
        .subquery()
    )


def _due_condition(checks: Any, backoff: Backoff, now: datetime) -> ColumnElement[bool]:
    def before(seconds: float) -> datetime:
        return now - timedelta(seconds=seconds)

    return or_(
        *(
            and_(checks.c.failures == failures, checks.c.last_check <= before(backoff.delay(failures)))
            for failures in range(FAILURE_STEPS)
        ),
        and_(checks.c.failures >= FAILURE_STEPS, checks.c.last_check <= before(backoff.delay(FAILURE_STEPS))),
    )


def due_nodes(session: Session, backoff: Backoff, *, now: datetime, limit: int | None = None) -> list[DueNode]:
    """Known nodes whose next check (last check + the back-off's delay) is at or before ``now``, longest
    waiting first; never one of our own identities, never a node without an address to check it at."""
    checks = _checks()
    query = (
        select(Node, checks.c.last_check, checks.c.failures)
        .join(checks, checks.c.node_id == Node.node_id)
        .where(_due_condition(checks, backoff, now))
        .where(Node.ip.is_not(None))
        .where(Node.node_id.not_in(select(Identity.node_id)))
        .order_by(checks.c.last_check, Node.node_id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        DueNode(
            node_id=node.node_id, pubkey=node.pubkey, ip=node.ip, udp_port=node.udp_port, tcp_port=node.tcp_port,
            enr=node.enr, enr_seq=node.enr_seq, protocols=tuple(p for p in node.protocols.split(",") if p),
            layer=node.layer, last_check=last_check, failures=int(failures),
        )
        for node, last_check, failures in session.execute(query)
    ]


def next_due(session: Session, backoff: Backoff) -> datetime | None:
    """When the next known node falls due (possibly in the past); None when there is no node to check."""
    checks = _checks()
    step = case((checks.c.failures >= FAILURE_STEPS, FAILURE_STEPS), else_=checks.c.failures)
    query = (
        select(step, func.min(checks.c.last_check))
        .select_from(checks)
        .join(Node, Node.node_id == checks.c.node_id)
        .where(Node.ip.is_not(None))
        .where(Node.node_id.not_in(select(Identity.node_id)))
        .group_by(step)
    )
    times: Iterable[datetime] = (
        last + timedelta(seconds=backoff.delay(int(failures))) for failures, last in session.execute(query)
    )
    return min(times, default=None)


def last_walk_started(session: Session) -> datetime | None:
    """When the latest walk of the DHT (a crawl of kind 'crawl') started: a restarted monitor walks next one
    interval after it, not at once."""
    return session.scalar(select(func.max(Crawl.started_at)).where(Crawl.kind == "crawl"))
