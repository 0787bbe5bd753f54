"""``ethcrawl query history|churn|uptime|readiness|node``: questions about time, formatted.

Every number comes from db/ (``db.history``, ``db.readiness``, ``db.node_story``; README, "What the numbers
mean") and every row from ``db.rows`` (the web report and dashboard show the same rows); this module only prints.  The commands join the ``query`` group (``HISTORY_COMMANDS``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import click

from ethcrawl.db.history import HISTORY_KINDS, PERIODS
from ethcrawl.db.node_filter import parse_fork
from ethcrawl.db.node_story import node_story, resolve_node
from ethcrawl.db.rows import (
    CHURN_COLUMNS, HISTORY_COLUMNS, READINESS_COLUMNS, UPTIME_COLUMNS, churn_tables, fork_targets,
    history_table, not_ready_table, readiness_table, story_object, story_parts, uptime_distribution_table, uptime_table,
)  # fmt: skip
from ethcrawl.db.scope import scope_of

from .cli_common import When, database, db_option, emit_rows, filter_callback, format_option, scope_options

__all__ = ["HISTORY_COMMANDS", "HISTORY_COLUMNS", "CHURN_COLUMNS", "UPTIME_COLUMNS", "READINESS_COLUMNS"]


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
        table = history_table(session, kind, every, scope_of(session, crawl_id, since, until))
    emit_rows(table.columns, table.rows, fmt)


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
        found = churn_tables(session, crawl_id, against)
    emit_rows(found.changes.columns, found.changes.rows, fmt)
    if fmt == "table":
        click.echo(f"\ncrawl {found.crawl} against {found.against}:")
        emit_rows(found.counts.columns, found.counts.rows, fmt)


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
        scope = scope_of(session, crawl_id, since, until)
        table = uptime_distribution_table(session, scope) if distribution else uptime_table(session, scope)
    emit_rows(table.columns, table.rows, fmt)


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
        targets = fork_targets(fork, now)
        table = not_ready_table(session, targets, scope) if not_ready_only else readiness_table(session, targets, scope)
    emit_rows(table.columns, table.rows, fmt)


def _print_story(data: dict[str, Any]) -> None:
    click.echo(f"node {data['node_id']}")
    click.echo(f"  ip {data['ip'] or '-'}  first seen {data['first_seen'] or '-'}  last seen {data['last_seen'] or '-'}")
    for part in story_parts(data):
        click.echo(f"\n{part.title} ({len(part.table.rows)})")
        if part.table.rows:
            emit_rows(part.table.columns, part.table.rows, "table")


@click.command("node")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.argument("node", metavar="ID")
def query_node(db_url: str, fmt: str, node: str) -> None:
    """One node's story (ID: its hex id, or a prefix only it has): sightings per crawl (address, ENR seq,
    answered), ENR versions with what changed from the one before, client version changes, every RLPx attempt,
    and who returned it in each crawl.  JSON: one object."""
    with database(db_url) as db, db.session() as session:
        data = story_object(node_story(session, resolve_node(session, node)))
    if fmt == "json":
        click.echo(json.dumps(data, allow_nan=False))
    else:
        _print_story(data)


HISTORY_COMMANDS = (query_history, query_churn, query_uptime, query_readiness, query_node)
