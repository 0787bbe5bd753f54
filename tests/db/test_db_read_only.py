"""open_database(read_only=True): the dashboard's access, which must never write and must read beside a crawl."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ethcrawl.db.engine import SCHEMA_VERSION, open_database
from ethcrawl.db.errors import DatabaseError, DatabaseUnreadable, MigrationMissing, SchemaTooNew
from ethcrawl.db.models import Crawl
from ethcrawl.db.queries import crawl_history
from sqlalchemy import func, select
from fixture_db import database_url
from sqlalchemy import exc as sa_exc

__all__ = ["database_url"]  # the fixture, imported so that pytest finds it here


def _crawl_database(url: str | Path) -> None:
    db = open_database(url)
    with db.session() as session, session.begin():
        session.add(Crawl(started_at=datetime(2026, 11, 1, tzinfo=UTC), parameters="{}"))
    db.close()


def test_reads_and_cannot_write(database_url: str) -> None:
    _crawl_database(database_url)
    db = open_database(database_url, read_only=True)
    try:
        with db.session() as session:
            assert [c.id for c in crawl_history(session)] == [1]
            session.add(Crawl(started_at=datetime(2026, 11, 2, tzinfo=UTC), parameters="{}"))
            # SQLite: "attempt to write a readonly database"; PostgreSQL: "... in a read-only transaction".
            with pytest.raises(sa_exc.DBAPIError, match="(?i)read-?only"):
                session.commit()
    finally:
        db.close()
    check = open_database(database_url, create=False)
    with check.session() as session:
        assert [c.id for c in crawl_history(session)] == [1]
    check.close()


def test_reads_while_a_writer_holds_its_transaction(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    _crawl_database(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a crawl in the middle of a batch: the write lock is taken
    writer.execute(
        "INSERT INTO crawls (started_at, parameters, node_count, edge_count, dials_ok, dials_failed)"
        " VALUES ('2026-11-02 00:00:00.000000', '{}', 0, 0, 0, 0)"
    )
    db = open_database(path, read_only=True, busy_timeout=0.1)
    try:
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(Crawl)) == 1  # the committed state
        writer.execute("COMMIT")
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(Crawl)) == 2
    finally:
        db.close()
        writer.close()


def test_a_path_with_uri_characters_opens(tmp_path: Path) -> None:
    path = tmp_path / "a ?#%& b.db"
    _crawl_database(path)
    db = open_database(path, read_only=True)
    db.close()


def test_missing_file_is_one_line_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(DatabaseUnreadable, match="no such file"):
        open_database(path, read_only=True)
    assert not path.exists()


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(DatabaseUnreadable, match="no ethcrawl schema"):
        open_database(path, read_only=True)


@pytest.mark.parametrize(("version", "error"), [(SCHEMA_VERSION + 1, SchemaTooNew), (SCHEMA_VERSION - 1, MigrationMissing)])
def test_other_schema_versions_are_refused_not_migrated(tmp_path: Path, version: int, error: type[DatabaseError]) -> None:
    path = tmp_path / "old.db"
    _crawl_database(path)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = ? WHERE id = 1", (version,))
    raw.commit()
    raw.close()
    with pytest.raises(error, match=str(version)):
        open_database(path, read_only=True)
    assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchone() == (version,)
