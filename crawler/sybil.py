"""How many new nodes the crawl accepts per address: the address half of the sybil bound.

A peer's answers are only claims, and one peer can claim any number of nodes.
Like go-ethereum's table (``p2p/discover/table.go`` ``addIP``, over
``netutil.DistinctNetSet``), the crawl limits the nodes it learns per IP and
per /24, and like geth it exempts LAN and loopback addresses from those limits
(a LAN or a devnet puts many nodes on one address).  geth's own limits (10 per
/24 in a table of 272) are a table's; a crawl sees the whole network, so ours
are wider.  One rule holds everywhere, loopback included: one UDP endpoint
(ip, port) is one socket, so one node, give or take a key change.

The other half, the per-source budget of unconfirmed new nodes, lives in the
engine: it needs the node states.  This module only counts addresses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_network

from ethcrawl.wire.enode import IPAddress

from .table import is_lan, unwrap_ipv4

__all__ = ["AddressLimits", "AddressBound", "DROP_RULES"]

# Distinct node ids at one (ip, udp port): one socket is one node; a few for key changes.
IDS_PER_ENDPOINT = 3
# Distinct nodes per IP off the LAN: operators do run several clients on one host, each on its own port;
# geth's whole table admits 10 per /24.
NODES_PER_IP = 16
# Distinct nodes per /24 (IPv4) or /48 (IPv6) off the LAN: geth's tableSubnet, with room for a cloud
# provider's subnet full of single nodes.
NODES_PER_SUBNET = 256
SUBNET_PREFIX_V4 = 24  # bits, geth's tableSubnet
SUBNET_PREFIX_V6 = 48  # bits, one site; a /24 of IPv6 is a whole provider

#: Why a relayed node was dropped, as counted in the crawl's stats.
DROP_RULES = ("endpoint", "ip", "subnet", "source")


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressLimits:
    ids_per_endpoint: int = IDS_PER_ENDPOINT
    nodes_per_ip: int = NODES_PER_IP
    nodes_per_subnet: int = NODES_PER_SUBNET


def _subnet(ip: IPAddress) -> int:
    """The /24 (IPv4) or /48 (IPv6) of ``ip``; the routing table's /24 for both families is a table's choice."""
    prefix = SUBNET_PREFIX_V4 if isinstance(ip, IPv4Address) else SUBNET_PREFIX_V6
    network = ip_network((ip, prefix), strict=False)
    # Tagged with the family so an IPv4 /24 and an IPv6 /48 never share a key.
    return int(network.network_address) << 1 | (ip.version == 6)


class AddressBound:
    """Counts the nodes admitted per endpoint, IP and subnet; refuses those over the limits."""

    def __init__(self, limits: AddressLimits = AddressLimits()) -> None:
        self.limits = limits
        # Python ints as keys: (ip << 16 | port), far smaller than (str, int) tuples.
        self._per_endpoint: Counter[int] = Counter()
        self._per_ip: Counter[int] = Counter()
        self._per_subnet: Counter[int] = Counter()

    def admit(self, ip: IPAddress | None, udp: int | None) -> str | None:
        """Count a new node at ``ip:udp`` and return None, or return the rule (``DROP_RULES``) it breaks."""
        if ip is None:
            return None  # a record without an address: only the per-source budget applies
        ip = unwrap_ipv4(ip)  # ::ffff:a.b.c.d is a.b.c.d: one address, one count, whichever spelling came
        endpoint = int(ip) << 17 | (ip.version == 6) << 16 | (udp or 0)
        if self._per_endpoint[endpoint] >= self.limits.ids_per_endpoint:
            return "endpoint"
        if not is_lan(ip):
            host, subnet = int(ip) << 1 | (ip.version == 6), _subnet(ip)
            if self._per_ip[host] >= self.limits.nodes_per_ip:
                return "ip"
            if self._per_subnet[subnet] >= self.limits.nodes_per_subnet:
                return "subnet"
            self._per_ip[host] += 1
            self._per_subnet[subnet] += 1
        self._per_endpoint[endpoint] += 1
        return None
