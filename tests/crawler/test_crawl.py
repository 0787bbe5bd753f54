"""run_crawl end to end in-process: the inbound RLPx listener (--listen) and the database rows."""

from __future__ import annotations

import json
import logging
import random
import re
import sqlite3
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from ipaddress import ip_address
from pathlib import Path
from typing import Callable

import pytest
import trio
from ethcrawl.crawler import crawl as crawl_module
from ethcrawl.crawler.crawl import CrawlOptions, CrawlProgress, _RateMeter, run_crawl
from ethcrawl.crawler.dialer import SILENT_CONNECT_TIMEOUT, DialConfig, DialResult
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.engine import UNCONFIRMED_PER_SOURCE
from ethcrawl.crawler.node import DiscoveryNode
from ethcrawl.crawler.sybil import IDS_PER_ENDPOINT
from ethcrawl.crawler.udp import Address
from ethcrawl.db.engine import open_database
from ethcrawl.db.identity import claim_identity
from ethcrawl.wire import discv4
from ethcrawl.wire.crypto import PrivateKey, generate_private_key, keccak256, pubkey_from_private
from ethcrawl.wire.discv4 import Decoded, NodeRecord
from ethcrawl.wire.enode import Node, parse_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.eth import Status66
from ethcrawl.wire.forkid import ForkId
from ethcrawl.wire.p2p import Capability, Hello
from ethcrawl.wire.rlpx import session as events
from ethcrawl.wire.rlpx.connection import RLPxConnection
from ethcrawl.wire.rlpx.session import PeerSession

GENESIS = bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3")
STATUS = Status66(version=68, network_id=1, td=17, head=b"\x22" * 32, genesis=GENESIS, fork_id=ForkId(hash=bytes.fromhex("c376cf8b"), next=0))
CLIENT_ID = "Nethermind/v1.29.1+dfea5240/linux-x64/dotnet8.0.11"
ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
DEVNET_NODES = 30  # a devnet the crawl is known to find whole (tests/crawler/test_devnet.py)
CRAWL_DEADLINE = 60  # s, for any one crawl of it


async def dial_in(port: int, crawler_pubkey: bytes, key: PrivateKey | None = None, host: str = "127.0.0.1") -> None:
    """An inbound peer: handshake, Hello, Status; it leaves when the crawler disconnects."""
    key = key or generate_private_key()
    hello = Hello(protocol_version=5, client_id=CLIENT_ID, capabilities=(Capability(name="eth", version=68),), listen_port=30303, node_pubkey=pubkey_from_private(key))
    session = PeerSession(RLPxConnection.initiator(key, crawler_pubkey), hello=hello)
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        sent_status = False
        while True:
            await stream.send_all(session.data_to_send())
            data = await stream.receive_some(65536)
            if not data:
                return
            for event in session.receive_data(bytes(data)):
                if isinstance(event, events.HelloReceived) and not sent_status:
                    session.send_status(STATUS)
                    sent_status = True
                if isinstance(event, (events.DisconnectReceived, events.ConnectionClosed)):
                    return


async def _listening_crawl(db_path: Path, *keys: PrivateKey | None) -> None:
    """A 4 s crawl with --listen whose one bootnode never answers; a peer dials in with each key (None: a fresh one)."""
    silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    await silent.bind(("127.0.0.1", 0))
    bootnode = parse_enode(f"enode://{DiscoveryV4(generate_private_key()).pubkey.hex()}@127.0.0.1:{silent.getsockname()[1]}")
    db = open_database(db_path)
    ready: list[DiscoveryNode] = []
    options = CrawlOptions(
        seeds=(bootnode,), duration=4, dial=False, listen_host="127.0.0.1", rlpx_listen=("127.0.0.1", 0), dial_timeout=1
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_crawl(db, options, on_ready=ready.append, handle_signals=False))
        with trio.fail_after(10):
            while not ready:
                await trio.sleep(0.01)
            discovery = ready[0].v4
            assert discovery.enr is not None and discovery.enr.tcp == discovery.tcp_port != discovery.port
            for key in keys:
                await dial_in(discovery.tcp_port, discovery.pubkey, key)
    silent.close()
    db.close()


