"""db.topology.analyse on hand-made graphs and on random ones, against counts done by hand in plain Python."""

from __future__ import annotations

from collections import Counter

import pytest
from ethcrawl.db.topology import Topology, analyse
from hypothesis import given, settings
from hypothesis import strategies as st

A, B, C, D, E, F = (bytes([i]) * 32 for i in range(1, 7))


def test_empty_crawl() -> None:
    topo = analyse([], set())
    assert topo == Topology(
        nodes=0, edges=0, responders=0, in_degree=(), out_degree=(), components=0, largest_component=0,
        unreferenced_responders=0, mean_out_degree_of_responders=0.0,
    )


def test_star_answered_by_its_centre_only() -> None:
    """A returned B..E; only A answered, and nobody returned A."""
    topo = analyse([(A, n) for n in (B, C, D, E)], {A})
    assert (topo.nodes, topo.edges, topo.components, topo.largest_component) == (5, 4, 1, 5)
    assert topo.in_degree == ((0, 1), (1, 4))
    assert topo.out_degree == ((0, 4), (4, 1))
    assert topo.unreferenced_responders == 1
    assert topo.mean_out_degree_of_responders == 4.0


def test_isolated_responders_are_their_own_components() -> None:
    """E and F answered with empty tables: each is a component, and nobody returned either."""
    topo = analyse([(A, B), (B, A), (C, D)], {A, B, C, E, F})
    assert (topo.nodes, topo.components, topo.largest_component) == (6, 4, 2)
    assert topo.unreferenced_responders == 3  # C, E, F
    assert topo.mean_out_degree_of_responders == pytest.approx(3 / 5)


def test_duplicate_edges_count_once() -> None:
    topo = analyse([(A, B), (A, B), (B, C)], {A, B})
    assert topo.edges == 2 and topo.out_degree == ((0, 1), (1, 2))


def _by_hand(edges: list[tuple[bytes, bytes]], responders: set[bytes]) -> dict[str, object]:
    unique = set(edges)
    nodes = {n for e in unique for n in e} | responders
    parent = {n: n for n in nodes}

    def root(n: bytes) -> bytes:
        while parent[n] != n:
            n = parent[n]
        return n

    for a, b in unique:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
    sizes = Counter(root(n) for n in nodes).values()
    ins = Counter(b for _, b in unique)
    outs = Counter(a for a, _ in unique)
    return {
        "nodes": len(nodes),
        "edges": len(unique),
        "in": dict(Counter(ins[n] for n in nodes)),
        "out": dict(Counter(outs[n] for n in nodes)),
        "components": len(sizes),
        "largest": max(sizes, default=0),
        "unreferenced": sum(1 for n in responders if ins[n] == 0),
        "mean": sum(outs[n] for n in responders) / len(responders) if responders else 0.0,
    }


node_ids = st.integers(0, 25).map(lambda i: i.to_bytes(32, "big"))


@settings(max_examples=200, deadline=None)
@given(
    edges=st.lists(st.tuples(node_ids, node_ids).filter(lambda e: e[0] != e[1]), max_size=60),
    responders=st.sets(node_ids, max_size=20),
)
def test_random_graphs_match_a_count_by_hand(edges: list[tuple[bytes, bytes]], responders: set[bytes]) -> None:
    topo = analyse(edges, responders)
    want = _by_hand(edges, responders)
    assert (topo.nodes, topo.edges, topo.responders) == (want["nodes"], want["edges"], len(responders))
    assert dict(topo.in_degree) == want["in"] and dict(topo.out_degree) == want["out"]
    assert [d for d, _ in topo.in_degree] == sorted(d for d, _ in topo.in_degree)
    assert (topo.components, topo.largest_component) == (want["components"], want["largest"])
    assert topo.unreferenced_responders == want["unreferenced"]
    assert topo.mean_out_degree_of_responders == pytest.approx(want["mean"], abs=0.00501)  # reported rounded to 2 places
