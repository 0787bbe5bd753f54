"""Issue 14 end to end: a monitor runs over a devnet that churns on a script (crawler.devnet_churn), and the time
queries -- churn, uptime, history, readiness, one node's story -- answer exactly what the script made.

Every expected value is worked out from the script and its ``expectations`` (which nodes answered each cycle,
with which client id, record seq and fork ``next``) with the README's definitions ("What the numbers mean"), never
read back through the code under test.  Addresses come from the devnet's own records, as each cycle met them.
Churn, uptime, history and the node story are asked through the CLI (``--format json``), as a user asks them.

The monitor runs once for the module (real sockets on loopback, so no MockClock: short intervals, bounded run).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from ethcrawl.crawler.crawl import CrawlOptions
from ethcrawl.crawler.devnet_churn import (
    CHURN_CYCLE_KINDS, NEW_NEXT, ChurnScript, CycleExpectation, default_script, expectations, node_ids,
    open_churn_devnet,
)  # fmt: skip
from ethcrawl.crawler.monitor import CycleResult, MonitorConfig, run_monitor
from ethcrawl.db.engine import open_database
from ethcrawl.db.models import Crawl
from ethcrawl.db.readiness import next_forks, not_ready, readiness
from ethcrawl.db.schedule import Backoff
from ethcrawl.db.scope import EVERY_CRAWL, CrawlScope
from ethcrawl.wire.chains import CHAINS, Chain, Fork
from ethcrawl.wire.enr import ENR
from sqlalchemy import select

DEADLINE = 120  # s for the whole run: five cycles of ~8 s each at most, and the devnet
INTERVAL = 8.0  # s between walks: one pass falls between two (nodes due REVALIDATE after their walk)
REVALIDATE = 4.0  # s
NEVER = 1000.0  # s: a node that failed is not checked again within the run
CYCLES = len(CHURN_CYCLE_KINDS)
DEVNET_FORK = "Churn"  # the fork the script's fork-next changes announce (at NEW_NEXT), in the devnet's chain
CHANGE_ORDER = ("new", "gone", "returned", "upgraded")  # README: churn rows come in this order


@dataclass(frozen=True, slots=True)
class Monitored:
    db: str
    script: ChurnScript
    expected: list[CycleExpectation]
    crawls: list[int]  # the crawl id of cycle k
    records: list[dict[int, ENR]]  # each node's record (the devnet's own) while cycle k ran, by index
    head_time: int  # the devnet's head block time: which forks its nodes have passed


async def _monitor(path: Path) -> Monitored:
    script = default_script()
    expected = expectations(script)
    db = open_database(path)
    config = MonitorConfig(
        interval=INTERVAL, cycles=3, pass_window=REVALIDATE, min_gap=0.1,
        backoff=Backoff(answered=REVALIDATE, first_failure=NEVER, repeated_failure=NEVER, given_up=NEVER),
    )  # fmt: skip
    results: list[CycleResult] = []
    records: list[dict[int, ENR]] = []
    with trio.fail_after(DEADLINE):
        async with open_churn_devnet(script) as churn:
            options = CrawlOptions(
                seeds=(churn.net.bootnode.enr,), listen_host="127.0.0.1", response_timeout=0.3,
                v5_response_timeout=0.3, dial_timeout=2.0,
            )  # fmt: skip

            async def after(result: CycleResult) -> None:
                results.append(result)
                records.append({node.spec.index: node.enr for node in churn.net.nodes})
                await churn.after_cycle(len(results) - 1)

            ran = await run_monitor(db, options, config, handle_signals=False, on_cycle=after)
            head_time = churn.head.header.timestamp
    db.close()
    assert ran == CYCLES and [r.kind for r in results] == [e.kind for e in expected]
    return Monitored(
        db=str(path), script=script, expected=expected, crawls=[r.crawl_id for r in results], records=records,
        head_time=head_time,
    )  # fmt: skip


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    return trio.run(_monitor, tmp_path_factory.mktemp("monitor") / "monitor.db")


def json_rows(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# ---------------------------------------------------------------- what the script made, by the README's definitions


def client_of(client_id: str) -> tuple[str, str]:
    """(name, version) as the devnet's client ids spell them: "Geth/[identity/]v1.16.3-stable-..." is
    ("geth", "1.16.3")."""
    match = re.search(r"/v(\d+\.\d+\.\d+)", client_id)
    assert match is not None, client_id
    return client_id.split("/")[0].lower(), match.group(1)


def present(m: Monitored, k: int) -> frozenset[bytes]:
    """Nodes present in cycle k: the ones that answered (in the devnet a node answers discovery exactly when
    a dial of it in that cycle gets its Hello; test_monitor_churn holds the stored rows to that)."""
    return m.expected[k].answered


def checked(m: Monitored, k: int) -> frozenset[bytes]:
    """Nodes cycle k checked: a pass its due nodes; a walk every node in the tables (all but the hidden ones not
    joined yet; a node that left stays in its peers' tables, so a walk still sights it)."""
    if (due := m.expected[k].checked) is not None:
        return due
    joined = {c.node for step in m.script.steps[:k] for c in step if c.what == "join"}
    ids = node_ids(m.script)
    return frozenset(ids[i] for i in range(m.script.nodes) if i not in m.script.hidden or i in joined)


def client_up_to(m: Monitored, node: bytes, k: int) -> tuple[str, str]:
    """The client of ``node``'s latest Hello in cycles up to k."""
    for want in reversed(m.expected[: k + 1]):
        if node in want.client_ids:
            return client_of(want.client_ids[node])
    raise AssertionError(f"{node.hex()} sent no Hello up to cycle {k}")


def expected_churn(m: Monitored, n: int, against: int) -> list[tuple[str, str, str, str]]:
    """README "churn" of cycle n against an earlier one: (node, change, client name, client version)."""
    now, then = present(m, n), present(m, against)
    before = frozenset[bytes]().union(*(present(m, k) for k in range(against)))
    rows = [(node, "returned" if node in before else "new", *client_up_to(m, node, n)) for node in now - then]
    rows += [(node, "gone", *client_up_to(m, node, against)) for node in then - now]
    rows += [
        (node, "upgraded", *client_up_to(m, node, n))
        for node in now & then
        if client_up_to(m, node, n) != client_up_to(m, node, against)
    ]
    return sorted((node.hex(), change, name, version) for node, change, name, version in rows)


def changes_of(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return sorted((r["node_id"], r["change"], r["client_name"], r["client_version"]) for r in rows)


# ---------------------------------------------------------------- churn


PAIRS = [(n, against) for n in range(CYCLES) for against in range(n)]


@pytest.mark.parametrize(("n", "against"), PAIRS, ids=[f"cycle{n}-against{a}" for n, a in PAIRS])
def test_churn_between_two_crawls_is_what_the_script_made(monitored: Monitored, n: int, against: int) -> None:
    m = monitored
    rows = json_rows("query", "churn", "--db", m.db, "--crawl", str(m.crawls[n]), "--against", str(m.crawls[against]))
    assert changes_of(rows) == expected_churn(m, n, against)
    assert [r["change"] for r in rows] == sorted((r["change"] for r in rows), key=CHANGE_ORDER.index)


def test_churn_defaults_to_the_latest_walk_against_the_one_before(monitored: Monitored) -> None:
    m = monitored
    walks = [k for k, kind in enumerate(m.script.kinds) if kind == "crawl"]
    assert changes_of(json_rows("query", "churn", "--db", m.db)) == expected_churn(m, walks[-1], walks[-2])
    rows = json_rows("query", "churn", "--db", m.db, "--crawl", str(m.crawls[walks[-2]]))
    assert changes_of(rows) == expected_churn(m, walks[-2], walks[-3])


def test_the_script_makes_every_change_the_queries_are_asked_about(monitored: Monitored) -> None:
    """Not vacuous: consecutive walks show every kind of churn; against an older walk a node that joined in
    between is new (not returned); some node misses checks; some walk sees a node announce the devnet fork."""
    m = monitored
    walks = [k for k, kind in enumerate(m.script.kinds) if kind == "crawl"]
    consecutive = {row[1] for a, b in zip(walks, walks[1:]) for row in expected_churn(m, b, a)}
    assert consecutive == set(CHANGE_ORDER)
    ids = node_ids(m.script)
    joined = {ids[c.node].hex() for c in m.script.steps[walks[0]] + m.script.steps[walks[0] + 1] if c.what == "join"}
    assert joined and joined <= {row[0] for row in expected_churn(m, walks[-1], walks[0]) if row[1] == "new"}
    assert any(present(m, k) != checked(m, k) for k in range(CYCLES))
    assert any(NEW_NEXT in m.expected[k].fork_next.values() for k in walks)


# ---------------------------------------------------------------- uptime


def test_uptime_counts_every_walk_and_pass_that_checked_each_node(monitored: Monitored) -> None:
    m = monitored
    want = {}
    for node in frozenset[bytes]().union(*(checked(m, k) for k in range(CYCLES))):
        checks = sum(node in checked(m, k) for k in range(CYCLES))
        answered = sum(node in present(m, k) for k in range(CYCLES))
        want[node.hex()] = (checks, answered, round(answered / checks, 4))
    rows = json_rows("query", "uptime", "--db", m.db)
    assert {r["node_id"]: (r["checks"], r["answered"], r["uptime"]) for r in rows} == want
    # first and last seen: within the first and the last crawl in which the node was present
    db = open_database(m.db)
    with db.session() as session:
        spans = {c.id: (c.started_at, c.ended_at) for c in session.scalars(select(Crawl))}
    db.close()
    for row in rows:
        node = bytes.fromhex(row["node_id"])
        cycles = [k for k in range(CYCLES) if node in present(m, k)]
        for at, k in ((row["first_seen"], cycles[0]), (row["last_seen"], cycles[-1])):
            start, end = spans[m.crawls[k]]
            assert start <= _when(at) <= end, (row["node_id"], k)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("k", range(CYCLES))
def test_uptime_of_one_crawl_is_the_nodes_it_checked(monitored: Monitored, k: int) -> None:
    m = monitored
    rows = json_rows("query", "uptime", "--db", m.db, "--crawl", str(m.crawls[k]))
    want = {node.hex(): (1, int(node in present(m, k))) for node in checked(m, k)}
    assert {r["node_id"]: (r["checks"], r["answered"]) for r in rows} == want


# ---------------------------------------------------------------- history


@pytest.mark.parametrize("kind", ["clients", "versions"])
def test_history_per_crawl_is_the_client_versions_the_script_set(monitored: Monitored, kind: str) -> None:
    m = monitored
    want = []
    for k, cycle in enumerate(m.expected):
        clients = [client_of(c) for c in cycle.client_ids.values()]
        counts = Counter(name if kind == "clients" else f"{name} {version}" for name, version in clients)
        total = sum(counts.values())
        want += [(m.crawls[k], value, n, round(100 * n / total, 1)) for value, n in counts.items()]
    rows = json_rows("query", "history", kind, "--db", m.db, "--every", "crawl")
    assert sorted((r["period"], r["value"], r["nodes"], r["share"]) for r in rows) == sorted(want)
    assert [r["period"] for r in rows] == sorted(r["period"] for r in rows)


# ---------------------------------------------------------------- readiness


def devnet_chain(m: Monitored) -> Chain:
    """The devnet's chain as a node that switched its fork ``next`` sees it: the network's forks its head has
    passed, then one more at NEW_NEXT.  The built-in table does not have that fork (nor, today, any fork after
    now), so ``query readiness`` cannot name it; readiness is asked through db.readiness with this chain."""
    chain = CHAINS[m.script.network]
    passed = tuple(f for f in chain.forks if not f.by_time or f.at <= m.head_time)
    return replace(chain, forks=(*passed, Fork(name=DEVNET_FORK, time=NEW_NEXT)))


def latest_statuses(m: Monitored, cycles: Iterable[int]) -> dict[bytes, tuple[str, str, int]]:
    """Each node's (client, version, fork next) from its latest Status in these cycles."""
    latest: dict[bytes, tuple[str, str, int]] = {}
    for k in sorted(cycles):
        for node, client_id in m.expected[k].client_ids.items():
            latest[node] = (*client_of(client_id), m.expected[k].fork_next[node])
    return latest


SCOPES = [*range(CYCLES), None]  # each crawl, and every crawl


@pytest.mark.parametrize("k", SCOPES, ids=[f"cycle{k}" if k is not None else "every-crawl" for k in SCOPES])
def test_readiness_for_the_devnet_fork_is_the_nodes_the_script_switched(monitored: Monitored, k: int | None) -> None:
    m = monitored
    chains = {m.script.network: devnet_chain(m)}
    targets = next_forks(datetime.now(UTC), chains)
    assert [(t.network, t.fork, t.at) for t in targets] == [(m.script.network, DEVNET_FORK, NEW_NEXT)]
    scope = EVERY_CRAWL if k is None else CrawlScope(crawl_id=m.crawls[k])
    statuses = latest_statuses(m, range(CYCLES) if k is None else [k])
    tally: dict[tuple[str, str], list[int]] = {}
    for client, version, fork_next in statuses.values():
        counts = tally.setdefault((client, version), [0, 0])
        counts[0] += 1
        counts[1] += fork_next == NEW_NEXT
    want = sorted((m.script.network, DEVNET_FORK, c, v, n, r) for (c, v), (n, r) in tally.items())
    db = open_database(m.db)
    with db.session() as session:
        rows = readiness(session, targets, scope, chains)
        lagging = not_ready(session, targets, scope, chains)
    db.close()
    assert sorted((r.network, r.fork, r.client, r.version, r.nodes, r.ready) for r in rows) == want
    assert {n.node_id for n in lagging} == {node for node, s in statuses.items() if s[2] != NEW_NEXT}


def test_readiness_for_the_fork_the_devnet_runs_counts_every_node_ready(monitored: Monitored) -> None:
    """The CLI path, on the built-in table: every node runs the fork its head is in, whatever it announces."""
    m = monitored
    current = [f.name for f in CHAINS[m.script.network].forks if f.by_time and f.at <= m.head_time][-1]
    rows = json_rows("query", "readiness", "--db", m.db, "--fork", current)
    tally = Counter((client, version) for client, version, _ in latest_statuses(m, range(CYCLES)).values())
    want = sorted((m.script.network, current, c, v, n, n, 100.0) for (c, v), n in tally.items())
    got = [(r["network"], r["fork"], r["client"], r["version"], r["nodes"], r["ready"], r["share_ready"]) for r in rows]
    assert sorted(got) == want


# ---------------------------------------------------------------- one node's story


def test_the_story_of_a_node_that_moved_and_upgraded(monitored: Monitored) -> None:
    m = monitored
    changes = [c for step in m.script.steps for c in step]
    mover = next(c.node for c in changes if c.what == "move")
    assert any(c.node == mover and c.what == "upgrade" for c in changes)
    node = node_ids(m.script)[mover]
    [story] = json_rows("query", "node", node.hex()[:12], "--db", m.db)
    cycles = [k for k in range(CYCLES) if node in checked(m, k)]
    assert all(node in present(m, k) for k in cycles)  # it answered every check: one seq per cycle below
    records = {k: m.records[k][mover] for k in cycles}

    sightings = [
        (s["crawl"], s["kind"], s["answered"], s["ip"], s["udp_port"], s["tcp_port"], s["enr_seq"])
        for s in story["sightings"]
    ]
    assert sightings == [
        (m.crawls[k], m.script.kinds[k], True, str(records[k].ip), records[k].udp, records[k].tcp,
         m.expected[k].enr_seqs[node])
        for k in cycles
    ]  # fmt: skip

    firsts: dict[int, int] = {}  # seq -> the first cycle that met it
    for k in cycles:
        firsts.setdefault(m.expected[k].enr_seqs[node], k)
    assert len(firsts) == 2  # the move: a new record
    want_versions = []
    previous: ENR | None = None
    for seq, k in firsts.items():
        record = records[k]
        moved = {} if previous is None else {
            key: [old, new]
            for key, old, new in (
                ("ip", str(previous.ip), str(record.ip)), ("tcp", previous.tcp, record.tcp),
                ("udp", previous.udp, record.udp),
            )
            if old != new
        }  # fmt: skip
        want_versions.append((seq, m.crawls[k], moved))
        previous = record
    assert [(v["seq"], v["crawl"], v["changes"]) for v in story["enr_versions"]] == want_versions
    assert set(want_versions[1][2]) >= {"ip"}  # it moved to another host

    want_clients: list[tuple[int, str, str, str]] = []
    for k in cycles:
        client_id = m.expected[k].client_ids[node]
        if not want_clients or client_of(want_clients[-1][1]) != client_of(client_id):
            want_clients.append((m.crawls[k], client_id, *client_of(client_id)))
    assert len(want_clients) == 2  # the upgrade
    got = [(c["crawl"], c["client_id"], c["client_name"], c["client_version"]) for c in story["clients"]]
    assert got == want_clients

    ok = [(d["crawl"], d["client_id"], d["ip"], d["tcp_port"]) for d in story["dials"] if d["outcome"] == "ok"]
    assert ok == [(m.crawls[k], m.expected[k].client_ids[node], str(records[k].ip), records[k].tcp) for k in cycles]
