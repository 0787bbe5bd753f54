"""Every ``ethcrawl query`` and ``export csv`` against a fixture database, on SQLite and PostgreSQL.

The fixture is written with the real store code (tests/db/fixture_db.py); expected numbers are computed
here in plain Python from the records that were written, never from the database or db/queries.py.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import timedelta
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from ethcrawl.crawler.cli_export import CSV_COLUMNS
from ethcrawl.db.records import DialRecord
from fixture_db import FORK_IDS, T0, Facts, NodeFact, database_url, fill_database

__all__ = ["database_url"]  # the fixture, imported so that pytest finds it here

NETWORK_BY_ID = {1: "mainnet", 11155111: "sepolia"}
DIMENSION_FIELDS = {"clients": "client_name", "versions": "client_version", "os": "client_os", "runtimes": "client_runtime"}
LABELS = {"clients": "client", "versions": "version", "os": "os", "runtimes": "runtime", "outcomes": "outcome"}


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def json_rows(*args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run(*args, "--format", "json").splitlines()]


@pytest.fixture
def filled(database_url: str) -> tuple[str, Facts]:
    return database_url, fill_database(database_url)


def _network_and_fork(dial: DialRecord | None) -> tuple[str | None, str | None]:
    if dial is None or dial.network_id is None:
        return None, None
    network, fork, _ = FORK_IDS.get((dial.fork_hash.hex(), dial.fork_next), (None, None, "")) if dial.fork_hash else (None, None, "")
    return network or NETWORK_BY_ID.get(dial.network_id), fork


@pytest.mark.parametrize("dimension", ["clients", "versions", "os", "runtimes", "outcomes"])
def test_histograms_equal_counts_from_the_records(filled: tuple[str, Facts], dimension: str) -> None:
    url, facts = filled
    want: Counter[str] = Counter()
    for node_id in facts.nodes:
        if dimension == "outcomes":
            dial = facts.latest_dial(node_id)
            if dial is not None:
                want[dial.outcome] += 1
        else:
            field = DIMENSION_FIELDS[dimension]
            dial = facts.latest_dial(node_id, having=field)
            if dial is not None:
                want[getattr(dial, field)] += 1
    rows = json_rows("query", dimension, "--db", url)
    label = LABELS[dimension]
    assert {r[label]: r["nodes"] for r in rows} == dict(want)
    assert [r["nodes"] for r in rows] == sorted((r["nodes"] for r in rows), reverse=True)  # largest first
    # The same rows as CSV, and an aligned table with a header and one line per row.
    as_csv = list(csv.DictReader(io.StringIO(run("query", dimension, "--db", url, "--format", "csv"))))
    assert {r[label]: int(r["nodes"]) for r in as_csv} == dict(want)
    table = run("query", dimension, "--db", url).splitlines()
    assert table[0].split()[0] == label and len(table) == 1 + len(want)


def test_versions_of_one_client(filled: tuple[str, Facts]) -> None:
    url, facts = filled
    want: Counter[str] = Counter()
    for node_id in facts.nodes:
        dial = facts.latest_dial(node_id, having="client_version", client="geth")
        if dial is not None:
            want[str(dial.client_version)] += 1
    assert want, "the fixture should hold geth nodes"
    rows = json_rows("query", "versions", "--client", "geth", "--db", url)
    assert {r["version"]: r["nodes"] for r in rows} == dict(want)


def test_networks_and_forks(filled: tuple[str, Facts]) -> None:
    url, facts = filled
    networks: Counter[tuple[str, str]] = Counter()
    readiness: Counter[tuple[str, str]] = Counter()
    for node_id in facts.nodes:
        dial = facts.latest_dial(node_id)
        if dial is None or dial.network_id is None:
            continue
        network, fork = _network_and_fork(dial)
        networks[(network or f"unknown ({dial.network_id})", fork or "unknown fork")] += 1
        assert dial.fork_hash is not None and dial.fork_next is not None
        known_network, _, ready = FORK_IDS[(dial.fork_hash.hex(), dial.fork_next)]
        readiness[(known_network or "unknown", ready)] += 1
    got = {(r["network"], r["fork"]): r["nodes"] for r in json_rows("query", "networks", "--db", url)}
    assert got == dict(networks)
    got = {(r["network"], r["readiness"]): r["nodes"] for r in json_rows("query", "forks", "--db", url)}
    assert got == dict(readiness)


def test_crawl_history(filled: tuple[str, Facts]) -> None:
    url, facts = filled
    rows = json_rows("query", "crawls", "--db", url)
    assert [r["crawl"] for r in rows] == [c.id for c in reversed(facts.crawls)]  # newest first
    for row, crawl in zip(rows, reversed(facts.crawls)):
        ok = sum(1 for d in crawl.dials if d.outcome == "ok")
        assert (row["nodes"], row["edges"], row["dials_ok"], row["dials_failed"]) == (
            len(crawl.seen), len(crawl.edges), ok, len(crawl.dials) - ok
        )
        assert float(row["duration_s"]) == (crawl.ended_at - crawl.started_at).total_seconds()


def _matches(name: str, value: Any, fact: NodeFact, dial: DialRecord | None) -> bool:
    """One ``query nodes`` filter, as the issue words it, on one node's facts and latest dial."""
    network, fork = _network_and_fork(dial)
    if name == "client":
        return dial is not None and dial.client_name == value
    if name == "version":
        return dial is not None and (dial.client_version or "").startswith(value)
    if name == "network":
        return bool(network == value)
    if name == "fork":
        return (fork or "").lower() == str(value).lower()
    if name == "ip":
        return ip_address(fact.ip) in ip_network(value)
    if name == "seen_since":
        return bool(fact.last_seen >= value)
    if name == "synced":
        return dial is not None and dial.synced is value
    assert name == "dialable"
    return dial is not None and dial.outcome == "ok"