async def test_listening_crawl_records_inbound_peers(tmp_path: Path) -> None:
    await _listening_crawl(tmp_path / "crawl.db", None)
    with sqlite3.connect(tmp_path / "crawl.db") as conn:
        rows = conn.execute(
            "SELECT direction, outcome, client_id, client_name, network_id, tcp_port FROM dial_attempts"
        ).fetchall()
        sources = conn.execute("SELECT source FROM sightings").fetchall()
    assert rows == [("inbound", "ok", CLIENT_ID, "nethermind", 1, 30303)]
    assert sorted(s for (s,) in sources) == ["bootnode", "inbound"]


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _node_id(key: PrivateKey) -> bytes:
    return keccak256(pubkey_from_private(key))


async def test_inbound_peers_that_are_our_identities_are_not_recorded(tmp_path: Path) -> None:
    """Another ethcrawl on this database (here: an earlier --node-key identity) dials in: it is not a network node."""
    earlier, stranger = generate_private_key(), generate_private_key()
    db = open_database(tmp_path / "crawl.db")
    claim_identity(db, node_key=earlier.secret, now=datetime.now(timezone.utc))
    db.close()
    await _listening_crawl(tmp_path / "crawl.db", earlier, stranger)
    dialed = {bytes(r[0]) for r in _rows(tmp_path / "crawl.db", "SELECT node_id FROM dial_attempts")}  # type: ignore[arg-type]
    stored = {bytes(r[0]) for r in _rows(tmp_path / "crawl.db", "SELECT node_id FROM nodes")}  # type: ignore[arg-type]
    assert dialed == {_node_id(stranger)}
    assert _node_id(earlier) not in stored and _node_id(stranger) in stored


async def test_repeated_crawls_of_a_devnet_do_not_count_the_crawler(tmp_path: Path) -> None:
    """The devnet remembers each crawler that met it; crawls of one database must still find exactly the devnet.

    Two crawls as the database's own identity, one with --node-key FILE (the CLI, a key file as
    ``devp2p key generate`` writes it), then the database's identity again: the earlier identities are
    in the devnet's tables by then, and none of them may become a node, an edge or a dial.
    """
    path = tmp_path / "crawl.db"
    node_key = generate_private_key()
    key_file = tmp_path / "node.key"
    key_file.write_text(node_key.secret.hex())
    async with open_devnet(nodes=DEVNET_NODES, seed=11) as net:
        devnet_ids = {bytes.fromhex(n["node_id"]) for n in net.manifest()["nodes"]}
        options = CrawlOptions(
            seeds=(parse_enode(net.bootnode_enode),), listen_host="127.0.0.1", dial_timeout=2, duration=CRAWL_DEADLINE
        )

        async def crawl_in_process() -> None:
            db = open_database(path)
            try:
                with trio.fail_after(CRAWL_DEADLINE + 10):
                    await run_crawl(db, options, handle_signals=False)
            finally:
                db.close()

        for _ in range(2):
            await crawl_in_process()
            assert {bytes(r[0]) for r in _rows(path, "SELECT node_id FROM nodes")} == devnet_ids  # type: ignore[arg-type]
        with trio.fail_after(CRAWL_DEADLINE + 10):
            done = await trio.run_process(
                [ETHCRAWL, "-v", "crawl", "--bootnode", net.bootnode_enode, "--db", str(path), "--udp", "127.0.0.1:0",
                 "--node-key", str(key_file), "--duration", str(CRAWL_DEADLINE)],
                capture_stdout=True, capture_stderr=True, check=False,
            )
        assert done.returncode == 0, done.stderr.decode()
        # -v names our node and its bound UDP endpoint.
        logged = re.search(rf"crawl 3 node_id={_node_id(node_key).hex()} udp=127\.0\.0\.1:(\d+)", done.stderr.decode())
        assert logged is not None and int(logged.group(1)) != 0, done.stderr.decode()
        await crawl_in_process()
    assert {bytes(r[0]) for r in _rows(path, "SELECT node_id FROM nodes")} == devnet_ids  # type: ignore[arg-type]
    assert _rows(path, "SELECT count(*) FROM edges WHERE from_node = to_node") == [(0,)]
    identities = {bytes(r[0]): (r[1], r[2]) for r in _rows(path, "SELECT node_id, origin, private_key IS NULL FROM identities")}  # type: ignore[arg-type]
    (generated,) = [node_id for node_id, (origin, _) in identities.items() if origin == "generated"]
    assert identities == {generated: ("generated", 0), _node_id(node_key): ("node-key", 1)}
    crawled_as = [bytes(r[0]) for r in _rows(path, "SELECT local_node_id FROM crawls ORDER BY id")]  # type: ignore[arg-type]
    assert crawled_as == [generated, generated, _node_id(node_key), generated]
    # Every crawl met the whole devnet, and only it.
    assert _rows(path, "SELECT node_count FROM crawls") == [(DEVNET_NODES,)] * 4
    ours = set(identities)
    edges = _rows(path, "SELECT from_node, to_node FROM edges")
    assert edges and not {bytes(n) for e in edges for n in e} & ours  # type: ignore[arg-type]
    assert not {bytes(r[0]) for r in _rows(path, "SELECT node_id FROM dial_attempts")} & ours  # type: ignore[arg-type]
