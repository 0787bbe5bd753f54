"""Questions about time against the hand-written history of tests/db/history_db.py, on SQLite and PostgreSQL.

Every expected value below was worked out by hand from the story in history_db's docstring.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from ethcrawl.db.engine import open_database
from ethcrawl.db.history import churn, uptimes
from ethcrawl.db.readiness import named_forks, next_forks, readiness
from ethcrawl.db.scope import CrawlScope
from ethcrawl.wire.chains import Chain, Fork
from fixture_db import database_url
from history_db import OSAKA_MAINNET, History, fill_history

__all__ = ["database_url"]  # the fixture, imported so that pytest finds it here


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def json_rows(*args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run(*args, "--format", "json").splitlines()]


@pytest.fixture
def story(database_url: str) -> tuple[str, History]:
    return database_url, fill_history(database_url)


def _triples(rows: list[dict[str, Any]]) -> list[tuple[Any, str, int, float]]:
    return [(r["period"], r["value"], r["nodes"], r["share"]) for r in rows]


# ---------------------------------------------------------------- scope of the share queries


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ([], {"geth": 2, "reth": 1, "nethermind": 1}),  # A's latest Hello is geth, E geth, D reth, F nethermind
        (["--since", "2026-11-03"], {"geth": 2, "reth": 1, "nethermind": 1}),  # crawls 3 and 4
        (["--until", "2026-11-03"], {"geth": 1}),  # crawls 1 and 2: A only
        (["--since", "2026-11-02T12:00:00Z", "--until", "2026-11-03T10:00:00Z"], {"geth": 1}),  # crawl 2 only
        (["--crawl", "3"], {"geth": 1, "reth": 1}),
        (["--crawl", "3", "--since", "2026-11-04"], {}),  # crawl 3 is not in that window
    ],
)
def test_share_queries_take_a_window(story: tuple[str, History], args: list[str], want: dict[str, int]) -> None:
    url, _ = story
    assert {r["client"]: r["nodes"] for r in json_rows("query", "clients", "--db", url, *args)} == want


def test_every_share_query_takes_the_scope(story: tuple[str, History]) -> None:
    url, _ = story
    window = ["--until", "2026-11-03"]  # crawls 1 and 2: A ok geth 1.14.0 mainnet Prague next 0; B timeout
    assert {r["version"]: r["nodes"] for r in json_rows("query", "versions", "--db", url, *window)} == {"1.14.0": 1}
    assert {r["outcome"]: r["nodes"] for r in json_rows("query", "outcomes", "--db", url, *window)} == {"ok": 1, "timeout": 1}
    assert {(r["network"], r["fork"]): r["nodes"] for r in json_rows("query", "networks", "--db", url, *window)} == {("mainnet", "Prague"): 1}
    assert {r["readiness"]: r["nodes"] for r in json_rows("query", "forks", "--db", url, *window)} == {"stale": 1}
    assert [r["os"] for r in json_rows("query", "os", "--db", url, *window)] == ["linux"]
    assert [r["runtime"] for r in json_rows("query", "runtimes", "--db", url, *window)] == ["go1.23"]
    # Layers: the nodes sighted in crawl 1 are A (an eth ENR: execution), B (an ENR without eth: other) and C.
    layers = {r["layer"]: r["nodes"] for r in json_rows("query", "layers", "--db", url, "--crawl", "1") if r["by"] == "all"}
    assert layers == {"execution": 1, "other": 1, "unknown": 1}


def test_exports_take_the_scope(story: tuple[str, History]) -> None:
    url, h = story
    rows = {r["node_id"]: r for r in csv.DictReader(io.StringIO(run("export", "csv", "--db", url, "--crawl", "4")))}
    # Sighted or dialed in crawl 4 and stored: A, B, D, F (E only dialed us, and is no stored node).
    assert {h.letter(n) for n in rows} == {"A", "B", "D", "F"}
    assert (rows[h.ids["D"].hex()]["client_version"], rows[h.ids["A"].hex()]["client_version"]) == ("1.2.0", "")
    listed = json.loads(run("export", "nodes-json", "--db", url, "--crawl", "1"))
    assert {h.letter(n) for n in listed} == {"A", "B"}  # the two with an ENR
    listed = json.loads(run("export", "nodes-json", "--db", url, "--since", "2026-11-03"))
    assert {h.letter(n) for n in listed} == {"A", "B"}  # A in crawls 3 and 4, B in crawl 4
    listed = json.loads(run("export", "nodes-json", "--db", url, "--crawl", "3"))
    assert {h.letter(n) for n in listed} == {"A"}


# ---------------------------------------------------------------- history


def test_history_per_crawl_day_and_week(story: tuple[str, History]) -> None:
    url, _ = story
    assert _triples(json_rows("query", "history", "clients", "--db", url)) == [
        (1, "geth", 1, 100.0), (2, "geth", 1, 100.0),
        (3, "geth", 1, 50.0), (3, "reth", 1, 50.0),
        (4, "geth", 1, 33.3), (4, "nethermind", 1, 33.3), (4, "reth", 1, 33.3),
    ]  # fmt: skip
    assert _triples(json_rows("query", "history", "clients", "--every", "day", "--db", url)) == [
        ("2026-11-02", "geth", 1, 100.0),
        ("2026-11-03", "geth", 1, 50.0), ("2026-11-03", "reth", 1, 50.0),
        ("2026-11-10", "geth", 1, 33.3), ("2026-11-10", "nethermind", 1, 33.3), ("2026-11-10", "reth", 1, 33.3),
    ]  # fmt: skip
    # Weeks from Monday: crawls 1-3 (A's latest Hello there is 1.15.0, D's 1.1.0), then crawl 4.
    assert _triples(json_rows("query", "history", "versions", "--every", "week", "--db", url, "--until", "2026-11-09")) == [
        ("2026-11-02", "geth 1.15.0", 1, 50.0), ("2026-11-02", "reth 1.1.0", 1, 50.0),
    ]  # fmt: skip
    assert _triples(json_rows("query", "history", "outcomes", "--db", url, "--crawl", "1")) == [
        (1, "ok", 1, 50.0), (1, "timeout", 1, 50.0),
    ]  # fmt: skip
    # forks: shares within the network; crawl 4 has D (Prague, next 0: stale) and E (BPO2: ready) on mainnet,
    # F on sepolia (ready).
    assert _triples(json_rows("query", "history", "forks", "--db", url, "--since", "2026-11-10")) == [
        (4, "mainnet ready", 1, 50.0), (4, "mainnet stale", 1, 50.0), (4, "sepolia ready", 1, 100.0),
    ]  # fmt: skip


# How each share query's JSON row names the value history gives as one text.
VALUE_OF = {
    "clients": lambda r: r["client"], "os": lambda r: r["os"], "runtimes": lambda r: r["runtime"],
    "versions": lambda r: f"{r['client']} {r['version']}", "networks": lambda r: f"{r['network']} {r['fork']}",
    "forks": lambda r: f"{r['network']} {r['readiness']}", "layers": lambda r: r["layer"], "outcomes": lambda r: r["outcome"],
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(VALUE_OF))
def test_history_of_every_kind_is_its_share_query_per_crawl(story: tuple[str, History], kind: str) -> None:
    """A period's counts are the share query's over that period's crawls: one definition."""
    url, _ = story
    history = json_rows("query", "history", kind, "--db", url)
    assert {r["period"] for r in history} == {1, 2, 3, 4}
    for crawl in range(1, 5):
        rows = json_rows("query", kind, "--db", url, "--crawl", str(crawl))
        if kind == "layers":
            rows = [r for r in rows if r["by"] == "all"]
        want = {VALUE_OF[kind](r): (r["nodes"], r["share"]) for r in rows}
        assert {r["value"]: (r["nodes"], r["share"]) for r in history if r["period"] == crawl} == want


