"""Retention (``--keep 90d``): prune what old crawls stored, never what the network looks like now.

A long-running monitor adds sightings, edges and dial attempts every cycle; history older than the retention
window goes, whole crawls at a time (a crawl older than the cutoff loses its sightings, edges and dial attempts,
and its row, which then holds nothing).  The ``nodes`` table is the network's current state and is never pruned;
``enr_history`` keeps every record version (a few rows per node, only new seqs add any), losing only its link to a
pruned crawl.  Session functions take a caller-owned session and do not commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from .models import Crawl, DialAttempt, Edge, EnrHistory, Sighting

__all__ = ["Pruned", "prune_before"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pruned:
    """Rows deleted by one pruning."""

    crawls: int
    sightings: int
    edges: int
    dial_attempts: int


def _deleted(session: Session, statement: Any) -> int:
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount)


def prune_before(session: Session, cutoff: datetime) -> Pruned:
    """Delete the crawls that started before ``cutoff`` and every sighting, edge and dial attempt they stored."""
    old = select(Crawl.id).where(Crawl.started_at < cutoff).scalar_subquery()
    sightings = _deleted(session, delete(Sighting).where(Sighting.crawl_id.in_(old)))
    edges = _deleted(session, delete(Edge).where(Edge.crawl_id.in_(old)))
    dials = _deleted(session, delete(DialAttempt).where(DialAttempt.crawl_id.in_(old)))
    session.execute(update(EnrHistory).where(EnrHistory.crawl_id.in_(old)).values(crawl_id=None))
    crawls = _deleted(session, delete(Crawl).where(Crawl.started_at < cutoff))
    return Pruned(crawls=crawls, sightings=sightings, edges=edges, dial_attempts=dials)