async def test_live_edge_count_is_the_databases(tmp_path: Path) -> None:
    """Edges are distinct (A, B) pairs over any protocol: the live count and the stored rows agree.

    The devnet's nodes answer over v4 and v5 (the same table twice), and its slow
    nodes answer late, so every way the engine could count a pair twice happens.
    """
    path = tmp_path / "crawl.db"
    progress: list[CrawlProgress] = []
    async with open_devnet(nodes=16, seed=5) as net:
        db = open_database(path)
        options = CrawlOptions(seeds=(ENR.from_text(net.bootnode_enr),), listen_host="127.0.0.1", dial=False, duration=40)
        with trio.fail_after(45):
            summary = await run_crawl(db, options, on_progress=progress.append, handle_signals=False)
        db.close()
    with sqlite3.connect(path) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM edges WHERE crawl_id = ?", (summary.crawl_id,)).fetchone()
        (both,) = conn.execute("SELECT count(*) FROM edges WHERE protocols = 'v4,v5'").fetchone()
    assert both > 0, "the crawl must have seen pairs over both protocols"
    final = progress[-1].crawl
    assert final.edges == stored == summary.edges


class SybilPeer(DiscoveryV4):
    """A hostile peer on loopback: every FINDNODE gets fresh random node ids, at its own ip:port or at random ports.

    It sends four NEIGHBORS answers of 16 per request (the crawler takes the extra ones as late
    answers), so one visit of 17 requests could introduce far more than any real table holds.
    """

    def __init__(self, *, random_ports: bool) -> None:
        super().__init__(generate_private_key(), host="127.0.0.1")
        self.random_ports = random_ports
        self.rng = random.Random(9)

    async def _on_findnode(self, decoded: Decoded, addr: Address) -> None:
        records = [
            NodeRecord(
                ip=ip_address("127.0.0.1"),
                udp=self.rng.randrange(20_000, 60_000) if self.random_ports else self.port,
                tcp=0,
                # Real keys: entries whose key is no secp256k1 point are dropped when NEIGHBORS is decoded.
                pubkey=pubkey_from_private(PrivateKey(self.rng.randbytes(32))),
            )
            for _ in range(4 * 16)
        ]
        for start in range(0, len(records), 16):
            for packet in discv4.split_neighbors(records[start : start + 16], int(time.time()) + 20):
                await self._send(packet, addr)


@pytest.mark.parametrize("random_ports", [False, True], ids=["own-endpoint", "random-ports"])
async def test_a_sybil_peer_on_loopback_is_bounded_and_the_crawl_ends_by_itself(tmp_path: Path, random_ports: bool) -> None:
    path = tmp_path / "crawl.db"
    db = open_database(path)
    sybil = SybilPeer(random_ports=random_ports)
    # Short timeouts and a wide crawl: the ids at random ports are dead and each costs two bond attempts.
    options = CrawlOptions(
        seeds=(), listen_host="127.0.0.1", dial=False, concurrency=512,
        response_timeout=0.1, v5_response_timeout=0.1,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sybil.run)
        options = replace(options, seeds=(sybil.local_node,))
        with trio.fail_after(60):  # no --duration: the bound alone must end it
            summary = await run_crawl(db, options, handle_signals=False)
        nursery.cancel_scope.cancel()
    db.close()
    bound = 1 + (UNCONFIRMED_PER_SOURCE if random_ports else IDS_PER_ENDPOINT)
    with sqlite3.connect(path) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM nodes").fetchone()
        (stats_text,) = conn.execute("SELECT stats FROM crawls").fetchone()
    assert 1 < stored <= bound
    stats = json.loads(stats_text)
    dropped = dict(summary.dropped)
    assert dropped[("source" if random_ports else "endpoint")] > 0
    assert stats["dropped_source" if random_ports else "dropped_endpoint"] == dropped["source" if random_ports else "endpoint"]


