"""``@xcs.op`` and the op/composite markers."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from ember import xcs
from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.protocol import Op, call_op, is_composite, is_op
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

    async def coroutine() -> None: ...

    def generator() -> Any:
        yield 1

    with pytest.raises(xcs.XCSError, match="async def"):
        xcs.op(coroutine)
    with pytest.raises(xcs.XCSError, match="generator"):
        xcs.op(generator)


def test_module_level_ops_pickle_by_reference() -> None:
    assert pickle.loads(pickle.dumps(echo)) is echo
