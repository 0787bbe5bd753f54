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


def test_readiness_asks_about_the_next_fork_else_says_none_is_scheduled() -> None:
    from datetime import UTC, datetime

    from ethcrawl.db.errors import NotFound
    from ethcrawl.db.readiness import last_fork
    from ethcrawl.db.rows import fork_targets

    before_osaka = datetime(2025, 11, 1, tzinfo=UTC)  # mainnet Osaka activates 2025-12-03
    assert ("mainnet", "Osaka") in {(t.network, t.fork) for t in fork_targets(None, before_osaka)}
    assert {t.fork for t in fork_targets("Osaka", before_osaka)} == {"Osaka"}
    with pytest.raises(NotFound, match="no network has a fork scheduled after 2100-01-01T00:00:00Z"):
        fork_targets(None, datetime(2100, 1, 1, tzinfo=UTC))
    # The fork that activated last: mainnet's Osaka just after it, nothing before the first time fork of any chain.
    assert last_fork(datetime(2025, 12, 4, tzinfo=UTC)) == "Osaka"
    assert last_fork(datetime(2015, 1, 1, tzinfo=UTC)) is None
