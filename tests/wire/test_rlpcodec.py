"""The RLP access helpers: every malformed input becomes MalformedRLP / MalformedMessage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ethcrawl.wire import rlpcodec
from ethcrawl.wire.errors import MalformedMessage, MalformedRLP, WireError


@pytest.mark.parametrize(
    "data",
    [
        b"\x85\x01",  # string claims 5 bytes, 1 present
        b"\xc3\x82\x01",  # list whose last string is cut short
        b"\xb8",  # long-string prefix without its length
        b"\xf8",  # long-list prefix without its length
        b"\xc2\x83abc",  # inner string runs past its list
        b"",
    ],
)
def test_decode_prefix_refuses_items_that_run_past_the_input(data: bytes) -> None:
    with pytest.raises(MalformedRLP):
        rlpcodec.decode_prefix(data)


def test_decode_prefix_returns_trailing_bytes() -> None:
    item, rest = rlpcodec.decode_prefix(rlpcodec.encode([1, b"ab"]) + b"xyz")
    assert item == [b"\x01", b"ab"]
    assert rest == b"xyz"


def test_decode_refuses_trailing_bytes_and_non_canonical_forms() -> None:
    with pytest.raises(MalformedRLP):
        rlpcodec.decode(rlpcodec.encode(b"ab") + b"\x00")
    with pytest.raises(MalformedRLP):
        rlpcodec.decode(b"\x81\x01")  # single byte < 0x80 must encode as itself


@pytest.mark.parametrize(
    ("item", "kwargs", "error"),
    [
        (b"\x00\x01", {}, "leading zero"),
        (b"\x01" * 9, {}, "wider than 64 bits"),
        ([b"\x01"], {}, "expected a byte string"),
    ],
)
def test_as_uint_errors_name_the_field(item: rlpcodec.Item, kwargs: dict[str, int], error: str) -> None:
    with pytest.raises(MalformedMessage, match=f"seq: .*{error}"):
        rlpcodec.as_uint(item, "seq", **kwargs)


def test_as_list_and_as_bytes_shapes() -> None:
    with pytest.raises(MalformedMessage, match="at least 3"):
        rlpcodec.as_list([b"a"], "ping", min_len=3)
    with pytest.raises(MalformedMessage, match="expected 32 bytes, got 2"):
        rlpcodec.as_bytes(b"ab", "hash", length=32)
    assert rlpcodec.as_uint(b"", "n") == 0
    assert rlpcodec.encode_uint(0) == b""
    assert rlpcodec.encode_uint(256) == b"\x01\x00"


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_wire_errors(data: bytes) -> None:
    for fn in (rlpcodec.decode, rlpcodec.decode_prefix):
        try:
            fn(data)
        except WireError:
            pass


rlp_items = st.recursive(
    st.one_of(st.binary(max_size=70), st.integers(min_value=0, max_value=2**260), st.text(max_size=20)),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


@given(rlp_items)
def test_encode_matches_the_rlp_package(item: object) -> None:
    import rlp

    assert rlpcodec.encode(item) == rlp.encode(item)


def test_encode_refuses_what_rlp_cannot_hold() -> None:
    with pytest.raises(ValueError):
        rlpcodec.encode(-1)
    with pytest.raises(TypeError):
        rlpcodec.encode(1.5)


@given(rlp_items)
def test_decode_inverts_encode(item: object) -> None:
    import rlp

    encoded = rlp.encode(item)
    assert rlpcodec.decode(encoded) == rlp.decode(encoded)


@given(st.binary(max_size=80))
def test_decode_accepts_exactly_what_strict_pyrlp_accepts(data: bytes) -> None:
    import rlp

    try:
        want = rlp.decode(data, strict=True)
    except Exception:
        want = None
    try:
        got = rlpcodec.decode(data)
    except MalformedRLP:
        got = None
    assert got == want


@pytest.mark.parametrize(
    "data",
    [
        b"\x81\x05", b"\xb8\x05abcde", b"\xb9\x00\x40" + b"a" * 64, b"\xf8\x01\x01", b"\xc1", b"\xc0\x00",
        # The same inside a list, where short strings are cut without a call of their own.
        b"\xc3\x01\x81\x05", b"\xc2\x83ab", b"\xc2\x01\x81", b"\xc3\xc2\x81\x05",
    ],
    ids=[
        "single-byte-as-string", "long-form-short-string", "length-leading-zero", "long-form-short-list", "short-list",
        "trailing", "in-list-single-byte-as-string", "in-list-string-past-the-list", "in-list-cut-header",
        "nested-single-byte-as-string",
    ],
)
def test_non_canonical_forms_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedRLP):
        rlpcodec.decode(data)


def test_deep_nesting_is_refused() -> None:
    nested: object = []
    for _ in range(rlpcodec.MAX_DEPTH + 2):
        nested = [nested]
    with pytest.raises(MalformedRLP, match="nested deeper"):
        rlpcodec.decode(rlpcodec.encode(nested))
