"""Open (create, check, migrate) the crawl database.

``open_database`` takes a file path or a SQLAlchemy URL.  SQLite is the
default: every connection gets foreign keys ON, WAL journaling (readers never
block the one writer) and a busy timeout.  The schema carries a version; an
older database is migrated step by step through ``MIGRATIONS``, a newer one is
refused.  Driver exceptions are translated here, once, into ``db.errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, bindparam, column, create_engine, event, inspect, select, table, true, update
from sqlalchemy import insert as sa_insert
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from .errors import (
    DatabaseError,
    DatabaseLocked,
    DatabaseUnreadable,
    MigrationMissing,
    NotADatabase,
    SchemaTooNew,
    UnknownSchema,
    UnsupportedDatabase,
)
from .models import Base, EnrHistory, Identity, SchemaVersion
from .store import CLASSIFICATION_COLUMNS, classification_columns

__all__ = [
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "Migration",
    "Database",
    "open_database",
    "translate_error",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4  # bump with every model change, and add MIGRATIONS[old] for it
BUSY_TIMEOUT = 5.0  # s, how long SQLite waits for another writer before "database is locked"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")  # the two with insert().on_conflict_do_update

# A migration moves a database from version v (its key) to v + 1, inside the
# caller's transaction.
Migration = Callable[[Connection], None]

# Schema v2 (discovery v5): the columns v1 lacks, as (table, column, DDL type).  Frozen
# here rather than read from the models, so the step keeps meaning v1 -> v2 later on.
# ADD COLUMN with a constant default works on SQLite and PostgreSQL alike.
_V2_COLUMNS = (
    ("nodes", "protocols", "TEXT NOT NULL DEFAULT ''"),
    ("nodes", "layer", "TEXT"),
    ("nodes", "execution_network", "TEXT"),
    ("nodes", "eth2_fork_digest", "{blob}"),
    ("nodes", "consensus_network", "TEXT"),
    ("nodes", "consensus_fork", "TEXT"),
    ("nodes", "attnets_count", "INTEGER"),
    ("nodes", "syncnets_count", "INTEGER"),
    ("sightings", "protocols", "TEXT NOT NULL DEFAULT ''"),
    # Every v1 edge came from a discv4 NEIGHBORS reply.
    ("edges", "protocols", "TEXT NOT NULL DEFAULT 'v4'"),
)
_BLOB_TYPES = {"sqlite": "BLOB", "postgresql": "BYTEA"}
CLASSIFY_BATCH = 500  # rows per UPDATE statement while classifying a v1 database's ENRs


def _migrate_v1_to_v2(conn: Connection) -> None:
    """Add the v2 columns; mark what answered in v1 as "v4"; classify every stored ENR."""
    blob = _BLOB_TYPES.get(conn.dialect.name, "BLOB")
    for table_name, name, ddl in _V2_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {name} {ddl.format(blob=blob)}")
    nodes = table("nodes", column("node_id"), column("enr"), column("protocols"), *(column(c) for c in CLASSIFICATION_COLUMNS))
    sightings = table("sightings", column("node_id"), column("responded"), column("protocols"))
    # v1 crawled with discovery v4 only: whatever answered then answered over v4.
    conn.execute(update(sightings).where(sightings.c.responded == true()).values(protocols="v4"))
    answered = select(sightings.c.node_id).where(sightings.c.responded == true())
    conn.execute(update(nodes).where(nodes.c.node_id.in_(answered)).values(protocols="v4"))
    stored = conn.execute(select(nodes.c.node_id, nodes.c.enr).where(nodes.c.enr.is_not(None))).all()
    statement = (
        update(nodes)
        .where(nodes.c.node_id == bindparam("target"))
        .values({name: bindparam(name) for name in CLASSIFICATION_COLUMNS})
    )
    rows = [{"target": node_id, **classification_columns(enr)} for node_id, enr in stored]
    for start in range(0, len(rows), CLASSIFY_BATCH):
        conn.execute(statement, rows[start : start + CLASSIFY_BATCH])


# Schema v3 (trustworthy numbers): our own identities, the crawl's node id and counters, imported scores.
_V3_COLUMNS = (
    ("crawls", "local_node_id", "{blob}"),
    ("crawls", "stats", "TEXT"),
    ("nodes", "imported_score", "BIGINT"),
)


def _migrate_v2_to_v3(conn: Connection) -> None:
    """Add the v3 columns and the identities table.

    Crawls before v3 each used a fresh key and did not record it, so the identities they used cannot be told
    apart from the many network nodes that never answer; they are left as they are (see the README).
    """
    blob = _BLOB_TYPES.get(conn.dialect.name, "BLOB")
    for table_name, name, ddl in _V3_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {name} {ddl.format(blob=blob)}")
    Base.metadata.tables[Identity.__tablename__].create(conn)  # the Table (typed), with its indexes


# Schema v4 (the network over time; country and ASN): crawl kinds, each sighting's address and record version,
# geography per node and sighting, and every ENR version received.
_V4_COLUMNS = (
    ("crawls", "kind", "VARCHAR(16) NOT NULL DEFAULT 'crawl'"),
    ("nodes", "country", "VARCHAR(2)"),
    ("nodes", "asn", "BIGINT"),
    ("nodes", "as_org", "TEXT"),
    ("sightings", "ip", "VARCHAR(45)"),
    ("sightings", "udp_port", "INTEGER"),
    ("sightings", "tcp_port", "INTEGER"),
    ("sightings", "enr_seq", "BIGINT"),
    ("sightings", "country", "VARCHAR(2)"),
    ("sightings", "asn", "BIGINT"),
    ("sightings", "as_org", "TEXT"),
)


def _migrate_v3_to_v4(conn: Connection) -> None:
    """Add the v4 columns and the ENR history, which starts with each node's stored record.

    Older sightings keep NULL addresses: what a node's address was in a past crawl was not recorded, and is not
    guessed from its latest one.
    """
    for table_name, name, ddl in _V4_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {name} {ddl}")
    history = Base.metadata.tables[EnrHistory.__tablename__]
    history.create(conn)
    nodes = table("nodes", column("node_id"), column("enr"), column("enr_seq"), column("last_seen"))
    stored = select(nodes.c.node_id, nodes.c.enr_seq, nodes.c.enr, nodes.c.last_seen).where(
        nodes.c.enr.is_not(None), nodes.c.enr_seq.is_not(None)
    )
    conn.execute(history.insert().from_select(["node_id", "seq", "enr", "first_seen"], stored))


MIGRATIONS: dict[int, Migration] = {1: _migrate_v1_to_v2, 2: _migrate_v2_to_v3, 3: _migrate_v3_to_v4}


@dataclass(frozen=True, slots=True)
class Database:
    """An open crawl database: the engine and a session factory.  Sessions belong to the caller."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()


