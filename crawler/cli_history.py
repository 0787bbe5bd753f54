"""``ethcrawl query history|churn|uptime|readiness|node``: questions about time, formatted.

Every number comes from db/ (``db.history``, ``db.readiness``, ``db.node_story``; README, "What the numbers
mean"); this module only turns records into rows.  The commands join the ``query`` group (``HISTORY_COMMANDS``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import click

from ethcrawl.db.history import HISTORY_KINDS, PERIODS, churn, share_history, uptime_distribution, uptimes
from ethcrawl.db.node_story import NodeStory, node_story, resolve_node
from ethcrawl.db.readiness import named_forks, next_forks, not_ready, readiness
from ethcrawl.db.node_filter import parse_fork
from ethcrawl.db.scope import scope_of

from .cli_common import (
    Row, When, database, db_option, emit_rows, filter_callback, format_option, iso, scope_options, share,
)  # fmt: skip

__all__ = ["HISTORY_COMMANDS", "HISTORY_COLUMNS", "CHURN_COLUMNS", "UPTIME_COLUMNS", "READINESS_COLUMNS"]

HISTORY_COLUMNS = ("period", "value", "nodes", "share")
CHURN_COLUMNS = ("node_id", "change", "client_name", "client_version")
UPTIME_COLUMNS = ("node_id", "checks", "answered", "uptime", "first_seen", "last_seen")
DISTRIBUTION_COLUMNS = ("uptime", "nodes", "share")
READINESS_COLUMNS = ("network", "fork", "client", "version", "nodes", "ready", "share_ready")
NOT_READY_COLUMNS = ("node_id", "network", "fork", "client", "version", "fork_hash", "fork_next")


def _time(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


@click.command("history")
@db_option
@format_option
@scope_options
@click.argument("kind", metavar="KIND", type=click.Choice(HISTORY_KINDS))
@click.option(
    "--every", type=click.Choice(PERIODS), default="crawl", show_default=True,
    help="One period per crawl (either kind), per UTC day, or per ISO week (from Monday).",
)
def query_history(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, kind: str, every: str
) -> None:
    """KIND's shares per period: one row per period and value, oldest period first (e.g. client share per crawl).

    Each period counts as `ethcrawl query KIND` over the crawls started in it.  period: the crawl id, or the day
    (or the week's Monday) as an ISO date; share: percent of the period's nodes (forks: of the network's).
    Values: versions "client version", networks "network fork", forks "network readiness".
    """
    with database(db_url) as db, db.session() as session:
        rows = share_history(session, kind, every, scope_of(session, crawl_id, since, until))
    emit_rows(HISTORY_COLUMNS, [{"period": r.period, "value": r.value, "nodes": r.nodes, "share": r.share} for r in rows], fmt)


@click.command("churn")
@db_option
@format_option
@click.option("--crawl", "crawl_id", type=click.IntRange(min=1), default=None, help="The later crawl (default: the latest walk).")
@click.option(
    "--against", type=click.IntRange(min=1), default=None, help="The earlier crawl (default: the walk before --crawl)."
)
def query_churn(db_url: str, fmt: str, crawl_id: int | None, against: int | None) -> None:
    """Nodes that changed between two crawls: new, gone, returned, upgraded (client name or version changed).

    A node is present in a crawl when it answered discovery or sent its Hello there.  The table ends with the
    nodes per change; CSV and JSON hold the rows only.
    """
    with database(db_url) as db, db.session() as session:
        found = churn(session, crawl_id, against)
    rows: list[Row] = [
        {"node_id": r.node_id.hex(), "change": r.change, "client_name": r.client_name, "client_version": r.client_version}
        for r in found.rows
    ]
    emit_rows(CHURN_COLUMNS, rows, fmt)
    if fmt == "table":
        click.echo(f"\ncrawl {found.crawl_id} against {found.against}:")
        emit_rows(("change", "nodes"), [{"change": c, "nodes": n} for c, n in found.counts()], fmt)


@click.command("uptime")
@db_option
@format_option
@scope_options
@click.option("--distribution", is_flag=True, help="Nodes per uptime bucket (tenths) instead of one row per node.")
def query_uptime(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, distribution: bool
) -> None:
    """Per node: checks (crawls of either kind that sighted or dialed it), answered (of those, crawls where it
    answered discovery or sent its Hello), uptime = answered / checks (0-1), and the first and last time it was
    met answering (empty if never).  Highest uptime first."""
    with database(db_url) as db, db.session() as session:
        found = uptimes(session, scope_of(session, crawl_id, since, until))
    if distribution:
        buckets = uptime_distribution(found)
        total = sum(n for _, n in buckets)
        emit_rows(DISTRIBUTION_COLUMNS, [{"uptime": b, "nodes": n, "share": share(n, total)} for b, n in buckets], fmt)
        return
    rows: list[Row] = [
        {
            "node_id": u.node_id.hex(), "checks": u.checks, "answered": u.answered, "uptime": u.uptime,
            "first_seen": _time(u.first_seen), "last_seen": _time(u.last_seen),
        }
        for u in found
    ]  # fmt: skip
    emit_rows(UPTIME_COLUMNS, rows, fmt)


@click.command("readiness")
@db_option
@format_option
@scope_options
@click.option("--fork", default=None, callback=filter_callback(parse_fork), help="This fork of every network that has it (default: each network's next).")
@click.option("--not-ready", "not_ready_only", is_flag=True, help="List the nodes that are not ready instead of counting.")
@click.option(
    "--at", "at", type=When(), default=None,
    help="Which fork is next as of this time (ISO 8601 or an age such as 30d; default: now).",
)
def query_readiness(
    db_url: str, fmt: str, crawl_id: int | None, since: datetime | None, until: datetime | None, fork: str | None,
    not_ready_only: bool, at: datetime | None,
) -> None:
    """For the next scheduled fork of each network (or --fork), nodes whose latest Status announces it (EIP-2124
    'next' is the fork's block or time) or already runs it, by client and version of that Status's attempt.

    share_ready: percent of the row's nodes that are ready.
    """
    now = at or datetime.now(timezone.utc)
    with database(db_url) as db, db.session() as session:
        scope = scope_of(session, crawl_id, since, until)
        targets = named_forks(fork) if fork is not None else next_forks(now)
        if not targets:
            raise click.ClickException(
                f"no network has a fork scheduled after {iso(now)} in the fork tables; ask about one with --fork NAME"
            )
        if not_ready_only:
            lagging = not_ready(session, targets, scope)
        else:
            counted = readiness(session, targets, scope)
    if not_ready_only:
        rows: list[Row] = [
            {
                "node_id": n.node_id.hex(), "network": n.network, "fork": n.fork, "client": n.client, "version": n.version,
                "fork_hash": n.fork_hash.hex(), "fork_next": n.fork_next,
            }
            for n in lagging
        ]  # fmt: skip
        emit_rows(NOT_READY_COLUMNS, rows, fmt)
        return
    rows = [
        {
            "network": r.network, "fork": r.fork, "client": r.client, "version": r.version, "nodes": r.nodes,
            "ready": r.ready, "share_ready": r.share_ready,
        }
        for r in counted
    ]  # fmt: skip
    emit_rows(READINESS_COLUMNS, rows, fmt)


def _story_object(story: NodeStory) -> dict[str, Any]:
    """The story as one JSON object: times ISO 8601 UTC, bytes hex, absent values null."""
    return {
        "node_id": story.node_id.hex(),
        "stored": story.stored,
        "ip": story.ip,
        "first_seen": _time(story.first_seen),
        "last_seen": _time(story.last_seen),
        "sightings": [
            {
                "crawl": s.crawl_id, "kind": s.kind, "first_seen": iso(s.first_seen), "source": s.source,
                "answered": s.answered, "protocols": [p for p in s.protocols.split(",") if p], "ip": s.ip,
                "udp_port": s.udp_port, "tcp_port": s.tcp_port, "enr_seq": s.enr_seq,
            }
            for s in story.sightings
        ],
        "enr_versions": [
            {"seq": v.seq, "first_seen": iso(v.first_seen), "crawl": v.crawl_id, "changes": v.changes}
            for v in story.enr_versions
        ],
        "clients": [
            {"crawl": c.crawl_id, "at": iso(c.at), "client_id": c.client_id, "client_name": c.client_name,
             "client_version": c.client_version}
            for c in story.clients
        ],
        "dials": [
            {
                "crawl": d.crawl_id, "at": iso(d.at), "direction": d.direction, "outcome": d.outcome, "ip": d.ip,
                "tcp_port": d.tcp_port, "client_id": d.client_id, "network_id": d.network_id,
                "fork_hash": None if d.fork_hash is None else d.fork_hash.hex(), "fork_next": d.fork_next, "error": d.error,
            }
            for d in story.dials
        ],
        "returned_by": [{"crawl": r.crawl_id, "nodes": [n.hex() for n in r.nodes]} for r in story.returned_by],
    }  # fmt: skip


def _change_text(changes: dict[str, list[Any]]) -> str:
    return "; ".join(f"{key}: {json.dumps(old)} -> {json.dumps(new)}" for key, (old, new) in changes.items())


def _print_story(data: dict[str, Any]) -> None:
    click.echo(f"node {data['node_id']}")
    click.echo(f"  ip {data['ip'] or '-'}  first seen {data['first_seen'] or '-'}  last seen {data['last_seen'] or '-'}")
    sections: list[tuple[str, tuple[str, ...], list[Row]]] = [
        ("sightings", ("crawl", "kind", "first_seen", "answered", "source", "ip", "udp_port", "tcp_port", "enr_seq"),
         data["sightings"]),
        ("ENR versions", ("seq", "first_seen", "crawl", "changed"),
         [{**v, "changed": _change_text(v["changes"]) or "(first)"} for v in data["enr_versions"]]),
        ("client versions", ("crawl", "at", "client_name", "client_version", "client_id"), data["clients"]),
        ("dials", ("crawl", "at", "direction", "outcome", "ip", "tcp_port", "client_id"), data["dials"]),
        ("returned by", ("crawl", "nodes"),
         [{"crawl": r["crawl"], "nodes": f"{len(r['nodes'])}: " + " ".join(n[:16] for n in r["nodes"])} for r in data["returned_by"]]),
    ]  # fmt: skip
    for title, columns, rows in sections:
        click.echo(f"\n{title} ({len(rows)})")
        if rows:
            emit_rows(columns, rows, "table")


@click.command("node")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.argument("node", metavar="ID")
def query_node(db_url: str, fmt: str, node: str) -> None:
    """One node's story (ID: its hex id, or a prefix only it has): sightings per crawl (address, ENR seq,
    answered), ENR versions with what changed from the one before, client version changes, every RLPx attempt,
    and who returned it in each crawl.  JSON: one object."""
    with database(db_url) as db, db.session() as session:
        data = _story_object(node_story(session, resolve_node(session, node)))
    if fmt == "json":
        click.echo(json.dumps(data, allow_nan=False))
    else:
        _print_story(data)


HISTORY_COMMANDS = (query_history, query_churn, query_uptime, query_readiness, query_node)
