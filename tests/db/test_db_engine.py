"""open_database: create, accept, migrate, refuse; SQLite pragmas; portable schema.

(Named test_db_engine.py, not test_engine.py: the tests folders have no
__init__.py, so basenames must differ from tests/crawler/test_engine.py.)
"""

from __future__ import annotations

import random
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.schema import CreateIndex, CreateTable

from ethcrawl.db import engine as db_engine
from ethcrawl.db.engine import SCHEMA_VERSION, open_database
from ethcrawl.db.errors import (
    DatabaseError,
    DatabaseLocked,
    DatabaseUnreadable,
    MigrationMissing,
    NotADatabase,
    SchemaTooNew,
    UnknownSchema,
    UnsupportedDatabase,
)
from ethcrawl.db.models import Base, Crawl, SchemaVersion, Sighting
from ethcrawl.db.store import edge_upsert, node_upsert, sighting_upsert

TABLES = {"schema_version", "crawls", "nodes", "sightings", "edges", "dial_attempts"}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def stored_version(path: Path) -> int:
    with sqlite3.connect(path) as raw:
        (version,) = raw.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    return int(version)


def set_version(path: Path, version: int) -> None:
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE schema_version SET version = ? WHERE id = 1", (version,))
    raw.close()


def assert_one_line(error: DatabaseError) -> None:
    message = str(error)
    assert message and "\n" not in message


# ---------------------------------------------------------------- create and accept


def test_new_file_gets_schema_version_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    db = open_database(path)
    try:
        assert TABLES <= set(inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.execute(select(SchemaVersion.version)).scalar_one() == SCHEMA_VERSION
    finally:
        db.close()
    assert stored_version(path) == SCHEMA_VERSION


def test_reopen_accepts_current_version_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "crawl.db"
    db = open_database(path)
    with db.session() as session, session.begin():
        session.add(Crawl(started_at=T0, ended_at=None, parameters="{}"))
    db.close()
    again = open_database(str(path), create=False)
    try:
        with again.session() as session:
            assert [c.started_at for c in session.scalars(select(Crawl))] == [T0]
    finally:
        again.close()


def test_sqlalchemy_url_is_accepted(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'by-url.db'}")
    try:
        assert db.dialect == "sqlite"
        assert (tmp_path / "by-url.db").exists()
    finally:
        db.close()


def test_memory_database_is_shared_across_threads() -> None:
    # The writer works from trio worker threads; an in-memory database must be the same one there.
    db = open_database(":memory:")
    try:
        def add() -> None:
            with db.session() as session, session.begin():
                session.add(Crawl(started_at=T0, ended_at=None, parameters="{}"))

        worker = threading.Thread(target=add)
        worker.start()
        worker.join(timeout=5)
        with db.session() as session:
            assert session.scalar(select(Crawl.id)) == 1
    finally:
        db.close()


def test_foreign_keys_are_enforced() -> None:
    db = open_database(":memory:")
    try:
        with db.session() as session:
            session.add(Crawl(started_at=T0, ended_at=None, parameters="{}"))
            session.flush()
            session.add(Sighting(crawl_id=1, node_id=b"\x01" * 32, first_seen=T0, source="bootnode"))
            with pytest.raises(IntegrityError):
                session.flush()
    finally:
        db.close()


def test_timestamps_come_back_as_utc() -> None:
    db = open_database(":memory:")
    plus_two = timezone(timedelta(hours=2))
    try:
        with db.session() as session, session.begin():
            session.add(Crawl(started_at=datetime(2024, 5, 1, 14, 0, tzinfo=plus_two), ended_at=None, parameters="{}"))
        with db.session() as session:
            started = session.scalars(select(Crawl.started_at)).one()
        assert started == T0 and started.tzinfo == timezone.utc
        with db.session() as session:
            session.add(Crawl(started_at=datetime(2024, 5, 1), ended_at=None, parameters="{}"))
            with pytest.raises(StatementError, match="naive datetime"):
                session.flush()
    finally:
        db.close()


# ---------------------------------------------------------------- refuse, with typed errors


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_database(path).close()
    set_version(path, SCHEMA_VERSION + 7)
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 7}") as caught:
        open_database(path)
    assert_one_line(caught.value)
    assert stored_version(path) == SCHEMA_VERSION + 7  # untouched


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_file_is_not_a_database(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(random.Random(seed).randbytes(4096 * (seed + 1)))
    with pytest.raises(NotADatabase, match="not an SQLite database") as caught:
        open_database(path)
    assert_one_line(caught.value)


def test_text_file_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("enode://abc@1.2.3.4:30303\n" * 200)
    with pytest.raises(NotADatabase):
        open_database(path)


def test_damaged_header_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    open_database(path).close()
    data = bytearray(path.read_bytes())
    data[:16] = b"Not SQLite here\x00"
    path.write_bytes(bytes(data))
    with pytest.raises(NotADatabase):
        open_database(path)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnreadable, match="directory") as caught:
        open_database(tmp_path)
    assert_one_line(caught.value)


def test_missing_folder_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnreadable, match="does not exist"):
        open_database(tmp_path / "no" / "such" / "crawl.db")


def test_missing_file_without_create_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(DatabaseUnreadable, match="no such file"):
        open_database(path, create=False)
    assert not path.exists()


