"""enode:// URLs: every go-ethereum bootnode, IPv6, discport, and bad input."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethcrawl.wire.crypto import PrivateKey, keccak256, pubkey_from_private
from ethcrawl.wire.enode import Node, format_enode, parse_enode
from ethcrawl.wire.errors import BadEnodeURL, LocalProtocolError, WireError

from ground_truth import load_fixture_json_at_collection

_BOOTNODES = load_fixture_json_at_collection("vectors", "bootnodes.json")
BOOTNODE_URLS = [
    pytest.param(url, id=f"{network}-{i}")
    for network in ("mainnet", "sepolia", "holesky", "hoodi")
    for i, url in enumerate(_BOOTNODES[network])
]

KEY = pubkey_from_private(PrivateKey(bytes.fromhex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")))
KEY_HEX = KEY.hex()


def test_bootnode_list_is_not_empty() -> None:
    # Guards against a renamed key in bootnodes.json silently leaving no cases.
    assert len(BOOTNODE_URLS) >= 10


@pytest.mark.parametrize("url", BOOTNODE_URLS)
def test_bootnode_parses_and_round_trips(url: str) -> None:
    node = parse_enode(url)
    key_hex, _, hostport = url[len("enode://"):].partition("@")
    assert node.pubkey == bytes.fromhex(key_hex)
    assert node.node_id == keccak256(bytes.fromhex(key_hex))
    assert isinstance(node.ip, ipaddress.IPv4Address)
    assert f"{node.ip}:{node.tcp}" == hostport.partition("?")[0]
    assert node.udp == node.tcp  # none of geth's bootnodes uses discport
    assert format_enode(node) == url


def test_ipv6_with_discport() -> None:
    url = f"enode://{KEY_HEX}@[2001:db8::7]:30303?discport=30301"
    node = parse_enode(url)
    assert node.ip == ipaddress.IPv6Address("2001:db8::7")
    assert (node.tcp, node.udp) == (30303, 30301)
    assert format_enode(node) == url


def test_ipv6_loopback() -> None:
    node = parse_enode(f"enode://{KEY_HEX}@[::1]:30303")
    assert node.ip == ipaddress.IPv6Address("::1")
    assert node.udp == node.tcp == 30303
    assert format_enode(node) == f"enode://{KEY_HEX}@[::1]:30303"


def test_ipv4_mapped_ipv6_becomes_ipv4() -> None:
    node = parse_enode(f"enode://{KEY_HEX}@[::ffff:10.0.0.1]:1")
    assert node.ip == ipaddress.IPv4Address("10.0.0.1")


def test_discport_equal_to_tcp_is_dropped_when_formatting() -> None:
    node = parse_enode(f"enode://{KEY_HEX}@127.0.0.1:30303?discport=30303")
    assert node.udp == 30303
    assert format_enode(node) == f"enode://{KEY_HEX}@127.0.0.1:30303"


def test_uppercase_hex_is_accepted_and_formatted_lowercase() -> None:
    node = parse_enode(f"enode://{KEY_HEX.upper()}@127.0.0.1:1")
    assert node.pubkey == KEY
    assert format_enode(node) == f"enode://{KEY_HEX}@127.0.0.1:1"


def test_other_query_parameters_are_ignored() -> None:
    node = parse_enode(f"enode://{KEY_HEX}@127.0.0.1:30303?foo=bar&discport=9")
    assert (node.tcp, node.udp) == (30303, 9)


NOT_ON_CURVE = "ff" * 64

BAD_URLS = [
    pytest.param(f"enode//{KEY_HEX}@127.0.0.1:30303", "must start with", id="no-scheme"),
    pytest.param(f"enr://{KEY_HEX}@127.0.0.1:30303", "must start with", id="wrong-scheme"),
    pytest.param(f"enode://{KEY_HEX}", "missing '@", id="missing-at"),
    pytest.param(f"enode://{KEY_HEX[:-2]}@127.0.0.1:30303", "128 hex digits", id="short-key"),
    pytest.param(f"enode://{KEY_HEX}00@127.0.0.1:30303", "128 hex digits", id="long-key"),
    pytest.param(f"enode://{'zz' + KEY_HEX[2:]}@127.0.0.1:30303", "not hexadecimal", id="non-hex-key"),
    pytest.param(f"enode://{NOT_ON_CURVE}@127.0.0.1:30303", "secp256k1", id="key-off-curve"),
    pytest.param(f"enode://{KEY_HEX}@bootnode.example.org:30303", "not resolved", id="hostname"),
    pytest.param(f"enode://{KEY_HEX}@localhost:30303", "not resolved", id="localhost"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1", "missing ':port'", id="no-port"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:", "TCP port", id="empty-port"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:65536", "out of range", id="port-too-big"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:-1", "TCP port", id="negative-port"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:+1", "TCP port", id="plus-port"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:3o303", "TCP port", id="letter-in-port"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:30303?discport=x", "discport", id="bad-discport"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:30303?discport=70000", "out of range", id="discport-range"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:30303?discport", "no value", id="discport-no-value"),
    pytest.param(f"enode://{KEY_HEX}@127.0.0.1:1?discport=2&discport=3", "more than once", id="discport-twice"),
    pytest.param(f"enode://{KEY_HEX}@::1:30303", "brackets", id="ipv6-no-brackets"),
    pytest.param(f"enode://{KEY_HEX}@[::1:30303", "unclosed", id="ipv6-unclosed"),
    pytest.param(f"enode://{KEY_HEX}@[::1]30303", "missing ':port'", id="ipv6-no-colon"),
    pytest.param(f"enode://{KEY_HEX}@[127.0.0.1]:30303", "not an IPv6", id="ipv4-in-brackets"),
    pytest.param(f"enode://{KEY_HEX}@256.0.0.1:30303", "not an IP address", id="bad-ipv4"),
    pytest.param("enode://" + "a" * 1000, "more than", id="huge"),
    pytest.param("", "must start with", id="empty"),
]


@pytest.mark.parametrize(("url", "fragment"), BAD_URLS)
def test_bad_url_is_rejected_with_a_reason(url: str, fragment: str) -> None:
    with pytest.raises(BadEnodeURL, match=fragment):
        parse_enode(url)


def test_node_validates_its_fields() -> None:
    with pytest.raises(LocalProtocolError, match="64 bytes"):
        Node(pubkey=KEY[:-1])
    with pytest.raises(LocalProtocolError, match="out of range"):
        Node(pubkey=KEY, tcp=65536)


def test_format_needs_ip_and_tcp() -> None:
    with pytest.raises(LocalProtocolError):
        format_enode(Node(pubkey=KEY, udp=1))


ips = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(v=6).filter(lambda ip: ip.ipv4_mapped is None),
)
ports = st.integers(min_value=0, max_value=65535)


@settings(max_examples=150, deadline=None)
@given(secret=st.integers(min_value=1, max_value=2**200), ip=ips, tcp=ports, udp=ports)
def test_format_parse_round_trip(secret: int, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, tcp: int, udp: int) -> None:
    node = Node(pubkey=pubkey_from_private(PrivateKey.from_int(secret)), ip=ip, tcp=tcp, udp=udp)
    assert parse_enode(format_enode(node)) == node


VALID = f"enode://{KEY_HEX}@[2001:db8::7]:30303?discport=30301"


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_urls_raise_only_wire_errors(data: st.DataObject) -> None:
    pos = data.draw(st.integers(min_value=0, max_value=len(VALID)))
    insert = data.draw(st.text(max_size=4))
    cut = data.draw(st.integers(min_value=0, max_value=3))
    url = VALID[:pos] + insert + VALID[pos + cut:]
    try:
        node = parse_enode(url)
    except WireError:
        return
    assert len(node.pubkey) == 64


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_raises_only_wire_errors(text: str) -> None:
    try:
        parse_enode("enode://" + text)
    except WireError:
        pass
