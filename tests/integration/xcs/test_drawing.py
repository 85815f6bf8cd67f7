"""Drawing traces: graphviz and matplotlib pictures, mermaid, timeline, Perfetto JSON.

Outputs are checked by real parsers: SVG as XML, mermaid with mermaid's own parser
(``tests/tools/mermaid``, run by Node.js), Trace Event JSON against the format's
rules. The matplotlib path runs with graphviz's ``dot`` hidden from ``PATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ember import xcs
from tests.conftest import require, require_dot
from tests.helpers import OpError, echo, fail, slow_echo, upper

MERMAID = Path(__file__).resolve().parents[2] / "tools" / "mermaid"

# --- traces to draw --------------------------------------------------------------------------

TRICKY = 'say "hi"\n<b>&amp;</b> #1 `x` \\N {a}'


@xcs.op(name=TRICKY)
def tricky(x: Any) -> Any:
    return x


def ensemble(question: str) -> Any:
    drafts = [slow_echo(f"{question} #{i}", 0.02) for i in range(3)]
    best = max(drafts, key=len)
    try:
        fail("the judge is out")
    except OpError:
        pass
    return upper(f"Refine: {best}"), tricky(drafts[0])


def big(n: int) -> Any:
    answers = [echo(i).strip().upper() + "!" for i in range(n)]  # 1 op and 3 glue each
    return [len(a) for a in answers]


@pytest.fixture(scope="module")
def trace() -> xcs.Trace:
    return xcs.trace(ensemble, "why?")


@pytest.fixture(scope="module")
def big_trace() -> xcs.Trace:
    traced = xcs.trace(big, 1250)
    assert traced.graph.number_of_nodes() >= 5000
    return traced


def op_names(trace: xcs.Trace) -> set[str]:
    return {a["name"] for _, a in trace.graph.nodes(data=True) if a["kind"] == "op"}


def svg_text(svg: str) -> str:
    """All text of an SVG document, parsed as XML."""
    root = ET.fromstring(svg)
    return " ".join("".join(element.itertext()) for element in root.iter())


@pytest.fixture
def no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PATH`` without any folder that holds graphviz's ``dot``."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    kept = [f for f in folders if not (Path(f) / "dot").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))
    assert shutil.which("dot") is None


def mermaid_check(text: str) -> dict[str, Any]:
    """Parse mermaid text with mermaid's own parser."""
    require(shutil.which("node") is not None, "Node.js", "apt install nodejs")
    require(
        (MERMAID / "node_modules" / "mermaid").is_dir(),
        "the mermaid parser",
        f"npm ci --prefix {MERMAID}",
    )
    done = subprocess.run(
        ["node", str(MERMAID / "check.mjs")],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- graphviz --------------------------------------------------------------------------------


def test_graphviz_svg_parses_and_names_every_op(trace: xcs.Trace) -> None:
    require_dot()
    drawing = trace.draw()
    assert drawing.renderer == "graphviz" and drawing.format == "svg"
    text = svg_text(drawing.data)
    for name in op_names(trace) - {TRICKY}:
        assert name in text
    assert "failed: OpError" in text
    assert drawing._repr_svg_() == drawing.data


def test_ops_are_ranked_by_parallel_group_and_failures_are_red(trace: xcs.Trace) -> None:
    source = trace.draw(format="dot").data
    for group in trace.parallel_groups:
        if len(group) > 1:
            assert f"{{ rank=same; {'; '.join(f'n{op}' for op in group)}; }}" in source
    failed = next(n for n, a in trace.graph.nodes(data=True) if a["status"] == "failed")
    line = next(line for line in source.splitlines() if line.strip().startswith(f"n{failed} "))
    assert 'fillcolor="#fecaca"' in line and "failed: OpError" in line


@pytest.mark.parametrize(
    ("name", "fmt", "magic"),
    [
        ("graph.svg", None, b"<?xml"),
        ("graph.png", None, b"\x89PNG"),
        ("graph.pdf", None, b"%PDF"),
        ("graph.dot", None, b"digraph trace {"),
        ("graph.picture", "png", b"\x89PNG"),
        ("graph.svg", "pdf", b"%PDF"),  # an explicit format wins over the suffix
    ],
)
def test_draw_writes_each_format(
    trace: xcs.Trace, tmp_path: Path, name: str, fmt: str | None, magic: bytes
) -> None:
    if not name.endswith(".dot") or fmt is not None:
        require_dot()
    path = tmp_path / name
    assert trace.draw(path, format=fmt) == path
    assert path.read_bytes().startswith(magic)
    assert not list(tmp_path.glob(".*partial"))


def test_bad_formats_and_unwritable_paths_are_clear(trace: xcs.Trace, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="suffix among svg, png, pdf, dot"):
        trace.draw(tmp_path / "graph.jpeg")
    with pytest.raises(ValueError, match="unknown drawing format 'gif'"):
        trace.draw(tmp_path / "graph.svg", format="gif")
    missing = tmp_path / "no" / "such" / "folder" / "graph.dot"
    with pytest.raises(FileNotFoundError, match="cannot write the drawing to .*graph.dot"):
        trace.draw(missing)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="Choose a path in an existing folder"):
        trace.draw(a_file / "graph.dot")


