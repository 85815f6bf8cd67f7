"""Pure analysis of a trace: parallel groups, critical path, I/O vs CPU.

The *op-level graph* contracts glue, sync and input nodes: op A -> op B when a path
through non-op nodes joins them. Its topological generations are the parallel
groups. Node ids are in program order and every edge points forward, so each
analysis is one pass in id order, linear in the size of the trace. Contracting a
node that joins many nodes to many (a sync between two waves of ops: N before, M
after) would make N x M edges, so such a *junction* stays in the contracted graph
(:func:`contract`, used by the drawings too): every contracted graph is linear in
the size of the trace.

Analyses take a *shape* -- every node in program order as ``(id, is_op, waits)``,
where ``waits`` are the nodes it waits for -- and the nodes' attributes
(``start``, ``end``, ``cpu``) by id. A recording gives its shape directly;
:func:`shape_of` reads one off a ``networkx.DiGraph``. Edges marked
``order="dispatch"`` (a reader must have *started* before a later in-place change)
impose no wait for completion, so they are not in a shape.

Nothing here writes anything.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import networkx as nx

from ember.xcs._internal.machine import usable_cores

__all__ = [
    "CPU_BOUND_MIN_SECONDS",
    "JUNCTION_EDGES",
    "Shape",
    "Summary",
    "contract",
    "cpu_bound_ops",
    "critical_path",
    "op_graph",
    "parallel_groups",
    "shape_of",
    "summarize",
    "summarize_ops",
]

# Below this an op's timing says nothing about what it is bound by.
CPU_BOUND_MIN_SECONDS = 0.001
CPU_BOUND_RATIO = 0.5
# CPU-bound ops that ran side by side on fewer cores than this were held by the GIL.
GIL_BOUND_CORES = 1.15

Shape = Sequence[tuple[int, bool, Sequence[int]]]
"""Every node in program order: (id, is it an op, the nodes it waits for)."""


class NodeAttributes(Protocol):
    """A node's run-time attributes read by name: a graph node's mapping, or a NodeState."""

    def __getitem__(self, name: str, /) -> Any: ...

    def get(self, name: str, default: Any = None, /) -> Any: ...


Attributes = Mapping[int, NodeAttributes] | Sequence[NodeAttributes]
"""Node attributes by id: ``graph.nodes`` or a recording's state list."""


def shape_of(graph: nx.DiGraph) -> list[tuple[int, bool, list[int]]]:
    """The shape of a trace graph (nodes with a ``kind`` attribute)."""
    pred = graph.pred
    return [
        (
            node,
            kind == "op",
            [p for p, edge in pred[node].items() if edge.get("order") != "dispatch"],
        )
        for node, kind in sorted(graph.nodes(data="kind"))
    ]


def _duration(attrs: NodeAttributes) -> float:
    start, end = attrs.get("start"), attrs.get("end")
    return 0.0 if start is None or end is None else max(0.0, end - start)


def _op_depths(shape: Shape) -> dict[int, int]:
    """For every node, the number of ops on the longest path ending at it."""
    depth: dict[int, int] = {}
    for node, is_op, waits in shape:
        best = max([depth[p] for p in waits], default=0)
        depth[node] = best + 1 if is_op else best
    return depth


def parallel_groups(shape: Shape) -> list[list[int]]:
    """Generations of the op-level graph, each a list of op ids in program order."""
    depth = _op_depths(shape)
    groups: dict[int, list[int]] = {}
    for node, is_op, _ in shape:
        if is_op:
            groups.setdefault(depth[node], []).append(node)
    return [groups[level] for level in sorted(groups)]


JUNCTION_EDGES = 256
"""A node stays in a contracted graph when contracting it would add more edges than this."""


