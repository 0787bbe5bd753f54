"""One devnet crawl, every view of its numbers: live display, summary, queries, CSV and GraphML agree.

The README's "What the numbers mean" gives one definition per count; this test
holds every view to it and to the devnet's manifest (what the network really is):

* nodes: every devnet node, and nothing else (not our own identity);
* answered: the live display's count equals the stored one;
* edges: distinct (A, B) pairs; the live count, the summary, ``query crawls``
  and the GraphML export are one number, and every edge is an entry of A's
  planned table;
* dials: the live ok/failed counters equal the stored attempts;
* clients: nodes whose latest attempt received a Hello, whatever came after
  (too-many-peers and not-eth peers said Hello, then refused: counted, and shown
  as refused), the same in the summary, ``query clients`` and the CSV.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import networkx
import trio
from click.testing import CliRunner
from rich.console import Console

from ethcrawl.crawler.cli import main as cli_main
from ethcrawl.crawler.cli_crawl import _print_summary, _progress_table
from ethcrawl.crawler.crawl import CrawlOptions, CrawlProgress, run_crawl
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.db.engine import open_database
from ethcrawl.wire.enr import ENR

NODES = 30
SEED = 11
CRAWL_DEADLINE = 60  # s; a 30-node crawl ends by itself in a few


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli_main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_display_summary_queries_csv_and_graphml_agree_with_each_other_and_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    progress: list[CrawlProgress] = []
    async with open_devnet(nodes=NODES, seed=SEED) as net:
        manifest = net.manifest()
        db = open_database(path)
        # Walk both DHTs from the bootnode's record, dial every execution-layer node.
        options = CrawlOptions(
            seeds=(ENR.from_text(net.bootnode_enr),), listen_host="127.0.0.1", dial_timeout=2, duration=CRAWL_DEADLINE
        )
        with trio.fail_after(CRAWL_DEADLINE + 10):
            summary = await run_crawl(db, options, on_progress=progress.append, handle_signals=False)
        db.close()
    display = progress[-1]
    by_id = {n["node_id"]: n for n in manifest["nodes"]}
    index_to_id = {n["index"]: n["node_id"] for n in manifest["nodes"]}
    db_url = str(path)

    # Nodes: the manifest's, all of them, in every view.
    assert summary.nodes == display.crawl.discovered == NODES
    csv_rows = list(csv.DictReader(io.StringIO(_cli("export", "csv", "--db", db_url))))
    assert {r["node_id"] for r in csv_rows} == set(by_id)
    crawls = _json_lines(_cli("query", "crawls", "--db", db_url, "--format", "json"))
    assert len(crawls) == 1
    row = crawls[0]
    assert row["crawl"] == summary.crawl_id and row["nodes"] == summary.nodes

    # Answered and edges: the live display's numbers are the stored ones.
    assert display.crawl.responded == summary.responded == row["answered"]
    graphml = tmp_path / "edges.graphml"
    _cli("export", "edges", "--db", db_url, "--format", "graphml", "--out", str(graphml))
    graph = networkx.read_graphml(graphml)
    assert display.crawl.edges == summary.edges == row["edges"] == graph.number_of_edges() > 0
    assert not any(a == b for a, b in graph.edges)
    planned = {(n["node_id"], index_to_id[j]) for n in manifest["nodes"] for j in n["table"]}
    assert set(graph.edges) <= planned, "every edge is an entry of its source's table"
    # GraphML nodes carry what the CSV says about them.
    csv_by_id = {r["node_id"]: r for r in csv_rows}
    for node_id, attributes in graph.nodes(data=True):
        if csv_by_id[node_id]["client_name"]:
            assert attributes["client_name"] == csv_by_id[node_id]["client_name"]

    # Dials: live counters, summary and query agree; one attempt per dialed node.
    assert (display.dials_ok, display.dials_failed) == (summary.dials_ok, summary.dials_failed)
    assert (row["dials"], row["dials_ok"], row["dials_failed"]) == (summary.dials, summary.dials_ok, summary.dials_failed)
    dialed = [n for n in manifest["nodes"] if n["expected_outcome"] != "not-dialed"]
    assert summary.dials == len(dialed)
    assert dict(summary.outcomes) == dict(Counter(n["expected_outcome"] for n in dialed))

    # Clients: every node that said Hello (the manifest's RLPx listeners), refusals counted and shown as such.
    hello = [n for n in manifest["nodes"] if n["dialable"]]
    want_nodes = Counter(n["client_name"] for n in hello)
    want_refused = Counter(n["client_name"] for n in hello if n["expected_outcome"] != "ok")
    assert want_refused, "the devnet must hold peers that said Hello and then refused"
    assert {c.value: (c.nodes, c.refused) for c in summary.clients} == {
        name: (count, want_refused[name]) for name, count in want_nodes.items()
    }
    queried = _json_lines(_cli("query", "clients", "--db", db_url, "--format", "json"))
    assert {q["client"]: (q["nodes"], q["refused"]) for q in queried} == {
        c.value: (c.nodes, c.refused) for c in summary.clients
    }
    assert abs(sum(q["share"] for q in queried) - 100) < 0.5
    assert Counter(r["client_name"] for r in csv_rows if r["client_name"]) == want_nodes

    # The crawl row keeps what no other table holds: the socket's receive buffer and the kernel's drops on it.
    with sqlite3.connect(path) as conn:
        (stats_text,) = conn.execute("SELECT stats FROM crawls WHERE id = ?", (summary.crawl_id,)).fetchone()
    stats = json.loads(stats_text)
    assert stats["receive_buffer"] > 0 and isinstance(stats["kernel_drops"], int)

    # What a person sees: the summary tables and the last live line say the same numbers.
    printed = io.StringIO()
    _print_summary(Console(file=printed, width=120), summary)
    text = printed.getvalue()
    assert f"{summary.nodes} nodes" in text and f"{summary.edges} edges" in text
    shown = io.StringIO()
    Console(file=shown, width=120).print(_progress_table(display))
    assert f"edges {summary.edges}" in shown.getvalue()
