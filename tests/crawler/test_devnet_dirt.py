"""A dirty devnet running (real sockets on 127.0.0.x), and a real crawl of it.

Round trips are kept to 1-20 ms (mainnet: 20-400) so the suite stays fast;
everything else is the mainnet profile's dirt.  The crawl test is the point:
our crawler, with its defaults, must find every live node a walk can reach,
record NAT'd nodes as seen but silent, never dial a dead record twice, keep
sybil clusters to its bound, keep the newest record of a node that changed it,
and record the nodes that left with what their dial said.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from functools import partial
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import trio

from ethcrawl.crawler.crawl import CrawlOptions, run_crawl
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.crawler.devnet_profile import MAINNET, Role
from ethcrawl.crawler.dialer import DialConfig, Outcome, dial, local_hello, serve_session
from ethcrawl.crawler.discovery import DiscoveryConfig, DiscoveryV4
from ethcrawl.crawler.sybil import IDS_PER_ENDPOINT
from ethcrawl.crawler.udp import open_udp_socket
from ethcrawl.db.engine import open_database
from ethcrawl.wire.crypto import generate_private_key, pubkey_from_private
from ethcrawl.wire.enode import Node, parse_enode
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import PeerSession

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
FAST = MAINNET.overridden(rtt_min=0.001, rtt_max=0.020)  # the mainnet profile, on a LAN's round trips
CRAWL_DEADLINE = 90  # s
FAST_DIAL = DialConfig(connect_timeout=2, handshake_timeout=2, status_timeout=2, header_timeout=2)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_dead_records_have_no_socket_and_the_shim_delays_answers() -> None:
    dirt = FAST.overridden(loss=0.0, rtt_min=0.05, rtt_max=0.1, churn_share=0.0, enr_change_share=0.0)
    async with open_devnet(nodes=30, seed=1, dirt=dirt) as net:
        manifest = net.manifest()
        assert {r["role"] for r in manifest["records"]} == {role.value for role in Role} - {Role.LIVE.value}
        assert len(manifest["nodes"]) + len(manifest["records"]) == len(net.plan.nodes) + len(net.plan.records)
        for dead in net.dead:
            if dead.record.role is Role.STALE_OLD_KEY:
                twin = net.nodes[dead.record.twin]  # type: ignore[index]
                assert (dead.node.ip, dead.node.udp) == (twin.node.ip, twin.node.udp)
                continue
            # Nothing is bound where a dead record points: we can take the port ourselves.
            async with await open_udp_socket(str(dead.node.ip), dead.node.udp or 0):
                pass
        crawler = DiscoveryV4(generate_private_key(), config=DiscoveryConfig(response_timeout=0.4))
        async with trio.open_nursery() as nursery:
            await nursery.start(crawler.run)
            with trio.fail_after(20):
                stale = next(d for d in net.dead if d.record.role is Role.STALE)
                old_key = next(d for d in net.dead if d.record.role is Role.STALE_OLD_KEY)
                assert await crawler.ping(stale.node) is None
                # The twin answers, but under its own key: the old one is silent.
                assert await crawler.ping(old_key.node) is None
                node = net.nodes[5]
                started = trio.current_time()
                assert await crawler.ping(node.node) is not None
                assert trio.current_time() - started >= node.spec.events.rtt >= 0.05
                assert node.transport is not None and node.transport.link.rtt == node.spec.events.rtt
            nursery.cancel_scope.cancel()


async def test_nodes_join_leave_and_move_on_schedule() -> None:
    dirt = FAST.overridden(loss=0.0, churn_share=0.1, enr_change_share=0.1, churn_window=0.5)
    async with open_devnet(nodes=40, seed=2, dirt=dirt) as net:
        plan = net.plan
        joiners = [s.index for s in plan.nodes if s.events.join_at is not None]
        leavers = [s.index for s in plan.nodes if s.events.leave_at is not None]
        movers = [s.index for s in plan.nodes if s.events.enr_change_at is not None]
        assert joiners and leavers and movers
        old_tcp = {i: net.nodes[i].node.tcp for i in movers}
        await trio.sleep(1.0)  # past the window: everything has happened
        for j in joiners:
            holders = [s.index for s in plan.nodes if j in s.known]
            table = net.nodes[holders[0]].discovery
            assert table is not None and net.nodes[j].spec.node_id in table.table
        assert all(net.nodes[i].left for i in leavers)
        crawler = DiscoveryV4(generate_private_key(), config=DiscoveryConfig(response_timeout=0.4))
        async with trio.open_nursery() as nursery:
            await nursery.start(crawler.run)
            with trio.fail_after(30):
                assert await crawler.ping(net.nodes[leavers[0]].node) is None  # its socket is closed
                mover = net.nodes[movers[0]]
                pong = await crawler.ping(mover.node)
                assert pong is not None and pong.enr_seq == 2
                assert await crawler.bond(mover.node)
                record = await crawler.request_enr(mover.node)
                assert record is not None and record.seq == 2 and record.tcp != old_tcp[movers[0]]
                moved = await dial(record.to_node(), generate_private_key(), config=FAST_DIAL)
                assert moved.hello is not None and moved.hello.client_id == mover.spec.client_id
                gone = Node(pubkey=mover.spec.pubkey, ip=ip_address(mover.spec.host), udp=None, tcp=old_tcp[movers[0]])
                assert (await dial(gone, generate_private_key(), config=FAST_DIAL)).outcome is Outcome.REFUSED
            nursery.cancel_scope.cancel()


async def test_natd_nodes_dial_out_with_their_client_id() -> None:
    key = generate_private_key()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    target = Node(pubkey=pubkey_from_private(key), ip=ip_address("127.0.0.1"), udp=None, tcp=port)
    hellos: list[tuple[bytes | None, str | None]] = []

    async def handle(stream: trio.SocketStream) -> None:
        session = PeerSession(RLPxConnection.recipient(key), hello=local_hello(key, listen_port=port))
        result = await serve_session(stream, session, node_id=bytes(32), direction="inbound", config=FAST_DIAL)
        hellos.append((result.remote_pubkey, result.hello.client_id if result.hello else None))

    dirt = FAST.overridden(nat_dial_share=1.0, churn_window=0.2, churn_share=0.0, enr_change_share=0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        async with open_devnet(nodes=30, seed=3, dirt=dirt, dial_out=target) as net:
            nat = [r for r in net.manifest()["records"] if r["role"] == Role.NAT.value]
            assert nat and all(r["dials_out_at"] is not None and r["client_id"] for r in nat)
            with trio.fail_after(20):
                while len(hellos) < len(nat):
                    await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    pubkeys = {bytes.fromhex(r["enode"][len("enode://") : len("enode://") + 128]): r["client_id"] for r in nat}
    assert dict(hellos) == pubkeys  # each NAT'd node, with the client id the manifest names


async def test_crawl_of_a_dirty_devnet(tmp_path: Path) -> None:
    """60 live nodes among ~170 dead records, 2 % loss, sybils, churn: the crawler's defaults, one crawl."""
    path = tmp_path / "crawl.db"
    dirt = FAST.overridden(stale_share=0.64, sybil_clusters=2, sybil_size=8, churn_window=0.0)
    async with open_devnet(nodes=60, seed=5, dirt=dirt) as net:
        manifest = net.manifest()
        db = open_database(path)
        options = CrawlOptions(
            seeds=(parse_enode(net.bootnode_enode),), listen_host="127.0.0.1", dial_timeout=2, duration=CRAWL_DEADLINE,
            concurrency=64,
        )
        started = trio.current_time()
        await run_crawl(db, options, handle_signals=False)
        elapsed = trio.current_time() - started
        db.close()
    assert elapsed < CRAWL_DEADLINE - 5, "the crawl must end by itself"
    live = {n["node_id"]: n for n in manifest["nodes"]}
    dead = {r["node_id"]: r for r in manifest["records"]}
    seen = {bytes(r[0]).hex(): (bool(r[1]), r[2], r[3]) for r in _rows(
        path, "SELECT n.node_id, s.responded, n.enr_seq, n.ip || ':' || n.udp_port FROM nodes n JOIN sightings s USING (node_id)"
    )}
    dials: dict[str, list[tuple[str, int, str | None]]] = {}
    for node_id, outcome, tcp, client_id in _rows(path, "SELECT node_id, outcome, tcp_port, client_id FROM dial_attempts"):
        dials.setdefault(bytes(node_id).hex(), []).append((outcome, tcp, client_id))
    assert set(seen) <= set(live) | set(dead)  # nothing made up
    # Every live node a walk can reach is found, and every one that stayed answered.
    staying = {i for i, n in live.items() if n["leaves_at"] is None}
    missed = [live[i]["index"] for i in staying if live[i]["findable"] and i not in seen]
    assert not missed, missed
    silent = [(live[i]["index"], live[i]["kind"]) for i in staying if not seen[i][0]]
    assert len(silent) <= 1, silent  # a node's every bond lost at 2 %: rare, not never
    # Dead records: found through live tables, never answering, dialed at most once.
    found_dead = set(dead) & set(seen)
    assert len(found_dead) > 0.8 * sum(r["findable"] for r in dead.values()), len(found_dead)
    assert not any(seen[i][0] for i in found_dead)
    assert all(len(dials.get(i, [])) <= 1 for i in found_dead), [dials[i] for i in found_dead if len(dials.get(i, [])) > 1]
    nat = [i for i in found_dead if dead[i]["role"] == Role.NAT.value]
    assert nat  # seen, never answered (the assertion above)
    # Sybils: one endpoint yields at most the crawler's bound of ids.
    per_endpoint = Counter(seen[i][2] for i in found_dead if dead[i]["role"] == Role.SYBIL.value)
    endpoint_clusters = {f"{r['ip']}:{r['udp']}" for r in dead.values() if r["role"] == Role.SYBIL.value and r["cluster"] % 2 == 0}
    assert endpoint_clusters and all(per_endpoint[e] <= IDS_PER_ENDPOINT for e in endpoint_clusters)
    # The node that moved its RLPx port: its newer record won, and the dial went to the port that record names.
    movers = [i for i, n in live.items() if n["enr_changes_at"] is not None]
    assert movers
    for i in movers:
        assert seen[i][1] == 2, seen[i]
        assert [(outcome, client_id) for outcome, _, client_id in dials[i]] == [("ok", live[i]["client_id"])], (
            live[i]["tcp"], dials[i]
        )
    # The nodes that left: found through the tables that still hold them, silent, their dial refused.
    leavers = [i for i in live if live[i]["leaves_at"] is not None]
    assert leavers
    for i in leavers:
        assert i in seen and seen[i][0] is False and [outcome for outcome, _, _ in dials[i]] == ["refused"], (
            seen.get(i), dials.get(i)
        )


