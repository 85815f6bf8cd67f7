"""A failed run can be seen: its trace rides on the exception, drawn like any trace.

Over real HTTP against the local server, 2 of 10 documents always get a 500. The
jitted summarize-all raises the original ``ProviderError`` (as plain Python does), and
``xcs.trace_of(error)`` -- also ``xcs.last_failed_trace()`` -- is the trace of the
call: the two documents' calls failed, the other eight done, the failed boxes red
and naming their prompts. Its note names the op, the shortened prompt and the line;
under ``xcs.map`` the item. Nested traced calls leave the outermost one's trace. A
call that succeeds builds no ``Trace`` at all.

Timing: each failing document's 500 carries a ``Retry-After`` (document 7 shorter than
document 3), so its call fails only after the eight others have answered, and
document 7's failure is handled before document 3's. Both are then recorded as
failures, whatever the load on the machine (a later failure would otherwise only be
dropped along with the call: see the engine's docstring).
"""

from __future__ import annotations

import pickle
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ember import xcs
from ember.models import ProviderError
from ember.models.binding import ModelBinding
from ember.models.providers import OpenAIProvider, RetryPolicy
from ember.models.registry import ModelRegistry
from ember.models.server import LocalLLMServer
from ember.xcs import _trace
from tests.conftest import require, require_dot

DOCS = [f"Document {i}: the quarterly report of branch {i} says sales grew." for i in range(10)]
FAILING = {3: 0.8, 7: 0.4}  # document -> Retry-After of its 500s (7 gives up first)
LATENCY = 0.05


def _line(mark: str) -> int:
    return next(i for i, text in enumerate(open(__file__), 1) if mark in text)


def _always_fail(server: LocalLLMServer) -> None:
    """From now on, every request about a failing document gets a 500."""
    server.reset()
    for doc, wait in FAILING.items():
        server.inject(500, 50, retry_after=wait, prompt=f"Document {doc}:")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer(latency=LATENCY) as running:
        yield running


@pytest.fixture(scope="module")
def chat(server: LocalLLMServer) -> ModelBinding:
    registry = ModelRegistry()
    retry = RetryPolicy(attempts=2, base=0.01, cap=0.01)
    provider = OpenAIProvider(base_url=server.openai_base_url, retry=retry, timeout=5)
    registry.register_provider("openai", provider)
    return registry.instance("openai/chat")


def summarize_all(chat: ModelBinding, docs: list[str]) -> list[str]:
    return [chat(f"Summarize: {doc}").text for doc in docs]  # MARK-summarize


class Failed:
    """The failing jitted call, made once for the module: what it raised and left."""

    def __init__(self, error: ProviderError, last: xcs.Trace | None) -> None:
        self.error = error
        self.trace = xcs.trace_of(error)
        self.last = last


@pytest.fixture(scope="module")
def failed(server: LocalLLMServer, chat: ModelBinding) -> Failed:
    _always_fail(server)
    with pytest.raises(ProviderError) as info:
        xcs.jit(summarize_all)(chat, DOCS)
    return Failed(info.value, xcs.last_failed_trace())


def _ops(trace: xcs.Trace) -> list[int]:
    return sorted(n for n, kind in trace.graph.nodes(data="kind") if kind == "op")


# --- the exception and its trace -------------------------------------------------------------


def test_the_call_raises_the_original_provider_error_with_its_trace(failed: Failed) -> None:
    assert type(failed.error) is ProviderError and failed.error.status == 500
    assert isinstance(failed.trace, xcs.Trace)
    assert failed.trace.error is failed.error and failed.trace.result is None
    ops = _ops(failed.trace)
    assert failed.trace.graph.nodes[ops[3]]["error"] is failed.error  # program order wins


def test_the_failed_calls_are_exactly_the_two_documents(failed: Failed) -> None:
    assert failed.trace is not None
    nodes = failed.trace.graph.nodes
    status = {doc: nodes[op]["status"] for doc, op in enumerate(_ops(failed.trace))}
    assert {doc for doc, s in status.items() if s == "failed"} == set(FAILING)
    assert {doc for doc, s in status.items() if s == "done"} == set(range(10)) - set(FAILING)
    for doc in FAILING:
        error = nodes[_ops(failed.trace)[doc]]["error"]
        assert isinstance(error, ProviderError) and error.status == 500


def test_last_failed_trace_is_the_same(failed: Failed) -> None:
    assert failed.last is failed.trace


def test_it_prints_the_failures_with_their_prompts(failed: Failed) -> None:
    text = str(failed.trace)
    failures = [line for line in text.splitlines() if "[failed: ProviderError]" in line]
    assert len(failures) == 2
    for line, doc in zip(failures, sorted(FAILING), strict=True):
        assert f"('Summarize: Document {doc}: the quarterly...)" in line
        assert f"test_failed_runs.py:{_line('MARK-summarize')}" in line
    assert "ProviderError" in repr(failed.trace)


