"""crawler/dns.py: EIP-1459 lists resolved over DNS from a server on 127.0.0.1 (tests/dnsserver.py), and bounded.

Trees are the worked example of fixtures/data/dnstrees (complete, signed TXT records) or built here by
wire/dnsdisc.make_tree from the published holesky records with throwaway keys.  No test reaches the system resolver:
every DNSResolver is given the test server's address, and in-memory resolvers stand in where a bound needs more
entries than a server answers quickly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
import trio
from dnsserver import TXTServer, serve_txt
from ground_truth import load_fixture_json, load_fixture_json_at_collection

from ethcrawl.crawler.dns import (
    MAX_ENTRIES,
    DNSResolver,
    LookupFailed,
    NoRoot,
    SeqWentBackwards,
    SyncLimits,
    SyncTimeout,
    TreeTooLarge,
    list_records,
    sync_tree,
)
from ethcrawl.wire.crypto import PrivateKey, keccak256
from ethcrawl.wire.dnsdisc import (
    BadRootSignature,
    BranchEntry,
    HashMismatch,
    LinkEntry,
    MalformedEntry,
    RootEntry,
    Tree,
    entry_name,
    make_tree,
)
from ethcrawl.wire.enr import ENR

EXAMPLE = load_fixture_json_at_collection("data", "dnstrees", "example-tree.json")
HOLESKY = "all.holesky.ethdisco.net@0002ab9"
TEST_DEADLINE = 30  # s per test: a few hundred lookups on loopback take well under a second
QUICK = 1.0  # s lookup timeout where a lookup is meant to fail


def holesky_records() -> list[ENR]:
    nodes = load_fixture_json("data", "dnstrees", HOLESKY, "nodes.json")
    return [ENR.from_text(entry["record"]) for entry in nodes.values()]


def key(n: int) -> PrivateKey:
    return PrivateKey(keccak256(b"ethcrawl test_dns key %d" % n))


def url(k: PrivateKey, domain: str) -> str:
    return LinkEntry.for_key(k, domain).text()


def signed_records(k: PrivateKey, domain: str, records: list[ENR], links: list[str] = [], seq: int = 1,
                   **kwargs: int) -> dict[str, str]:  # fmt: skip
    return make_tree(records, links, seq=seq, **kwargs).signed(k).txt_records(domain)


@pytest.fixture
def example() -> Iterator[TXTServer]:
    with serve_txt(EXAMPLE["txt"]) as server:
        yield server


def resolver(server: TXTServer) -> DNSResolver:
    return DNSResolver(server.address, timeout=QUICK)


# ---------------------------------------------------------------------- a good tree


async def test_example_tree_syncs_to_its_records_and_links(example: TXTServer) -> None:
    with trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(example), EXAMPLE["url"], follow_links=False)
    tree = result.tree
    assert tree.root.text() == EXAMPLE["root"]
    assert (tree.root.enr_root, tree.root.link_root, tree.root.seq) == (EXAMPLE["eroot"], EXAMPLE["lroot"], 7)
    assert [r.node_id.hex() for r in tree.records if r.node_id] == EXAMPLE["node_ids_in_leaf_order"]
    assert list(tree.links) == EXAMPLE["links"]
    # Every record is the published one, byte for byte.
    published = {r.node_id: r.to_text() for r in holesky_records()}
    assert {r.node_id: r.to_text() for r in tree.records} == published
    # The entries kept are the tree: served again, they are the very TXT records.
    assert tree.as_tree().txt_records("nodes.example.org") == EXAMPLE["txt"]
    # Every name was looked up once: the root and the 27 entries.
    assert result.fetched == len(EXAMPLE["txt"]) == sum(example.queries.values())
    assert result.dropped == () and result.failed == ()


async def test_a_full_branch_travels_as_several_strings_and_is_joined(example: TXTServer) -> None:
    """A 13-child branch is 365 characters, over one 255-byte string: the client hashes the joined strings."""
    branch = next(text for text in EXAMPLE["txt"].values() if text.startswith("enrtree-branch:") and len(text) > 255)
    assert len(branch) == 365
    got = await resolver(example).txt(f"{entry_name(branch)}.nodes.example.org")
    assert got == [branch]


async def test_strings_cut_anywhere_join_the_same() -> None:
    """geth's Route53 deploy cuts at 253 bytes, others at 255: any cut must give the same tree."""
    with serve_txt(EXAMPLE["txt"], string_size=100) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), EXAMPLE["url"], follow_links=False)
    assert len(result.tree.records) == 21


