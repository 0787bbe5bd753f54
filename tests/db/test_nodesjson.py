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
    n = len(published)
    assert out.strip() == f"imported {n} of {n} records from {source}: {n} new, 0 updated, 0 unchanged"
    exported = export(database_url)
    assert list(exported) == sorted(published)  # the same keys, in geth's order
    for key, entry in published.items():
        mine = exported[key]
        assert set(mine) == GETH_FIELDS
        assert mine["record"] == entry["record"]  # the very same text, byte for byte
        assert (mine["seq"], mine["firstResponse"], mine["lastResponse"]) == (entry["seq"], entry["firstResponse"], entry["lastResponse"])
        assert RFC3339_UTC.fullmatch(mine["lastCheck"]) and isinstance(mine["score"], int)
        assert mine["score"] == entry.get("score", 0)  # no crawl since: the list's score, exactly
    assert any(entry.get("score", 0) > 1 for entry in published.values())  # real scores, not all zero
    # The same file again: nothing new, nothing changed.
    code, out, err = invoke("import", "nodes-json", "--db", database_url, str(source))
    assert code == 0 and out.strip().endswith(f": 0 new, 0 updated, {n} unchanged"), out


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


def _answer_in_a_crawl(url: str, records: list[ENR], at: datetime) -> None:
    db = open_database(url)
    with db.session() as session, session.begin():
        crawl = begin_crawl(session, CrawlStarted(started_at=at))
        write_records(session, [
            NodeSeen(crawl_id=crawl, node_id=r.node_id or b"", pubkey=r.public_key_raw or b"", ip="10.0.0.1", udp=30303,
                     tcp=None, seen_at=at, source="neighbors", responded=True)
            for r in records
        ])  # fmt: skip
    db.close()


def test_score_is_the_lists_plus_the_crawls_since(database_url: str, tmp_path: Path) -> None:
    """export's score: the imported score plus the crawls that answered the node since; our own export re-imports
    as a no-op (its crawls are not counted twice)."""
    records = [ENR.create(generate_private_key(), seq=1, pairs={"ip": bytes([10, 0, 0, i]), "udp": 30303}) for i in (1, 2)]
    _answer_in_a_crawl(database_url, records[:1], T0)  # before the import: already in the list's score
    listing = {**json.loads(_listing(records[0], score=2406)), **json.loads(_listing(records[1], score=7))}
    path = tmp_path / "list.json"
    path.write_text(json.dumps(listing))
    code, out, _ = invoke("import", "nodes-json", "--db", database_url, str(path))
    assert code == 0 and out.strip().endswith(": 1 new, 1 updated, 0 unchanged"), out
    ids = [(r.node_id or b"").hex() for r in records]
    assert {k: v["score"] for k, v in export(database_url).items()} == {ids[0]: 2406, ids[1]: 7}
    _answer_in_a_crawl(database_url, records, T0 + timedelta(days=1))
    _answer_in_a_crawl(database_url, records[1:], T0 + timedelta(days=2))
    exported = export(database_url)
    assert {k: v["score"] for k, v in exported.items()} == {ids[0]: 2407, ids[1]: 9}
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(exported))
    code, out, _ = invoke("import", "nodes-json", "--db", database_url, str(mine))
    assert code == 0 and out.strip().endswith(": 0 new, 0 updated, 2 unchanged"), out
    assert export(database_url) == exported


@pytest.mark.parametrize("score", ["12", 1.5, True, 2**63])
def test_a_score_that_is_not_a_whole_number_is_skipped(tmp_path: Path, score: Any) -> None:
    record = ENR.create(generate_private_key(), seq=1, pairs={"udp": 30303})
    path = tmp_path / "in.json"
    path.write_text(_listing(record, score=score))
    code, _, err = invoke("import", "nodes-json", "--db", str(tmp_path / "x.db"), str(path))
    assert code == 1 and "score" in err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"a": "caf\xe9"}', "not UTF-8"),  # Latin-1, not UTF-8
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),  # UTF-16
        (b"[" * 200_000, "nested too deeply"),
        (b'{"x": ' * 100_000, "nested too deeply"),
    ],
)
def test_an_unreadable_file_is_one_line_and_leaves_the_database(tmp_path: Path, content: bytes, needle: str) -> None:
    good = tmp_path / "good.json"
    record = ENR.create(generate_private_key(), seq=1, pairs={"udp": 30303})
    good.write_text(_listing(record, score=3))
    db = str(tmp_path / "list.db")
    assert invoke("import", "nodes-json", "--db", db, str(good))[0] == 0
    before = export(db)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    for target in (db, str(tmp_path / "never.db")):
        code, out, err = invoke("import", "nodes-json", "--db", target, str(bad))
        assert code == 1 and out == ""
        assert len(err.strip().splitlines()) == 1 and err.startswith("Error:") and needle in err and "bad.json" in err
    assert export(db) == before
    assert not (tmp_path / "never.db").exists()
