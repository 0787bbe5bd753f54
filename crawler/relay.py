"""Which relayed node addresses a crawler should believe.

A NEIGHBORS answer is hearsay: the sender claims that some node lives at some
address.  go-ethereum (``p2p/netutil.CheckRelayIP`` and the low-port rule in
``v4_udp.go``) drops relayed entries that could turn the crawl into a scanner
of somebody's LAN or of privileged ports.  We apply the same rules, so a crawl
never dials an address a hostile node pointed us at.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from .table import is_lan

__all__ = ["relay_error", "MIN_PORT"]

MIN_PORT = 1025  # ports <= 1024 are privileged services, never devp2p (geth errLowPort)

# Never valid as a node address (documentation, benchmarking, multicast, "this network").
_SPECIAL: tuple[IPv4Network | IPv6Network, ...] = tuple(
    ip_network(n)
    for n in (
        "0.0.0.0/8",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "2001:db8::/32",
        "ff00::/8",
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