def _expected_nodes(facts: Facts, **filters: Any) -> set[str]:
    return {
        node_id.hex()
        for node_id, fact in facts.nodes.items()
        if all(_matches(name, value, fact, facts.latest_dial(node_id)) for name, value in filters.items())
    }


@pytest.mark.parametrize(
    ("args", "filters"),
    [
        ([], {}),
        (["--client", "geth"], {"client": "geth"}),
        (["--version", "1.1"], {"version": "1.1"}),
        (["--network", "mainnet"], {"network": "mainnet"}),
        (["--network", "sepolia", "--fork", "prague"], {"network": "sepolia", "fork": "prague"}),
        (["--ip", "10.0.0.0/8"], {"ip": "10.0.0.0/8"}),
        (["--seen-since", "2026-11-02T12:00:30Z"], {"seen_since": T0 + timedelta(days=1, seconds=30)}),
        (["--synced"], {"synced": True}),
        (["--not-synced"], {"synced": False}),
        (["--dialable", "--client", "reth", "--ip", "192.0.2.0/24"], {"dialable": True, "client": "reth", "ip": "192.0.2.0/24"}),
    ],
)
def test_node_filters(filled: tuple[str, Facts], args: list[str], filters: dict[str, Any]) -> None:
    url, facts = filled
    want = _expected_nodes(facts, **filters)
    rows = json_rows("query", "nodes", "--db", url, *args)
    assert {r["node_id"] for r in rows} == want
    enodes = run("query", "nodes", "--db", url, *args).split()
    assert sorted(u.removeprefix("enode://")[:128] for u in enodes) == sorted(facts.nodes[bytes.fromhex(n)].pubkey.hex() for n in want)
    if len(want) > 2:
        assert len(run("query", "nodes", "--db", url, *args, "--limit", "2").split()) == 2


def test_export_csv_reads_back_as_the_records(filled: tuple[str, Facts]) -> None:
    url, facts = filled
    reader = csv.DictReader(io.StringIO(run("export", "csv", "--db", url)))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = {row["node_id"]: row for row in reader}
    assert set(rows) == {n.hex() for n in facts.nodes}
    for node_id, fact in facts.nodes.items():
        row = rows[node_id.hex()]
        dial = facts.latest_dial(node_id)
        network, fork = _network_and_fork(dial)
        assert row["enode"] == f"enode://{fact.pubkey.hex()}@{fact.ip}:{fact.tcp}"
        assert (row["ip"], row["udp_port"], row["tcp_port"]) == (fact.ip, str(fact.udp), str(fact.tcp))
        assert row["first_seen"] == fact.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["last_seen"] == fact.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        expected = {
            "last_outcome": dial.outcome if dial else "",
            "client_id": (dial.client_id if dial else None) or "",
            "client_name": (dial.client_name if dial else None) or "",
            "client_version": (dial.client_version if dial else None) or "",
            "os": (dial.client_os if dial else None) or "",
            "runtime": (dial.client_runtime if dial else None) or "",
            "network_id": "" if dial is None or dial.network_id is None else str(dial.network_id),
            "network": network or "",
            "fork_name": fork or "",
            "fork_hash": dial.fork_hash.hex() if dial is not None and dial.fork_hash is not None else "",
            "synced": "" if dial is None or dial.synced is None else str(dial.synced).lower(),
        }
        assert {k: row[k] for k in expected} == expected


def _weak_components(nodes: set[bytes], edges: frozenset[tuple[bytes, bytes]]) -> list[int]:
    parent = {n: n for n in nodes}

    def root(n: bytes) -> bytes:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        parent[root(a)] = root(b)
    return sorted(Counter(root(n) for n in nodes).values())


@pytest.mark.parametrize("which", ["latest", "first"])
def test_topology_equals_a_count_by_hand(filled: tuple[str, Facts], which: str) -> None:
    url, facts = filled
    crawl = facts.crawls[-1] if which == "latest" else facts.crawls[0]
    args = [] if which == "latest" else ["--crawl", str(crawl.id)]
    (summary,) = json_rows("query", "topology", "--db", url, *args)
    nodes = {n for edge in crawl.edges for n in edge} | set(crawl.responders)
    in_deg = Counter(b for _, b in crawl.edges)
    out_deg = Counter(a for a, _ in crawl.edges)
    components = _weak_components(nodes, crawl.edges)
    assert summary["crawl"] == crawl.id
    assert (summary["nodes"], summary["edges"], summary["responders"]) == (len(nodes), len(crawl.edges), len(crawl.responders))
    assert summary["in_degree"] == {str(k): v for k, v in Counter(in_deg[n] for n in nodes).items()}
    assert summary["out_degree"] == {str(k): v for k, v in Counter(out_deg[n] for n in nodes).items()}
    assert (summary["components"], summary["largest_component"]) == (len(components), components[-1])
    assert summary["answered_but_returned_by_nobody"] == sum(1 for n in crawl.responders if in_deg[n] == 0)
    mean = sum(out_deg[n] for n in crawl.responders) / len(crawl.responders)
    assert summary["mean_out_degree_of_responders"] == pytest.approx(mean, abs=0.00501)  # reported rounded to 2 places


@pytest.mark.parametrize("command", [["export", "csv"], ["query", "networks"], ["query", "nodes"]])
def test_nodes_without_a_tcp_port_are_reported(database_url: str, command: list[str]) -> None:
    facts = fill_database(database_url, nodes=12, no_tcp=0.5)
    assert any(fact.tcp is None for fact in facts.nodes.values())
    result = CliRunner().invoke(main, [*command, "--db", database_url])
    assert result.exit_code == 0 and "Traceback" not in result.output
