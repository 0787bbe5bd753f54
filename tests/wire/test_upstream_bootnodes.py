"""go-ethereum's built-in bootnodes (fixtures/vectors/upstream/bootnodes.json), each parsed as its own case.

Public hosts: parsed only, never contacted. Every v4 enode URL parses and prints back the same;
every v5 record verifies and gives a dialable endpoint (an address and a UDP port), since a
bootnode we cannot reach is no bootnode.
"""

from __future__ import annotations

import pytest

from ethcrawl.wire.enode import format_enode, parse_enode
from ethcrawl.wire.enr import ENR

from ground_truth import load_fixture_json_at_collection

VECTORS = load_fixture_json_at_collection("vectors", "upstream", "bootnodes.json")
NETWORKS = ("mainnet", "sepolia", "holesky", "hoodi")

V4 = [pytest.param(url, id=f"{net}-{i}") for net in NETWORKS for i, url in enumerate(VECTORS[net])]
V5 = [pytest.param(text, id=f"v5-{i}") for i, text in enumerate(VECTORS["v5"])]


@pytest.mark.parametrize("url", V4)
def test_v4_bootnode_parses(url: str) -> None:
    node = parse_enode(url)
    assert node.ip is not None and node.tcp and node.udp
    assert format_enode(node) == url


@pytest.mark.parametrize("text", V5)
def test_v5_bootnode_record_verifies_and_is_dialable(text: str) -> None:
    record = ENR.from_text(text)  # verifies the signature
    assert record.node_id is not None
    node = record.to_node()
    assert node.ip is not None and node.udp
    assert record.to_text() == text


def test_same_lists_as_the_official_bootnode_vectors() -> None:
    # Both files come from params/bootnodes.go at the same commit; two copies that disagree mean a bad sync.
    official = load_fixture_json_at_collection("vectors", "bootnodes.json")
    for key in (*NETWORKS, "v5"):
        assert VECTORS[key] == official[key], key
