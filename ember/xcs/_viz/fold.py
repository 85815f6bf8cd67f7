"""What a drawing folds: which nodes get a box, and which calls share one.

One folding design for every drawing, on top of ``parallelism.contract`` (the
contraction ``Trace.op_graph`` uses too):

* :func:`drawn_by_default`: the ops, the arguments, and the syncs that held calls
  back. Every other node folds into the edges between the boxes (``glue=True``
  draws them all); a node joining many boxes to many stays anyway (a *junction*).
* :func:`glue_owners`: glue that works on one op's result only (``.text``,
  ``.strip()``) belongs to that op: its box names the steps, and with ``glue=True``
  the steps of collapsed calls collapse with them.
* :func:`collapse`: more than :data:`COLLAPSE_AT` calls of one op from one line in
  one parallel group share one box; a failed one keeps its own.
* :func:`edges`: the edges between boxes, critical ones marked; :func:`thin_syncs`
  leaves out the edges into a sync that other edges imply.

It decides membership only; ``view.py`` labels the boxes. Nothing here writes anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.xcs._trace import Trace

__all__ = [
    "COLLAPSE_AT",
    "collapse",
    "drawn_by_default",
    "edges",
    "glue_owners",
    "on_critical_path",
    "thin_syncs",
]

COLLAPSE_AT = 8
"""More calls than this of one op from one line in one parallel group are drawn as one box.

Eight boxes side by side (an ensemble of eight) still fit a notebook cell.
"""


def drawn_by_default(graph: Any, node: int, last_op: int) -> bool:
    """Whether ``node`` gets a box by default: an op, an argument, or a sync that held calls back.

    A sync held calls back when it waited for an op and more ops come after it (the
    syncs of ``trace.waits``); the sync at the end of the call did not.
    """
    attrs = graph.nodes[node]
    kind = attrs["kind"]
    if kind in ("op", "input"):
        return True
    if kind != "sync" or node > last_op:
        return False
    return any(graph.nodes[p]["kind"] == "op" for p in graph.pred[node])


def glue_owners(graph: Any) -> dict[int, int]:
    """Glue that works on one op's result only, directly or through such glue: glue -> op.

    Only what it reads counts: the edge from a sync (program order) or an argument
    does not make glue anyone else's, an edge from another op or shared glue does.
    """
    nodes, pred = graph.nodes, graph.pred
    owners: dict[int, int] = {}
    for node in sorted(graph.nodes):
        if nodes[node]["kind"] != "glue":
            continue
        found: set[int | None] = set()
        for source, edge in pred[node].items():
            kind = nodes[source]["kind"]
            if edge.get("order") == "dispatch" or kind in ("sync", "input"):
                continue
            found.add(source if kind == "op" else owners.get(source))
        if len(found) == 1:
            (op,) = found
            if op is not None:
                owners[node] = op
    return owners


def collapse(trace: Trace, works_on: Mapping[int, int]) -> dict[int, str]:
    """Nodes to collapse, to the key of their box.

    Ops: more than COLLAPSE_AT calls of one op (by name) from one line in one parallel
    group, except those that failed. Glue in ``works_on`` (drawn with ``glue=True``) on
    a collapsed op's result: one box per step name, beside the op's box.
    """
    owner: dict[int, str] = {}
    nodes = trace.graph.nodes
    for index, group in enumerate(trace.parallel_groups):
        runs: dict[tuple[str, str], list[int]] = {}
        for op in group:
            attrs = nodes[op]
            runs.setdefault((str(attrs["name"]), str(attrs.get("location"))), []).append(op)
        for position, members in enumerate(runs.values()):
            if len(members) > COLLAPSE_AT:
                # A failed call keeps a box of its own: which one failed is the news.
                rest = [op for op in members if nodes[op]["status"] != "failed"]
                for op in rest if len(rest) > 1 else ():
                    owner[op] = f"g{index}_{position}"
    steps: dict[tuple[str, str], str] = {}
    for node, op in sorted(works_on.items()):
        key = owner.get(op)
        if key is not None:
            step = (key, str(nodes[node]["name"]))
            owner[node] = steps.setdefault(step, f"{key}_{len(steps)}")
    return owner


def edges(
    graph: Any, kept: set[int], owner: Mapping[int, str], path: list[int]
) -> tuple[list[int], list[tuple[str, str, str]]]:
    """Edges between drawn boxes; through folded nodes when some are folded.

    Returns:
        The folded nodes drawn anyway because they join many boxes to many (a sync
        between two wide waves: see ``parallelism.contract``), and the edges.
    """
    from ember.xcs._internal.parallelism import contract

    pred = graph.pred

    def preds(node: int) -> list[tuple[int, str]]:
        return [
            (p, "order" if attrs.get("order") == "dispatch" else "data")
            for p, attrs in pred[node].items()
        ]

    drawn, contracted = contract(sorted(graph.nodes), preds, kept.__contains__)
    on_path = on_critical_path(graph, kept, path, contracted)
    found: dict[tuple[str, str], str] = {}
    for (source, node), kind in contracted.items():
        key = (owner.get(source, f"n{source}"), owner.get(node, f"n{node}"))
        if key[0] == key[1]:
            continue
        if kind == "data" and (source, node) in on_path:
            kind = "critical"
        if found.get(key) in (None, "order") or kind == "critical":
            found[key] = kind
    junctions = [node for node in drawn if node not in kept]
    return junctions, [(s, t, kind) for (s, t), kind in found.items()]


def thin_syncs(edges: list[tuple[str, str, str]], syncs: set[str]) -> list[tuple[str, str, str]]:
    """Into a sync, only edges from boxes with nowhere else to go (the rest is implied).

    A sync waits for everything before it; drawing every such edge buries the graph.
    """
    elsewhere = {s for s, t, _ in edges if t not in syncs}
    return [(s, t, k) for s, t, k in edges if t not in syncs or s not in elsewhere]


def on_critical_path(
    graph: Any, kept: set[int], path: list[int], contracted: Mapping[tuple[int, int], str]
) -> set[tuple[int, int]]:
    """Pairs of drawn nodes joined by an edge that lies on the critical path.

    With nodes folded, the drawn edges between two ops of the path: the one joining
    them, or the two through a drawn sync between them.
    """
    if len(path) < 2:
        return set()
    pairs: set[tuple[int, int]] = set()
    if all(node in kept for node in graph.nodes):  # nothing folded: walk the real edges
        import networkx as nx

        for a, b in itertools.pairwise(path):
            between = (nx.descendants(graph, a) & nx.ancestors(graph, b)) | {a, b}
            pairs |= {(u, v) for u, v in graph.subgraph(between).edges}
        return pairs
    after: dict[int, list[int]] = {}
    for source, target in contracted:
        after.setdefault(source, []).append(target)
    for a, b in itertools.pairwise(path):
        pairs.add((a, b))
        for middle in after.get(a, ()):
            if (middle, b) in contracted:
                pairs |= {(a, middle), (middle, b)}
    return pairs
