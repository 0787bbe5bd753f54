"""``ethcrawl crawl`` and ``ethcrawl ping``: the crawl commands of the CLI."""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import datetime, timezone
from functools import partial
from ipaddress import ip_address
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import trio
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.errors import DatabaseError
from ethcrawl.db.identity import claim_identity
from ethcrawl.db.records import CrawlSummary
from ethcrawl.db.store import load_known_nodes
from ethcrawl.wire.crypto import PrivateKey
from ethcrawl.wire.dnsdisc import DNSDiscError, parse_url
from ethcrawl.wire.enode import Node, format_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import WireError

from .bootnodes import NETWORKS, SeedWithoutDiscovery, bootnodes, dns_lists, is_dns_list, parse_seed, v5_bootnodes
from .cli_common import database, parse_host_port
from .cli_dns_sync import dns_server_option
from .crawl import DISCOVERY_MODES, CrawlOptions, CrawlProgress, run_crawl
from .engine import DEFAULT_CONCURRENCY, DEFAULT_DIAL_CONCURRENCY, DEFAULT_MAX_CONCURRENCY, DEFAULT_SILENT_DIAL_CONCURRENCY
from .dialer import CONNECT_TIMEOUT, SILENT_CONNECT_TIMEOUT, DialConfig, dial
from .discovery import DiscoveryConfig
from .discovery_v5 import DiscoveryV5Config, enr_address
from .open_files import TooFewOpenFiles, fit_open_files
from .dns import DNSListError, DNSResolver, SyncLimits, list_records
from .cli_enrich import ASN_HELP, GEOIP_HELP, open_geoip
from .geoip import GeoIP, GeoIPError
from .metrics import DEFAULT_HOST as METRICS_HOST
from .metrics import Metrics, serve_metrics
from .keyfile import KeyFileError, read_key_file
from .node import DiscoveryNode
from .udp import DUAL_STACK_HOST

__all__ = ["crawl_command", "ping_command", "walk_options", "walk_setup", "with_metrics", "WalkSetup", "Seconds"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)

DEFAULT_DB = "ethcrawl.db"
NODE_KEY_HELP = (
    "Run as the key in FILE (64 hex characters, as 'devp2p key generate' writes it) instead of the database's "
    "own identity; its node id is remembered in the database and never counted as a node."
)
MAX_DURATION = 30 * 24 * 3600.0  # s: a month; a longer crawl is a typo, and trio deadlines need finite numbers
MAX_TIMEOUT = 60.0  # s per discovery reply: far past any real round trip (geth waits 0.5 s)
MIN_TIMEOUT = 0.05  # s: below a loopback round trip under load
# s to resolve every DNS list seed before the crawl starts (all at once): a published list is a few thousand
# lookups, seconds on a working resolver; a list not resolved by then is reported and the crawl starts without it.
SEED_LISTS_TIMEOUT = 60.0


class Seconds(click.ParamType[float]):
    """A finite number of seconds in [minimum, maximum] (click's FloatRange lets nan and inf through)."""

    name = "seconds"

    def __init__(self, minimum: float, maximum: float, *, minimum_open: bool = False) -> None:
        self.minimum, self.maximum, self.minimum_open = minimum, maximum, minimum_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        low_ok = seconds > self.minimum if self.minimum_open else seconds >= self.minimum
        if not (math.isfinite(seconds) and low_ok and seconds <= self.maximum):
            low = f"more than {self.minimum:.12g}" if self.minimum_open else f"at least {self.minimum:.12g}"
            self.fail(f"{value!r} is not allowed: give a finite number of seconds, {low} and at most {self.maximum:.12g}", param, ctx)
        return seconds


def _host_port(text: str) -> tuple[str, int]:
    # ":30303" listens on every address of both families, as geth.
    return parse_host_port(text, default_host=DUAL_STACK_HOST)


def _seeds(values: tuple[str, ...]) -> list[Node | ENR]:
    seeds: list[Node | ENR] = []
    for value in values:
        if is_dns_list(value):
            try:
                parse_url(value.strip())
            except DNSDiscError as exc:
                raise click.BadParameter(f"{value[:60]!r}: {exc}", param_hint="--bootnode") from None
            continue  # resolved once the other input is checked (_list_seeds)
        try:
            seeds.append(parse_seed(value, crawlable=True))
        except (WireError, SeedWithoutDiscovery) as exc:
            raise click.BadParameter(f"{value[:60]!r}: {exc}", param_hint="--bootnode") from None
    return seeds