def _url_for(url_or_path: str | Path) -> URL:
    text = str(url_or_path)
    if "://" in text:
        try:
            return make_url(text)
        except sa_exc.ArgumentError as exc:
            raise DatabaseUnreadable(f"{text!r} is not a database URL: {exc}") from exc
    if text == ":memory:":
        return make_url("sqlite://")
    return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def translate_error(exc: BaseException, where: str) -> DatabaseError:
    """One driver exception as the narrow ``DatabaseError`` it means, with a one-line message."""
    if isinstance(exc, DatabaseError):
        return exc
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return DatabaseLocked(
            f"{where} is locked by another process (another crawl still writing?): {message}"
        )
    if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
        return NotADatabase(f"{where} is not an SQLite database (corrupt, or some other file): {message}")
    if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered or isinstance(orig, OSError):
        return DatabaseUnreadable(f"cannot open {where}: {message}")
    return DatabaseError(f"{where}: {message}")


def _read_only_url(url: URL, path: Path | None) -> tuple[URL, dict[str, Any]]:
    """The URL and connect arguments of a connection that cannot write: SQLite's ``mode=ro`` URI, or a
    PostgreSQL session whose transactions are all read-only."""
    if path is not None:
        return url.set(database=f"file:{quote(str(path))}", query={"mode": "ro", "uri": "true"}), {}
    if url.get_backend_name() == "postgresql":
        return url, {"options": "-c default_transaction_read_only=on"}
    return url, {}


