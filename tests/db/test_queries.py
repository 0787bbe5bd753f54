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


def _hello_counts(facts: Facts, field: str, *, client: str | None = None, crawl: int | None = None) -> dict[Any, list[int]]:
    """{value: [nodes, refused]} by the README's rule: each node's latest attempt that received a Hello."""
    want: dict[Any, list[int]] = {}
    for node_id in facts.nodes:
        dial = facts.latest_dial(node_id, having="client_id", crawl=crawl)
        if dial is None or getattr(dial, field) is None or (client is not None and dial.client_name != client):
            continue
        key = (dial.client_name, dial.client_version) if field == "client_version" else getattr(dial, field)
        counts = want.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += dial.outcome != "ok"
    return want


@pytest.mark.parametrize("dimension", ["clients", "versions", "os", "runtimes", "outcomes"])
def test_histograms_equal_counts_from_the_records(filled: tuple[str, Facts], dimension: str) -> None:
    url, facts = filled
    label = LABELS[dimension]
    rows = json_rows("query", dimension, "--db", url)
    if dimension == "outcomes":
        want = Counter(d.outcome for d in (facts.latest_dial(n) for n in facts.nodes) if d is not None)
        assert {r[label]: r["nodes"] for r in rows} == dict(want)
    else:
        counts = _hello_counts(facts, DIMENSION_FIELDS[dimension])
        key = (lambda r: (r["client"], r[label])) if dimension == "versions" else (lambda r: r[label])
        assert {key(r): [r["nodes"], r["refused"]] for r in rows} == counts
        assert any(refused for _, refused in counts.values()), "the fixture should hold a Hello, then a refusal"
        want = Counter({k: n for k, (n, _) in counts.items()})
    assert [r["nodes"] for r in rows] == sorted((r["nodes"] for r in rows), reverse=True)  # largest first
    total = sum(want.values())
    assert [r["share"] for r in rows] == [round(100 * r["nodes"] / total, 1) for r in rows]
    # The same rows as CSV, and an aligned table with a header and one line per row.
    as_csv = list(csv.DictReader(io.StringIO(run("query", dimension, "--db", url, "--format", "csv"))))
    assert sorted(int(r["nodes"]) for r in as_csv) == sorted(want.values())
    table = run("query", dimension, "--db", url).splitlines()
    assert label in table[0].split() and len(table) == 1 + len(want)


@pytest.mark.parametrize("dimension", ["versions", "os", "runtimes"])
def test_hello_dimensions_of_one_client(filled: tuple[str, Facts], dimension: str) -> None:
    url, facts = filled
    label = LABELS[dimension]
    want = _hello_counts(facts, DIMENSION_FIELDS[dimension], client="geth")
    assert want, "the fixture should hold geth nodes"
    rows = json_rows("query", dimension, "--client", "GETH", "--db", url)  # names are matched lower case
    key = (lambda r: (r["client"], r[label])) if dimension == "versions" else (lambda r: r[label])
    assert {key(r): [r["nodes"], r["refused"]] for r in rows} == want


def _network_counts(facts: Facts, *, client: str | None = None, crawl: int | None = None) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """(nodes by (network, fork), nodes by (network, readiness)): each node's latest attempt that received a Status."""
    networks: Counter[tuple[str, str]] = Counter()
    readiness: Counter[tuple[str, str]] = Counter()
    for node_id in facts.nodes:
        if client is not None:
            hello = facts.latest_dial(node_id, having="client_id", crawl=crawl)
            if hello is None or hello.client_name != client:
                continue
        dial = facts.latest_dial(node_id, having="network_id", crawl=crawl)
        if dial is None:
            continue
        network, fork = _network_and_fork(dial)
        networks[(network or f"unknown ({dial.network_id})", fork or "unknown fork")] += 1
        assert dial.fork_hash is not None and dial.fork_next is not None
        known_network, _, ready = FORK_IDS[(dial.fork_hash.hex(), dial.fork_next)]
        readiness[(known_network or "unknown", ready)] += 1
    return networks, readiness


@pytest.mark.parametrize("client", [None, "reth"])
def test_networks_and_forks(filled: tuple[str, Facts], client: str | None) -> None:
    url, facts = filled
    networks, readiness = _network_counts(facts, client=client)
    args = ["--client", client] if client else []
    got = {(r["network"], r["fork"]): r["nodes"] for r in json_rows("query", "networks", "--db", url, *args)}
    assert got == dict(networks)
    got = {(r["network"], r["readiness"]): r["nodes"] for r in json_rows("query", "forks", "--db", url, *args)}
    assert got == dict(readiness)