def _list_seeds(urls: list[str], dns_server: tuple[str, int] | None) -> list[ENR]:
    """The records of the enrtree:// lists, resolved before the crawl and bounded in time; a list that cannot be
    resolved or verified is one line on stderr, and the crawl goes on with the other seeds."""
    if not urls:
        return []
    try:
        resolver = DNSResolver(dns_server)
    except DNSListError as exc:
        for url in urls:
            click.echo(f"warning: DNS list {url}: {exc}", err=True)
        return []
    limits = SyncLimits(timeout=SEED_LISTS_TIMEOUT)
    records, problems = trio.run(partial(list_records, resolver, urls, limits=limits))
    for problem in problems:
        click.echo(f"warning: DNS list {problem}", err=True)
    # A listed record without a UDP endpoint can be dialled but not asked for neighbours: no crawl seed.
    usable = [record for record in records if enr_address(record) is not None]
    log.info("DNS lists: %d records (%d without a UDP endpoint left out)", len(usable), len(records) - len(usable))
    return usable


def _node_key(path: str | None) -> PrivateKey | None:
    """The key in a --node-key file, or None; a file go-ethereum would refuse is refused with one line."""
    if path is None:
        return None
    try:
        return read_key_file(path)
    except KeyFileError as exc:
        raise click.ClickException(f"--node-key {path}: {exc}") from None


def _database_seeds(db_url: str) -> list[Node | ENR]:
    """Known nodes as seeds: their ENR where we have one, else their last endpoint."""
    try:
        # "The nodes I know" from a database that does not exist is a typo, not a new empty database.
        db = open_database(db_url, create=False)
        try:
            with db.session() as session:
                known = load_known_nodes(session)
        finally:
            db.close()
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    seeds: list[Node | ENR] = []
    for node in known:
        if node.enr is not None:
            seeds.append(ENR.from_rlp(node.enr, verify=False))
        elif node.ip is not None and node.udp_port:
            seeds.append(Node(pubkey=node.pubkey, ip=ip_address(node.ip), udp=node.udp_port, tcp=node.tcp_port))
    return seeds


# Terminal columns below which the live display uses its short labels.
PROGRESS_WIDE = 110
PROGRESS_GAP = "  "  # between two cells of the live display
# Countries and ASes in the end-of-crawl summary; the rest are one "other" row (query countries/asns has them all).
SUMMARY_PLACES = 10


def _duration(seconds: float | None) -> str:
    """A short human duration ("45s", "3m12s", "2h05m"); "?" when unknown."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _progress_cells(p: CrawlProgress, *, short: bool) -> list[str]:
    """The live display's cells (rich markup), each kept whole on one line."""
    s = p.crawl
    answered = f"{s.responded}/{s.visited}"
    if short:
        return [
            f"[bold]{p.elapsed:.0f}s[/]",
            f"done [bold]{p.share_done:.0%}[/]",
            f"{p.rate:.0f}/s",
            f"left ~{_duration(p.remaining_s)}",
            f"found [bold]{s.discovered}[/]",
            f"queue {s.queued}",
            f"busy {s.in_flight}",
            f"answered {answered} (v4 {s.answered_v4}, v5 {s.answered_v5})",
            f"edges {s.edges}",
            f"dropped {s.dropped}",
            f"dials ok [green]{p.dials_ok}[/] failed [red]{p.dials_failed}[/]",
        ]
    return [
        f"[bold]{p.elapsed:6.0f}s[/]",
        f"done [bold]{p.done}/{s.discovered} ({p.share_done:.0%})[/]",
        f"{p.rate:.0f} visits/s",
        f"left ~{_duration(p.remaining_s)}",
        f"discovered [bold]{s.discovered}[/]",
        f"queued {s.queued}",
        f"in flight {s.in_flight}",
        f"answered {answered} (v4 {s.answered_v4}, v5 {s.answered_v5})",
        f"edges {s.edges}",
        f"dropped {s.dropped}",
        f"dials ok [green]{p.dials_ok}[/] failed [red]{p.dials_failed}[/] in flight {s.dials_in_flight}",
    ]