def test_empty_database_without_create_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(DatabaseUnreadable, match="no ethcrawl schema"):
        open_database(path, create=False)


def test_foreign_tables_are_unknown_schema(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("CREATE TABLE peers (id INTEGER PRIMARY KEY)")
    raw.close()
    with pytest.raises(UnknownSchema, match="peers") as caught:
        open_database(path)
    assert_one_line(caught.value)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_locked_database_is_reported(tmp_path: Path, journal: str) -> None:
    path = tmp_path / "busy.db"
    if journal == "wal":
        open_database(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS lock_probe (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")  # another crawl in the middle of a write
    try:
        with pytest.raises(DatabaseLocked, match="locked by another process") as caught:
            open_database(path, busy_timeout=0.05)
        assert_one_line(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    if journal == "wal":
        open_database(path).close()  # usable again once the other writer is done


def test_unsupported_dialect() -> None:
    with pytest.raises(UnsupportedDatabase, match="mysql"):
        open_database("mysql://user@localhost/crawl")


def test_bad_url_is_unreadable() -> None:
    with pytest.raises(DatabaseUnreadable, match="not a database URL"):
        open_database("::not a url://")


# ---------------------------------------------------------------- migrations


def test_older_version_runs_registered_migrations_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    open_database(path).close()
    ran: list[int] = []

    def step(version: int) -> db_engine.Migration:
        def migrate(conn: Connection) -> None:
            ran.append(version)
            conn.execute(text(f"CREATE TABLE added_by_v{version} (x INTEGER)"))

        return migrate

    monkeypatch.setattr(db_engine, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    monkeypatch.setattr(db_engine, "MIGRATIONS", {SCHEMA_VERSION: step(SCHEMA_VERSION), SCHEMA_VERSION + 1: step(SCHEMA_VERSION + 1)})
    db = open_database(path)
    try:
        tables = set(inspect(db.engine).get_table_names())
    finally:
        db.close()
    assert ran == [SCHEMA_VERSION, SCHEMA_VERSION + 1]
    assert {f"added_by_v{SCHEMA_VERSION}", f"added_by_v{SCHEMA_VERSION + 1}"} <= tables
    assert stored_version(path) == SCHEMA_VERSION + 2


def test_failed_migration_leaves_database_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    open_database(path).close()

    def broken(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        raise MigrationMissing("simulated failure half way")

    monkeypatch.setattr(db_engine, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(db_engine, "MIGRATIONS", {SCHEMA_VERSION: broken})
    with pytest.raises(MigrationMissing):
        open_database(path)
    assert stored_version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as raw:
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in names  # the whole open is one transaction


def test_missing_migration_is_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    open_database(path).close()
    monkeypatch.setattr(db_engine, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(db_engine, "MIGRATIONS", {})
    with pytest.raises(MigrationMissing, match=f"version {SCHEMA_VERSION} and no migration") as caught:
        open_database(path)
    assert_one_line(caught.value)


# ---------------------------------------------------------------- portability


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_schema_and_upserts_compile_for(dialect: object) -> None:
    for table in Base.metadata.sorted_tables:
        assert f"CREATE TABLE {table.name}" in str(CreateTable(table).compile(dialect=dialect))  # type: ignore[arg-type]
        for index in table.indexes:
            want = "CREATE UNIQUE INDEX" if index.unique else "CREATE INDEX"
            assert want in str(CreateIndex(index).compile(dialect=dialect))  # type: ignore[arg-type]
    name = dialect.name  # type: ignore[attr-defined]
    assert "ON CONFLICT (node_id) DO UPDATE" in str(node_upsert(name).compile(dialect=dialect))
    assert "ON CONFLICT (crawl_id, node_id) DO UPDATE" in str(sighting_upsert(name).compile(dialect=dialect))
    assert "ON CONFLICT (crawl_id, from_node, to_node) DO UPDATE" in str(edge_upsert(name).compile(dialect=dialect))


def test_tables_have_the_query_indexes() -> None:
    indexed = {
        (table.name, tuple(column.name for column in index.columns))
        for table in Base.metadata.sorted_tables
        for index in table.indexes
    }
    assert ("dial_attempts", ("crawl_id",)) in indexed
    assert ("dial_attempts", ("node_id",)) in indexed
    assert ("dial_attempts", ("client_name",)) in indexed
    assert ("dial_attempts", ("network_id", "fork_hash")) in indexed
    assert ("sightings", ("node_id",)) in indexed
    assert ("edges", ("to_node",)) in indexed


def test_error_classes_share_the_root() -> None:
    for cls in (DatabaseLocked, DatabaseUnreadable, MigrationMissing, NotADatabase, SchemaTooNew, UnknownSchema):
        assert issubclass(cls, DatabaseError)


@pytest.mark.parametrize("seed", range(12))
def test_damaged_database_file_opens_or_raises_only_database_errors(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "crawl.db"
    open_database(path).close()
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    if seed % 3 == 0:
        data = data[: rng.randrange(1, len(data))]  # truncated
    elif seed % 3 == 1:
        for _ in range(rng.randint(1, 40)):  # flipped bytes anywhere, header included
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    else:
        data += rng.randbytes(rng.randint(1, 5000))  # trailing garbage
    path.write_bytes(bytes(data))
    try:
        open_database(path).close()
    except DatabaseError as error:
        assert_one_line(error)
