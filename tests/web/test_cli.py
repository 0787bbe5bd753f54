"""``ethcrawl report`` and ``ethcrawl serve`` from the command line: files written, one-line errors."""

from __future__ import annotations

import html
import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ethcrawl.crawler.cli import main
from web_db import web_database

SERVE_DEADLINE = 30.0  # s for `ethcrawl serve` to start and answer on 127.0.0.1


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return web_database(tmp_path_factory.mktemp("webcli") / "web.db")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_one_line(result: Result, code: int, needle: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or code == 2, result.stderr
    assert needle in result.stderr


def test_report_is_one_self_contained_file(url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = invoke("report", "--db", url, "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.count("<svg") >= 10
    # Nothing is loaded: no script, stylesheet link, frame or remote reference; the CSP forbids it anyway.
    for needle in ("<script", "<link", "<iframe", "@import", 'src="http', "url(http"):
        assert needle not in text
    assert "default-src 'none'" in text
    for anchor in ("clients", "platform", "networks", "forks", "layers", "outcomes", "countries", "asns", "topology", "history"):
        assert f'id="{anchor}"' in text
    assert "concurrency=256" in text  # the newest crawl's parameters in the header


def test_report_tables_are_the_cli_rows(url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert invoke("report", "--db", url, "--out", str(out), "--crawl", "1").exit_code == 0
    text = out.read_text()
    clients = [json.loads(line) for line in invoke("query", "clients", "--db", url, "--crawl", "1", "--format", "json").stdout.splitlines()]
    table = re.search(r'<table id="table-clients">(.*?)</table>', text, re.S)
    assert table is not None
    cells = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[1:]
    got = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in cells]
    assert got == [[r["client"], str(r["nodes"]), str(r["refused"]), str(r["share"])] for r in clients]


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_report_images(url: str, tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "charts"
    result = invoke("report", "--db", url, "--out", str(folder), "--format", fmt)
    assert result.exit_code == 0, result.output
    files = sorted(folder.iterdir())
    assert {p.name for p in files} >= {f"clients.{fmt}", f"versions.{fmt}", f"in-degree.{fmt}", f"crawls.{fmt}"}
    assert [str(p) for p in sorted(map(Path, result.stdout.split()))] == [str(p) for p in files]
    magic = b"\x89PNG" if fmt == "png" else b"<svg"
    assert all(p.read_bytes().startswith(magic) for p in files)


def test_report_errors_are_one_line(url: str, tmp_path: Path) -> None:
    assert_one_line(invoke("report", "--db", url, "--out", str(tmp_path / "r.html"), "--crawl", "9"), 1, "no crawl 9")
    assert_one_line(invoke("report", "--db", str(tmp_path / "absent.db"), "--out", str(tmp_path / "r.html")), 1, "no such file")
    assert not (tmp_path / "absent.db").exists()
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert_one_line(invoke("report", "--db", url, "--out", str(a_file), "--format", "png"), 1, "give a folder")


@pytest.mark.parametrize(("listen", "needle"), [("localhost:8000", "not an IP address"), ("127.0.0.1", "HOST:PORT"), ("127.0.0.1:70000", "HOST:PORT")])
def test_serve_bad_listen_is_a_usage_error(url: str, listen: str, needle: str) -> None:
    assert_one_line(invoke("serve", "--db", url, "--listen", listen), 2, needle)


def test_serve_without_a_database_is_one_line(tmp_path: Path) -> None:
    assert_one_line(invoke("serve", "--db", str(tmp_path / "absent.db")), 1, "no such file")


def test_serve_on_a_taken_port_is_one_line(url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert_one_line(invoke("serve", "--db", url, "--listen", f"127.0.0.1:{port}"), 1, f"cannot listen on 127.0.0.1:{port}")


def test_serve_answers_on_loopback(url: str) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "ethcrawl.crawler", "serve", "--db", url, "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line
        with urllib.request.urlopen(f"http://127.0.0.1:{found.group(1)}/api/crawls", timeout=SERVE_DEADLINE) as answer:
            crawls = json.loads(answer.read())
        assert [c["crawl"] for c in crawls] == [3, 2, 1]
    finally:
        server.terminate()
        server.wait(timeout=SERVE_DEADLINE)


def _table_cells(text: str, table_id: str) -> list[list[str]]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', text, re.S)
    assert table is not None, table_id
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[1:]]


def test_report_since_counts_the_crawls_started_from_then_on(url: str, tmp_path: Path) -> None:
    out = tmp_path / "since.html"
    # The fixture's crawls start a day apart (2026-11-01, -02, -03 at 12:00 UTC): since the 3rd, only crawl 3.
    assert invoke("report", "--db", url, "--out", str(out), "--since", "2026-11-03").exit_code == 0
    text = out.read_text()
    assert "crawls started since 2026-11-03T00:00:00Z" in text
    outcomes = [json.loads(line) for line in invoke("query", "outcomes", "--db", url, "--crawl", "3", "--format", "json").stdout.splitlines()]
    assert _table_cells(text, "table-outcomes") == [[r["outcome"], str(r["nodes"]), str(r["share"])] for r in outcomes] != []
    assert [row[0] for row in _table_cells(text, "table-crawls")] == ["3"]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--since", "3x"], 2, "7d"),
        (["--since", "2026-11-03", "--until", "2026-11-02"], 1, "is not before --until"),
        (["--crawl", "99"], 1, "no crawl 99"),
    ],
)
def test_report_bad_scope_is_one_line(url: str, tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    assert_one_line(invoke("report", "--db", url, "--out", str(tmp_path / "r.html"), *args), code, needle)


@pytest.mark.parametrize("query", ["countries", "asns"])
def test_report_places_nodes_as_query_countries_and_asns_count_them(url: str, tmp_path: Path, query: str) -> None:
    out = tmp_path / "placed.html"
    assert invoke("report", "--db", url, "--out", str(out)).exit_code == 0
    rows = [json.loads(line) for line in invoke("query", query, "--db", url, "--format", "json").stdout.splitlines()]
    columns = ("country", "nodes", "share") if query == "countries" else ("asn", "as_org", "nodes", "share")
    cells = [[html.escape(str(r[c])) for c in columns] for r in rows]
    assert _table_cells(out.read_text(), f"table-{query}") == cells != []
