"""What a drawing of a trace shows: boxes, edges and ranks, decided once for every renderer.

Every renderer (graphviz, matplotlib, mermaid) draws the same :class:`View`:

* **Boxes** for inputs, ops, glue and syncs. Op boxes carry name, ``file:line``,
  duration and status (failures say their exception type); their *rank* is their
  parallel group, so ops that could run together sit side by side.
* **Folding**: a trace of more than :data:`FULL_LIMIT` nodes folds its glue and
  sync nodes into edges (op A -> op B when a path of folded nodes joins them), and
  says so in the title.
* **Collapsing**: more than :data:`COLLAPSE_AT` ops of one name in one parallel
  group become one box ``ask x1000`` with the range of their durations and a count
  of failures, so a 5,000-node trace draws in a second.
* **Critical path**: its boxes and the edges between them are marked.
* **Ran at once**: ops that library code (callbacks) or code xcs could not rewrite
  called ran one after another as they were called, whatever their group; their
  boxes say so.
* **Items** of an ``xcs.map`` op: one group per item beside the map's box, holding the
  item's ops (its glue and syncs folded into edges). More than :data:`ITEMS_SHOWN`
  items fold to one box per item (its op count and time); past
  :data:`ITEMS_LIMIT`, the rest are counted in a last box.

User text in the view (op, input and file names) is cleaned once, here, by
:func:`label_text`: secrets redacted and control characters made spaces (see
``ember._redact``). Each renderer then escapes what its format reads as syntax.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember._redact import shown_text
from ember.xcs._viz import RAN_AT_ONCE

if TYPE_CHECKING:
    from ember.xcs._trace import Trace

__all__ = [
    "COLLAPSE_AT",
    "FULL_LIMIT",
    "ITEMS_LIMIT",
    "ITEMS_SHOWN",
    "Box",
    "Group",
    "View",
    "build_view",
    "duration_text",
    "label_text",
]

FULL_LIMIT = 150
"""Traces with more nodes than this fold their glue and sync nodes into edges."""

COLLAPSE_AT = 12
"""More ops than this of one name in one parallel group are drawn as one box."""

ITEMS_SHOWN = 8
"""An ``xcs.map`` of more items than this draws each item as one box."""

ITEMS_LIMIT = 40
"""Items of one ``xcs.map`` drawn at most; the rest are counted in one box."""


@dataclasses.dataclass(frozen=True)
class Box:
    """One drawn node (or several ops collapsed into one).

    Attributes:
        key: Identifier in the drawing (``n12``, or ``g3_0`` for a collapsed box).
        kind: ``input``, ``op``, ``glue``, ``sync``, or ``ops`` (collapsed ops).
        title: First line of the label (the op's name, ``input``, ``sync``).
        details: Further label lines (location, duration, error).
        status: ``done``, ``failed``, ``cancelled``, ``running`` or ``pending``
            (for collapsed ops: ``failed`` if any failed).
        rank: The parallel group of an op box (0 first), None for other kinds.
        members: The trace node ids the box stands for.
        critical: Whether the box is on the critical path.
    """

    key: str
    kind: str
    title: str
    details: tuple[str, ...]
    status: str
    rank: int | None
    members: tuple[int, ...]
    critical: bool = False

    @property
    def label(self) -> list[str]:
        """All label lines."""
        return [self.title, *self.details]


@dataclasses.dataclass(frozen=True)
class Group:
    """The drawing of one item of an ``xcs.map`` op: a labelled group of boxes.

    Attributes:
        key: Identifier of the group (``n5_item2``).
        owner: Key of the map op's box.
        title: ``item 2``.
        boxes: The item's ops (or one box standing for the item).
        edges: ``(source key, target key, kind)`` between them.
    """

    key: str
    owner: str
    title: str
    boxes: list[Box]
    edges: list[tuple[str, str, str]]


@dataclasses.dataclass(frozen=True)
class View:
    """Boxes and edges to draw, and a title line.

    Attributes:
        boxes: In program order of their first member.
        edges: ``(source key, target key, kind)`` with kind ``data``, ``order``
            (a change waited for earlier readers) or ``critical``.
        title: What the trace shows, in one line.
        ranks: Number of parallel groups.
        groups: The items of ``xcs.map`` ops, each drawn beside its map's box.
    """

    boxes: list[Box]
    edges: list[tuple[str, str, str]]
    title: str
    ranks: int
    groups: list[Group] = dataclasses.field(default_factory=list)


def duration_text(seconds: float | None) -> str:
    """``0.21 s``, ``3.2 ms``, ``45 us`` (empty when unknown)."""
    if seconds is None:
        return ""
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def _duration(attrs: Mapping[str, Any]) -> float | None:
    start, end = attrs.get("start"), attrs.get("end")
    if start is None or end is None:
        return None
    return float(max(0.0, end - start))


def label_text(text: object) -> str:
    """User text as every drawing shows it: one line, printable, secrets redacted."""
    return shown_text(str(text), replacement=" ")


def _short(location: str) -> str:
    file, _, line = location.rpartition(":")
    return label_text(f"{os.path.basename(file)}:{line}" if file else location)


def build_view(trace: Trace) -> View:
    """Decide what a drawing of ``trace`` shows (see the module docstring)."""
    graph = trace.graph
    nodes = graph.nodes
    rank = {op: index for index, group in enumerate(trace.parallel_groups) for op in group}
    critical = set(trace.critical_path)
    fold = graph.number_of_nodes() > FULL_LIMIT
    kept = [n for n in sorted(graph.nodes) if not fold or nodes[n]["kind"] in ("input", "op")]

    owner = _collapse(trace, rank)  # node -> key of its collapsed box (collapsed ops only)
    junctions, edges = _edges(graph, set(kept), owner, trace.critical_path)
    if junctions:
        kept = sorted([*kept, *junctions])
    boxes: dict[str, Box] = {}
    for node in kept:
        key = owner.get(node)
        if key is None:
            boxes[f"n{node}"] = _box(node, nodes[node], rank.get(node), node in critical)
        elif key not in boxes:
            members = [m for m, k in owner.items() if k == key]
            boxes[key] = _collapsed_box(key, members, nodes, rank[node], critical)

    edges = _thin_syncs(edges, {b.key for b in boxes.values() if b.kind == "sync"})
    folded = graph.number_of_nodes() - len(kept)
    groups = [
        group
        for node in kept
        if nodes[node].get("items")
        for group in _item_groups(f"n{node}", nodes[node]["items"])
    ]
    title = _title(trace, folded)
    return View(list(boxes.values()), edges, title, len(trace.parallel_groups), groups)


def _item_groups(owner: str, items: list[Any]) -> list[Group]:
    """The groups drawing an ``xcs.map`` op's items (see the module docstring)."""
    from ember.xcs._internal.parallelism import op_graph

    groups = []
    folded = len(items) > ITEMS_SHOWN
    for index, graph in enumerate(items[:ITEMS_LIMIT]):
        key = f"{owner}_item{index}"
        if graph is None:
            box = Box(f"{key}_none", "glue", "not started", (), "cancelled", None, ())
            groups.append(Group(key, owner, f"item {index}", [box], []))
            continue
        ops = op_graph(graph)
        if not ops.nodes:  # the item made no op calls
            box = Box(f"{key}_none", "glue", "no calls", (), "done", None, ())
            groups.append(Group(key, owner, f"item {index}", [box], []))
            continue
        if folded:
            times = [_duration(a) or 0.0 for _, a in ops.nodes(data=True) if a["kind"] == "op"]
            failed = any(ops.nodes[n]["status"] == "failed" for n in ops.nodes)
            details = (
                f"{len(times)} op{'s' if len(times) != 1 else ''}",
                duration_text(sum(times)),
            )
            box = Box(
                f"{key}_all",
                "ops",
                f"item {index}",
                details,
                "failed" if failed else "done",
                None,
                (),
            )
            groups.append(Group(key, owner, f"item {index}", [box], []))
            continue
        boxes = [
            dataclasses.replace(_box(n, ops.nodes[n], None, False), key=f"{key}_{n}")
            for n in sorted(ops.nodes)
        ]
        edges = [(f"{key}_{a}", f"{key}_{b}", "data") for a, b in ops.edges]
        groups.append(Group(key, owner, f"item {index}", boxes, edges))
    if len(items) > ITEMS_LIMIT:
        rest = len(items) - ITEMS_LIMIT
        key = f"{owner}_more"
        box = Box(f"{key}_box", "ops", f"... {rest} more items", (), "done", None, ())
        groups.append(Group(key, owner, f"{rest} more", [box], []))
    return groups


def _box(node: int, attrs: Mapping[str, Any], rank: int | None, critical: bool) -> Box:
    kind, name, status = attrs["kind"], label_text(attrs["name"]), str(attrs["status"])
    location = _short(str(attrs.get("location", "")))
    if kind == "input":
        return Box(f"n{node}", kind, "input", (name,), status, None, (node,))
    if kind == "sync":
        return Box(f"n{node}", kind, "sync", (name,), status, None, (node,))
    details = [location]
    if kind == "op":
        details.append(duration_text(_duration(attrs)))
        error = attrs.get("error")
        if status == "failed" and error is not None:
            details.append(f"failed: {label_text(type(error).__name__)}")
        elif status == "cancelled":
            details.append("cancelled")
        if attrs.get("immediate"):
            details.append(RAN_AT_ONCE)
    return Box(
        f"n{node}", kind, name, tuple(d for d in details if d), status, rank, (node,), critical
    )


def _collapse(trace: Trace, rank: Mapping[int, int]) -> dict[int, str]:
    """Ops to collapse: more than COLLAPSE_AT of one name in one group."""
    owner: dict[int, str] = {}
    nodes = trace.graph.nodes
    for index, group in enumerate(trace.parallel_groups):
        by_name: dict[str, list[int]] = {}
        for op in group:
            by_name.setdefault(str(nodes[op]["name"]), []).append(op)
        for position, members in enumerate(by_name.values()):
            if len(members) > COLLAPSE_AT:
                for op in members:
                    owner[op] = f"g{index}_{position}"
    return owner


def _collapsed_box(key: str, members: list[int], nodes: Any, rank: int, critical: set[int]) -> Box:
    first = nodes[members[0]]
    times = [t for t in (_duration(nodes[m]) for m in members) if t is not None]
    failed = sum(1 for m in members if nodes[m]["status"] == "failed")
    details = [f"from {_short(str(first.get('location', '')))}"]
    if times:
        details.append(
            f"{duration_text(min(times))} - {duration_text(max(times))}"
            f" (median {duration_text(statistics.median(times))})"
        )
    if failed:
        details.append(f"{failed} failed")
    at_once = sum(1 for m in members if nodes[m].get("immediate"))
    if at_once:
        details.append(f"{at_once} {RAN_AT_ONCE}")
    status = "failed" if failed else str(first["status"])
    return Box(
        key,
        "ops",
        f"{label_text(first['name'])} x{len(members)}",
        tuple(details),
        status,
        rank,
        tuple(members),
        any(m in critical for m in members),
    )


def _edges(
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
    on_path = _on_critical_path(graph, kept, path)
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


def _thin_syncs(edges: list[tuple[str, str, str]], syncs: set[str]) -> list[tuple[str, str, str]]:
    """Into a sync, only edges from boxes with nowhere else to go (the rest is implied).

    A sync waits for everything before it; drawing every such edge buries the graph.
    """
    elsewhere = {s for s, t, _ in edges if t not in syncs}
    return [(s, t, k) for s, t, k in edges if t not in syncs or s not in elsewhere]


def _on_critical_path(graph: Any, kept: set[int], path: list[int]) -> set[tuple[int, int]]:
    """Pairs of drawn nodes joined by an edge that lies on the critical path."""
    if len(path) < 2:
        return set()
    if all(node in kept for node in graph.nodes):  # nothing folded: walk the real edges
        import networkx as nx

        pairs: set[tuple[int, int]] = set()
        for a, b in itertools.pairwise(path):
            between = (nx.descendants(graph, a) & nx.ancestors(graph, b)) | {a, b}
            pairs |= {(u, v) for u, v in graph.subgraph(between).edges}
        return pairs
    return set(itertools.pairwise(path))


def _title(trace: Trace, folded: int) -> str:
    ops = sum(1 for _, kind in trace.graph.nodes(data="kind") if kind == "op")
    groups = len(trace.parallel_groups)
    parts = [
        f"{ops} op{'s' if ops != 1 else ''} in {groups} parallel group{'s' if groups != 1 else ''}"
    ]
    parts.append(f"wall {duration_text(trace.wall_seconds)}")
    if trace.speedup is not None:
        parts.append(f"speedup {trace.speedup:.1f}x")
    if folded:
        parts.append(f"{folded} glue and sync nodes folded into edges")
    return " | ".join(parts)
