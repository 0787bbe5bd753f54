"""ethereum/tests RLPTests (fixtures/vectors/upstream/rlp.json) against wire.rlpcodec, each case its own test.

valid: ``in`` encodes to ``out`` and ``out`` decodes back to ``in``. ``in`` strings starting with
'#' are big integers, '0x' strings hex bytes, other strings their characters; integers decode
as their minimal big-endian bytes, since RLP has no integer type. invalid: ``out`` is rejected
with MalformedRLP (non-canonical lengths and single bytes, truncations, trailing bytes).
random: ``out`` decodes and re-encodes to itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from ethcrawl.wire.errors import MalformedRLP
from ethcrawl.wire.rlpcodec import decode, encode, encode_uint

from ground_truth import load_fixture_json_at_collection

VECTORS = load_fixture_json_at_collection("vectors", "upstream", "rlp.json")


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _value(spec: Any) -> Any:
    """The test's ``in`` as we encode it (ints stay ints, so encode_uint is exercised)."""
    if isinstance(spec, list):
        return [_value(x) for x in spec]
    if isinstance(spec, int):
        return spec
    if spec.startswith("#"):
        return int(spec[1:])
    if spec.startswith("0x"):
        return _hex(spec)
    return spec.encode("utf-8")


def _decoded(spec: Any) -> Any:
    """The test's ``in`` as the decoder returns it: byte strings and lists of them."""
    value = _value(spec)
    if isinstance(value, list):
        return [_decoded(x) for x in spec]
    return encode_uint(value) if isinstance(value, int) else value


@pytest.mark.parametrize(("name", "case"), sorted(VECTORS["valid"].items()), ids=sorted(VECTORS["valid"]))
def test_valid_encodes(name: str, case: dict[str, Any]) -> None:
    assert encode(_value(case["in"])) == _hex(case["out"])


@pytest.mark.parametrize(("name", "case"), sorted(VECTORS["valid"].items()), ids=sorted(VECTORS["valid"]))
def test_valid_decodes(name: str, case: dict[str, Any]) -> None:
    assert decode(_hex(case["out"])) == _decoded(case["in"])


@pytest.mark.parametrize(("name", "case"), sorted(VECTORS["invalid"].items()), ids=sorted(VECTORS["invalid"]))
def test_invalid_is_rejected(name: str, case: dict[str, Any]) -> None:
    with pytest.raises(MalformedRLP):
        decode(_hex(case["out"]))


@pytest.mark.parametrize(("name", "case"), sorted(VECTORS["random"].items()), ids=sorted(VECTORS["random"]))
def test_random_decodes(name: str, case: dict[str, Any]) -> None:
    data = _hex(case["out"])
    assert encode(decode(data)) == data
