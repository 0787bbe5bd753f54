"""Hello client ids: the established parsers' expectations, a real 2021 crawl, tricky shapes, never-raises."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.clientid import MAX_PARSED_LENGTH, ClientId, parse_client_id

from ground_truth import load_fixture_json_at_collection

EXPECTED = load_fixture_json_at_collection("data", "client_ids", "expected.json")
CRAWL = load_fixture_json_at_collection("data", "client_ids", "crawl-2021.json")["clients"]

EXPECTED_CASES = [pytest.param(c["client_id"], c["expect"], id=c["client_id"][:60]) for c in EXPECTED["cases"]]
CRAWL_CASES = [pytest.param(c["clientId"], id=f"{i}") for i, c in enumerate(CRAWL)]


def test_data_files_have_their_cases() -> None:
    assert len(EXPECTED_CASES) >= 19
    assert len(CRAWL_CASES) == 788
    # The anchors' rejects must also parse without raising; none are listed today.
    for raw in EXPECTED["anchor_rejects"]:
        assert parse_client_id(raw).raw == raw


def _numbers(version: str) -> tuple[int, ...]:
    match = re.match(r"v?(\d+(?:\.\d+)*)", version)
    assert match is not None, version
    return tuple(int(n) for n in match[1].split("."))


@pytest.mark.parametrize(("raw", "expect"), EXPECTED_CASES)
def test_expected_fields(raw: str, expect: dict[str, Any]) -> None:
    got = parse_client_id(raw)
    assert got.raw == raw
    assert got.name == expect["name"]
    for field in ("os", "arch", "user_data"):
        if field in expect:
            assert getattr(got, field) == expect[field], field
    if expect["version"] is None:
        assert got.version is None
    else:
        want = _numbers(expect["version"])
        assert got.version is not None and _numbers(got.version) == want
        assert (got.major, got.minor) == want[:2]
        assert got.patch == (want[2] if len(want) > 2 else None)
        pre_release = expect["version"].partition("-")[2]
        if pre_release:
            assert got.tag == pre_release
    if expect.get("language") is not None:
        # The anchors give a family ("go", "rust") when the id names none, the
        # runtime as sent otherwise ("go1.21.5", "openjdk-java-21").
        assert expect["language"] in (got.language, got.runtime)


@pytest.mark.parametrize("raw", CRAWL_CASES)
def test_every_crawled_id_parses(raw: str) -> None:
    got = parse_client_id(raw)
    assert got.raw == raw
    if raw:
        # Every non-empty id in that crawl names a known os and a language.
        assert got.os is not None and got.language is not None


def test_most_crawled_nodes_get_name_and_version() -> None:
    total = with_both = 0
    for client in CRAWL:
        if not client["clientId"]:
            continue  # 2,026 nodes sent nothing to parse
        total += client["count"]
        got = parse_client_id(client["clientId"])
        if got.name and got.version:
            with_both += client["count"]
    # The misses are ids that carry no version at all (pchain/linux-amd64/go1.12.5).
    assert total == 3054
    assert with_both / total > 0.98


def test_crawled_versions_are_consistent() -> None:
    for client in CRAWL:
        got = parse_client_id(client["clientId"])
        if got.version is not None:
            assert got.version_tuple is not None
            assert got.version_tuple[:2] == (got.major, got.minor)
            assert got.raw.lower().find(got.version) > 0


TRICKY: list[tuple[str, dict[str, Any]]] = [
    ("Geth/v1.13.14-stable-2bd6bd01/linux-amd64/go1.21.7",
     dict(name="geth", version="1.13.14", major=1, minor=13, patch=14, tag="stable", build="2bd6bd01",
          os="linux", arch="amd64", language="go", runtime="go1.21.7", user_data=None)),
    ("Geth/NodeName/v1.10.1-stable/linux-amd64/go1.16",
     dict(name="geth", user_data="NodeName", version="1.10.1", tag="stable", build=None, runtime="go1.16")),
    ("Nethermind/v1.25.4+20b10b35/linux-x64/dotnet8.0.2",
     dict(name="nethermind", version="1.25.4", build="20b10b35", tag=None, os="linux", arch="amd64",
          language="dotnet", runtime="dotnet8.0.2")),
    ("Nethermind/v1.10.73-0-b8ab96510-20210616/X64-Windows/5.0.7",
     dict(name="nethermind", version="1.10.73", build="b8ab96510", tag=None, os="windows", arch="amd64",
          language="dotnet", runtime="5.0.7")),
    ("Nethermind/v1.8.47-0-b9899d475-20210625/X64-Linux 4.15.0-143-generic/Core3.1.3",
     dict(os="linux", arch="amd64", language="dotnet", runtime="Core3.1.3")),
    ("erigon/v2.59.0-d04f4ef9/linux-amd64/go1.21.5",
     dict(name="erigon", version="2.59.0", build="d04f4ef9", os="linux", arch="amd64", language="go")),
    ("erigon/archive04.archivenode.io/v2021.06.5-alpha-cc360ec6/linux-amd64/go1.16.4",
     dict(user_data="archive04.archivenode.io", version="2021.06.5", major=2021, tag="alpha", build="cc360ec6")),
    ("besu/v24.1.2/linux-x86_64/openjdk-java-17",
     dict(name="besu", version="24.1.2", os="linux", arch="amd64", language="java", runtime="openjdk-java-17")),
    ("besu/PegaSys-dev/v21.7.0-RC1-dev-9470ae06/linux-x86_64/corretto-java-11",
     dict(user_data="PegaSys-dev", tag="RC1-dev", build="9470ae06", language="java")),
    ("reth/v0.2.0-beta.5-54f75cdcc/x86_64-unknown-linux-gnu",
     dict(name="reth", version="0.2.0", tag="beta.5", build="54f75cdcc", os="linux", arch="amd64",
          language="rust", runtime=None, user_data=None)),
    ("OpenEthereum/v3.0.1-stable-8ca8089-20200601/x86_64-alpine-linux-musl/rustc1.43.1",
     dict(name="openethereum", os="linux", arch="amd64", language="rust", runtime="rustc1.43.1", build="8ca8089")),
    ("OpenEthereum/lab10 collective/v3.2.5-stable-32d8b54-20210505/x86_64-linux-gnu/rustc1.51.0",
     dict(user_data="lab10 collective", version="3.2.5")),
    ("Parity-Ethereum/v2.7.2-stable-2662d19-20200206/x86_64-unknown-linux-gnu/rustc1.41.0",
     dict(name="parity-ethereum", version="2.7.2", build="2662d19", tag="stable")),
    ("nimbus-eth1 v0.1.0 [linux: amd64, rocksdb, nimvm, c0d52b]",
     dict(name="nimbus-eth1", version="0.1.0", os="linux", arch="amd64", build="c0d52b",
          language="nim", extra=("rocksdb", "nimvm"))),
    ("Geth/v1.9.0-stable/darwin-arm64/go1.12", dict(os="macos", arch="arm64")),
    ("Geth/v1.9.0-stable/freebsd-386/go1.12", dict(os="freebsd", arch="386")),
    ("Geth/v1.9.0-stable/linux-s390x/go1.12", dict(os="linux", arch="s390x")),
    ("reth/v1.0.0/aarch64-apple-darwin", dict(os="macos", arch="arm64", language="rust")),
    ("Getc/v6.1.0-4-g52059f1/linux/go1.14.2", dict(version="6.1.0", build="52059f1", tag=None, arch=None)),
    ("Geth/v1.8.18-stable-2d22fd00(quorum-v2.2.3)/linux-amd64/go1.11.6",
     dict(tag="stable", build="2d22fd00", extra=("quorum-v2.2.3",))),
    ("go-opera/v1.0.1-rc.1-6fdf99bb-1624637963/linux-amd64/go1.15.10",
     dict(name="go-opera", tag="rc.1", build="6fdf99bb")),
    ("Geth/v1.9.7.0-stable-8b3b86d4/linux-amd64/go1.13.8", dict(version="1.9.7.0", patch=7)),
    ("Geth/vuntagged-5a9ac684-20240520/linux-amd64/go1.22.2",
     dict(version=None, tag="untagged", build="5a9ac684")),
    ("go-ethereum/v1.0.0/linux-amd64/go1.5", dict(name="geth")),
    ("Ethereum(J)/v1.13.0/Windows/Dev/Java/Dev", dict(name="ethereum(j)", os="windows", language="java")),
    ("", dict(name=None, version=None, os=None, arch=None, language=None, user_data=None)),
    ("pure nonsense", dict(name=None, version=None, os=None, language=None)),
    ("just-a-name", dict(name="just-a-name", version=None, build=None)),
    ("///", dict(name=None, version=None, user_data=None)),
    ("Geth/\x00\x07/v1.0.0/linux-amd64/go1.5", dict(name="geth", user_data="\x00\x07", version="1.0.0")),
    ("\x00Geth/v1.0.0", dict(name=None, version="1.0.0")),
    ("Geth/v99999999999.1/linux", dict(version=None, os="linux")),
]


@pytest.mark.parametrize(("raw", "fields"), TRICKY, ids=[raw[:50] or "empty" for raw, _ in TRICKY])
def test_tricky_ids(raw: str, fields: dict[str, Any]) -> None:
    got = parse_client_id(raw)
    assert got.raw == raw
    assert {k: getattr(got, k) for k in fields} == fields


def test_huge_id_is_kept_but_scanned_only_in_part() -> None:
    raw = "Geth/v1.2.3/linux-amd64/go1.21" + "/x" * 5_000_000
    got = parse_client_id(raw)
    assert got.raw is raw
    assert (got.name, got.version, got.os) == ("geth", "1.2.3", "linux")
    assert got.user_data is None or len(got.user_data) <= MAX_PARSED_LENGTH


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=300))
def test_arbitrary_text_never_raises(raw: str) -> None:
    got = parse_client_id(raw)
    assert isinstance(got, ClientId) and got.raw == raw


SEGMENT = st.one_of(
    st.sampled_from(["Geth", "reth", "v1.2.3-stable-abcdef12", "linux-amd64", "go1.21", "x86_64-unknown-linux-gnu",
                     "X64-Linux", "dotnet8", "openjdk-java-21", "", "v", "1.2", "untagged", "(", ")", " ", "[", "]",
                     "nimbus-eth1 v0.1.0 [linux: amd64, c0d52b]"]),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(SEGMENT, max_size=8), sep=st.sampled_from(["/", " ", "-", "/ "]))
def test_id_shaped_text_never_raises(parts: list[str], sep: str) -> None:
    raw = sep.join(parts)
    got = parse_client_id(raw)
    assert got.raw == raw
    if got.version is not None:
        assert got.major is not None and got.minor is not None
