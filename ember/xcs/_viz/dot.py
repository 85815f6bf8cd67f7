"""Graphviz rendering: a :class:`~.view.View` as DOT source, and DOT run through ``dot``.

Ops that could run together share a rank (``rank=same``), so each row of the
drawing is one parallel group, top to bottom in program order. Inputs sit above,
glue and syncs between. Failed ops are red, cancelled ones grey and dashed; the
critical path is drawn in bold amber. The items of an ``xcs.map`` hang below its box,
eight to a row.

A drawing is at most :data:`MAX_WIDTH_INCHES` wide (graphviz's ``size``: a wider
layout is scaled down to it, a narrower one kept as is), so it fits a notebook cell;
the view's folding keeps most drawings narrower than that to begin with.

Every user-provided string (op names, argument names, file names) is escaped for a
DOT quoted string: backslashes and quotes escaped, line breaks and other control
characters turned into spaces, so no label can end its string or start an escape
sequence of graphviz's own.
"""

from __future__ import annotations

import shutil

from ember.xcs._viz.view import Box, Group, View

__all__ = ["MAX_WIDTH_INCHES", "available", "render", "to_dot"]

MAX_WIDTH_INCHES = 9.0
"""Widest drawing: 648 pt, 864 CSS pixels -- a notebook cell's width."""

_FONT = "Helvetica"
_ITEMS_PER_ROW = 8  # items of one xcs.map side by side; more go on the rows below
_STYLE = {
    # kind: shape, style, fill, font size
    "input": ("ellipse", "filled", "#e0f2fe", 10),
    "op": ("box", "rounded,filled", "#dbeafe", 10),
    "ops": ("box3d", "filled", "#dbeafe", 10),
    "glue": ("box", "filled", "#f3f4f6", 8),
    "sync": ("hexagon", "filled", "#fef3c7", 8),
}
_FAILED = "#fecaca"
_CANCELLED = "#e5e7eb"
_CRITICAL = "#b45309"


def available() -> bool:
    """Whether graphviz's ``dot`` binary and Python package can be used."""
    if shutil.which("dot") is None:
        return False
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return True


def _quote(text: str) -> str:
    r"""``text`` as a DOT quoted string that graphviz shows as written.

    Backslashes are doubled (graphviz reads ``\N`` as the node's name), quotes
    escaped, ``&`` written as ``&amp;`` (graphviz expands character entities), and
    control characters become spaces.
    """
    clean = "".join(c if c.isprintable() else " " for c in text)
    escaped = clean.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return f'"{escaped}"'


def _label(lines: list[str]) -> str:
    """Label lines, each escaped, joined by DOT's centred line break."""
    return "\\n".join(_quote(line)[1:-1] for line in lines)


def _node(box: Box) -> str:
    shape, style, fill, size = _STYLE[box.kind]
    color, pen = "#475569", 1.0
    if box.status == "failed":
        fill, color = _FAILED, "#dc2626"
    elif box.status == "cancelled":
        fill, style = _CANCELLED, style + ",dashed"
    if box.critical:
        color, pen = _CRITICAL, 2.5
    attrs = [
        f"shape={shape}",
        f'style="{style}"',
        f'fillcolor="{fill}"',
        f'color="{color}"',
        f"penwidth={pen}",
        f"fontsize={size}",
        f'label="{_label(box.label)}"',
    ]
    return f"  {box.key} [{', '.join(attrs)}];"


def to_dot(view: View) -> str:
    """The DOT source of a view."""
    lines = [
        "digraph trace {",
        f'  graph [rankdir=TB, fontname="{_FONT}", fontsize=11, labelloc=t, '
        f"label={_quote(view.title)}, nodesep=0.25, ranksep=0.4, "
        f'size="{MAX_WIDTH_INCHES:g},1000"];',
        f'  node [fontname="{_FONT}", margin="0.08,0.04"];',
        '  edge [color="#64748b", arrowsize=0.6];',
    ]
    lines += [_node(box) for box in view.boxes]
    ranks: dict[int, list[str]] = {}
    for box in view.boxes:
        if box.rank is not None:
            ranks.setdefault(box.rank, []).append(box.key)
    for keys in ranks.values():
        lines.append(f"  {{ rank=same; {'; '.join(keys)}; }}")
    inputs = [box.key for box in view.boxes if box.kind == "input"]
    if inputs:
        lines.append(f"  {{ rank=source; {'; '.join(inputs)}; }}")
    items: dict[str, list[Group]] = {}
    for group in view.groups:  # an xcs.map's items, below its box, in rows
        lines.append(f"  subgraph cluster_{group.key} {{")
        lines.append(f'    label={_quote(group.title)}; style="rounded,dashed"; color="#94a3b8";')
        lines += ["  " + _node(box) for box in group.boxes]
        lines += [f"    {s} -> {t};" for s, t, _ in group.edges]
        lines.append("  }")
        before = items.setdefault(group.owner, [])
        if len(before) < _ITEMS_PER_ROW:
            lines.append(f"  {group.owner} -> {group.boxes[0].key} [style=dashed, arrowhead=none];")
        else:  # the next row: below the item a row earlier
            above = before[-_ITEMS_PER_ROW].boxes[-1].key
            lines.append(f"  {above} -> {group.boxes[0].key} [style=invis];")
        before.append(group)
    for source, target, kind in view.edges:
        if kind == "critical":
            lines.append(f'  {source} -> {target} [color="{_CRITICAL}", penwidth=2.5];')
        elif kind == "order":
            lines.append(f"  {source} -> {target} [style=dotted];")
        else:
            lines.append(f"  {source} -> {target};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(view: View, fmt: str) -> bytes:
    """Run ``dot`` on the view: ``svg``, ``png`` or ``pdf`` bytes.

    Raises:
        graphviz.ExecutableNotFound: No ``dot`` binary on PATH.
    """
    import graphviz

    return bytes(graphviz.Source(to_dot(view)).pipe(format=fmt))
