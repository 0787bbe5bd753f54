"""Two real crawls of a devnet that changes between them: churn, uptime, history and a node's story say so.

Between the crawls one node leaves (its record stays in the others' tables: the second crawl still hears of it,
and it no longer answers) and another moves its RLPx port under a new record (a higher ENR seq).  Everything
else stays, so the queries must report exactly those two changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
from click.testing import CliRunner

from ethcrawl.crawler.cli import main as cli_main
from ethcrawl.crawler.crawl import CrawlOptions, run_crawl
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.db.engine import open_database
from ethcrawl.wire.enr import ENR

NODES = 20
SEED = 5
CRAWL_DEADLINE = 60  # s; a 20-node crawl ends by itself in a few


def _json_lines(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli_main, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


async def test_two_crawls_of_a_changing_devnet(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    async with open_devnet(nodes=NODES, seed=SEED) as net:
        manifest = net.manifest()
        options = CrawlOptions(
            seeds=(ENR.from_text(net.bootnode_enr),), listen_host="127.0.0.1", dial_timeout=2, duration=CRAWL_DEADLINE
        )
        db = open_database(path)
        try:
            with trio.fail_after(CRAWL_DEADLINE + 10):
                first = await run_crawl(db, options, handle_signals=False)
            # Two dialable nodes other than the bootnode: one leaves, one moves its RLPx port (a new record).
            dialable = [n for n in manifest["nodes"] if n["dialable"] and n["index"] != 0 and n["expected_outcome"] == "ok"]
            leaving, moving = dialable[0], dialable[1]
            net.nodes[leaving["index"]].leave()
            moved = await net.nodes[moving["index"]].move_rlpx()
            with trio.fail_after(CRAWL_DEADLINE + 10):
                second = await run_crawl(db, options, handle_signals=False)
        finally:
            db.close()
    url = str(path)
    answered_first = {r["node_id"] for r in _json_lines("query", "uptime", "--db", url, "--crawl", str(first.crawl_id)) if r["answered"]}
    assert len(answered_first) == NODES, "every devnet node answers the first crawl"

    churn = _json_lines("query", "churn", "--db", url)
    assert [(r["node_id"], r["change"]) for r in churn] == [(leaving["node_id"], "gone")]
    assert churn[0]["client_name"] == leaving["client_name"]

    uptime = {r["node_id"]: r for r in _json_lines("query", "uptime", "--db", url)}
    assert (uptime[leaving["node_id"]]["checks"], uptime[leaving["node_id"]]["answered"]) == (2, 1)
    assert {(r["checks"], r["answered"], r["uptime"]) for n, r in uptime.items() if n != leaving["node_id"]} == {(2, 2, 1.0)}

    # Per crawl, history is the share query of that crawl.
    history = _json_lines("query", "history", "clients", "--db", url)
    for crawl in (first.crawl_id, second.crawl_id):
        clients = {r["client"]: r["nodes"] for r in _json_lines("query", "clients", "--db", url, "--crawl", str(crawl))}
        assert {r["value"]: r["nodes"] for r in history if r["period"] == crawl} == clients

    story = _json_lines("query", "node", moving["node_id"][:12], "--db", url)[0]
    assert [v["seq"] for v in story["enr_versions"]] == [ENR.from_text(moving["enr"]).seq, moved.seq]
    assert story["enr_versions"][1]["changes"]["tcp"] == [moving["tcp"], moved.tcp]
    assert [s["enr_seq"] for s in story["sightings"]] == [ENR.from_text(moving["enr"]).seq, moved.seq]
    assert [d["tcp_port"] for d in story["dials"]] == [moving["tcp"], moved.tcp]