class _ProgressView:
    """The live display, laid out for the width it is rendered at: cells packed into lines, never split."""

    def __init__(self, progress: CrawlProgress) -> None:
        self.progress = progress

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        cells = [Text.from_markup(c) for c in _progress_cells(self.progress, short=width < PROGRESS_WIDE)]
        # A cell wider than a very narrow terminal is cut, never wrapped into the next label.
        line = Text(no_wrap=True, overflow="ellipsis")
        for cell in cells:
            if line and line.cell_len + len(PROGRESS_GAP) + cell.cell_len > width:
                yield line
                line = Text(no_wrap=True, overflow="ellipsis")
            if line:
                line.append(PROGRESS_GAP)
            line.append_text(cell)
        yield line


def _progress_table(p: CrawlProgress) -> _ProgressView:
    return _ProgressView(p)


def _print_dropped(console: Console, summary: CrawlSummary) -> None:
    """What the sybil bound refused (README, "The sybil bound"), when it refused anything."""
    total = sum(count for _, count in summary.dropped)
    if total:
        rules = ", ".join(f"{rule} {count}" for rule, count in summary.dropped if count)
        console.print(f"sybil bound: dropped {total} relayed nodes (per {rules})")


def _share_table(title: str, rows: tuple[tuple[str, int, int | None], ...], counted: str = "nodes") -> Table:
    """One summary histogram: key, count (of ``counted``), share; a ``refused`` column when the rows carry one."""
    total = sum(count for _, count, _ in rows)
    with_refused = any(refused is not None for _, _, refused in rows)
    table = Table(title=None, show_edge=False)
    table.add_column(title)
    table.add_column(counted, justify="right")
    if with_refused:
        table.add_column("refused", justify="right")
    table.add_column("share", justify="right")
    for key, count, refused in rows:
        cells = [key, str(count)] + ([str(refused)] if with_refused else []) + [f"{100 * count / total:.1f}%"]
        table.add_row(*cells)
    return table


def _as_label(asn: int | None, org: str | None) -> str:
    return "unknown" if asn is None else f"AS{asn} {org}" if org else f"AS{asn}"


def _top(rows: tuple[tuple[str, int], ...], *, placed: bool) -> tuple[tuple[str, int, int | None], ...]:
    """The largest SUMMARY_PLACES rows and one "other" row for the rest; none at all for a crawl not enriched."""
    if not placed:
        return ()
    shown = [(key, n, None) for key, n in rows[:SUMMARY_PLACES]]
    rest = rows[SUMMARY_PLACES:]
    if rest:
        shown.append((f"other ({len(rest)})", sum(n for _, n in rest), None))
    return tuple(shown)


def _silent(summary: CrawlSummary) -> str:
    """How many of the dials went to records that never answered discovery, when any did."""
    return f"; {summary.silent_dials} to silent records" if summary.silent_dials else ""


def _print_summary(console: Console, summary: CrawlSummary) -> None:
    """The end-of-crawl summary; every count as the README's "What the numbers mean" defines it.

    The client table counts each node's latest attempt that received a Hello; ``refused``: of those, nodes whose
    attempt did not end ok (a Hello, then too-many-peers, not-eth, ...).
    """
    duration = (summary.ended_at - summary.started_at).total_seconds() if summary.ended_at else float("nan")
    console.print(
        f"crawl {summary.crawl_id}: {summary.nodes} nodes ({summary.responded} answered, "
        f"{summary.with_enr} with ENR), {summary.edges} edges, {summary.dials} dials "
        f"({summary.dials_ok} ok, {summary.dials_failed} failed{_silent(summary)}) in {duration:.1f} s",
        # A terminal gets the line wrapped between words; a pipe or a file gets it whole, for the program reading it.
        soft_wrap=not console.is_terminal,
    )
    sections: tuple[tuple[str, str, tuple[tuple[str, int, int | None], ...]], ...] = (
        ("discovery", "nodes", tuple((key, n, None) for key, n in summary.protocols)),
        ("layer", "nodes", tuple((key, n, None) for key, n in summary.layers)),
        ("dial outcome", "dials", tuple((key, n, None) for key, n in summary.outcomes)),  # attempts, not nodes
        ("client", "nodes", tuple((c.value, c.nodes, c.refused) for c in summary.clients)),
        ("network", "nodes", tuple((f"{n.network} {n.fork}", n.nodes, None) for n in summary.networks)),
        ("country", "nodes", _top(tuple((country or "unknown", n) for country, n in summary.countries), placed=any(
            country is not None for country, _ in summary.countries))),
        ("AS", "nodes", _top(tuple((_as_label(a, org), n) for a, org, n in summary.asns), placed=any(
            a is not None for a, _, _ in summary.asns))),
    )
    for title, counted, rows in sections:
        if rows:
            console.print(_share_table(title, rows, counted))