def test_outcomes_of_one_client(filled: tuple[str, Facts]) -> None:
    url, facts = filled
    want: Counter[str] = Counter()
    for node_id in facts.nodes:
        hello = facts.latest_dial(node_id, having="client_id")
        if hello is not None and hello.client_name == "nethermind":
            want[facts.latest_dial(node_id).outcome] += 1  # type: ignore[union-attr]
    assert {r["outcome"]: r["nodes"] for r in json_rows("query", "outcomes", "--db", url, "--client", "nethermind")} == dict(want)


def test_share_queries_of_one_crawl(filled: tuple[str, Facts]) -> None:
    url, facts = filled
    first = facts.crawls[0].id
    rows = json_rows("query", "clients", "--db", url, "--crawl", str(first))
    assert {r["client"]: [r["nodes"], r["refused"]] for r in rows} == _hello_counts(facts, "client_name", crawl=first)
    networks, _ = _network_counts(facts, crawl=first)
    assert {(r["network"], r["fork"]): r["nodes"] for r in json_rows("query", "networks", "--db", url, "--crawl", str(first))} == dict(networks)
    result = CliRunner().invoke(main, ["query", "clients", "--db", url, "--crawl", "99"])
    assert result.exit_code == 1 and "no crawl 99" in result.stderr


def test_crawl_history(filled: tuple[str, Facts]) -> None:
    url, facts = filled
    rows = json_rows("query", "crawls", "--db", url)
    assert [r["crawl"] for r in rows] == [c.id for c in reversed(facts.crawls)]  # newest first
    for row, crawl in zip(rows, reversed(facts.crawls)):
        ok = sum(1 for d in crawl.dials if d.outcome == "ok")
        assert (row["nodes"], row["edges"], row["dials_ok"], row["dials_failed"]) == (
            len(crawl.seen), len(crawl.edges), ok, len(crawl.dials) - ok
        )
        assert row["duration_s"] == (crawl.ended_at - crawl.started_at).total_seconds()
        assert isinstance(row["duration_s"], float) and row["ended"] == crawl.ended_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (row["answered"], row["dials"]) == (len(crawl.responders), len(crawl.dials))


def _matches(name: str, value: Any, fact: NodeFact, facts: Facts) -> bool:
    """One ``query nodes`` filter, as the README words it, on one node's facts: client fields from its latest
    attempt that received a Hello, chain fields from its latest that received a Status, dialable from its latest."""
    hello = facts.latest_dial(fact.node_id, having="client_id")
    status = facts.latest_dial(fact.node_id, having="network_id")
    network, fork = _network_and_fork(status)
    if name == "client":
        return hello is not None and hello.client_name == value
    if name == "version":
        return hello is not None and (hello.client_version or "").startswith(value)
    if name == "network":
        return bool(network == value)
    if name == "fork":
        return (fork or "").lower() == str(value).lower()
    if name == "ip":
        return ip_address(fact.ip) in ip_network(value)
    if name == "seen_since":
        return bool(fact.last_seen >= value)
    if name == "synced":
        return status is not None and status.synced is value
    assert name == "dialable"
    last = facts.latest_dial(fact.node_id)
    return last is not None and last.outcome == "ok"