async def test_cli_devnet_profile_mainnet(tmp_path: Path) -> None:
    manifest_path = tmp_path / "devnet.json"
    done = await trio.run_process(
        [ETHCRAWL, "devnet", "--nodes", "20", "--seed", "4", "--profile", "mainnet", "--rtt-min", "1", "--rtt-max", "5",
         "--loss", "0.05",
         "--duration", "2", "--manifest", str(manifest_path)],
        capture_stdout=True, capture_stderr=True, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    summary = done.stdout.decode().splitlines()[-1]
    assert summary.startswith("devnet: 20 nodes") and "dead records" in summary and "loss 5%" in summary
    manifest = json.loads(manifest_path.read_text())
    assert manifest["dirt"]["loss"] == 0.05 and manifest["dirt"]["rtt_max"] == 0.005
    assert manifest["dirt"]["stale_share"] == MAINNET.stale_share  # the profile, where no flag overrides it
    assert {r["role"] for r in manifest["records"]} == {role.value for role in Role} - {Role.LIVE.value}
    assert all(n["role"] == "live" and n["findable"] for n in manifest["nodes"])


async def test_cli_devnet_refuses_bad_dirt_in_one_line() -> None:
    for args in (["--loss", "2"], ["--profile", "mainnet", "--host", "127.5.0.1"], ["--dial-out", "enode://nonsense"],
                 ["--profile", "mainnet", "--stale-share", "0.95"]):
        done = await trio.run_process(
            [ETHCRAWL, "devnet", "--nodes", "3", "--duration", "5", *args], capture_stdout=True, capture_stderr=True,
            check=False,
        )
        err = done.stderr.decode()
        assert done.returncode == 2 and "Error:" in err and "Traceback" not in err, (args, err)


async def test_a_node_forgets_our_endpoint_proof_when_its_bond_expires() -> None:
    dirt = FAST.overridden(loss=0.0, rtt_max=0.002, bond_expiry=1.0, churn_share=0.0, enr_change_share=0.0)
    async with open_devnet(nodes=20, seed=6, dirt=dirt) as net:
        node = net.nodes[0]
        assert node.discovery is not None and node.discovery.config.bond_expiration == 1.0
        crawler = DiscoveryV4(generate_private_key(), config=DiscoveryConfig(response_timeout=0.3))
        async with trio.open_nursery() as nursery:
            await nursery.start(crawler.run)
            with trio.fail_after(20):
                assert await crawler.bond(node.node)
                assert await crawler.find_node(node.node, b"\x01" * 64)
                refused = node.discovery.statistics().unsolicited
                await trio.sleep(1.2)
                # Our side still counts the bond (the node pinged us within geth's 24 h); the node does not:
                # it refuses the FindNode, and the silence makes us bond again and ask again.
                assert crawler.is_bonded(node.node)
                assert await crawler.find_node(node.node, b"\x01" * 64)
                assert node.discovery.statistics().unsolicited == refused + 1
            nursery.cancel_scope.cancel()


async def test_a_devnet_in_two_shard_processes_is_crawled_as_one_network(tmp_path: Path) -> None:
    """``devnet --shards 2``: two processes bind the odd and the even nodes; each files the other's nodes in its
    tables by their planned endpoints, so a crawl from the bootnode (shard 0) finds every live node of both."""
    manifest_path = tmp_path / "devnet.json"
    base_port = 21000 + 1000 * random.randrange(8)  # below the ephemeral range; tests in parallel pick apart
    async with trio.open_nursery() as nursery:
        devnet = await nursery.start(partial(
            trio.run_process,
            [ETHCRAWL, "devnet", "--nodes", "40", "--seed", "7", "--profile", "mainnet", "--rtt-min", "1",
             "--rtt-max", "20", "--churn-window", "0", "--shards", "2", "--base-port", str(base_port),
             "--duration", "60", "--manifest", str(manifest_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        ))
        with trio.fail_after(60):
            while not manifest_path.exists():
                await trio.sleep(0.1)
        manifest = json.loads(manifest_path.read_text())
        db = open_database(tmp_path / "crawl.db")
        options = CrawlOptions(
            seeds=(parse_enode(manifest["bootnodes"][0]["enode"]),), listen_host="127.0.0.1", dial_timeout=2,
            duration=CRAWL_DEADLINE,
        )
        await run_crawl(db, options, handle_signals=False)
        db.close()
        devnet.terminate()
    live = {n["node_id"]: n for n in manifest["nodes"]}
    assert [n["udp"] for n in manifest["nodes"]] == list(range(base_port, base_port + 40))
    answered = {bytes(r[0]).hex() for r in _rows(
        tmp_path / "crawl.db", "SELECT n.node_id FROM nodes n JOIN sightings s USING (node_id) WHERE s.responded"
    )}
    staying = {i for i, n in live.items() if n["findable"] and n["leaves_at"] is None}
    missed = sorted(live[i]["index"] for i in staying - answered)
    assert len(missed) <= 1, missed  # a node's every bond lost at 2 %: rare, not never
    assert {live[i]["index"] % 2 for i in answered & staying} == {0, 1}  # both shards answered


async def test_a_shard_that_cannot_bind_says_so_in_one_line() -> None:
    import socket

    base_port = 29000 + 100 * random.randrange(8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", base_port + 3))  # node 3: shard 1's
        done = await trio.run_process(
            [ETHCRAWL, "devnet", "--nodes", "10", "--shards", "2", "--base-port", str(base_port), "--duration", "5"],
            capture_stdout=True, capture_stderr=True, check=False,
        )
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err, err
    assert err.strip().splitlines() == ["Error: cannot start the devnet (shard 1): [Errno 98] Address already in use"]


async def test_a_fixed_port_binds_over_the_last_runs_time_wait_connections() -> None:
    """A dial's connection closed by the devnet's side leaves TIME_WAIT on the node's port for a minute; the next
    devnet on the same --base-port must still listen there (found running two benchmarks 9 s apart)."""
    import socket

    port = 29900 + random.randrange(90)
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            server, _ = listener.accept()
            server.close()  # the listening side closes first: its end of the pair waits in TIME_WAIT
            await trio.sleep(0.1)
    async with open_devnet(nodes=1, base_port=port) as net:
        assert net.nodes[0].port == port
