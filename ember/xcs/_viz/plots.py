"""Matplotlib: the graph when graphviz's ``dot`` is missing, and the timeline.

* :func:`graph_figure` draws a :class:`~.view.View` in layers (longest-path
  layering of the drawn graph; inputs on top), boxes coloured as graphviz colours
  them. It is the fallback renderer, so it needs no binary.
* :func:`timeline_figure` is a Gantt chart of the run: one bar per op from its start
  to its end, coloured by parallel group; the critical path is outlined in amber and
  failed ops hatched in red. Rows are lanes (ops packed so that threads which ran
  one after another share a row) or one per thread, ordered and named as
  ``rows.py`` says. Rows are 0.38 in tall and take at most 6 in together: past
  15 they get thinner, every n-th labelled, so 64 rows or 200 stay one screen tall.

Titles are wrapped to the figure's width (between `` | ``-separated parts, then
words), at most three lines, the last cut with ``...``: nothing of them falls
outside the picture.

Figures are made with ``matplotlib.figure.Figure`` (no pyplot, no GUI backend), so
they work headless and display in notebooks. Text goes through :func:`_plain`: user
text cleaned as in every drawing (``view.label_text``), and ``$`` escaped, since
matplotlib reads text between two ``$`` as mathtext (an op named ``$x_{$`` would stop
the drawing with a parse error).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ember.xcs._viz.rows import Lane, Span, pack_lanes, thread_rows
from ember.xcs._viz.view import View, duration_text, label_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ember.xcs._trace import Trace

__all__ = ["ROWS", "graph_figure", "timeline_figure"]

ROWS = ("lanes", "threads")
"""How the timeline lays out its bars (see :func:`timeline_figure`)."""

_FILL = {
    "input": "#e0f2fe",
    "op": "#dbeafe",
    "ops": "#dbeafe",
    "glue": "#f3f4f6",
    "sync": "#fef3c7",
}
_CRITICAL = "#b45309"
_FAILED = "#dc2626"
_ROW_INCHES = 0.38  # a timeline row while there are few
_PLOT_INCHES = 6.0  # the most the timeline's rows take together: more rows get thinner
_MARGIN_INCHES = 1.2  # title and axis label
_LABEL_POINTS = 10  # room a row label needs: with thinner rows, every n-th is labelled
_TITLE_LINES = 3
_GRAPH_INCHES = 9.0  # the widest graph drawing, as graphviz's (dot.py): a notebook cell


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
    natural = 2.0 + 1.7 * width  # inches that give each box of the widest row its room
    scale = min(1.0, _GRAPH_INCHES / natural)  # wider rows shrink, as graphviz's do
    figure = Figure(figsize=(natural * scale, min(1.5 + 1.1 * len(rows), 60)))
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
            mutation_scale=10 * scale,
            shrinkA=16 * scale,
            shrinkB=16 * scale,
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
            fontsize=(6.5 if small else 8) * scale,
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
    _title(figure, view.title)
    figure.tight_layout()
    return figure


def timeline_figure(trace: Trace, rows: str = "lanes") -> Figure:
    """A Gantt chart of the ops of ``trace``: a bar per op, on lanes or a row per thread.

    Args:
        trace: The trace whose run to draw.
        rows: ``lanes`` packs the ops in the fewest rows in which no two bars
            overlap (:func:`~.rows.pack_lanes`); ``threads`` draws a row per thread.

    Raises:
        ValueError: ``rows`` is neither.
    """
    from matplotlib.figure import Figure

    if rows not in ROWS:
        raise ValueError(f"unknown timeline rows {rows!r}: choose one of {', '.join(ROWS)}")
    nodes = trace.graph.nodes
    spans = [
        Span(n, str(nodes[n].get("thread")), nodes[n]["start"], nodes[n]["end"])
        for n in sorted(trace.graph.nodes)
        if nodes[n]["kind"] == "op" and nodes[n].get("start") is not None and nodes[n].get("end")
    ]
    lanes = pack_lanes(spans) if rows == "lanes" else thread_rows(spans)
    plot_height = min(_ROW_INCHES * max(len(lanes), 1), _PLOT_INCHES)
    figure = Figure(figsize=(10, _MARGIN_INCHES + plot_height))
    ax = figure.add_subplot()
    row_points = plot_height * 72 / max(len(lanes), 1)
    _draw_bars(trace, ax, lanes, labels=row_points >= 12)
    step = max(1, math.ceil(_LABEL_POINTS / row_points))  # tick labels that do not overlap
    ticks = range(0, len(lanes), step)
    ax.set_yticks(ticks, labels=[_plain(lanes[i].label) for i in ticks], fontsize=8)
    ax.set_ylim(len(lanes) - 0.5, -0.5)  # the first row on top
    ax.set_ylabel("threads" if rows == "threads" else "lanes", fontsize=8)
    ax.set_xlabel("seconds since the first op started")
    ax.grid(axis="x", alpha=0.3)
    threads = len({span.thread for span in spans})
    speed = f" | speedup {trace.speedup:.1f}x" if trace.speedup is not None else ""
    packed = f" in {len(lanes)} lanes" if rows == "lanes" and len(lanes) < threads else ""
    _title(
        figure,
        f"{len(spans)} op{'s' if len(spans) != 1 else ''} on {threads} "
        f"thread{'s' if threads != 1 else ''}{packed} | wall {duration_text(trace.wall_seconds)}"
        f"{speed}",
    )
    _legend(trace, ax, failed=any(nodes[s.node]["status"] == "failed" for s in spans))
    figure.tight_layout()
    return figure


def _draw_bars(trace: Trace, ax: Any, lanes: list[Lane], labels: bool) -> None:
    """A bar per op on its lane; its name on it when the bar is long and tall enough."""
    nodes = trace.graph.nodes
    spans = [span for lane in lanes for span in lane.spans]
    origin = min((span.start for span in spans), default=0.0)
    extent = max((span.end - origin for span in spans), default=0.0) or 1.0
    group = {op: index for index, members in enumerate(trace.parallel_groups) for op in members}
    critical = set(trace.critical_path)
    colors = _palette()
    for row, lane in enumerate(lanes):
        for span in lane.spans:
            start, end = span.start - origin, span.end - origin
            failed = nodes[span.node]["status"] == "failed"
            ax.barh(
                row,
                max(end - start, extent / 2000),
                left=start,
                height=0.7,
                color=colors[group.get(span.node, 0) % len(colors)],
                edgecolor=_CRITICAL if span.node in critical else (_FAILED if failed else "none"),
                linewidth=2.0 if span.node in critical or failed else 0,
                hatch="///" if failed else None,
            )
            if labels and end - start > extent / 12:
                ax.text(
                    start + (end - start) / 2,
                    row,
                    _plain(nodes[span.node]["name"]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    clip_on=True,
                )


def _legend(trace: Trace, ax: Any, failed: bool) -> None:
    """Parallel groups' colours, the critical path's outline, failed ops' hatching."""
    from matplotlib.patches import Patch

    colors = _palette()
    handles = [
        Patch(facecolor=colors[i % len(colors)], label=f"parallel group {i + 1}")
        for i in range(min(len(trace.parallel_groups), 6))
    ]
    handles.append(
        Patch(facecolor="white", edgecolor=_CRITICAL, linewidth=2, label="critical path")
    )
    if failed:
        handles.append(Patch(facecolor="white", edgecolor=_FAILED, hatch="///", label="failed"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))