def test_history_of_networks(story: tuple[str, History]) -> None:
    url, _ = story
    got = {(r["value"], r["nodes"], r["share"]) for r in json_rows("query", "history", "networks", "--db", url, "--crawl", "4")}
    assert got == {("mainnet Prague", 1, 33.3), ("mainnet BPO2", 1, 33.3), ("sepolia Prague", 1, 33.3)}


# ---------------------------------------------------------------- churn


def _changes(h: History, rows: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str | None]]:
    return [(h.letter(r["node_id"]), r["change"], r["client_name"], r["client_version"]) for r in rows]


def test_churn_of_the_latest_walk(story: tuple[str, History]) -> None:
    url, h = story
    rows = json_rows("query", "churn", "--db", url)  # crawl 4 against crawl 3
    order = {"new": 0, "gone": 1, "returned": 2, "upgraded": 3}
    want = [
        ("E", "new", "geth", "1.15.0"), ("F", "new", "nethermind", "1.30.2"),
        ("A", "gone", "geth", "1.15.0"), ("C", "gone", None, None),
        ("B", "returned", None, None),
        ("D", "upgraded", "reth", "1.2.0"),
    ]  # fmt: skip
    assert _changes(h, rows) == sorted(want, key=lambda w: (order[w[1]], h.ids[w[0]]))
    table = run("query", "churn", "--db", url).splitlines()
    assert "crawl 4 against 3:" in table
    counts = dict(line.split() for line in table[table.index("change    nodes") + 1 :])
    assert counts == {"new": "2", "gone": "2", "returned": "1", "upgraded": "1"}