# The options of a walk, shared by ``crawl`` and ``monitor`` (click builds a new Option from each per command).
_WALK_OPTIONS = (
    click.option("--network", type=click.Choice(NETWORKS), default=None, help="Seed from this network's bootnodes and DNS lists (default mainnet when no --bootnode is given)."),
    click.option("--bootnode", "bootnode_urls", multiple=True, metavar="URL", help="enode:// URL, enr: record or enrtree:// DNS node list to start from (repeatable)."),
    click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, help="SQLite file path or SQLAlchemy URL."),
    click.option("--concurrency", type=click.IntRange(min=1, max=4096), default=DEFAULT_CONCURRENCY, show_default=True, help="Peers enumerated at once, at first and at least (most visits wait on dead records: keep it wide)."),
    click.option("--max-concurrency", type=click.IntRange(min=1, max=16384), default=DEFAULT_MAX_CONCURRENCY, show_default=True, help="At most: the crawl widens from --concurrency while every slot is busy and the CPU keeps up, and narrows when it does not. Equal to --concurrency (or below): a fixed limit."),
    click.option("--dial-concurrency", type=click.IntRange(min=1, max=4096), default=DEFAULT_DIAL_CONCURRENCY, show_default=True, help=f"RLPx dials at once of nodes that answered discovery ({CONNECT_TIMEOUT:g} s TCP connect timeout)."),
    click.option("--silent-dial-concurrency", type=click.IntRange(min=1, max=16384), default=DEFAULT_SILENT_DIAL_CONCURRENCY, show_default=True, help=f"RLPx dials at once of records that never answered discovery, beside --dial-concurrency: most are stale or behind NAT, so each gets one attempt with a {SILENT_CONNECT_TIMEOUT:g} s TCP connect timeout and waits on a file descriptor, not the CPU."),
    click.option("--dial-silent/--no-dial-silent", default=True, show_default=True, help="Also dial records that never answered discovery (--no-dial-silent: only nodes that answered; the crawl ends sooner)."),
    click.option("--udp", "udp", default="[::]:0", show_default=True, metavar="HOST:PORT", help="Discovery UDP address. [::] serves IPv4 and IPv6 peers on one port (IPv4 only, with a log line, where the machine has no IPv6); 0.0.0.0 or a specific address pins one family."),
    click.option("--no-dial", is_flag=True, help="Discovery only: do not dial nodes over RLPx."),
    click.option("--from-db", "from_db", is_flag=True, help="Also seed from every node already in the database (e.g. an imported nodes.json)."),
    click.option("--timeout", type=Seconds(MIN_TIMEOUT, MAX_TIMEOUT), default=DiscoveryConfig().response_timeout, show_default=True, help="Discovery v4 response timeout (s; go-ethereum's respTimeout). A peer whose answers came slowly gets up to 2 of its round trips."),
    click.option("--v5-timeout", type=Seconds(MIN_TIMEOUT, MAX_TIMEOUT), default=DiscoveryV5Config().response_timeout, show_default=True, help="Discovery v5 response timeout per reply (s; go-ethereum's respTimeoutV5), widened like --timeout."),
    click.option("--fixed-timeouts", is_flag=True, help="Wait exactly --timeout / --v5-timeout for every peer, however slow its earlier answers were."),
    click.option("--discovery", "discovery", type=click.Choice(DISCOVERY_MODES), default="both", show_default=True, help="Which DHTs to walk. Our node answers both protocols on its one UDP port either way."),
    click.option("--dial-all", is_flag=True, help="Dial every node with a TCP port, not only those that look like execution-layer nodes (consensus records advertise libp2p ports)."),
    click.option("--node-key", "node_key_file", default=None, metavar="FILE", help=NODE_KEY_HELP),
    dns_server_option,
    click.option("--geoip", "geoip", default=None, metavar="FILE", help=GEOIP_HELP),
    click.option("--asn", "asn", default=None, metavar="FILE", help=ASN_HELP),
    click.option("--metrics", "metrics_address", default=None, metavar="HOST:PORT", help=f"Serve Prometheus metrics at http://HOST:PORT/metrics while running (an empty HOST is {METRICS_HOST}: exposing them is your choice)."),
)


