"""End to end: a devnet on 127.0.0.1 crawled, its nodes published as a signed EIP-1459 tree served by a DNS server
on 127.0.0.1, ``ethcrawl dns sync`` gives the same records back, and a crawl seeded with nothing but the
``enrtree://`` URL finds the whole devnet.  A tampered tree served the same way seeds nothing."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import trio
from dnsserver import serve_txt

from ethcrawl.crawler.crawl import CrawlOptions, run_crawl
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.db.engine import open_database
from ethcrawl.db.nodesjson import export_nodes_json
from ethcrawl.wire.crypto import PrivateKey, keccak256
from ethcrawl.wire.dnsdisc import LinkEntry, make_tree
from ethcrawl.wire.enode import parse_enode
from ethcrawl.wire.enr import ENR

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
CRAWL_DEADLINE = 60  # s: a 12-node devnet crawl ends by itself in seconds
DOMAIN = "devnet.nodes.test"
KEY = PrivateKey(keccak256(b"ethcrawl test_dns_devnet list key"))
# Both crawls run as one node: the devnet remembers the first crawler, and the second must not count it as a node.
CRAWLER_KEY = keccak256(b"ethcrawl test_dns_devnet crawler key")


def _node_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {bytes(row[0]).hex() for row in conn.execute("SELECT node_id FROM nodes")}


async def _ethcrawl(*args: str) -> trio.CompletedProcess[bytes]:
    with trio.fail_after(CRAWL_DEADLINE):
        return await trio.run_process([ETHCRAWL, *args], capture_stdout=True, capture_stderr=True, check=False)


async def test_a_devnet_published_as_a_dns_list_syncs_back_and_seeds_a_whole_crawl(tmp_path: Path) -> None:
    first_db, seeded_db, synced = tmp_path / "first.db", tmp_path / "seeded.db", tmp_path / "synced"
    key_file = tmp_path / "crawler.key"
    key_file.write_text(CRAWLER_KEY.hex())
    url = LinkEntry.for_key(KEY, DOMAIN).text()
    async with open_devnet(nodes=12, seed=4) as net:
        manifest = net.manifest()
        devnet_ids = {n["node_id"] for n in manifest["nodes"]}
        # 1. Crawl the devnet from its bootnode, and take the crawl's nodes.json.
        db = open_database(first_db)
        options = CrawlOptions(
            seeds=(parse_enode(net.bootnode_enode),), listen_host="127.0.0.1", dial=False, duration=CRAWL_DEADLINE
        )
        await run_crawl(db, options, private_key=PrivateKey(CRAWLER_KEY), handle_signals=False)
        with db.session() as session:
            exported = export_nodes_json(session)
        db.close()
        assert _node_ids(first_db) == devnet_ids
        # 2. Publish it: a signed tree, served as TXT records from 127.0.0.1.
        records = [ENR.from_text(entry["record"]) for entry in exported.values()]
        assert len(records) >= 8  # every devnet node but the pre-EIP-868 ones has a record
        txt = make_tree(records, [], seq=1).signed(KEY).txt_records(DOMAIN)
        with serve_txt(txt) as server:
            # 3. dns sync gives the very records back.
            done = await _ethcrawl("dns", "sync", url, str(synced), "--dns-server", server.spec)
            assert done.returncode == 0, done.stderr.decode()
            nodes = json.loads((synced / "nodes.json").read_text())
            assert {k: v["record"] for k, v in nodes.items()} == {k: v["record"] for k, v in exported.items()}
            assert json.loads((synced / "enrtree-info.json").read_text())["url"] == url
            # 4. A crawl seeded with the URL alone (no bootnode, no public list) finds the whole devnet.
            done = await _ethcrawl(
                "crawl", "--bootnode", url, "--dns-server", server.spec, "--db", str(seeded_db),
                "--udp", "127.0.0.1:0", "--no-dial", "--node-key", str(key_file),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            assert b"warning" not in done.stderr
            assert _node_ids(seeded_db) == devnet_ids
            # 5. The same tree signed by another key is refused: one line, and the crawl has no seed to start from.
            server.replace(make_tree(records, [], seq=2).signed(PrivateKey(b"\x07" * 32)).txt_records(DOMAIN))
            done = await _ethcrawl(
                "crawl", "--bootnode", url, "--dns-server", server.spec, "--db", str(tmp_path / "refused.db"),
                "--udp", "127.0.0.1:0", "--no-dial",
            )  # fmt: skip
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1
    assert lines[0].startswith(f"warning: DNS list {url}: ") and "signature does not verify" in lines[0]
    assert lines[1] == "Error: no seed to start from: the DNS lists gave no records (see the warnings above)"
