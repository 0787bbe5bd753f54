"""db.node_filter: the one node filter of ``query nodes`` and the dashboard, its paging and its checked values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from ethcrawl.crawler.cli import main
from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.node_filter import BadFilter, NodeFilter, filter_nodes, parse_cidr, parse_fork, parse_network
from fixture_db import Facts, fill_database


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[Database, Facts, str]]:
    url = str(tmp_path / "filter.db")
    facts = fill_database(url)
    db = open_database(url, create=False)
    yield db, facts, url
    db.close()


def _latest_outcome(facts: Facts, node_id: bytes) -> str | None:
    last = facts.latest_dial(node_id)
    return None if last is None else last.outcome


def test_pages_cover_every_match_once_in_node_id_order(filled: tuple[Database, Facts, str]) -> None:
    db, facts, _ = filled
    with db.session() as session:
        everything = filter_nodes(session, NodeFilter())
        pages = [filter_nodes(session, NodeFilter(), limit=7, offset=k) for k in range(0, everything.total + 7, 7)]
    assert everything.total == len(facts.nodes) == len(everything.rows)
    assert all(p.total == everything.total for p in pages)
    assert [r["node_id"] for p in pages for r in p.rows] == sorted(n.hex() for n in facts.nodes)
    assert pages[-1].rows == []  # past the end: an empty page, not an error


def test_outcome_filter_is_the_latest_attempts_outcome(filled: tuple[Database, Facts, str]) -> None:
    db, facts, url = filled
    for outcome in ("ok", "timeout"):
        want = {n.hex() for n in facts.nodes if _latest_outcome(facts, n) == outcome}
        assert want, f"the fixture has no node whose latest attempt ended {outcome}"
        with db.session() as session:
            page = filter_nodes(session, NodeFilter(outcome=outcome))
        assert {r["node_id"] for r in page.rows} == want and page.total == len(want)
        printed = CliRunner().invoke(main, ["query", "nodes", "--db", url, "--outcome", outcome, "--format", "csv"])
        assert printed.exit_code == 0 and len(printed.stdout.splitlines()) == len(want) + 1


def test_client_filter_ignores_case(filled: tuple[Database, Facts, str]) -> None:
    db, _, _ = filled
    with db.session() as session:
        assert filter_nodes(session, NodeFilter(client="GETH")) == filter_nodes(session, NodeFilter(client="geth"))
        assert filter_nodes(session, NodeFilter(client="geth")).total > 0


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: parse_network("atlantis"), "atlantis"),
        (lambda: parse_fork("ragnarok"), "ragnarok"),
        (lambda: parse_cidr("10.0.0.0/33"), "10.0.0.0/33"),
        (lambda: NodeFilter(layer="mantle"), "mantle"),
        (lambda: NodeFilter(discovery="v6"), "v6"),
    ],
)
def test_bad_values_are_one_line(build: object, needle: str) -> None:
    with pytest.raises(BadFilter, match=needle) as caught:
        build()  # type: ignore[operator]
    assert "\n" not in str(caught.value)


def test_names_are_normalised() -> None:
    assert parse_network("MainNet") == "mainnet"
    assert parse_fork("prague") == "Prague"
    assert str(parse_cidr("10.1.2.3/8")) == "10.0.0.0/8"


def test_negative_paging_is_refused(filled: tuple[Database, Facts, str]) -> None:
    db, _, _ = filled
    with db.session() as session, pytest.raises(BadFilter):
        filter_nodes(session, NodeFilter(), offset=-1)
