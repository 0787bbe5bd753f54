"""Built-in seeds per network: go-ethereum's discovery v4 bootnodes and discv5 ENRs, and its EIP-1459 DNS lists.

The list ships as package data (``data/bootnodes.json``, go-ethereum's
``params/bootnodes.go``), so a crawl needs nothing outside the installed package.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ethcrawl.wire.enode import Node, parse_enode
from ethcrawl.wire.enr import ENR

__all__ = ["NETWORKS", "bootnodes", "v5_bootnodes", "dns_lists", "is_dns_list", "parse_seed", "SeedWithoutDiscovery"]

NETWORKS = ("mainnet", "sepolia", "holesky", "hoodi")


@cache
def _data() -> dict[str, Any]:
    text = resources.files("ethcrawl.crawler").joinpath("data/bootnodes.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def bootnodes(network: str) -> list[Node]:
    """go-ethereum's discovery v4 bootnodes for ``network``."""
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; known: {', '.join(NETWORKS)}")
    return [parse_enode(url) for url in _data()[network]]


def v5_bootnodes() -> list[ENR]:
    """The discovery v5 bootnode records (shared by the consensus-layer networks)."""
    return [ENR.from_text(text) for text in _data()["v5"]]


def dns_lists(network: str) -> list[str]:
    """The ``enrtree://`` URLs of ``network``'s DNS node lists (go-ethereum's ``all.`` and ``snap.`` lists)."""
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; known: {', '.join(NETWORKS)}")
    # Keyed "<list>.<network>" ("all.mainnet", "snap.mainnet").
    return [url for name, url in _data()["dns_trees"].items() if name.rpartition(".")[2] == network]


def is_dns_list(text: str) -> bool:
    """Whether a seed names a DNS node list (resolved before a crawl) rather than one node."""
    return text.strip().startswith("enrtree://")


class SeedWithoutDiscovery(ValueError):
    """Raised when a crawl seed names no UDP port (``:0``, ``?discport=0``): no discovery protocol can ask it."""


def parse_seed(text: str, *, crawlable: bool = False) -> Node | ENR:
    """An ``enode://`` URL or an ``enr:`` record given on the command line.

    ``crawlable``: the seed starts a crawl, so it must name a UDP port
    (``SeedWithoutDiscovery`` otherwise); ``ping`` also takes RLPx-only URLs.
    """
    text = text.strip()
    seed: Node | ENR = ENR.from_text(text) if text.startswith("enr:") else parse_enode(text)
    if crawlable and not (seed.to_node() if isinstance(seed, ENR) else seed).udp:
        raise SeedWithoutDiscovery("names no UDP port (port 0 or ?discport=0): discovery cannot ask it anything")
    return seed
