"""Issue 12: `ethcrawl crawl` over a settled, dirty @ethereumjs/devp2p network finds every live node.

@ethereumjs/devp2p ranks a FINDNODE answer by XOR distance to the raw 64-byte target, not to its keccak256 as
go-ethereum does (fixtures/INTEROP.md). Targets chosen only for where their hash lands (small counters) are
all "near zero" there and get the same answer from every node: the 16 lowest keys of its table. Once tables
have settled (the library's own discovery has run, so every node knows many others and no longer only its
children), nodes whose keys are never among anyone's 16 lowest stay hidden: a crawl with counter targets found
21-32 of 40 here. The crawl must notice that a peer's answers do not follow the hashed model and ask it
random targets instead.

The network (js/dpt_network.mjs): 40 nodes seeded as a tree, then settled; every table also holds stale
entries (identities on ports where nothing answers); every node delays what it receives by its own 30-250 ms;
3% of datagrams are lost each way. Each live node is dialed over RLPx and answers Hello with its own client id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from crawl_cli import run_crawl_cli
from dpt_network import (  # noqa: F401 (dpt_network_fixture provides the dpt_network fixture)
    LOOPBACK,
    DptNetworkLauncher,
    dpt_network_fixture,
)

pytestmark = pytest.mark.interop

NODES = 40
FANOUT = 4
STALE_PER_TABLE = 6
STALE_POOL = 40
LATENCY_MS = (30, 250)
LOSS = 0.03
SETTLE_SECONDS = 6.0  # the library's discovery fills the tables in ~3 s at the harness's refresh rate
SETTLED_TABLE = 20  # entries: the root's table once settled is well past one answer's 16
CRAWL_BOUND = 40.0  # s: the crawl itself (stale bonds time out twice, ~2.5 s; each RTT up to 275 ms)
TEST_BOUND = 58.0  # s: settle + crawl + start-up, within the "< 60 s"


async def test_crawl_finds_every_live_node_of_a_settled_dirty_ethereumjs_network(
    dpt_network: DptNetworkLauncher, tmp_path: Path
) -> None:
    database = tmp_path / "crawl.db"
    with trio.fail_after(TEST_BOUND):
        async with dpt_network(
            NODES,
            fanout=FANOUT,
            max_seconds=TEST_BOUND,
            seed="issue12-dirty",
            stale=STALE_PER_TABLE,
            stale_pool=STALE_POOL,
            latency_ms=LATENCY_MS,
            loss=LOSS,
            settle_seconds=SETTLE_SECONDS,
        ) as net:
            root_table = set(net.bootnode.table)
            # Settled, not a young tree: the root knows more than one answer carries, and not only its children.
            assert len(root_table) >= SETTLED_TABLE, len(root_table)
            assert {n.pubkey for n in net.nodes} - {net.nodes[c].pubkey for c in net.bootnode.children} & root_table
            assert {s.pubkey for s in net.stale} & root_table  # stale entries are in the answers
            assert len({n.delay_ms for n in net.nodes}) > 1 and max(n.delay_ms for n in net.nodes) >= 100

            args = ["--bootnode", net.bootnode.enode, "--udp", f"{LOOPBACK}:0", "--db", str(database)]
            run = await run_crawl_cli(args, tmp_path, limit=CRAWL_BOUND)
    print(f"settled dirty ethereumjs network of {NODES}: crawl {run.elapsed:.1f} s; {run.stats()}")
    assert run.returncode == 0, run.output

    with sqlite3.connect(database) as db:
        found = {bytes(row[0]) for row in db.execute("SELECT node_id FROM nodes")}
        dials = {
            bytes(node_id): (outcome, client_id)
            for node_id, outcome, client_id in db.execute("SELECT node_id, outcome, client_id FROM dial_attempts")
        }
    live = net.by_id()
    missing = sorted(live[node_id].index for node_id in set(live) - found)
    assert missing == [], f"live nodes not found: {missing}\n{run.output}"
    # Each live node dialed, with the client id its Hello names.
    assert {node_id: dials.get(node_id) for node_id in live} == {
        node_id: ("ok", node.client_id) for node_id, node in live.items()
    }
    # The stale entries were heard of (they sit in the tables), and none of them answered a dial.
    stale = {node.node_id for node in net.stale}
    assert stale & found
    assert all(dials[node_id][0] != "ok" for node_id in stale & set(dials))