def walk_options(command: F) -> F:
    """Decorate a command with the walk's options (``walk_setup`` turns them into what a walk needs)."""
    for option in reversed(_WALK_OPTIONS):
        command = option(command)
    return command


@dataclass(frozen=True, slots=True, kw_only=True)
class WalkSetup:
    options: CrawlOptions
    node_key: PrivateKey | None
    metrics_address: tuple[str, int] | None
    # --geoip/--asn opened and checked (None without either); the caller closes it.
    geo: GeoIP | None = None


def walk_setup(
    *,
    network: str | None,
    bootnode_urls: tuple[str, ...],
    db_url: str,
    concurrency: int,
    max_concurrency: int,
    dial_concurrency: int,
    silent_dial_concurrency: int,
    dial_silent: bool,
    udp: str,
    no_dial: bool,
    from_db: bool,
    timeout: float,
    v5_timeout: float,
    fixed_timeouts: bool,
    discovery: str,
    dial_all: bool,
    node_key_file: str | None,
    dns_server: tuple[str, int] | None,
    metrics_address: str | None,
    geoip: str | None = None,
    asn: str | None = None,
    duration: float | None = None,
    listen: str | None = None,
) -> WalkSetup:
    """The walk's options from the command line: seeds resolved (DNS lists too), every value checked.

    A bad --geoip/--asn file is refused before anything is sent (DNS lists included)."""
    seeds = _seeds(bootnode_urls)
    list_urls = [url.strip() for url in bootnode_urls if is_dns_list(url)]
    if from_db:
        known = _database_seeds(db_url)
        if not known and not seeds and not list_urls and network is None:
            # "The nodes I know" must never turn into the public network's bootnodes.
            raise click.UsageError("--from-db: the database has no nodes to start from; give --bootnode (or --network)")
        seeds += known
    if network is not None or not (seeds or list_urls):
        if discovery in ("v4", "both"):
            seeds += bootnodes(network or "mainnet")
        if discovery in ("v5", "both"):
            # go-ethereum ships one v5 list (the consensus-layer bootnodes) for every network.
            seeds += v5_bootnodes()
        list_urls += dns_lists(network or "mainnet")
    udp_host, udp_port = _host_port(udp)
    if not no_dial:
        _fit_open_files(dial_concurrency + (silent_dial_concurrency if dial_silent else 0))
    node_key = _node_key(node_key_file)
    metrics = parse_host_port(metrics_address, default_host=METRICS_HOST) if metrics_address is not None else None
    geo = open_geoip(geoip, asn)
    try:
        seeds += _list_seeds(list_urls, dns_server)
        if not seeds:
            raise click.ClickException("no seed to start from: the DNS lists gave no records (see the warnings above)")
        if discovery == "v5" and not any(isinstance(seed, ENR) for seed in seeds):
            raise click.BadParameter("a v5 crawl needs at least one enr: seed (enode URLs carry no record)", param_hint="--bootnode")
    except BaseException:
        if geo is not None:
            geo.close()
        raise
    options = CrawlOptions(
        seeds=tuple(seeds),
        network=network,
        duration=duration,
        concurrency=concurrency,
        max_concurrency=max_concurrency,
        dial_concurrency=dial_concurrency,
        silent_dial_concurrency=silent_dial_concurrency,
        dial=not no_dial,
        dial_silent=dial_silent,
        listen_host=udp_host,
        listen_port=udp_port,
        rlpx_listen=_host_port(listen) if listen else None,
        response_timeout=timeout,
        v5_response_timeout=v5_timeout,
        rtt_windows=not fixed_timeouts,
        discovery=discovery,
        dial_all=dial_all,
    )
    return WalkSetup(options=options, node_key=node_key, metrics_address=metrics, geo=geo)


