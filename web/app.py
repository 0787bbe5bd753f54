"""``ethcrawl serve``: a read-only dashboard and JSON API over the crawl database (FastAPI, Jinja2 templates).

The API serves the rows ``ethcrawl query ... --format json`` prints, with the same field names (db.rows); a query
printing JSON lines is a JSON array here, ``query topology``'s object an object, and ``/api/nodes`` a page:
``{"total", "limit", "offset", "nodes": [rows of query nodes]}``.  The HTML pages show the same rows.  The app
only reads: the database is opened read-only by the caller, pages are bounded (``MAX_PAGE``), every value is
escaped by the templates, and the Content-Security-Policy allows no script at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from ethcrawl.db.engine import Database
from ethcrawl.db.errors import DatabaseError
from ethcrawl.db.errors import NotFound
from ethcrawl.db.history import HISTORY_KINDS, PERIODS
from ethcrawl.db.node_story import node_story, resolve_node
from ethcrawl.db.node_filter import (
    BadFilter, NodeFilter, NodePage, filter_nodes, parse_asn, parse_cidr, parse_country, parse_fork, parse_network,
)  # fmt: skip
from ethcrawl.db.rows import (
    HELLO_LABELS, Row, Session, Table, asn_table, churn_tables, country_table, crawl_table, fork_table, fork_targets, hello_table,
    history_table, layer_table, network_table, not_ready_table, outcome_table, readiness_table, story_object, story_parts,
    topology_summary, uptime_distribution_table, uptime_table,
)  # fmt: skip
from ethcrawl.db.scope import scope_of

from .model import Scope, build_header, build_sections
from .pages import chart_svgs, ethcrawl_version, now_text, render

__all__ = ["create_app", "DEFAULT_PAGE", "MAX_PAGE", "NODE_LIST_COLUMNS", "SECURITY_HEADERS"]

DEFAULT_PAGE = 50  # nodes per page when no limit is given
MAX_PAGE = 500  # nodes per page at most: one request never serialises the whole database
NODE_ID_HEX = 64  # hex digits of a node id (keccak256 of the public key)
NODE_ID_SHOWN = 16  # hex digits in the node list, as `query nodes --format table` abbreviates them
# The node list's columns (the node page shows every column of the row).
NODE_LIST_COLUMNS = (
    "ip", "tcp_port", "client_id", "client_name", "client_version", "network", "fork_name", "layer", "protocols",
    "last_outcome", "last_seen",
)  # fmt: skip
# On every response: no script, no frames, nothing loaded from elsewhere; pages are not cached by proxies.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

CrawlParam = Annotated[int | None, Query(ge=1, description="One crawl only (default: every crawl in the window).")]
ClientParam = Annotated[str | None, Query(description="Only nodes whose latest Hello named this client.")]
SinceParam = Annotated[datetime | None, Query(description="Only crawls started at or after this time (ISO 8601; UTC if no zone).")]
UntilParam = Annotated[datetime | None, Query(description="Only crawls started before this time (ISO 8601; UTC if no zone).")]
AtParam = Annotated[datetime | None, Query(description="Which fork is next as of this time (ISO 8601; UTC if no zone; default now).")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Nodes per page (at most {MAX_PAGE}).")]
Offset = Annotated[int, Query(ge=0)]


def _session(request: Request) -> Iterator[Session]:
    """One session per request, on the app's database (``app.state.db``)."""
    db: Database = request.app.state.db
    with db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


def _empty_is_none(value: str | None) -> str | None:
    """A form's empty field means 'not filtering'."""
    return value if value else None


def _aware(when: datetime | None) -> datetime | None:
    """A time without a zone is UTC, as the CLI reads it."""
    return when if when is None or when.tzinfo else when.replace(tzinfo=timezone.utc)


