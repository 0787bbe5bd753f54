"""``ethcrawl crawl --geoip --asn``: a real crawl on 127.x fills the country and AS columns before its summary.

The network is a tree of our own discovery nodes on three loopback addresses (127.0.0.1-3); the files place
127.0.0.1 and 127.0.0.2 and leave 127.0.0.3 out, so every expected share is worked out by hand.
"""

from __future__ import annotations

import io
import json
import socket
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner
from mmdb_files import dbip_country, geolite2_asn, ipinfo_country_asn, ipinfo_lite
from rich.console import Console

from ethcrawl.crawler.cli import main as cli_main
from ethcrawl.crawler.cli_crawl import SUMMARY_PLACES, _print_summary
from ethcrawl.crawler.crawl import CrawlOptions, run_crawl
from ethcrawl.crawler.devnet import open_devnet
from ethcrawl.crawler.discovery import DiscoveryV4
from ethcrawl.crawler.geoip import GeoIP
from ethcrawl.db.engine import open_database
from ethcrawl.db.records import CrawlSummary
from ethcrawl.wire.crypto import generate_private_key
from ethcrawl.wire.enode import format_enode
from ethcrawl.wire.enr import ENR

ETHCRAWL = str(Path(sys.executable).with_name("ethcrawl"))
DEADLINE = 60  # s, for the crawl command
# Nodes per loopback address, in tree order: 4 on .1, 3 on .2, 2 on .3.
HOSTS = ["127.0.0.1"] * 4 + ["127.0.0.2"] * 3 + ["127.0.0.3"] * 2
FANOUT = 3
DEVNET_NODES = 12


async def _start_tree(nursery: trio.Nursery) -> list[DiscoveryV4]:
    nodes = []
    for host in HOSTS:
        node = DiscoveryV4(generate_private_key(), host=host)
        await nursery.start(node.run)
        nodes.append(node)
    for k, node in enumerate(nodes):
        for child in nodes[FANOUT * k + 1 : FANOUT * k + FANOUT + 1]:
            node.table.add_verified(child.local_node)
    return nodes