@pytest.mark.parametrize(
    ("args", "want"),
    [
        # Against the walk before crawl 3 (crawl 1; crawl 2 is a revalidation): C and D never answered before.
        (["--crawl", "3"], [("C", "new", None, None), ("D", "new", "reth", "1.1.0"), ("B", "gone", None, None),
                            ("A", "upgraded", "geth", "1.15.0")]),
        (["--crawl", "3", "--against", "2"], [("C", "new", None, None), ("D", "new", "reth", "1.1.0"),
                                              ("A", "upgraded", "geth", "1.15.0")]),
        (["--crawl", "2"], [("B", "gone", None, None)]),  # a revalidation pass against the walk before it
        # Against an older walk: D first answered in crawl 3, after crawl 1, so it is new since 1, not returned.
        (["--crawl", "4", "--against", "1"], [("D", "new", "reth", "1.2.0"), ("E", "new", "geth", "1.15.0"),
                                              ("F", "new", "nethermind", "1.30.2"), ("A", "gone", "geth", "1.14.0")]),
    ],
)  # fmt: skip
def test_churn_between_chosen_crawls(story: tuple[str, History], args: list[str], want: list[tuple[str, str, Any, Any]]) -> None:
    url, h = story
    got = _changes(h, json_rows("query", "churn", "--db", url, *args))
    assert sorted(got) == sorted(want)
    assert [g[1] for g in got] == sorted((g[1] for g in got), key=["new", "gone", "returned", "upgraded"].index)


def test_churn_refuses_what_it_cannot_compare(story: tuple[str, History]) -> None:
    url, _ = story
    for args, needle in (
        (["--crawl", "1"], "no walk before crawl 1"),
        (["--crawl", "3", "--against", "4"], "not a crawl before 3"),
        (["--crawl", "9"], "no crawl 9"),
        (["--against", "9"], "no crawl 9"),
    ):
        result = CliRunner().invoke(main, ["query", "churn", "--db", url, *args])
        assert result.exit_code == 1 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- uptime


def test_uptime_per_node_and_distribution(story: tuple[str, History]) -> None:
    url, h = story
    rows = json_rows("query", "uptime", "--db", url)
    got = [(h.letter(r["node_id"]), r["checks"], r["answered"], r["uptime"], r["first_seen"], r["last_seen"]) for r in rows]
    tied = sorted(["E", "F"], key=lambda k: h.ids[k])
    by_letter = {
        "D": (2, 2, 1.0, "2026-11-03T10:00:04Z", "2026-11-10T10:01:04Z"),
        "E": (1, 1, 1.0, "2026-11-10T10:02:00Z", "2026-11-10T10:02:00Z"),
        "F": (1, 1, 1.0, "2026-11-10T10:00:06Z", "2026-11-10T10:01:06Z"),
        "A": (4, 3, 0.75, "2026-11-02T10:00:01Z", "2026-11-03T10:01:00Z"),
        "B": (3, 2, 0.6667, "2026-11-02T10:00:02Z", "2026-11-10T10:00:02Z"),
        "C": (2, 1, 0.5, "2026-11-03T10:00:03Z", "2026-11-03T10:00:03Z"),
    }
    assert got == [(k, *by_letter[k]) for k in ["D", *tied, "A", "B", "C"]]
    assert all(isinstance(r["uptime"], float) for r in rows)
    buckets = {r["uptime"]: (r["nodes"], r["share"]) for r in json_rows("query", "uptime", "--distribution", "--db", url)}
    assert len(buckets) == 10 and sum(n for n, _ in buckets.values()) == 6
    assert {b: v for b, v in buckets.items() if v[0]} == {
        "0.5-0.6": (1, 16.7), "0.6-0.7": (1, 16.7), "0.7-0.8": (1, 16.7), "0.9-1.0": (3, 50.0),
    }


