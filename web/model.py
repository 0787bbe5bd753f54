"""The page model shared by ``ethcrawl report`` and ``ethcrawl serve``: sections of panels, each a table of rows
from db.rows (the rows ``ethcrawl query ... --format json`` prints) and the chart drawn from them.

One function per section, listed in ``SECTIONS`` in page order; a new section (a new db query) is a new function
and an entry there.  A section with nothing to show (a database never enriched, no walk to compare) says why in
its note.  Nothing here counts: every number is a db.rows value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ethcrawl.db.crawl_info import crawl_parameters
from ethcrawl.db.errors import NotFound
from ethcrawl.db.readiness import last_fork
from ethcrawl.db.scope import CrawlScope
from ethcrawl.db.rows import (
    HELLO_LABELS, Row, Session, Table, as_text, asn_table, churn_tables, country_table, crawl_table, fork_targets, history_table, iso,
    fork_table, hello_table, layer_table, network_table, outcome_table, readiness_table, topology_summary, topology_table,
    uptime_distribution_table,
)  # fmt: skip

from .charts import ChartSpec

__all__ = [
    "Scope", "Panel", "Section", "Header", "SECTIONS", "build_sections", "build_header", "SectionBuilder",
    "MAX_HISTORY_CRAWLS", "MAX_CHURN_ROWS",
]

MAX_HISTORY_CRAWLS = 30  # crawls on the share-history chart, the newest: more points than that cannot be read
MAX_CHURN_ROWS = 50  # changed nodes listed on a page; the command under the table lists every one


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Which crawls the share counts read (db.scope.CrawlScope: one crawl, the crawls started in [since, until),
    or every crawl; each node's latest attempt in them), with what a page says about it."""

    crawl_id: int | None = None
    since: datetime | None = None  # aware
    until: datetime | None = None  # aware

    @property
    def crawls(self) -> CrawlScope:
        return CrawlScope(crawl_id=self.crawl_id, since=self.since, until=self.until)

    @property
    def counts(self) -> dict[str, Any]:
        """The scope as the db.rows share tables take it."""
        return {"scope": self.crawls}

    def includes(self, crawl: Row) -> bool:
        """Whether a ``query crawls`` row is in scope (db.scope: a crawl belongs to the window its start is in)."""
        if self.crawl_id is not None and crawl["crawl"] != self.crawl_id:
            return False
        started = _parse_iso(str(crawl["started"]))
        return (self.since is None or started >= self.since) and (self.until is None or started < self.until)

    def describe(self) -> str:
        window = "".join(
            text for text in (
                f" started since {iso(self.since)}" if self.since is not None else "",
                f" started before {iso(self.until)}" if self.until is not None else "",
            )
        )
        if self.crawl_id is not None:
            return f"crawl {self.crawl_id}"
        if window:
            return f"crawls{window} (each node's latest attempt in them)"
        return "every crawl (each node's latest attempt)"

    def parameters(self) -> list[tuple[str, str]]:
        """The scope as query parameters / CLI options (name, value)."""
        found = [("crawl", str(self.crawl_id))] if self.crawl_id is not None else []
        found += [("since", iso(self.since))] if self.since is not None else []
        return found + ([("until", iso(self.until))] if self.until is not None else [])


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel:
    """One table and the chart of its rows; ``query`` and ``api`` name the CLI command and endpoint giving them."""

    key: str  # unique on the page: the chart's file name with --format png|svg, and the HTML anchor
    caption: str
    table: Table
    chart: ChartSpec | None
    query: str  # e.g. "ethcrawl query clients --crawl 2 --format json"
    api: str | None  # e.g. "/api/clients?crawl=2"


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    key: str
    title: str
    panels: tuple[Panel, ...] = ()
    note: str = ""  # what the numbers mean, or why the section is empty


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """The report's header: what was read, which crawls, their time span and the parameters they ran with."""

    database: str
    scope: str
    crawls: int
    first_started: str | None
    last_ended: str | None  # None while the newest crawl runs (or if it was killed)
    parameters_of: int | None  # the crawl whose parameters are shown: the one chosen, else the newest
    parameters: dict[str, Any] = field(default_factory=dict)


SectionBuilder = Callable[[Session, Scope], Section]


def _api(path: str, scope: Scope, *, scoped: bool = True, extra: Sequence[tuple[str, str]] = ()) -> str:
    parameters = [*extra, *(scope.parameters() if scoped else [])]
    return path + ("?" + "&".join(f"{name}={value}" for name, value in parameters) if parameters else "")


def _query(command: str, scope: Scope, *, scoped: bool = True) -> str:
    """The CLI command printing the same rows."""
    options = "".join(f" --{name} {value}" for name, value in (scope.parameters() if scoped else []))
    return f"ethcrawl query {command}{options} --format json"


