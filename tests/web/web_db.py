"""The database the web tests read: tests/db/fixture_db.py's two crawls, then a third whose Hellos are hostile.

Import by name (``from web_db import ...``).  fixture_db (and history_db, the hand-written history) are loaded from
tests/db by path, once, under their own names, so these tests share them with tests/db without a conftest.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType

from ethcrawl.db.engine import open_database
from ethcrawl.db.enrich import enrich_database
from ethcrawl.db.records import Place, CrawlFinished, CrawlStarted, DialRecord, NodeSeen, Record
from ethcrawl.db.store import begin_crawl, write_records
from ethcrawl.wire.clientid import parse_client_id
from ethcrawl.wire.crypto import node_id_from_pubkey

__all__ = ["HOSTILE_CLIENT_IDS", "fixture_db", "history_db", "web_database"]

# Client ids a peer chose to break a page: markup, an attribute escape, and mathtext for the charts.
HOSTILE_CLIENT_IDS = (
    "<script>alert(1)</script>",
    'Geth"><img src=x onerror=alert(2)>/v1.0.0/linux-amd64/go1.22',
    "$\\frac{a}{/v1.2.3/linux-amd64/go$x$",
)


def _from_tests_db(name: str) -> ModuleType:
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "db" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fixture_db() -> ModuleType:
    return _from_tests_db("fixture_db")


def history_db() -> ModuleType:
    """tests/db/history_db.py: four crawls over six nodes with churn, upgrades, ENR changes and fork ids."""
    return _from_tests_db("history_db")


def web_database(path: Path) -> str:
    """An SQLite file with the fixture's crawls and a third crawl whose nodes sent HOSTILE_CLIENT_IDS."""
    url = str(path)
    fixture = fixture_db()
    fixture.fill_database(url)
    started = fixture.T0 + timedelta(days=2)
    db = open_database(url)
    try:
        with db.session() as session, session.begin():
            crawl = begin_crawl(session, CrawlStarted(started_at=started, parameters={"concurrency": 256, "seeds": "devnet"}))
            records: list[Record] = []
            for k, client_id in enumerate(HOSTILE_CLIENT_IDS):
                pubkey = bytes([k + 1]) * 64
                node_id = node_id_from_pubkey(pubkey)
                at = started + timedelta(seconds=k)
                records.append(NodeSeen(crawl_id=crawl, node_id=node_id, pubkey=pubkey, ip=f"127.0.0.{k + 2}", udp=30303,
                                        tcp=30303, seen_at=at, source="neighbors", responded=True))
                parsed = parse_client_id(client_id)
                records.append(DialRecord(
                    crawl_id=crawl, node_id=node_id, attempted_at=at, direction="outbound", outcome="too-many-peers",
                    client_id=client_id, client_name=parsed.name, client_version=parsed.version, client_os=parsed.os,
                    client_arch=parsed.arch, client_runtime=parsed.runtime, capabilities="eth/68",
                ))
            records.append(CrawlFinished(crawl_id=crawl, ended_at=started + timedelta(minutes=5)))
            write_records(session, records)
        enrich_database(db, _SpreadLocator())  # places for the country/ASN sections, endpoints and filters
    finally:
        db.close()
    return url


class _SpreadLocator:
    """A stand-in for a .mmdb lookup: spreads addresses over three countries and two ASes by their last digit."""

    kinds = ("country", "asn")

    def locate(self, ip: str) -> Place:
        last = int(ip.rstrip(".:")[-1], 16)
        return Place(country=("DE", "US", "FR")[last % 3], asn=64500 + last % 2, as_org=f"Example Net {last % 2}")