async def test_a_branch_cut_at_253_characters_is_a_hash_mismatch() -> None:
    """besu's captured holesky tree kept only the first 253 characters of each full branch: refused, not misread."""
    records = dict(EXAMPLE["txt"])
    for name, text in records.items():
        if len(text) > 253:
            records[name] = text[:253]
    with serve_txt(records) as server, trio.fail_after(TEST_DEADLINE), pytest.raises(HashMismatch):
        await sync_tree(resolver(server), EXAMPLE["url"], follow_links=False)


async def test_links_are_followed_with_their_own_keys() -> None:
    records = holesky_records()
    a, b, c = key(1), key(2), key(3)
    served = {
        **signed_records(a, "a.test", records[:5], [url(b, "b.test")]),
        **signed_records(b, "b.test", records[5:12], [url(c, "c.test")]),
        **signed_records(c, "c.test", records[12:]),
    }
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), url(a, "a.test"))
    assert [t.domain for t in result.trees] == ["a.test", "b.test", "c.test"]
    assert {r.node_id for r in result.records()} == {r.node_id for r in records}
    assert result.failed == () and result.dropped == ()


async def test_an_unreachable_linked_tree_is_reported_and_the_rest_kept(example: TXTServer) -> None:
    """The example links to all.sepolia and all.hoodi, which this server does not hold (NXDOMAIN)."""
    with trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(example), EXAMPLE["url"])
    assert len(result.records()) == 21
    assert [link for link, _ in result.failed] == EXAMPLE["links"]
    assert all("no such name" in why for _, why in result.failed)


async def test_list_records_merges_lists_and_reports_the_failed_one_in_a_line() -> None:
    records = holesky_records()
    a, b = key(1), key(2)
    served = {**signed_records(a, "a.test", records[:10]), **signed_records(b, "b.test", records[8:])}
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        found, problems = await list_records(
            resolver(server), [url(a, "a.test"), url(b, "b.test"), url(a, "missing.test"), url(a, "a.test")]
        )
    assert sorted(r.node_id for r in found if r.node_id) == sorted(r.node_id for r in records if r.node_id)
    assert len(problems) == 1 and problems[0].startswith(url(a, "missing.test") + ": ") and "\n" not in problems[0]


# ---------------------------------------------------------------------- bad trees: refused with a typed error


async def test_a_root_signed_by_another_key_is_refused(example: TXTServer) -> None:
    wrong = url(key(9), "nodes.example.org")
    with trio.fail_after(TEST_DEADLINE), pytest.raises(BadRootSignature, match="nodes.example.org"):
        await sync_tree(resolver(example), wrong)
    assert sum(example.queries.values()) == 1  # nothing below an unverified root is fetched


async def test_a_tampered_leaf_is_a_hash_mismatch(example: TXTServer) -> None:
    name = next(n for n, t in example.records.items() if t.startswith("enr:"))
    text = example.records[name]
    assert isinstance(text, str)
    example.records[name] = text[:-1] + ("A" if text[-1] != "A" else "B")
    with trio.fail_after(TEST_DEADLINE), pytest.raises(HashMismatch, match=name.split(".")[0].upper()):
        await sync_tree(resolver(example), EXAMPLE["url"], follow_links=False)


async def test_a_resigned_root_over_a_changed_subtree_with_the_wrong_key_is_refused(example: TXTServer) -> None:
    root = RootEntry(enr_root=EXAMPLE["lroot"], link_root=EXAMPLE["lroot"], seq=8).signed(key(9))
    example.records["nodes.example.org"] = root.text()
    with trio.fail_after(TEST_DEADLINE), pytest.raises(BadRootSignature):
        await sync_tree(resolver(example), EXAMPLE["url"])


