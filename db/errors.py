"""The database error hierarchy: every failure db/ reports is a ``DatabaseError``.

Driver exceptions (sqlite3, psycopg, SQLAlchemy's wrappers) are translated once,
where the database is opened or written, into the narrow classes below, each
with a one-line message a crawl operator can act on.
"""

from __future__ import annotations

__all__ = [
    "DatabaseError",
    "DatabaseUnreadable",
    "NotADatabase",
    "DatabaseLocked",
    "SchemaTooNew",
    "UnknownSchema",
    "MigrationMissing",
    "UnsupportedDatabase",
    "InvalidRecord",
    "NotFound",
]


class DatabaseError(Exception):
    """Root of everything db/ raises on purpose."""


class DatabaseUnreadable(DatabaseError):
    """Raised when the database cannot be opened at all: missing (with create=False), a directory, no permission."""


class NotADatabase(DatabaseError):
    """Raised when the file exists but is not an SQLite database (corrupt or some other file)."""


class DatabaseLocked(DatabaseError):
    """Raised when another process holds the write lock longer than our busy timeout."""


class SchemaTooNew(DatabaseError):
    """Raised when the database was written by a newer ethcrawl (schema version above ours)."""


class UnknownSchema(DatabaseError):
    """Raised when the database holds tables but no ethcrawl schema version: not ours."""


class MigrationMissing(DatabaseError):
    """Raised when an older schema version has no registered migration to the next one."""


class UnsupportedDatabase(DatabaseError):
    """Raised when the URL names a dialect we have no upsert for (only sqlite and postgresql)."""


class InvalidRecord(DatabaseError, ValueError):
    """Raised when our own code builds a record the database cannot hold (API misuse, not a peer's fault)."""


class NotFound(DatabaseError, LookupError):
    """Raised when a query names what the database does not hold: a crawl, a node, a node id prefix that
    matches several nodes, or a comparison without its second crawl (churn with a single walk)."""