def _text(row: Row, column: str) -> str:
    return as_text(row[column])


def _hello_panel(session: Session, scope: Scope, dimension: str) -> Panel:
    label = HELLO_LABELS[dimension]
    if dimension == "versions":
        name: Callable[[Row], str] = lambda r: f"{_text(r, 'client')} {_text(r, 'version')}"
    else:
        name = lambda r: _text(r, label)  # noqa: E731
    return Panel(
        key=dimension, caption=f"Nodes by {label}", table=hello_table(session, dimension, **scope.counts),
        chart=ChartSpec(kind="barh", title=f"Nodes by {label}", label=name),
        query=_query(dimension, scope), api=_api(f"/api/{dimension}", scope),
    )


def clients_section(session: Session, scope: Scope) -> Section:
    return Section(
        key="clients", title="Clients and versions",
        panels=(_hello_panel(session, scope, "clients"), _hello_panel(session, scope, "versions")),
        note="From each node's latest attempt that received a Hello; 'refused': of those, nodes whose attempt did "
        "not end ok (a Hello, then too-many-peers, ...).",
    )


def platform_section(session: Session, scope: Scope) -> Section:
    return Section(
        key="platform", title="Operating system, architecture and runtime",
        panels=tuple(_hello_panel(session, scope, d) for d in ("os", "arch", "runtimes")),
        note="As the client id of each node's latest Hello names them.",
    )


def networks_section(session: Session, scope: Scope) -> Section:
    table = network_table(session, **scope.counts)
    chart = ChartSpec(kind="barh", title="Nodes by network and fork", label=lambda r: f"{_text(r, 'network')} / {_text(r, 'fork')}")
    panel = Panel(key="networks", caption="Nodes by network and current fork", table=table, chart=chart,
                  query=_query("networks", scope), api=_api("/api/networks", scope))
    return Section(key="networks", title="Networks and forks", panels=(panel,),
                   note="From each node's latest attempt that received a Status (EIP-2124 fork id).")


def readiness_section(session: Session, scope: Scope) -> Section:
    table = fork_table(session, **scope.counts)
    chart = ChartSpec(kind="barh", title="Readiness for the next fork", label=lambda r: f"{_text(r, 'network')}: {_text(r, 'readiness')}")
    panel = Panel(key="forks", caption="Readiness for the next scheduled fork, per network", table=table, chart=chart,
                  query=_query("forks", scope), api=_api("/api/forks", scope))
    return Section(key="forks", title="Fork readiness", panels=(panel,),
                   note="'share': percent of the network's nodes. Per client and over time: see 'The network over time'.")


def layers_section(session: Session, scope: Scope) -> Section:
    chart = ChartSpec(
        kind="barh", title="Nodes by layer and discovery protocols", keep=lambda r: r["by"] == "protocols",
        label=lambda r: f"{_text(r, 'layer')}: {_text(r, 'value')}",
    )
    panel = Panel(key="layers", caption="Nodes by layer, discovery protocols and network", table=layer_table(session, scope.crawls),
                  chart=chart, query=_query("layers", scope), api=_api("/api/layers", scope))
    return Section(key="layers", title="Layers and discovery protocols", panels=(panel,),
                   note="The nodes sighted in the crawls in scope, each by its stored (latest) ENR: shares below each "
                   "'all' row are within the layer.")


def outcomes_section(session: Session, scope: Scope) -> Section:
    chart = ChartSpec(kind="barh", title="Nodes by outcome of their latest dial", label=lambda r: _text(r, "outcome"))
    panel = Panel(key="outcomes", caption="Nodes by the outcome of their latest RLPx attempt",
                  table=outcome_table(session, **scope.counts), chart=chart,
                  query=_query("outcomes", scope), api=_api("/api/outcomes", scope))
    return Section(key="outcomes", title="Dial outcomes", panels=(panel,))


def topology_section(session: Session, scope: Scope) -> Section:
    summary = topology_summary(session, scope.crawl_id)
    if summary is None:
        return Section(key="topology", title="Topology", note="The database holds no crawl yet.")
    rows = topology_table(summary)
    scope = Scope(crawl_id=int(summary["crawl"]))
    query, api = _query("topology", scope), _api("/api/topology", scope)

    def part(measure: str | None) -> Table:
        return Table(rows.columns, [r for r in rows.rows if (r["degree"] is None if measure is None else r["measure"] == measure)])

    panels = [Panel(key="topology", caption="Measures", table=part(None), chart=None, query=query, api=api)]
    for measure, what in (("in_degree", "In-degree: how many tables we saw hold a node"),
                          ("out_degree", "Out-degree: how many nodes a node returned")):
        chart = ChartSpec(kind="bar", title=what, label=lambda r: _text(r, "degree"), values=("value",), xlabel=measure.replace("_", "-"),
                          position=lambda r: float(r["degree"]) if isinstance(r["degree"], int) else 0.0)
        panels.append(Panel(key=measure.replace("_", "-"), caption=what, table=part(measure), chart=chart, query=query, api=api))
    return Section(
        key="topology", title=f"Topology of crawl {summary['crawl']}", panels=tuple(panels),
        note="Edge A -> B: A's discovery answers contained B. 'answered_but_returned_by_nobody': nodes no table we "
        "saw held. Distribution rows: value = nodes with that degree.",
    )


