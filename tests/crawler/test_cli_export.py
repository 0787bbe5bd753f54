"""export/import/query commands against databases built with the real writer code."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from ground_truth import fixture_path, load_fixture_json

from ethcrawl.crawler.cli import main
from ethcrawl.crawler.cli_export import CSV_COLUMNS
from ethcrawl.db.engine import open_database
from ethcrawl.db.records import CrawlStarted, DialRecord, NodeSeen
from ethcrawl.db.store import begin_crawl, write_records
from ethcrawl.wire.crypto import generate_private_key, node_id_from_pubkey, pubkey_from_private

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
GENESIS = bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3")
CLIENTS = ["geth"] * 5 + ["nethermind"] * 3 + ["reth"] * 2  # ten dialed nodes


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def crawl_db(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """12 nodes; 10 dialed ok with known clients (one node dialed twice: the later dial counts), 2 refused."""
    path = tmp_path / "crawl.db"
    db = open_database(path)
    ids = []
    with db.session() as session, session.begin():
        crawl = begin_crawl(session, CrawlStarted(started_at=T0))
        records: list[object] = []
        for i in range(12):
            pubkey = pubkey_from_private(generate_private_key())
            node_id = node_id_from_pubkey(pubkey)
            ids.append(node_id)
            records.append(NodeSeen(crawl_id=crawl, node_id=node_id, pubkey=pubkey, ip=f"127.0.0.{i + 1}", udp=30303, tcp=30303, seen_at=T0, source="neighbors"))
        for i, node_id in enumerate(ids):
            if i < 10:
                records.append(DialRecord(
                    crawl_id=crawl, node_id=node_id, attempted_at=T0, direction="outbound", outcome="ok",
                    client_id=f"{CLIENTS[i]}/v1.0.{i}/linux-amd64/x", client_name=CLIENTS[i], client_version=f"1.0.{i}",
                    network_id=1, genesis_hash=GENESIS, fork_hash=bytes.fromhex("c376cf8b"), fork_next=0, synced=i % 2 == 0,
                ))
            else:
                records.append(DialRecord(crawl_id=crawl, node_id=node_id, attempted_at=T0, direction="outbound", outcome="refused"))
        # node 0 dialed again later and now says it is reth: the latest dial is what reports show
        records.append(DialRecord(
            crawl_id=crawl, node_id=ids[0], attempted_at=T0 + timedelta(seconds=5), direction="outbound", outcome="ok",
            client_id="reth/v1.1.0/x86_64-unknown-linux-gnu", client_name="reth", client_version="1.1.0",
        ))
        write_records(session, records)  # type: ignore[arg-type]
    db.close()
    return path, ids


def test_query_clients_counts_each_node_once_by_its_latest_dial(crawl_db: tuple[Path, list[bytes]]) -> None:
    path, _ = crawl_db
    code, out, _ = run("query", "clients", "--db", str(path), "--format", "json")
    assert code == 0
    got = {row["client"]: row["nodes"] for row in map(json.loads, out.splitlines())}
    want = Counter(CLIENTS)
    want["geth"] -= 1
    want["reth"] += 1
    assert got == dict(want)
    code, table, _ = run("query", "clients", "--db", str(path))
    assert code == 0 and table.splitlines()[0].split() == ["client", "nodes", "refused", "share"]


def test_export_csv_reads_back_as_the_database(crawl_db: tuple[Path, list[bytes]]) -> None:
    path, ids = crawl_db
    code, out, _ = run("export", "csv", "--db", str(path))
    assert code == 0
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = {row["node_id"]: row for row in reader}
    assert set(rows) == {i.hex() for i in ids}
    first = rows[ids[0].hex()]
    assert first["client_name"] == "reth" and first["last_outcome"] == "ok"
    assert first["first_seen"] == "2026-11-01T12:00:00Z"
    assert first["enode"].endswith("@127.0.0.1:30303")
    second = rows[ids[1].hex()]
    assert (second["network"], second["fork_hash"], second["fork_name"], second["synced"]) == ("mainnet", "c376cf8b", "Prague", "false")
    assert rows[ids[11].hex()]["last_outcome"] == "refused" and rows[ids[11].hex()]["client_id"] == ""


def test_nodes_json_round_trip_is_byte_identical(tmp_path: Path) -> None:
    source = fixture_path("data", "dnslists", "mainnet.part.nodes.json")
    published = load_fixture_json("data", "dnslists", "mainnet.part.nodes.json")
    db = tmp_path / "list.db"
    code, out, err = run("import", "nodes-json", "--db", str(db), str(source))
    assert code == 0, err
    assert f"imported {len(published)} of {len(published)}" in out
    exported_path = tmp_path / "out.json"
    code, _, err = run("export", "nodes-json", "--db", str(db), "--out", str(exported_path))
    assert code == 0, err
    exported = json.loads(exported_path.read_text())
    assert set(exported) == set(published)
    for key, entry in published.items():
        assert exported[key]["record"] == entry["record"]
        assert exported[key]["seq"] == entry["seq"]
        assert exported[key]["firstResponse"] == entry["firstResponse"]


def test_import_keeps_the_higher_seq(tmp_path: Path) -> None:
    from ethcrawl.wire.enr import ENR

    key = generate_private_key()
    old = ENR.create(key, seq=1, pairs={"udp": 30303})
    new = ENR.create(key, seq=2, pairs={"udp": 30304})
    node = old.node_id.hex()  # type: ignore[union-attr]
    db = tmp_path / "seq.db"
    for record in (new, old):  # the older one arrives last and must not win
        path = tmp_path / f"{record.seq}.json"
        path.write_text(json.dumps({node: {"seq": record.seq, "record": record.to_text()}}))
        assert run("import", "nodes-json", "--db", str(db), str(path))[0] == 0
    code, out, _ = run("export", "nodes-json", "--db", str(db))
    assert json.loads(out)[node]["record"] == new.to_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"00" * 32: {"seq": 1, "record": "enr:garbage"}}).encode(), "skipped"),
    ],
)
def test_bad_imports_give_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(content)
    code, _out, err = run("import", "nodes-json", "--db", str(tmp_path / "x.db"), str(path))
    assert code == 1
    assert message in err
    assert "Traceback" not in err


def test_query_on_a_missing_or_corrupt_database_is_one_line(tmp_path: Path) -> None:
    code, _, err = run("query", "clients", "--db", str(tmp_path / "missing.db"))
    assert code == 1 and len(err.strip().splitlines()) == 1
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage" * 500)
    code, _, err = run("export", "csv", "--db", str(corrupt))
    assert code == 1 and err.startswith("Error:") and "Traceback" not in err


def test_histograms_match_independent_counts(crawl_db: tuple[Path, list[bytes]]) -> None:
    path, _ = crawl_db
    code, out, _ = run("query", "outcomes", "--db", str(path), "--format", "json")
    assert code == 0
    assert {r["outcome"]: r["nodes"] for r in map(json.loads, out.splitlines())} == {"ok": 10, "refused": 2}
    code, out, _ = run("query", "versions", "--db", str(path), "--client", "nethermind", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["version"] for r in rows) == ["1.0.5", "1.0.6", "1.0.7"]
    code, out, _ = run("query", "crawls", "--db", str(path), "--format", "json")
    (crawl,) = map(json.loads, out.splitlines())
    assert crawl["crawl"] == 1


def test_topology_of_a_hand_made_graph() -> None:
    from ethcrawl.db.topology import analyse

    a, b, c, d, e = (bytes([i]) * 32 for i in range(5))
    edges = [(a, b), (a, c), (b, c), (c, a), (d, e)]
    topo = analyse(edges, responders={a, b, c, d})
    assert (topo.nodes, topo.edges, topo.responders) == (5, 5, 4)
    assert topo.components == 2 and topo.largest_component == 3
    assert topo.unreferenced_responders == 1  # d answered, but nobody returned it
    assert dict(topo.out_degree) == {0: 1, 1: 3, 2: 1}
    assert dict(topo.in_degree) == {0: 1, 1: 3, 2: 1}
    assert topo.mean_out_degree_of_responders == 1.25


async def test_edges_export_and_topology_after_a_real_crawl(tmp_path: Path) -> None:
    """A loopback crawl of a 3-level tree; edges come back as CSV and GraphML."""
    import networkx as nx
    import trio

    from ethcrawl.crawler.crawl import CrawlOptions, run_crawl
    from ethcrawl.crawler.discovery import DiscoveryV4

    db_path = tmp_path / "t.db"
    async with trio.open_nursery() as nursery:
        nodes = []
        for _ in range(7):
            node = DiscoveryV4(generate_private_key(), host="127.0.0.1")
            await nursery.start(node.run)
            nodes.append(node)
        for k, node in enumerate(nodes[:3]):
            for child in nodes[2 * k + 1 : 2 * k + 3]:
                node.table.add_verified(child.local_node)
        db = open_database(db_path)
        with trio.fail_after(30):
            await run_crawl(db, CrawlOptions(seeds=(nodes[0].local_node,), dial=False, listen_host="127.0.0.1"), handle_signals=False)
        db.close()
        nursery.cancel_scope.cancel()
    code, out, _ = run("export", "edges", "--db", str(db_path))
    pairs = {(r["from_node"], r["to_node"]) for r in csv.DictReader(io.StringIO(out))}
    for k in range(3):
        for child in nodes[2 * k + 1 : 2 * k + 3]:
            assert (nodes[k].node_id.hex(), child.node_id.hex()) in pairs
    code, out, _ = run("export", "edges", "--db", str(db_path), "--format", "graphml")
    graph = nx.parse_graphml(out)
    assert graph.number_of_edges() == len(pairs)
    code, out, _ = run("query", "topology", "--db", str(db_path), "--format", "json")
    topo = json.loads(out)
    assert topo["nodes"] == 7 and topo["responders"] == 7 and topo["components"] == 1


def test_networks_forks_and_node_filters(crawl_db: tuple[Path, list[bytes]]) -> None:
    path, ids = crawl_db
    code, out, _ = run("query", "networks", "--db", str(path), "--format", "json")
    # node 0's latest dial has no Status, so its earlier one counts: nodes 0..9 are mainnet at Prague (c376cf8b/0)
    assert [json.loads(line) for line in out.splitlines()] == [{"network": "mainnet", "fork": "Prague", "nodes": 10, "share": 100.0}]
    code, out, _ = run("query", "forks", "--db", str(path), "--format", "json")
    assert [json.loads(line) for line in out.splitlines()] == [{"network": "mainnet", "readiness": "stale", "nodes": 10, "share": 100.0}]
    code, out, _ = run("query", "nodes", "--db", str(path), "--client", "nethermind")
    # nodes 5, 6, 7 (addresses 127.0.0.6-8) are nethermind
    assert sorted(url.rsplit("@", 1)[1] for url in out.split()) == [f"127.0.0.{i}:30303" for i in (6, 7, 8)]
    code, out, _ = run("query", "nodes", "--db", str(path), "--ip", "127.0.0.0/30", "--format", "json")
    assert {json.loads(line)["ip"] for line in out.splitlines()} == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    code, out, _ = run("query", "nodes", "--db", str(path), "--synced", "--format", "csv")
    synced = [r["node_id"] for r in csv.DictReader(io.StringIO(out))]
    assert sorted(synced) == sorted(ids[i].hex() for i in (0, 2, 4, 6, 8))  # node 0: from its earlier Status
    code, out, _ = run("query", "nodes", "--db", str(path), "--dialable", "--limit", "3")
    assert len(out.split()) == 3
    code, out, _ = run("query", "nodes", "--db", str(path), "--seen-since", "2030-01-01")
    assert out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--ip", "nonsense"], "IP network"), (["--seen-since", "yesterday"], "ISO 8601"), (["--limit", "0"], "--limit")],
)
def test_bad_filters_are_one_clear_error(crawl_db: tuple[Path, list[bytes]], args: list[str], message: str) -> None:
    path, _ = crawl_db
    result = CliRunner().invoke(main, ["query", "nodes", "--db", str(path), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_newer_schema_version_is_one_clear_line(crawl_db: tuple[Path, list[bytes]]) -> None:
    import sqlite3

    path, _ = crawl_db
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 999")
    for command in (["query", "clients"], ["export", "csv"], ["query", "nodes"], ["export", "nodes-json"]):
        code, _out, err = run(*command, "--db", str(path))
        assert code == 1
        assert len(err.strip().splitlines()) == 1 and "999" in err and "Traceback" not in err


# ------------------------------------------------------------------ nodes-json filters (devp2p nodeset filter)

DNS_LISTS = {"holesky": 21, "sepolia": 250, "hoodi": 486}


def _imported_list(tmp_path: Path, network: str) -> tuple[Path, dict[str, dict[str, object]]]:
    source = fixture_path("data", "dnstrees", f"all.{network}.ethdisco.net@0002ab9", "nodes.json")
    path = tmp_path / f"{network}.db"
    code, _, err = run("import", "nodes-json", "--db", str(path), str(source))
    assert code == 0, err
    return path, json.loads(source.read_text())


@pytest.mark.parametrize("network", sorted(DNS_LISTS))
def test_eth_network_filter_keeps_a_published_list_whole_and_rejects_other_networks(tmp_path: Path, network: str) -> None:
    """Each published all.<network> list came out of `devp2p nodeset filter -eth-network <network>`."""
    path, listed = _imported_list(tmp_path, network)
    for other in ("mainnet", "sepolia", "holesky", "hoodi"):
        code, out, err = run("export", "nodes-json", "--db", str(path), "--eth-network", other)
        assert code == 0, err
        kept = json.loads(out)
        if other == network:
            assert sorted(kept) == sorted(listed) and len(kept) == DNS_LISTS[network]
        else:
            assert kept == {}


def test_limit_keeps_the_best_scores(tmp_path: Path) -> None:
    path, listed = _imported_list(tmp_path, "hoodi")
    code, out, _ = run("export", "nodes-json", "--db", str(path), "--limit", "10")
    assert code == 0
    kept = json.loads(out)
    best = sorted(listed, key=lambda key: (-int(listed[key]["score"]), key))[:10]  # type: ignore[call-overload]
    assert sorted(kept) == sorted(best)
    assert list(kept) == sorted(kept)  # still written in node id order


def test_min_age_snap_and_ip_filters_match_the_file(tmp_path: Path) -> None:
    from ethcrawl.db.nodesjson import parse_time
    from ethcrawl.wire.enr import ENR

    path, listed = _imported_list(tmp_path, "sepolia")

    def age(entry: dict[str, object]) -> timedelta:
        first, last = parse_time(entry["firstResponse"]), parse_time(entry["lastResponse"])
        assert first is not None and last is not None
        return last - first

    code, out, _ = run("export", "nodes-json", "--db", str(path), "--min-age", "90d")
    want = {key for key, entry in listed.items() if age(entry) >= timedelta(days=90)}
    assert code == 0 and set(json.loads(out)) == want and 0 < len(want) < len(listed)
    code, out, _ = run("export", "nodes-json", "--db", str(path), "--min-age", "2160h")  # Go's spelling of 90 days
    assert set(json.loads(out)) == want

    records = {key: ENR.from_text(str(entry["record"])) for key, entry in listed.items()}
    code, out, _ = run("export", "nodes-json", "--db", str(path), "--snap")
    assert code == 0 and set(json.loads(out)) == {k for k, r in records.items() if isinstance(r.get("snap"), list)}

    some_key = sorted(records)[0]
    address = records[some_key].ip
    assert address is not None
    code, out, _ = run("export", "nodes-json", "--db", str(path), "--ip", f"{address}/32")
    assert code == 0 and set(json.loads(out)) == {k for k, r in records.items() if r.ip == address}
    code, out, _ = run("export", "nodes-json", "--db", str(path), "--ip", "2001:db8::/32")
    assert json.loads(out) == {}


def test_filters_combine_then_limit(tmp_path: Path) -> None:
    path, listed = _imported_list(tmp_path, "hoodi")
    code, out, _ = run("export", "nodes-json", "--db", str(path), "--eth-network", "hoodi", "--snap", "--min-age", "30d", "--limit", "3")
    assert code == 0
    assert len(json.loads(out)) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--eth-network", "goerli"], "--eth-network"),
        (["--min-age", "3x"], "not a duration"),
        (["--min-age", ""], "not a duration"),
        (["--ip", "300.0.0.0/8"], "IP network"),
        (["--limit", "-1"], "--limit"),
    ],
)
def test_bad_nodes_json_filters(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["export", "nodes-json", "--db", str(tmp_path / "x.db"), *args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_parse_duration_is_gos_syntax() -> None:
    from ethcrawl.crawler.cli_common import parse_duration

    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    for bad in ("", "5", "h", "1 h", "-1h", "1y", "99999999d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
