"""``@xcs.op`` and the op/composite markers."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from ember import xcs
from ember.xcs import OpSpec, call_op
from ember.xcs._internal import usercode
from ember.xcs._internal.protocol import Op, is_composite, is_op
from tests.helpers import echo


def plain(x: int, y: int = 2) -> int:
    """Adds."""
    return x + y


def test_forms_and_names() -> None:
    a = xcs.op(plain)
    b = xcs.op()(plain)
    c = xcs.op(name="adder", max_concurrency=3)(plain)
    specs = [(op.__xcs_op__.name, op.__xcs_op__.max_concurrency) for op in (a, b, c)]
    assert specs == [("plain", None), ("plain", None), ("adder", 3)]
    assert a.__name__ == "plain" and a.__doc__ == "Adds." and a.__wrapped__ is plain
    assert xcs.op(a) is a  # idempotent
    assert xcs.op(name="renamed")(a).__xcs_op__.name == "renamed"


def test_outside_a_trace_an_op_is_an_ordinary_call() -> None:
    assert xcs.op(plain)(1, y=5) == 6
    assert type(echo("x")) is str


def test_markers() -> None:
    assert is_op(xcs.op(plain)) and not is_op(plain)
    assert is_composite(xcs.jit(plain)) and not is_composite(xcs.op(plain))


def test_call_op_is_the_protocol_for_custom_op_types() -> None:
    class Model:
        __xcs_op__ = OpSpec("model")

        def __call__(self, prompt: str) -> Any:
            return call_op(self.__xcs_op__, str.upper, (prompt,), {})

    model = Model()

    @xcs.jit
    def program() -> Any:
        return [model(p) for p in "ab"]

    trace = xcs.trace(program)
    assert trace.result == ["A", "B"]
    assert trace.parallel_groups == [
        [n for n, a in trace.graph.nodes(data=True) if a["kind"] == "op"]
    ]


def test_methods_bind() -> None:
    class Agent:
        def __init__(self, tag: str) -> None:
            self.tag = tag

        @xcs.op
        def act(self, x: str) -> str:
            return f"{self.tag}:{x}"

    @xcs.jit
    def program(agent: Agent) -> Any:
        return [agent.act(x) for x in "ab"]

    assert program(Agent("t")) == ["t:a", "t:b"]
    assert isinstance(Agent.__dict__["act"], Op)


def test_bad_input_is_rejected_clearly() -> None:
    with pytest.raises(TypeError, match="callable"):
        xcs.op(42)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_concurrency"):
        xcs.op(max_concurrency=0)(plain)

    async def agen() -> Any:
        yield 1

    def generator() -> Any:
        yield 1

    with pytest.raises(xcs.XCSError, match="async generator"):
        xcs.op(agen)
    with pytest.raises(xcs.XCSError, match="generator"):
        xcs.op(generator)


def test_module_level_ops_pickle_by_reference() -> None:
    assert pickle.loads(pickle.dumps(echo)) is echo


LIBRARY_COMPOSITE = """
class Fanout:
    def __init__(self, ask):
        self.ask = ask

    def __call__(self, prompts):
        return [self.ask(p) for p in prompts]

    def each(self, prompts):
        return self.gather(prompts)

    def gather(self, prompts):
        return [self.ask(p) for p in prompts]
"""


@pytest.mark.parametrize("marked", [True, False])
def test_a_composite_is_traced_through_even_in_library_code(
    marked: bool, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import sys

    name = f"some_library_{marked}"
    (tmp_path / f"{name}.py").write_text(LIBRARY_COMPOSITE)
    monkeypatch.syspath_prepend(str(tmp_path))
    library = importlib.import_module(name)
    monkeypatch.setitem(usercode._user_files, library.__file__, False)  # library code
    monkeypatch.delitem(sys.modules, name)
    fanout_class = xcs.composite(library.Fanout) if marked else library.Fanout
    fanout = fanout_class(echo)

    def program(prompts: list[str]) -> Any:
        return fanout(prompts), fanout.each(prompts)

    trace = xcs.trace(program, ["a", "b", "c"])
    assert trace.result == program(["a", "b", "c"])
    ops = [a for _, a in trace.graph.nodes(data=True) if a["kind"] == "op"]
    at_once = [a["immediate"] for a in ops]
    # Marked: the ops defer and overlap. Unmarked: library code calls them, one at a time.
    assert at_once == [not marked] * 6
    assert is_composite(fanout) is marked


def test_composite_marks_classes_only() -> None:
    with pytest.raises(TypeError, match="marks classes"):
        xcs.composite(plain)  # type: ignore[arg-type]
