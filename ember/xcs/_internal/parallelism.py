"""Pure analysis of a trace graph: parallel groups, critical path, I/O vs CPU.

The *op-level graph* contracts glue, sync and input nodes: op A -> op B when a path
through non-op nodes joins them. Its topological generations are the parallel
groups. Node ids are in program order and every edge points forward, so each
analysis is one pass in id order, linear in the size of the graph (the contracted
graph itself is only built on request: across a sync it can be quadratic).

``order="dispatch"`` edges (a reader must have *started* before a later in-place
change) impose no wait for completion, so analysis ignores them.

Reads node attributes ``kind``, ``start``, ``end`` and ``cpu``; writes nothing.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from typing import Any

import networkx as nx

__all__ = [
    "CPU_BOUND_MIN_SECONDS",
    "Summary",
    "cpu_bound_ops",
    "critical_path",
    "op_graph",
    "parallel_groups",
    "summarize",
]

# Below this an op's timing says nothing about what it is bound by.
CPU_BOUND_MIN_SECONDS = 0.001
CPU_BOUND_RATIO = 0.5


def _waits(graph: nx.DiGraph) -> list[tuple[int, bool, list[int]]]:
    """Each node in program order: (id, is it an op, the nodes it waits for)."""
    pred = graph.pred
    return [
        (
            node,
            kind == "op",
            [p for p, edge in pred[node].items() if edge.get("order") != "dispatch"],
        )
        for node, kind in sorted(graph.nodes(data="kind"))
    ]


def _duration(attrs: dict[str, Any]) -> float:
    start, end = attrs.get("start"), attrs.get("end")
    return 0.0 if start is None or end is None else max(0.0, end - start)


def _mean_concurrency(intervals: list[tuple[float, float]]) -> list[float]:
    """For each interval, how many intervals (itself included) ran on average during it."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    times: list[float] = []
    area: list[float] = []  # integral of the running count up to times[k]
    running, total, last = 0, 0.0, None
    for t, delta in events:
        if last is not None:
            total += running * (t - last)
        times.append(t)
        area.append(total)
        running += delta
        last = t

    def integral(t: float) -> float:
        k = bisect.bisect_right(times, t) - 1
        if k < 0:
            return 0.0
        running_after = sum_running[k]
        return area[k] + running_after * (t - times[k])

    sum_running = list(itertools.accumulate(delta for _, delta in events))
    return [(integral(e) - integral(s)) / (e - s) if e > s else 1.0 for s, e in intervals]


def cpu_bound_ops(graph: nx.DiGraph) -> set[int]:
    """The executed ops that were bound by the CPU (holding the GIL) rather than I/O.

    An op is CPU-bound when its CPU time, scaled by how many ops ran beside it on
    average, covers at least half its run time: N such ops sharing the GIL each see
    about 1/N of the CPU, while an op waiting on I/O uses almost none.
    """
    # Ops too short to tell are left out, also as company: they share little time.
    ops = [
        (node, attrs)
        for node, attrs in graph.nodes(data=True)
        if attrs.get("kind") == "op" and _duration(attrs) >= CPU_BOUND_MIN_SECONDS
    ]
    if not ops:
        return set()
    sharing = _mean_concurrency([(attrs["start"], attrs["end"]) for _, attrs in ops])
    return {
        node
        for (node, attrs), share in zip(ops, sharing, strict=True)
        if (attrs.get("cpu") or 0.0) * share >= CPU_BOUND_RATIO * _duration(attrs)
    }


def _op_depths(waits: list[tuple[int, bool, list[int]]]) -> dict[int, int]:
    """For every node, the number of ops on the longest path ending at it."""
    depth: dict[int, int] = {}
    for node, is_op, preds in waits:
        best = max([depth[p] for p in preds], default=0)
        depth[node] = best + 1 if is_op else best
    return depth


def parallel_groups(graph: nx.DiGraph) -> list[list[int]]:
    """Generations of the op-level graph, each a list of op ids in program order."""
    waits = _waits(graph)
    depth = _op_depths(waits)
    groups: dict[int, list[int]] = {}
    for node, is_op, _ in waits:
        if is_op:
            groups.setdefault(depth[node], []).append(node)
    return [groups[level] for level in sorted(groups)]


def op_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """The op-level graph: ops only, A -> B when a path of non-op nodes joins them."""
    reach: dict[int, frozenset[int]] = {}  # nearest op ancestors of each non-op node
    ops: set[int] = set()
    result = nx.DiGraph()
    for node, is_op, preds in _waits(graph):
        sources: set[int] = set()
        for pred in preds:
            sources |= {pred} if pred in ops else reach[pred]
        if is_op:
            ops.add(node)
            result.add_node(node, **graph.nodes[node])
            result.add_edges_from((source, node) for source in sources)
        else:
            reach[node] = frozenset(sources)
    return result


def critical_path(graph: nx.DiGraph) -> list[int]:
    """The chain of ops with the largest total run time, as op ids in order."""
    best: dict[int, tuple[float, int | None]] = {}  # node -> (path time, last op on it)
    previous_op: dict[int, int | None] = {}
    for node, is_op, preds in _waits(graph):
        time_in, via = max((best[p] for p in preds), default=(0.0, None), key=lambda t: t[0])
        if is_op:
            previous_op[node] = via
            best[node] = (time_in + _duration(graph.nodes[node]), node)
        else:
            best[node] = (time_in, via)
    if not best:
        return []
    last = max(best.values(), key=lambda t: t[0])[1]
    path: list[int] = []
    while last is not None:
        path.append(last)
        last = previous_op[last]
    return path[::-1]


@dataclasses.dataclass(frozen=True)
class Summary:
    """Totals over the ops of one trace.

    Attributes:
        ops: Number of op nodes.
        max_parallelism: Size of the largest parallel group.
        op_seconds: Sum of the ops' run times.
        sequential_seconds: Estimated time to run the ops one after another: run
            time for I/O-bound ops, CPU time for CPU-bound ones (their run time is
            inflated by waiting for the GIL while others run).
        cpu_bound_ops: Number of ops that spent most of their time on the CPU.
    """

    ops: int
    max_parallelism: int
    op_seconds: float
    sequential_seconds: float
    cpu_bound_ops: int


def summarize(graph: nx.DiGraph) -> Summary:
    """Count and time the ops of a trace graph."""
    groups = parallel_groups(graph)
    cpu_bound = cpu_bound_ops(graph)
    op_seconds = sequential = 0.0
    for node in (n for group in groups for n in group):
        attrs = graph.nodes[node]
        duration = _duration(attrs)
        op_seconds += duration
        sequential += (attrs.get("cpu") or 0.0) if node in cpu_bound else duration
    return Summary(
        ops=sum(len(g) for g in groups),
        max_parallelism=max((len(g) for g in groups), default=0),
        op_seconds=op_seconds,
        sequential_seconds=sequential,
        cpu_bound_ops=len(cpu_bound),
    )
