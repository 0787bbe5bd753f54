"""``query layers``, the v2 CSV columns and the edges export's protocols column, on SQLite and PostgreSQL.

The database holds real records (the 15 go-ethereum v5 bootnode ENRs, the published hoodi list) plus
hand-made nodes that answered over v4, v5 or both; expected numbers are counted here from those
inputs with wire.classify, never read back through db/queries.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner
from fixture_db import database_url
from ground_truth import load_fixture_json

from ethcrawl.crawler.cli import main
from ethcrawl.crawler.cli_export import CSV_COLUMNS
from ethcrawl.db.engine import open_database
from ethcrawl.db.nodesjson import import_nodes_json
from ethcrawl.db.records import CrawlStarted, EdgeSeen, NodeSeen, Record
from ethcrawl.db.store import begin_crawl, write_records
from ethcrawl.wire.classify import classify
from ethcrawl.wire.enr import ENR

__all__ = ["database_url"]

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
# The export's columns before schema v2: they must stay first, in this order, with these names.
V1_CSV_COLUMNS = (
    "node_id", "enode", "ip", "udp_port", "tcp_port", "enr_seq", "client_id", "client_name", "client_version",
    "os", "arch", "runtime", "capabilities", "network_id", "network", "fork_hash", "fork_next", "fork_name",
    "synced", "first_seen", "last_seen", "last_outcome",
)  # fmt: skip
V2_CSV_COLUMNS = (
    "layer", "protocols", "execution_network", "eth2_fork_digest", "consensus_network", "consensus_fork",
    "attnets_count", "syncnets_count",
)  # fmt: skip
V4_CSV_COLUMNS = ("country", "asn", "as_org")  # where the address is (tests/db/test_enrich.py)


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def fake_id(n: int) -> bytes:
    return hashlib.sha256(b"layers %d" % n).digest()


def fill(url: str) -> dict[str, Any]:
    """Bootnodes answered over v5 (the first five over v4 too); hoodi list imported; 3 ENR-less v4 nodes."""
    bootnodes = [ENR.from_text(t) for t in load_fixture_json("vectors", "bootnodes.json")["v5"]]
    hoodi = load_fixture_json("data", "dnslists", "hoodi.nodes.json")
    db = open_database(url)
    with db.session() as session, session.begin():
        import_nodes_json(session, hoodi, now=T0)
    with db.session() as session, session.begin():
        crawl = begin_crawl(session, CrawlStarted(started_at=T0))
        records: list[Record] = []
        protocols: dict[bytes, tuple[str, ...]] = {}
        for i, enr in enumerate(bootnodes):
            assert enr.node_id is not None and enr.public_key_raw is not None
            protocols[enr.node_id] = ("v4", "v5") if i < 5 else ("v5",)
            records.append(NodeSeen(crawl_id=crawl, node_id=enr.node_id, pubkey=enr.public_key_raw, ip=None, udp=None,
                                    tcp=None, seen_at=T0, source="bootnode", enr=enr.to_rlp(), enr_seq=enr.seq,
                                    responded=True, protocols=protocols[enr.node_id]))
        for n in range(3):
            records.append(NodeSeen(crawl_id=crawl, node_id=fake_id(n), pubkey=bytes(64), ip="127.0.0.1", udp=30303,
                                    tcp=30303, seen_at=T0, source="neighbors", responded=True, protocols=("v4",)))
        a, b = (e.node_id for e in bootnodes[:2])
        assert a is not None and b is not None
        records += [
            EdgeSeen(crawl_id=crawl, from_id=a, to_id=b, seen_at=T0, protocol="v5"),
            EdgeSeen(crawl_id=crawl, from_id=a, to_id=fake_id(0), seen_at=T0, protocol="v4"),
            EdgeSeen(crawl_id=crawl, from_id=a, to_id=b, seen_at=T0, protocol="v4"),
            EdgeSeen(crawl_id=crawl, from_id=b, to_id=a, seen_at=T0, protocol="v5"),
        ]
        write_records(session, records)
    db.close()
    return {"bootnodes": bootnodes, "hoodi": hoodi, "protocols": protocols, "edges": {(a, b): "v4,v5", (a, fake_id(0)): "v4", (b, a): "v5"}}


@pytest.fixture
def filled(database_url: str) -> tuple[str, dict[str, Any]]:
    return database_url, fill(database_url)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_query_layers_counts(filled: tuple[str, dict[str, Any]]) -> None:
    url, facts = filled
    rows = [json.loads(line) for line in run("query", "layers", "--db", url, "--format", "json").splitlines()]
    got = {(r["layer"], r["by"], r["value"]): r["nodes"] for r in rows}
    bootnodes = facts["bootnodes"]
    total = len(facts["hoodi"]) + len(bootnodes) + 3
    want: dict[tuple[str, str, str | None], int] = {
        ("execution", "all", None): len(facts["hoodi"]),
        ("execution", "protocols", "none"): len(facts["hoodi"]),  # imported, never answered
        ("execution", "network", "hoodi"): len(facts["hoodi"]),
        ("consensus", "all", None): len(bootnodes),
        ("consensus", "protocols", "v4,v5"): 5,
        ("consensus", "protocols", "v5"): len(bootnodes) - 5,
        ("unknown", "all", None): 3,
        ("unknown", "protocols", "v4"): 3,
    }
    forks: Counter[str] = Counter()
    for enr in bootnodes:
        found = classify(enr)
        forks[f"{found.consensus_network}/{found.consensus_fork}" if found.consensus_network else f"unknown ({found.fork_digest.hex()})"] += 1
    want.update({("consensus", "fork", value): n for value, n in forks.items()})
    assert got == want
    assert forks == {"mainnet/Phase0": 10, "mainnet/Capella": 2, "unknown (f5a5fd42)": 3}
    shares = {(r["layer"], r["by"], r["value"]): r["share"] for r in rows}
    assert shares[("unknown", "all", None)] == round(100 * 3 / total, 1)
    assert shares[("consensus", "protocols", "v4,v5")] == round(100 * 5 / len(bootnodes), 1)
    # Layers come in a fixed order; the table and CSV forms carry the same rows.
    assert [r["layer"] for r in rows if r["by"] == "all"] == ["execution", "consensus", "unknown"]
    as_csv = list(csv.DictReader(io.StringIO(run("query", "layers", "--db", url, "--format", "csv"))))
    assert {(r["layer"], r["by"], r["value"] or None): int(r["nodes"]) for r in as_csv} == want  # CSV: null is empty
    table = run("query", "layers", "--db", url).splitlines()
    assert table[0].split() == ["layer", "by", "value", "nodes", "share"] and len(table) == 1 + len(rows)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_csv_appends_the_v2_columns(filled: tuple[str, dict[str, Any]]) -> None:
    url, facts = filled
    reader = csv.DictReader(io.StringIO(run("export", "csv", "--db", url)))
    header = tuple(reader.fieldnames or ())
    assert header[: len(V1_CSV_COLUMNS)] == V1_CSV_COLUMNS
    assert header == V1_CSV_COLUMNS + V2_CSV_COLUMNS + V4_CSV_COLUMNS == CSV_COLUMNS
    rows = {r["node_id"]: r for r in reader}
    for enr in facts["bootnodes"]:
        found = classify(enr)
        row = rows[enr.node_id.hex()]
        assert row["layer"] == "consensus" and row["eth2_fork_digest"] == found.fork_digest.hex()
        assert row["consensus_network"] == (found.consensus_network or "") and row["consensus_fork"] == (found.consensus_fork or "")
        assert row["attnets_count"] == ("" if found.attnets_count is None else str(found.attnets_count))
        assert row["protocols"] == ",".join(facts["protocols"][enr.node_id])
    hoodi_row = rows[next(iter(facts["hoodi"]))]
    assert (hoodi_row["layer"], hoodi_row["execution_network"], hoodi_row["protocols"]) == ("execution", "hoodi", "")
    assert rows[fake_id(1).hex()]["layer"] == "" and rows[fake_id(1).hex()]["protocols"] == "v4"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_edges_export_carries_the_protocols(filled: tuple[str, dict[str, Any]]) -> None:
    url, facts = filled
    reader = csv.DictReader(io.StringIO(run("export", "edges", "--db", url)))
    assert tuple(reader.fieldnames or ())[:2] == ("from_node", "to_node")
    got = {(bytes.fromhex(r["from_node"]), bytes.fromhex(r["to_node"])): r["protocols"] for r in reader}
    assert got == facts["edges"]
    graph = nx.parse_graphml(run("export", "edges", "--db", url, "--format", "graphml"))
    assert {(a, b): d["protocols"] for a, b, d in graph.edges(data=True)} == {(a.hex(), b.hex()): p for (a, b), p in facts["edges"].items()}
    # Topology still reads the same pairs.
    topo = json.loads(run("query", "topology", "--db", url, "--format", "json"))
    assert topo["edges"] == len(facts["edges"])


def test_query_layers_on_an_empty_database(tmp_path: Any) -> None:
    path = str(tmp_path / "empty.db")
    open_database(path).close()
    assert run("query", "layers", "--db", path).strip().split() == ["layer", "by", "value", "nodes", "share"]
    assert run("query", "layers", "--db", path, "--format", "json") == ""


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_query_nodes_filters_by_layer_and_discovery(filled: tuple[str, dict[str, Any]]) -> None:
    url, facts = filled

    def ids(*args: str) -> set[str]:
        rows = [json.loads(line) for line in run("query", "nodes", "--db", url, "--format", "json", *args).splitlines()]
        return {r["node_id"] for r in rows}

    bootnode_ids = {e.node_id.hex() for e in facts["bootnodes"]}
    answered_v4 = {node_id.hex() for node_id, protocols in facts["protocols"].items() if "v4" in protocols}
    assert ids("--layer", "consensus") == bootnode_ids
    assert ids("--layer", "execution") == set(facts["hoodi"])
    assert ids("--layer", "unknown") == {fake_id(n).hex() for n in range(3)}
    assert ids("--discovery", "v5") == bootnode_ids
    assert ids("--discovery", "v4") == answered_v4 | {fake_id(n).hex() for n in range(3)}
    assert ids("--layer", "consensus", "--discovery", "v4") == answered_v4


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_topology_of_one_dht(filled: tuple[str, dict[str, Any]]) -> None:
    url, facts = filled

    def topology(*args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(run("query", "topology", "--db", url, "--format", "json", *args))
        return result

    answered_v4 = [n for n, p in facts["protocols"].items() if "v4" in p]
    v5 = topology("--discovery", "v5")
    assert v5["discovery"] == ["v5"]
    assert v5["edges"] == sum(1 for p in facts["edges"].values() if "v5" in p)  # a->b, b->a
    assert v5["responders"] == len(facts["bootnodes"]) == v5["nodes"]
    v4 = topology("--discovery", "v4")
    assert v4["edges"] == sum(1 for p in facts["edges"].values() if "v4" in p)  # a->b, a->fake0
    assert v4["responders"] == len(answered_v4) + 3 == v4["nodes"]  # the ENR-less nodes answered v4
    both = topology()
    assert both["discovery"] == ["v4", "v5"] and both["edges"] == len(facts["edges"])


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_nodes_json_export_by_layer(filled: tuple[str, dict[str, Any]]) -> None:
    url, facts = filled
    execution = json.loads(run("export", "nodes-json", "--db", url, "--layer", "execution"))
    consensus = json.loads(run("export", "nodes-json", "--db", url, "--layer", "consensus"))
    everything = json.loads(run("export", "nodes-json", "--db", url))
    assert set(execution) == set(facts["hoodi"])
    assert set(consensus) == {e.node_id.hex() for e in facts["bootnodes"]}
    assert set(everything) == set(execution) | set(consensus)  # the ENR-less nodes have no record to export
    assert all(consensus[e.node_id.hex()]["record"] == e.to_text() for e in facts["bootnodes"])