def _title(figure: Figure, text: str, fontsize: float = 9) -> None:
    """``text`` as the figure's title, wrapped to its width (at most 3 lines, then ...).

    Lines break between `` | ``-separated parts where they can, else between words.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(size=fontsize)
    room = figure.get_figwidth() * 72 * 0.94  # points, a margin on either side

    def fits(line: str) -> bool:
        width, _, _ = text_to_path.get_text_width_height_descent(line, font, ismath=False)
        return bool(width <= room)

    lines: list[str] = []
    for part in label_text(text).split(" | "):
        if lines and fits(f"{lines[-1]} | {part}"):
            lines[-1] = f"{lines[-1]} | {part}"
        elif fits(part):
            lines.append(part)
        else:
            lines += _wrap(part, fits)
    if len(lines) > _TITLE_LINES:
        last = lines[_TITLE_LINES - 1]
        last = last[: _longest(last, lambda head: fits(f"{head} ..."))].rstrip()
        lines = [*lines[: _TITLE_LINES - 1], f"{last} ..."]
    figure.suptitle(
        "\n".join(line.replace("$", r"\$") for line in lines),
        fontsize=fontsize,
        y=1 - 0.1 / figure.get_figheight(),  # 0.1 in from the top, however tall the figure
        va="top",
    )


def _wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    """``text`` in lines that each fit: whole words, a word too long cut where it must."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
            continue
        while word and not fits(word):
            cut = max(1, _longest(word, fits))
            lines.append(word[:cut])
            word = word[cut:]
        if word:
            lines.append(word)
    return lines


def _longest(text: str, fits: Callable[[str], bool]) -> int:
    """The length of the longest start of ``text`` that fits (a binary search)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(text[:middle]) else (low, middle - 1)
    return low


def _palette() -> list[Any]:
    from matplotlib import colormaps

    return list(getattr(colormaps["tab20"], "colors", ["#1f77b4", "#aec7e8", "#ff7f0e"]))
