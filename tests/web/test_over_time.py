"""The network over time on the web: each endpoint serves what its CLI query prints as JSON on the same database
(tests/db/history_db.py's four crawls with churn, upgrades, ENR changes and fork ids), the report's over-time
tables are the rows of the command printed under them, and the node page tells the node's story, escaped."""

from __future__ import annotations

import json
import shlex
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from ethcrawl.db.engine import open_database
from ethcrawl.db.history import HISTORY_KINDS
from ethcrawl.db.rows import change_text
from ethcrawl.web.app import MAX_PAGE, create_app
from ethcrawl.web.model import MAX_CHURN_ROWS, Scope, Section, network_over_time_section
from ethcrawl.web.pages import chart_svgs
from ethcrawl.web.report import report_html
from markupsafe import escape
from web_db import HOSTILE_CLIENT_IDS, history_db, web_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on which httpx client it prefers
    from fastapi.testclient import TestClient

History = Any  # history_db.History, loaded by path


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, History]:
    url = str(tmp_path_factory.mktemp("over-time") / "history.db")
    return url, history_db().fill_history(url)


@pytest.fixture(scope="module")
def client(story: tuple[str, History]) -> Iterator[TestClient]:
    url, _ = story
    db = open_database(url, read_only=True)
    with TestClient(create_app(db, database_name=url)) as test_client:
        yield test_client
    db.close()


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def cli_json(*args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run(*args, "--format", "json").splitlines()]


def _params(args: list[str]) -> dict[str, str]:
    return {k.lstrip("-").replace("-", "_"): v for k, v in zip(args[::2], args[1::2])}


SCOPES = [[], ["--crawl", "3"], ["--since", "2026-11-03T00:00:00Z"], ["--until", "2026-11-03T00:00:00Z"]]


@pytest.mark.parametrize("kind", HISTORY_KINDS)
@pytest.mark.parametrize("every", ["crawl", "day", "week"])
def test_history_is_query_history(client: TestClient, story: tuple[str, History], kind: str, every: str) -> None:
    url, _ = story
    for scope in SCOPES:
        answer = client.get(f"/api/history/{kind}", params={"every": every, **_params(scope)})
        assert answer.status_code == 200
        assert answer.json() == cli_json("query", "history", kind, "--every", every, "--db", url, *scope)
    assert client.get(f"/api/history/{kind}").json() == cli_json("query", "history", kind, "--db", url) != []


@pytest.mark.parametrize("args", [[], ["--crawl", "3"], ["--crawl", "4", "--against", "1"], ["--crawl", "3", "--against", "2"]], ids=" ".join)
def test_churn_is_query_churn(client: TestClient, story: tuple[str, History], args: list[str]) -> None:
    url, _ = story
    rows = cli_json("query", "churn", "--db", url, *args)
    assert client.get("/api/churn", params=_params(args)).json() == rows
    assert rows or args == ["--crawl", "3", "--against", "2"]


def test_the_latest_churn_is_the_stories(client: TestClient, story: tuple[str, History]) -> None:
    # Crawl 4 against crawl 3 (history_db's docstring): B returned, F new, A and C gone, D upgraded reth 1.1.0 -> 1.2.0.
    _, h = story
    got = {(h.letter(r["node_id"]), r["change"], r["client_version"]) for r in client.get("/api/churn").json()}
    assert {("B", "returned", None), ("F", "new", "1.30.2"), ("A", "gone", "1.15.0"), ("C", "gone", None), ("D", "upgraded", "1.2.0")} <= got


@pytest.mark.parametrize("scope", SCOPES, ids=" ".join)
def test_uptime_pages_are_query_uptime(client: TestClient, story: tuple[str, History], scope: list[str]) -> None:
    url, _ = story
    want = cli_json("query", "uptime", "--db", url, *scope)
    whole = client.get("/api/uptime", params={**_params(scope), "limit": MAX_PAGE}).json()
    assert whole == {"total": len(want), "limit": MAX_PAGE, "offset": 0, "nodes": want} and want
    paged = [client.get("/api/uptime", params={**_params(scope), "limit": 2, "offset": k}).json()["nodes"] for k in range(0, len(want), 2)]
    assert [n for page in paged for n in page] == want and all(len(page) <= 2 for page in paged)
    distribution = client.get("/api/uptime/distribution", params=_params(scope)).json()
    assert distribution == cli_json("query", "uptime", "--distribution", "--db", url, *scope)
    assert sum(row["nodes"] for row in distribution) == len(want)