def node_filter_params(
    client: str | None = None,
    version: Annotated[str | None, Query(description="Client version prefix, e.g. 1.14.")] = None,
    network: str | None = None,
    fork: str | None = None,
    ip: Annotated[str | None, Query(description="CIDR, e.g. 10.0.0.0/8.")] = None,
    layer: Annotated[str | None, Query(description="execution, consensus, other or unknown.")] = None,
    outcome: Annotated[str | None, Query(description="Outcome of the latest attempt, e.g. ok.")] = None,
    discovery: Annotated[str | None, Query(description="v4 or v5: that protocol ever answered.")] = None,
    synced: bool | None = None,
    dialable: bool = False,
    seen_since: datetime | None = None,
    country: Annotated[str | None, Query(description="ISO 3166 code of the latest address, e.g. DE (once enriched).")] = None,
    asn: Annotated[str | None, Query(description="AS announcing the latest address, e.g. 3320 or AS3320 (once enriched).")] = None,
) -> NodeFilter:
    """The node filters of ``query nodes`` as query parameters (same meaning; empty values are ignored)."""
    try:
        network_text, fork_text, ip_text = _empty_is_none(network), _empty_is_none(fork), _empty_is_none(ip)
        return NodeFilter(
            client=_empty_is_none(client), version_prefix=_empty_is_none(version),
            network=parse_network(network_text) if network_text else None,
            fork=parse_fork(fork_text) if fork_text else None,
            cidr=parse_cidr(ip_text) if ip_text else None,
            layer=_empty_is_none(layer), outcome=_empty_is_none(outcome), discovery=_empty_is_none(discovery),
            synced=synced, dialable=dialable,
            seen_since=_aware(seen_since),
            country=parse_country(country) if country else None,
            asn=parse_asn(asn) if asn else None,
        )
    except BadFilter as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


FilterDep = Annotated[NodeFilter, Depends(node_filter_params)]


