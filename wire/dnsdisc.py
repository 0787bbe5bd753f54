"""EIP-1459 node lists ("DNS discovery"): entries, names, root signatures and trees, sans-I/O.

A list is a Merkle tree of DNS TXT entries under one domain.  The domain's own
TXT record is the signed root ``enrtree-root:v1 e=<name> l=<name> seq=<n>
sig=<base64url>``; ``e=`` names the subtree of node records (``enr:`` leaves),
``l=`` the subtree of links to other lists (``enrtree://KEY@domain`` leaves).
Inner nodes are ``enrtree-branch:`` entries listing child names, and an entry
lives at ``<name>.<domain>``, its name being base32 of the first 16 bytes of
keccak256 of its text, so the signed root fixes every byte of the tree.

:func:`make_tree` builds the tree exactly as go-ethereum's ``p2p/dnsdisc``
MakeTree does (the published lists are made by it, and their signatures only
verify against that exact shape): leaves sorted by node id, cut in order into
chunks of :data:`MAX_CHILDREN`, a chunk of one entry being that entry itself.

Parsing follows go-ethereum's reader, with explicit bounds on what one entry
may make a client do (:data:`MAX_ENTRY_LENGTH`, :data:`MAX_BRANCH_CHILDREN`).
Resolution over DNS is the crawler's business; nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .crypto import PrivateKey, compress_pubkey, is_valid_pubkey, keccak256, sign_recoverable, verify_compact
from .enr import ENR
from .errors import (
    BadENR,
    BadRootSignature,
    DNSDiscError,
    HashMismatch,
    LocalProtocolError,
    MalformedEntry,
)

__all__ = [
    "ROOT_PREFIX",
    "BRANCH_PREFIX",
    "ENR_PREFIX",
    "LINK_PREFIX",
    "MAX_CHILDREN",
    "LEGACY_MAX_CHILDREN",
    "MAX_ENTRY_LENGTH",
    "MAX_BRANCH_CHILDREN",
    "DNSDiscError",
    "MalformedEntry",
    "HashMismatch",
    "BadRootSignature",
    "BadSignature",
    "RootEntry",
    "BranchEntry",
    "ENREntry",
    "LinkEntry",
    "Entry",
    "Tree",
    "parse_entry",
    "parse_root",
    "parse_url",
    "entry_name",
    "is_valid_name",
    "verify_entry_hash",
    "make_tree",
]

ROOT_PREFIX = "enrtree-root:v1"
BRANCH_PREFIX = "enrtree-branch:"
ENR_PREFIX = "enr:"
LINK_PREFIX = "enrtree://"

# go-ethereum since v1.10.2: as many 27-character names ("," included) as fit in
# 370 characters, so a branch stays inside one DNS response.
MAX_CHILDREN = 370 // 27
LEGACY_MAX_CHILDREN = 18  # go-ethereum before v1.10.2 (March 2021); older published trees have this shape

NAME_HASH_SIZE = 16  # bytes of keccak256 a name keeps (26 base32 characters)
# go-ethereum accepts child names of 12 to 32 hash bytes (isValidHash) and compares
# only that prefix of the entry's hash; we read what it reads.
MIN_NAME_HASH_SIZE = 12  # bytes
MAX_NAME_HASH_SIZE = 32  # bytes
SIGNATURE_SIZE = 65  # bytes, r || s || v
MAX_SEQ = 2**64 - 1  # go-ethereum's uint
# Bounds on one entry, for hostile trees.  Our largest honest entry is a full legacy
# branch (15 + 18 * 27 = 500 characters) or an ENR leaf (at most 404); 2048 leaves room
# for other builders yet stays far below what a 64 KiB TXT record could carry.
MAX_ENTRY_LENGTH = 2048  # characters
# A branch is fan-out a client must fetch; 64 is several times what any builder makes.
MAX_BRANCH_CHILDREN = 64

_BASE32 = re.compile(r"[A-Z2-7]+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# Letters, digits, '-' and '_' in dot-separated labels: what a TXT lookup can name.
_DOMAIN = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
MAX_DOMAIN_LENGTH = 253  # characters, RFC 1035 name limit without the final dot
_ROOT = re.compile(
    re.escape(ROOT_PREFIX) + r" e=([^ ]*) l=([^ ]*) seq=([0-9]{1,20}) sig=([^ ]*)"
)

# The interface the crawler's reader codes against names this error BadSignature;
# wire.errors already has a BadSignature (any signature), which it subclasses.
BadSignature = BadRootSignature


# ------------------------------------------------------------------ encodings


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _b32decode(text: str) -> bytes:
    """Strict unpadded upper-case base32; MalformedEntry otherwise."""
    if not _BASE32.fullmatch(text):
        raise MalformedEntry(f"not base32 (upper case, no padding): {text[:60]!r}")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as exc:
        raise MalformedEntry(f"not base32: {len(text)} characters cannot encode whole bytes") from exc


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    """Strict unpadded URL-safe base64 (Go's RawURLEncoding); MalformedEntry otherwise."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedEntry(f"not unpadded URL-safe base64: {text[:60]!r}")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - excluded by the checks above
        raise MalformedEntry(f"not base64: {exc}") from exc


def entry_name(text: str | bytes) -> str:
    """The name an entry lives under: base32 of keccak256(text)[:16], 26 characters."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return _b32encode(keccak256(data)[:NAME_HASH_SIZE])


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a child name go-ethereum accepts: base32 of 12 to 32 bytes."""
    if not MIN_NAME_HASH_SIZE * 8 // 5 <= len(name) <= (MAX_NAME_HASH_SIZE * 8 + 4) // 5:
        return False
    try:
        size = len(_b32decode(name))
    except MalformedEntry:
        return False
    return MIN_NAME_HASH_SIZE <= size <= MAX_NAME_HASH_SIZE


def verify_entry_hash(name: str, text: str | bytes) -> None:
    """Raise HashMismatch unless ``text`` hashes to ``name`` (as go-ethereum: a prefix of the hash).

    Hash the text exactly as served, its character-strings joined; a TXT record cut
    at 255 bytes fails here, as it must.
    """
    if not is_valid_name(name):
        raise MalformedEntry(f"not an entry name: {name[:60]!r}")
    data = text.encode("utf-8") if isinstance(text, str) else text
    if not keccak256(data).startswith(_b32decode(name)):
        raise HashMismatch(f"entry at {name} hashes to {entry_name(data)}")


def _check_domain(domain: str) -> None:
    if len(domain) > MAX_DOMAIN_LENGTH or not _DOMAIN.fullmatch(domain):
        raise MalformedEntry(f"not a domain name: {domain[:60]!r}")


# ------------------------------------------------------------------ entries


@dataclass(frozen=True, slots=True, kw_only=True)
class RootEntry:
    """The signed root: names of the two subtrees, a sequence number and a 65-byte signature."""

    enr_root: str
    link_root: str
    seq: int
    signature: bytes = b""

    def __post_init__(self) -> None:
        for field_name, name in (("enr_root", self.enr_root), ("link_root", self.link_root)):
            if not is_valid_name(name):
                raise LocalProtocolError(f"RootEntry.{field_name} is not an entry name: {name[:60]!r}")
        if not 0 <= self.seq <= MAX_SEQ:
            raise LocalProtocolError(f"RootEntry.seq {self.seq} out of uint64 range")
        if len(self.signature) not in (0, SIGNATURE_SIZE):
            raise LocalProtocolError(f"RootEntry.signature must be empty or {SIGNATURE_SIZE} bytes")

    def signed_text(self) -> str:
        """The text the signature covers: the root without ``sig=``."""
        return f"{ROOT_PREFIX} e={self.enr_root} l={self.link_root} seq={self.seq}"

    def text(self) -> str:
        return f"{self.signed_text()} sig={_b64encode(self.signature)}"

    def signing_hash(self) -> bytes:
        return keccak256(self.signed_text().encode("ascii"))

    def verify(self, pubkey: bytes) -> bool:
        """Whether r || s is a valid (low-s) signature by ``pubkey`` (33 or 64 bytes); v is ignored, as geth does."""
        if len(self.signature) != SIGNATURE_SIZE:
            return False
        return verify_compact(self.signature[:64], self.signing_hash(), pubkey)

    def check_signature(self, pubkey: bytes) -> None:
        """Raise BadSignature unless :meth:`verify` holds."""
        if not self.verify(pubkey):
            raise BadRootSignature(f"root seq={self.seq} is not signed by {_b32encode(pubkey)[:12]}...")

    def signed(self, key: PrivateKey) -> RootEntry:
        """This root signed by ``key``: RFC 6979 nonces (libsecp256k1's default, as geth), so deterministic."""
        signature = sign_recoverable(key, self.signing_hash())
        return RootEntry(enr_root=self.enr_root, link_root=self.link_root, seq=self.seq, signature=signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchEntry:
    """An inner node: the names of its children, in order."""

    children: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in self.children:
            if not is_valid_name(name):
                raise LocalProtocolError(f"BranchEntry child is not an entry name: {name[:60]!r}")

    def text(self) -> str:
        return BRANCH_PREFIX + ",".join(self.children)


@dataclass(frozen=True, slots=True, kw_only=True)
class ENREntry:
    """A leaf of the ``e=`` subtree: one node record."""

    record: ENR

    def text(self) -> str:
        return ENR_PREFIX + _b64encode(self.record.to_rlp())


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEntry:
    """A leaf of the ``l=`` subtree, and the form of a list's URL: a signer key and a domain."""

    pubkey: bytes
    domain: str

    def __post_init__(self) -> None:
        if len(self.pubkey) != 33 or not is_valid_pubkey(self.pubkey):
            raise LocalProtocolError("LinkEntry.pubkey must be a 33-byte compressed secp256k1 key")
        try:
            _check_domain(self.domain)
        except MalformedEntry as exc:
            raise LocalProtocolError(f"LinkEntry.domain: {exc}") from exc

    def text(self) -> str:
        return f"{LINK_PREFIX}{_b32encode(self.pubkey)}@{self.domain}"

    @classmethod
    def for_key(cls, key: PrivateKey, domain: str) -> LinkEntry:
        """The URL of a list on ``domain`` signed by ``key``."""
        return cls(pubkey=key.public_key.format(compressed=True), domain=domain)


Entry = RootEntry | BranchEntry | ENREntry | LinkEntry


# ------------------------------------------------------------------ parsing


def _check_length(text: str) -> None:
    if len(text) > MAX_ENTRY_LENGTH:
        raise MalformedEntry(f"entry is {len(text)} characters, more than {MAX_ENTRY_LENGTH}")


def parse_root(text: str) -> RootEntry:
    """Parse ``enrtree-root:v1 e=... l=... seq=N sig=...``; MalformedEntry if it is not one."""
    _check_length(text)
    match = _ROOT.fullmatch(text)
    if match is None:
        raise MalformedEntry(f"not a root entry: {text[:80]!r}")
    enr_root, link_root, seq_text, sig_text = match.groups()
    for name in (enr_root, link_root):
        if not is_valid_name(name):
            raise MalformedEntry(f"root names an invalid subtree: {name[:60]!r}")
    seq = int(seq_text)
    if seq > MAX_SEQ:
        raise MalformedEntry(f"root seq {seq} out of uint64 range")
    signature = _b64decode(sig_text)
    if len(signature) != SIGNATURE_SIZE:
        raise MalformedEntry(f"root signature is {len(signature)} bytes, not {SIGNATURE_SIZE}")
    return RootEntry(enr_root=enr_root, link_root=link_root, seq=seq, signature=signature)


def _parse_branch(text: str) -> BranchEntry:
    body = text[len(BRANCH_PREFIX):]
    if not body:
        return BranchEntry(children=())
    children = body.split(",")
    if len(children) > MAX_BRANCH_CHILDREN:
        raise MalformedEntry(f"branch has {len(children)} children, more than {MAX_BRANCH_CHILDREN}")
    for name in children:
        if not is_valid_name(name):
            raise MalformedEntry(f"branch names an invalid child: {name[:60]!r}")
    return BranchEntry(children=tuple(children))


def _parse_enr(text: str) -> ENREntry:
    if text.endswith("="):  # ENR.from_text allows padding; go-ethereum's leaf decoder does not
        raise MalformedEntry("enr: leaf must be unpadded base64")
    try:
        record = ENR.from_text(text)
    except BadENR as exc:
        raise MalformedEntry(f"bad node record: {exc}") from exc
    return ENREntry(record=record)


def parse_url(url: str) -> LinkEntry:
    """Parse ``enrtree://<base32 compressed key>@<domain>``; MalformedEntry if it is not one."""
    _check_length(url)
    if not url.startswith(LINK_PREFIX):
        raise MalformedEntry(f"not an enrtree:// URL: {url[:80]!r}")
    key_text, at, domain = url[len(LINK_PREFIX):].partition("@")
    if not at:
        raise MalformedEntry(f"enrtree URL has no public key: {url[:80]!r}")
    pubkey = _b32decode(key_text)
    # Go's decoder ignores the last character's spare bit; we insist on the one spelling.
    if len(pubkey) != 33 or not is_valid_pubkey(pubkey) or _b32encode(pubkey) != key_text:
        raise MalformedEntry(f"enrtree URL key is not a compressed secp256k1 key: {key_text[:60]!r}")
    _check_domain(domain)
    return LinkEntry(pubkey=pubkey, domain=domain)


def parse_entry(text: str) -> Entry:
    """Parse any tree entry: root, branch, ``enr:`` leaf or ``enrtree://`` link.

    Raises MalformedEntry for anything else, a record that does not verify included.
    """
    _check_length(text)
    if text.startswith(ROOT_PREFIX):
        return parse_root(text)
    if text.startswith(BRANCH_PREFIX):
        return _parse_branch(text)
    if text.startswith(ENR_PREFIX):
        return _parse_enr(text)
    if text.startswith(LINK_PREFIX):
        return parse_url(text)
    raise MalformedEntry(f"unknown entry type: {text[:40]!r}")


# ------------------------------------------------------------------ trees


@dataclass(frozen=True, slots=True)
class Tree:
    """A whole list: the root and every other entry by name (both subtrees, their roots included)."""

    root: RootEntry
    entries: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))

    def signed(self, key: PrivateKey) -> Tree:
        return Tree(self.root.signed(key), self.entries)

    def txt_records(self, domain: str) -> dict[str, str]:
        """TXT records to serve: ``domain`` holds the root, ``<name>.<domain>`` each entry.

        With ``domain == ""`` the names stand alone, as go-ethereum's ToTXT("").
        """
        records = {domain: self.root.text()}
        for name, text in self.entries.items():
            records[f"{name}.{domain}" if domain else name] = text
        return records

    def _walk(self, name: str, seen: set[str]) -> Iterator[Entry]:
        """Leaves under ``name`` in tree order; names missing from ``entries`` are skipped.

        An entry that does not parse raises MalformedEntry: a tree from the wire is checked as it is fetched.
        """
        stack = [name]
        while stack:
            current = stack.pop()
            text = self.entries.get(current)
            if text is None or current in seen:
                continue
            seen.add(current)
            entry = parse_entry(text)
            if isinstance(entry, BranchEntry):
                stack.extend(reversed(entry.children))
            else:
                yield entry

    def records(self) -> list[ENR]:
        """The node records of the ``e=`` subtree, in tree order (by node id for a tree we made)."""
        return [e.record for e in self._walk(self.root.enr_root, set()) if isinstance(e, ENREntry)]

    def links(self) -> list[str]:
        """The ``enrtree://`` links of the ``l=`` subtree, in tree order (the order given to make_tree)."""
        return [e.text() for e in self._walk(self.root.link_root, set()) if isinstance(e, LinkEntry)]