def test_uptime_in_a_window(story: tuple[str, History]) -> None:
    url, h = story
    rows = json_rows("query", "uptime", "--db", url, "--since", "2026-11-03")  # crawls 3 and 4
    got = {h.letter(r["node_id"]): (r["checks"], r["answered"]) for r in rows}
    assert got == {"A": (2, 1), "B": (1, 1), "C": (1, 1), "D": (2, 2), "E": (1, 1), "F": (1, 1)}
    never = json_rows("query", "uptime", "--db", url, "--crawl", "2")
    assert {h.letter(r["node_id"]): (r["answered"], r["first_seen"]) for r in never} == {
        "A": (1, "2026-11-02T14:00:01Z"), "B": (0, None),
    }


# ---------------------------------------------------------------- readiness


def test_readiness_for_the_next_fork(story: tuple[str, History]) -> None:
    url, h = story
    # On 2025-11-01 mainnet's next fork is Osaka (sepolia and holesky had passed theirs; hoodi's BPO1 has no node).
    rows = json_rows("query", "readiness", "--db", url, "--at", "2025-11-01")
    assert [(r["network"], r["fork"], r["client"], r["version"], r["nodes"], r["ready"], r["share_ready"]) for r in rows] == [
        ("mainnet", "Osaka", "geth", "1.15.0", 2, 2, 100.0),  # A announces Osaka's time, E runs BPO2 (past it)
        ("mainnet", "Osaka", "reth", "1.2.0", 1, 0, 0.0),  # D: Prague, next 0
    ]
    rows = json_rows("query", "readiness", "--db", url, "--fork", "osaka")
    assert {(r["network"], r["client"], r["nodes"], r["ready"]) for r in rows} == {
        ("mainnet", "geth", 2, 2), ("mainnet", "reth", 1, 0), ("sepolia", "nethermind", 1, 1),
    }
    lagging = json_rows("query", "readiness", "--db", url, "--fork", "Osaka", "--not-ready")
    assert [(h.letter(r["node_id"]), r["network"], r["fork"], r["client"], r["version"], r["fork_hash"], r["fork_next"]) for r in lagging] == [
        ("D", "mainnet", "Osaka", "reth", "1.2.0", "c376cf8b", 0)
    ]
    # In crawl 1 A announced no next fork yet.
    rows = json_rows("query", "readiness", "--db", url, "--fork", "osaka", "--crawl", "1")
    assert [(r["version"], r["nodes"], r["ready"], r["share_ready"]) for r in rows] == [("1.14.0", 1, 0, 0.0)]
    result = CliRunner().invoke(main, ["query", "readiness", "--db", url, "--at", "2030-01-01"])
    assert result.exit_code == 1 and "no network has a fork scheduled after 2030-01-01T00:00:00Z" in result.stderr


def test_readiness_of_a_devnet_chain(story: tuple[str, History]) -> None:
    """A chain outside the built-in tables (a devnet's) with mainnet's genesis and Prague, then a fork of its own."""
    url, _ = story
    db = open_database(url)
    try:
        from ethcrawl.wire.chains import CHAINS

        mainnet = CHAINS["mainnet"]
        forks = tuple(f for f in mainnet.forks if f.name != "Osaka" and not f.name.startswith("BPO")) + (
            Fork(name="Devnet1", time=OSAKA_MAINNET),
        )
        devnet = Chain(name="devnet", chain_id=1, network_id=1, genesis_hash=mainnet.genesis_hash, forks=forks)
        chains = {"devnet": devnet}
        targets = next_forks(datetime(2025, 11, 1, tzinfo=UTC), chains)
        assert [(t.network, t.fork, t.at) for t in targets] == [("devnet", "Devnet1", OSAKA_MAINNET)]
        assert named_forks("devnet1", chains) == targets
        with db.session() as session:
            rows = readiness(session, targets, CrawlScope(), chains)
        # A (Prague, next = Devnet1's time) is ready, D (next 0) is not; E's BPO2 hash is no devnet epoch.
        assert [(r.client, r.nodes, r.ready) for r in rows] == [("geth", 1, 1), ("reth", 1, 0)]
    finally:
        db.close()