@pytest.mark.parametrize(
    "args",
    [
        ["--at", "2025-11-01T00:00:00Z"], ["--fork", "osaka"], ["--fork", "Osaka", "--not-ready"], ["--fork", "bpo2", "--crawl", "4"],
        ["--at", "2025-11-01T00:00:00Z", "--not-ready", "--since", "2026-11-03T00:00:00Z"],
    ],
    ids=" ".join,
)
def test_readiness_is_query_readiness(client: TestClient, story: tuple[str, History], args: list[str]) -> None:
    url, _ = story
    params: dict[str, str] = _params([a for a in args if a != "--not-ready"])
    if "--not-ready" in args:
        params["not_ready"] = "true"
    rows = cli_json("query", "readiness", "--db", url, *args)
    assert client.get("/api/readiness", params=params).json() == rows != []


def test_each_nodes_story_is_query_node(client: TestClient, story: tuple[str, History]) -> None:
    url, h = story
    for letter, node_id in h.ids.items():  # E is known from its inbound attempt alone
        want = json.loads(run("query", "node", node_id.hex(), "--db", url, "--format", "json"))
        assert client.get(f"/api/nodes/{node_id.hex()}/story").json() == want, letter
        assert client.get(f"/api/nodes/{node_id.hex().upper()}/story").json() == want


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("/api/history/peers", 400, "peers"),
        ("/api/history/clients?every=month", 400, "month"),
        ("/api/history/clients?crawl=99", 404, "no crawl 99"),
        ("/api/history/clients?since=2026-11-05T00:00:00Z&until=2026-11-01T00:00:00Z", 404, "not before"),
        ("/api/churn?crawl=1", 404, "no walk before crawl 1"),
        ("/api/churn?crawl=99", 404, "no crawl 99"),
        ("/api/churn?crawl=3&against=4", 404, "not a crawl before 3"),
        ("/api/churn?against=x", 422, "integer"),
        ("/api/uptime?limit=501", 422, "500"),
        ("/api/uptime?crawl=99", 404, "no crawl 99"),
        ("/api/uptime/distribution?crawl=0", 422, "1"),
        ("/api/readiness?fork=ragnarok", 400, "ragnarok"),
        ("/api/readiness?at=2100-01-01T00:00:00Z", 404, "no network has a fork scheduled"),
        ("/api/nodes/abc/story", 400, "64 hex digits"),
        ("/api/nodes/" + "0" * 64 + "/story", 404, "no such node"),
    ],
)
def test_bad_requests_say_what_is_wrong(client: TestClient, path: str, status: int, needle: str) -> None:
    answer = client.get(path)
    assert answer.status_code == status
    assert needle in json.dumps(answer.json()["detail"])


def test_openapi_lists_the_over_time_endpoints(client: TestClient) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {"/api/history/{kind}", "/api/churn", "/api/uptime", "/api/uptime/distribution", "/api/readiness",
            "/api/nodes/{node_id}/story"} <= paths  # fmt: skip


def _panel_rows(panel_query: str, url: str) -> list[dict[str, Any]]:
    """The rows the command printed under a panel prints (json lines; churn's counts: its table's last lines)."""
    args = shlex.split(panel_query)[1:] + ["--db", url]
    if "--format" in args:
        return [json.loads(line) for line in run(*args).splitlines()]
    lines = run(*args).splitlines()
    counts = lines[lines.index(next(line for line in lines if line.startswith("crawl "))) + 2:]
    return [{"change": change, "nodes": int(nodes)} for change, nodes in (line.split() for line in counts)]


def _over_time(url: str, scope: Scope) -> Section:
    db = open_database(url, read_only=True)
    try:
        with db.session() as session:
            return network_over_time_section(session, scope)
    finally:
        db.close()


