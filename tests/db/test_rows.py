"""db.rows: the share tables scoped by time (``since``), which the report's --since and the API's ?since= read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.rows import fork_table, hello_table, network_table, outcome_table
from fixture_db import T0, Facts, fill_database

TABLES = {
    "clients": lambda s, **kw: hello_table(s, "clients", **kw),
    "versions": lambda s, **kw: hello_table(s, "versions", **kw),
    "outcomes": outcome_table,
    "networks": network_table,
    "forks": fork_table,
}


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Facts]]:
    url = str(tmp_path_factory.mktemp("rows") / "rows.db")
    facts = fill_database(url)
    db = open_database(url, create=False)
    yield db, facts
    db.close()


@pytest.mark.parametrize("name", sorted(TABLES))
def test_since_a_crawls_start_is_that_crawl_onwards(filled: tuple[Database, Facts], name: str) -> None:
    db, _ = filled
    table = TABLES[name]
    with db.session() as session:
        # The fixture's second crawl starts a day after the first: since then, only its attempts count.
        assert table(session, since=T0 + timedelta(days=1)) == table(session, crawl_id=2)
        assert table(session, since=T0 - timedelta(days=1)) == table(session)
        assert table(session, since=T0 + timedelta(days=30)).rows == []
        assert table(session, since=T0 + timedelta(days=1), client="geth") == table(session, crawl_id=2, client="geth")


def test_since_inside_a_crawl_counts_the_attempts_made_since(filled: tuple[Database, Facts]) -> None:
    db, facts = filled
    since = T0 + timedelta(days=1, minutes=1, seconds=10)  # ten attempts into the second crawl
    latest = {}
    for dial in facts.dials:
        if dial.attempted_at >= since:
            latest[dial.node_id] = dial
    want = Counter(d.outcome for d in latest.values())
    assert 0 < sum(want.values()) < len(facts.crawls[1].dials)
    with db.session() as session:
        got = {r["outcome"]: r["nodes"] for r in outcome_table(session, since=since).rows}
    assert got == dict(want)
