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

import dataclasses
from collections.abc import Iterator
from typing import Any

import networkx as nx

__all__ = [
    "CPU_BOUND_MIN_SECONDS",
    "Summary",
    "critical_path",
    "is_cpu_bound",
    "op_graph",
    "parallel_groups",
    "summarize",
]

# Below this an op's timing says nothing about what it is bound by.
CPU_BOUND_MIN_SECONDS = 0.001
CPU_BOUND_RATIO = 0.5


def _preds(graph: nx.DiGraph, node: int) -> Iterator[int]:
    for pred, edge in graph.pred[node].items():
        if edge.get("order") != "dispatch":
            yield pred


def _is_op(graph: nx.DiGraph, node: int) -> bool:
    return bool(graph.nodes[node].get("kind") == "op")


def _duration(attrs: dict[str, Any]) -> float:
    start, end = attrs.get("start"), attrs.get("end")
    return 0.0 if start is None or end is None else max(0.0, end - start)


def is_cpu_bound(attrs: dict[str, Any]) -> bool:
    """Whether an executed op spent most of its time on the CPU (holding the GIL)."""
    duration = _duration(attrs)
    cpu = attrs.get("cpu") or 0.0
    return duration >= CPU_BOUND_MIN_SECONDS and cpu >= CPU_BOUND_RATIO * duration


def _op_depths(graph: nx.DiGraph) -> dict[int, int]:
    """For every node, the number of ops on the longest path ending at it."""
    depth: dict[int, int] = {}
    for node in sorted(graph):
        best = max((depth[p] for p in _preds(graph, node)), default=0)
        depth[node] = best + 1 if _is_op(graph, node) else best
    return depth


def parallel_groups(graph: nx.DiGraph) -> list[list[int]]:
    """Generations of the op-level graph, each a list of op ids in program order."""
    depth = _op_depths(graph)
    groups: dict[int, list[int]] = {}
    for node in sorted(graph):
        if _is_op(graph, node):
            groups.setdefault(depth[node], []).append(node)
    return [groups[level] for level in sorted(groups)]


def op_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """The op-level graph: ops only, A -> B when a path of non-op nodes joins them."""
    reach: dict[int, frozenset[int]] = {}  # nearest op ancestors of each node
    result = nx.DiGraph()
    for node in sorted(graph):
        sources: set[int] = set()
        for pred in _preds(graph, node):
            sources |= {pred} if _is_op(graph, pred) else reach[pred]
        if _is_op(graph, node):
            result.add_node(node, **graph.nodes[node])
            result.add_edges_from((source, node) for source in sources)
            reach[node] = frozenset()
        else:
            reach[node] = frozenset(sources)
    return result


def critical_path(graph: nx.DiGraph) -> list[int]:
    """The chain of ops with the largest total run time, as op ids in order."""
    best: dict[int, tuple[float, int | None]] = {}  # node -> (path time, last op on it)
    previous_op: dict[int, int | None] = {}
    for node in sorted(graph):
        time_in, via = max(
            (best[p] for p in _preds(graph, node)), default=(0.0, None), key=lambda t: t[0]
        )
        if _is_op(graph, node):
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
    op_seconds = sequential = 0.0
    cpu_bound = 0
    for node in (n for group in groups for n in group):
        attrs = graph.nodes[node]
        duration = _duration(attrs)
        op_seconds += duration
        if is_cpu_bound(attrs):
            cpu_bound += 1
            sequential += attrs.get("cpu") or 0.0
        else:
            sequential += duration
    return Summary(
        ops=sum(len(g) for g in groups),
        max_parallelism=max((len(g) for g in groups), default=0),
        op_seconds=op_seconds,
        sequential_seconds=sequential,
        cpu_bound_ops=cpu_bound,
    )
