"""What a drawing of a trace shows: boxes, edges and ranks, decided once for every renderer.

Every renderer (graphviz, matplotlib, mermaid) draws the same :class:`View`:

* **Boxes** for inputs, ops, glue and syncs. Op boxes carry name, ``file:line``,
  duration and status (failures say their exception type and the arguments of the
  call, so a failed run shows *which* call failed); their *rank* is their parallel
  group, so ops that could run together sit side by side.
* **Folding** (which nodes get a box: ``fold.py``, on ``parallelism.contract``): by
  default the ops, the arguments that reach them, and the syncs that held calls back,
  each sync labelled with the user's line and what it waited for (never an internal
  name such as ``demand %3``). Every other node folds into the edges (op A -> op B
  when a path of folded nodes joins them); glue that only works on one op's result
  (``.text``, ``.strip()``) belongs to that op's box, which names its steps
  (``then .text .strip()``). With ``glue=True`` every glue step and sync is a box.
* **Collapsing** (``fold=True``, the default): more than :data:`COLLAPSE_AT` calls of
  one op from one line in one parallel group become one box ``ask x1000`` with the
  range of their durations (and with ``glue=True``, the
  glue on their results one box per step, ``.text x1000``), so a 40-document
  fan-out is one box and a 5,000-node trace draws in a second. ``fold=False``
  draws every call. A failed call is never collapsed: it keeps a box of its own.
* **Critical path**: its boxes and the edges between them are marked.
* **Ran at once**: ops that library code (callbacks) or code xcs could not rewrite
  called ran one after another as they were called, whatever their group; their
  boxes say so.
* **Items** of an ``xcs.map`` op: one group per item below the map's box, holding the
  item's ops (its glue and syncs folded into edges). More than :data:`ITEMS_SHOWN`
  items fold to one box per item (its op count and time); past
  :data:`ITEMS_LIMIT`, the rest are counted in a last box.

User text in the view (op, input and file names) is cleaned once, here, by
:func:`label_text`: secrets redacted and control characters made spaces (see
``ember._redact``). Each renderer then escapes what its format reads as syntax.
"""

from __future__ import annotations

import dataclasses
import linecache
import statistics
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember._redact import shown_arguments, shown_text
from ember.xcs._internal.errors import NOTE_ARG_TEXT
from ember.xcs._internal.locations import shorten_location
from ember.xcs._viz import CACHED, RAN_AT_ONCE
from ember.xcs._viz import fold as folding
from ember.xcs._viz.fold import COLLAPSE_AT

if TYPE_CHECKING:
    from ember.xcs._internal.ir import Location, Node
    from ember.xcs._trace import Trace

__all__ = [
    "COLLAPSE_AT",
    "ITEMS_LIMIT",
    "ITEMS_SHOWN",
    "Box",
    "Group",
    "View",
    "build_view",
    "duration_text",
    "label_text",
]

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
    return label_text(shorten_location(location))  # app.py:12, or In [7], line 3


def build_view(trace: Trace, *, glue: bool = False, fold: bool = True) -> View:
    """Decide what a drawing of ``trace`` shows (see the module docstring).

    Args:
        trace: The trace to draw.
        glue: Draw every glue step and every sync as a box of its own.
        fold: Collapse many calls of one op from one line in one parallel group into
            one box; False draws every call.
    """
    graph = trace.graph
    nodes = graph.nodes
    rank = {op: index for index, group in enumerate(trace.parallel_groups) for op in group}
    critical = set(trace.critical_path)
    works_on = folding.glue_owners(graph)  # glue -> the one op whose result it works on
    owner = folding.collapse(trace, works_on if glue else {}) if fold else {}
    last_op = max(rank, default=-1)
    kept = [n for n in sorted(graph.nodes) if glue or folding.drawn_by_default(graph, n, last_op)]
    junctions, lines = folding.edges(graph, set(kept), owner, trace.critical_path)
    if junctions:
        kept = sorted([*kept, *junctions])
    read = {source for source, _, _ in lines}  # an argument no box reads says nothing
    kept = [n for n in kept if nodes[n]["kind"] != "input" or f"n{n}" in read]
    steps = {} if glue else _steps(works_on, nodes)
    records = {record.id: record for record in getattr(trace, "_nodes", ())}
    where = {node: record.location for node, record in records.items()}
    members: dict[str, list[int]] = {}
    for node, shared in owner.items():
        members.setdefault(shared, []).append(node)
    boxes: dict[str, Box] = {}
    for node in kept:
        if node not in owner:
            box = _box(node, nodes[node], rank.get(node), node in critical, where.get(node))
            if box.status == "failed" and node in records:
                box = _with_call(box, records[node])
            boxes[box.key] = _with_steps(box, steps.get(node))
        elif owner[node] not in boxes:
            together = sorted(members[owner[node]])
            box = _collapsed_box(owner[node], together, nodes, rank.get(node), critical)
            boxes[box.key] = _with_steps(box, steps.get(together[0]))

    lines = folding.thin_syncs(lines, {b.key for b in boxes.values() if b.kind == "sync"})
    drawn = Counter(nodes[n]["kind"] for n in kept)
    every = Counter(kind for _, kind in nodes(data="kind"))
    folded = sum(every[kind] - drawn[kind] for kind in ("glue", "sync"))
    groups = [
        group
        for node in kept
        if nodes[node].get("items")
        for group in _item_groups(f"n{node}", nodes[node]["items"])
    ]
    title = _title(trace, folded)
    return View(list(boxes.values()), lines, title, len(trace.parallel_groups), groups)