def create_app(db: Database, *, database_name: str) -> FastAPI:
    """The dashboard over ``db`` (opened read-only by the caller, closed by it after the server stops)."""
    app = FastAPI(
        title="ethcrawl", version=ethcrawl_version(), docs_url=None, redoc_url=None,  # those pages load remote JS
        description="Read-only answers from an ethcrawl database; the rows `ethcrawl query ... --format json` prints.",
    )

    app.state.db = db

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Any:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(DatabaseError)
    async def database_error(request: Request, exc: DatabaseError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def scoped(s: Session, crawl: int | None, since: datetime | None = None, until: datetime | None = None) -> Scope:
        """The crawls a request names (db.scope.scope_of: an unknown crawl or a window no crawl can start in, 404)."""
        since, until = _aware(since), _aware(until)
        try:
            scope_of(s, crawl, since, until)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return Scope(crawl_id=crawl, since=since, until=until)

    def share_route(name: str, table: Callable[..., Table], summary: str) -> None:
        def endpoint(
            s: SessionDep, crawl: CrawlParam = None, client: ClientParam = None, since: SinceParam = None,
            until: UntilParam = None,
        ) -> list[Row]:
            scope = scoped(s, crawl, since, until)
            lowered = None if client is None else client.lower()  # client names are stored lower case
            return table(s, client=lowered, **scope.counts).rows

        app.add_api_route(f"/api/{name}", endpoint, methods=["GET"], name=f"api_{name}", summary=summary,
                          response_model=list[dict[str, Any]])

    for dimension, label in HELLO_LABELS.items():
        share_route(dimension, lambda s, d=dimension, **kw: hello_table(s, d, **kw), f"Nodes by {label} (query {dimension})")
    share_route("outcomes", outcome_table, "Nodes by the outcome of their latest attempt (query outcomes)")
    share_route("networks", network_table, "Nodes by network and fork (query networks)")
    share_route("forks", fork_table, "Readiness for the next fork per network (query forks)")
    share_route("countries", country_table, "Nodes by the country of their address (query countries)")
    share_route("asns", asn_table, "Nodes by the autonomous system announcing their address (query asns)")

    @app.get("/api/layers", summary="Nodes by layer, discovery protocols and network (query layers)")
    def api_layers(
        s: SessionDep, crawl: CrawlParam = None, since: SinceParam = None, until: UntilParam = None
    ) -> list[dict[str, Any]]:
        return [dict(r) for r in layer_table(s, scoped(s, crawl, since, until).crawls).rows]

    @app.get("/api/crawls", summary="Every crawl, newest first (query crawls)")
    def api_crawls(s: SessionDep) -> list[dict[str, Any]]:
        return [dict(r) for r in crawl_table(s).rows]

    @app.get("/api/topology", summary="One crawl's DHT graph, default the latest (query topology --format json)")
    def api_topology(
        s: SessionDep, crawl: CrawlParam = None,
        discovery: Annotated[str | None, Query(pattern="^v[45]$")] = None,
    ) -> dict[str, Any]:
        summary = topology_summary(s, crawl, discovery)
        if summary is None:
            raise HTTPException(status_code=404, detail="the database holds no crawl yet" if crawl is None else f"the database holds no crawl {crawl}")
        return summary

    @app.get("/api/nodes", summary="Nodes matching every filter, a page at a time (query nodes --format json)")
    def api_nodes(s: SessionDep, node_filter: FilterDep, limit: Limit = DEFAULT_PAGE, offset: Offset = 0) -> dict[str, Any]:
        page = filter_nodes(s, node_filter, limit=limit, offset=offset)
        return {"total": page.total, "limit": limit, "offset": offset, "nodes": [dict(r) for r in page.rows]}

    def node_id_of(text: str) -> str:
        wanted = text.lower()
        if len(wanted) != NODE_ID_HEX or any(c not in "0123456789abcdef" for c in wanted):
            raise HTTPException(status_code=400, detail=f"a node id is {NODE_ID_HEX} hex digits")
        return wanted

    def one_node(s: Session, node_id: str) -> Row:
        wanted = node_id_of(node_id)
        found = [r for r in filter_nodes(s, NodeFilter()).rows if r["node_id"] == wanted]
        if not found:
            raise HTTPException(status_code=404, detail="the database holds no such node")
        return found[0]

    @app.get("/api/nodes/{node_id}", summary="One node's row (query nodes --format json)")
    def api_node(s: SessionDep, node_id: str) -> dict[str, Any]:
        return dict(one_node(s, node_id))

    def story_of(s: Session, node_id: str) -> dict[str, Any]:
        """``query node ID --format json``'s object; a node known from RLPx attempts alone has a story too."""
        wanted = node_id_of(node_id)
        try:
            return story_object(node_story(s, resolve_node(s, wanted)))
        except NotFound:
            raise HTTPException(status_code=404, detail="the database holds no such node") from None

    @app.get("/api/nodes/{node_id}/story", summary="One node's story across crawls (query node ID --format json)")
    def api_node_story(s: SessionDep, node_id: str) -> dict[str, Any]:
        return story_of(s, node_id)

    @app.get("/api/history/{kind}", summary="A share query's rows per crawl, day or week (query history KIND)")
    def api_history(
        s: SessionDep, kind: str, every: str = "crawl", crawl: CrawlParam = None, since: SinceParam = None,
        until: UntilParam = None,
    ) -> list[dict[str, Any]]:
        if kind not in HISTORY_KINDS:
            raise HTTPException(status_code=400, detail=f"no history of {kind!r}; one of {', '.join(HISTORY_KINDS)}")
        if every not in PERIODS:
            raise HTTPException(status_code=400, detail=f"every must be one of {', '.join(PERIODS)}, not {every!r}")
        return [dict(r) for r in history_table(s, kind, every, scoped(s, crawl, since, until).crawls).rows]

    @app.get("/api/churn", summary="Nodes that changed between two crawls (query churn --format json)")
    def api_churn(
        s: SessionDep, crawl: Annotated[int | None, Query(ge=1, description="The later crawl (default: the latest walk).")] = None,
        against: Annotated[int | None, Query(ge=1, description="The earlier crawl (default: the walk before crawl).")] = None,
    ) -> list[dict[str, Any]]:
        try:
            found = churn_tables(s, crawl, against)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return [dict(r) for r in found.changes.rows]

    @app.get("/api/uptime", summary="Per node checks, answered and uptime, a page at a time (query uptime --format json)")
    def api_uptime(
        s: SessionDep, crawl: CrawlParam = None, since: SinceParam = None, until: UntilParam = None,
        limit: Limit = DEFAULT_PAGE, offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = uptime_table(s, scoped(s, crawl, since, until).crawls).rows
        return {"total": len(rows), "limit": limit, "offset": offset, "nodes": [dict(r) for r in rows[offset:offset + limit]]}

    @app.get("/api/uptime/distribution", summary="Nodes per uptime bucket (query uptime --distribution)")
    def api_uptime_distribution(
        s: SessionDep, crawl: CrawlParam = None, since: SinceParam = None, until: UntilParam = None
    ) -> list[dict[str, Any]]:
        return [dict(r) for r in uptime_distribution_table(s, scoped(s, crawl, since, until).crawls).rows]

    @app.get("/api/readiness", summary="Readiness for the next fork by client and version (query readiness)")
    def api_readiness(
        s: SessionDep, fork: Annotated[str | None, Query(description="This fork of every network that has it (default: each network's next).")] = None,
        not_ready: Annotated[bool, Query(description="The nodes that are not ready instead of the counts.")] = False,
        at: AtParam = None, crawl: CrawlParam = None, since: SinceParam = None, until: UntilParam = None,
    ) -> list[dict[str, Any]]:
        scope = scoped(s, crawl, since, until).crawls
        try:
            named = parse_fork(fork) if fork else None
        except BadFilter as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        try:
            targets = fork_targets(named, _aware(at) or datetime.now(timezone.utc))
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        table = not_ready_table(s, targets, scope) if not_ready else readiness_table(s, targets, scope)
        return [dict(r) for r in table.rows]

    def page(template: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(render(template, database=database_name, version=ethcrawl_version(), **context))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(s: SessionDep, crawl: str | None = None) -> HTMLResponse:
        # The page's crawl menu submits "crawl=" for every crawl.
        if crawl and not crawl.isdigit():
            raise HTTPException(status_code=400, detail=f"crawl must be a crawl number, not {crawl!r}")
        scope = scoped(s, int(crawl) if crawl else None)
        sections = build_sections(s, scope)
        return page("overview.html", header=build_header(s, scope, database_name), sections=sections,
                    charts=chart_svgs(sections), generated=now_text(), crawls=crawl_table(s).rows, crawl=scope.crawl_id)

    @app.get("/nodes", response_class=HTMLResponse, include_in_schema=False)
    def nodes(request: Request, s: SessionDep, node_filter: FilterDep, limit: Limit = DEFAULT_PAGE, offset: Offset = 0) -> HTMLResponse:
        result: NodePage = filter_nodes(s, node_filter, limit=limit, offset=offset)
        params = {k: v for k, v in request.query_params.items() if k not in ("offset",) and v}

        def link(at: int) -> str:
            return "/nodes?" + urlencode({**params, "offset": at})

        return page(
            "nodes.html", page=result, limit=limit, offset=offset, form=request.query_params, columns=NODE_LIST_COLUMNS,
            shown=NODE_ID_SHOWN, previous=link(max(0, offset - limit)) if offset > 0 else None,
            next=link(offset + limit) if offset + limit < result.total else None,
            api="/api/nodes?" + urlencode({**params, "offset": offset}),
        )

    @app.get("/nodes/{node_id}", response_class=HTMLResponse, include_in_schema=False)
    def node(s: SessionDep, node_id: str) -> HTMLResponse:
        row = one_node(s, node_id)
        story = story_of(s, node_id)
        return page("node.html", row=row, story=story, parts=story_parts(story), shown=NODE_ID_SHOWN)

    @app.get("/crawls", response_class=HTMLResponse, include_in_schema=False)
    def crawls(s: SessionDep) -> HTMLResponse:
        return page("crawls.html", table=crawl_table(s))

    return app
