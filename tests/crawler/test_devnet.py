"""The devnet: its plan (pure), its nodes (real sockets on 127.0.0.1), and a real crawl of it.

The crawl test is the point: our crawler walks a 30-node devnet from the
bootnode and must find every node, record each dialable node's exact client
id and Status, and classify every awkward kind as the manifest says.  The CLI
test runs ``ethcrawl devnet`` and ``ethcrawl crawl`` as a user would (the
README's offline demo).
"""

from __future__ import annotations

from collections import Counter

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from ethcrawl.crawler.crawl import CrawlOptions, run_crawl
from ethcrawl.crawler.devnet import (
    AWKWARD_SHARES,
    CONSENSUS_CLIENTS,
    PROTOCOLS,
    NODES_PER_ADDRESS,
    SLOW_REPLY_DELAY,
    DevnetConfig,
    Kind,
    open_devnet,
    plan_devnet,
)
from ethcrawl.crawler.devnet_clients import CLIENT_PROFILES, choose_client
from ethcrawl.crawler.dialer import DialConfig, Outcome, dial
from ethcrawl.crawler.discovery import DiscoveryConfig, DiscoveryV4
from ethcrawl.db.engine import open_database
from ethcrawl.wire.chains import CHAINS
from ethcrawl.wire.clientid import parse_client_id
from ethcrawl.wire.crypto import generate_private_key
from ethcrawl.wire.enode import parse_enode
from ethcrawl.wire.forkid import classify

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
CRAWL_DEADLINE = 60  # s, the bound for a 30-node crawl
FAST_DIAL = DialConfig(connect_timeout=2, handshake_timeout=2, status_timeout=2, header_timeout=2)


# ---------------------------------------------------------------------- client ids


@pytest.mark.parametrize("profile", CLIENT_PROFILES, ids=lambda p: p.name)
def test_every_client_id_parses_to_its_client(profile: Any) -> None:
    for client_id in profile.ids + profile.eth69_ids:
        parsed = parse_client_id(client_id)
        assert parsed.name == profile.name, client_id
        assert parsed.version is not None and parsed.os is not None, client_id


def test_client_mix_follows_the_weights() -> None:
    import random

    rng = random.Random(7)
    names = [choose_client(rng)[0].name for _ in range(4000)]
    share = {p.name: names.count(p.name) / len(names) for p in CLIENT_PROFILES}
    assert 0.40 < share["geth"] < 0.50
    assert 0.20 < share["nethermind"] < 0.30
    assert share["erigon"] > share["besu"] > share["ethereumjs"] > 0


# ---------------------------------------------------------------------- the plan


def test_plan_is_deterministic_per_seed() -> None:
    a, b = plan_devnet(DevnetConfig(nodes=50, seed=3)), plan_devnet(DevnetConfig(nodes=50, seed=3))
    c = plan_devnet(DevnetConfig(nodes=50, seed=4))
    assert a == b
    assert [s.node_id for s in a.nodes] != [s.node_id for s in c.nodes]
    assert len({s.node_id for s in a.nodes}) == 50


@pytest.mark.parametrize("nodes,seed", [(30, 0), (30, 1), (200, 2), (1000, 5)])
def test_tables_are_partial_yet_the_walk_reaches_everyone(nodes: int, seed: int) -> None:
    plan = plan_devnet(DevnetConfig(nodes=nodes, seed=seed))
    assert plan.reachable_from(0) == set(range(nodes))
    assert max(len(s.known) for s in plan.nodes) < nodes - 1  # nobody knows everybody
    for spec in plan.nodes:
        assert spec.index not in spec.known and len(set(spec.known)) == len(spec.known)
        # Kademlia-shaped: the nearest node by XOR is always in the table.
        me = int.from_bytes(spec.node_id, "big")
        nearest = min((s for s in plan.nodes if s is not spec), key=lambda s: me ^ int.from_bytes(s.node_id, "big"))
        assert nearest.index in spec.known


def test_awkward_shares_and_one_of_each_kind() -> None:
    small = plan_devnet(DevnetConfig(nodes=30, seed=0))
    assert {s.kind for s in small.nodes} == set(Kind)
    assert small.nodes[0].kind is Kind.NORMAL
    big = plan_devnet(DevnetConfig(nodes=1000, seed=0))
    for kind, share in AWKWARD_SHARES.items():
        assert sum(s.kind is kind for s in big.nodes) == round(share * 1000)
    plain = plan_devnet(DevnetConfig(nodes=30, seed=0, awkward=False))
    assert {s.kind for s in plain.nodes} == {Kind.NORMAL}


