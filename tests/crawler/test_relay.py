"""Which relayed addresses a crawl believes (crawler/relay.py, geth's netutil.CheckRelayAddr).

Every IPv4 address is tried in three spellings, plain, IPv4-mapped
(``::ffff:a.b.c.d``) and IPv4-compatible (``::a.b.c.d``), and relayed by a
public, a LAN and a loopback sender, each also spelled IPv4-mapped: a hostile
node must not get a LAN, loopback, link-local, multicast or broadcast address
past the filter by writing it another way.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from ethcrawl.crawler.relay import relay_error
from ethcrawl.crawler.table import is_lan, unwrap_ipv4

SPECIAL = "special-purpose address"
LAN = "LAN address relayed by a public node"
LOOPBACK = "loopback address relayed by a non-loopback node"
UNSPECIFIED = "unspecified address"

PUBLIC_SENDER, LAN_SENDER, LOOPBACK_SENDER = "8.8.4.4", "192.168.1.5", "127.0.0.1"

# address -> what each sender's relay of it gets (None: believed), as geth's CheckRelayAddr answers.
CASES: dict[str, tuple[str | None, str | None, str | None]] = {
    "224.0.0.1": (SPECIAL, SPECIAL, SPECIAL),  # multicast
    "255.255.255.255": (SPECIAL, SPECIAL, SPECIAL),  # limited broadcast
    "192.0.2.7": (SPECIAL, SPECIAL, SPECIAL),  # TEST-NET-1
    "192.88.99.1": (SPECIAL, SPECIAL, SPECIAL),  # 6to4 relay anycast
    "169.254.169.254": (LAN, None, None),  # link-local (a cloud's metadata service)
    "127.0.0.1": (LOOPBACK, LOOPBACK, None),
    "127.8.9.10": (LOOPBACK, LOOPBACK, None),
    "10.0.0.1": (LAN, None, None),
    "172.16.0.1": (LAN, None, None),
    "1.2.3.4": (None, None, None),
}


def spellings(ipv4: str) -> list[str]:
    return [ipv4, f"::ffff:{ipv4}", f"::{ipv4}"]


PARAMS = [
    pytest.param(spelled, sender, want, id=f"{spelled}-from-{kind}-{sender}")
    for address, wants in CASES.items()
    for spelled in spellings(address)
    for kind, sender_v4, want in zip(("public", "lan", "loopback"), (PUBLIC_SENDER, LAN_SENDER, LOOPBACK_SENDER), wants)
    for sender in (sender_v4, f"::ffff:{sender_v4}")
]


@pytest.mark.parametrize(("relayed", "sender", "want"), PARAMS)
def test_every_spelling_of_an_ipv4_address_gets_the_same_answer(relayed: str, sender: str, want: str | None) -> None:
    assert relay_error(ip_address(sender), ip_address(relayed), 30303) == want


@pytest.mark.parametrize(
    ("relayed", "sender", "want"),
    [
        ("fe80::1", PUBLIC_SENDER, LAN),  # IPv6 link-local
        ("fe80::1", LAN_SENDER, None),
        ("fd00::1", PUBLIC_SENDER, LAN),  # unique-local
        ("::1", PUBLIC_SENDER, LOOPBACK),
        ("::1", "::1", None),
        # Loopback is one host whatever the family (geth's IsLoopback): a mixed devnet is walked across families.
        ("::1", "127.0.0.2", None),
        ("127.0.0.2", "::1", None),
        ("fd00::1", "10.0.0.1", None),  # LAN relayed by a LAN host of the other family
        ("::", PUBLIC_SENDER, UNSPECIFIED),
        ("::ffff:0.0.0.0", PUBLIC_SENDER, UNSPECIFIED),
        ("0.0.0.0", PUBLIC_SENDER, UNSPECIFIED),
        ("ff02::1", PUBLIC_SENDER, SPECIAL),  # multicast
        ("2001:db8::1", PUBLIC_SENDER, SPECIAL),  # documentation
        ("2002:7f00:1::1", PUBLIC_SENDER, SPECIAL),  # 6to4, here wrapping 127.0.0.1
        ("2001:0:7f00:1::1", PUBLIC_SENDER, SPECIAL),  # Teredo
        ("2a00:1450:4001::1", PUBLIC_SENDER, None),  # an ordinary public IPv6 address
        ("2a00:1450:4001::1", LOOPBACK_SENDER, None),
    ],
)
def test_ipv6_addresses(relayed: str, sender: str, want: str | None) -> None:
    assert relay_error(ip_address(sender), ip_address(relayed), 30303) == want


def test_low_ports_and_missing_addresses() -> None:
    public = ip_address(PUBLIC_SENDER)
    assert relay_error(public, ip_address("1.2.3.4"), 1024) == "port 1024 <= 1024"
    assert relay_error(public, ip_address("::ffff:1.2.3.4"), 1025) is None
    assert relay_error(public, None, 30303) == "no address"


@pytest.mark.parametrize(
    ("ip", "want"),
    [
        ("::ffff:10.1.2.3", IPv4Address("10.1.2.3")),
        ("::10.1.2.3", IPv4Address("10.1.2.3")),
        ("::127.0.0.1", IPv4Address("127.0.0.1")),
        ("::1", IPv6Address("::1")),  # IPv6 loopback, not 0.0.0.1
        ("::", IPv6Address("::")),  # IPv6 unspecified, not 0.0.0.0
        ("fe80::1", IPv6Address("fe80::1")),
        ("1.2.3.4", IPv4Address("1.2.3.4")),
    ],
)
def test_unwrap_ipv4(ip: str, want: IPv4Address | IPv6Address) -> None:
    assert unwrap_ipv4(ip_address(ip)) == want


@pytest.mark.parametrize("ip", ["169.254.1.1", "::ffff:169.254.1.1", "::169.254.1.1", "::127.0.0.1", "::ffff:127.0.0.1"])
def test_link_local_and_wrapped_loopback_are_lan(ip: str) -> None:
    assert is_lan(ip_address(ip))