def _fit_open_files(dials: int) -> None:
    """Fit ``dials`` at once in the open-files limit, or refuse in one line: past it a dial would fail for want of a
    descriptor and be stored as a dead node's."""
    try:
        fit_open_files(dials)
    except TooFewOpenFiles as exc:
        raise click.ClickException(
            f"{dials} dials at once (--dial-concurrency plus --silent-dial-concurrency) need {exc.needed} open files; "
            f"the limit is {exc.hard} (lower them, or raise ulimit -Hn)"
        ) from None


@contextmanager
def walk_database(setup: WalkSetup, db_url: str, *, unenriched: str) -> Iterator[Database]:
    """The database a walk (crawl or monitor) writes, open for the block; what the block raises of the database,
    the --geoip/--asn files (``unenriched`` says what was kept) or the sockets is one line; the database and the
    --geoip/--asn files are closed after."""
    try:
        with database(db_url, create=True) as db:  # the database's errors as one line, closed after
            try:
                yield db
            except GeoIPError as exc:
                raise click.ClickException(f"{unenriched}: {exc}") from None
            except OSError as exc:
                raise click.ClickException(f"cannot open sockets: {exc}") from None
    finally:
        if setup.geo is not None:
            setup.geo.close()


async def with_metrics(
    address: tuple[str, int] | None, run: Callable[[Metrics | None], Awaitable[T]]
) -> T:
    """``run(metrics)`` with the metrics endpoint served around it when ``--metrics`` was given."""
    if address is None:
        return await run(None)
    metrics = Metrics()
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(serve_metrics, metrics, *address)
        except OSError as exc:
            raise OSError(exc.errno, f"--metrics {address[0]}:{address[1]}: {exc.strerror}") from exc
        result = await run(metrics)
        nursery.cancel_scope.cancel()
    return result


async def _crawl_with_metrics(
    db: Database, setup: WalkSetup, on_progress: Callable[[CrawlProgress], None] | None, metrics: Metrics | None
) -> CrawlSummary:
    watch = metrics.watch if metrics is not None else None
    started = trio.current_time()
    summary = await run_crawl(
        db, setup.options, private_key=setup.node_key, on_progress=on_progress, watch=watch, locator=setup.geo
    )
    if metrics is not None and summary.ended_at is not None:
        metrics.cycle_finished(
            "crawl", duration=trio.current_time() - started, finished_at=summary.ended_at.timestamp(), stopped=False
        )
    return summary


@click.command("crawl")
@walk_options
@click.option("--duration", type=Seconds(0, MAX_DURATION, minimum_open=True), default=None, help="Stop after this many seconds (default: when done).")
@click.option("--listen", "listen", default=None, metavar="HOST:PORT", help="Also accept inbound RLPx peers here and record them.")
def crawl_command(duration: float | None, listen: str | None, **walk: Any) -> None:
    """Walk the discovery v4 and v5 DHTs, dial execution-layer nodes over RLPx, store everything in the database.

    Seeds: every --bootnode (enode:// URLs are walked over v4; enr: records over v4 and v5; enrtree:// DNS lists
    are resolved before the crawl, their records visited like any enr: seed), the database's nodes with --from-db,
    and the built-in seeds of --network (go-ethereum's v4 list and DNS lists, and its v5 ENRs for v5).
    With --geoip/--asn, the crawl's nodes and sightings get their country and AS when it ends, before the summary.
    """
    setup = walk_setup(duration=duration, listen=listen, **walk)
    with walk_database(setup, walk["db_url"], unenriched="the crawl is stored, but not enriched") as db:
        console = Console(stderr=True)
        if console.is_terminal:
            with Live(console=console, refresh_per_second=4, transient=True) as live:
                show = lambda p: live.update(_progress_table(p))  # noqa: E731
                summary = trio.run(with_metrics, setup.metrics_address, partial(_crawl_with_metrics, db, setup, show))
        else:
            summary = trio.run(with_metrics, setup.metrics_address, partial(_crawl_with_metrics, db, setup, None))
    _print_summary(Console(), summary)
    _print_dropped(Console(), summary)


