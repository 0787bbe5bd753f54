"""db.rows: the share tables scoped by a window of crawl starts (db.scope.CrawlScope), as the report's --since/--until
and the API's ?since=&until= read them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from ethcrawl.db.engine import Database, open_database
from ethcrawl.db.rows import fork_table, hello_table, network_table, outcome_table
from ethcrawl.db.scope import CrawlScope
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
def test_a_window_from_a_crawls_start_is_that_crawl_onwards(filled: tuple[Database, Facts], name: str) -> None:
    db, _ = filled
    table = TABLES[name]
    with db.session() as session:
        # The fixture's second crawl starts a day after the first: a window from then holds only that crawl.
        assert table(session, scope=CrawlScope(since=T0 + timedelta(days=1))) == table(session, scope=CrawlScope(crawl_id=2))
        assert table(session, scope=CrawlScope(until=T0 + timedelta(days=1))) == table(session, scope=CrawlScope(crawl_id=1))
        assert table(session, scope=CrawlScope(since=T0 - timedelta(days=1))) == table(session)
        assert table(session, scope=CrawlScope(since=T0 + timedelta(days=30))).rows == []
        assert table(session, scope=CrawlScope(since=T0 + timedelta(days=1)), client="geth") == table(
            session, scope=CrawlScope(crawl_id=2), client="geth"
        )
