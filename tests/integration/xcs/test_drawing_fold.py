"""What a drawing folds, and that it fits a notebook cell: widths measured from real SVG.

A fan-out over documents (a model call, then ``.text`` on each answer) must draw as one
box however many documents there are, with the glue inside the op's box; ``glue=True``
and ``fold=False`` show what was folded. Every graphviz drawing is at most
``MAX_WIDTH_INCHES`` wide, read from the ``width`` of the SVG graphviz writes. The
demo's graph shows no internal ids and no argument that reaches nothing, and a sync
says the user's line and what it waited for.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import pytest

from ember import models, xcs
from ember.xcs._viz.dot import MAX_WIDTH_INCHES
from ember.xcs._viz.view import COLLAPSE_AT, build_view
from tests.conftest import require_dot
from tests.helpers import upper
from tests.integration.xcs.test_drawing import mermaid_check

SVG = "{http://www.w3.org/2000/svg}"
MAX_WIDTH_PT = MAX_WIDTH_INCHES * 72

chat = models.instance("simulated/chat", latency=0.0)


def summarize(docs: list[str]) -> list[str]:
    out = []
    for doc in docs:
        answer = chat(f"Summarize: {doc}")
        out.append(answer.text)  # the shape: 2 nodes a document, 82 for 40
    return out


def summarize_and_strip(docs: list[str]) -> list[str]:
    return [chat(f"Summarize: {doc}").text.strip() for doc in docs]


def checked(question: str) -> str:
    drafts = [chat(f"{question} #{i}").text for i in range(4)]
    verdict = chat(f"Is any draft wrong? {drafts}").text
    if "yes" in verdict:
        drafts = [chat(f"Fix: {d}").text for d in drafts]
    return chat(f"Best of {drafts}").text


def per_doc(doc: str) -> str:
    summary = chat(f"Summarize: {doc}").text
    if len(summary) > 3:
        summary = chat(f"Shorten: {summary}").text
    return summary


def mapped(docs: list[str]) -> list[str]:
    return xcs.map(per_doc, docs)


def calls(n: int) -> list[str]:
    return [upper(f"q{i}") for i in range(n)]


def docs(n: int) -> list[str]:
    return [f"document {i}" for i in range(n)]


def svg_width(svg: str) -> float:
    """The drawing's width in points, as graphviz wrote it on the <svg> element."""
    width = ET.fromstring(svg).attrib["width"]
    assert width.endswith("pt"), width
    return float(width[:-2])


def svg_boxes(svg: str) -> list[str]:
    """The text of each node graphviz drew (one entry per box)."""
    root = ET.fromstring(svg)
    return [
        " ".join("".join(t.itertext()) for t in node.iter(f"{SVG}text"))
        for node in root.iter(f"{SVG}g")
        if node.attrib.get("class") == "node"
    ]


def box_kinds(trace: xcs.Trace, **options: Any) -> Counter[str]:
    return Counter(box.kind for box in build_view(trace, **options).boxes)


@pytest.fixture(scope="module")
def fan_outs() -> dict[int, xcs.Trace]:
    return {n: xcs.trace(summarize, docs(n)) for n in (40, 70, 500)}


# --- widths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [40, 70, 500])
def test_a_fan_out_draws_as_one_box_within_a_cell(fan_outs: dict[int, xcs.Trace], n: int) -> None:
    require_dot()
    trace = fan_outs[n]
    assert trace.graph.number_of_nodes() == 1 + 2 * n + 1  # the argument, 2 per doc, exit
    svg = trace.draw().data
    assert svg_width(svg) <= MAX_WIDTH_PT  # was 3,070 pt for 40 docs, 5,380 pt for 70
    [box] = svg_boxes(svg)  # was: one op box and a glue box per document beside it
    assert f"simulated/chat x{n}" in box and "then .text" in box


@pytest.mark.parametrize(
    "options", [{"glue": True}, {"fold": False}, {"glue": True, "fold": False}]
)
def test_every_option_stays_within_a_cell(
    fan_outs: dict[int, xcs.Trace], options: dict[str, bool]
) -> None:
    require_dot()
    svg = fan_outs[70].draw(**options).data
    assert svg_width(svg) <= MAX_WIDTH_PT  # 5,380 pt for the glue of 70 docs before
    assert len(svg_boxes(svg)) == sum(box_kinds(fan_outs[70], **options).values())


def test_the_items_of_a_map_go_in_rows() -> None:
    require_dot()
    trace = xcs.trace(mapped, docs(45))
    source = trace.draw(format="dot").data
    assert source.count("subgraph cluster_") == 41  # 40 items and "5 more"
    assert source.count("[style=invis]") == 41 - 8  # all but the first row hang below
    svg = trace.draw().data
    assert svg_width(svg) <= MAX_WIDTH_PT
    assert svg_width(svg) > 0.8 * MAX_WIDTH_PT * 8 / 41 * 4  # rows, not one squeezed row


# --- glue ---------------------------------------------------------------------------------------


def test_glue_on_one_answer_belongs_to_its_op_by_default() -> None:
    trace = xcs.trace(summarize_and_strip, docs(40))
    assert box_kinds(trace) == {"ops": 1}
    [box] = build_view(trace).boxes
    assert box.details[-1] == "then .text .strip()"
    assert box_kinds(trace, glue=True) == {"ops": 1, "glue": 3, "sync": 1}
    assert box_kinds(trace, glue=True, fold=False) == {"op": 40, "glue": 120, "sync": 1}
    titles = [box.title for box in build_view(trace, glue=True).boxes]
    assert titles == [
        "simulated/chat x40",
        ".text x40",
        ".strip x40",
        ".strip() x40",
        "end of the call",
    ]


