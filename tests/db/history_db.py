"""A small, hand-written history: four crawls over six nodes, written with the real store code.

Import by name (``from history_db import ...``).  The expected values in tests/db/test_history.py were worked
out by hand from the story below, never read back from the database:

    crawl 1  walk          2026-11-02 10:00  A answers (ENR seq 1: 10.0.0.1, tcp 30303, mainnet Prague, next 0)
                                             B answers (ENR seq 1), C is sighted, silent; B returned A
                                             dial A ok geth 1.14.0 Status mainnet Prague next 0; dial B timeout
    crawl 2  revalidation  2026-11-02 14:00  A answers, B silent; dial A ok geth 1.14.0, Prague next 0
    crawl 3  walk          2026-11-03 10:00  A answers (ENR seq 2: 10.0.0.2, tcp 30304, next = Osaka's time),
                                             C and D answer; C and D returned A, A returned D
                                             dial A ok geth 1.15.0 Prague next Osaka; D sends Hello reth 1.1.0,
                                             then too-many-peers
    crawl 4  walk          2026-11-10 10:00  A silent; B, D, F answer; dial D ok reth 1.2.0 Prague next 0;
                                             dial F ok nethermind 1.30.2 sepolia Prague next sepolia's Osaka;
                                             E (never sighted) dials us: inbound ok geth 1.15.0 mainnet BPO2
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coincurve import PrivateKey
from ethcrawl.db.engine import open_database
from ethcrawl.db.records import CrawlFinished, CrawlStarted, DialRecord, EdgeSeen, NodeSeen, Record
from ethcrawl.db.store import begin_crawl, write_records
from ethcrawl.wire.crypto import node_id_from_pubkey, pubkey_from_private
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.forkid import ForkId

__all__ = ["LETTERS", "STARTS", "OSAKA_MAINNET", "OSAKA_SEPOLIA", "History", "fill_history"]

LETTERS = "ABCDEF"
STARTS = {
    1: datetime(2026, 11, 2, 10, 0, tzinfo=UTC),  # a Monday
    2: datetime(2026, 11, 2, 14, 0, tzinfo=UTC),
    3: datetime(2026, 11, 3, 10, 0, tzinfo=UTC),
    4: datetime(2026, 11, 10, 10, 0, tzinfo=UTC),  # the next week's Tuesday
}
KINDS = {1: "crawl", 2: "revalidation", 3: "crawl", 4: "crawl"}
OSAKA_MAINNET = 1764798551  # unix s, from the mainnet schedule
OSAKA_SEPOLIA = 1760427360
PRAGUE_MAINNET = bytes.fromhex("c376cf8b")  # EIP-2124 hashes as geth's core/forkid tests list them
BPO2_MAINNET = bytes.fromhex("07c9462e")
PRAGUE_SEPOLIA = bytes.fromhex("ed88b5fd")


@dataclass(frozen=True, slots=True)
class History:
    ids: dict[str, bytes]  # letter -> node id
    crawls: dict[int, int]  # story number -> crawl id
    enrs: dict[tuple[str, int], ENR]  # (letter, seq) -> record

    def letter(self, node_id: bytes | str) -> str:
        raw = bytes.fromhex(node_id) if isinstance(node_id, str) else node_id
        return next(k for k, v in self.ids.items() if v == raw)


def _key(letter: str) -> PrivateKey:
    return PrivateKey(bytes([LETTERS.index(letter) + 1]) * 32)


def _hello(name: str, version: str) -> dict[str, str]:
    return {
        "client_id": f"{name}/v{version}/linux-amd64/go1.23", "client_name": name, "client_version": version,
        "client_os": "linux", "client_runtime": "go1.23", "capabilities": "eth/68",
    }


def _status(network_id: int, fork_hash: bytes, fork_next: int) -> dict[str, object]:
    return {"network_id": network_id, "fork_hash": fork_hash, "fork_next": fork_next, "synced": True}


def fill_history(url: str) -> History:
    ids = {letter: node_id_from_pubkey(pubkey_from_private(_key(letter))) for letter in LETTERS}
    pubkeys = {letter: pubkey_from_private(_key(letter)) for letter in LETTERS}
    enrs = {
        ("A", 1): ENR.create(_key("A"), seq=1, pairs={"ip": "10.0.0.1", "udp": 30303, "tcp": 30303,
                                                     "eth": [ForkId(hash=PRAGUE_MAINNET, next=0)]}),
        ("A", 2): ENR.create(_key("A"), seq=2, pairs={"ip": "10.0.0.2", "udp": 30303, "tcp": 30304,
                                                     "eth": [ForkId(hash=PRAGUE_MAINNET, next=OSAKA_MAINNET)]}),
        ("B", 1): ENR.create(_key("B"), seq=1, pairs={"ip": "10.0.0.11", "udp": 30303, "tcp": 30303}),
    }  # fmt: skip

    def seen(crawl: int, letter: str, second: int, *, answered: bool, ip: str, seq: int | None = None) -> NodeSeen:
        record = enrs[(letter, seq)] if seq is not None else None
        return NodeSeen(
            crawl_id=crawl, node_id=ids[letter], pubkey=pubkeys[letter], ip=ip, udp=30303, tcp=30303,
            seen_at=STARTS[number] + timedelta(seconds=second), source="neighbors", responded=answered,
            protocols=("v4",) if answered else (), enr=None if record is None else record.to_rlp(), enr_seq=seq,
        )  # fmt: skip

    def dial(crawl: int, letter: str, second: int, outcome: str, *, inbound: bool = False, **fields: object) -> DialRecord:
        return DialRecord(
            crawl_id=crawl, node_id=ids[letter], attempted_at=STARTS[number] + timedelta(minutes=1, seconds=second),
            direction="inbound" if inbound else "outbound", outcome=outcome, ip="10.0.0.99", tcp_port=30303,
            **fields,  # type: ignore[arg-type]
        )

    def edge(crawl: int, a: str, b: str) -> EdgeSeen:
        return EdgeSeen(crawl_id=crawl, from_id=ids[a], to_id=ids[b], seen_at=STARTS[number])

    crawls: dict[int, int] = {}
    db = open_database(url)
    try:
        for number in sorted(STARTS):
            with db.session() as session, session.begin():
                c = crawls[number] = begin_crawl(session, CrawlStarted(started_at=STARTS[number], kind=KINDS[number]))
                records: list[Record]
                if number == 1:
                    records = [
                        seen(c, "A", 1, answered=True, ip="10.0.0.1", seq=1), seen(c, "B", 2, answered=True, ip="10.0.0.11", seq=1),
                        seen(c, "C", 3, answered=False, ip="10.0.0.12"), edge(c, "B", "A"),
                        dial(c, "A", 0, "ok", **_hello("geth", "1.14.0"), **_status(1, PRAGUE_MAINNET, 0)),
                        dial(c, "B", 1, "timeout"),
                    ]  # fmt: skip
                elif number == 2:
                    records = [
                        seen(c, "A", 1, answered=True, ip="10.0.0.1"), seen(c, "B", 2, answered=False, ip="10.0.0.11"),
                        dial(c, "A", 0, "ok", **_hello("geth", "1.14.0"), **_status(1, PRAGUE_MAINNET, 0)),
                    ]  # fmt: skip
                elif number == 3:
                    records = [
                        seen(c, "A", 1, answered=True, ip="10.0.0.2", seq=2), seen(c, "C", 3, answered=True, ip="10.0.0.12"),
                        seen(c, "D", 4, answered=True, ip="10.0.0.13"),
                        edge(c, "C", "A"), edge(c, "D", "A"), edge(c, "A", "D"),
                        dial(c, "A", 0, "ok", **_hello("geth", "1.15.0"), **_status(1, PRAGUE_MAINNET, OSAKA_MAINNET)),
                        dial(c, "D", 4, "too-many-peers", **_hello("reth", "1.1.0")),
                    ]  # fmt: skip
                else:
                    records = [
                        seen(c, "A", 1, answered=False, ip="10.0.0.2"), seen(c, "B", 2, answered=True, ip="10.0.0.11"),
                        seen(c, "D", 4, answered=True, ip="10.0.0.13"), seen(c, "F", 6, answered=True, ip="10.0.0.15"),
                        dial(c, "D", 4, "ok", **_hello("reth", "1.2.0"), **_status(1, PRAGUE_MAINNET, 0)),
                        dial(c, "F", 6, "ok", **_hello("nethermind", "1.30.2"), **_status(11155111, PRAGUE_SEPOLIA, OSAKA_SEPOLIA)),
                        dial(c, "E", 60, "ok", inbound=True, **_hello("geth", "1.15.0"), **_status(1, BPO2_MAINNET, 0)),
                    ]  # fmt: skip
                records.append(CrawlFinished(crawl_id=c, ended_at=STARTS[number] + timedelta(minutes=10)))
                write_records(session, records)
    finally:
        db.close()
    return History(ids=ids, crawls=crawls, enrs=enrs)
