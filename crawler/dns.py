"""EIP-1459 node lists, the reading side: resolve a signed ``enrtree://`` tree over DNS into node records.

The codec (entry texts, names, the root signature) is ``ethcrawl.wire.dnsdisc``; this module does the lookups and
the walk, after go-ethereum's ``p2p/dnsdisc`` client: fetch the root at the URL's domain and verify it with the URL's
key, then walk the ``e=`` (records) and ``l=`` (links) subtrees, checking that every entry's text hashes to the name
it was fetched under.  Links name other trees, each signed by its own key; they are followed (breadth first) with
loops and repeats detected.  Everything fetched is bounded (:class:`SyncLimits`): a list is input from whoever runs
the DNS zone (or sits between us and it), and a hostile tree can be built to be endless.

What a bad tree gets: a wrong root signature, a hash mismatch, a seq that went backwards, an oversized entry, a tree
past a bound or a lookup that fails stop that tree with a :class:`DNSListError` (or the wire's
:class:`~ethcrawl.wire.dnsdisc.DNSDiscError`); an entry that hashes right but does not parse (or a record whose
signature fails), an entry in the wrong subtree, a repeated name and a link back to a tree already visited are
dropped and counted in :attr:`SyncResult.dropped`.

Lookups go through :class:`TXTResolver`; :class:`DNSResolver` is dnspython's async resolver on trio (native trio
sockets: a lookup is cancelled with its cancel scope, and many run at once without a thread each, which
``trio.to_thread`` around the blocking resolver would need).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
import trio

from ethcrawl.wire.dnsdisc import (
    BadRootSignature,
    BranchEntry,
    DNSDiscError,
    ENREntry,
    HashMismatch,
    LinkEntry,
    RootEntry,
    Tree,
    parse_entry,
    parse_root,
    parse_url,
    verify_entry_hash,
)
from ethcrawl.wire.enr import ENR

__all__ = [
    "LOOKUP_TIMEOUT",
    "SYNC_TIMEOUT",
    "MAX_ENTRIES",
    "MAX_DEPTH",
    "MAX_TREES",
    "MAX_ENTRY_CHARS",
    "CONCURRENT_LOOKUPS",
    "DNSListError",
    "LookupFailed",
    "NoRoot",
    "SeqWentBackwards",
    "TreeTooLarge",
    "SyncTimeout",
    "TXTResolver",
    "DNSResolver",
    "SyncLimits",
    "SyncedTree",
    "SyncResult",
    "sync_tree",
    "list_records",
]

LOOKUP_TIMEOUT = 5.0  # s per TXT lookup, retries included: go-ethereum dnsdisc's default Config.Timeout
SYNC_TIMEOUT = 120.0  # s for a whole sync, links included: ~5000 entries at 8 lookups at once needs a few seconds
# Entries fetched per sync, over all trees: the largest published list (all.mainnet) holds a few thousand records
# (~1.1 entries per record at 13 children a branch), so 50 000 is room for ten of them, and stops a tree built to
# be endless after minutes, not days.
MAX_ENTRIES = 50_000
# Levels of branches under a subtree root: 13**8 leaves is far past MAX_ENTRIES, so only a chain-shaped tree (a
# branch of one branch of one branch...) built to make us look up names one after another gets this deep.
MAX_DEPTH = 8
MAX_TREES = 16  # trees per sync, the URL's and those it links to (directly or not); published lists link none
# Characters in one entry's text.  The spec wants every entry to fit a 512-byte UDP DNS message: a 300-byte ENR is
# 404 characters, geth's branches are at most 365 (13 children; 500 with the 18 of geth before v1.10.2).  A longer
# "entry" is a branch stuffed with children to fan one lookup out into many.
MAX_ENTRY_CHARS = 512
CONCURRENT_LOOKUPS = 8  # lookups in flight at once: a resolver is shared infrastructure, not ours to flood
ENRTREE_SCHEME = "enrtree://"


class DNSListError(Exception):
    """Root of the errors of reading a node list over DNS (the codec's own errors are ``DNSDiscError``)."""


class LookupFailed(DNSListError):
    """Raised when a TXT lookup fails: no such name, no answer, no server answering in time, no resolver."""


class NoRoot(DNSListError):
    """Raised when the list's domain has TXT records but none is an ``enrtree-root:v1`` entry."""


class SeqWentBackwards(DNSListError):
    """Raised when the root's seq is lower than one seen before for the same list (an old tree replayed)."""


class TreeTooLarge(DNSListError):
    """Raised when a tree passes a bound: entries, depth, linked trees or the size of one entry."""


class SyncTimeout(DNSListError):
    """Raised when a whole sync takes longer than its time bound."""


class TXTResolver(Protocol):
    async def txt(self, name: str) -> list[str]:
        """The TXT records at ``name``, each one's character-strings joined (raises LookupFailed)."""
        ...


class DNSResolver:
    """TXT lookups with dnspython, at ``server`` (host, port) or at the system's resolver (``/etc/resolv.conf``)."""

    def __init__(self, server: tuple[str, int] | None = None, *, timeout: float = LOOKUP_TIMEOUT) -> None:
        try:
            self._resolver = dns.asyncresolver.Resolver(configure=server is None)
        except dns.resolver.NoResolverConfiguration as exc:
            raise LookupFailed(f"no system DNS resolver configured ({exc}); give --dns-server HOST:PORT") from exc
        if server is not None:
            self._resolver.nameservers = [server[0]]
            self._resolver.port = server[1]
        self._resolver.lifetime = timeout
        self.timeout = timeout

    async def txt(self, name: str) -> list[str]:
        # The resolver's lifetime bounds its own retries; the scope is for a resolver that ignores it.
        with trio.move_on_after(self.timeout + 1) as scope:
            try:
                answer = await self._resolver.resolve(name, dns.rdatatype.TXT, search=False)
            except dns.resolver.NXDOMAIN:
                raise LookupFailed(f"{name}: no such name") from None
            except dns.resolver.NoAnswer:
                raise LookupFailed(f"{name}: no TXT record") from None
            except dns.exception.Timeout:
                raise LookupFailed(f"{name}: no answer within {self.timeout:g} s") from None
            except dns.exception.DNSException as exc:
                raise LookupFailed(f"{name}: {exc}") from exc
            except OSError as exc:  # no route to the server, no network at all
                raise LookupFailed(f"{name}: {exc.strerror or exc}") from exc
        if scope.cancelled_caught:
            raise LookupFailed(f"{name}: no answer within {self.timeout:g} s")
        # A record longer than 255 bytes travels as several character-strings (a full branch is 365 characters);
        # its text, and so its hash, is all of them joined.  Entries are ASCII: anything else cannot hash right.
        return [b"".join(rdata.strings).decode("ascii", errors="replace") for rdata in answer]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncLimits:
    """The bounds of one sync (module constants by default; tests shrink them)."""

    max_entries: int = MAX_ENTRIES
    max_depth: int = MAX_DEPTH
    max_trees: int = MAX_TREES
    max_entry_chars: int = MAX_ENTRY_CHARS
    timeout: float = SYNC_TIMEOUT
    concurrency: int = CONCURRENT_LOOKUPS


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncedTree:
    """One verified tree: its URL, signed root, records and links, each in tree order, and the entries kept."""

    url: str
    domain: str
    root: RootEntry
    entries: Mapping[str, str]  # name -> text of every branch and leaf kept (not those dropped)
    records: tuple[ENR, ...]
    links: tuple[str, ...]

    def as_tree(self) -> Tree:
        """As the codec's Tree (what ``dns sign`` builds, ``to-txt`` serves)."""
        return Tree(self.root, self.entries)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """A sync: the URL's tree first, then the trees reached through links, breadth first."""

    trees: tuple[SyncedTree, ...]
    failed: tuple[tuple[str, str], ...] = ()  # (link URL, why) for linked trees that could not be synced
    dropped: tuple[tuple[str, int], ...] = ()  # (why, entries) dropped and counted, not fatal
    fetched: int = 0  # entries looked up (roots included)

    @property
    def tree(self) -> SyncedTree:
        """The tree at the URL that was synced."""
        return self.trees[0]

    def records(self) -> list[ENR]:
        """Every record of every tree, one per node (the highest seq), in the order first met."""
        best: dict[bytes, ENR] = {}
        for tree in self.trees:
            for record in tree.records:
                key = record.node_id or record.to_rlp()
                if key not in best or record.seq > best[key].seq:
                    best[key] = record
        return list(best.values())


@dataclass(slots=True)
class _Walk:
    """The state of one sync: the budget, the counters and the lookup throttle shared by every tree."""

    resolver: TXTResolver
    limits: SyncLimits
    limiter: trio.CapacityLimiter
    fetched: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def spend(self, lookups: int, domain: str) -> None:
        if self.fetched + lookups > self.limits.max_entries:
            raise TreeTooLarge(
                f"{domain}: more than {self.limits.max_entries} entries to look up (stopped after {self.fetched})"
            )
        self.fetched += lookups

    async def root(self, link: LinkEntry, min_seq: int | None) -> RootEntry:
        self.spend(1, link.domain)
        async with self.limiter:
            texts = await self.resolver.txt(link.domain)
        roots = [text for text in texts if text.startswith("enrtree-root:")]
        if not roots:
            raise NoRoot(f"{link.domain}: no enrtree-root:v1 TXT record among {len(texts)}")
        try:
            root = parse_root(roots[0])
        except DNSDiscError as exc:
            raise type(exc)(f"{link.domain}: {exc}") from exc
        if not root.verify(link.pubkey):
            raise BadRootSignature(f"{link.domain}: the root's signature does not verify with the URL's key")
        if min_seq is not None and root.seq < min_seq:
            raise SeqWentBackwards(f"{link.domain}: root seq {root.seq} is below the {min_seq} synced before")
        return root

    async def entry(self, domain: str, name: str) -> str:
        """The text at ``name.domain`` that hashes to ``name``."""
        fqdn = f"{name}.{domain}"
        async with self.limiter:
            texts = await self.resolver.txt(fqdn)
        for text in texts:
            try:
                verify_entry_hash(name, text)
            except DNSDiscError:
                continue  # another TXT record at the name (or a tampered one): only a matching text is the entry
            if len(text) > self.limits.max_entry_chars:
                raise TreeTooLarge(f"{fqdn}: entry of {len(text)} characters (at most {self.limits.max_entry_chars})")
            return text
        raise HashMismatch(f"{fqdn}: no TXT record hashes to the name ({len(texts)} record(s) there)")

    async def level(self, domain: str, names: Sequence[str]) -> list[str]:
        """The texts of ``names``, fetched at once (at most ``concurrency`` in flight); the first failure raises."""
        texts = [""] * len(names)
        failures: list[Exception] = []

        async def fetch(index: int, name: str, cancel_scope: trio.CancelScope) -> None:
            try:
                texts[index] = await self.entry(domain, name)
            except (DNSListError, DNSDiscError) as exc:
                failures.append(exc)
                cancel_scope.cancel()  # the tree is refused: the other lookups of the level are wasted

        async with trio.open_nursery() as nursery:
            for index, name in enumerate(names):
                nursery.start_soon(fetch, index, name, nursery.cancel_scope)
        if failures:
            raise failures[0]
        return texts

    async def subtree(self, domain: str, top: str, entries: dict[str, str], *, links: bool) -> list[ENR | LinkEntry]:
        """The leaves under ``top`` in tree order (depth first, children in order), walked a level at a time.

        ``entries`` gets the text of every entry kept (branches and leaves of the right kind), by name.
        """
        want, wrong = (LinkEntry, ENREntry) if links else (ENREntry, LinkEntry)
        leaves: list[tuple[tuple[int, ...], ENR | LinkEntry]] = []
        seen = {top.upper()}
        level: list[tuple[tuple[int, ...], str]] = [((), top)]
        depth = 0
        while level:
            if depth > self.limits.max_depth:
                raise TreeTooLarge(f"{domain}: branches nested more than {self.limits.max_depth} deep")
            self.spend(len(level), domain)
            texts = await self.level(domain, [name for _, name in level])
            below: list[tuple[tuple[int, ...], str]] = []
            for (path, name), text in zip(level, texts):
                try:
                    entry = parse_entry(text)
                except DNSDiscError:
                    self.dropped["malformed entry"] += 1
                    continue
                if isinstance(entry, BranchEntry):
                    entries[name] = text
                    for index, child in enumerate(entry.children):
                        if child.upper() in seen:
                            # A name met twice is a loop inside the tree or a shared subtree: fetched once.
                            self.dropped["repeated entry"] += 1
                            continue
                        seen.add(child.upper())
                        below.append(((*path, index), child))
                elif isinstance(entry, wrong):
                    self.dropped["record in the links subtree" if links else "link in the records subtree"] += 1
                elif isinstance(entry, want):
                    entries[name] = text
                    leaves.append((path, entry.record if isinstance(entry, ENREntry) else entry))
                else:
                    self.dropped["root entry inside a tree"] += 1
            level = below
            depth += 1
        leaves.sort(key=lambda leaf: leaf[0])
        return [leaf for _, leaf in leaves]

    async def tree(self, link: LinkEntry, min_seq: int | None) -> SyncedTree:
        root = await self.root(link, min_seq)
        entries: dict[str, str] = {}
        link_leaves = await self.subtree(link.domain, root.link_root, entries, links=True)
        record_leaves = await self.subtree(link.domain, root.enr_root, entries, links=False)
        return SyncedTree(
            url=link.text(),
            domain=link.domain,
            root=root,
            entries=MappingProxyType(entries),
            records=tuple(leaf for leaf in record_leaves if isinstance(leaf, ENR)),
            links=tuple(leaf.text() for leaf in link_leaves if isinstance(leaf, LinkEntry)),
        )


def _same_domain(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


async def sync_tree(
    resolver: TXTResolver,
    url: str,
    *,
    min_seq: int | None = None,
    follow_links: bool = True,
    limits: SyncLimits = SyncLimits(),
) -> SyncResult:
    """Fetch and verify the tree at ``url`` (an ``enrtree://KEY@DOMAIN`` URL) and, with ``follow_links``, the trees
    it links to.

    ``min_seq``: the seq synced before for this list; a lower one raises SeqWentBackwards.  The URL's own tree
    failing raises (DNSListError or DNSDiscError); a linked tree failing is recorded in ``failed`` and the others go
    on.  The whole sync is bounded by ``limits``.
    """
    start = parse_url(url)
    walk = _Walk(resolver=resolver, limits=limits, limiter=trio.CapacityLimiter(limits.concurrency))
    trees: list[SyncedTree] = []
    failed: list[tuple[str, str]] = []
    # Breadth first over links; each queued tree carries the domains of the links that led to it.
    queue: list[tuple[tuple[str, ...], str]] = []
    current: str | None = None  # the linked tree being synced
    with trio.move_on_after(limits.timeout) as scope:
        trees.append(await walk.tree(start, min_seq))
        if follow_links:
            queue = [((start.domain,), link) for link in trees[0].links]
        visited = {start.domain.lower(): start.pubkey}
        while queue:
            path, current = queue.pop(0)
            link = parse_url(current)
            known = visited.get(link.domain.lower())
            if known is not None:
                if known != link.pubkey:
                    walk.dropped["link with another key for a domain already synced"] += 1
                elif any(_same_domain(link.domain, d) for d in path):
                    walk.dropped["link loop"] += 1
                else:
                    walk.dropped["link to a tree already synced"] += 1
                continue
            if len(visited) >= limits.max_trees:
                failed.append((current, f"not followed: more than {limits.max_trees} linked trees"))
                continue
            visited[link.domain.lower()] = link.pubkey
            try:
                linked = await walk.tree(link, None)
            except (DNSListError, DNSDiscError) as exc:
                failed.append((current, str(exc)))
                continue
            trees.append(linked)
            queue.extend(((*path, link.domain), nested) for nested in linked.links)
        current = None
    if scope.cancelled_caught:
        if not trees:
            raise SyncTimeout(
                f"{start.domain}: not synced within {limits.timeout:g} s ({walk.fetched} entries fetched)"
            )
        late = ([current] if current is not None else []) + [link for _, link in queue]
        failed.extend((link, f"not synced within {limits.timeout:g} s") for link in late)
    return SyncResult(
        trees=tuple(trees), failed=tuple(failed), dropped=tuple(sorted(walk.dropped.items())), fetched=walk.fetched
    )


async def list_records(
    resolver: TXTResolver, urls: Iterable[str], *, limits: SyncLimits = SyncLimits()
) -> tuple[list[ENR], list[str]]:
    """Crawl seeds from node lists: (the records of every list and of the lists they link to, one per node with
    the highest seq; one line per list or link that failed, and per kind of entry dropped).

    The lists are resolved at once; one that fails is reported and the others go on.  The records are hints, not
    facts: the crawl visits them like any other seed.
    """
    results: dict[str, SyncResult] = {}
    problems: list[str] = []

    async def one(url: str) -> None:
        try:
            results[url] = await sync_tree(resolver, url, limits=limits)
        except (DNSListError, DNSDiscError) as exc:
            problems.append(f"{url}: {exc}")

    unique = list(dict.fromkeys(urls))
    async with trio.open_nursery() as nursery:
        for url in unique:
            nursery.start_soon(one, url)
    # Merged in the order the lists were given, whatever order their lookups finished in.
    merged = SyncResult(trees=tuple(tree for url in unique if url in results for tree in results[url].trees))
    for url in unique:
        if url in results:
            problems.extend(f"{link} (linked from {url}): {why}" for link, why in results[url].failed)
            problems.extend(f"{url}: dropped {count} entries: {why}" for why, count in results[url].dropped)
    return merged.records(), problems