def contract(
    order: Iterable[int],
    preds: Callable[[int], Iterable[tuple[int, str]]],
    keep: Callable[[int], bool],
) -> tuple[list[int], dict[tuple[int, int], str]]:
    """Contract the nodes ``keep`` rejects into edges between the nodes it keeps.

    A rejected node joined to ``s`` kept sources and ``t`` successors stays anyway (a
    *junction*) when contracting it would add more than :data:`JUNCTION_EDGES`
    edges (``s * t`` against ``s + t``), so the result is linear in the input.

    Args:
        order: Every node, in an order where predecessors come first (program order).
        preds: A node's predecessors with the kind of each edge (``"data"`` or
            ``"order"``); a path's kind is its last edge's, and ``"data"`` wins
            when two paths join the same pair.
        keep: Which nodes the contracted graph keeps.

    Returns:
        The kept nodes (junctions included) in ``order``, and the edges between them
        with their kinds.
    """
    order = list(order)
    inputs = {node: list(preds(node)) for node in order}
    consumers: dict[int, int] = dict.fromkeys(order, 0)
    for node in order:
        for pred, _ in inputs[node]:
            if pred in consumers:
                consumers[pred] += 1
    reach: dict[int, dict[int, str]] = {}  # contracted node -> nearest kept sources
    left = dict(consumers)  # consumers of a contracted node not processed yet
    kept: list[int] = []
    kept_set: set[int] = set()
    edges: dict[tuple[int, int], str] = {}
    for node in order:
        sources: dict[int, str] | None = None  # ours to change
        for pred, kind in inputs[node]:
            if pred in kept_set:
                found, ours = {pred: kind}, True
            elif pred in reach:
                found, ours = reach[pred], False
                left[pred] -= 1
                if left[pred] == 0:  # nobody reads it again: take it over, no copy
                    del reach[pred]
                    ours = True
                if kind != "data":
                    found, ours = dict.fromkeys(found, kind), True
            else:
                continue  # not among the nodes contracted (filtered out by the caller)
            if sources is None:
                sources = found if ours else dict(found)
                continue
            if ours and len(found) > len(sources):
                sources, found = found, sources  # merge the smaller into the larger
            for source, path_kind in found.items():
                if sources.get(source) != "data":
                    sources[source] = path_kind
        sources = sources if sources is not None else {}
        fanout = consumers[node]
        many_to_many = len(sources) * fanout > len(sources) + fanout + JUNCTION_EDGES
        if keep(node) or many_to_many:
            kept.append(node)
            kept_set.add(node)
            for source, kind in sources.items():
                edges[source, node] = kind
        elif fanout:
            reach[node] = sources
    return kept, edges


def op_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """The op-level graph: ops, A -> B when a path of other nodes joins them.

    Where expanding that path would multiply edges (a sync between waves), the node
    joining them stays, with its attributes (see :func:`contract`).
    """
    nodes, pred = graph.nodes, graph.pred

    def waits(node: int) -> list[tuple[int, str]]:
        return [(p, "data") for p, edge in pred[node].items() if edge.get("order") != "dispatch"]

    kept, edges = contract(sorted(nodes), waits, lambda node: nodes[node]["kind"] == "op")
    result = nx.DiGraph()
    result.add_nodes_from((node, nodes[node]) for node in kept)
    result.add_edges_from(edges)
    return result


def critical_path(shape: Shape, attrs: Attributes) -> list[int]:
    """The chain of ops with the largest total run time, as op ids in order."""
    best: dict[int, tuple[float, int | None]] = {}  # node -> (path time, last op on it)
    previous_op: dict[int, int | None] = {}
    for node, is_op, waits in shape:
        time_in, via = max((best[p] for p in waits), default=(0.0, None), key=lambda t: t[0])
        if is_op:
            previous_op[node] = via
            best[node] = (time_in + _duration(attrs[node]), node)
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


