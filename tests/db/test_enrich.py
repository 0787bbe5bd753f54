"""Country and ASN enrichment: db.enrich fills the columns, queries count them, the CLI says so.

One hand-made database (two crawls, a node that moves between them, one without an address) and one pair of
GeoLite2 files; every expected number below is worked out by hand from the tables at the top.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fixture_db import database_url
from mmdb_files import geolite2_asn, geolite2_country, ipinfo_lite

from ethcrawl.crawler.cli import main
from ethcrawl.crawler.geoip import GeoIP, GeoIPError
from ethcrawl.db.engine import open_database
from ethcrawl.db.enrich import EnrichCounts, enrich_database
from ethcrawl.db.models import Node, Sighting
from ethcrawl.db.queries import asn_counts, country_counts
from ethcrawl.db.scope import CrawlScope
from ethcrawl.db.records import CrawlStarted, DialRecord, NodeSeen, Place, Record
from ethcrawl.db.store import begin_crawl, write_records

__all__ = ["database_url"]

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
COUNTRIES = {"127.0.0.0/24": "DE", "192.0.2.0/24": "US", "2001:db8::/32": "JP"}
ASNS = {
    "127.0.0.0/24": (64500, "Example Cloud"), "192.0.2.0/24": (64501, "Example Telecom"),
    "198.51.100.0/24": (64501, "Example Telecom"), "2001:db8::/32": (64502, "Example v6"),
}  # fmt: skip
# Crawl 1 and crawl 2: node -> address in that crawl.  A moves to IPv6 in crawl 2; F has no address; E's and
# D's addresses are in no country range (E in no AS either).
CRAWLS = [
    {"A": "127.0.0.1", "B": "127.0.0.2", "C": "192.0.2.10", "D": "198.51.100.7", "E": "203.0.113.9", "F": None},
    {"A": "2001:db8::1", "C": "192.0.2.10", "G": "127.0.0.3"},
]
CLIENTS = {"A": "geth", "B": "geth", "C": "nethermind"}  # Hellos in crawl 1


def _node(name: str) -> tuple[bytes, bytes]:
    from ethcrawl.wire.crypto import node_id_from_pubkey

    pubkey = hashlib.sha512(name.encode()).digest()
    return node_id_from_pubkey(pubkey), pubkey


def _fill(url: str) -> None:
    db = open_database(url)
    try:
        for number, members in enumerate(CRAWLS):
            started = T0 + timedelta(days=number)
            with db.session() as session, session.begin():
                crawl = begin_crawl(session, CrawlStarted(started_at=started))
                records: list[Record] = []
                for name, ip in members.items():
                    node_id, pubkey = _node(name)
                    records.append(NodeSeen(
                        crawl_id=crawl, node_id=node_id, pubkey=pubkey, ip=ip, udp=30303 if ip else None, tcp=None,
                        seen_at=started, source="neighbors",
                    ))  # fmt: skip
                    if number == 0 and name in CLIENTS:
                        records.append(DialRecord(
                            crawl_id=crawl, node_id=node_id, attempted_at=started, direction="outbound", outcome="ok",
                            client_id=f"{CLIENTS[name]}/v1", client_name=CLIENTS[name],
                        ))  # fmt: skip
                write_records(session, records)
    finally:
        db.close()


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    return str(geolite2_country(tmp_path / "country.mmdb", COUNTRIES)), str(geolite2_asn(tmp_path / "asn.mmdb", ASNS))


@pytest.fixture
def filled(database_url: str) -> str:
    _fill(database_url)
    return database_url


def _enrich(url: str, files: tuple[str, str], crawl_id: int | None = None, **kinds: bool) -> EnrichCounts:
    country, asn = files
    db = open_database(url)
    try:
        with GeoIP(country=country if kinds.get("country", True) else None, asn=asn if kinds.get("asn", True) else None) as geo:
            return enrich_database(db, geo, crawl_id=crawl_id)
    finally:
        db.close()


def _columns(url: str) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[int, str], tuple[Any, ...]]]:
    """(node name -> (country, asn, as_org), (crawl, node name) -> the same of the sighting)."""
    names = {_node(n)[0]: n for crawl in CRAWLS for n in crawl}
    db = open_database(url)
    try:
        with db.session() as session:
            nodes = {names[bytes(n.node_id)]: (n.country, n.asn, n.as_org) for n in session.query(Node)}
            sightings = {(s.crawl_id, names[bytes(s.node_id)]): (s.country, s.asn, s.as_org) for s in session.query(Sighting)}
    finally:
        db.close()
    return nodes, sightings


CLOUD, TELECOM, V6 = (64500, "Example Cloud"), (64501, "Example Telecom"), (64502, "Example v6")
NOTHING = (None, None, None)


def test_enrich_fills_each_node_at_its_latest_address_and_each_sighting_at_its_own(filled: str, files: tuple[str, str]) -> None:
    counts = _enrich(filled, files)
    # 7 distinct addresses (A's two, B, C, D, E, G); all but E's 203.0.113.9 are in a file.
    # Nodes changed: A B C D G (E stays empty, F has no address); sightings: A B C D of crawl 1, A C G of crawl 2.
    assert counts == EnrichCounts(addresses=7, located=6, nodes=5, sightings=7)
    nodes, sightings = _columns(filled)
    assert nodes == {
        "A": ("JP", *V6), "B": ("DE", *CLOUD), "C": ("US", *TELECOM), "D": (None, *TELECOM), "E": NOTHING, "F": NOTHING,
        "G": ("DE", *CLOUD),
    }  # fmt: skip
    assert sightings == {
        (1, "A"): ("DE", *CLOUD), (1, "B"): ("DE", *CLOUD), (1, "C"): ("US", *TELECOM), (1, "D"): (None, *TELECOM),
        (1, "E"): NOTHING, (1, "F"): NOTHING, (2, "A"): ("JP", *V6), (2, "C"): ("US", *TELECOM), (2, "G"): ("DE", *CLOUD),
    }  # fmt: skip


def test_enrich_is_idempotent(filled: str, files: tuple[str, str]) -> None:
    _enrich(filled, files)
    before = _columns(filled)
    assert _enrich(filled, files) == EnrichCounts(addresses=7, located=6, nodes=0, sightings=0)
    assert _columns(filled) == before


def test_enrich_one_crawl_touches_only_its_sightings_and_nodes(filled: str, files: tuple[str, str]) -> None:
    # Crawl 1's nodes A-F at their latest addresses (A's is now 2001:db8::1) and its sightings: 6 addresses.
    assert _enrich(filled, files, crawl_id=1) == EnrichCounts(addresses=6, located=5, nodes=4, sightings=4)
    nodes, sightings = _columns(filled)
    assert nodes["A"] == ("JP", *V6) and nodes["G"] == NOTHING
    assert sightings[(2, "A")] == sightings[(2, "C")] == NOTHING


def test_each_file_fills_only_its_own_columns(filled: str, files: tuple[str, str]) -> None:
    assert _enrich(filled, files, asn=False).nodes == 4  # A B C G have a country
    nodes, _ = _columns(filled)
    assert nodes["A"] == ("JP", None, None) and nodes["D"] == NOTHING
    _enrich(filled, files, country=False)
    nodes, _ = _columns(filled)
    assert nodes["A"] == ("JP", *V6) and nodes["D"] == (None, *TELECOM)  # the country stayed


def test_a_lookup_that_fails_leaves_the_database_as_it_was(filled: str, files: tuple[str, str]) -> None:
    class Failing:
        kinds = ("country",)

        def __init__(self) -> None:
            self.calls = 0

        def locate(self, ip: str) -> Place:
            self.calls += 1
            if self.calls == 5:
                raise GeoIPError("the file went bad")
            return Place(country="DE")

    db = open_database(filled)
    try:
        with pytest.raises(GeoIPError):
            enrich_database(db, Failing())
    finally:
        db.close()
    nodes, sightings = _columns(filled)
    assert set(nodes.values()) == set(sightings.values()) == {NOTHING}


def test_a_node_that_moves_loses_the_place_of_its_old_address(filled: str, files: tuple[str, str]) -> None:
    _enrich(filled, files)
    db = open_database(filled)
    try:
        with db.session() as session, session.begin():
            crawl = begin_crawl(session, CrawlStarted(started_at=T0 + timedelta(days=5)))
            node_id, pubkey = _node("B")
            moved = NodeSeen(
                crawl_id=crawl, node_id=node_id, pubkey=pubkey, ip="203.0.113.50", udp=30303, tcp=None,
                seen_at=T0 + timedelta(days=5), source="neighbors",
            )
            node_id, pubkey = _node("C")
            stayed = NodeSeen(
                crawl_id=crawl, node_id=node_id, pubkey=pubkey, ip="192.0.2.10", udp=30303, tcp=None,
                seen_at=T0 + timedelta(days=5), source="neighbors",
            )
            write_records(session, [moved, stayed])
    finally:
        db.close()
    nodes, _ = _columns(filled)
    assert nodes["B"] == NOTHING  # DE was where 127.0.0.2 is, not where B is now
    assert nodes["C"] == ("US", *TELECOM)  # same address: its place stands


# ---------------------------------------------------------------- queries


def _counted(url: str, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    db = open_database(url)
    try:
        with db.session() as session:
            return country_counts(session, **kwargs), asn_counts(session, **kwargs)
    finally:
        db.close()


def test_country_and_asn_counts_match_the_hand_computed_ones(filled: str, files: tuple[str, str]) -> None:
    assert _counted(filled) == ([(None, 6)], [(None, None, 6)])  # not enriched: every node with an address, unknown
    _enrich(filled, files)
    # Whole database, each node at its latest address (F has none): A JP, B DE, C US, D -, E -, G DE.
    assert _counted(filled) == (
        [("DE", 2), (None, 2), ("JP", 1), ("US", 1)],
        [(*CLOUD, 2), (*TELECOM, 2), (*V6, 1), (None, None, 1)],
    )
    # Crawl 1, each node at its address then: A DE, B DE, C US, D -, E -.
    assert _counted(filled, scope=CrawlScope(crawl_id=1)) == ([("DE", 2), (None, 2), ("US", 1)], [(*CLOUD, 2), (*TELECOM, 2), (None, None, 1)])
    assert _counted(filled, scope=CrawlScope(crawl_id=2)) == ([("DE", 1), ("JP", 1), ("US", 1)], [(*CLOUD, 1), (*TELECOM, 1), (*V6, 1)])
    # geth's nodes (A, B): A in JP now, in DE in crawl 1.
    assert _counted(filled, client="geth") == ([("DE", 1), ("JP", 1)], [(*CLOUD, 1), (*V6, 1)])
    assert _counted(filled, scope=CrawlScope(crawl_id=1), client="geth") == ([("DE", 2)], [(*CLOUD, 2)])
    # Both crawls as a window: each node once, at its latest sighting with an address (A in JP, C counted once).
    assert _counted(filled, scope=CrawlScope(since=T0)) == (
        [("DE", 2), (None, 2), ("JP", 1), ("US", 1)],
        [(*CLOUD, 2), (*TELECOM, 2), (*V6, 1), (None, None, 1)],
    )


# ---------------------------------------------------------------- the command line


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def _json(*args: str) -> list[dict[str, Any]]:
    result = _run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_enrich_command_reports_what_it_filled_then_nothing(filled: str, files: tuple[str, str]) -> None:
    country, asn = files
    first = _run("enrich", "--db", filled, "--geoip", country, "--asn", asn)
    assert first.exit_code == 0, first.output
    assert first.stdout == (
        "enriched every crawl: 7 addresses looked up, 6 found in the files; filled 5 nodes and 7 sightings\n"
    )
    again = _run("enrich", "--db", filled, "--geoip", country, "--asn", asn, "--all")
    assert again.stdout.endswith("filled 0 nodes and 0 sightings\n")
    one = _run("enrich", "--db", filled, "--asn", asn, "--crawl", "2")
    assert one.stdout.startswith("enriched crawl 2: 3 addresses looked up")


def test_query_countries_and_asns_shares(filled: str, files: tuple[str, str]) -> None:
    country, asn = files
    _run("enrich", "--db", filled, "--geoip", country, "--asn", asn)
    assert _json("query", "countries", "--db", filled) == [
        {"country": "DE", "nodes": 2, "share": 33.3}, {"country": None, "nodes": 2, "share": 33.3},
        {"country": "JP", "nodes": 1, "share": 16.7}, {"country": "US", "nodes": 1, "share": 16.7},
    ]  # fmt: skip
    assert _json("query", "asns", "--db", filled, "--crawl", "1") == [
        {"asn": 64500, "as_org": "Example Cloud", "nodes": 2, "share": 40.0},
        {"asn": 64501, "as_org": "Example Telecom", "nodes": 2, "share": 40.0},
        {"asn": None, "as_org": None, "nodes": 1, "share": 20.0},
    ]
    assert _json("query", "countries", "--db", filled, "--client", "GETH") == [
        {"country": "DE", "nodes": 1, "share": 50.0}, {"country": "JP", "nodes": 1, "share": 50.0},
    ]  # fmt: skip
    table = _run("query", "asns", "--db", filled).stdout.splitlines()
    assert table[0].split() == ["asn", "as_org", "nodes", "share"]
    assert table[1].split() == ["64500", "Example", "Cloud", "2", "33.3"]
    assert _run("query", "countries", "--db", filled, "--crawl", "9").output.strip() == "Error: the database holds no crawl 9"


def test_csv_export_appends_country_asn_as_org_and_query_nodes_filters(filled: str, files: tuple[str, str]) -> None:
    country, asn = files
    _run("enrich", "--db", filled, "--geoip", country, "--asn", asn)
    rows = list(csv.DictReader(io.StringIO(_run("export", "csv", "--db", filled).stdout)))
    assert list(rows[0])[-3:] == ["country", "asn", "as_org"]
    by_ip = {r["ip"]: (r["country"], r["asn"], r["as_org"]) for r in rows}
    assert by_ip["2001:db8::1"] == ("JP", "64502", "Example v6") and by_ip["198.51.100.7"] == ("", "64501", "Example Telecom")
    de = _json("query", "nodes", "--db", filled, "--country", "de")
    assert sorted(r["ip"] for r in de) == ["127.0.0.2", "127.0.0.3"]
    assert all((r["country"], r["asn"], r["as_org"]) == ("DE", *CLOUD) for r in de)
    telecom = _json("query", "nodes", "--db", filled, "--asn", "AS64501")
    assert sorted(r["ip"] for r in telecom) == ["192.0.2.10", "198.51.100.7"]
    assert _json("query", "nodes", "--db", filled, "--asn", "64501", "--country", "US")[0]["ip"] == "192.0.2.10"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "Germany"], "'Germany' is not a two-letter country code"),
        (["--asn", "ASX"], "'ASX' is not an AS number"),
        (["--asn", "4294967296"], "'4294967296' is not an AS number"),
    ],
)
def test_bad_country_and_asn_filters_are_one_clear_error(filled: str, args: list[str], message: str) -> None:
    result = _run("query", "nodes", "--db", filled, *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_missing_corrupt_or_wrong_file_is_one_line_and_the_database_is_untouched(
    tmp_path: Path, files: tuple[str, str]
) -> None:
    url = str(tmp_path / "crawl.db")
    _fill(url)
    before = _digest(url)
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"\x00" * 4096)
    country, asn = files
    for args, message in [
        (["--geoip", str(tmp_path / "missing.mmdb")], "cannot open"),
        (["--asn", str(garbage)], "is not a MaxMind DB file"),
        (["--geoip", asn], "which holds no country data (give it to --asn)"),
        (["--geoip", country, "--asn", country], "which holds no AS data (give it to --geoip)"),
    ]:
        result = _run("enrich", "--db", url, *args)
        assert result.exit_code == 1, result.output
        assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert _digest(url) == before
    assert _run("enrich", "--db", url).exit_code == 2  # no file: a usage error
    assert _run("enrich", "--db", url, "--geoip", country, "--crawl", "1", "--all").exit_code == 2


def test_an_ipinfo_lite_file_serves_both_options(filled: str, tmp_path: Path) -> None:
    lite = str(ipinfo_lite(tmp_path / "lite.mmdb", {"127.0.0.0/24": ("NL", 64500, "Example Cloud")}))
    result = _run("enrich", "--db", filled, "--geoip", lite, "--asn", lite)
    assert result.exit_code == 0, result.output
    assert _json("query", "countries", "--db", filled, "--crawl", "1") == [
        {"country": None, "nodes": 3, "share": 60.0}, {"country": "NL", "nodes": 2, "share": 40.0},
    ]  # fmt: skip


def test_small_batches_fill_the_same_rows(filled: str, files: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import ethcrawl.db.enrich as enrich

    monkeypatch.setattr(enrich, "BATCH_ADDRESSES", 2)  # 7 addresses: four batches
    assert _enrich(filled, files) == EnrichCounts(addresses=7, located=6, nodes=5, sightings=7)
    nodes, sightings = _columns(filled)
    assert nodes["A"] == ("JP", *V6) and nodes["D"] == (None, *TELECOM) and sightings[(1, "A")] == ("DE", *CLOUD)
    assert _enrich(filled, files).nodes == 0
