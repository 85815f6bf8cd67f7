"""Analysis of hand-built graphs: groups, op-level contraction, critical path."""

from __future__ import annotations

import networkx as nx
import pytest

from ember.xcs._internal import parallelism


def graph(
    nodes: dict[int, str], edges: list[tuple[int, int]], **times: tuple[float, float]
) -> nx.DiGraph:
    g = nx.DiGraph()
    for node, kind in nodes.items():
        start, end = times.get(f"n{node}", (None, None))
        g.add_node(node, kind=kind, start=start, end=end, cpu=0.0)
    g.add_edges_from(edges)
    return g


def test_independent_ops_form_one_group() -> None:
    g = graph({0: "input", 1: "op", 2: "op", 3: "op"}, [(0, 1), (0, 2)])
    assert parallelism.parallel_groups(parallelism.shape_of(g)) == [[1, 2, 3]]


def test_glue_and_syncs_are_contracted() -> None:
    # op1 -> glue2 -> op3 ; op4 independent ; sync5 after op3, op4 ; op6 after sync
    g = graph(
        {1: "op", 2: "glue", 3: "op", 4: "op", 5: "sync", 6: "op"},
        [(1, 2), (2, 3), (3, 5), (4, 5), (1, 5), (2, 5), (5, 6)],
    )
    assert parallelism.parallel_groups(parallelism.shape_of(g)) == [[1, 4], [3], [6]]
    ops = parallelism.op_graph(g)
    assert sorted(ops.nodes) == [1, 3, 4, 6]
    assert sorted(ops.edges) == [(1, 3), (1, 6), (3, 6), (4, 6)]


def test_dispatch_order_edges_impose_no_wait() -> None:
    g = graph({1: "op", 2: "glue", 3: "op"}, [(2, 3)])
    g.add_edge(1, 2, order="dispatch")
    assert parallelism.parallel_groups(parallelism.shape_of(g)) == [[1, 3]]


def test_critical_path_follows_the_longest_chain_of_run_time() -> None:
    g = graph(
        {1: "op", 2: "op", 3: "op", 4: "op"},
        [(2, 3)],
        n1=(0.0, 1.0),
        n2=(0.0, 0.4),
        n3=(0.4, 0.8),
        n4=(0.0, 0.1),
    )
    assert parallelism.critical_path(parallelism.shape_of(g), g.nodes) == [1]
    g.nodes[3]["end"] = 1.5
    assert parallelism.critical_path(parallelism.shape_of(g), g.nodes) == [2, 3]


def test_summary_counts_and_times_and_cpu_bound_ops() -> None:
    g = graph({1: "op", 2: "op", 3: "glue"}, [], n1=(0.0, 0.5), n2=(0.0, 0.2))
    g.nodes[2]["cpu"] = 0.19
    summary = parallelism.summarize(parallelism.shape_of(g), g.nodes)
    assert summary.ops == 2 and summary.max_parallelism == 2
    assert abs(summary.op_seconds - 0.7) < 1e-9
    assert summary.cpu_bound_ops == 1
    assert abs(summary.sequential_seconds - (0.5 + 0.19)) < 1e-9


def test_cpu_bound_ops_sharing_the_gil_are_recognised() -> None:
    # Three ops that each used 0.1 s of CPU over 0.3 s, side by side: GIL-bound.
    g = graph({1: "op", 2: "op", 3: "op", 4: "op"}, [], n1=(0, 0.3), n2=(0, 0.3), n3=(0, 0.3))
    for node in (1, 2, 3):
        g.nodes[node]["cpu"] = 0.1
    assert parallelism.cpu_bound_ops(parallelism.shape_of(g), g.nodes) == {1, 2, 3}


def test_io_bound_and_tiny_ops_are_not_cpu_bound() -> None:
    g = graph({1: "op", 2: "op", 3: "op"}, [], n1=(0, 0.3), n2=(0, 0.3), n3=(0, 0.0001))
    g.nodes[1]["cpu"] = 0.001  # sleeping
    g.nodes[2]["cpu"] = 0.01
    g.nodes[3]["cpu"] = 0.0001  # too short to tell
    assert parallelism.cpu_bound_ops(parallelism.shape_of(g), g.nodes) == set()


def test_empty_graph() -> None:
    g = nx.DiGraph()
    assert parallelism.parallel_groups(parallelism.shape_of(g)) == []
    assert parallelism.critical_path(parallelism.shape_of(g), g.nodes) == []
    assert parallelism.summarize(parallelism.shape_of(g), g.nodes).max_parallelism == 0


def test_gil_bound_ops_are_told_apart_from_ops_that_release_the_gil(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 2)

    # Three CPU-bound ops side by side over 0.3 s: 0.1 s of CPU each is one core
    # (they took turns: the GIL); 0.2 s each is two cores (they released it).
    def three(cpu: float) -> nx.DiGraph:
        g = graph({1: "op", 2: "op", 3: "op"}, [], n1=(0, 0.3), n2=(0, 0.3), n3=(0, 0.3))
        for node in (1, 2, 3):
            g.nodes[node]["cpu"] = cpu
        return g

    held = three(0.1)
    released = three(0.2)
    assert parallelism.summarize(parallelism.shape_of(held), held.nodes).gil_bound
    assert not parallelism.summarize(parallelism.shape_of(released), released.nodes).gil_bound
    one_after_another = graph({1: "op", 2: "op"}, [(1, 2)], n1=(0, 0.1), n2=(0.1, 0.2))
    for node in (1, 2):
        one_after_another.nodes[node]["cpu"] = 0.1
    summary = parallelism.summarize(
        parallelism.shape_of(one_after_another), one_after_another.nodes
    )
    assert summary.cpu_bound_ops == 2 and not summary.gil_bound


def test_one_usable_core_gives_no_gil_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    # On one core, ops that release the GIL also take turns: the GIL cannot be told apart.
    g = graph({1: "op", 2: "op"}, [], n1=(0, 0.2), n2=(0, 0.2))
    for node in (1, 2):
        g.nodes[node]["cpu"] = 0.1
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 2)
    assert parallelism.summarize(parallelism.shape_of(g), g.nodes).gil_bound
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 1)
    assert not parallelism.summarize(parallelism.shape_of(g), g.nodes).gil_bound