def test_kinds_shape_what_nodes_say() -> None:
    plan = plan_devnet(DevnetConfig(nodes=200, seed=9, network="sepolia"))
    for spec in plan.nodes:
        eth = any(c.name == "eth" for c in spec.capabilities)
        assert eth == (spec.kind not in (Kind.NOT_ETH, Kind.CONSENSUS))
        assert (spec.network != "sepolia") == (spec.kind is Kind.OTHER_NETWORK)
        if spec.kind is Kind.NO_ENR:
            assert spec.client_name == "nimbus-eth1"
        if spec.kind is Kind.CONSENSUS:
            # Beacon nodes say no client id over discovery; the manifest names a beacon client.
            assert spec.client_id == "" and spec.client_name in {name for name, _ in CONSENSUS_CLIENTS}
        else:
            assert parse_client_id(spec.client_id).name == spec.client_name


def test_every_node_is_reachable_over_protocols_both_ends_speak() -> None:
    for seed in range(5):
        plan = plan_devnet(DevnetConfig(nodes=120, seed=seed))
        assert plan.reachable_from(0) == set(range(120)), seed
        for protocol in ("v4", "v5"):
            # A walk of one DHT alone finds every node that speaks it.
            speakers = {s.index for s in plan.nodes if protocol in PROTOCOLS[s.kind]}
            assert plan.reachable_from(0, protocol) == speakers, (seed, protocol)
        assert {s.kind for s in plan.nodes} >= {Kind.NO_ENR, Kind.CONSENSUS}


def test_many_nodes_spread_over_loopback_addresses() -> None:
    plan = plan_devnet(DevnetConfig(nodes=2 * NODES_PER_ADDRESS + 1, seed=0, base_port=40000))
    hosts = [s.host for s in plan.nodes]
    assert hosts[0] == "127.0.0.1" and hosts[NODES_PER_ADDRESS] == "127.0.0.2" and hosts[-1] == "127.0.0.3"
    assert plan.nodes[NODES_PER_ADDRESS + 5].port == 40005


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"nodes": 5, "host": "10.0.0.1"}, "not a loopback"),
        ({"nodes": 5, "host": "0.0.0.0"}, "not a loopback"),
        ({"nodes": 5, "host": "localhost"}, "not an IP address"),
        ({"nodes": 2 * NODES_PER_ADDRESS, "host": "::1"}, "loopback addresses"),
        ({"nodes": 0}, "at least 1"),
        ({"nodes": 5, "network": "ropsten"}, "unknown network"),
        ({"nodes": 5, "base_port": 65534}, "65535"),
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DevnetConfig(**kwargs)


# ---------------------------------------------------------------------- running nodes


def _by_kind(net: Any, kind: Kind) -> Any:
    return next(n for n in net.nodes if n.spec.kind is kind)


async def test_nodes_hold_their_planned_tables_and_answer_findnode() -> None:
    async with open_devnet(nodes=30, seed=1) as net:
        for node in net.nodes:
            # Each protocol's table holds the planned neighbours that speak it.
            for protocol, table in (("v4", node.discovery and node.discovery.table), ("v5", node.discovery_v5 and node.discovery_v5.table)):
                assert (table is not None) == (protocol in node.protocols)
                if table is not None:
                    planned = {net.nodes[j].spec.node_id for j in node.spec.known if protocol in net.nodes[j].protocols}
                    assert {n.node_id for n in table} == planned
        crawler = DiscoveryV4(generate_private_key())
        async with trio.open_nursery() as nursery:
            await nursery.start(crawler.run)
            boot = net.bootnode.node
            with trio.fail_after(10):
                assert await crawler.bond(boot)
                found = await crawler.find_node(boot, net.bootnode.spec.pubkey)
            # The bootnode has learned of us by now (we bonded), as a real node would.
            planned = {net.nodes[j].spec.pubkey for j in net.bootnode.spec.known}
            assert {r.pubkey for r in found} <= planned | {crawler.pubkey}
            assert len(found) == 16 and len(planned & {r.pubkey for r in found}) >= 15
            nursery.cancel_scope.cancel()