def history_section(session: Session, scope: Scope) -> Section:
    chart = ChartSpec(kind="line", title="Crawls", label=lambda r: f"#{_text(r, 'crawl')}",
                      values=("nodes", "answered", "dials_ok"), xlabel="crawl")
    crawls = crawl_table(session)
    if scope.since is not None or scope.until is not None:  # the window's crawls; one --crawl still shows them all
        crawls = Table(crawls.columns, [r for r in crawls.rows if scope.includes(r)])
    panel = Panel(key="crawls", caption="Crawls, newest first", table=crawls, chart=chart,
                  query=_query("crawls", scope, scoped=False), api="/api/crawls")
    return Section(key="history", title="History across crawls", panels=(panel,))


def _readiness_panel(session: Session, scope: Scope, now: datetime) -> tuple[Panel | None, str]:
    """``query readiness`` per client and version: each network's next fork as of ``now``, else (no network
    schedules one) the fork that activated last, asked by name; with what the section says about the choice."""
    try:
        fork, targets = None, fork_targets(None, now)
        said = "Readiness: each network's next scheduled fork."
    except NotFound:
        fork = last_fork(now)
        if fork is None:
            return None, "Readiness: no network has a fork in the fork tables."
        targets = fork_targets(fork, now)
        said = (f"Readiness: no network schedules a fork after {iso(now)}, so this is {fork}, the fork that activated "
                "last: a node not ready for it is left on the old chain.")
    chart = ChartSpec(
        kind="barh", title="Percent of nodes ready, by client and version", values=("share_ready",), xlabel="percent ready",
        label=lambda r: f"{_text(r, 'network')} {_text(r, 'fork')}: {_text(r, 'client') or 'unknown'} {_text(r, 'version')}".rstrip(),
    )
    forks = ", ".join(f"{t.network} {t.fork}" for t in targets)
    panel = Panel(
        key="readiness-clients", caption=f"Readiness for {forks}, per client and version",
        table=readiness_table(session, targets, scope.crawls), chart=chart,
        query=_query("readiness" + (f" --fork {fork}" if fork else ""), scope),
        api=_api("/api/readiness", scope, extra=[("fork", fork)] if fork else []),
    )
    return panel, said


def _share_history_panel(session: Session, scope: Scope) -> Panel:
    """``query history clients`` per crawl over the crawls in the window (one --crawl still shows them all), at
    most the newest MAX_HISTORY_CRAWLS: the window then starts at the oldest of those."""
    window = Scope(since=scope.since, until=scope.until)
    crawls = [r for r in crawl_table(session).rows if window.includes(r)]  # newest first
    if len(crawls) > MAX_HISTORY_CRAWLS:
        window = Scope(since=_parse_iso(str(crawls[MAX_HISTORY_CRAWLS - 1]["started"])), until=scope.until)
    chart = ChartSpec(
        kind="lines", title="Client share per crawl", label=lambda r: _text(r, "period"), series=lambda r: _text(r, "value"),
        values=("share",), xlabel="crawl", ylabel="percent of the crawl's nodes",
    )
    return Panel(
        key="client-history", caption="Client share per crawl, oldest first",
        table=history_table(session, "clients", "crawl", window.crawls), chart=chart,
        query=_query("history clients --every crawl", window), api=_api("/api/history/clients", window, extra=[("every", "crawl")]),
    )


def _churn_panels(session: Session, scope: Scope) -> tuple[list[Panel], str]:
    """``query churn`` of the crawl chosen (else the latest walk) against the walk before it."""
    try:
        found = churn_tables(session, scope.crawl_id)
    except NotFound as exc:
        return [], f"Churn: {exc}."
    pair = Scope(crawl_id=found.crawl)
    options = f" --crawl {found.crawl} --against {found.against}"
    api = f"/api/churn?crawl={found.crawl}&against={found.against}"
    counts = Panel(
        key="churn", caption=f"Churn: crawl {found.crawl} against crawl {found.against}", table=found.counts,
        chart=ChartSpec(kind="barh", title=f"Nodes by change, crawl {found.crawl} against {found.against}", label=lambda r: _text(r, "change")),
        query=f"ethcrawl query churn{options}", api=None,  # the table format ends with these counts
    )
    rows = found.changes.rows
    shown = "" if len(rows) <= MAX_CHURN_ROWS else f" (the first {MAX_CHURN_ROWS} of {len(rows)})"
    nodes = Panel(
        key="churn-nodes", caption=f"Nodes that changed{shown}", table=Table(found.changes.columns, rows[:MAX_CHURN_ROWS]),
        chart=None, query=_query(f"churn{options}", pair, scoped=False), api=api,
    )
    return [counts, nodes], (f"Churn: a node is present in a crawl when it answered discovery or sent its Hello there; "
                             f"new, gone, returned and upgraded compare crawl {found.crawl} with crawl {found.against}.")