def test_the_visit_rate_follows_the_last_window_of_samples() -> None:
    meter = _RateMeter(window=10.0)
    assert meter.sample(0.0, 0) == 0.0  # one sample: no rate yet
    for t in range(1, 11):
        rate = meter.sample(float(t), 100 * t)  # 100 visits a second for 10 s
    assert rate == 100.0
    for t in range(11, 31):
        rate = meter.sample(float(t), 1000 + 10 * (t - 10))  # then 10 a second
    assert rate == pytest.approx(10.0)  # the fast start has left the window


async def test_the_stats_line_reports_the_visit_limit_and_the_periods_a_saturated_core_held_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A crawl whose one bootnode never answers waits ~2 s (two bond attempts): the governor runs through its
    periods on an idle core, and the "crawl stats" line says so (``governor.cpu_saturated``)."""
    silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    await silent.bind(("127.0.0.1", 0))
    bootnode = parse_enode(f"enode://{DiscoveryV4(generate_private_key()).pubkey.hex()}@127.0.0.1:{silent.getsockname()[1]}")
    db = open_database(tmp_path / "crawl.db")
    with caplog.at_level(logging.INFO, logger="ethcrawl.crawler.crawl"), trio.fail_after(CRAWL_DEADLINE):
        await run_crawl(db, CrawlOptions(seeds=(bootnode,), dial=False, listen_host="127.0.0.1"), handle_signals=False)
    db.close()
    silent.close()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("crawl stats ")]
    fields = dict(field.split("=", 1) for field in line.removeprefix("crawl stats ").split())
    assert fields["visit_limit"] == fields["max_concurrency"] == "256"  # nothing waited: it never widened
    assert int(fields["governed_periods"]) >= 1
    assert fields["cpu_saturated_periods"] == "0"  # waiting on a silent peer uses next to no CPU
@pytest.mark.parametrize("dial_silent", [True, False], ids=["dial-silent", "no-dial-silent"])
async def test_a_record_that_never_answers_is_dialed_once_with_the_short_connect_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, dial_silent: bool
) -> None:
    """The one seed never answers discovery; its TCP port is closed (loopback refuses at once).  Dialed, it gets
    one attempt with ``SILENT_CONNECT_TIMEOUT``, stored as refused and counted apart (the crawl row's stats, the
    summary); with ``dial_silent`` off it is not dialed at all."""
    silent = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    await silent.bind(("127.0.0.1", 0))
    closed = trio.socket.socket()
    await closed.bind(("127.0.0.1", 0))
    tcp_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    pubkey = DiscoveryV4(generate_private_key()).pubkey.hex()
    seed = parse_enode(f"enode://{pubkey}@127.0.0.1:{tcp_port}?discport={silent.getsockname()[1]}")
    timeouts: list[float] = []
    real_dial = crawl_module.dial

    async def dial(node: Node, key: PrivateKey, *, config: DialConfig, wall_clock: Callable[[], float]) -> DialResult:
        timeouts.append(config.connect_timeout)
        return await real_dial(node, key, config=config, wall_clock=wall_clock)

    monkeypatch.setattr(crawl_module, "dial", dial)
    path = tmp_path / "crawl.db"
    db = open_database(path)
    options = CrawlOptions(
        seeds=(seed,), listen_host="127.0.0.1", response_timeout=0.1, v5_response_timeout=0.1, dial_silent=dial_silent
    )
    with trio.fail_after(30), caplog.at_level(logging.INFO, logger="ethcrawl.crawler.crawl"):
        summary = await run_crawl(db, options, handle_signals=False)
    db.close()
    silent.close()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("crawl stats ")]
    with sqlite3.connect(path) as conn:
        outcomes = conn.execute("SELECT outcome FROM dial_attempts").fetchall()
        (stats_text,) = conn.execute("SELECT stats FROM crawls").fetchone()
    dialed = 1 if dial_silent else 0
    assert timeouts == [SILENT_CONNECT_TIMEOUT] * dialed
    assert outcomes == [("refused",)] * dialed
    assert json.loads(stats_text)["silent_dials"] == summary.silent_dials == summary.dials == dialed
    assert f" dials={dialed} silent_dials={dialed} " in line
