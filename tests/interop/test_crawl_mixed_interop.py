"""Issue 7 end to end: one `ethcrawl crawl --discovery both` over a mixed loopback network.

Three kinds of node on 127.0.0.1, each a tree or table only a walk gets through:

* @ethereumjs/devp2p 10.0.0 discv4 nodes (js/dpt_network.mjs, a tree rooted at their node 0). They have no
  ENR (no EIP-868), so they are v4-only by construction.
* @chainsafe/discv5 11.0.0 nodes (js/discv5_network.mjs, a tree rooted at their node 0): v5 only.
* ethcrawl devnet nodes (crawler.devnet, in this process): v4 and v5 on one port, Kademlia-shaped tables;
  pre-EIP-868 ones (Kind.NO_ENR) speak v4 only and beacon nodes (Kind.CONSENSUS) v5 only, as the
  manifest's "protocols" says.

The only bridges: one devnet node (not the seed) holds the ethereumjs root in its v4 table, another holds
the chainsafe root in its v5 table. The crawl is seeded with the devnet bootnode's ENR alone, so it must
walk devnet v4 -> ethereumjs and devnet v5 -> chainsafe to find everyone.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from crawl_cli import CRAWL_LIMIT, run_crawl_cli
from discv5_network import ChainsafeDiscv5
from dpt_network import (  # noqa: F401 (dpt_network_fixture provides the dpt_network fixture)
    LOOPBACK,
    DptNetworkLauncher,
    dpt_network_fixture,
)
from ethcrawl.crawler.devnet import Kind, open_devnet
from ethcrawl.wire.enr import ENR

pytestmark = pytest.mark.interop

ETHEREUMJS_NODES = 8
CHAINSAFE_NODES = 8
# A devnet of 16 (2 x the number of kinds) has one node of every kind: a pre-EIP-868 one (v4 only) and a
# beacon node (v5 only, a consensus-layer record) among them.
DEVNET_NODES = 16
DEVNET_SEED = 7
FANOUT = 2  # both JS trees: 8 nodes are 4 levels deep
STARTUP_SLACK = 20.0  # s on top of CRAWL_LIMIT: three networks to start, one database to read


async def test_one_crawl_finds_a_mixed_v4_v5_network_and_marks_each_nodes_protocols(
    dpt_network: DptNetworkLauncher, chainsafe_discv5: ChainsafeDiscv5, tmp_path: Path
) -> None:
    database = tmp_path / "crawl.db"
    lifetime = CRAWL_LIMIT + STARTUP_SLACK
    with trio.fail_after(lifetime):
        async with (
            dpt_network(ETHEREUMJS_NODES, fanout=FANOUT, max_seconds=lifetime) as ejs,
            chainsafe_discv5.network(CHAINSAFE_NODES, fanout=FANOUT, duration=lifetime) as cs,
            open_devnet(nodes=DEVNET_NODES, seed=DEVNET_SEED, host=LOOPBACK) as devnet,
        ):
            manifest = {bytes.fromhex(entry["node_id"]): entry for entry in devnet.manifest()["nodes"]}
            assert {Kind.NO_ENR, Kind.CONSENSUS} <= {node.spec.kind for node in devnet.nodes}  # v4-only, v5-only
            # The bridges sit one hop or more from the seed, in ordinary (prompt, record-serving) nodes.
            bridges = [n for n in devnet.nodes[1:] if n.spec.kind is Kind.NORMAL and n.discovery_v5 is not None]
            to_ethereumjs, to_chainsafe = bridges[0], bridges[-1]
            to_ethereumjs.discovery.table.add_verified(ejs.bootnode.node)
            assert to_chainsafe.discovery_v5 is not None
            to_chainsafe.discovery_v5.add_to_table(cs.bootnode.enr)

            args = ["--discovery", "both", "--bootnode", devnet.bootnode_enr, "--udp", f"{LOOPBACK}:0"]
            run = await run_crawl_cli([*args, "--no-dial", "--db", str(database)], tmp_path)
    print(
        f"ethcrawl crawl --discovery both: {ETHEREUMJS_NODES} ethereumjs + {CHAINSAFE_NODES} chainsafe + "
        f"{DEVNET_NODES} devnet nodes in {run.elapsed:.1f} s; {run.stats()}"
    )
    assert run.returncode == 0, run.output
    assert run.elapsed < CRAWL_LIMIT, run.output  # ended by itself (no --duration), within the bound

    with sqlite3.connect(database) as db:
        stored = {
            bytes(node_id): (bytes(enr) if enr is not None else None, protocols)
            for node_id, enr, protocols in db.execute("SELECT node_id, enr, protocols FROM nodes")
        }
        edges = {
            (bytes(a), bytes(b)): protocols
            for a, b, protocols in db.execute("SELECT from_node, to_node, protocols FROM edges")
        }

    # Every node of all three networks, and nothing else.
    want_protocols = {node.node_id: "v4" for node in ejs.nodes}
    want_protocols |= {node.node_id: "v5" for node in cs.nodes}
    want_protocols |= {node_id: ",".join(entry["protocols"]) for node_id, entry in manifest.items()}
    assert len(want_protocols) == ETHEREUMJS_NODES + CHAINSAFE_NODES + DEVNET_NODES
    assert set(stored) == set(want_protocols), run.output
    got_protocols = {node_id: protocols for node_id, (_, protocols) in stored.items()}
    assert got_protocols == want_protocols, run.output
    assert set(want_protocols.values()) == {"v4", "v5", "v4,v5"}  # each mark occurs (a NO_ENR devnet node: "v4")
    beacon = [node_id for node_id, entry in manifest.items() if entry["kind"] == Kind.CONSENSUS.value]
    assert beacon and all(want_protocols[node_id] == "v5" for node_id in beacon)

    # Records: none for ethereumjs nodes; the harness's and the devnet's own bytes for the others.
    for node in ejs.nodes:
        assert stored[node.node_id][0] is None, node.index
    for member in cs.nodes:
        assert stored[member.node_id][0] == ENR.from_text(member.enr_text).to_rlp(), member.index
    for node_id, entry in manifest.items():
        enr = stored[node_id][0]
        if "v5" in entry["protocols"]:
            assert enr == ENR.from_text(entry["enr"]).to_rlp(), entry["index"]

    # The walk went through the bridges, over the protocol each bridge speaks, and down both JS trees.
    assert edges[(to_ethereumjs.spec.node_id, ejs.bootnode.node_id)] == "v4"
    assert edges[(to_chainsafe.spec.node_id, cs.bootnode.node_id)] == "v5"
    for node in ejs.nodes:
        for child in node.children:
            assert edges[(node.node_id, ejs.nodes[child].node_id)] == "v4", (node.index, child)
    for member in cs.nodes:
        for child in member.children:
            assert edges[(member.node_id, cs.nodes[child].node_id)] == "v5", (member.index, child)
    # Devnet edges name only planned table entries, over protocols both ends speak.
    devnet_ids = [node.spec.node_id for node in devnet.nodes]
    for (a, b), protocols in edges.items():
        if a not in manifest or b not in manifest:
            continue
        assert b in {devnet_ids[j] for j in manifest[a]["table"]}, (manifest[a]["index"], manifest[b]["index"])
        for protocol in protocols.split(","):
            assert protocol in manifest[a]["protocols"] and protocol in manifest[b]["protocols"], protocols

    stats = run.stats()
    speaks_v5 = sum("v5" in entry["protocols"] for entry in manifest.values())
    speaks_v4 = sum("v4" in entry["protocols"] for entry in manifest.values())
    assert stats["answered_v4"] == ETHEREUMJS_NODES + speaks_v4, run.output
    assert stats["answered_v5"] == CHAINSAFE_NODES + speaks_v5, run.output
