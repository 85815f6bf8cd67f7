"""``xcs.map`` and ``xcs.vmap``: items at the same time, each item traced and exact.

Each item's result (or exception) is what plain Python's ``fn(item)`` gives; calls are
the same multiset when nothing fails; the first failing item in item order raises;
items overlap; inside ``@jit`` the map is one op of the graph, its items' graphs on it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from ember import xcs
from tests.helpers import LOG, logged

DELAY = 0.05


@logged("ask")
def ask(prompt: str, delay: float = DELAY) -> str:
    time.sleep(delay)
    if "boom" in prompt:
        raise ValueError(f"refused: {prompt}")
    return f"<{prompt}>" + (" ok" if len(prompt) % 2 else " no")


def per_question(q: str) -> str:
    """Draft, verify, and revise only if the verdict says so: branches on each answer."""
    draft = ask(f"draft {q}")
    verdict = ask(f"verify {draft}")
    if verdict.endswith("ok"):
        return ask(f"revise {draft}")
    return draft.upper()


def _plain(fn: Any, items: list[Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for item in items:
        try:
            out.append(("value", fn(item)))
        except Exception as exc:
            out.append(("raised", (type(exc), str(exc))))
    return out


def test_items_equal_plain_python_and_overlap() -> None:
    questions = [f"q{i}" * (i + 1) for i in range(8)]
    LOG.clear()
    plain = [per_question(q) for q in questions]
    plain_calls = LOG.calls()
    assert {p.endswith("ok") or p.isupper() for p in plain} == {True}

    xcs.trace(per_question, "warm")  # the rewrite (of this pytest-rewritten module) once
    LOG.clear()
    start = time.perf_counter()
    mapped = xcs.map(per_question, questions)
    wall = time.perf_counter() - start
    assert mapped == plain
    assert LOG.calls() == plain_calls  # every call, exactly as often
    assert LOG.max_overlap() == len(questions)
    assert wall < LOG.busy_seconds()  # 2-3 calls per item, items at once (generous)


def test_results_keep_item_order_when_items_finish_out_of_order() -> None:
    def slow_first(i: int) -> int:
        ask(f"item {i}", delay=0.02 * (5 - i))
        return i

    assert xcs.map(slow_first, range(5)) == [0, 1, 2, 3, 4]


def test_the_first_failing_item_in_item_order_raises_with_a_note() -> None:
    def item(i: int) -> str:
        # Item 1 fails late, item 3 fails at once: item 1's exception is the answer.
        return ask(f"boom {i}" if i in (1, 3) else f"fine {i}", delay=0.15 if i == 1 else 0.01)

    with pytest.raises(ValueError, match="refused: boom 1") as caught:
        xcs.map(item, range(5))
    note = f"[ember.xcs] raised by item 1 of 5 in xcs.map[{item.__qualname__}]: 1"
    assert note in caught.value.__notes__
    with pytest.raises(ValueError, match="refused: boom 1"):
        [item(i) for i in range(5)]  # plain Python: the same exception


def test_items_after_a_failure_start_nothing_more() -> None:
    def chain(i: int) -> str:
        if i == 0:
            return ask("boom now", delay=0.05)
        text = f"start {i}"
        for step in range(6):
            text = ask(f"{text}/{step}", delay=0.05)  # each step needs the one before
        return text

    LOG.clear()
    with pytest.raises(ValueError, match="boom now"):
        xcs.map(chain, range(3))
    time.sleep(0.15)  # anything still running has finished
    later = [name for name in LOG.calls().elements() if "start" in name[1]]
    assert len(later) < 2 * 6, "items after the failure ran their whole chains"


def test_return_exceptions_puts_exceptions_in_place() -> None:
    items = ["a", "boom b", "c", "boom d"]
    results = xcs.map(per_question, items, return_exceptions=True)
    plain = _plain(per_question, items)
    for got, (how, expected) in zip(results, plain, strict=True):
        if how == "value":
            assert got == expected
        else:
            assert (type(got), str(got)) == expected


def test_inside_jit_map_is_one_op_in_place_with_the_items_graphs() -> None:
    def pipeline(questions: list[str]) -> tuple[str, list[str]]:
        intro = ask("intro", delay=0.05)
        answers = xcs.map(per_question, questions)
        return intro, answers

    questions = ["x", "yy", "zzz"]
    plain = pipeline(questions)
    trace = xcs.trace(pipeline, questions)
    assert trace.result == plain
    maps = [n for n, d in trace.graph.nodes(data=True) if d["name"] == "xcs.map[per_question]"]
    assert len(maps) == 1
    node = trace.graph.nodes[maps[0]]
    assert node["kind"] == "op" and node["immediate"]  # in place: it runs the caller's code
    items = node["items"]
    assert len(items) == 3
    for graph in items:
        ops = [d["name"] for _, d in graph.nodes(data=True) if d["kind"] == "op"]
        assert ops[:2] == ["ask", "ask"]
    assert xcs.jit(pipeline)(questions) == plain


def test_inside_jit_the_items_side_effects_keep_their_place() -> None:
    def side(questions: list[str]) -> tuple[list[str], int, list[str]]:
        seen: list[str] = []

        def per(q: str) -> str:
            seen.append(q)
            return ask(q)

        before = ask("before")
        answers = xcs.map(per, questions)
        return answers, len(seen), [before]

    assert xcs.jit(side)(["a", "b"]) == side(["a", "b"])


def test_a_jitted_function_brings_its_options() -> None:
    slow = xcs.jit(per_question, timeout=0.01)
    with pytest.raises(xcs.OpTimeoutError):
        xcs.map(slow, ["a", "b"])


def test_items_are_consumed_once_and_empty_is_empty() -> None:
    assert xcs.map(per_question, []) == []
    assert xcs.map(str.upper, (w for w in ["a", "b"])) == ["A", "B"]


def test_max_workers_bounds_the_items_at_once() -> None:
    LOG.clear()
    xcs.map(lambda i: ask(f"n{i}"), range(6), max_workers=2)
    assert LOG.max_overlap() == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"fn": 3}, TypeError, "expects a function"),
        ({"max_workers": 0}, ValueError, "positive int"),
        ({"return_exceptions": "yes"}, TypeError, "True or False"),
    ],
)
def test_bad_arguments_say_what_to_pass(kwargs: dict[str, Any], error: type, words: str) -> None:
    fn = kwargs.pop("fn", per_question)
    with pytest.raises(error, match=words):
        xcs.map(fn, ["a"], **kwargs)


def test_vmap_batches_lists_dicts_and_broadcasts() -> None:
    def both(x: str, suffix: str = "") -> dict[str, str]:
        return {"answer": ask(x + suffix), "length": str(len(x))}

    batched = xcs.vmap(both)
    assert batched(["a", "bb"], suffix=["!", "?"]) == {
        "answer": [both("a", "!")["answer"], both("bb", "?")["answer"]],
        "length": ["1", "2"],
    }
    assert xcs.vmap(ask, in_axes=(0, None))(["a", "b"], 0.0) == [ask("a", 0.0), ask("b", 0.0)]
    assert xcs.vmap(lambda inputs: ask(inputs["q"] + inputs["tag"]))(
        {"q": ["x", "y"], "tag": "#"}
    ) == [ask("x#"), ask("y#")]
    LOG.clear()
    xcs.vmap(per_question)([f"v{i}" for i in range(4)])
    assert LOG.max_overlap() == 4


def test_vmap_refuses_what_it_cannot_batch() -> None:
    with pytest.raises(ValueError, match="one length"):
        xcs.vmap(ask)(["a", "b"], [0.0])
    with pytest.raises(ValueError, match="in_axes must be 0, None"):
        xcs.vmap(ask, in_axes=1)
    with pytest.raises(ValueError, match=r"one \(0 or None\) per argument"):
        xcs.vmap(ask, in_axes=(0,))(["a"], [0.0])


def test_earlier_embers_imports_still_work() -> None:
    code = (
        "from ember.api import models, operators, xcs\n"
        "from ember.api.xcs import jit, vmap\n"
        "import ember, ember.xcs\n"
        "assert xcs is ember.xcs and vmap is ember.xcs.vmap\n"
        "print(callable(models), operators.Operator.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True Operator"


def test_the_drawing_shows_one_group_per_item_and_folds_many() -> None:
    from ember.xcs._viz.dot import to_dot
    from ember.xcs._viz.view import ITEMS_LIMIT, build_view

    def pipeline(questions: list[str]) -> list[str]:
        return xcs.map(per_question, questions)

    few = xcs.trace(pipeline, ["a", "bb", "ccc"])
    view = build_view(few)
    assert [g.title for g in view.groups] == ["item 0", "item 1", "item 2"]
    for group, question in zip(view.groups, ["a", "bb", "ccc"], strict=True):
        calls = 3 if per_question(question).endswith("ok") else 2
        assert [b.title for b in group.boxes] == ["ask"] * calls
        assert len(group.edges) >= calls - 1  # each call needs the one before
    dot = to_dot(view)
    assert dot.count("subgraph cluster_") == 3 and 'label="item 1"' in dot
    mermaid = few.to_mermaid()
    assert mermaid.count("subgraph ") == 3 and '["item 2"]' in mermaid

    many = xcs.trace(pipeline, [f"q{i}" for i in range(ITEMS_LIMIT + 5)])
    groups = build_view(many).groups
    assert len(groups) == ITEMS_LIMIT + 1
    assert [len(g.boxes) for g in groups] == [1] * (ITEMS_LIMIT + 1)  # one box per item
    assert groups[0].boxes[0].details[0] in ("2 ops", "3 ops")
    assert groups[-1].boxes[0].title == "... 5 more items"


def test_vmap_inside_jit_runs_in_place_like_map() -> None:
    batched = xcs.vmap(per_question)

    def pipeline(questions: list[str]) -> tuple[Any, str]:
        out = batched(questions)
        tail = ask("tail", delay=0.05)
        return out, tail

    trace = xcs.trace(pipeline, ["a", "bb"])
    assert trace.result == pipeline(["a", "bb"])
    [node] = [d for _, d in trace.graph.nodes(data=True) if d["name"].startswith("xcs.map")]
    assert len(node["items"]) == 2


def test_inside_jit_a_jitted_item_function_keeps_its_options() -> None:
    slow = xcs.jit(per_question, timeout=0.01)

    def pipeline(questions: list[str]) -> list[str]:
        return xcs.map(slow, questions)

    with pytest.raises(xcs.OpTimeoutError):
        xcs.jit(pipeline)(["a", "b"])


def test_an_item_without_calls_is_drawn_too() -> None:
    from ember.xcs._viz.dot import to_dot
    from ember.xcs._viz.view import build_view

    def maybe_ask(q: str) -> str:
        return q if q.startswith("skip") else ask(q)

    def pipeline(questions: list[str]) -> list[str]:
        return xcs.map(maybe_ask, questions)

    view = build_view(xcs.trace(pipeline, ["a", "skip b"]))
    assert [b.title for g in view.groups for b in g.boxes] == ["ask", "no calls"]
    assert "cluster_" in to_dot(view)


def test_a_stopped_item_still_times_out_and_starts_nothing_more() -> None:
    slow = 0.6

    def item(i: int) -> str:
        if i == 0:
            return ask("boom", delay=0.01)
        first = ask(f"slow {i}", delay=slow)  # running when item 0 fails
        return ask(f"after {first}")  # never started: the map stopped this item

    LOG.clear()
    start = time.perf_counter()
    with pytest.raises(ValueError, match="boom"):
        xcs.map(xcs.jit(item, timeout=slow / 4), range(2))
    # The slow op timed out (at a quarter of its time): nobody waited for it to end.
    assert time.perf_counter() - start < 0.75 * slow
    time.sleep(slow + 0.1)
    assert not [c for c in LOG.calls() if "after" in c[1]]