def test_glue_joining_answers_folds_into_the_edges() -> None:
    trace = xcs.trace(checked, "why?")
    view = build_view(trace)
    assert Counter(box.kind for box in view.boxes) == {"op": 6, "sync": 1}
    [judge] = [box for box in view.boxes if box.rank == 1]  # the call after the drafts
    into_judge = [s for s, t, _ in view.edges if t == judge.key]
    assert len(into_judge) == 4  # the f-string of the four drafts is an edge from each
    assert judge.details[-1] == "then .text in"


def test_mermaid_and_dot_draw_the_same_boxes(fan_outs: dict[int, xcs.Trace]) -> None:
    for options in ({}, {"glue": True}, {"glue": True, "fold": False}):
        view = build_view(fan_outs[40], **options)
        keys = {box.key for box in view.boxes}
        source = fan_outs[40].draw(format="dot", **options).data
        assert set(re.findall(r"^  (\w+) \[shape=", source, re.MULTILINE)) == keys
        mermaid = fan_outs[40].to_mermaid(**options)
        assert set(re.findall(r"^  (\w+)[\[\(\{]", mermaid, re.MULTILINE)) == keys
    assert mermaid_check(fan_outs[40].to_mermaid(glue=True))["ok"]


# --- folding repeated calls ---------------------------------------------------------------------


def test_repeated_calls_fold_in_small_traces_too() -> None:
    few, many = xcs.trace(calls, COLLAPSE_AT), xcs.trace(calls, COLLAPSE_AT + 1)
    assert many.graph.number_of_nodes() < 150
    assert box_kinds(few) == {"op": COLLAPSE_AT}
    assert [box.title for box in build_view(many).boxes] == [f"upper x{COLLAPSE_AT + 1}"]
    assert box_kinds(many, fold=False) == {"op": COLLAPSE_AT + 1}


def test_calls_from_different_lines_fold_apart() -> None:
    def two_lines(n: int) -> list[str]:
        first = [upper(f"a{i}") for i in range(n)]
        second = [upper(f"b{i}") for i in range(n)]
        return first + second

    view = build_view(xcs.trace(two_lines, COLLAPSE_AT + 1))
    assert len({box.details[0] for box in view.boxes}) == 2  # "from <file>:<line>" each


def test_ops_a_cache_answered_say_so_in_their_boxes() -> None:
    chat = models.instance("simulated/chat")

    def asks(n: int) -> list[str]:
        return [chat(f"q{i % 3}").text for i in range(n)]

    with models.cache(memory=True):
        few = build_view(xcs.trace(asks, 3))  # 3 sent
        again = build_view(xcs.trace(asks, 3))  # 3 answered from the cache
        many = build_view(xcs.trace(asks, COLLAPSE_AT + 3))  # all from the cache but 0
    assert [b.details for b in few.boxes if "cached" in b.details] == []
    assert all("cached" in b.details for b in again.boxes if b.kind == "op")
    (folded,) = [b for b in many.boxes if b.kind == "ops"]
    assert f"{COLLAPSE_AT + 3} cached" in folded.details
    with models.cache(memory=True):
        chat("q0")
        assert "\\ncached\\n" in xcs.trace(asks, 1).draw(format="dot").data


# --- what a user recognizes ---------------------------------------------------------------------


def test_a_sync_says_the_line_and_what_it_waited_for() -> None:
    trace = xcs.trace(checked, "why?")
    view = build_view(trace)
    [sync] = [box for box in view.boxes if box.kind == "sync"]
    assert sync.title == 'waits: if "yes" in verdict:'
    assert re.fullmatch(r"test_drawing_fold\.py:\d+", sync.details[0])
    assert sync.details[1] == "for a branch on a pending answer"
    # the critical path runs through it: the verdict's call, the wait, the last call
    assert [kind for s, t, kind in view.edges if sync.key in (s, t)] == ["critical"] * 2
    assert mermaid_check(trace.to_mermaid())["ok"]
    for options in ({}, {"glue": True, "fold": False}):
        text = trace.draw(format="dot", **options).data + trace.to_mermaid(**options)
        assert "demand" not in text and not re.search(r"%\d|#37;\d", text)


def test_the_demo_graph_has_no_internal_ids_or_dangling_arguments() -> None:
    from ember import _demo

    pipeline, _ = _demo.build(8, 0.0, None, None)
    trace = xcs.trace(_demo.answer_all, pipeline, _demo.QUESTIONS[:1])
    inputs = [n for n, kind in trace.graph.nodes(data="kind") if kind == "input"]
    assert inputs and all(trace.graph.out_degree(n) == 0 for n in inputs)  # reach nothing
    for options in ({}, {"glue": True}, {"glue": True, "fold": False}):
        view = build_view(trace, **options)
        assert not [box for box in view.boxes if box.kind == "input"]
        text = trace.draw(format="dot", **options).data + trace.to_mermaid(**options)
        assert not re.search(r"%\d|#37;\d", text) and "demand" not in text
    assert box_kinds(trace) == {"op": 10}  # 8 drafts, the judge, its parse


def test_an_argument_that_reaches_an_op_is_drawn_as_an_argument() -> None:
    def ask_twice(question: str) -> list[str]:
        return [upper(question), upper(question)]

    view = build_view(xcs.trace(ask_twice, "why?"))
    [argument] = [box for box in view.boxes if box.kind == "input"]
    assert argument.label == ["question", "argument"]
    assert sum(1 for s, _, _ in view.edges if s == argument.key) == 2
