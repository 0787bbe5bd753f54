"""Which relayed node addresses a crawler should believe.

A NEIGHBORS answer is hearsay: the sender claims that some node lives at some
address.  go-ethereum (``p2p/netutil.CheckRelayIP`` and the low-port rule in
``v4_udp.go``) drops relayed entries that could turn the crawl into a scanner
of somebody's LAN or of privileged ports.  We apply the same rules, so a crawl
never dials an address a hostile node pointed us at.  Both addresses are
unwrapped first (``::ffff:10.0.0.1`` and ``::10.0.0.1`` are 10.0.0.1), so no
rule can be dodged by spelling an IPv4 address in IPv6.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from .table import is_lan, unwrap_ipv4

__all__ = ["relay_error", "MIN_PORT"]

MIN_PORT = 1025  # ports <= 1024 are privileged services, never devp2p (geth errLowPort)

# Never valid as a node address: geth's special4/special6 (IANA special-purpose registries) and
# multicast, plus all of 192.0.0.0/24 and the reserved 240.0.0.0/4 (which holds the broadcast address).
_SPECIAL: tuple[IPv4Network | IPv6Network, ...] = tuple(
    ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this" network
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.31.196.0/24",  # AS112
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.175.48.0/24",  # AS112
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 limited broadcast
        "100::/64",  # discard-only
        "2001::/32",  # Teredo
        "2001:1::1/128",  # port control protocol anycast
        "2001:2::/48",  # benchmarking
        "2001:3::/32",  # AMT
        "2001:4:112::/48",  # AS112
        "2001:5::/32",  # EID space for LISP
        "2001:10::/28",  # ORCHID
        "2001:20::/28",  # ORCHIDv2
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: wraps an IPv4 address
        "ff00::/8",  # multicast
    )
)

Address = IPv4Address | IPv6Address


def _is_special(ip: Address) -> bool:
    return any(ip.version == net.version and ip in net for net in _SPECIAL)


@lru_cache(maxsize=4096)  # the same addresses recur in many answers; bounded: ~1 MB
def relay_error(sender: Address, relayed: Address | None, port: int) -> str | None:
    """Why ``sender``'s claim that a node lives at ``relayed:port`` is not believable, or None."""
    if relayed is None:
        return "no address"
    sender, relayed = unwrap_ipv4(sender), unwrap_ipv4(relayed)
    if relayed.is_unspecified:
        return "unspecified address"
    if _is_special(relayed):
        return "special-purpose address"
    if relayed.is_loopback and not sender.is_loopback:
        return "loopback address relayed by a non-loopback node"
    if is_lan(relayed) and not is_lan(sender):
        return "LAN address relayed by a public node"
    if port < MIN_PORT:
        return f"port {port} <= 1024"
    return None