def _ping_key(db_url: str, node_key: PrivateKey | None) -> PrivateKey:
    """Ping as the database's identity (or a --node-key one, registered there): a fresh key would be remembered
    by the peer as one more node, which the next crawl would find."""
    try:
        db = open_database(db_url)
        try:
            secret = node_key.secret if node_key is not None else None
            identity = claim_identity(db, node_key=secret, now=datetime.now(timezone.utc))
        finally:
            db.close()
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    return PrivateKey(identity.private_key)


async def _ping(seed: Node | ENR, timeout: float, key: PrivateKey) -> dict[str, Any]:
    node = seed.to_node() if isinstance(seed, ENR) else seed
    out: dict[str, Any] = {"node_id": node.node_id.hex(), "enode": format_enode(node)}
    host = "::" if node.ip is not None and node.ip.version == 6 else "0.0.0.0"
    if node.ip is not None and node.ip.is_loopback:
        host = str(node.ip)
    # One port for both protocols, as in a crawl.
    ours = DiscoveryNode(
        key,
        host=host,
        v4_config=DiscoveryConfig(response_timeout=timeout),
        v5_config=DiscoveryV5Config(response_timeout=timeout),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(ours.run)
        discovery, v5 = ours.v4, ours.v5
        assert v5 is not None  # a DiscoveryNode speaks both unless told otherwise
        if isinstance(seed, ENR) and enr_address(seed) is not None:
            # A record is all a v5 session needs: PING, then FINDNODE(0) for the node's own current record.
            v5_pong = await v5.ping(seed)
            out["v5"] = {"pong": v5_pong is not None}
            if v5_pong is not None:
                own = await v5.find_node(seed, (0,)) or []
                out["v5"].update(
                    enr_seq=v5_pong.enr_seq,
                    seen_as=f"{v5_pong.recipient_ip}:{v5_pong.recipient_port}",
                    enr_text=own[0].to_text() if own else None,
                )
        if node.udp:
            pong = await discovery.ping(node)
            out["pong"] = pong is not None
            if pong is not None:
                out["enr_seq"] = pong.enr_seq
                # Like geth, the node answers ENRRequest only once it has verified our endpoint.
                await discovery.bond(node)
                enr = await discovery.request_enr(node)
                out["enr"] = enr.to_dict() if enr is not None else None
                out["enr_text"] = enr.to_text() if enr is not None else None
        nursery.cancel_scope.cancel()
    if node.tcp:
        result = await dial(node, key, config=DialConfig())
        out["rlpx"] = {
            "outcome": result.outcome.value,
            "error": result.error,
            "disconnect_reason": result.disconnect_reason,
            "client_id": result.hello.client_id if result.hello else None,
            "client": None if result.client is None else {
                k: getattr(result.client, k) for k in ("name", "version", "os", "arch", "language", "user_data")
            },
            "capabilities": [f"{c.name}/{c.version}" for c in result.capabilities],
            "eth_version": result.eth_version,
        }
        if result.status is not None:
            st = result.status
            out["rlpx"]["status"] = {
                "network_id": st.network_id,
                "genesis": st.genesis.hex(),
                "fork_hash": st.fork_id.hash.hex(),
                "fork_next": st.fork_id.next,
                "head": st.head_hash.hex(),
            }
        out["rlpx"]["head_number"] = result.head_number
        out["rlpx"]["synced"] = result.synced
    return out


@click.command("ping")
@click.argument("url")
@click.option("--timeout", type=click.FloatRange(min=0.05), default=1.0, show_default=True, help="Discovery response timeout (s).")
@click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, help="The database whose node identity to ping as (SQLite file path or SQLAlchemy URL).")
@click.option("--node-key", "node_key_file", default=None, metavar="FILE", help=NODE_KEY_HELP)
def ping_command(url: str, timeout: float, db_url: str, node_key_file: str | None) -> None:
    """Discovery v4 ping and ENR request (and, for an enr: record, a discovery v5 PING and FINDNODE 0), then RLPx Hello/Status, against one node; prints JSON."""
    try:
        seed = parse_seed(url)
    except WireError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None
    key = _ping_key(db_url, _node_key(node_key_file))
    result = trio.run(_ping, seed, timeout, key)
    click.echo(json.dumps(result, indent=2))
    if not result.get("pong") and not result.get("v5", {}).get("pong") and result.get("rlpx", {}).get("outcome") != "ok":
        sys.exit(1)
