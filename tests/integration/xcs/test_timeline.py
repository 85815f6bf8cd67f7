"""The timeline and the Perfetto tracks of real runs, measured from rendered pictures.

Rows in natural order (``worker 2`` before ``worker 10``), the caller first; ops that
ran one after another on threads of their own packed into shared lanes; 64 ops at
once one screen tall, not 2,552 px; and titles, of the timeline and of the
matplotlib drawing, inside the picture (read from the PNG and SVG matplotlib
writes with its Agg renderer).
"""

from __future__ import annotations

import io
import itertools
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import pytest

from ember import xcs

matplotlib = pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")


@xcs.op
def nap(x: int) -> int:
    """A call waiting on the network, 50 ms."""
    time.sleep(0.05)
    return x


@xcs.op
def step(text: str, delay: float = 0.02) -> str:
    time.sleep(delay)
    return f"{text}."


def fan_out(n: int) -> list[int]:
    return [nap(i) for i in range(n)]


def chains(starts: list[str]) -> list[str]:
    return [step(step(step(step(s)))) for s in starts]  # 3 chains of 4 calls


class ThreadPerOp(Executor):
    """Runs every op on a new thread: each thread runs one op and is idle after it."""

    def __init__(self) -> None:
        self._numbers = itertools.count()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as error:  # the op's error goes to the future
                    future.set_exception(error)

        threading.Thread(target=run, name=f"op-thread-{next(self._numbers)}").start()
        return future