def test_it_draws_failed_boxes_red_with_their_prompts(failed: Failed) -> None:
    require_dot()
    assert failed.trace is not None
    source = failed.trace.draw(format="dot").data
    for doc in FAILING:
        node = _ops(failed.trace)[doc]
        (line,) = [ln for ln in source.splitlines() if ln.strip().startswith(f"n{node} ")]
        assert 'fillcolor="#fecaca"' in line and "failed: ProviderError" in line
        assert f"Summarize: Document {doc}: the quarterly" in line
    assert "openai/chat x8" in source  # the eight answered calls share one box
    assert "raised ProviderError" in source  # the title says how the call ended
    svg = failed.trace.draw().data
    text = " ".join("".join(e.itertext()) for e in ET.fromstring(svg).iter())
    assert "Summarize: Document 3" in text and "Summarize: Document 7" in text


def test_the_note_names_the_op_the_prompt_and_the_line(failed: Failed) -> None:
    node = _ops(failed.trace)[3] if failed.trace else -1
    line = _line("MARK-summarize")
    expected = (
        f"[ember.xcs] raised by op 'openai/chat' (node %{node}) called at {__file__}:{line} "
        "with ('Summarize: Document 3: the quarterly...)"
    )
    assert failed.error.__notes__ == [expected]


def test_xcs_trace_of_the_failing_function_raises_with_the_trace(
    server: LocalLLMServer, chat: ModelBinding
) -> None:
    _always_fail(server)
    with pytest.raises(ProviderError) as info:
        xcs.trace(summarize_all, chat, DOCS)
    trace = xcs.trace_of(info.value)
    assert trace is not None and xcs.last_failed_trace() is trace
    nodes = trace.graph.nodes
    assert [d for d, op in enumerate(_ops(trace)) if nodes[op]["status"] == "failed"] == [3, 7]
    assert nodes[0]["kind"] == "input"  # the arguments, as in any trace


def test_values_and_exceptions_are_plain_pythons(
    server: LocalLLMServer, chat: ModelBinding
) -> None:
    _always_fail(server)
    with pytest.raises(ProviderError) as plain:
        summarize_all(chat, DOCS)
    _always_fail(server)
    with pytest.raises(ProviderError) as jitted:
        xcs.jit(summarize_all)(chat, DOCS)
    assert str(jitted.value) == str(plain.value) and jitted.value.args == plain.value.args
    assert xcs.trace_of(plain.value) is None  # no traced call: nothing attached
    server.reset()
    assert xcs.jit(summarize_all)(chat, DOCS[:4]) == summarize_all(chat, DOCS[:4])


# --- xcs.map ---------------------------------------------------------------------------------


def test_under_map_the_note_names_the_item_and_trace_of_works(
    server: LocalLLMServer, chat: ModelBinding
) -> None:
    def summarize(doc: str) -> str:
        return chat(f"Summarize: {doc}").text  # MARK-item

    server.reset()
    for doc in FAILING:
        server.inject(500, 50, prompt=f"Document {doc}:")
    with pytest.raises(ProviderError) as info:
        xcs.map(summarize, DOCS)
    op_note, item_note = info.value.__notes__
    assert op_note.endswith(
        f"called at {__file__}:{_line('MARK-item')} with ('Summarize: Document 3: the quarterly...)"
    )
    item = f"[ember.xcs] raised by item 3 of 10 in xcs.map[{summarize.__qualname__}]"
    assert item_note == f"{item}: 'Document 3: the quarterly report of ..."
    trace = xcs.trace_of(info.value)
    assert trace is not None and xcs.last_failed_trace() is trace  # the raised item's
    (op,) = _ops(trace)
    assert trace.graph.nodes[op]["status"] == "failed"
    assert "('Summarize: Document 3: the quarterly...)" in str(trace)


def test_map_with_return_exceptions_attaches_each_items_trace(
    server: LocalLLMServer, chat: ModelBinding
) -> None:
    server.reset()
    for doc in FAILING:
        server.inject(500, 50, prompt=f"Document {doc}:")
    before = xcs.last_failed_trace()
    results = xcs.map(lambda d: chat(f"Summarize: {d}").text, DOCS, return_exceptions=True)
    errors = {i: r for i, r in enumerate(results) if isinstance(r, BaseException)}
    assert set(errors) == set(FAILING)
    for doc, error in errors.items():
        trace = xcs.trace_of(error)
        assert trace is not None and f"Document {doc}:" in str(trace)
    assert xcs.last_failed_trace() is before  # nothing was raised to the caller


# --- nesting, interrupts, copies ---------------------------------------------------------------


@xcs.op
def ask(q: str) -> str:
    return q.upper()


@xcs.op
def refuse(q: str) -> str:
    raise ValueError(f"refused {q}")


@xcs.jit
def inner(q: str) -> str:
    return refuse(ask(q))


@xcs.op
def calls_a_jitted_function(q: str) -> str:
    return inner(q)  # an op's own traced call, on a worker thread