async def test_no_enr_node_is_pre_eip868_and_slow_node_is_late_but_in_time() -> None:
    async with open_devnet(nodes=30, seed=1) as net:
        crawler = DiscoveryV4(generate_private_key(), config=DiscoveryConfig(response_timeout=1.0))
        async with trio.open_nursery() as nursery:
            await nursery.start(crawler.run)
            with trio.fail_after(10):
                quiet = _by_kind(net, Kind.NO_ENR).node
                pong = await crawler.ping(quiet)
                assert pong is not None and pong.enr_seq is None
                assert await crawler.bond(quiet)
                assert await crawler.request_enr(quiet) is None
                normal = net.bootnode.node
                assert (await crawler.ping(normal)).enr_seq == 1  # type: ignore[union-attr]
                assert await crawler.bond(normal)
                assert (await crawler.request_enr(normal)) == net.bootnode.discovery.enr
                slow = _by_kind(net, Kind.SLOW).node
                started = trio.current_time()
                assert await crawler.ping(slow) is not None
                assert SLOW_REPLY_DELAY <= trio.current_time() - started < 0.5  # under geth's respTimeout
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
async def test_each_kind_dials_as_expected(kind: Kind) -> None:
    async with open_devnet(nodes=30, seed=1) as net:
        node = _by_kind(net, kind)
        with trio.fail_after(15):
            result = await dial(node.node, generate_private_key(), config=FAST_DIAL)
        expected = {
            Kind.NO_LISTENER: Outcome.REFUSED, Kind.CONSENSUS: Outcome.REFUSED,  # a libp2p port speaks no RLPx
            Kind.TOO_MANY_PEERS: Outcome.TOO_MANY_PEERS, Kind.NOT_ETH: Outcome.NOT_ETH,
        }
        assert result.outcome is expected.get(kind, Outcome.OK), result.error
        if kind in (Kind.NO_LISTENER, Kind.CONSENSUS):
            return
        assert result.hello is not None and result.hello.client_id == node.spec.client_id
        assert result.remote_pubkey == node.spec.pubkey
        if result.outcome is Outcome.OK:
            chain = CHAINS[node.spec.network]
            assert result.status is not None
            assert result.status.network_id == chain.network_id and result.status.genesis == chain.genesis_hash
            assert classify(result.status.fork_id).network == node.spec.network
            assert result.synced is True and result.head_number is not None
            if kind is Kind.OTHER_NETWORK:
                assert node.spec.network != "mainnet"