def _check_readable_schema(conn: Connection, *, target: int, where: str) -> None:
    """A reader cannot migrate: the schema must be ours and current."""
    version = _stored_version(conn)
    if version is None:
        raise DatabaseUnreadable(f"{where} is empty: it has no ethcrawl schema yet (run a crawl first)")
    if version > target:
        raise SchemaTooNew(f"{where} has schema version {version}, newer than this ethcrawl's {target}; upgrade ethcrawl")
    if version < target:
        raise MigrationMissing(
            f"{where} has schema version {version}, older than this ethcrawl's {target}, and read-only access cannot "
            "migrate it: run any query on it once (ethcrawl query crawls --db ...)"
        )


def _install_sqlite_hooks(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # SQLite ignores foreign keys unless asked, per connection.
            cursor.execute("PRAGMA foreign_keys=ON")
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                # WAL is safe against corruption with NORMAL; only the last commits can be lost on power cut.
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()


def _make_engine(
    url: URL, busy_timeout: float, echo: bool, *, read_only: bool = False, extra_connect_args: Mapping[str, Any] = {}
) -> Engine:
    backend = url.get_backend_name()
    if backend not in SUPPORTED_DIALECTS:
        raise UnsupportedDatabase(
            f"{backend!r} databases are not supported; use an SQLite path or a postgresql:// URL"
        )
    if backend != "sqlite":
        try:
            return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=dict(extra_connect_args))
        except ImportError as exc:
            raise UnsupportedDatabase(
                f"{backend} needs its driver ({exc.name or exc}): pip install 'ethcrawl[postgres]'"
            ) from None
    # The writer works from a thread (trio.to_thread), so connections may change threads;
    # it is the only writer, serialised by a CapacityLimiter(1).
    connect_args: dict[str, Any] = {"timeout": busy_timeout, "check_same_thread": False, **extra_connect_args}
    if read_only:
        # The journal mode is the writer's to set (a read-only connection cannot); a WAL database is read as WAL.
        engine = create_engine(url, echo=echo, connect_args=connect_args)
        _install_sqlite_hooks(engine, wal=False)
    elif _sqlite_file(url) is None:
        # One shared connection, or every thread would see its own empty in-memory database.
        engine = create_engine(url, echo=echo, connect_args=connect_args, poolclass=StaticPool)
        _install_sqlite_hooks(engine, wal=False)
    else:
        engine = create_engine(url, echo=echo, connect_args=connect_args)
        _install_sqlite_hooks(engine, wal=True)
    return engine


def _stored_version(conn: Connection) -> int | None:
    """The schema version, or None for an empty database; UnknownSchema if it is somebody else's."""
    tables = set(inspect(conn).get_table_names())
    if SchemaVersion.__tablename__ not in tables:
        if tables:
            raise UnknownSchema(
                f"database holds tables ({', '.join(sorted(tables)[:5])}) but no ethcrawl schema_version: not ours"
            )
        return None
    version = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar_one_or_none()
    if version is None:
        raise UnknownSchema("database has a schema_version table without a version row")
    return version


def _write_version(conn: Connection, version: int, *, insert: bool) -> None:
    now = datetime.now(timezone.utc)
    if insert:
        conn.execute(sa_insert(SchemaVersion).values(id=1, version=version, updated_at=now))
    else:
        conn.execute(update(SchemaVersion).where(SchemaVersion.id == 1).values(version=version, updated_at=now))


