"""DHT topology of one crawl: who returned whom, as a directed graph (networkx).

An edge A -> B means "in this crawl, A's FindNode answers contained B", so a
node's out-degree is how much of its table we enumerated and its in-degree how
many tables hold it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

import networkx as nx

__all__ = ["Topology", "analyse", "build_graph"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    nodes: int
    edges: int
    responders: int  # nodes that answered discovery
    in_degree: tuple[tuple[int, int], ...]  # (degree, how many nodes), ascending degree
    out_degree: tuple[tuple[int, int], ...]
    components: int  # weakly connected
    largest_component: int
    unreferenced_responders: int  # answered, but no table we saw held them
    mean_out_degree_of_responders: float


def build_graph(edges: Iterable[tuple[bytes, bytes]], nodes: Iterable[bytes] = ()) -> Any:
    """A networkx DiGraph of node ids (networkx ships no type hints, hence Any)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return graph


def _distribution(degrees: list[int]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted(Counter(degrees).items()))


def analyse(edges: list[tuple[bytes, bytes]], responders: set[bytes]) -> Topology:
    graph = build_graph(edges, responders)
    components = [len(c) for c in nx.weakly_connected_components(graph)]
    in_deg = dict(graph.in_degree())
    out_deg = dict(graph.out_degree())
    unreferenced = sum(1 for n in responders if in_deg.get(n, 0) == 0)
    mean_out = sum(out_deg[n] for n in responders) / len(responders) if responders else 0.0
    return Topology(
        nodes=graph.number_of_nodes(),
        edges=graph.number_of_edges(),
        responders=len(responders),
        in_degree=_distribution(list(in_deg.values())),
        out_degree=_distribution(list(out_deg.values())),
        components=len(components),
        largest_component=max(components, default=0),
        unreferenced_responders=unreferenced,
        mean_out_degree_of_responders=round(mean_out, 2),
    )