async def test_a_seq_below_the_last_one_seen_is_refused(example: TXTServer) -> None:
    r = resolver(example)
    with trio.fail_after(TEST_DEADLINE):
        assert (await sync_tree(r, EXAMPLE["url"], min_seq=7, follow_links=False)).tree.root.seq == 7  # equal is fine
        with pytest.raises(SeqWentBackwards, match="seq 7 is below the 8"):
            await sync_tree(r, EXAMPLE["url"], min_seq=8, follow_links=False)


async def test_a_domain_without_a_root_is_refused() -> None:
    with serve_txt({"nodes.test": ["v=spf1 -all", "hello"]}) as server, trio.fail_after(TEST_DEADLINE):
        with pytest.raises(NoRoot):
            await sync_tree(resolver(server), url(key(1), "nodes.test"))


async def test_a_malformed_root_is_refused() -> None:
    with serve_txt({"nodes.test": "enrtree-root:v1 e=nonsense"}) as server, trio.fail_after(TEST_DEADLINE):
        with pytest.raises(MalformedEntry, match="nodes.test"):
            await sync_tree(resolver(server), url(key(1), "nodes.test"))


async def test_a_missing_domain_and_a_dead_server_are_lookup_failures() -> None:
    with serve_txt({}) as server, trio.fail_after(TEST_DEADLINE):
        with pytest.raises(LookupFailed, match="no such name"):
            await sync_tree(resolver(server), url(key(1), "nodes.test"))
    # The server is gone: its port on 127.0.0.1 answers nothing.
    with trio.fail_after(TEST_DEADLINE), pytest.raises(LookupFailed):
        await sync_tree(DNSResolver(server.address, timeout=0.3), url(key(1), "nodes.test"))


async def test_an_oversized_branch_is_refused() -> None:
    """20 children make a 554-character branch: past what any published tree holds (geth: 13, formerly 18)."""
    k = key(1)
    served = signed_records(k, "nodes.test", holesky_records(), max_children=20)
    assert max(len(t) for t in served.values()) > 512
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE), pytest.raises(TreeTooLarge, match="characters"):
        await sync_tree(resolver(server), url(k, "nodes.test"))


# ---------------------------------------------------------------------- bad trees: dropped and counted


def hand_tree(k: PrivateKey, domain: str, enr_children: Mapping[str, str], link_children: Mapping[str, str] = {},
              seq: int = 1) -> dict[str, str]:  # fmt: skip
    """TXT records of a tree whose two subtree roots are branches over the given (name -> text) entries."""
    entries: dict[str, str] = {**enr_children, **link_children}
    e = BranchEntry(children=tuple(enr_children)).text()
    l = BranchEntry(children=tuple(link_children)).text()  # noqa: E741
    entries[entry_name(e)] = e
    entries[entry_name(l)] = l
    root = RootEntry(enr_root=entry_name(e), link_root=entry_name(l), seq=seq).signed(k)
    return Tree(root, entries).txt_records(domain)


async def test_malformed_entries_and_entries_in_the_wrong_subtree_are_dropped_and_counted() -> None:
    k = key(1)
    good = holesky_records()[:3]
    bad_record = good[0].to_text()[:-4] + "AAAA"  # hashes right (its name is its hash) but its signature fails
    texts = [r.to_text() for r in good] + ["enr:!!!", bad_record, url(key(2), "elsewhere.test")]
    link_texts = [good[1].to_text()]
    served = hand_tree(k, "nodes.test", {entry_name(t): t for t in texts}, {entry_name(t): t for t in link_texts})
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), url(k, "nodes.test"))
    assert [r.node_id for r in result.tree.records] == [r.node_id for r in good]
    assert result.tree.links == ()
    # What was dropped is not kept: the kept entries read back as the codec's tree (dns sync writes it so).
    assert result.tree.as_tree().records() == list(result.tree.records) and result.tree.as_tree().links() == []
    assert dict(result.dropped) == {
        "malformed entry": 2,
        "link in the records subtree": 1,
        "record in the links subtree": 1,
    }