def test_a_nested_jitted_call_leaves_the_outer_trace() -> None:
    @xcs.jit
    def outer(q: str) -> list[str]:
        return [ask(q), inner(q + "!")]  # inner is inlined into outer's graph

    with pytest.raises(ValueError, match="refused Q!") as info:
        outer("q")
    trace = xcs.trace_of(info.value)
    assert trace is not None and xcs.last_failed_trace() is trace
    names = [trace.graph.nodes[n]["name"] for n in _ops(trace)]
    assert names == ["ask", "ask", "refuse"]  # outer's own op, then inner's two


def test_a_jitted_call_inside_an_op_leaves_the_outermost_trace() -> None:
    @xcs.jit
    def outer(q: str) -> list[str]:
        return [ask(q), calls_a_jitted_function(q)]

    with pytest.raises(ValueError, match="refused Q") as info:
        outer("q")
    trace = xcs.trace_of(info.value)
    assert trace is not None and xcs.last_failed_trace() is trace
    names = [trace.graph.nodes[n]["name"] for n in _ops(trace)]
    assert names == ["ask", "calls_a_jitted_function"]
    inner_note, outer_note = info.value.__notes__  # the call inside the op, then the op
    assert inner_note.startswith("[ember.xcs] raised by op 'refuse' (node %2)")
    assert inner_note.endswith(" with ('Q')")  # another op's result: shown as its value
    assert outer_note.startswith("[ember.xcs] raised by op 'calls_a_jitted_function' (node %2)")


def test_an_interrupt_leaves_the_trace_of_what_was_cancelled() -> None:
    @xcs.jit
    def interrupted(qs: list[str]) -> list[str]:
        answers = [ask(q) for q in qs]
        raise KeyboardInterrupt(len(answers))  # Ctrl-C while the calls are pending

    with pytest.raises(KeyboardInterrupt) as info:
        interrupted(["a", "b"])
    trace = xcs.trace_of(info.value)
    assert trace is not None and xcs.last_failed_trace() is trace
    assert [trace.graph.nodes[n]["status"] for n in _ops(trace)] == ["cancelled"] * 2


def test_a_successful_call_builds_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    init = _trace.Trace.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(_trace.Trace, "__init__", counting)
    fast = xcs.jit(lambda qs: [ask(q) for q in qs], cache=False)
    assert fast(["a", "b"]) == ["A", "B"] and fast(["c"]) == ["C"]
    assert xcs.map(ask, ["a", "b"]) == ["A", "B"]
    assert built == []
    with pytest.raises(ValueError):
        xcs.jit(lambda q: refuse(q))("x")
    assert built == [1]  # only the call that raised


def test_the_exception_pickles_and_copies_without_its_trace() -> None:
    with pytest.raises(ValueError) as info:
        inner("q")
    assert xcs.trace_of(info.value) is not None
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ValueError and copy.args == info.value.args
    assert xcs.trace_of(copy) is None
    assert xcs.trace_of(ValueError("never raised")) is None


def test_no_secret_reaches_the_note_the_printout_or_the_drawing() -> None:
    require_dot()
    key = "sk-proj-" + "a1b2c3d4" * 6

    @xcs.jit
    def leaky(q: str) -> str:
        return refuse(f"{q} with key {key}")

    with pytest.raises(ValueError) as info:
        leaky("ask")
    trace = xcs.trace_of(info.value)
    assert trace is not None
    shown = [*info.value.__notes__, str(trace), trace.to_mermaid(), trace.draw(format="dot").data]
    for text in shown:
        assert key not in text and "a1b2c3d4a1b2" not in text
    assert "sk-<redacted>" in info.value.__notes__[0]


# --- a notebook: the cell fails, the next one draws it -------------------------------------------

ROOT = Path(__file__).resolve().parents[3]

FAILING_CELL = """\
import sys
if {root!r} not in sys.path:
    sys.path.insert(0, {root!r})
from ember import xcs

@xcs.op
def summarize(doc):
    if "draft" in doc:
        raise ValueError("cannot summarize a draft")
    return doc[:10]

@xcs.jit
def summarize_all(docs):
    return [summarize(d) for d in docs]

summarize_all(["report a", "draft b", "report c"])
"""


def test_in_a_notebook_the_next_cell_draws_the_failed_run(tmp_path: Path) -> None:
    try:
        import nbclient
        import nbformat
    except ImportError:  # pragma: no cover - the dev extra installs both
        nbclient = nbformat = None
    require(nbclient is not None, "nbclient", "pip install -e '.[dev]'")
    require_dot()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(FAILING_CELL.format(root=str(ROOT))),
        nbformat.v4.new_code_cell("xcs.last_failed_trace()"),
    ]
    nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    (error,) = notebook.cells[0].outputs
    assert error["output_type"] == "error" and error["ename"] == "ValueError"
    (shown,) = [o for o in notebook.cells[1].outputs if o["output_type"] == "execute_result"]
    svg = shown["data"]["image/svg+xml"]
    assert "#fecaca" in svg and "draft b" in svg and "failed: ValueError" in svg