def _json(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli_main, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_a_crawl_with_geoip_and_asn_fills_the_columns_and_its_summary_shows_them(tmp_path: Path) -> None:
    db = tmp_path / "crawl.db"
    country = dbip_country(tmp_path / "dbip-country-lite.mmdb", {"127.0.0.1/32": "DE", "127.0.0.2/32": "US"})
    asn = ipinfo_lite(tmp_path / "ipinfo_lite.mmdb", {
        "127.0.0.0/31": ("DE", 64500, "Example Cloud"), "127.0.0.2/32": ("US", 64501, "Example Telecom"),
    })  # fmt: skip
    async with trio.open_nursery() as nursery:
        nodes = await _start_tree(nursery)
        with trio.fail_after(DEADLINE):
            done = await trio.run_process(
                [ETHCRAWL, "crawl", "--bootnode", format_enode(nodes[0].local_node), "--db", str(db),
                 "--udp", "127.0.0.1:0", "--no-dial", "--geoip", str(country), "--asn", str(asn)],
                capture_stdout=True, capture_stderr=True, check=False,
            )  # fmt: skip
        nursery.cancel_scope.cancel()
    stdout = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "9 nodes (9 answered" in stdout
    with sqlite3.connect(db) as conn:
        sightings = sorted(conn.execute("SELECT ip, country, asn, as_org FROM sightings").fetchall())
        nodes_placed = sorted(conn.execute("SELECT ip, country, asn, as_org FROM nodes").fetchall())
    want = sorted(
        [("127.0.0.1", "DE", 64500, "Example Cloud")] * 4 + [("127.0.0.2", "US", 64501, "Example Telecom")] * 3
        + [("127.0.0.3", None, None, None)] * 2
    )  # fmt: skip
    assert sightings == nodes_placed == want
    # The summary's tables, then the queries: 4, 3 and 2 of 9 nodes.
    cells = [[c for c in line.split() if c != "│"] for line in stdout.splitlines()]  # rich's column rules dropped
    assert [c for c in cells if c and c[0] in ("DE", "US", "AS64500", "AS64501")] == [
        ["DE", "4", "44.4%"], ["US", "3", "33.3%"], ["AS64500", "Example", "Cloud", "4", "44.4%"],
        ["AS64501", "Example", "Telecom", "3", "33.3%"],
    ]  # fmt: skip
    assert _json("query", "countries", "--db", str(db), "--crawl", "1") == [
        {"country": "DE", "nodes": 4, "share": 44.4}, {"country": "US", "nodes": 3, "share": 33.3},
        {"country": None, "nodes": 2, "share": 22.2},
    ]  # fmt: skip
    assert _json("query", "asns", "--db", str(db)) == [
        {"asn": 64500, "as_org": "Example Cloud", "nodes": 4, "share": 44.4},
        {"asn": 64501, "as_org": "Example Telecom", "nodes": 3, "share": 33.3},
        {"asn": None, "as_org": None, "nodes": 2, "share": 22.2},
    ]
    # Enriching again with the same files changes nothing.
    again = CliRunner().invoke(cli_main, ["enrich", "--db", str(db), "--geoip", str(country), "--asn", str(asn)])
    assert again.stdout.endswith("filled 0 nodes and 0 sightings\n")


async def test_a_bad_file_stops_the_crawl_before_it_sends_anything(tmp_path: Path) -> None:
    db = tmp_path / "crawl.db"
    asn = geolite2_asn(tmp_path / "GeoLite2-ASN.mmdb", {"127.0.0.0/8": (64500, "Example Cloud")})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        pubkey = DiscoveryV4(generate_private_key()).pubkey
        url = f"enode://{pubkey.hex()}@127.0.0.1:{silent.getsockname()[1]}"
        for args, message in [
            (["--geoip", str(asn)], "holds no country data (give it to --asn)"),
            (["--asn", str(tmp_path / "missing.mmdb")], "cannot open"),
        ]:
            with trio.fail_after(DEADLINE):
                done = await trio.run_process(
                    [ETHCRAWL, "crawl", "--bootnode", url, "--db", str(db), "--udp", "127.0.0.1:0", "--no-dial", *args],
                    capture_stdout=True, capture_stderr=True, check=False,
                )
            stderr = done.stderr.decode()
            assert done.returncode == 1 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
        with pytest.raises(BlockingIOError):
            silent.recv(2048)  # no Ping ever came
    assert not db.exists()


def _summary(countries: tuple[tuple[str | None, int], ...], asns: tuple[tuple[int | None, str | None, int], ...]) -> str:
    summary = CrawlSummary(
        crawl_id=1, started_at=datetime(2026, 1, 1, tzinfo=UTC),
        ended_at=None, nodes=0, responded=0, with_enr=0, edges=0, dials=0, dials_ok=0, dials_failed=0, outcomes=(),
        clients=(), networks=(), countries=countries, asns=asns,
    )
    out = io.StringIO()
    _print_summary(Console(file=out, width=120, force_terminal=False), summary)
    return out.getvalue()


def test_summary_shows_the_largest_places_and_one_other_row_and_nothing_when_not_enriched() -> None:
    codes = [f"{chr(65 + i)}{chr(65 + i)}" for i in range(SUMMARY_PLACES + 3)]
    countries = tuple((c, 100 - i) for i, c in enumerate(codes)) + ((None, 5),)
    text = _summary(countries, ())
    assert "AA" in text and codes[SUMMARY_PLACES - 1] in text and codes[SUMMARY_PLACES] not in text
    other = [[c for c in line.split() if c != "│"] for line in text.splitlines() if "other" in line]
    # The rest: 3 codes and the unknown row, 90 + 89 + 88 + 5 nodes.
    assert other and other[0][:3] == ["other", "(4)", str(90 + 89 + 88 + 5)]
    assert "country" not in _summary(((None, 7),), ((None, None, 7),))  # a crawl not enriched: no table


async def test_a_devnet_crawl_with_a_locator_is_placed_before_its_summary(tmp_path: Path) -> None:
    """``ethcrawl devnet``'s network (every node on 127.0.0.1), crawled with run_crawl as ``crawl`` runs it."""
    path = tmp_path / "devnet.db"
    files = ipinfo_country_asn(tmp_path / "country_asn.mmdb", {"127.0.0.0/8": ("NL", 64510, "Example Devnet")})
    async with open_devnet(nodes=DEVNET_NODES, seed=3) as net:
        db = open_database(path)
        options = CrawlOptions(seeds=(ENR.from_text(net.bootnode_enr),), listen_host="127.0.0.1", dial_timeout=2)
        try:
            with GeoIP(country=str(files), asn=str(files)) as geo, trio.fail_after(DEADLINE):
                summary = await run_crawl(db, options, handle_signals=False, locator=geo)
        finally:
            db.close()
    assert summary.nodes == DEVNET_NODES
    assert summary.countries == (("NL", DEVNET_NODES),)
    assert summary.asns == ((64510, "Example Devnet", DEVNET_NODES),)
    with sqlite3.connect(path) as conn:
        placed = conn.execute("SELECT country, asn, as_org, count(*) FROM sightings GROUP BY 1, 2, 3").fetchall()
    assert placed == [("NL", 64510, "Example Devnet", DEVNET_NODES)]
