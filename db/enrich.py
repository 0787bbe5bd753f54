"""Country and AS columns of nodes and sightings, filled from address lookups (``crawler.geoip`` reads the files).

A node's columns describe its latest address (``nodes.ip``); a sighting's, the address it had in that crawl
(``sightings.ip``).  Rows without a known address are left alone.  Filling is idempotent: each row in scope gets
what the lookup says for its address now (NULL where the file says nothing), and only rows whose values change
are written, so a second run with the same files writes nothing.  Only the columns of the kinds looked up are
touched: a country file never clears AS columns.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .engine import Database, translate_error
from .models import Node, Sighting
from .records import Place

__all__ = ["KIND_COLUMNS", "EnrichCounts", "Locator", "addresses", "fill", "enrich_database"]

# What each kind of lookup fills: a country file the country, an AS file the number and its organisation.
KIND_COLUMNS: dict[str, tuple[str, ...]] = {"country": ("country",), "asn": ("asn", "as_org")}
# Addresses per batch (one SELECT ... IN and one UPDATE executemany each): bounded statements and memory, few
# round trips (a mainnet crawl is ~10^5 addresses); far below SQLite's bound-parameter limit.
BATCH_ADDRESSES = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrichCounts:
    addresses: int  # distinct addresses looked up
    located: int  # of those, addresses the files said something about
    nodes: int  # node rows whose columns changed
    sightings: int  # sighting rows whose columns changed


class Locator(Protocol):
    """What enrichment needs of a lookup: the kinds it fills (``KIND_COLUMNS`` keys) and a place per address."""

    @property
    def kinds(self) -> tuple[str, ...]: ...

    def locate(self, ip: str) -> Place: ...


def _in_scope(query: Select[Any], crawl_id: int | None, *, nodes: bool) -> Select[Any]:
    """Rows of crawl ``crawl_id`` (nodes: those sighted in it), or every row (None); with a known address."""
    if crawl_id is not None:
        if nodes:
            query = query.where(Node.node_id.in_(select(Sighting.node_id).where(Sighting.crawl_id == crawl_id)))
        else:
            query = query.where(Sighting.crawl_id == crawl_id)
    return query.where((Node.ip if nodes else Sighting.ip).is_not(None))


def addresses(session: Session, crawl_id: int | None = None) -> set[str]:
    """Distinct addresses of the nodes and sightings that filling covers (of crawl ``crawl_id``, or all)."""
    found = set(session.scalars(_in_scope(select(Node.ip).distinct(), crawl_id, nodes=True)))
    found.update(session.scalars(_in_scope(select(Sighting.ip).distinct(), crawl_id, nodes=False)))
    return {ip for ip in found if ip is not None}


def _changes(
    rows: Iterable[Any], keys: Sequence[str], places: Mapping[str, Place], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Primary key and new values of each row (keys..., ip, columns...) whose columns differ from its place's."""
    changed = []
    for row in rows:
        place = places.get(row.ip)
        if place is None:
            continue
        new = {c: getattr(place, c) for c in columns}
        if any(getattr(row, c) != v for c, v in new.items()):
            changed.append({**{k: getattr(row, k) for k in keys}, **new})
    return changed


def _fill_rows(
    session: Session, model: type[Node] | type[Sighting], keys: Sequence[str], places: Mapping[str, Place],
    columns: Sequence[str], crawl_id: int | None,
) -> int:
    """Update the rows of ``model`` in scope whose address ``places`` holds and whose columns differ; how many."""
    ips = sorted(places)
    written = 0
    for start in range(0, len(ips), BATCH_ADDRESSES):
        # A batch of addresses at a time: memory stays bounded on a database of many crawls.
        chunk = ips[start : start + BATCH_ADDRESSES]
        query = select(*(getattr(model, k) for k in keys), model.ip, *(getattr(model, c) for c in columns))
        rows = session.execute(_in_scope(query.where(model.ip.in_(chunk)), crawl_id, nodes=model is Node)).all()
        changes = _changes(rows, keys, places, columns)
        if changes:
            # ORM bulk UPDATE by primary key: one executemany.
            session.execute(update(model), changes)
        written += len(changes)
    return written


def fill(
    session: Session, places: Mapping[str, Place], kinds: Collection[str], crawl_id: int | None = None
) -> tuple[int, int]:
    """Set the columns of ``kinds`` on the nodes and sightings in scope whose address ``places`` holds.

    Returns (nodes, sightings) written: the rows whose values changed.  The caller owns the transaction.
    """
    columns = [c for kind in kinds for c in KIND_COLUMNS[kind]]
    if not columns:
        return 0, 0
    nodes = _fill_rows(session, Node, ("node_id",), places, columns, crawl_id)
    sightings = _fill_rows(session, Sighting, ("crawl_id", "node_id"), places, columns, crawl_id)
    return nodes, sightings


def enrich_database(db: Database, locator: Locator, *, crawl_id: int | None = None) -> EnrichCounts:
    """Look up every address in scope (crawl ``crawl_id``'s nodes and sightings, or all) and fill their columns.

    Every lookup happens before anything is written: a lookup that raises leaves the database as it was.  The
    writes are one transaction.  Blocking: from trio, run it in a thread.  DatabaseError on a database failure.
    """
    try:
        with db.session() as session:
            wanted = addresses(session, crawl_id)
        places = _located(wanted, locator.locate)
        with db.session() as session, session.begin():
            nodes, sightings = fill(session, places, locator.kinds, crawl_id)
    except SQLAlchemyError as exc:
        raise translate_error(exc, "the database") from exc
    return EnrichCounts(
        addresses=len(places), located=sum(p != Place() for p in places.values()), nodes=nodes, sightings=sightings
    )


def _located(ips: Iterable[str], locate: Callable[[str], Place]) -> dict[str, Place]:
    return {ip: locate(ip) for ip in sorted(ips)}