def _node_id(record: ENR) -> bytes:
    node_id = record.node_id
    if node_id is None or not record.signature:
        raise LocalProtocolError(f"cannot list a record without a v4 identity and signature: {record}")
    return node_id


def _build(texts: list[str], entries: dict[str, str], max_children: int) -> str:
    """go-ethereum's Tree.build: the text of the subtree root over ``texts``, children stored in ``entries``."""
    if len(texts) == 1:
        return texts[0]
    if len(texts) <= max_children:
        for text in texts:
            entries[entry_name(text)] = text
        return BranchEntry(children=tuple(entry_name(text) for text in texts)).text()
    subtrees: list[str] = []
    for start in range(0, len(texts), max_children):
        subtree = _build(texts[start:start + max_children], entries, max_children)
        entries[entry_name(subtree)] = subtree
        subtrees.append(subtree)
    return _build(subtrees, entries, max_children)


def make_tree(
    records: Iterable[ENR], links: Iterable[str], *, seq: int, max_children: int = MAX_CHILDREN
) -> Tree:
    """Build the unsigned tree go-ethereum's MakeTree builds from the same records, links and seq.

    Records are sorted by node id; links keep their order.  ``max_children`` is 13
    since go-ethereum v1.10.2 (18 before).  Raises LocalProtocolError for an unsigned
    or non-v4 record, MalformedEntry for a link that is no ``enrtree://`` URL.
    """
    if max_children < 2:
        raise LocalProtocolError(f"max_children must be at least 2, not {max_children}")
    ordered = sorted(records, key=_node_id)
    enr_texts = [ENREntry(record=record).text() for record in ordered]
    link_texts = [parse_url(link).text() for link in links]
    entries: dict[str, str] = {}
    enr_root = _build(enr_texts, entries, max_children)
    entries[entry_name(enr_root)] = enr_root
    link_root = _build(link_texts, entries, max_children)
    entries[entry_name(link_root)] = link_root
    root = RootEntry(enr_root=entry_name(enr_root), link_root=entry_name(link_root), seq=seq)
    return Tree(root, entries)
