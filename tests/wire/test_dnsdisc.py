"""wire.dnsdisc: the published lists and worked example rebuilt byte for byte, the spec example,
go-ethereum-style parse and shape cases, bounds, round trips and fuzzing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import PrivateKey, compress_pubkey, keccak256, recover_pubkey
from ethcrawl.wire.dnsdisc import (
    BRANCH_PREFIX,
    LEGACY_MAX_CHILDREN,
    MAX_BRANCH_CHILDREN,
    MAX_CHILDREN,
    MAX_ENTRY_LENGTH,
    BadRootSignature,
    BadSignature,
    BranchEntry,
    DNSDiscError,
    ENREntry,
    HashMismatch,
    LinkEntry,
    MalformedEntry,
    RootEntry,
    Tree,
    entry_name,
    is_valid_name,
    make_tree,
    parse_entry,
    parse_root,
    parse_url,
    verify_entry_hash,
)
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import LocalProtocolError, RemoteProtocolError, WireError

from ground_truth import load_fixture_json, load_fixture_json_at_collection

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
EMPTY_BRANCH_NAME = "FDXN3SN67NA5DKA4J2GOK7BVQI"  # name of "enrtree-branch:" (fixtures README)

# folder -> (node count, e=) from the table in fixtures/data/dnstrees/README.md
PUBLISHED = {
    "all.holesky.ethdisco.net@0002ab9": (21, "ADGJZWH44KJOED5W3M7V4BR3YA"),
    "all.sepolia.ethdisco.net@0002ab9": (250, "QRTT4DMIOPWNBVLDXV5EZVP5OU"),
    "all.hoodi.ethdisco.net@0002ab9": (486, "LE63PTMRTTZHJ47JWIDUVA6GK4"),
    "les.goerli.ethdisco.net@6e89061": (7, "REP77DWQ7SY7V4F3Q26VBAS2TA"),
    "les.sepolia.ethdisco.net@e929d2d": (4, "BF6TNHHNXZY3RW4BHJGNGOQWRA"),
    "les.mainnet.ethdisco.net@4b86760": (1, "J2WFAHUMKPEWCWRWDM6DV7M2ZY"),
}
EXAMPLE = load_fixture_json_at_collection("data", "dnstrees", "example-tree.json")

# The example of the devp2p spec and EIP-1459 (its signer's URL key is the one go-ethereum's
# client test syncs it with; the spec text does not name it).
SPEC_ROOT = (
    "enrtree-root:v1 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=1 "
    "sig=o908WmNp7LibOfPsr4btQwatZJ5URBr2ZAuxvK4UWHlsB9sUOTJQaGAlLPVAhM__XJesCHxLISo94z5Z2a463gA"
)
SPEC_SIGNER = "AKPYQIUQIL7PSIACI32J7FGZW56E5FKHEFCCOFHILBIMW3M6LWXS2"
SPEC_ENTRIES = {
    "C7HRFPF3BLGF3YR4DY5KX3SMBE": "enrtree://AM5FCQLWIZX2QFPNJAP7VUERCCRNGRHWZG3YYHIUV7BVDQ5FDPRT2@morenodes.example.org",
    "JWXYDBPXYWG6FX3GMDIBFA6CJ4": "enrtree-branch:2XS2367YHAXJFGLZHVAWLQD4ZY,H4FHT4B454P6UXFD7JCYQ5PWDY,MHTDO6TMUBRIA2XWG5LUDACK24",
    "2XS2367YHAXJFGLZHVAWLQD4ZY": "enr:-HW4QOFzoVLaFJnNhbgMoDXPnOvcdVuj7pDpqRvh6BRDO68aVi5ZcjB3vzQRZH2IcLBGHzo8uUN3snqmgTiE56CH3AMBgmlkgnY0iXNlY3AyNTZrMaECC2_24YYkYHEgdzxlSNKQEnHhuNAbNlMlWJxrJxbAFvA",
    "H4FHT4B454P6UXFD7JCYQ5PWDY": "enr:-HW4QAggRauloj2SDLtIHN1XBkvhFZ1vtf1raYQp9TBW2RD5EEawDzbtSmlXUfnaHcvwOizhVYLtr7e6vw7NAf6mTuoCgmlkgnY0iXNlY3AyNTZrMaECjrXI8TLNXU0f8cthpAMxEshUyQlK-AM0PW2wfrnacNI",
    "MHTDO6TMUBRIA2XWG5LUDACK24": "enr:-HW4QLAYqmrwllBEnzWWs7I5Ev2IAs7x_dZlbYdRdMUx5EyKHDXp7AV5CkuPGUPdvbv1_Ms1CPfhcGCvSElSosZmyoqAgmlkgnY0iXNlY3AyNTZrMaECriawHKWdDRk2xeZkrOXBQ0dfMFLHY4eENZwdufn1S1o",
}
SPEC_LINK = SPEC_ENTRIES["C7HRFPF3BLGF3YR4DY5KX3SMBE"]

KEY = PrivateKey(keccak256(b"ethcrawl test_dnsdisc key"))
OTHER_KEY = PrivateKey(keccak256(b"ethcrawl test_dnsdisc other key"))
LINK_A = LinkEntry.for_key(OTHER_KEY, "a.example.org").text()
LINK_B = LinkEntry.for_key(KEY, "b.example.org").text()


def _records(folder: str) -> list[ENR]:
    nodes = load_fixture_json("data", "dnstrees", folder, "nodes.json")
    return [ENR.from_text(node["record"]) for node in nodes.values()]


def _info(folder: str) -> dict[str, Any]:
    info: dict[str, Any] = load_fixture_json("data", "dnstrees", folder, "enrtree-info.json")
    return info


def _made_records(count: int) -> list[ENR]:
    return [
        ENR.create(PrivateKey(keccak256(b"leaf %d" % i)), seq=1, pairs={"ip": "127.0.0.1", "udp": 30303})
        for i in range(count)
    ]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


# ------------------------------------------------------------------ published lists


@pytest.mark.parametrize("folder", sorted(PUBLISHED))
def test_published_list_rebuilds_to_its_signed_root(folder: str) -> None:
    count, published_eroot = PUBLISHED[folder]
    info = _info(folder)
    records = _records(folder)
    assert len(records) == count
    tree = make_tree(records, info["links"], seq=info["seq"])
    assert tree.root.enr_root == published_eroot
    assert tree.root.link_root == EMPTY_BRANCH_NAME
    signed = parse_root(f"{tree.root.signed_text()} sig={info['signature']}")
    url = parse_url(info["url"])
    assert url.domain == folder.split("@")[0]
    assert signed.verify(url.pubkey)
    signed.check_signature(url.pubkey)
    # v recovers the same key too (geth ignores v, the fixture README says it holds)
    assert compress_pubkey(recover_pubkey(signed.signature, signed.signing_hash())) == url.pubkey


@pytest.mark.parametrize("folder", sorted(PUBLISHED))
def test_published_signature_refuses_another_seq(folder: str) -> None:
    info = _info(folder)
    tree = make_tree(_records(folder), info["links"], seq=info["seq"] + 1)
    signed = parse_root(f"{tree.root.signed_text()} sig={info['signature']}")
    assert not signed.verify(parse_url(info["url"]).pubkey)
    with pytest.raises(BadRootSignature):
        signed.check_signature(parse_url(info["url"]).pubkey)


@pytest.mark.parametrize("folder", [f for f in sorted(PUBLISHED) if f.startswith("all.")])
def test_published_shape_pins_order_and_chunking(folder: str) -> None:
    """Input order is irrelevant (sorted by id); 12 or 18 children per branch give another root."""
    info = _info(folder)
    records = _records(folder)
    _, published_eroot = PUBLISHED[folder]
    assert make_tree(reversed(records), [], seq=info["seq"]).root.enr_root == published_eroot
    for other in (12, LEGACY_MAX_CHILDREN):
        assert make_tree(records, [], seq=info["seq"], max_children=other).root.enr_root != published_eroot


def test_published_tree_names_and_leaf_order() -> None:
    """Every entry is stored under its own hash; records come back sorted by node id."""
    folder = "all.hoodi.ethdisco.net@0002ab9"
    tree = make_tree(_records(folder), [], seq=1)
    for name, text in tree.entries.items():
        assert entry_name(text) == name
        verify_entry_hash(name, text)
    ids = [r.node_id for r in tree.records()]
    assert len(ids) == 486 and ids == sorted(ids)  # type: ignore[type-var]
    # 486 leaves + 38 branches of leaves + 3 branches of branches + root branch + empty l= branch
    assert len(tree.entries) == 486 + 38 + 3 + 1 + 1


def test_besu_truncated_branch_fails_the_hash_check() -> None:
    """A 13-child branch cut at 253 characters (besu's captured all.holesky) no longer hashes to its name."""
    tree = make_tree(_records("all.holesky.ethdisco.net@0002ab9"), [], seq=3695)
    full = next(t for t in tree.entries.values() if t.startswith(BRANCH_PREFIX) and t.count(",") == 12)
    assert len(full) == 15 + 13 * 27 - 1 > 255
    verify_entry_hash(entry_name(full), full)
    with pytest.raises(HashMismatch):
        verify_entry_hash(entry_name(full), full[:253])


# ------------------------------------------------------------------ worked example


def _example_tree() -> Tree:
    records = _records(EXAMPLE["nodes_source"].split("/")[0])
    key = PrivateKey(bytes.fromhex(EXAMPLE["private_key"]))
    return make_tree(records, EXAMPLE["links"], seq=EXAMPLE["seq"]).signed(key)


def test_example_tree_every_txt_record_equal() -> None:
    tree = _example_tree()
    assert tree.txt_records(EXAMPLE["domain"]) == EXAMPLE["txt"]
    assert len(EXAMPLE["txt"]) == 28


def test_example_tree_root_and_signature_byte_for_byte() -> None:
    tree = _example_tree()
    assert tree.root.signed_text() == EXAMPLE["signed_text"]
    assert tree.root.text() == EXAMPLE["root"]
    assert tree.root.enr_root == EXAMPLE["eroot"] and tree.root.link_root == EXAMPLE["lroot"]
    assert base64.urlsafe_b64encode(tree.root.signature).decode().rstrip("=") == EXAMPLE["signature"]
    assert tree.root.verify(bytes.fromhex(EXAMPLE["public_key_compressed"]))


def test_example_tree_leaf_and_link_order() -> None:
    tree = _example_tree()
    assert [r.node_id.hex() for r in tree.records() if r.node_id] == EXAMPLE["node_ids_in_leaf_order"]
    assert tree.links() == EXAMPLE["links"]


def test_example_url_from_key() -> None:
    key = PrivateKey(bytes.fromhex(EXAMPLE["private_key"]))
    assert LinkEntry.for_key(key, EXAMPLE["domain"]).text() == EXAMPLE["url"]
    assert parse_url(EXAMPLE["url"]).pubkey == bytes.fromhex(EXAMPLE["public_key_compressed"])


def test_example_eroot_equals_published_holesky() -> None:
    assert EXAMPLE["eroot"] == PUBLISHED["all.holesky.ethdisco.net@0002ab9"][1]


# ------------------------------------------------------------------ spec / EIP example


def test_spec_example_entries_hash_to_their_names() -> None:
    for name, text in SPEC_ENTRIES.items():
        assert entry_name(text) == name
        assert parse_entry(text).text() == text  # type: ignore[union-attr]


def test_spec_example_root_verifies_with_its_signer() -> None:
    root = parse_root(SPEC_ROOT)
    assert (root.enr_root, root.link_root, root.seq) == ("JWXYDBPXYWG6FX3GMDIBFA6CJ4", "C7HRFPF3BLGF3YR4DY5KX3SMBE", 1)
    assert root.text() == SPEC_ROOT
    assert root.verify(parse_url(f"enrtree://{SPEC_SIGNER}@nodes.example.org").pubkey)
    assert not root.verify(parse_url(SPEC_LINK).pubkey)


def test_spec_example_rebuilds() -> None:
    records = [ENR.from_text(t) for t in SPEC_ENTRIES.values() if t.startswith("enr:")]
    tree = make_tree(records, [SPEC_LINK], seq=1)
    assert tree.root.signed_text() == SPEC_ROOT.rsplit(" sig=", 1)[0]
    assert dict(tree.entries) == SPEC_ENTRIES
    assert tree.links() == [SPEC_LINK]


def test_spec_url() -> None:
    link = parse_url(SPEC_LINK)
    assert link.domain == "morenodes.example.org"
    assert link.text() == SPEC_LINK
    assert _b32(link.pubkey) == "AM5FCQLWIZX2QFPNJAP7VUERCCRNGRHWZG3YYHIUV7BVDQ5FDPRT2"


# ------------------------------------------------------------------ tree shapes


def test_shape_no_leaves() -> None:
    tree = make_tree([], [], seq=0)
    assert tree.root.enr_root == tree.root.link_root == EMPTY_BRANCH_NAME
    assert dict(tree.entries) == {EMPTY_BRANCH_NAME: BRANCH_PREFIX}
    assert tree.records() == [] and tree.links() == []


def test_shape_one_leaf_is_its_own_root() -> None:
    (record,) = _made_records(1)
    tree = make_tree([record], [], seq=5)
    leaf = ENREntry(record=record).text()
    assert tree.root.enr_root == entry_name(leaf)
    assert dict(tree.entries) == {entry_name(leaf): leaf, EMPTY_BRANCH_NAME: BRANCH_PREFIX}
    assert tree.records() == [record]


def test_shape_thirteen_leaves_one_branch() -> None:
    records = _made_records(13)
    tree = make_tree(records, [], seq=1)
    root = parse_entry(tree.entries[tree.root.enr_root])
    assert isinstance(root, BranchEntry) and len(root.children) == 13
    assert all(isinstance(parse_entry(tree.entries[c]), ENREntry) for c in root.children)
    assert len(tree.entries) == 13 + 1 + 1


def test_shape_fourteen_leaves_chunk_of_one_stays_a_leaf() -> None:
    records = _made_records(14)
    tree = make_tree(records, [], seq=1)
    root = parse_entry(tree.entries[tree.root.enr_root])
    assert isinstance(root, BranchEntry) and len(root.children) == 2
    first, last = (parse_entry(tree.entries[c]) for c in root.children)
    assert isinstance(first, BranchEntry) and len(first.children) == 13
    assert isinstance(last, ENREntry)
    assert last.record.node_id == max(r.node_id for r in records if r.node_id)


def test_shape_169_and_170_leaves() -> None:
    records = _made_records(170)
    full = make_tree(records[:169], [], seq=1)
    root = parse_entry(full.entries[full.root.enr_root])
    assert isinstance(root, BranchEntry) and len(root.children) == 13
    for child in root.children:
        branch = parse_entry(full.entries[child])
        assert isinstance(branch, BranchEntry) and len(branch.children) == 13
    over = make_tree(records, [], seq=1)
    root = parse_entry(over.entries[over.root.enr_root])
    assert isinstance(root, BranchEntry) and len(root.children) == 2
    upper, leaf = (parse_entry(over.entries[c]) for c in root.children)
    assert isinstance(upper, BranchEntry) and len(upper.children) == 13
    assert isinstance(leaf, ENREntry)
    assert len(over.records()) == 170


def test_shape_legacy_eighteen_children() -> None:
    """--max-children 18 builds the pre-v1.10.2 shape: 21 leaves -> a branch of 18 and a branch of 3."""
    tree = make_tree(_records("all.holesky.ethdisco.net@0002ab9"), [], seq=1, max_children=LEGACY_MAX_CHILDREN)
    root = parse_entry(tree.entries[tree.root.enr_root])
    assert isinstance(root, BranchEntry)
    sizes = [len(b.children) for b in (parse_entry(tree.entries[c]) for c in root.children) if isinstance(b, BranchEntry)]
    assert sizes == [18, 3]
    assert MAX_CHILDREN == 13


def test_links_keep_their_order_and_single_link_is_the_root() -> None:
    one = make_tree([], [LINK_B], seq=1)
    assert one.root.link_root == entry_name(LINK_B)
    assert one.entries[one.root.link_root] == LINK_B
    for order in ([LINK_A, LINK_B], [LINK_B, LINK_A]):
        tree = make_tree([], order, seq=1)
        assert tree.links() == order
        assert tree.entries[tree.root.link_root] == BRANCH_PREFIX + ",".join(entry_name(x) for x in order)


def test_make_tree_refuses_bad_input() -> None:
    with pytest.raises(MalformedEntry):
        make_tree([], ["enrtree://nokey.example.org"], seq=1)
    valid = ENR.from_text(SPEC_ENTRIES["2XS2367YHAXJFGLZHVAWLQD4ZY"])
    unsigned_no_id = ENR(seq=1, signature=b"", pairs={}, raw=bytes.fromhex("c28001"))
    with pytest.raises(LocalProtocolError, match="v4 identity"):
        make_tree([valid, unsigned_no_id], [], seq=1)
    with pytest.raises(LocalProtocolError):
        make_tree([], [], seq=1, max_children=1)
    with pytest.raises(LocalProtocolError):
        make_tree([], [], seq=2**64)


def test_txt_records_without_domain() -> None:
    tree = make_tree(_made_records(2), [LINK_A], seq=3).signed(KEY)
    records = tree.txt_records("")
    assert records[""] == tree.root.text()
    assert {k: v for k, v in records.items() if k} == dict(tree.entries)
    with_domain = tree.txt_records("list.example.org")
    assert with_domain["list.example.org"] == tree.root.text()
    assert all(k == "list.example.org" or k.endswith(".list.example.org") for k in with_domain)


# ------------------------------------------------------------------ signatures


def test_sign_is_deterministic_and_verifies() -> None:
    tree = make_tree(_made_records(3), [], seq=9)
    a, b = tree.signed(KEY), tree.signed(KEY)
    assert a.root.signature == b.root.signature and len(a.root.signature) == 65
    pub = KEY.public_key.format(compressed=True)
    assert a.root.verify(pub) and a.root.verify(KEY.public_key.format(compressed=False)[1:])
    assert not a.root.verify(OTHER_KEY.public_key.format(compressed=True))
    assert not tree.root.verify(pub)  # unsigned


def test_high_s_signature_is_refused_like_geth() -> None:
    root = make_tree([], [], seq=1).signed(KEY).root
    r, s = root.signature[:32], int.from_bytes(root.signature[32:64], "big")
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([root.signature[64] ^ 1])
    flipped = RootEntry(enr_root=root.enr_root, link_root=root.link_root, seq=root.seq, signature=high)
    assert not flipped.verify(KEY.public_key.format(compressed=True))


def test_bad_signature_alias_is_a_dnsdisc_error() -> None:
    assert BadSignature is BadRootSignature
    assert issubclass(BadRootSignature, DNSDiscError) and issubclass(DNSDiscError, RemoteProtocolError)


# ------------------------------------------------------------------ parsing (modelled on geth's TestParseEntry)

ROOT_OK = SPEC_ROOT
NAME20 = "A" * 20  # 12 bytes: the shortest name geth accepts
NAME52 = "A" * 52  # 32 bytes: the longest


@pytest.mark.parametrize(
    "text",
    [
        ROOT_OK,
        BRANCH_PREFIX,
        f"{BRANCH_PREFIX}{NAME20}",
        f"{BRANCH_PREFIX}{NAME20},{NAME52}",
        SPEC_LINK,
        SPEC_ENTRIES["2XS2367YHAXJFGLZHVAWLQD4ZY"],
    ],
)
def test_parse_valid(text: str) -> None:
    assert parse_entry(text).text() == text


@pytest.mark.parametrize(
    "text",
    [
        ROOT_OK[:-3],  # signature too short
        ROOT_OK + "AAAA",  # signature too long
        ROOT_OK.replace("seq=1", "seq=x"),
        ROOT_OK.replace("seq=1", "seq=18446744073709551616"),
        ROOT_OK.replace("e=JWXY", "e=jwxy"),
        ROOT_OK.replace(" l=", "  l="),
        ROOT_OK + "=",
        ROOT_OK[: ROOT_OK.index(" sig=")],  # unsigned root text
        "enrtree-root:v2 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=1 sig=AA",
        f"{BRANCH_PREFIX}{'A' * 19}",  # child too short
        f"{BRANCH_PREFIX}{'A' * 53}",  # child too long
        f"{BRANCH_PREFIX}{NAME20},",
        f"{BRANCH_PREFIX},{NAME20}",
        f"{BRANCH_PREFIX}{'a' * 26}",
        f"{BRANCH_PREFIX}{'A' * 25}=",
        "enrtree://nodes.example.org",  # no key
        "enrtree://AM5FCQLWIZX2QFPNJAP7VUERCCRNGRHWZG3YYHIUV7BVDQ5FDP@nodes.example.org",  # short key
        "enrtree://AM5FCQLWIZX2QFPNJAP7VUERCCRNGRHWZG3YYHIUV7BVDQ5FDPRT3@nodes.example.org",  # spare bit set
        "enrtree://" + _b32(b"\x02" + b"\xff" * 32) + "@nodes.example.org",  # not on the curve
        SPEC_LINK.replace("@morenodes", "@"),  # empty domain
        SPEC_LINK + " x",
        "enr:",
        "enr:-HW4QOFzoVLaFJnNhbgMoDXPnOvcdVuj7pDpqRvh6BRDO68aVi5ZcjB3vzQRZH2IcLBGHzo8uUN3snqmgTiE56CH3AMBgmlkgnY0iXNlY3AyNTZrMaECC2_24YYkYHEgdzxlSNKQEnHhuNAbNlMlWJxrJxbAFvA=",
        SPEC_ENTRIES["2XS2367YHAXJFGLZHVAWLQD4ZY"].replace("OFzo", "OFzp"),  # signature broken
        "",
        "enrtree-branch",
        "enrtree-foo:bar",
        "ENR:-HW4Q",
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(MalformedEntry):
        parse_entry(text)


def test_parse_root_only_roots() -> None:
    with pytest.raises(MalformedEntry):
        parse_root(BRANCH_PREFIX)


def test_bounds_entry_length_and_children() -> None:
    many = BRANCH_PREFIX + ",".join([NAME20] * (MAX_BRANCH_CHILDREN + 1))
    assert len(many) <= MAX_ENTRY_LENGTH
    with pytest.raises(MalformedEntry, match="children"):
        parse_entry(many)
    ok = BRANCH_PREFIX + ",".join([NAME20] * MAX_BRANCH_CHILDREN)
    assert len(parse_entry(ok).children) == MAX_BRANCH_CHILDREN  # type: ignore[union-attr]
    with pytest.raises(MalformedEntry, match="characters"):
        parse_entry("enr:" + "A" * MAX_ENTRY_LENGTH)
    with pytest.raises(MalformedEntry, match="characters"):
        parse_url("enrtree://" + "A" * MAX_ENTRY_LENGTH)


def test_names_and_hash_check() -> None:
    assert entry_name(BRANCH_PREFIX) == EMPTY_BRANCH_NAME == entry_name(BRANCH_PREFIX.encode())
    assert is_valid_name(EMPTY_BRANCH_NAME) and not is_valid_name(EMPTY_BRANCH_NAME.lower())
    # a 20-character name checks a 12-byte prefix, as geth
    prefix20 = _b32(keccak256(BRANCH_PREFIX.encode())[:15])[:20]
    verify_entry_hash(prefix20, BRANCH_PREFIX)
    with pytest.raises(HashMismatch):
        verify_entry_hash(EMPTY_BRANCH_NAME, BRANCH_PREFIX + " ")
    with pytest.raises(MalformedEntry):
        verify_entry_hash("not-a-name", BRANCH_PREFIX)


def test_entries_refuse_bad_fields() -> None:
    with pytest.raises(LocalProtocolError):
        RootEntry(enr_root="x", link_root=EMPTY_BRANCH_NAME, seq=1)
    with pytest.raises(LocalProtocolError):
        RootEntry(enr_root=EMPTY_BRANCH_NAME, link_root=EMPTY_BRANCH_NAME, seq=1, signature=b"\x00" * 64)
    with pytest.raises(LocalProtocolError):
        BranchEntry(children=("nope",))
    with pytest.raises(LocalProtocolError):
        LinkEntry(pubkey=b"\x02" * 32, domain="a.org")
    with pytest.raises(LocalProtocolError):
        LinkEntry(pubkey=KEY.public_key.format(compressed=True), domain="bad domain")


def test_tree_is_immutable() -> None:
    source = {EMPTY_BRANCH_NAME: BRANCH_PREFIX}
    tree = Tree(make_tree([], [], seq=1).root, source)
    source["X"] = "y"
    assert "X" not in tree.entries
    with pytest.raises(TypeError):
        tree.entries["X"] = "y"  # type: ignore[index]


# ------------------------------------------------------------------ round trips and fuzzing

names = st.binary(min_size=12, max_size=32).map(_b32)
keys = st.binary(min_size=32, max_size=32).filter(lambda b: 0 < int.from_bytes(b, "big") < SECP256K1_N).map(PrivateKey)
labels = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(names, names, st.integers(0, 2**64 - 1), keys)
@settings(max_examples=50, deadline=None)
def test_root_round_trip(eroot: str, lroot: str, seq: int, key: PrivateKey) -> None:
    root = RootEntry(enr_root=eroot, link_root=lroot, seq=seq).signed(key)
    assert parse_entry(root.text()) == root
    assert root.verify(key.public_key.format(compressed=True))


@given(st.lists(names, max_size=MAX_BRANCH_CHILDREN))
def test_branch_round_trip(children: list[str]) -> None:
    branch = BranchEntry(children=tuple(children))
    assert parse_entry(branch.text()) == branch


@given(keys, domains)
@settings(max_examples=50, deadline=None)
def test_link_round_trip(key: PrivateKey, domain: str) -> None:
    link = LinkEntry.for_key(key, domain)
    assert parse_url(link.text()) == link == parse_entry(link.text())


@given(keys, st.integers(0, 2**32), st.integers(1, 65535))
@settings(max_examples=30, deadline=None)
def test_enr_round_trip(key: PrivateKey, seq: int, port: int) -> None:
    entry = ENREntry(record=ENR.create(key, seq=seq, pairs={"udp": port}))
    assert parse_entry(entry.text()) == entry


@given(st.sampled_from(["", "enrtree-root:v1 e=", BRANCH_PREFIX, "enr:", "enrtree://", "enr:-"]), st.text(max_size=600))
@settings(max_examples=400, deadline=None)
def test_fuzzed_entry_text_raises_only_dnsdisc_errors(prefix: str, tail: str) -> None:
    try:
        entry = parse_entry(prefix + tail)
    except DNSDiscError:
        return
    except WireError as exc:  # pragma: no cover - a failure: every parse error is a MalformedEntry
        pytest.fail(f"non-DNSDiscError {exc!r}")
    assert parse_entry(entry.text()) == entry


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_fuzzed_base64_enr_leaves(data: bytes) -> None:
    text = "enr:" + base64.urlsafe_b64encode(data).decode().rstrip("=")
    with pytest.raises(MalformedEntry):
        parse_entry(text)
