"""Client id anchors of three crawlers (fixtures/vectors/upstream/clientid.json), each its own case.

Each case keeps the anchor's own expectation verbatim; ``null`` means the anchor rejects the
string. Per the file's note, fields are compared after normalising (lower-case names and tags,
darwin -> macos, x86_64/x64 -> amd64, rustc -> rust) and per field, mapping each anchor's names
to ours: node-crawler's fields are ours; tuweni's ``label`` is our ``user_data``, its ``os`` is
the whole platform triple and its ``compiler`` our ``runtime``; xatu's ``impl`` is our ``name``
and its numbers are strings ('' for none).

Documented policy differences (fixtures/README.md), each asserted as what we do:
- node-crawler rejects the nested ``Q-Client/.../Geth/...`` id and the quorum id carrying an
  enode URL; we never reject an id and extract what the outer client says.
- tuweni takes ``Foo Bar 1.23`` as a client name; we name no client for a string that has no
  ``name/version`` shape, so per-client counts are not split by free text (raw is kept).
- node-crawler's OpenEthereum case commented out its os/arch expectations (its parser misses
  them); we extract them and check them against the commented-out values.
- node-crawler's ``date`` (the build date in OpenEthereum's version) has no field of ours.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ethcrawl.wire.clientid import ClientId, parse_client_id

from ground_truth import load_fixture_json_at_collection

VECTORS = load_fixture_json_at_collection("vectors", "upstream", "clientid.json")
OS = {"darwin": "macos"}
ARCH = {"x86_64": "amd64", "x64": "amd64"}
LANGUAGE = {"rustc": "rust"}

# Anchor rejects (null): what we extract instead, by input prefix.
REJECTED_BY_ANCHOR = {
    "Q-Client/": {"name": "q-client", "major": 1, "minor": 0, "patch": 8, "os": "linux", "arch": "amd64"},
    "Geth/enode://": {"name": "geth", "major": 1, "minor": 10, "patch": 0, "os": "linux", "arch": "amd64"},
}
NO_NAME_HERE = {"Foo Bar 1.23"}  # tuweni: the whole string is the name; here: no name


def _id(case: dict[str, Any]) -> str:
    anchor = case["source"].split()[0].split("/")[1]
    return f"{anchor}:{case['input'][:48] or 'empty'}"


CASES = [pytest.param(case, id=_id(case)) for case in VECTORS["cases"]]


def _numbers(version: str) -> tuple[int, ...]:
    match = re.match(r"v?(\d+(?:\.\d+)*)", version)
    return () if match is None else tuple(int(n) for n in match[1].split("."))


def _check_node_crawler(got: ClientId, anchor: dict[str, Any]) -> None:
    assert got.name == anchor["name"].lower()
    for field in ("major", "minor", "patch", "build"):
        if field in anchor:
            assert getattr(got, field) == anchor[field], field
    if "tag" in anchor:
        assert got.tag is not None and got.tag.lower() == anchor["tag"]
    for field, mapping in (("os", OS), ("arch", ARCH)):
        want = anchor.get(field, anchor.get(f"{field}_commented_out"))
        if want is not None:
            assert getattr(got, field) == mapping.get(want, want), field
    if "language" in anchor:
        assert got.language == LANGUAGE.get(anchor["language"], anchor["language"])
        assert got.runtime is not None and got.runtime.endswith(anchor["language_version"])


def _check_tuweni(got: ClientId, anchor: dict[str, Any]) -> None:
    assert got.name == anchor["name"].lower()
    assert (got.user_data or "") == anchor["label"]
    assert got.version is not None and _numbers(got.version) == _numbers(anchor["version"])
    words = anchor["os"].split("-")  # a target triple: x86_64-unknown-linux-gnu
    assert got.os in words and (got.arch in words or any(ARCH.get(w) == got.arch for w in words))
    assert got.runtime == anchor["compiler"]


def _check_xatu(got: ClientId, anchor: dict[str, Any]) -> None:
    assert (got.name or "") == anchor["impl"].lower()
    want = _numbers(anchor["version"])
    assert (_numbers(got.version) if got.version else ()) == want
    for field in ("major", "minor", "patch"):
        value = getattr(got, field)
        assert ("" if value is None else str(value)) == anchor[field], field


CHECKS = {"ethereum/node-crawler": _check_node_crawler, "apache/incubator-tuweni": _check_tuweni,
          "ethpandaops/xatu": _check_xatu}


@pytest.mark.parametrize("case", CASES)
def test_client_id(case: dict[str, Any]) -> None:
    raw: str = case["input"]
    got = parse_client_id(raw)  # never raises, whatever the anchor thought of the string
    assert got.raw == raw
    anchor = case["anchor"]
    if anchor is None:
        (want,) = [fields for prefix, fields in REJECTED_BY_ANCHOR.items() if raw.startswith(prefix)]
        assert {field: getattr(got, field) for field in want} == want
        return
    if raw in NO_NAME_HERE:
        assert got.name is None and got.version is None
        return
    CHECKS[case["source"].split()[0]](got, anchor)


def test_every_anchor_is_checked() -> None:
    assert {case["source"].split()[0] for case in VECTORS["cases"]} == set(CHECKS)
    assert sum(case["anchor"] is None for case in VECTORS["cases"]) == len(REJECTED_BY_ANCHOR)
