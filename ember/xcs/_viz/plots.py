"""Matplotlib: the graph when graphviz's ``dot`` is missing, and the timeline.

* :func:`graph_figure` draws a :class:`~.view.View` in layers (longest-path
  layering of the drawn graph; inputs on top), boxes coloured as graphviz colours
  them. It is the fallback renderer, so it needs no binary.
* :func:`timeline_figure` is a Gantt chart of the run: one row per thread, one bar
  per op from its start to its end, coloured by parallel group; the critical path
  is outlined in amber and failed ops hatched in red.

Figures are made with ``matplotlib.figure.Figure`` (no pyplot, no GUI backend), so
they work headless and display in notebooks. Text goes through :func:`_plain`: user
text cleaned as in every drawing (``view.label_text``), and ``$`` escaped, since
matplotlib reads text between two ``$`` as mathtext (an op named ``$x_{$`` would stop
the drawing with a parse error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.xcs._viz.view import View, duration_text, label_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ember.xcs._trace import Trace

__all__ = ["graph_figure", "timeline_figure"]

_FILL = {
    "input": "#e0f2fe",
    "op": "#dbeafe",
    "ops": "#dbeafe",
    "glue": "#f3f4f6",
    "sync": "#fef3c7",
}
_CRITICAL = "#b45309"
_FAILED = "#dc2626"


def _plain(text: object) -> str:
    """``text`` as matplotlib shows it as written: cleaned, ``$`` not starting mathtext."""
    return label_text(text).replace("$", r"\$")


def _layers(view: View) -> dict[str, int]:
    """Longest-path layer of every box (inputs first)."""
    preds: dict[str, list[str]] = {box.key: [] for box in view.boxes}
    for source, target, _ in view.edges:
        preds[target].append(source)
    layer: dict[str, int] = {}
    for box in view.boxes:  # program order is a topological order
        layer[box.key] = 1 + max((layer[p] for p in preds[box.key] if p in layer), default=-1)
    return layer


def graph_figure(view: View) -> Figure:
    """The view drawn in layers with matplotlib."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    layer = _layers(view)
    rows: dict[int, list[str]] = {}
    for box in view.boxes:
        rows.setdefault(layer[box.key], []).append(box.key)
    width = max((len(keys) for keys in rows.values()), default=1)
    figure = Figure(figsize=(min(2.0 + 1.7 * width, 40), min(1.5 + 1.1 * len(rows), 60)))
    ax = figure.add_subplot()
    ax.set_axis_off()
    position: dict[str, tuple[float, float]] = {}
    for level, keys in rows.items():
        for index, key in enumerate(keys):
            position[key] = (index - (len(keys) - 1) / 2, -float(level))
    boxes = {box.key: box for box in view.boxes}
    for source, target, kind in view.edges:
        arrow = FancyArrowPatch(
            position[source],
            position[target],
            arrowstyle="-|>",
            mutation_scale=10,
            shrinkA=16,
            shrinkB=16,
            color=_CRITICAL if kind == "critical" else "#64748b",
            linewidth=2.2 if kind == "critical" else 0.8,
            linestyle=":" if kind == "order" else "-",
        )
        ax.add_patch(arrow)
    for key, (x, y) in position.items():
        box = boxes[key]
        edge = _CRITICAL if box.critical else (_FAILED if box.status == "failed" else "#475569")
        fill = "#fecaca" if box.status == "failed" else _FILL[box.kind]
        small = box.kind in ("glue", "sync")
        ax.text(
            x,
            y,
            "\n".join(_plain(line) for line in box.label),
            ha="center",
            va="center",
            fontsize=6.5 if small else 8,
            bbox={
                "boxstyle": "round,pad=0.3",
                "facecolor": fill,
                "edgecolor": edge,
                "linewidth": 2.0 if box.critical else 0.8,
                "linestyle": "--" if box.status == "cancelled" else "-",
            },
        )
    xs = [x for x, _ in position.values()] or [0.0]
    ys = [y for _, y in position.values()] or [0.0]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.set_title(_plain(view.title), fontsize=9)
    figure.tight_layout()
    return figure


def timeline_figure(trace: Trace) -> Figure:
    """A Gantt chart of the ops of ``trace``: a row per thread, a bar per op."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    nodes = trace.graph.nodes
    ops = [
        n
        for n in sorted(trace.graph.nodes)
        if nodes[n]["kind"] == "op" and nodes[n].get("start") is not None and nodes[n].get("end")
    ]
    origin = min((nodes[n]["start"] for n in ops), default=0.0)
    threads = sorted({str(nodes[n].get("thread")) for n in ops}, key=_thread_order)
    group = {op: index for index, members in enumerate(trace.parallel_groups) for op in members}
    critical = set(trace.critical_path)
    colors = _palette()

    figure = Figure(figsize=(10, 1.2 + 0.38 * max(len(threads), 1)))
    ax = figure.add_subplot()
    row = {name: index for index, name in enumerate(threads)}
    span = max((nodes[n]["end"] - origin for n in ops), default=0.0) or 1.0
    for node in ops:
        attrs = nodes[node]
        start, end = attrs["start"] - origin, attrs["end"] - origin
        failed = attrs["status"] == "failed"
        ax.barh(
            row[str(attrs.get("thread"))],
            max(end - start, span / 2000),
            left=start,
            height=0.7,
            color=colors[group.get(node, 0) % len(colors)],
            edgecolor=_CRITICAL if node in critical else (_FAILED if failed else "none"),
            linewidth=2.0 if node in critical or failed else 0,
            hatch="///" if failed else None,
        )
        if end - start > span / 12:
            ax.text(
                start + (end - start) / 2,
                row[str(attrs.get("thread"))],
                _plain(attrs["name"]),
                ha="center",
                va="center",
                fontsize=7,
                clip_on=True,
            )
    ax.set_yticks(range(len(threads)), labels=[_plain(t) for t in threads], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first op started")
    ax.grid(axis="x", alpha=0.3)
    speed = f", speedup {trace.speedup:.1f}x" if trace.speedup is not None else ""
    ax.set_title(
        f"{len(ops)} ops on {len(threads)} threads, wall {duration_text(trace.wall_seconds)}"
        f"{speed}",
        fontsize=9,
    )
    handles = [
        Patch(facecolor=colors[i % len(colors)], label=f"parallel group {i + 1}")
        for i in range(min(len(trace.parallel_groups), 6))
    ]
    handles.append(
        Patch(facecolor="white", edgecolor=_CRITICAL, linewidth=2, label="critical path")
    )
    if any(nodes[n]["status"] == "failed" for n in ops):
        handles.append(Patch(facecolor="white", edgecolor=_FAILED, hatch="///", label="failed"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    figure.tight_layout()
    return figure


def _thread_order(name: str) -> tuple[int, str]:
    """The caller's thread first, then workers in name order."""
    return (0 if name in ("MainThread", "None") else 1, name)


def _palette() -> list[Any]:
    from matplotlib import colormaps

    return list(getattr(colormaps["tab20"], "colors", ["#1f77b4", "#aec7e8", "#ff7f0e"]))