_STEPS_SHOWN = 3
"""Glue steps named on an op's box at most (``then .text .strip() .upper() ...``)."""


def _steps(works_on: Mapping[int, int], nodes: Any) -> dict[int, str]:
    """For each op with glue on its result: ``then .text .strip()`` (steps in program order)."""
    names: dict[int, list[str]] = {}
    for node, op in sorted(works_on.items()):
        name = label_text(nodes[node]["name"])
        seen = names.setdefault(op, [])
        if name not in seen:
            seen.append(name)
    lines = {}
    for op, seen in names.items():
        found = [n for n in seen if f"{n}()" not in seen]  # .strip then .strip(): one step
        more = " ..." if len(found) > _STEPS_SHOWN else ""
        lines[op] = f"then {' '.join(found[:_STEPS_SHOWN])}{more}"
    return lines


_CALL_SHOWN = 60
"""Characters of a failed op's arguments its box shows at most."""


def _with_call(box: Box, record: Node) -> Box:
    """A failed op's box says which call it was: its arguments, shortened and redacted."""
    if box.kind != "op" or not (record.args or record.kwargs):
        return box
    text = f"({shown_arguments(record.args, record.kwargs, NOTE_ARG_TEXT)})"
    if len(text) > _CALL_SHOWN:
        text = text[: _CALL_SHOWN - 3] + "..."
    return dataclasses.replace(box, details=(*box.details, label_text(text)))


def _with_steps(box: Box, steps: str | None) -> Box:
    if steps is None or box.kind not in ("op", "ops"):
        return box
    return dataclasses.replace(box, details=(*box.details, steps))


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


def _box(
    node: int,
    attrs: Mapping[str, Any],
    rank: int | None,
    critical: bool,
    where: Location | None = None,
) -> Box:
    kind, name, status = attrs["kind"], label_text(attrs["name"]), str(attrs["status"])
    location = _short(str(attrs.get("location", "")))
    if kind == "input":
        return Box(f"n{node}", kind, name, ("argument",), status, None, (node,))
    if kind == "sync":
        return _sync_box(node, attrs, where)
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
        if attrs.get("cached"):
            details.append(CACHED)
    return Box(
        f"n{node}", kind, name, tuple(d for d in details if d), status, rank, (node,), critical
    )


_SYNC_REASONS = {
    # sync name -> what it waited for, where the sync itself does not say (waits.py)
    "scope": "a try/with block",
    "clock read": "a clock read",
    "flush output": "output before library code",
    "exception": "an exception raised",
    "barrier": "xcs.barrier()",
}
_CODE_SHOWN = 40
"""Characters of the user's line a sync's box shows at most."""


def _sync_box(node: int, attrs: Mapping[str, Any], where: Location | None) -> Box:
    """A sync in the user's terms: their line, where it is, and what it waited for.

    ``waits: if verdict:`` / ``app.py:12`` / ``for a branch on a pending answer``;
    the sync at the end of the call is ``end of the call``. Never the internal name
    (``demand %3``).
    """
    name, status = str(attrs["name"]), str(attrs["status"])
    if name == "exit":
        return Box(f"n{node}", "sync", "end of the call", (), status, None, (node,))
    code = ""
    if where is not None:
        code = " ".join(linecache.getline(where.file, where.line).split())
        if len(code) > _CODE_SHOWN:
            code = code[: _CODE_SHOWN - 3] + "..."
    why = attrs.get("waited_for") or _SYNC_REASONS.get(name)
    if why is None and name.endswith(" runs now"):
        why = "an op called by library code"
    details = [_short(str(attrs.get("location", "")))]
    if why:
        details.append(f"for {label_text(str(why).split(' (')[0])}")
    title = f"waits: {label_text(code)}" if code else "waits"
    return Box(f"n{node}", "sync", title, tuple(details), status, None, (node,))


def _collapsed_box(
    key: str, members: list[int], nodes: Any, rank: int | None, critical: set[int]
) -> Box:
    first = nodes[members[0]]
    if first["kind"] == "glue":  # the same step on each collapsed call's result
        broke = any(nodes[m]["status"] == "failed" for m in members)
        return Box(
            key,
            "glue",
            f"{label_text(first['name'])} x{len(members)}",
            (f"from {_short(str(first.get('location', '')))}",),
            "failed" if broke else str(first["status"]),
            None,
            tuple(members),
        )
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
    cached = sum(1 for m in members if nodes[m].get("cached"))
    if cached:
        details.append(f"{cached} {CACHED}")
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


def _title(trace: Trace, folded: int) -> str:
    ops = sum(1 for _, kind in trace.graph.nodes(data="kind") if kind == "op")
    groups = len(trace.parallel_groups)
    parts = [
        f"{ops} op{'s' if ops != 1 else ''} in {groups} parallel group{'s' if groups != 1 else ''}"
    ]
    if trace.executed:
        parts.append(f"wall {duration_text(trace.wall_seconds)}")
    else:
        parts.append("recorded, not run (execute=False)")
    error = getattr(trace, "error", None)
    if error is not None:  # a failed call's trace (xcs.trace_of): what it raised
        parts.append(f"raised {label_text(type(error).__name__)}")
    elif trace.speedup is not None:
        parts.append(f"speedup {trace.speedup:.1f}x")
    if folded:
        parts.append(f"{folded} glue and sync node{'s' if folded != 1 else ''} folded")
    return " | ".join(parts)