def test_labels_with_quotes_newlines_and_html_render_as_text(trace: xcs.Trace) -> None:
    require_dot()
    flat = " ".join(TRICKY.split("\n"))
    text = svg_text(trace.draw().data)
    assert flat in text  # one line, every character as written
    assert "<b>" not in trace.draw().data.replace("&lt;b&gt;", "")  # never markup
    assert mermaid_check(trace.to_mermaid())["ok"]


# --- matplotlib, without dot -----------------------------------------------------------------


@pytest.mark.usefixtures("no_dot")
def test_without_dot_matplotlib_draws_the_same_view(trace: xcs.Trace, tmp_path: Path) -> None:
    drawing = trace.draw()
    assert drawing.renderer == "matplotlib"
    text = svg_text(drawing.data)
    for name in op_names(trace) - {TRICKY}:
        assert name in text
    assert " ".join(TRICKY.split("\n")) in text
    assert trace.draw(tmp_path / "graph.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.usefixtures("no_dot")
def test_a_bare_install_says_how_to_get_drawings(
    trace: xcs.Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    fresh = xcs.trace(ensemble, "q")
    with pytest.raises(ImportError, match=r"pip install 'ember-xcs\[viz\]'"):
        fresh.draw()
    bundle = fresh._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/vnd.mermaid"}  # notebooks still show text


# --- big traces ----------------------------------------------------------------------------


def test_a_5000_node_trace_draws_in_seconds(big_trace: xcs.Trace, tmp_path: Path) -> None:
    view_start = time.perf_counter()
    source = big_trace.draw(format="dot").data
    assert "glue and sync nodes folded" in source and "echo x1250" in source
    assert time.perf_counter() - view_start < 5
    assert mermaid_check(big_trace.to_mermaid())["ok"]
    if shutil.which("dot"):
        start = time.perf_counter()
        big_trace.draw(tmp_path / "big.svg")
        assert time.perf_counter() - start < 10
    events = big_trace.to_chrome_trace()["traceEvents"]
    assert sum(1 for e in events if e["ph"] == "X") == 1250


@pytest.mark.usefixtures("no_dot")
def test_a_5000_node_trace_draws_in_seconds_with_matplotlib(big_trace: xcs.Trace) -> None:
    start = time.perf_counter()
    big_trace.draw(format="png")
    assert time.perf_counter() - start < 10


# --- mermaid ----------------------------------------------------------------------------


def test_mermaid_parses_and_names_every_op(trace: xcs.Trace) -> None:
    text = trace.to_mermaid()
    assert mermaid_check(text) == {"ok": True, "diagramType": "flowchart-v2"}
    for name in op_names(trace) - {TRICKY}:
        assert name in text
    assert "class n" in text and " failed" in text and " critical" in text


def test_the_mermaid_checker_rejects_broken_text() -> None:
    assert not mermaid_check('flowchart TD\n  n0["unclosed --> n1\n')["ok"]


# --- timeline and chrome trace ----------------------------------------------------------------


def test_timeline_has_a_bar_per_op_on_a_row_per_thread(trace: xcs.Trace) -> None:
    from ember.xcs._viz.rows import thread_label

    figure = trace.timeline(rows="threads")
    (axes,) = figure.axes
    ran = [a for _, a in trace.graph.nodes(data=True) if a["kind"] == "op" and a["end"]]
    bars = [p for p in axes.patches if p.get_width() > 0]
    assert len(bars) == len(ran)
    rows = {tick.get_text() for tick in axes.get_yticklabels()}
    assert rows == {thread_label(a["thread"]) for a in ran}
    outlined = [p for p in bars if p.get_linewidth() > 0]
    assert len(outlined) >= len(trace.critical_path)


def test_chrome_trace_follows_the_trace_event_format(trace: xcs.Trace, tmp_path: Path) -> None:
    from ember.xcs._viz.rows import thread_label

    path = tmp_path / "trace.json"
    document = trace.to_chrome_trace(path)
    assert json.loads(path.read_text()) == json.loads(json.dumps(document))
    events = document["traceEvents"]
    ops = {e["args"]["node"]: e for e in events if e["ph"] == "X"}
    ran = [n for n, a in trace.graph.nodes(data=True) if a["kind"] == "op" and a["end"]]
    assert sorted(ops) == sorted(ran)
    for event in events:
        assert event["ph"] in {"X", "i", "s", "f", "M"}
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if event["ph"] != "M":
            assert isinstance(event["ts"], float | int) and event["ts"] >= 0
        if event["ph"] == "X":
            assert event["dur"] >= 0 and event["name"] and event["cat"] == "op"
    flows = Counter(e["id"] for e in events if e["ph"] in "sf")
    assert flows and all(count == 2 for count in flows.values())  # every arrow has two ends
    by_node = {e["args"]["node"]: e for e in ops.values()}
    for source, target in trace.op_graph.edges:
        if source in by_node and target in by_node:
            start = next(e for e in events if e["ph"] == "s" and e["tid"] == by_node[source]["tid"])
            assert start["ts"] <= by_node[source]["ts"] + by_node[source]["dur"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names - {"caller"} == {thread_label(trace.graph.nodes[n]["thread"]) for n in ran}


# --- notebooks -------------------------------------------------------------------------------


def test_the_mime_bundle_holds_svg_mermaid_and_text(trace: xcs.Trace) -> None:
    bundle = trace._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml", "text/vnd.mermaid", "text/plain"}
    ET.fromstring(bundle["image/svg+xml"])
    assert bundle["text/plain"] == repr(trace)
    assert set(trace._repr_mimebundle_(include={"text/plain"})) == {"text/plain"}
    assert "image/svg+xml" not in trace._repr_mimebundle_(exclude={"image/svg+xml"})


def test_ops_library_code_ran_at_once_are_marked(tmp_path: Path) -> None:
    from ember.xcs._trace import RAN_AT_ONCE
    from ember.xcs._viz.view import COLLAPSE_AT, build_view

    def mixed(xs: list[str]) -> Any:
        return list(map(echo, xs)) + [upper(x) for x in xs]  # map's calls run at once

    small = xcs.trace(mixed, ["a", "b"])
    lines = [line for line in str(small).splitlines() if "op[" in line]
    assert [RAN_AT_ONCE in line for line in lines] == [True, True, False, False]
    boxes = [b for b in build_view(small).boxes if b.kind == "op"]
    assert [RAN_AT_ONCE in b.details for b in boxes] == [True, True, False, False]
    if shutil.which("dot") or os.environ.get("EMBER_XCS_CI"):
        require_dot()
        assert RAN_AT_ONCE in svg_text(small.draw().data)

    many = [str(i) for i in range(COLLAPSE_AT + 1)]
    events = small.to_chrome_trace()["traceEvents"]
    assert [e["args"]["ran_at_once"] for e in events if e["ph"] == "X"] == [
        True,
        True,
        False,
        False,
    ]

    collapsed = build_view(xcs.trace(lambda xs: list(map(echo, xs)), many))
    assert [b.details[-1] for b in collapsed.boxes if b.kind == "ops"] == [
        f"{len(many)} {RAN_AT_ONCE}"
    ]
