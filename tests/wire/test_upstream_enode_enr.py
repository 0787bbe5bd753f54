"""go-ethereum's enode/ENR tests (fixtures/vectors/upstream/enode_enr.json), each case its own test.

urls: TestParseNode (enode:// and enr: text, valid and invalid; the valid enode:// ones also
round-trip, as TestNodeString checks). python_record: TestPythonInterop. endpoints:
TestNodeEndpoints (which address and ports a record is reached at). incomplete:
TestDecodeIncomplete (record RLP decoded without a signature check).

Error texts are go-ethereum's; we check that we reject the same inputs with our typed errors.
Two valid geth inputs are documented policy differences (fixtures/README.md): an enode URL with
a host name and one with no address at all both parse in geth but are rejected here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ethcrawl.wire.crypto import PrivateKey, pubkey_from_private
from ethcrawl.wire.enode import format_enode, parse_enode
from ethcrawl.wire.enr import ENR
from ethcrawl.wire.errors import BadENR, BadEnodeURL

from ground_truth import load_fixture_json_at_collection

VECTORS = load_fixture_json_at_collection("vectors", "upstream", "enode_enr.json")
# Any v4 key signs the endpoint records: geth signs them with its null scheme, which we do not have.
SIGNER = PrivateKey(bytes.fromhex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291"))

# Valid in geth, rejected here on purpose: a crawler dials what it is told and never resolves
# names (a host name would make crawl results depend on DNS at crawl time), and a node without
# an address cannot be dialed or stored as an endpoint.
POLICY_REJECTS = {
    "valid.:3": "host names are not resolved",
    "no-address": "a node without an address is of no use to a crawler",
}


def _url_id(case: dict[str, Any]) -> str:
    text = case["input"]
    if text.startswith("enode://") and "@" in text:
        return "enode@" + text.split("@", 1)[1]
    if text.startswith("enode://") and len(text) == len("enode://") + 128:
        return "enode-no-address"
    return text[:24] or "empty"


def _policy_reason(case: dict[str, Any]) -> str | None:
    want = case.get("want")
    if want is None:
        return None
    if want.get("hostname"):
        return POLICY_REJECTS["valid.:3"]
    if "pubkey" in want and want["ip"] is None:
        return POLICY_REJECTS["no-address"]
    return None


URLS = [pytest.param(case, id=_url_id(case)) for case in VECTORS["urls"]]


@pytest.mark.parametrize("case", URLS)
def test_url(case: dict[str, Any]) -> None:
    text: str = case["input"]
    reason = _policy_reason(case)
    if "want_error" in case or reason is not None:
        with pytest.raises((BadENR, BadEnodeURL)):
            ENR.from_text(text) if text.startswith("enr:") else parse_enode(text)
        return
    want = case["want"]
    if text.startswith("enr:"):
        record = ENR.from_text(text)
        # geth's vector names the private key that signed the record
        assert record.public_key_raw == pubkey_from_private(PrivateKey(bytes.fromhex(want["record_key"])))
        assert (str(record.ip), record.udp, record.seq) == (want["ip"], want["udp"], want["seq"])
        return
    node = parse_enode(text)
    assert node.pubkey.hex() == want["pubkey"]
    assert node.ip == ipaddress.ip_address(want["ip"])
    assert (node.tcp, node.udp) == (want["tcp"], want["udp"])
    assert format_enode(node) == text  # TestNodeString


def test_policy_rejections_are_the_two_documented_ones() -> None:
    # So a new geth-valid case cannot slip into "rejected" without being named above.
    rejected = [_url_id(case) for case in VECTORS["urls"] if _policy_reason(case) is not None]
    assert rejected == ["enode@valid.:3", "enode-no-address"]


def test_python_record() -> None:
    case = VECTORS["python_record"]
    record = ENR.from_rlp(bytes.fromhex(case["rlp"]))
    assert record.node_id is not None and record.node_id.hex() == case["node_id"]
    assert (record.seq, str(record.ip), record.udp) == (case["seq"], case["ip"], case["udp"])
    assert record.to_rlp().hex() == case["rlp"]


ENDPOINTS = [pytest.param(case, id=case["name"]) for case in VECTORS["endpoints"]]


@pytest.mark.parametrize("case", ENDPOINTS)
def test_endpoint(case: dict[str, Any]) -> None:
    record = ENR.create(SIGNER, seq=1, pairs=case["pairs"])
    want_ip = None if case["want_ip"] is None else ipaddress.ip_address(case["want_ip"])
    assert record.endpoint() == (want_ip, case["want_udp"], case["want_tcp"])
    node = record.to_node()
    assert (node.ip, node.udp, node.tcp) == (want_ip, case["want_udp"], case["want_tcp"])


INCOMPLETE = [pytest.param(case, id=f"{case['rlp']}-{case['want_error'] or 'ok'}") for case in VECTORS["incomplete"]]


@pytest.mark.parametrize("case", INCOMPLETE)
def test_incomplete(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["rlp"])
    if case["want_error"] is not None:
        with pytest.raises(BadENR):
            ENR.from_rlp(data, verify=False)
        return
    record = ENR.from_rlp(data, verify=False)
    assert record.to_rlp() == data
    assert not record.verify()  # a one-byte signature and no identity scheme


# The rest of geth's rule, which the vectors do not cover.
@pytest.mark.parametrize(
    ("pairs", "want"),
    [
        pytest.param({"ip": "224.0.0.1", "udp": 1}, (None, 1, None), id="ipv4-multicast-is-no-endpoint"),
        pytest.param(
            {"ip": "224.0.0.1", "udp": 1, "ip6": "2001::1", "udp6": 6}, (ipaddress.ip_address("2001::1"), 6, None),
            id="ipv4-multicast-and-ipv6-global",
        ),
        pytest.param(
            {"ip": "10.0.0.1", "udp": 1, "ip6": "ff02::1", "udp6": 6}, (ipaddress.ip_address("10.0.0.1"), 1, None),
            id="ipv6-multicast-is-no-endpoint",
        ),
        pytest.param(
            {"ip6": "::ffff:99.22.33.1", "udp": 1, "udp6": 6}, (ipaddress.ip_address("99.22.33.1"), 1, None),
            id="ipv4-mapped-ip6-is-ipv4-with-ipv4-ports",
        ),
        pytest.param(
            {"ip": "10.0.0.1", "ip6": "::ffff:99.22.33.1", "udp": 1, "udp6": 6},
            (ipaddress.ip_address("99.22.33.1"), 1, None),
            id="ipv4-mapped-ip6-more-global-than-ip",
        ),
        pytest.param(
            {"ip": "99.22.33.1", "ip6": "::ffff:127.0.0.1", "udp": 1, "udp6": 6},
            (ipaddress.ip_address("99.22.33.1"), 1, None),
            id="ipv4-mapped-loopback-ip6-less-global-than-ip",
        ),
        pytest.param(
            {"ip": "100.64.0.1", "udp": 1, "ip6": "2001:db8::1", "udp6": 6},
            (ipaddress.ip_address("100.64.0.1"), 1, None),
            id="shared-and-documentation-ranges-count-as-global-as-in-go",
        ),
    ],
)
def test_endpoint_beyond_the_vectors(pairs: dict[str, Any], want: tuple[object, int | None, int | None]) -> None:
    assert ENR.create(SIGNER, seq=1, pairs=pairs).endpoint() == want