def _uptime_panel(session: Session, scope: Scope) -> Panel:
    chart = ChartSpec(kind="bar", title="Nodes by uptime", label=lambda r: _text(r, "uptime"), xlabel="uptime (answered / checks)")
    return Panel(
        key="uptime", caption="Nodes by uptime: crawls that met them present, of the crawls that checked them",
        table=uptime_distribution_table(session, scope.crawls), chart=chart,
        query=_query("uptime --distribution", scope), api=_api("/api/uptime/distribution", scope),
    )


def network_over_time_section(session: Session, scope: Scope) -> Section:
    """Fork readiness per client and version, client share per crawl, churn of the latest walk, uptime."""
    readiness, said_readiness = _readiness_panel(session, scope, datetime.now(timezone.utc).replace(microsecond=0))
    churn_panels, said_churn = _churn_panels(session, scope)
    panels = [*([readiness] if readiness else []), _share_history_panel(session, scope), *churn_panels, _uptime_panel(session, scope)]
    return Section(key="over-time", title="The network over time", panels=tuple(panels), note=" ".join((said_readiness, said_churn)))


def _not_enriched(table: Table, key: str) -> bool:
    """No node in scope has a place: the database was never enriched (``ethcrawl enrich``, crawl --geoip/--asn)."""
    return all(row[key] is None for row in table.rows)


def countries_section(session: Session, scope: Scope) -> Section:
    table = country_table(session, **scope.counts)
    if _not_enriched(table, "country"):
        return Section(key="countries", title="Countries",
                       note="Not enriched: run `ethcrawl enrich --geoip FILE.mmdb` (or crawl with --geoip) to place nodes.")
    chart = ChartSpec(kind="barh", title="Nodes by country", label=lambda r: _text(r, "country") or "unknown")
    panel = Panel(key="countries", caption="Nodes by the country of their address", table=table, chart=chart,
                  query=_query("countries", scope), api=_api("/api/countries", scope))
    return Section(key="countries", title="Countries", panels=(panel,),
                   note="An empty country: an address the GeoIP file did not place.")


def asns_section(session: Session, scope: Scope) -> Section:
    table = asn_table(session, **scope.counts)
    if _not_enriched(table, "asn"):
        return Section(key="asns", title="Autonomous systems (hosting)",
                       note="Not enriched: run `ethcrawl enrich --asn FILE.mmdb` (or crawl with --asn) to place nodes.")
    chart = ChartSpec(
        kind="barh", title="Nodes by autonomous system",
        label=lambda r: f"AS{_text(r, 'asn')} {_text(r, 'as_org')}".strip() if r["asn"] is not None else "unknown",
    )
    panel = Panel(key="asns", caption="Nodes by the autonomous system announcing their address", table=table,
                  chart=chart, query=_query("asns", scope), api=_api("/api/asns", scope))
    return Section(key="asns", title="Autonomous systems (hosting)", panels=(panel,),
                   note="How much of the network runs in one provider's network. An empty asn: not placed.")


# The page, in order.
SECTIONS: tuple[SectionBuilder, ...] = (
    clients_section, platform_section, networks_section, readiness_section, layers_section, outcomes_section,
    countries_section, asns_section, topology_section, history_section, network_over_time_section,
)


def build_sections(session: Session, scope: Scope) -> list[Section]:
    return [build(session, scope) for build in SECTIONS]


def build_header(session: Session, scope: Scope, database: str) -> Header:
    """The header: the crawls in scope (from ``query crawls``' rows), their span, and one crawl's parameters."""
    crawls = crawl_table(session).rows  # newest first
    chosen = [r for r in crawls if scope.includes(r)]
    shown = scope.crawl_id if scope.crawl_id is not None else (int(str(crawls[0]["crawl"])) if crawls else None)
    parameters = (crawl_parameters(session, shown) or {}) if shown is not None else {}
    return Header(
        database=database,
        scope=scope.describe(),
        crawls=len(chosen),
        first_started=str(chosen[-1]["started"]) if chosen else None,
        last_ended=None if not chosen or chosen[0]["ended"] is None else str(chosen[0]["ended"]),
        parameters_of=shown,
        parameters=parameters,
    )