def _mean_concurrency(intervals: list[tuple[float, float]]) -> list[float]:
    """For each interval, how many intervals (itself included) ran on average during it."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    times = [t for t, _ in events]
    running = list(itertools.accumulate(delta for _, delta in events))
    area = [0.0]  # integral of the running count up to times[k]
    for k in range(1, len(events)):
        area.append(area[-1] + running[k - 1] * (times[k] - times[k - 1]))

    def integral(t: float) -> float:
        k = bisect.bisect_right(times, t) - 1
        return 0.0 if k < 0 else area[k] + running[k] * (t - times[k])

    return [(integral(e) - integral(s)) / (e - s) if e > s else 1.0 for s, e in intervals]


def cpu_bound_ops(shape: Shape, attrs: Attributes) -> set[int]:
    """The executed ops that were bound by the CPU rather than by waiting (I/O).

    An op is CPU-bound when its CPU time, scaled by how many ops ran beside it on
    average, covers at least half its run time: N such ops sharing the GIL each see
    about 1/N of the CPU, while an op waiting on I/O uses almost none.
    """
    return _cpu_bound([node for node, is_op, _ in shape if is_op], attrs)


def _cpu_bound(op_ids: Sequence[int], attrs: Attributes) -> set[int]:
    ops = [  # only ops long enough for their timing to tell what bound them
        (node, attrs[node]) for node in op_ids if _duration(attrs[node]) >= CPU_BOUND_MIN_SECONDS
    ]
    if not ops:
        return set()
    sharing = _mean_concurrency([(a["start"], a["end"]) for _, a in ops])
    return {
        node
        for (node, a), share in zip(ops, sharing, strict=True)
        if (a.get("cpu") or 0.0) * share >= CPU_BOUND_RATIO * _duration(a)
    }


def _gil_bound(cpu_ops: list[NodeAttributes]) -> bool:
    """Whether CPU-bound ops that overlapped used about one core between them.

    That is the GIL at work: threads took turns. Ops that release it (hashing,
    compression, numeric libraries) use more than one core and gain from threads.
    """
    intervals = sorted((a["start"], a["end"]) for a in cpu_ops)
    union = overlap_seen = 0.0
    end_so_far = -1.0
    for start, end in intervals:
        if start < end_so_far:
            overlap_seen += min(end, end_so_far) - start
        union += max(0.0, end - max(start, end_so_far))
        end_so_far = max(end_so_far, end)
    if union <= 0 or overlap_seen <= 0:
        return False  # never side by side: threads neither helped nor hurt
    if usable_cores() < 2:
        return False  # one core is all there is: the GIL cannot be told apart
    cores = sum(a.get("cpu") or 0.0 for a in cpu_ops) / union
    return cores < GIL_BOUND_CORES


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
        immediate_ops: Number of ops run at once, one after another, because
            library code called them (callbacks) rather than the traced code.
        cached_ops: Number of ops a cache answered (``xcs.served_from_cache``).
        gil_bound: CPU-bound ops ran side by side yet used about one core in all:
            threads could not make them faster.
    """

    ops: int
    max_parallelism: int
    op_seconds: float
    sequential_seconds: float
    cpu_bound_ops: int
    gil_bound: bool = False
    immediate_ops: int = 0
    cached_ops: int = 0


def summarize(shape: Shape, attrs: Attributes) -> Summary:
    """Count and time the ops of a trace."""
    depth = _op_depths(shape)
    return summarize_ops([node for node, is_op, _ in shape if is_op], depth, attrs)


def summarize_ops(
    op_ids: Sequence[int], depth: Mapping[int, int] | Sequence[int], attrs: Attributes
) -> Summary:
    """:func:`summarize` for a trace that already knows its ops and their depths.

    Args:
        op_ids: The op nodes, in program order.
        depth: For each node, the number of ops on the longest path ending at it.
        attrs: Node attributes by id.
    """
    cpu_bound = _cpu_bound(op_ids, attrs)
    per_level: dict[int, int] = {}
    op_seconds = sequential = 0.0
    for node in op_ids:
        level = depth[node]
        per_level[level] = per_level.get(level, 0) + 1
        a = attrs[node]
        start, end = a["start"], a["end"]
        duration = 0.0 if start is None or end is None else max(0.0, end - start)
        op_seconds += duration
        sequential += (a.get("cpu") or 0.0) if node in cpu_bound else duration
    return Summary(
        ops=len(op_ids),
        max_parallelism=max(per_level.values(), default=0),
        op_seconds=op_seconds,
        sequential_seconds=sequential,
        cpu_bound_ops=len(cpu_bound),
        gil_bound=_gil_bound([attrs[n] for n in cpu_bound]),
        immediate_ops=sum(1 for node in op_ids if attrs[node].get("immediate")),
        cached_ops=sum(1 for node in op_ids if attrs[node].get("cached")),
    )
