"""The dashboard's JSON API and pages, checked against the CLI's queries on the same database (same numbers, same
field names), and its safety: read-only, bounded pages, escaped peer text, one-line errors."""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from ethcrawl.db.engine import open_database
from ethcrawl.web.app import MAX_PAGE, SECURITY_HEADERS, create_app
from markupsafe import escape
from web_db import HOSTILE_CLIENT_IDS, web_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on which httpx client it prefers
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return web_database(tmp_path_factory.mktemp("web") / "web.db")


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[TestClient]:
    db = open_database(url, read_only=True)
    with TestClient(create_app(db, database_name=url)) as test_client:
        yield test_client
    db.close()


def cli_json(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


SHARE_QUERIES = ["clients", "versions", "os", "arch", "runtimes", "outcomes", "networks", "forks", "countries", "asns"]


@pytest.mark.parametrize("query", SHARE_QUERIES)
@pytest.mark.parametrize(
    "scope",
    [
        [], ["--crawl", "1"], ["--client", "geth"], ["--crawl", "2", "--client", "RETH"],
        ["--since", "2026-11-02T00:00:00Z"], ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-02T00:00:00Z"],
    ],
    ids=" ".join,
)
def test_share_endpoints_are_the_cli_rows(client: TestClient, url: str, query: str, scope: list[str]) -> None:
    params = {k.lstrip("-"): v for k, v in zip(scope[::2], scope[1::2])}
    answer = client.get(f"/api/{query}", params=params)
    assert answer.status_code == 200
    rows = cli_json("query", query, "--db", url, *scope)
    assert answer.json() == rows
    assert rows or query == "forks", "the fixture should give every query rows"


@pytest.mark.parametrize("query", ["layers", "crawls"])
def test_database_wide_endpoints_are_the_cli_rows(client: TestClient, url: str, query: str) -> None:
    assert client.get(f"/api/{query}").json() == cli_json("query", query, "--db", url) != []


@pytest.mark.parametrize("scope", [["--crawl", "2"], ["--since", "2026-11-02T00:00:00Z"]], ids=" ".join)
def test_layers_in_a_scope_are_the_cli_rows(client: TestClient, url: str, scope: list[str]) -> None:
    params = {k.lstrip("-"): v for k, v in zip(scope[::2], scope[1::2])}
    assert client.get("/api/layers", params=params).json() == cli_json("query", "layers", "--db", url, *scope) != []


def test_an_unknown_crawl_or_an_empty_window_is_a_404(client: TestClient) -> None:
    assert client.get("/api/clients", params={"crawl": 99}).status_code == 404
    assert client.get("/api/clients", params={"since": "2026-11-03T00:00:00Z", "until": "2026-11-02T00:00:00Z"}).status_code == 404


@pytest.mark.parametrize("args", [[], ["--crawl", "1"], ["--crawl", "2", "--discovery", "v4"]], ids=" ".join)
def test_topology_is_the_cli_object(client: TestClient, url: str, args: list[str]) -> None:
    params = {k.lstrip("-"): v for k, v in zip(args[::2], args[1::2])}
    assert [client.get("/api/topology", params=params).json()] == cli_json("query", "topology", "--db", url, *args)


@pytest.mark.parametrize(
    ("params", "args"),
    [
        ({}, []),
        ({"client": "geth"}, ["--client", "geth"]),
        ({"version": "1.1", "network": "mainnet"}, ["--version", "1.1", "--network", "mainnet"]),
        ({"fork": "prague", "ip": "10.0.0.0/8"}, ["--fork", "prague", "--ip", "10.0.0.0/8"]),
        ({"outcome": "too-many-peers"}, ["--outcome", "too-many-peers"]),
        ({"country": "de"}, ["--country", "de"]),
        ({"asn": "AS64501", "country": "FR"}, ["--asn", "64501", "--country", "FR"]),
        ({"layer": "unknown", "dialable": "true"}, ["--layer", "unknown", "--dialable"]),
        ({"synced": "false"}, ["--not-synced"]),
        ({"seen_since": "2026-11-02T12:00:30Z"}, ["--seen-since", "2026-11-02T12:00:30Z"]),
    ],
)
def test_node_list_is_query_nodes(client: TestClient, url: str, params: dict[str, str], args: list[str]) -> None:
    want = cli_json("query", "nodes", "--db", url, *args)
    got = client.get("/api/nodes", params={**params, "limit": MAX_PAGE}).json()
    assert got["nodes"] == want and got["total"] == len(want)
    # Paged: two at a time, the same nodes in the same order.
    paged = [client.get("/api/nodes", params={**params, "limit": 2, "offset": k}).json()["nodes"] for k in range(0, len(want), 2)]
    assert [n for page in paged for n in page] == want


def test_one_node_is_its_query_nodes_row(client: TestClient, url: str) -> None:
    rows = cli_json("query", "nodes", "--db", url)
    for row in rows[:: max(1, len(rows) // 5)]:
        assert client.get(f"/api/nodes/{row['node_id']}").json() == row
        assert client.get(f"/api/nodes/{row['node_id'].upper()}").json() == row
    page = client.get(f"/nodes/{rows[0]['node_id']}")
    assert page.status_code == 200 and rows[0]["node_id"] in page.text


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("/api/nodes?limit=501", 422, "500"),
        ("/api/nodes?limit=0", 422, "1"),
        ("/api/nodes?offset=-1", 422, "0"),
        ("/api/nodes?network=atlantis", 400, "atlantis"),
        ("/api/nodes?fork=ragnarok", 400, "ragnarok"),
        ("/api/nodes?ip=10.0.0.0/33", 400, "10.0.0.0/33"),
        ("/api/nodes?layer=mantle", 400, "mantle"),
        ("/api/clients?crawl=99", 404, "no crawl 99"),
        ("/api/topology?crawl=99", 404, "no crawl 99"),
        ("/api/nodes/abc", 400, "64 hex digits"),
        ("/api/nodes/" + "0" * 64, 404, "no such node"),
        ("/?crawl=99", 404, "no crawl 99"),
        ("/?crawl=x", 400, "crawl number"),
    ],
)
def test_bad_requests_say_what_is_wrong(client: TestClient, path: str, status: int, needle: str) -> None:
    answer = client.get(path)
    assert answer.status_code == status
    assert needle in json.dumps(answer.json()["detail"])


def test_nothing_writes(client: TestClient) -> None:
    for path in ("/api/nodes", "/api/crawls", "/nodes"):
        assert client.post(path).status_code == 405
        assert client.delete(path).status_code == 405


@pytest.mark.parametrize("path", ["/", "/nodes", "/crawls", "/api/clients", "/openapi.json"])
def test_every_response_forbids_scripts_and_foreign_loads(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value
    assert "script-src" not in answer.headers["Content-Security-Policy"]  # default-src 'none' covers scripts


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {f"/api/{q}" for q in [*SHARE_QUERIES, "layers", "crawls", "topology", "nodes"]} | {"/api/nodes/{node_id}"} <= paths


def test_hostile_client_ids_are_text(client: TestClient) -> None:
    page = client.get("/nodes", params={"outcome": "too-many-peers", "limit": MAX_PAGE}).text
    for client_id in HOSTILE_CLIENT_IDS:
        assert str(escape(client_id)) in page
    assert "<script>" not in page and "<img" not in page
    api = client.get("/api/nodes", params={"outcome": "too-many-peers", "limit": MAX_PAGE}).json()
    assert set(HOSTILE_CLIENT_IDS) <= {n["client_id"] for n in api["nodes"]}


def test_filters_change_the_page(client: TestClient, url: str) -> None:
    everyone = client.get("/nodes", params={"limit": MAX_PAGE}).text
    geth = client.get("/nodes", params={"client": "geth", "limit": MAX_PAGE}).text
    want = cli_json("query", "nodes", "--db", url, "--client", "geth")
    assert f"{len(want)} nodes match" in geth and len(want) < len(cli_json("query", "nodes", "--db", url))
    assert geth.count('href="/nodes/') == len(want) < everyone.count('href="/nodes/')
    # Empty form fields filter nothing, as a browser submits them.
    blank = client.get("/nodes", params={"client": "", "network": "", "ip": "", "limit": MAX_PAGE}).text
    assert blank.count('href="/nodes/') == everyone.count('href="/nodes/')


def test_paging_links_walk_the_list(client: TestClient, url: str) -> None:
    total = len(cli_json("query", "nodes", "--db", url))
    first = client.get("/nodes", params={"limit": 10}).text
    assert 'id="next" href="/nodes?limit=10&amp;offset=10"' in first and 'id="previous"' not in first
    last = client.get("/nodes", params={"limit": 10, "offset": total - 1}).text
    assert 'id="next"' not in last and 'id="previous"' in last


def test_overview_draws_every_chart_of_the_report(client: TestClient) -> None:
    page = client.get("/").text
    assert page.count("<svg") >= 10
    one = client.get("/", params={"crawl": 1}).text
    assert "crawl 1" in one
    every = client.get("/", params={"crawl": ""})  # what the page's crawl menu sends for "every crawl"
    assert every.status_code == 200 and "every crawl (each node" in every.text


def test_the_database_file_is_not_changed(url: str, client: TestClient) -> None:
    before = Path(url).read_bytes()
    for path in ("/", "/nodes", "/crawls", "/api/nodes", "/api/topology"):
        client.get(path)
    assert Path(url).read_bytes() == before


@pytest.mark.parametrize("query", ["clients", "outcomes", "networks"])
def test_since_is_the_crawls_from_then_on(client: TestClient, url: str, query: str) -> None:
    # The fixture's crawls start a day apart (2026-11-01, -02, -03 at 12:00 UTC).
    assert client.get(f"/api/{query}", params={"since": "2026-11-03T00:00:00Z"}).json() == cli_json("query", query, "--db", url, "--crawl", "3")
    assert client.get(f"/api/{query}", params={"since": "2026-11-03T00:00:00"}).json() == cli_json("query", query, "--db", url, "--crawl", "3")


def test_answers_while_a_crawl_holds_the_write_lock(client: TestClient, url: str) -> None:
    before = client.get("/api/crawls").json()
    writer = sqlite3.connect(url, isolation_level=None, timeout=0.1)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a crawl's writer in the middle of a batch
        writer.execute("DELETE FROM sightings")
        answer = client.get("/api/crawls")
        assert answer.status_code == 200 and answer.json() == before  # the committed state, not the batch
        assert client.get("/").status_code == 200
    finally:
        writer.execute("ROLLBACK")
        writer.close()