async def test_a_branch_loop_inside_a_tree_is_fetched_once() -> None:
    """Names repeat (a shared subtree, or a name twice in a branch): each is fetched once, the repeats counted.

    A true cycle of branches cannot be built (a branch's name hashes its children's names), so a repeated name is
    the loop a hostile tree can make.
    """
    k = key(1)
    record = holesky_records()[0].to_text()
    leaf = entry_name(record)
    inner = BranchEntry(children=(leaf, leaf)).text()
    inner_name = entry_name(inner)
    served = hand_tree(k, "nodes.test", {inner_name: inner, leaf: record})
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), url(k, "nodes.test"))
    assert len(result.tree.records) == 1
    assert dict(result.dropped) == {"repeated entry": 2}
    assert server.queries[f"{leaf.lower()}.nodes.test"] == 1


async def test_a_loop_of_links_is_detected_and_not_followed() -> None:
    records = holesky_records()
    a, b, c = key(1), key(2), key(3)
    served = {
        **signed_records(a, "a.test", records[:5], [url(b, "b.test")]),
        **signed_records(b, "b.test", records[5:10], [url(c, "c.test")]),
        **signed_records(c, "c.test", records[10:], [url(a, "a.test"), url(b, "b.test")]),
    }
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), url(a, "a.test"))
    assert [t.domain for t in result.trees] == ["a.test", "b.test", "c.test"]
    assert dict(result.dropped) == {"link loop": 2}
    assert server.queries["a.test"] == 1  # each root fetched once
    assert len(result.records()) == len(records)


async def test_a_link_to_a_known_domain_with_another_key_is_dropped() -> None:
    records = holesky_records()
    a, b = key(1), key(2)
    served = {
        **signed_records(a, "a.test", records[:5], [url(b, "b.test"), url(key(7), "b.test")]),
        **signed_records(b, "b.test", records[5:]),
    }
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), url(a, "a.test"))
    assert [t.domain for t in result.trees] == ["a.test", "b.test"]
    assert dict(result.dropped) == {"link with another key for a domain already synced": 1}


# ---------------------------------------------------------------------- bounds


class MemoryResolver:
    """TXT lookups from a dict, for bounds that need more entries than a test server answers quickly."""

    def __init__(self, records: Mapping[str, str], delay: float = 0.0) -> None:
        self.records, self.delay, self.lookups = records, delay, 0

    async def txt(self, name: str) -> list[str]:
        self.lookups += 1
        await trio.sleep(self.delay)
        if name not in self.records:
            raise LookupFailed(f"{name}: no such name")
        return [self.records[name]]


def huge_tree(k: PrivateKey, domain: str, leaves: int) -> dict[str, str]:
    """A signed tree of ``leaves`` distinct (malformed: cheap to make) leaves, 13 children a branch."""
    level = [f"enr:x{i}" for i in range(leaves)]
    entries = {entry_name(t): t for t in level}
    while len(level) > 1:
        level = [BranchEntry(children=tuple(entry_name(t) for t in level[i:i + 13])).text()
                 for i in range(0, len(level), 13)]  # fmt: skip
        entries.update((entry_name(t), t) for t in level)
    empty = BranchEntry(children=()).text()
    entries[entry_name(empty)] = empty
    root = RootEntry(enr_root=entry_name(level[0]), link_root=entry_name(empty), seq=1).signed(k)
    return Tree(root, entries).txt_records(domain)


async def test_a_tree_past_the_entry_bound_is_stopped_before_its_leaves() -> None:
    """A tree of more leaves than MAX_ENTRIES: the walk stops at the level that would pass the bound."""
    k = key(1)
    memory = MemoryResolver(huge_tree(k, "huge.test", MAX_ENTRIES + 1))
    with trio.fail_after(TEST_DEADLINE), pytest.raises(TreeTooLarge, match=f"more than {MAX_ENTRIES} entries"):
        await sync_tree(memory, url(k, "huge.test"))
    assert memory.lookups <= MAX_ENTRIES // 10  # the branches above the leaves, not the leaves


async def test_the_entry_bound_counts_every_linked_tree_too() -> None:
    records = holesky_records()
    a, b = key(1), key(2)
    served = {
        **signed_records(a, "a.test", records[:10], [url(b, "b.test")]),
        **signed_records(b, "b.test", records[10:]),
    }
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), url(a, "a.test"), limits=SyncLimits(max_entries=15))
    assert [t.domain for t in result.trees] == ["a.test"]
    assert "more than 15 entries" in result.failed[0][1]
    assert sum(server.queries.values()) <= 15