def _prepare_schema(
    conn: Connection, *, create: bool, target: int, migrations: Mapping[int, Migration], where: str
) -> None:
    version = _stored_version(conn)
    if version is None:
        if not create:
            raise DatabaseUnreadable(f"{where} is empty: it has no ethcrawl schema yet (run a crawl first)")
        Base.metadata.create_all(conn)
        _write_version(conn, target, insert=True)
        log.info("database created path=%s schema_version=%d", where, target)
        return
    if version > target:
        raise SchemaTooNew(
            f"{where} has schema version {version}, newer than this ethcrawl's {target}; upgrade ethcrawl"
        )
    while version < target:
        step = migrations.get(version)
        if step is None:
            raise MigrationMissing(f"{where} has schema version {version} and no migration to {version + 1}")
        step(conn)
        version += 1
        _write_version(conn, version, insert=False)
        log.info("database migrated path=%s schema_version=%d", where, version)


def open_database(
    url_or_path: str | Path,
    *,
    create: bool = True,
    busy_timeout: float = BUSY_TIMEOUT,
    echo: bool = False,
    read_only: bool = False,
) -> Database:
    """Open the database at ``url_or_path`` (file path, ``:memory:`` or SQLAlchemy URL).

    Creates the schema when the database is empty (and ``create``), runs the
    registered migrations when it is older, and raises a ``DatabaseError``
    subclass when it is newer, corrupt, unreadable or locked.

    ``read_only`` (a dashboard beside a running crawl): connections that cannot write (SQLite ``mode=ro``,
    PostgreSQL read-only transactions), no write lock taken, nothing created or migrated; the schema must be
    current.  SQLite's WAL lets it read while a crawl writes.
    """
    url = _url_for(url_or_path)
    where = url.render_as_string(hide_password=True)
    path = _sqlite_file(url)
    if path is not None:
        where = str(path)
        if path.is_dir():
            raise DatabaseUnreadable(f"cannot open {where}: it is a directory")
        if not create and not path.exists():
            raise DatabaseUnreadable(
                f"cannot open {where}: no such file (give the path of an existing ethcrawl database, or run a crawl first)"
            )
        if not path.parent.is_dir():
            raise DatabaseUnreadable(f"cannot open {where}: folder {path.parent} does not exist")
    if read_only and path is not None and not path.exists():
        raise DatabaseUnreadable(f"cannot open {where}: no such file (give the path of an existing ethcrawl database)")
    if read_only:
        url, extra = _read_only_url(url, path)
        engine = _make_engine(url, busy_timeout, echo, read_only=True, extra_connect_args=extra)
    else:
        engine = _make_engine(url, busy_timeout, echo)
    try:
        if read_only:
            with engine.connect() as conn:
                _check_readable_schema(conn, target=SCHEMA_VERSION, where=where)
        elif engine.dialect.name == "sqlite":
            # Take the write lock up front (BEGIN IMMEDIATE): a database another crawl is
            # writing fails here, clearly, instead of in the middle of our crawl.  AUTOCOMMIT
            # stops pysqlite from issuing its own BEGIN/COMMIT around our statements.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    _prepare_schema(conn, create=create, target=SCHEMA_VERSION, migrations=MIGRATIONS, where=where)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        else:
            with engine.begin() as conn:
                _prepare_schema(conn, create=create, target=SCHEMA_VERSION, migrations=MIGRATIONS, where=where)
    except DatabaseError:
        engine.dispose()
        raise
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        engine.dispose()
        raise translate_error(exc, where) from exc
    except UnicodeDecodeError as exc:
        # A damaged file can hand the driver text that is not UTF-8 (seen with flipped header bytes).
        engine.dispose()
        raise NotADatabase(f"{where} is not an SQLite database (corrupt, or some other file): {exc}") from exc
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