# ---------------------------------------------------------------- one node's story


def test_node_story(story: tuple[str, History]) -> None:
    url, h = story
    a = h.ids["A"].hex()
    data = json.loads(run("query", "node", a[:6], "--db", url, "--format", "json"))
    assert data["node_id"] == a and data["stored"] is True and data["ip"] == "10.0.0.2"
    assert [(s["crawl"], s["kind"], s["answered"], s["ip"], s["enr_seq"]) for s in data["sightings"]] == [
        (1, "crawl", True, "10.0.0.1", 1), (2, "revalidation", True, "10.0.0.1", None),
        (3, "crawl", True, "10.0.0.2", 2), (4, "crawl", False, "10.0.0.2", None),
    ]  # fmt: skip
    assert [(v["seq"], v["crawl"], v["changes"]) for v in data["enr_versions"]] == [
        (1, 1, {}),
        (2, 3, {
            "eth": [[{"fork_hash": "c376cf8b", "fork_next": 0}], [{"fork_hash": "c376cf8b", "fork_next": OSAKA_MAINNET}]],
            "ip": ["10.0.0.1", "10.0.0.2"],
            "tcp": [30303, 30304],
        }),
    ]  # fmt: skip
    assert [(c["crawl"], c["client_version"]) for c in data["clients"]] == [(1, "1.14.0"), (3, "1.15.0")]
    assert [(d["crawl"], d["outcome"], d["fork_next"]) for d in data["dials"]] == [(1, "ok", 0), (2, "ok", 0), (3, "ok", OSAKA_MAINNET)]
    assert [(r["crawl"], sorted(h.letter(n) for n in r["nodes"])) for r in data["returned_by"]] == [(1, ["B"]), (3, ["C", "D"])]
    table = run("query", "node", a, "--db", url)
    for heading in ("sightings (4)", "ENR versions (2)", "client versions (2)", "dials (3)", "returned by (2)"):
        assert heading in table
    assert 'ip: "10.0.0.1" -> "10.0.0.2"' in table and "tcp: 30303 -> 30304" in table
    # E dialed us and was never sighted: known from its attempt alone.
    e = json.loads(run("query", "node", h.ids["E"].hex(), "--db", url, "--format", "json"))
    assert (e["stored"], e["sightings"], [d["direction"] for d in e["dials"]]) == (False, [], ["inbound"])


def test_node_ids_that_name_nothing_or_several(story: tuple[str, History]) -> None:
    url, h = story
    prefixes = [n.hex() for n in h.ids.values()]
    shared = next(p[:1] for p in prefixes if sum(q.startswith(p[:1]) for q in prefixes) > 1)
    missing = next(c for c in "0123456789abcdef" if not any(p.startswith(c) for p in prefixes))
    for arg, needle in ((shared, "names several nodes"), (missing, f"holds no node {missing}"), ("xyz", "not a node id"), ("0" * 65, "not a node id")):
        result = CliRunner().invoke(main, ["query", "node", arg, "--db", url])
        assert result.exit_code == 1 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_db_functions_agree_with_the_cli(story: tuple[str, History]) -> None:
    url, h = story
    db = open_database(url)
    try:
        with db.session() as session:
            assert churn(session).counts() == [("new", 2), ("gone", 2), ("returned", 1), ("upgraded", 1)]
            assert {h.letter(u.node_id): u.uptime for u in uptimes(session, CrawlScope(crawl_id=h.crawls[1]))} == {
                "A": 1.0, "B": 1.0, "C": 0.0,  # B answered discovery in crawl 1; its dial timed out
            }
    finally:
        db.close()


def test_every_history_kind_has_its_count() -> None:
    from ethcrawl.db.history import _COUNTS, HISTORY_KINDS

    assert tuple(_COUNTS) == HISTORY_KINDS
