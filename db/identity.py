"""Our own node identities: the database's one generated key, ``--node-key`` ids, and who must never be counted.

A crawler that took a fresh key per crawl would be remembered by the network it measures: the next crawl
would find the earlier crawler in every peer's table and store it as a node.  So each database keeps one
generated key, reused by every crawl and ping on it, and remembers the node id of every key given with
``--node-key`` (the key itself stays in the user's file).  Every identity is purged from the network's tables
when registered, and the crawler excludes them all (``identity_node_ids``).

Session functions take a caller-owned session and do not commit; ``claim_identity`` is the one-transaction
entry point the crawler and ``ethcrawl ping`` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from ethcrawl.wire.crypto import PrivateKey, generate_private_key, node_id_from_pubkey, pubkey_from_private

from .engine import Database, translate_error
from .errors import InvalidRecord
from .models import IDENTITY_ORIGINS, NODE_ID_SIZE, PRIVATE_KEY_SIZE, DialAttempt, Edge, Identity, Node, Sighting
from .store import _insert_for

__all__ = [
    "GENERATED",
    "NODE_KEY",
    "StoredIdentity",
    "ClaimedIdentity",
    "node_id_of",
    "generated_identity",
    "register_identity",
    "identity_node_ids",
    "purge_network_node",
    "claim_identity",
]

GENERATED, NODE_KEY = "generated", "node-key"
assert (GENERATED, NODE_KEY) == IDENTITY_ORIGINS


@dataclass(frozen=True, slots=True)
class StoredIdentity:
    node_id: bytes
    private_key: bytes | None  # None for a --node-key identity: the key stays in the user's file
    origin: str


@dataclass(frozen=True, slots=True)
class ClaimedIdentity:
    """What a crawl or ping runs as: its key, and every node id ethcrawl ever used on this database."""

    private_key: bytes
    node_id: bytes
    excluded: frozenset[bytes]  # includes ``node_id``


def node_id_of(private_key: bytes) -> bytes:
    """The node id (keccak256 of the public key) of a 32-byte secp256k1 private key."""
    return node_id_from_pubkey(pubkey_from_private(PrivateKey(private_key)))


def purge_network_node(session: Session, node_id: bytes) -> None:
    """Delete every row that stores ``node_id`` as a network node: its edges, sightings, dials and node row."""
    session.execute(delete(Edge).where(or_(Edge.from_node == node_id, Edge.to_node == node_id)))
    session.execute(delete(Sighting).where(Sighting.node_id == node_id))
    session.execute(delete(DialAttempt).where(DialAttempt.node_id == node_id))
    session.execute(delete(Node).where(Node.node_id == node_id))


def _insert_identity(session: Session, row: dict[str, object]) -> bool:
    """Insert unless the node id is known or (for a generated one) the database has its own key; True if inserted.

    A newly registered identity is purged from the network's tables: it was us.
    """
    table = Identity.__table__
    stmt = _insert_for(session.get_bind().dialect.name, table).values(**row)
    if row["origin"] == GENERATED:
        stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.origin], index_where=table.c.origin == GENERATED)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.node_id])
    # An INSERT's result is a CursorResult; its rowcount is 0 when ON CONFLICT DO NOTHING skipped the row.
    inserted = bool(cast(CursorResult[Any], session.execute(stmt)).rowcount)
    if inserted:
        node_id = row["node_id"]
        assert isinstance(node_id, bytes)
        purge_network_node(session, node_id)
    return inserted


def generated_identity(session: Session, *, now: datetime) -> StoredIdentity:
    """The database's own identity, created on first use.

    Insert first, then read: two processes creating it at once both insert, the unique index on the
    generated origin lets one row win, and both read that row (the loser's insert waits for the winner's
    transaction, then does nothing).
    """
    secret = generate_private_key().secret
    row = {"node_id": node_id_of(secret), "private_key": secret, "origin": GENERATED, "created_at": now}
    _insert_identity(session, row)
    stored = session.scalars(select(Identity).where(Identity.origin == GENERATED)).one()
    if stored.private_key is None or len(stored.private_key) != PRIVATE_KEY_SIZE:
        raise InvalidRecord("the database's generated identity has no usable private key")
    return StoredIdentity(node_id=stored.node_id, private_key=stored.private_key, origin=stored.origin)


def register_identity(session: Session, node_id: bytes, *, now: datetime) -> None:
    """Remember a ``--node-key`` identity (by node id only); purge what was stored for it as a network node."""
    if len(node_id) != NODE_ID_SIZE:
        raise InvalidRecord(f"node id must be {NODE_ID_SIZE} bytes, got {len(node_id)}")
    _insert_identity(session, {"node_id": node_id, "private_key": None, "origin": NODE_KEY, "created_at": now})


def identity_node_ids(session: Session) -> frozenset[bytes]:
    """The node id of every identity ethcrawl has used on this database."""
    return frozenset(session.scalars(select(Identity.node_id)))


def claim_identity(db: Database, *, node_key: bytes | None, now: datetime) -> ClaimedIdentity:
    """In one transaction: the identity to run as (``node_key`` if given, else the database's own) and the excluded ids.

    Blocking (SQL): call it from a worker thread inside trio.
    """
    try:
        with db.session() as session, session.begin():
            if node_key is not None:
                node_id = node_id_of(node_key)
                register_identity(session, node_id, now=now)
                key = node_key
            else:
                stored = generated_identity(session, now=now)
                assert stored.private_key is not None  # generated_identity checked it
                node_id, key = stored.node_id, stored.private_key
            return ClaimedIdentity(private_key=key, node_id=node_id, excluded=identity_node_ids(session))
    except sa_exc.SQLAlchemyError as exc:
        raise translate_error(exc, "crawl database") from exc