async def test_a_chain_of_branches_is_stopped_by_the_depth_bound() -> None:
    k = key(1)
    text = holesky_records()[0].to_text()
    entries = {entry_name(text): text}
    for _ in range(12):
        text = BranchEntry(children=(entry_name(text),)).text()
        entries[entry_name(text)] = text
    empty = BranchEntry(children=()).text()
    entries[entry_name(empty)] = empty
    root = RootEntry(enr_root=entry_name(text), link_root=entry_name(empty), seq=1).signed(k)
    memory = MemoryResolver(Tree(root, entries).txt_records("deep.test"))
    with trio.fail_after(TEST_DEADLINE), pytest.raises(TreeTooLarge, match="nested more than 8 deep"):
        await sync_tree(memory, url(k, "deep.test"))


async def test_too_many_linked_trees_are_not_followed() -> None:
    records = holesky_records()
    keys = [key(i) for i in range(6)]
    served: dict[str, str] = {}
    for i, k in enumerate(keys):
        links = [url(keys[i + 1], f"t{i + 1}.test")] if i + 1 < len(keys) else []
        served |= signed_records(k, f"t{i}.test", records[i : i + 1], links)
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        result = await sync_tree(resolver(server), url(keys[0], "t0.test"), limits=SyncLimits(max_trees=3))
    assert [t.domain for t in result.trees] == ["t0.test", "t1.test", "t2.test"]
    assert result.failed == ((url(keys[3], "t3.test"), "not followed: more than 3 linked trees"),)


async def test_a_slow_server_is_stopped_by_the_time_bound(autojump_clock: trio.abc.Clock) -> None:
    k = key(1)
    memory = MemoryResolver(signed_records(k, "slow.test", holesky_records()), delay=4.0)
    with pytest.raises(SyncTimeout, match="not synced within 10 s"):
        await sync_tree(memory, url(k, "slow.test"), limits=SyncLimits(timeout=10))
    assert trio.current_time() == pytest.approx(10)


def test_the_bounds_hold_a_published_list() -> None:
    """The defaults leave room for every published list (the largest here is all.hoodi: 486 records)."""
    nodes = load_fixture_json("data", "dnstrees", "all.hoodi.ethdisco.net@0002ab9", "nodes.json")
    tree = make_tree([ENR.from_text(e["record"]) for e in nodes.values()], [], seq=1)
    assert len(tree.entries) * 10 < MAX_ENTRIES
    assert max(len(t) for t in tree.entries.values()) <= 512


class SlowDomains(MemoryResolver):
    """Answers at once, except for names under the slow domains."""

    def __init__(self, records: Mapping[str, str], slow: tuple[str, ...]) -> None:
        super().__init__(records)
        self.slow = slow

    async def txt(self, name: str) -> list[str]:
        if name.endswith(self.slow):
            await trio.sleep(1000)
        return await super().txt(name)


async def test_links_not_synced_in_time_are_each_reported(autojump_clock: trio.abc.Clock) -> None:
    records = holesky_records()
    a, b, c = key(1), key(2), key(3)
    served = {
        **signed_records(a, "a.test", records[:5], [url(b, "b.test"), url(c, "c.test")]),
        **signed_records(b, "b.test", records[5:10]),
        **signed_records(c, "c.test", records[10:]),
    }
    result = await sync_tree(SlowDomains(served, ("b.test",)), url(a, "a.test"), limits=SyncLimits(timeout=30))
    assert [t.domain for t in result.trees] == ["a.test"]
    assert result.failed == ((url(b, "b.test"), "not synced within 30 s"), (url(c, "c.test"), "not synced within 30 s"))


async def test_list_records_reports_dropped_entries_of_a_list_it_used() -> None:
    k = key(1)
    good = holesky_records()[:2]
    texts = [r.to_text() for r in good] + ["enr:!!!"]
    served = hand_tree(k, "nodes.test", {entry_name(t): t for t in texts})
    with serve_txt(served) as server, trio.fail_after(TEST_DEADLINE):
        found, problems = await list_records(resolver(server), [url(k, "nodes.test")])
    assert len(found) == 2
    assert problems == [f"{url(k, 'nodes.test')}: dropped 1 entries: malformed entry"]
