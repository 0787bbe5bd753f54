"""wire.enr: the EIP-778 vector, every real record in fixtures/, odd values, limits, fuzzing."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import PrivateKey, keccak256, pubkey_from_private, sign_recoverable
from ethcrawl.wire.enr import ENR, MAX_RECORD_SIZE
from ethcrawl.wire.errors import BadENR, LocalProtocolError, WireError
from ethcrawl.wire.forkid import ForkId
from ethcrawl.wire.rlpcodec import decode, encode, encode_uint

from ground_truth import load_fixture_json, load_fixture_json_at_collection

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

EIP778 = load_fixture_json_at_collection("vectors", "enr_eip778.json")["records"]
V5_BOOTNODES = load_fixture_json_at_collection("vectors", "bootnodes.json")["v5"]
# file -> record count stated in fixtures/data/README.md
DNSLISTS = {"sepolia": 250, "holesky": 21, "hoodi": 486, "mainnet.part": 309}

KEY = PrivateKey(bytes.fromhex(EIP778[0]["private_key"]))


def _text_of(raw: bytes) -> str:
    return "enr:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _signed_raw(items: list[Any], key: PrivateKey = KEY) -> bytes:
    """[signature, *items] with a genuine v4 signature over items (even unsorted ones)."""
    signature = sign_recoverable(key, keccak256(encode(items)))[:64]
    return encode([signature, *items])


# ---------------------------------------------------------------- EIP-778 vector


@pytest.mark.parametrize("vector", EIP778, ids=lambda v: v["node_id"][:8])
def test_eip778_vector_decodes_and_verifies(vector: dict[str, Any]) -> None:
    record = ENR.from_text(vector["text"])
    assert record.verify()
    assert record.seq == vector["seq"]
    assert record.signature.hex() == vector["signature"]
    assert record.node_id is not None and record.node_id.hex() == vector["node_id"]
    assert record.node_id == keccak256(pubkey_from_private(PrivateKey(bytes.fromhex(vector["private_key"]))))
    pairs = vector["pairs"]
    assert [k.decode() for k in record.pairs] == sorted(pairs)
    assert record.id_scheme == pairs["id"]
    assert record.ip == ipaddress.IPv4Address(pairs["ip"])
    assert record.public_key is not None and record.public_key.hex() == pairs["secp256k1"]
    assert record.udp == pairs["udp"]
    assert (record.tcp, record.ip6, record.udp6, record.tcp6, record.eth) == (None, None, None, None, None)
    assert record.to_text() == vector["text"]
    assert _text_of(record.to_rlp()) == vector["text"]


@pytest.mark.parametrize("vector", EIP778, ids=lambda v: v["node_id"][:8])
def test_eip778_create_reproduces_the_text(vector: dict[str, Any]) -> None:
    key = PrivateKey(bytes.fromhex(vector["private_key"]))
    # id and secp256k1 are filled in by create(); ip given as a string, udp as an int.
    made = ENR.create(key, seq=vector["seq"], pairs={"udp": vector["pairs"]["udp"], "ip": vector["pairs"]["ip"]})
    assert made.to_text() == vector["text"]
    # ...and the same when the caller spells out every pair (secp256k1 in raw 64-byte form).
    explicit = ENR.create(
        key,
        seq=vector["seq"],
        pairs={
            b"id": "v4",
            "secp256k1": pubkey_from_private(key),
            "ip": ipaddress.IPv4Address(vector["pairs"]["ip"]),
            "udp": vector["pairs"]["udp"],
        },
    )
    assert explicit.to_text() == vector["text"]
    assert explicit == ENR.from_text(vector["text"])


def test_eip778_to_dict() -> None:
    record = ENR.from_text(EIP778[0]["text"])
    assert record.to_dict() == {
        "node_id": EIP778[0]["node_id"],
        "seq": 1,
        "ip": "127.0.0.1",
        "udp": 30303,
        "tcp": None,
        "ip6": None,
        "udp6": None,
        "tcp6": None,
        "other": {"id": "v4", "secp256k1": EIP778[0]["pairs"]["secp256k1"]},
        "valid_signature": True,
    }


def test_eip778_to_node() -> None:
    node = ENR.from_text(EIP778[0]["text"]).to_node()
    assert node.pubkey == pubkey_from_private(KEY)
    assert (node.ip, node.udp, node.tcp) == (ipaddress.IPv4Address("127.0.0.1"), 30303, None)
    assert node.node_id.hex() == EIP778[0]["node_id"]


# ---------------------------------------------------------------- real records


@pytest.mark.parametrize("network", list(DNSLISTS))
def test_every_dnslist_record_decodes_verifies_and_matches_its_node_id(network: str) -> None:
    listing = load_fixture_json("data", "dnslists", f"{network}.nodes.json")
    assert len(listing) == DNSLISTS[network]
    for node_id, entry in listing.items():
        record = ENR.from_text(entry["record"])  # verify=True: raises on a bad signature
        assert record.verify(), node_id
        assert record.node_id is not None and record.node_id.hex() == node_id
        assert record.seq == entry["seq"], node_id
        assert record.to_text() == entry["record"].rstrip("=")
        assert record.to_node().node_id.hex() == node_id
        # every record here announces the execution layer's eth entry
        eth = record.eth
        assert eth is not None and len(eth) == 1 and len(eth[0].hash) == 4, node_id
        assert record.to_dict()["eth"] == [{"fork_hash": eth[0].hash.hex(), "fork_next": eth[0].next}]


def test_dnslist_records_with_ipv6_expose_it() -> None:
    listing = load_fixture_json("data", "dnslists", "sepolia.nodes.json")
    records = [ENR.from_text(e["record"]) for e in listing.values()]
    with_ip6 = [r for r in records if b"ip6" in r.pairs]
    assert with_ip6, "sepolia list has records with ip6"
    for record in with_ip6:
        assert isinstance(record.ip6, ipaddress.IPv6Address)
        assert record.to_dict()["ip6"] == str(record.ip6)


@pytest.mark.parametrize("text", V5_BOOTNODES, ids=[f"v5-{i}" for i in range(len(V5_BOOTNODES))])
def test_consensus_bootnode_records(text: str) -> None:
    record = ENR.from_text(text)
    assert record.verify()
    eth2 = record.eth2
    assert eth2 is not None and len(eth2) == 16
    digest = record.to_dict()["other"]["eth2"]["fork_digest"]
    assert digest == eth2[:4].hex()
    assert record.eth is None
    if b"attnets" in record.pairs:
        assert record.attnets is not None and len(record.attnets) == 8


# ---------------------------------------------------------------- the eth entry, odd values


def _with(**extra: object) -> ENR:
    return ENR.create(KEY, seq=7, pairs={"ip": "10.0.0.1", "udp": 30303, "tcp": 30304, **extra})


def test_eth_entry_geth_form_with_extra_elements() -> None:
    fork = ForkId(hash=bytes.fromhex("9f3d2254"), next=0)
    # extra list elements after the fork id are reserved for the future and ignored
    record = _with(eth=[fork, [b"future"], b"x"])
    assert record.eth == [fork]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(encode([[bytes.fromhex("9f3d2254"), encode_uint(1_700_000_000)]]), id="entry-in-bytes"),
        pytest.param(encode([bytes.fromhex("9f3d2254"), encode_uint(1_700_000_000)]), id="bare-forkid-in-bytes"),
    ],
)
def test_eth_entry_chainsafe_byte_string_form(value: bytes) -> None:
    record = _with(eth=value)
    assert record.verify()
    assert record.eth == [ForkId(hash=bytes.fromhex("9f3d2254"), next=1_700_000_000)]


ODD_ETH = [
    pytest.param(b"", id="empty-bytes"),
    pytest.param(b"\x01\x02", id="bytes-not-rlp"),
    pytest.param([], id="empty-list"),
    pytest.param([b"abc", 1], id="bare-forkid-not-wrapped-with-bad-hash"),
    pytest.param([[b"abc", 1]], id="hash-3-bytes"),
    pytest.param([[b"abcd", b"\x00\x01"]], id="next-leading-zero"),
    pytest.param([[b"abcd", b"\x01" * 9]], id="next-over-64-bits"),
    pytest.param([[b"abcd"]], id="forkid-one-field"),
    pytest.param([b"abcd"], id="list-of-bytes"),
    pytest.param(encode(b"just bytes"), id="bytes-holding-rlp-bytes"),
]


@pytest.mark.parametrize("value", ODD_ETH)
def test_odd_eth_value_leaves_the_record_readable(value: object) -> None:
    record = ENR.from_rlp(_with(eth=value).to_rlp())
    assert record.verify()
    assert record.eth is None
    assert (record.ip, record.udp, record.tcp) == (ipaddress.IPv4Address("10.0.0.1"), 30303, 30304)
    view = record.to_dict()
    assert "eth" not in view
    assert view["other"]["eth"] == encode(record.pairs[b"eth"]).hex()  # the raw value is kept


@pytest.mark.parametrize(
    ("key", "value", "accessor"),
    [
        ("ip", b"\x0a\x00\x00", "ip"),
        ("ip", [b"\x0a\x00\x00\x01"], "ip"),
        ("ip6", b"\x00" * 4, "ip6"),
        ("udp", b"\x00\x01", "udp"),
        ("udp", b"\x01\x00\x00", "udp"),
        ("tcp", [b"\x01"], "tcp"),
        ("udp6", b"\xff\xff\xff", "udp6"),
        ("tcp6", b"\x00", "tcp6"),
        ("eth2", [b"x"], "eth2"),
        ("attnets", [], "attnets"),
        ("syncnets", [b""], "syncnets"),
    ],
)
def test_odd_known_values_read_as_none_and_stay_in_other(key: str, value: object, accessor: str) -> None:
    record = ENR.create(KEY, seq=1, pairs={key: value} if key == "ip" else {"ip": "10.0.0.1", key: value})
    assert getattr(record, accessor) is None
    assert record.verify() and record.node_id is not None
    assert record.to_dict()["other"][key] == encode(record.pairs[key.encode()]).hex()


def test_bad_secp256k1_value_makes_verify_false_not_an_exception() -> None:
    good = ENR.from_text(EIP778[0]["text"])
    items: list[Any] = [encode_uint(1), b"id", b"v4", b"secp256k1", b"\x05" + bytes(32)]
    record = ENR.from_rlp(encode([good.signature, *items]), verify=False)
    assert (record.public_key, record.public_key_raw, record.node_id) == (None, None, None)
    assert not record.verify()
    with pytest.raises(BadENR, match="no valid 33-byte"):
        record.check_signature()
    with pytest.raises(BadENR, match="no valid secp256k1"):
        record.to_node()
    assert record.to_dict()["node_id"] is None


def test_ipv6_only_record_uses_ip6_ports_with_fallback() -> None:
    record = ENR.create(KEY, seq=1, pairs={"ip6": "2001:db8::1", "udp6": 9000, "tcp": 30303})
    node = record.to_node()
    assert (node.ip, node.udp, node.tcp) == (ipaddress.IPv6Address("2001:db8::1"), 9000, 30303)


def test_unknown_key_is_kept_verbatim_and_shown_as_rlp_hex() -> None:
    record = _with(**{"zz": [b"a", [b"b"]]})
    again = ENR.from_rlp(record.to_rlp())
    assert again.pairs[b"zz"] == [b"a", [b"b"]]
    assert again.to_dict()["other"]["zz"] == encode([b"a", [b"b"]]).hex()


# ---------------------------------------------------------------- structure and limits


def test_record_of_exactly_300_bytes_is_accepted_and_301_rejected() -> None:
    base = len(ENR.create(KEY, seq=1, pairs={"x": b""}).to_rlp())
    # 56+ byte strings take a 2-byte prefix, so walk the pad length up to 300 exactly.
    pad = MAX_RECORD_SIZE - base - 4
    while len(ENR.create(KEY, seq=1, pairs={"x": b"p" * (pad + 1)}).to_rlp()) < MAX_RECORD_SIZE:
        pad += 1
    exact = ENR.create(KEY, seq=1, pairs={"x": b"p" * (pad + 1)})
    assert len(exact.to_rlp()) == MAX_RECORD_SIZE
    assert ENR.from_rlp(exact.to_rlp()) == exact
    with pytest.raises(LocalProtocolError, match="more than 300"):
        ENR.create(KEY, seq=1, pairs={"x": b"p" * (pad + 2)})
    items: list[Any] = [encode_uint(1), b"id", b"v4", b"secp256k1", KEY.public_key.format(), b"x", b"p" * (pad + 2)]
    with pytest.raises(BadENR, match="301 bytes"):
        ENR.from_rlp(_signed_raw(items))


def test_oversized_text_is_rejected_before_decoding() -> None:
    with pytest.raises(BadENR, match="too long"):
        ENR.from_text("enr:" + "A" * 5000)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        pytest.param([encode_uint(1), b"ip", b"\x01\x02\x03\x04", b"id", b"v4"], "keys not sorted", id="unsorted"),
        pytest.param([encode_uint(1), b"id", b"v4", b"id", b"v4"], "duplicate key", id="duplicate"),
        pytest.param([encode_uint(1), b"id", b"v4", b"ip"], "odd number", id="key-without-value"),
        pytest.param([b"\x00\x01", b"id", b"v4"], "leading zero", id="seq-not-canonical"),
        pytest.param([b"\x01" * 9, b"id", b"v4"], "64 bits", id="seq-over-64-bits"),
        pytest.param([[b"\x01"], b"id", b"v4"], "seq", id="seq-is-a-list"),
        pytest.param([encode_uint(1), [b"id"], b"v4"], "key", id="key-is-a-list"),
    ],
)
def test_bad_structure_is_rejected(items: list[Any], message: str) -> None:
    # Correctly signed, so only the structure can be what is rejected.
    with pytest.raises(BadENR, match=message):
        ENR.from_rlp(_signed_raw(items), verify=False)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(encode(b"not a list"), id="bytes"),
        pytest.param(encode([bytes(64)]), id="one-element"),
        pytest.param(encode([[b"sig"], b"\x01"]), id="signature-is-a-list"),
        pytest.param(encode([bytes(64), b"\x01"]) + b"\x00", id="trailing-byte"),
        pytest.param(bytes.fromhex("f84b"), id="truncated-header"),
    ],
)
def test_non_records_are_rejected(raw: bytes) -> None:
    with pytest.raises(BadENR):
        ENR.from_rlp(raw)


def test_signature_mismatch() -> None:
    good = ENR.from_text(EIP778[0]["text"])
    tampered = bytearray(good.to_rlp())
    tampered[-1] ^= 1  # the udp port
    with pytest.raises(BadENR, match="does not match"):
        ENR.from_rlp(bytes(tampered))
    record = ENR.from_rlp(bytes(tampered), verify=False)
    assert not record.verify()
    assert record.udp == 30303 ^ 1
    assert record.to_dict()["valid_signature"] is False


def test_high_s_signature_is_rejected_like_geth() -> None:
    good = ENR.from_text(EIP778[0]["text"])
    r, s = good.signature[:32], int.from_bytes(good.signature[32:], "big")
    # (r, n - s) is mathematically valid too, but geth's VerifySignature refuses malleable high-s forms.
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big")
    items = decode(good.to_rlp())
    assert isinstance(items, list)
    record = ENR.from_rlp(encode([flipped, *items[1:]]), verify=False)
    assert not record.verify()


@pytest.mark.parametrize("length", [0, 63, 65])
def test_signature_of_wrong_length_does_not_verify(length: int) -> None:
    items = decode(ENR.from_text(EIP778[0]["text"]).to_rlp())
    assert isinstance(items, list)
    record = ENR.from_rlp(encode([b"\x01" * length, *items[1:]]), verify=False)
    assert not record.verify()


@pytest.mark.parametrize(
    ("pairs", "shown"),
    [
        pytest.param([b"id", b"v5"], "'v5'", id="v5"),
        pytest.param([], "no", id="missing"),
        pytest.param([b"id", [b"v4"]], "[b'v4']", id="id-is-a-list"),
    ],
)
def test_unknown_identity_scheme_decodes_but_does_not_verify(pairs: list[Any], shown: str) -> None:
    items = [encode_uint(3), *pairs, b"secp256k1", KEY.public_key.format(compressed=True)]
    raw = _signed_raw(items)
    with pytest.raises(BadENR, match="identity scheme"):
        ENR.from_rlp(raw)
    record = ENR.from_rlp(raw, verify=False)
    assert not record.verify()
    assert record.node_id is None
    with pytest.raises(BadENR, match=shown.replace("[", r"\[").replace("]", r"\]")):
        record.check_signature()


# ---------------------------------------------------------------- text form


def test_padding_is_tolerated() -> None:
    text = EIP778[0]["text"]
    padded = text + "=" * (-(len(text) - 4) % 4)
    assert padded != text
    assert ENR.from_text(padded).to_text() == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(EIP778[0]["text"][4:], "must start with", id="no-prefix"),
        pytest.param("ENR:" + EIP778[0]["text"][4:], "must start with", id="upper-prefix"),
        pytest.param(EIP778[0]["text"].replace("_", "/"), "not base64", id="standard-alphabet"),
        pytest.param(EIP778[0]["text"][:40] + "!" + EIP778[0]["text"][41:], "not base64", id="bang"),
        pytest.param(EIP778[0]["text"] + " ", "not base64", id="trailing-space"),
        pytest.param("enr:A", "whole bytes", id="one-char"),
        pytest.param("enr:", "malformed", id="empty-body"),
        pytest.param(EIP778[0]["text"][:-3], "malformed", id="truncated"),
    ],
)
def test_bad_text_is_rejected(text: str, message: str) -> None:
    with pytest.raises(BadENR, match=message):
        ENR.from_text(text)


# ---------------------------------------------------------------- create() misuse


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"seq": -1, "pairs": {}}, "seq", id="negative-seq"),
        pytest.param({"seq": 2**64, "pairs": {}}, "seq", id="seq-too-big"),
        pytest.param({"seq": 1, "pairs": {"udp": -5}}, "negative", id="negative-value"),
        pytest.param({"seq": 1, "pairs": {"flag": True}}, "bool", id="bool"),
        pytest.param({"seq": 1, "pairs": {"x": 1.5}}, "float", id="float"),
        pytest.param({"seq": 1, "pairs": {"ip": "not-an-ip"}}, "ip", id="bad-ip-string"),
        pytest.param({"seq": 1, "pairs": {"id": "v5"}}, "v4 scheme", id="other-scheme"),
        pytest.param({"seq": 1, "pairs": {"secp256k1": b"\x02" + bytes(32)}}, "signing key", id="other-key"),
        pytest.param({"seq": 1, "pairs": {"secp256k1": b"\xff" * 64}}, "not a public key", id="off-curve-key"),
        pytest.param({"seq": 1, "pairs": {"ip": "10.0.0.1", b"ip": "10.0.0.2"}}, "twice", id="str-and-bytes-key"),
    ],
)
def test_create_refuses_misuse(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        ENR.create(KEY, **kwargs)


def test_record_is_immutable_and_compares_by_bytes() -> None:
    pairs: dict[str, object] = {"udp": 1}
    record = ENR.create(KEY, seq=1, pairs=pairs)
    pairs["udp"] = 2
    assert record.udp == 1
    with pytest.raises(TypeError):
        record.pairs[b"udp"] = b"\x02"  # type: ignore[index]
    assert record == ENR.from_rlp(record.to_rlp())
    assert hash(record) == hash(ENR.from_rlp(record.to_rlp()))
    assert record != ENR.create(KEY, seq=2, pairs={"udp": 1})


def test_constructor_checks_raw_matches_fields() -> None:
    record = ENR.from_text(EIP778[0]["text"])
    with pytest.raises(LocalProtocolError, match="raw"):
        ENR(seq=2, signature=record.signature, pairs=record.pairs, raw=record.raw)


# ---------------------------------------------------------------- property tests

_RESERVED = {b"id", b"secp256k1"}
keys = st.binary(min_size=1, max_size=8).filter(lambda k: k not in _RESERVED)
leaf = st.one_of(st.binary(max_size=12), st.integers(min_value=0, max_value=2**64 - 1))
values = st.one_of(leaf, st.lists(st.one_of(leaf, st.lists(leaf, max_size=2)), max_size=3))


@settings(max_examples=150, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=SECP256K1_N - 1),
    seq=st.integers(min_value=0, max_value=2**64 - 1),
    pairs=st.dictionaries(keys, values, max_size=4),
)
def test_create_text_round_trip(secret: int, seq: int, pairs: dict[bytes, object]) -> None:
    key = PrivateKey.from_int(secret)
    try:
        record = ENR.create(key, seq=seq, pairs=pairs)
    except LocalProtocolError as exc:
        assert "more than 300" in str(exc)  # the only refusal random well-typed pairs can earn
        return
    again = ENR.from_text(record.to_text())
    assert again == record
    assert again.seq == seq
    assert again.verify()
    assert again.node_id == keccak256(pubkey_from_private(key))
    assert list(again.pairs) == sorted([*pairs, *_RESERVED])
    for k, v in pairs.items():
        assert encode(again.pairs[k]) == encode(v)


_REAL_RAW = [ENR.from_text(r).to_rlp() for r in V5_BOOTNODES[:5]] + [ENR.from_text(EIP778[0]["text"]).to_rlp()]


def _exercise(record: ENR) -> None:
    # Every accessor must be safe on whatever decoded.
    record.to_dict()
    for name in ("ip", "ip6", "udp", "tcp", "udp6", "tcp6", "eth", "eth2", "attnets", "syncnets", "node_id"):
        getattr(record, name)
    try:
        record.to_node()
    except BadENR:
        pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=320), verify=st.booleans())
def test_random_bytes_raise_only_wire_errors(data: bytes, verify: bool) -> None:
    try:
        record = ENR.from_rlp(data, verify=verify)
    except WireError:
        return
    _exercise(record)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(_REAL_RAW),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=299), st.integers(1, 255)), max_size=3),
    cut=st.integers(min_value=0, max_value=300),
    extra=st.binary(max_size=8),
    verify=st.booleans(),
)
def test_mutated_real_records_raise_only_wire_errors(
    base: bytes, flips: list[tuple[int, int]], cut: int, extra: bytes, verify: bool
) -> None:
    data = bytearray(base)
    for pos, mask in flips:
        if pos < len(data):
            data[pos] ^= mask
    mutated = bytes(data[:cut]) + extra
    try:
        record = ENR.from_rlp(mutated, verify=verify)
    except WireError:
        return
    _exercise(record)
    if mutated != base and verify:
        # a signed record that survived mutation still must verify under its own key
        assert record.verify()


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=120))
def test_random_text_raises_only_wire_errors(text: str) -> None:
    for candidate in (text, "enr:" + text):
        try:
            ENR.from_text(candidate)
        except WireError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    signature=st.binary(min_size=0, max_size=80),
    seq=st.integers(min_value=0, max_value=2**64 - 1),
    values=st.lists(st.binary(max_size=70), max_size=4),
)
def test_signed_content_cut_from_raw_equals_its_encoding(signature: bytes, seq: int, values: list[bytes]) -> None:
    """verify() hashes the content cut out of the received bytes; it must be exactly what re-encoding gives."""
    pairs: list[Any] = [b"id", b"v4"]
    for i, value in enumerate(values):
        pairs += [b"k%02d" % i, value]
    raw = encode([signature, encode_uint(seq), *pairs])
    if len(raw) > MAX_RECORD_SIZE:
        return
    record = ENR.from_rlp(raw, verify=False)
    assert record._content() == encode([encode_uint(seq), *pairs])


def test_parsed_key_is_cached_and_consistent() -> None:
    record = ENR.from_text(EIP778[0]["text"])
    assert record.public_key is not None and record.public_key_raw is not None
    assert record.public_key is record.public_key  # parsed once
    assert pubkey_from_private(PrivateKey(bytes.fromhex(EIP778[0]["private_key"]))) == record.public_key_raw