def _expected_nodes(facts: Facts, **filters: Any) -> set[str]:
    return {
        node_id.hex()
        for node_id, fact in facts.nodes.items()
        if all(_matches(name, value, fact, facts) for name, value in filters.items())
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
        last = facts.latest_dial(node_id)
        hello = facts.latest_dial(node_id, having="client_id")
        status = facts.latest_dial(node_id, having="network_id")
        network, fork = _network_and_fork(status)
        assert row["enode"] == f"enode://{fact.pubkey.hex()}@{fact.ip}:{fact.tcp}"
        assert (row["ip"], row["udp_port"], row["tcp_port"]) == (fact.ip, str(fact.udp), str(fact.tcp))
        assert row["first_seen"] == fact.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["last_seen"] == fact.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        expected = {
            "last_outcome": last.outcome if last else "",
            "client_id": (hello.client_id if hello else None) or "",
            "client_name": (hello.client_name if hello else None) or "",
            "client_version": (hello.client_version if hello else None) or "",
            "os": (hello.client_os if hello else None) or "",
            "runtime": (hello.client_runtime if hello else None) or "",
            "capabilities": (hello.capabilities if hello else None) or "",
            "network_id": "" if status is None or status.network_id is None else str(status.network_id),
            "network": network or "",
            "fork_name": fork or "",
            "fork_hash": status.fork_hash.hex() if status is not None and status.fork_hash is not None else "",
            "synced": "" if status is None or status.synced is None else str(status.synced).lower(),
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
    assert summary["in_degree"] == [{"degree": k, "nodes": v} for k, v in sorted(Counter(in_deg[n] for n in nodes).items())]
    assert summary["out_degree"] == [{"degree": k, "nodes": v} for k, v in sorted(Counter(out_deg[n] for n in nodes).items())]
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


def test_summary_query_and_export_count_clients_alike(filled: tuple[str, Facts]) -> None:
    """The end-of-crawl client table, ``query clients`` and the CSV export's client column: one definition."""
    from rich.console import Console

    from ethcrawl.crawler.cli_crawl import _print_summary
    from ethcrawl.db.engine import open_database
    from ethcrawl.db.store import crawl_summary

    url, facts = filled
    too_many = [
        d for d in facts.dials
        if d.outcome == "too-many-peers" and d.client_id is not None and facts.latest_dial(d.node_id, having="client_id") is d
    ]
    assert too_many, "the fixture should hold a node whose latest Hello was followed by too-many-peers"
    everywhere = {r["client"]: (r["nodes"], r["refused"]) for r in json_rows("query", "clients", "--db", url)}
    exported = Counter(r["client_name"] for r in csv.DictReader(io.StringIO(run("export", "csv", "--db", url))) if r["client_name"])
    assert {k: n for k, (n, _) in everywhere.items()} == dict(exported)
    assert everywhere[str(too_many[0].client_name)][1] >= 1  # counted, and shown as refused
    db = open_database(url)
    try:
        for crawl in facts.crawls:
            with db.session() as session:
                summary = crawl_summary(session, crawl.id)
            one_crawl = {r["client"]: (r["nodes"], r["refused"]) for r in json_rows("query", "clients", "--db", url, "--crawl", str(crawl.id))}
            assert {c.value: (c.nodes, c.refused) for c in summary.clients} == one_crawl
            assert sum(n for n, _ in one_crawl.values()) == len(
                {d.node_id for d in crawl.dials if d.client_id is not None}
            )
            printed = io.StringIO()
            _print_summary(Console(file=printed, width=200), summary)
            cells = [[w for w in line.split() if w not in ("┃", "│")] for line in printed.getvalue().splitlines()]
            assert ["client", "nodes", "refused", "share"] in cells
            for client, (nodes, refused) in one_crawl.items():
                assert any(line[:3] == [client, str(nodes), str(refused)] for line in cells)
    finally:
        db.close()


# ---------------------------------------------------------------- output formats

OPTIONAL = type(None)
SHARE_COLUMNS: dict[str, type | tuple[type, ...]] = {"nodes": int, "share": float}
HELLO_COLUMNS: dict[str, type | tuple[type, ...]] = {"nodes": int, "refused": int, "share": float}
# Every query's columns and the JSON type of each; CSV and tables must print the same columns in this order.
QUERY_COLUMNS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "clients": {"client": str, **HELLO_COLUMNS},
    "versions": {"client": (str, OPTIONAL), "version": str, **HELLO_COLUMNS},
    "os": {"os": str, **HELLO_COLUMNS},
    "runtimes": {"runtime": str, **HELLO_COLUMNS},
    "outcomes": {"outcome": str, **SHARE_COLUMNS},
    "networks": {"network": str, "fork": str, **SHARE_COLUMNS},
    "forks": {"network": str, "readiness": str, **SHARE_COLUMNS},
    "layers": {"layer": str, "by": str, "value": (str, OPTIONAL), **SHARE_COLUMNS},
    "crawls": {
        "crawl": int, "started": str, "ended": (str, OPTIONAL), "duration_s": (float, OPTIONAL), "nodes": int,
        "answered": int, "edges": int, "dials": int, "dials_ok": int, "dials_failed": int,
    },
}  # fmt: skip
# query nodes: the typed columns (the rest are text or null).
NODE_TYPES: dict[str, type | tuple[type, ...]] = {
    "udp_port": (int, OPTIONAL), "tcp_port": (int, OPTIONAL), "enr_seq": (int, OPTIONAL), "network_id": (int, OPTIONAL),
    "fork_next": (int, OPTIONAL), "synced": (bool, OPTIONAL), "protocols": list, "capabilities": (list, OPTIONAL),
    "attnets_count": (int, OPTIONAL), "syncnets_count": (int, OPTIONAL), "asn": (int, OPTIONAL),
}  # fmt: skip


def _csv_text(value: Any) -> str:
    """What the README says CSV prints for a JSON value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def _assert_right_aligned(table: list[str], column: str) -> None:
    """Every cell of a numeric column ends where its header ends."""
    end = table[0].index(column) + len(column)
    for line in table[1:]:
        assert line[end - 1].isdigit() and (len(line) == end or line[end] == " "), (column, line)


def _check_formats(args: list[str], columns: dict[str, type | tuple[type, ...]]) -> list[dict[str, Any]]:
    rows = json_rows(*args)
    for row in rows:
        assert list(row) == list(columns)
        for name, kind in columns.items():
            assert isinstance(row[name], kind) and not (kind in (int, float) and isinstance(row[name], bool)), (name, row)
    as_csv = list(csv.reader(io.StringIO(run(*args, "--format", "csv"))))
    assert as_csv[0] == list(columns)
    assert as_csv[1:] == [[_csv_text(row[c]) for c in columns] for row in rows]
    table = run(*args, "--format", "table").splitlines()
    assert table[0].split() == list(columns) and len(table) == 1 + len(rows)
    assert "None" not in "\n".join(table) and "{" not in "\n".join(table)
    for name, kind in columns.items():
        if kind in (int, float) and rows:
            _assert_right_aligned(table, name)
    return rows


@pytest.mark.parametrize("query", sorted(QUERY_COLUMNS))
def test_every_format_of_every_query(filled: tuple[str, Facts], query: str) -> None:
    url, _ = filled
    rows = _check_formats(["query", query, "--db", url], QUERY_COLUMNS[query])
    assert rows
    if "share" in QUERY_COLUMNS[query]:
        assert all(0 <= r["share"] <= 100 for r in rows)  # a percentage, e.g. 10.2


def test_query_nodes_formats(filled: tuple[str, Facts]) -> None:
    from ethcrawl.crawler.cli_query import NODE_TABLE_COLUMNS

    url, facts = filled
    rows = json_rows("query", "nodes", "--db", url)
    assert len(rows) == len(facts.nodes) and all(list(r) == list(CSV_COLUMNS) for r in rows)
    for row in rows:
        for name, kind in NODE_TYPES.items():
            assert isinstance(row[name], kind), (name, row[name])
    assert any(r["synced"] is True for r in rows) and any(r["enr_seq"] is None for r in rows)
    as_csv = list(csv.reader(io.StringIO(run("query", "nodes", "--db", url, "--format", "csv"))))
    assert as_csv[0] == list(CSV_COLUMNS)
    assert as_csv[1:] == [[_csv_text(r[c]) for c in CSV_COLUMNS] for r in rows]
    table = run("query", "nodes", "--db", url, "--format", "table").splitlines()
    assert table[0].split() == list(NODE_TABLE_COLUMNS) and len(table) == 1 + len(rows)
    assert max(map(len, table)) <= 130 and "None" not in "\n".join(table)
    assert sorted(line.split()[0] for line in table[1:]) == sorted(r["node_id"][:16] for r in rows)
    _assert_right_aligned(table, "tcp_port")


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_topology_as_rows(filled: tuple[str, Facts], fmt: str) -> None:
    from ethcrawl.crawler.cli_query import TOPOLOGY_COLUMNS

    url, _ = filled
    (summary,) = json_rows("query", "topology", "--db", url)
    out = run("query", "topology", "--db", url, "--format", fmt)
    lines = list(csv.reader(io.StringIO(out))) if fmt == "csv" else [line.split() for line in out.splitlines()]
    assert lines[0] == list(TOPOLOGY_COLUMNS)
    body = lines[1:]
    scalars = {k: v for k, v in summary.items() if not isinstance(v, list) or k == "discovery"}
    want = [[k, "", _csv_text(v)] for k, v in scalars.items()]
    for name in ("in_degree", "out_degree"):
        want += [[name, str(d["degree"]), str(d["nodes"])] for d in summary[name]]
    if fmt == "table":
        want = [[cell for cell in row if cell] for row in want]  # a table's empty cell is blank space
    assert body == want
    assert "{" not in out and "None" not in out


@pytest.mark.parametrize("query", [*sorted(QUERY_COLUMNS), "nodes"])
def test_an_empty_result_is_a_header(tmp_path: Any, query: str) -> None:
    from ethcrawl.crawler.cli_query import NODE_TABLE_COLUMNS
    from ethcrawl.db.engine import open_database

    path = str(tmp_path / "empty.db")
    open_database(path).close()
    columns = list(QUERY_COLUMNS[query]) if query != "nodes" else list(CSV_COLUMNS)
    assert run("query", query, "--db", path, "--format", "json") == ""
    assert list(csv.reader(io.StringIO(run("query", query, "--db", path, "--format", "csv")))) == [columns]
    table = run("query", query, "--db", path, "--format", "table").splitlines()
    assert [line.split() for line in table] == [columns if query != "nodes" else list(NODE_TABLE_COLUMNS)]


def test_graphml_nodes_carry_their_attributes(filled: tuple[str, Facts], tmp_path: Any) -> None:
    import networkx as nx

    from ethcrawl.crawler.cli_export import GRAPHML_NODE_ATTRIBUTES

    url, facts = filled
    path = tmp_path / "dht.graphml"
    run("export", "edges", "--db", url, "--format", "graphml", "--out", str(path))
    graph = nx.read_graphml(path)
    crawl = facts.crawls[-1]
    assert {(a, b) for a, b in graph.edges} == {(a.hex(), b.hex()) for a, b in crawl.edges}
    for key, attributes in graph.nodes(data=True):
        fact = facts.nodes[bytes.fromhex(key)]
        hello = facts.latest_dial(fact.node_id, having="client_id")
        status = facts.latest_dial(fact.node_id, having="network_id")
        network, fork = _network_and_fork(status)
        want = {
            "ip": fact.ip,
            "first_seen": fact.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "last_seen": fact.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "client_name": hello.client_name if hello else None,
            "client_version": hello.client_version if hello else None,
            "network": network,
            "fork_name": fork,
        }
        # Unknown values are left out (GraphML has no null); the fixture's nodes have no ENR, layer or protocols.
        assert attributes == {k: v for k, v in want.items() if v is not None}, key
        assert set(attributes) <= set(GRAPHML_NODE_ATTRIBUTES)
    assert any("client_name" in a for _, a in graph.nodes(data=True))
    assert any("client_name" not in a for _, a in graph.nodes(data=True))


def test_a_node_returning_itself_is_no_edge(tmp_path: Any) -> None:
    from ethcrawl.db.engine import open_database
    from ethcrawl.db.records import CrawlFinished, CrawlStarted, EdgeSeen, NodeSeen
    from ethcrawl.db.store import begin_crawl, crawl_summary, write_records

    path = str(tmp_path / "loop.db")
    db = open_database(path)
    ids = [bytes([i]) * 32 for i in (1, 2)]
    with db.session() as session, session.begin():
        crawl = begin_crawl(session, CrawlStarted(started_at=T0))
        write_records(session, [
            *(NodeSeen(crawl_id=crawl, node_id=n, pubkey=n * 2, ip="10.0.0.1", udp=1, tcp=None, seen_at=T0, source="bootnode", responded=True) for n in ids),
            EdgeSeen(crawl_id=crawl, from_id=ids[0], to_id=ids[0], seen_at=T0),
            EdgeSeen(crawl_id=crawl, from_id=ids[0], to_id=ids[1], seen_at=T0),
            CrawlFinished(crawl_id=crawl, ended_at=T0),
        ])  # fmt: skip
    with db.session() as session:
        assert crawl_summary(session, crawl).edges == 1
    db.close()
    assert [r["edges"] for r in json_rows("query", "crawls", "--db", path)] == [1]
    (topology,) = json_rows("query", "topology", "--db", path)
    assert topology["edges"] == 1
    assert len(list(csv.reader(io.StringIO(run("export", "edges", "--db", path))))) == 1 + 1