# ---------------------------------------------------------------------- a real crawl


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_crawl_of_a_30_node_devnet_finds_and_classifies_everyone(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    async with open_devnet(nodes=30, seed=11) as net:
        manifest = net.manifest()
        db = open_database(path)
        options = CrawlOptions(
            seeds=(parse_enode(net.bootnode_enode),), listen_host="127.0.0.1", dial_timeout=2, duration=CRAWL_DEADLINE
        )
        started = trio.current_time()
        summary = await run_crawl(db, options, handle_signals=False)
        elapsed = trio.current_time() - started
        db.close()
    assert elapsed < CRAWL_DEADLINE - 5, "the crawl must end by itself"
    by_id = {n["node_id"]: n for n in manifest["nodes"]}
    expected_protocols = Counter(",".join(n["protocols"]) for n in manifest["nodes"])
    assert dict(summary.protocols) == dict(expected_protocols)
    # Every devnet record carries its chain's eth entry; pre-EIP-868 nodes never hand theirs out.
    no_enr = sum(1 for n in manifest["nodes"] if n["kind"] == Kind.NO_ENR.value)
    beacon = sum(1 for n in manifest["nodes"] if n["kind"] == Kind.CONSENSUS.value)
    assert no_enr >= 1 and beacon >= 1
    assert dict(summary.layers) == {"execution": 30 - no_enr - beacon, "consensus": beacon, "unknown": no_enr}
    found = {bytes(r[0]).hex() for r in _rows(path, "SELECT node_id FROM nodes")}
    assert found == set(by_id)
    dials = _rows(path, "SELECT node_id, outcome, client_id, network_id, genesis_hash, fork_hash FROM dial_attempts")
    outcomes = {bytes(r[0]).hex(): r for r in dials}
    # Every execution-layer node dialed once (no-listener ones too: refused); beacon nodes are left alone.
    assert set(outcomes) == {i for i, n in by_id.items() if n["expected_outcome"] != "not-dialed"}
    kinds_seen = set()
    for node_id, (_, outcome, client_id, network_id, genesis, fork_hash) in outcomes.items():
        entry = by_id[node_id]
        kinds_seen.add(entry["kind"])
        assert outcome == entry["expected_outcome"], entry
        if entry["dialable"]:
            assert client_id == entry["client_id"]
        if outcome == "ok":
            chain = CHAINS[entry["network"]]
            assert network_id == entry["network_id"] and bytes(genesis) == chain.genesis_hash
            assert bytes(fork_hash) == net.nodes[entry["index"]]._head.status(68).fork_id.hash
    assert kinds_seen == {k.value for k in Kind} - {Kind.CONSENSUS.value}
    # One --discovery both crawl: v4 and v5 answered for every node that speaks both, v4 alone for pre-EIP-868 ones;
    # their records carry their chain's eth fork id, so they classify as execution-layer nodes of that chain.
    rows = _rows(path, "SELECT node_id, protocols, layer, execution_network, consensus_network, attnets_count FROM nodes")
    for node_id, protocols, layer, network, consensus_network, attnets in rows:
        entry = by_id[bytes(node_id).hex()]
        assert protocols == ",".join(entry["protocols"]), entry
        if entry["kind"] == Kind.CONSENSUS.value:
            assert (layer, consensus_network, attnets) == ("consensus", "mainnet", 2), entry
        elif "v5" in entry["protocols"]:
            assert (layer, network) == ("execution", entry["network"]), entry
    assert {r[1] for r in rows} == {"v4", "v5", "v4,v5"}


# ---------------------------------------------------------------------- the CLI demo


async def _read_until(stream: Any, marker: bytes, buffer: bytearray) -> None:
    while marker not in buffer:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError(f"output ended before {marker!r}: {bytes(buffer)!r}")
        buffer += chunk


async def test_cli_devnet_then_cli_crawl(tmp_path: Path) -> None:
    manifest_path, db = tmp_path / "devnet.json", tmp_path / "crawl.db"
    devnet = await trio.lowlevel.open_process(
        [ETHCRAWL, "devnet", "--nodes", "12", "--seed", "4", "--duration", "50", "--manifest", str(manifest_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        out = bytearray()
        with trio.fail_after(20):
            await _read_until(devnet.stdout, b"devnet: 12 nodes", out)
            await _read_until(devnet.stdout, b"\n", out)
        lines = out.decode().splitlines()
        enode = next(line.split()[-1] for line in lines if line.startswith("bootnode enode://"))
        assert any(line.startswith("bootnode enr:") for line in lines)
        manifest = json.loads(manifest_path.read_text())
        assert manifest["bootnodes"][0]["enode"] == enode and len(manifest["nodes"]) == 12
        with trio.fail_after(CRAWL_DEADLINE):
            crawl = await trio.run_process(
                [ETHCRAWL, "crawl", "--bootnode", enode, "--db", str(db), "--udp", "127.0.0.1:0"],
                capture_stdout=True, capture_stderr=True, check=False,
            )
        assert crawl.returncode == 0, crawl.stderr.decode()
        found = {bytes(r[0]).hex() for r in _rows(db, "SELECT node_id FROM nodes")}
        assert found == {n["node_id"] for n in manifest["nodes"]}
        clients = {r[0] for r in _rows(db, "SELECT client_id FROM dial_attempts WHERE client_id IS NOT NULL")}
        assert clients == {n["client_id"] for n in manifest["nodes"] if n["dialable"]}
        devnet.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            assert await devnet.wait() == 0
        err = (await devnet.stderr.receive_some(65536)).decode()  # type: ignore[union-attr]
        assert "Traceback" not in err
    finally:
        if devnet.returncode is None:
            devnet.kill()
            await devnet.wait()


async def test_cli_devnet_refuses_a_public_host() -> None:
    done = await trio.run_process(
        [ETHCRAWL, "devnet", "--nodes", "3", "--host", "192.0.2.1"], capture_stdout=True, capture_stderr=True, check=False
    )
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "not a loopback address" in err and "Traceback" not in err
