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


def _two_waves(n: int, m: int) -> nx.DiGraph:
    """n ops, a sync waiting for all of them, m ops after it (and an exit sync)."""
    sync, exit_ = n, n + m + 1
    kinds = {i: "op" for i in range(n)} | {sync: "sync"}
    kinds |= {i: "op" for i in range(n + 1, n + m + 1)} | {exit_: "sync"}
    edges = [(i, sync) for i in range(n)] + [(sync, i) for i in range(n + 1, n + m + 1)]
    edges += [(i, exit_) for i in range(n + m + 1)]
    return graph(kinds, edges)


def test_a_sync_joining_two_wide_waves_stays_and_keeps_the_graph_linear() -> None:
    ops = parallelism.op_graph(_two_waves(1000, 1000))
    assert ops.nodes[1000]["kind"] == "sync"  # the junction, not 1,000,000 edges
    assert ops.number_of_edges() == 2000
    assert all(nx.has_path(ops, a, b) for a, b in [(0, 1001), (999, 2000)])
    assert ops.number_of_nodes() == 2001  # the exit sync joins nothing to nothing


def test_a_sync_between_small_waves_is_still_contracted() -> None:
    ops = parallelism.op_graph(_two_waves(3, 4))
    assert sorted(ops.nodes) == [0, 1, 2, 4, 5, 6, 7]
    assert ops.number_of_edges() == 12


def test_contraction_costs_time_linear_in_a_chain_of_joins() -> None:
    # s = ""; for r in results: s += r  -> each glue joins the last one and one op;
    # one op reads the end. Copying reach sets would cost n^2 / 2 here.
    import time

    def chain(n: int) -> nx.DiGraph:
        kinds = {2 * i: "op" for i in range(n)} | {2 * i + 1: "glue" for i in range(n)}
        edges = [(2 * i, 2 * i + 1) for i in range(n)]
        edges += [(2 * i - 1, 2 * i + 1) for i in range(1, n)]
        g = graph(kinds | {2 * n: "op"}, edges + [(2 * n - 1, 2 * n)])
        return g

    def seconds(n: int) -> float:
        g = chain(n)
        start = time.perf_counter()
        ops = parallelism.op_graph(g)
        elapsed = time.perf_counter() - start
        assert sorted(ops.pred[2 * n]) == [2 * i for i in range(n)]
        return elapsed

    seconds(500)
    small, large = min(seconds(2000) for _ in range(3)), min(seconds(8000) for _ in range(3))
    assert large < 8 * small  # 4x the nodes: linear is 4x, quadratic 16x


def test_contract_keeps_order_edges_apart_from_data() -> None:
    kinds = {1: "op", 2: "glue", 3: "op", 4: "op"}
    edges = {(1, 2): "data", (2, 3): "data", (2, 4): "order", (1, 4): "data"}

    def preds(node: int) -> list[tuple[int, str]]:
        return [(a, kind) for (a, b), kind in edges.items() if b == node]

    kept, found = parallelism.contract(sorted(kinds), preds, lambda n: kinds[n] == "op")
    assert kept == [1, 3, 4]
    assert found == {(1, 3): "data", (1, 4): "data"}  # a data path wins over an order one


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
