"""nodes.json (go-ethereum's ``devp2p nodeset`` format) through ``ethcrawl import``/``export``, on SQLite and PostgreSQL.

Expected values come from the published lists in fixtures/data/dnslists and from records built here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from ethcrawl.db.engine import open_database
from ethcrawl.db.nodesjson import export_nodes_json, import_nodes_json
from ethcrawl.db.records import CrawlStarted, NodeSeen
from ethcrawl.db.store import begin_crawl, write_records
from ethcrawl.wire.crypto import generate_private_key
from ethcrawl.wire.enr import ENR
from fixture_db import T0, database_url
from ground_truth import fixture_path, load_fixture_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

__all__ = ["database_url"]  # the fixture, imported so that pytest finds it here

LISTS = ["mainnet.part.nodes.json", "sepolia.nodes.json", "holesky.nodes.json", "hoodi.nodes.json"]
GETH_FIELDS = {"seq", "record", "score", "firstResponse", "lastResponse", "lastCheck"}
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
PUBLISHED = load_fixture_json("data", "dnslists", "mainnet.part.nodes.json")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def export(url: str) -> dict[str, Any]:
    code, out, err = invoke("export", "nodes-json", "--db", url)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.mark.parametrize("name", LISTS)
def test_published_list_round_trips_byte_identical(database_url: str, name: str) -> None:
    published = load_fixture_json("data", "dnslists", name)
    source = fixture_path("data", "dnslists", name)
    code, out, err = invoke("import", "nodes-json", "--db", database_url, str(source))
    assert code == 0, err
    assert out.strip() == f"imported {len(published)} of {len(published)} records from {source}"
    exported = export(database_url)
    assert list(exported) == sorted(published)  # the same keys, in geth's order
    for key, entry in published.items():
        mine = exported[key]
        assert set(mine) == GETH_FIELDS
        assert mine["record"] == entry["record"]  # the very same text, byte for byte
        assert (mine["seq"], mine["firstResponse"], mine["lastResponse"]) == (entry["seq"], entry["firstResponse"], entry["lastResponse"])
        assert RFC3339_UTC.fullmatch(mine["lastCheck"]) and isinstance(mine["score"], int)


def _listing(record: ENR, **extra: Any) -> str:
    assert record.node_id is not None
    return json.dumps({record.node_id.hex(): {"seq": record.seq, "record": record.to_text(), **extra}})


@pytest.mark.parametrize("order", [(1, 2), (2, 1), (2, 2)])
def test_import_keeps_the_higher_seq(database_url: str, tmp_path: Path, order: tuple[int, int]) -> None:
    key = generate_private_key()
    records = {seq: ENR.create(key, seq=seq, pairs={"ip": bytes([127, 0, 0, seq]), "udp": 30300 + seq}) for seq in (1, 2)}
    for step, seq in enumerate(order):
        path = tmp_path / f"{step}.json"
        path.write_text(_listing(records[seq]))
        assert invoke("import", "nodes-json", "--db", database_url, str(path))[0] == 0
    (entry,) = export(database_url).values()
    assert entry["record"] == records[max(order)].to_text() and entry["seq"] == max(order)


def test_import_merges_with_crawled_nodes(database_url: str, tmp_path: Path) -> None:
    """A crawled node keeps a newer ENR than the file's; a crawled node without one gains the file's."""
    keys = [generate_private_key() for _ in range(2)]
    crawled = ENR.create(keys[0], seq=7, pairs={"ip": bytes([10, 0, 0, 1]), "udp": 30303})
    db = open_database(database_url)
    with db.session() as session, session.begin():
        crawl = begin_crawl(session, CrawlStarted(started_at=T0))
        seen = [
            NodeSeen(crawl_id=crawl, node_id=crawled.node_id or b"", pubkey=crawled.public_key_raw or b"", ip="10.0.0.1",
                     udp=30303, tcp=30303, seen_at=T0, source="neighbors", enr=crawled.to_rlp(), enr_seq=7, responded=True),
        ]
        plain = ENR.create(keys[1], seq=3, pairs={"ip": bytes([10, 0, 0, 2]), "udp": 30303})
        seen.append(NodeSeen(crawl_id=crawl, node_id=plain.node_id or b"", pubkey=plain.public_key_raw or b"", ip="10.0.0.2",
                             udp=30303, tcp=30303, seen_at=T0, source="neighbors"))
        write_records(session, seen)
    db.close()
    older = ENR.create(keys[0], seq=5, pairs={"ip": bytes([10, 0, 0, 9]), "udp": 30303})
    listing = {**json.loads(_listing(older)), **json.loads(_listing(plain))}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(listing))
    assert invoke("import", "nodes-json", "--db", database_url, str(path))[0] == 0
    exported = export(database_url)
    assert exported[(crawled.node_id or b"").hex()]["record"] == crawled.to_text()
    assert exported[(crawled.node_id or b"").hex()]["score"] == 1  # answered in one crawl
    assert exported[(plain.node_id or b"").hex()]["record"] == plain.to_text()
    assert exported[(crawled.node_id or b"").hex()]["firstResponse"] == "2026-11-01T12:00:00Z"


def _good_entry(index: int) -> tuple[str, dict[str, Any]]:
    key = sorted(PUBLISHED)[index]
    return key, dict(PUBLISHED[key])


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("not an object", "no 'record'"),
        ({"seq": 1}, "no 'record'"),
        ({"seq": 1, "record": 12}, "no 'record'"),
        ({"seq": 1, "record": "enr:AAAA"}, "bad record"),
        ({"seq": 1, "record": _good_entry(1)[1]["record"]}, "node id"),  # listed under another node's key
        ({**_good_entry(0)[1], "firstResponse": "yesterday"}, "isoformat"),
    ],
)
def test_bad_entries_are_skipped_with_a_reason(database_url: str, tmp_path: Path, entry: Any, why: str) -> None:
    bad_key, _ = _good_entry(0)
    good_key, good = _good_entry(2)
    path = tmp_path / "in.json"
    path.write_text(json.dumps({bad_key: entry, good_key: good}))
    code, out, err = invoke("import", "nodes-json", "--db", database_url, str(path))
    assert code == 1
    assert f"skipped {bad_key[:16]}" in err and why in err and len(err.strip().splitlines()) == 1
    assert "imported 1 of 2 records" in out
    assert list(export(database_url)) == [good_key]


@pytest.mark.parametrize("value", [5, [], {"t": 1}])
def test_non_text_times_are_skipped(tmp_path: Path, value: Any) -> None:
    key, entry = _good_entry(0)
    path = tmp_path / "in.json"
    path.write_text(json.dumps({key: {**entry, "lastResponse": value}}))
    code, _out, err = invoke("import", "nodes-json", "--db", str(tmp_path / "x.db"), str(path))
    assert code == 1 and "skipped" in err


def _mutate(text: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "truncate":
        return text[: data.draw(st.integers(0, len(text) - 1))]
    if kind == "extend":
        return text + data.draw(st.text(alphabet="ABCxyz019-_=", min_size=1, max_size=8))
    at = data.draw(st.integers(4, len(text) - 1))  # keep "enr:" so the base64 is what changes
    replacement = data.draw(st.sampled_from("AQgw-_9z").filter(lambda c: c != text[at]))
    return text[:at] + replacement + text[at + 1 :]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_records_are_rejected_or_imported_never_a_crash(data: st.DataObject) -> None:
    key, entry = _good_entry(data.draw(st.integers(0, len(PUBLISHED) - 1)))
    mutated = _mutate(entry["record"], data)
    db = open_database("sqlite://")  # in memory: fast enough for many examples
    try:
        with db.session() as session, session.begin():
            stats = import_nodes_json(session, {key: {**entry, "record": mutated}}, now=datetime.now(UTC))
        assert stats.records == 1 and stats.imported + len(stats.rejected) == 1
        with db.session() as session:
            exported = export_nodes_json(session)
    finally:
        db.close()
    if stats.imported:
        # Only a record that still verifies under the same key gets in, and it comes back as parsed.
        assert list(exported) == [key]
        assert exported[key]["record"] == ENR.from_text(mutated).to_text()
    else:
        assert exported == {}


def test_first_and_last_seen_come_from_the_file(tmp_path: Path) -> None:
    key, entry = _good_entry(0)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    without_times = {"seq": entry["seq"], "record": entry["record"]}
    db = open_database("sqlite://")
    try:
        with db.session() as session, session.begin():
            import_nodes_json(session, {key: without_times}, now=now)
            import_nodes_json(session, {key: entry}, now=now + timedelta(days=1))
        with db.session() as session:
            (mine,) = export_nodes_json(session).values()
    finally:
        db.close()
    # The file's firstResponse is earlier than "now" of the first import, so it wins; the last stays the latest.
    assert mine["firstResponse"] == entry["firstResponse"]
    assert mine["lastResponse"] == "2030-01-01T00:00:00Z"