def png(figure: Any) -> Any:
    """The figure as matplotlib's Agg renderer writes it, read back as an image."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def svg_height_points(figure: Any) -> float:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    match = re.search(r'<svg[^>]*\sheight="([\d.]+)pt"', buffer.getvalue().decode())
    assert match
    return float(match.group(1))


def row_labels(figure: Any) -> list[str]:
    return [tick.get_text() for tick in figure.axes[0].get_yticklabels()]


@pytest.fixture(scope="module")
def wide() -> xcs.Trace:
    """64 ops at once: as many as the shared pool has workers."""
    return xcs.trace(fan_out, 64)


def test_rows_run_from_the_caller_to_worker_10_in_natural_order() -> None:
    trace = xcs.trace(fan_out, 12)  # 12 threads at once: at least two past worker 9
    labels = row_labels(trace.timeline(rows="threads"))
    numbers = [int(label.split()[-1]) for label in labels if label.startswith("worker ")]
    assert numbers == sorted(numbers) and max(numbers) >= 10
    assert labels[: labels.count("MainThread")] == ["MainThread"] * labels.count("MainThread")
    assert row_labels(trace.timeline()) == labels  # one op per thread: a lane each

    # Perfetto shows the same tracks in the same order: tids and sort indexes ascend.
    events = trace.to_chrome_trace()["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    order = {e["tid"]: e["args"]["sort_index"] for e in events if e["name"] == "thread_sort_index"}
    assert sorted(names, key=order.__getitem__) == sorted(names)
    assert [names[tid] for tid in sorted(names) if names[tid] != "caller"] == labels


def test_64_ops_at_once_make_a_timeline_one_screen_tall(wide: xcs.Trace) -> None:
    few = xcs.trace(fan_out, 8).timeline()
    short = png(few).height
    for rows in ("lanes", "threads"):
        figure = wide.timeline(rows=rows)
        assert len([p for p in figure.axes[0].patches if p.get_width() > 0]) == 64
        tall = png(figure).height
        # Was 2,552 px (0.38 in a row); now 64 rows share 6 in: at most 1.8x 8 rows.
        assert tall <= 1.8 * short, (rows, tall, short)
        assert svg_height_points(figure) <= 1.8 * svg_height_points(few)
        labels = row_labels(figure)
        assert 16 <= len(labels) < 64  # thinner rows: every other one labelled
        numbers = [int(label.split()[-1]) for label in labels if label.startswith("worker ")]
        assert numbers == sorted(numbers)


def test_threads_that_ran_one_op_each_share_lanes() -> None:
    trace = xcs.trace(xcs.jit(executor=ThreadPerOp())(chains), ["a", "b", "c"])
    threads = {a["thread"] for _, a in trace.graph.nodes(data=True) if a["kind"] == "op"}
    assert len(threads) > 3  # the calls of a chain ran on threads of their own
    by_thread = trace.timeline(rows="threads")
    assert len(row_labels(by_thread)) == len(threads)
    figure = trace.timeline()
    assert len(row_labels(figure)) == 3  # three chains: never more than 3 ops at once
    assert all("op-thread-" in label for label in row_labels(figure))
    bars = sorted(
        (round(p.get_y() + p.get_height() / 2), p.get_x(), p.get_x() + p.get_width())
        for p in figure.axes[0].patches
        if p.get_width() > 0
    )
    assert len(bars) == 12
    for (row, _, end), (next_row, start, _) in itertools.pairwise(bars):
        assert row != next_row or end <= start + 1e-9  # no two bars of a lane overlap
    assert png(figure).height < png(by_thread).height


def test_unknown_rows_say_what_to_choose(wide: xcs.Trace) -> None:
    with pytest.raises(ValueError, match="'lanes', 'threads'|lanes, threads"):
        wide.timeline(rows="thread")


def ink_at_the_edges(image: Any) -> list[str]:
    """Edges of the picture (2 px wide) holding anything darker than light grey."""
    width, height = image.size
    strips = {
        "left": (0, 0, 2, height),
        "right": (width - 2, 0, width, height),
        "top": (0, 0, width, 2),
    }
    return [side for side, box in strips.items() if image.crop(box).getextrema()[0] < 200]


def test_the_matplotlib_drawing_shows_its_whole_long_title() -> None:
    from ember.xcs._viz.plots import graph_figure
    from ember.xcs._viz.view import build_view

    def narrow(text: str) -> str:
        for _ in range(40):
            text = step(text, 0).strip()  # an op and its glue: past 150 nodes, glue folds
        return text

    view = build_view(xcs.trace(narrow, "a"))
    assert len(view.title) > 80  # "40 ops in 40 parallel groups | wall ... | 81 glue ..."
    figure = graph_figure(view)  # one box wide: 3.7 in
    image = png(figure)
    assert ink_at_the_edges(image) == []
    (title,) = [t for t in figure.texts if t.get_text()]
    box = title.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height
    assert title.get_text().replace("|", " ").split() == view.title.replace("|", " ").split()
    svg = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        figure.savefig(svg, format="svg")
    root = ET.fromstring(svg.getvalue())
    text = " ".join("".join(element.itertext()) for element in root.iter())
    assert view.title.replace("|", " ").split()[-3:] == text.split()[-3:]  # the end is there


def test_a_title_too_long_for_three_lines_ends_in_an_ellipsis_inside_the_figure() -> None:
    from matplotlib.figure import Figure

    from ember.xcs._viz.plots import _title

    figure = Figure(figsize=(3, 2))
    figure.add_subplot().plot([0, 1])
    words = " ".join(f"word{i}" for i in range(80))
    _title(figure, f"{words} | {'x' * 300}")
    figure.tight_layout()
    image = png(figure)
    (title,) = figure.texts
    lines = title.get_text().split("\n")
    assert len(lines) == 3 and lines[-1].endswith("...") and lines[0].startswith("word0 word1")
    box = title.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height
    assert ink_at_the_edges(image) == []


def test_the_matplotlib_drawing_of_a_wide_graph_fits_a_notebook_cell() -> None:
    from ember.xcs._viz.plots import graph_figure
    from ember.xcs._viz.view import build_view

    def eight_questions(texts: list[str]) -> list[str]:
        return [step(t, 0) for t in texts]  # 8 calls of a line stay 8 boxes (9 fold)

    view = build_view(xcs.trace(eight_questions, [f"q{i}" for i in range(8)]))
    assert sum(box.kind == "op" for box in view.boxes) == 8  # one row: 15.6 in unscaled
    figure = graph_figure(view)
    width, _ = figure.get_size_inches()
    assert width <= 9.0  # graphviz's cap: 648 pt
    image = png(figure)
    assert image.size[0] <= 9.0 * figure.dpi + 1
    assert ink_at_the_edges(image) == []
