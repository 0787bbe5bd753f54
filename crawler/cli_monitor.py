"""``ethcrawl monitor``: the long-running crawler (walks every interval, revalidation in between)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import partial
from typing import Any

import click
import trio

from ethcrawl.db.engine import Database
from ethcrawl.db.schedule import Backoff

from .cli_common import Duration
from .cli_crawl import WalkSetup, walk_database, walk_options, walk_setup, with_metrics
from .metrics import Metrics
from .monitor import DEFAULT_INTERVAL, CycleResult, MonitorConfig, run_monitor

__all__ = ["monitor_command"]

log = logging.getLogger(__name__)

def _shown(seconds: float) -> str:
    return f"{seconds:g}s"


@click.command("monitor")
@walk_options
@click.option("--interval", type=Duration(positive=True), default=_shown(DEFAULT_INTERVAL), show_default="30m", help="Time from one walk of the DHT to the next (e.g. 30m, 2h).")
@click.option("--cycles", type=click.IntRange(min=1), default=None, help="Stop after this many walks (default: run until SIGTERM or Ctrl-C).")
@click.option("--revalidate", type=Duration(positive=True), default=_shown(Backoff().answered), show_default="10m", help="A known node that answered its last check is checked again this long after (a Ping and a dial between walks). Nodes that fail wait 12 h, then 48 h, then 14 d.")
@click.option("--keep", type=Duration(positive=True), default=None, help="Prune sightings, edges and dial attempts of crawls older than this (e.g. 90d) after each walk; the nodes table is never pruned. Default: keep everything.")
# Shrinks the failure back-off (12 h, 48 h, 14 d) for demos and tests of the schedule.
@click.option("--backoff-scale", type=click.FloatRange(min=0, min_open=True, max=1), default=1.0, hidden=True)
def monitor_command(
    interval: timedelta, cycles: int | None, revalidate: timedelta, keep: timedelta | None, backoff_scale: float,
    **walk: Any,
) -> None:
    """Run for as long as it is left running: walk the DHT every --interval and, between walks, revalidate known
    nodes (a discovery Ping, a new record if they announce one, an RLPx dial) when they fall due.

    Every walk and every revalidation pass is a crawl in the database (kind 'crawl' or 'revalidation'), and the
    schedule is read back from it: a restarted monitor carries on where it stopped.  SIGTERM or Ctrl-C finishes
    the running cycle early, keeping what it learned, and exits 0.  One log line per cycle on stderr; no live
    display, so it runs as it is under systemd or in a container.  Seeds and walk options as for `crawl`.
    """
    setup = walk_setup(**walk)
    config = MonitorConfig(
        interval=interval.total_seconds(), cycles=cycles, keep=None if keep is None else keep.total_seconds(),
        backoff=Backoff(answered=revalidate.total_seconds()).scaled(backoff_scale),
    )
    if log.getEffectiveLevel() > logging.INFO:
        # The cycle lines are the monitor's output; the rest of the crawler stays at the level -v chose.
        logging.getLogger("ethcrawl.crawler.monitor").setLevel(logging.INFO)
    with walk_database(setup, walk["db_url"], unenriched="the monitor stopped: a cycle is stored, but not enriched") as db:
        ran = trio.run(with_metrics, setup.metrics_address, partial(_monitor, db, setup, config))
    click.echo(f"monitor: {ran} cycles", err=True)


async def _monitor(db: Database, setup: WalkSetup, config: MonitorConfig, metrics: Metrics | None) -> int:
    async def finished(result: CycleResult) -> None:
        if metrics is not None:
            metrics.cycle_finished(result.kind, duration=result.duration, finished_at=time.time(), stopped=result.stopped)

    return await run_monitor(
        db, setup.options, config, private_key=setup.node_key, watch=metrics.watch if metrics is not None else None,
        on_cycle=finished, locator=setup.geo,
    )