@pytest.mark.parametrize("scope", [Scope(), Scope(crawl_id=3), Scope(crawl_id=1)], ids=["every", "crawl 3", "crawl 1"])
def test_report_tables_are_the_rows_of_the_command_under_them(client: TestClient, story: tuple[str, History], scope: Scope) -> None:
    url, _ = story
    section = _over_time(url, scope)
    keys = [p.key for p in section.panels]
    want = ["readiness-clients", "client-history", "churn", "churn-nodes", "uptime"]
    assert keys == (want if scope.crawl_id != 1 else [k for k in want if not k.startswith("churn")])
    for panel in section.panels:
        rows = [dict(r) for r in panel.table.rows]
        assert rows, panel.key
        assert rows == _panel_rows(panel.query, url)[:MAX_CHURN_ROWS], panel.key
        if panel.api is not None:
            assert client.get(panel.api).json() == rows, panel.api
    drawn = chart_svgs([section])
    assert set(drawn) == {p.key for p in section.panels if p.chart is not None} and all(drawn.values())


def test_the_client_history_chart_is_one_line_per_client(story: tuple[str, History]) -> None:
    url, _ = story
    panel = next(p for p in _over_time(url, Scope()).panels if p.key == "client-history")
    assert panel.chart is not None and panel.chart.kind == "lines"
    from ethcrawl.web.charts import draw

    figure = draw(panel.chart, panel.table.rows)
    assert figure is not None
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert set(lines) == {str(r["value"]) for r in panel.table.rows} == {"geth", "reth", "nethermind"}
    # geth: A alone in crawls 1 and 2, A and reth D in crawl 3, E beside reth D and nethermind F in crawl 4.
    assert [str(t.get_text()) for t in figure.axes[0].get_xticklabels()] == ["1", "2", "3", "4"]
    assert list(lines["geth"].get_ydata()) == [100.0, 100.0, 50.0, 33.3]
    assert [y == y for y in lines["reth"].get_ydata()] == [False, False, True, True]  # NaN: no reth row, a gap


def test_the_report_shows_the_over_time_section(story: tuple[str, History]) -> None:
    url, _ = story
    db = open_database(url, read_only=True)
    try:
        with db.session() as session:
            html = report_html(session, Scope(), url)
    finally:
        db.close()
    for key in ("readiness-clients", "client-history", "churn", "churn-nodes", "uptime"):
        assert f'id="table-{key}"' in html
    for key in ("readiness-clients", "client-history", "churn", "uptime"):
        assert f'data-chart="{key}"><svg' in html
    assert "ethcrawl query churn --crawl 4 --against 3 --format json" in html


def test_the_node_page_tells_the_story(client: TestClient, story: tuple[str, History]) -> None:
    _, h = story
    page = client.get(f"/nodes/{h.ids['A'].hex()}")
    assert page.status_code == 200
    text = page.text
    data = client.get(f"/api/nodes/{h.ids['A'].hex()}/story").json()
    assert "sightings (4)" in text and "ENR versions (2)" in text and "client versions (2)" in text and "dials (3)" in text
    assert str(escape(change_text(data["enr_versions"][1]["changes"]))) in text  # the ip and tcp moved
    assert 'ip: &#34;10.0.0.1&#34; -&gt; &#34;10.0.0.2&#34;' in text
    assert f'href="/nodes/{h.ids["B"].hex()}"' in text  # B returned A in crawl 1
    assert f'href="/api/nodes/{h.ids["A"].hex()}/story"' in text


def test_hostile_client_ids_in_a_story_are_text(tmp_path: Path) -> None:
    url = web_database(tmp_path / "web.db")
    db = open_database(url, read_only=True)
    try:
        with TestClient(create_app(db, database_name=url)) as hostile:
            nodes = hostile.get("/api/nodes", params={"outcome": "too-many-peers", "limit": MAX_PAGE}).json()["nodes"]
            shown = 0
            for row in nodes:
                if row["client_id"] in HOSTILE_CLIENT_IDS:
                    page = hostile.get(f"/nodes/{row['node_id']}").text
                    history = page[page.index('id="history"'):]
                    assert str(escape(row["client_id"])) in history
                    assert "<script>" not in page and "<img" not in page
                    shown += 1
            assert shown == len(HOSTILE_CLIENT_IDS)
            assert hostile.get("/").status_code == 200  # the over-time charts draw hostile names too
    finally:
        db.close()
