"""One traced call from entry to exit: inputs, exit sync, exceptions, concrete results."""

from __future__ import annotations

from typing import Any

import pytest

from ember.xcs._internal import tracer
from ember.xcs._internal.engine import Engine
from ember.xcs._internal.ir import Status
from ember.xcs._internal.tracer import Recording
from tests.helpers import LOG, OpError, contains_proxy, echo, fail, run_traced


def run(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, Recording]:
    rec = Recording(Engine())
    return run_traced(rec, fn, *args, **kwargs), rec


def test_arguments_become_named_input_nodes() -> None:
    def fn(a: Any, b: Any, *rest: Any, key: Any = None) -> Any:
        return echo(a)

    _, rec = run(fn, 1, 2, 3, 4, key=5)
    inputs = [n.name for n in rec.nodes if n.kind == "input"]
    assert inputs == ["a", "b", "rest[0]", "rest[1]", "key"]
    assert [rec.values[i] for i in range(5)] == [1, 2, 3, 4, 5]


def test_the_exit_runs_what_is_pending_and_the_result_is_concrete() -> None:
    def fn() -> Any:
        return {"x": [echo(1), echo(2)]}

    result, rec = run(fn)
    assert result == {"x": ["1", "2"]} and not contains_proxy(result)
    assert rec.nodes[-1].name == "exit" and rec.pending == []
    assert tracer.active() is None


def test_ops_recorded_before_a_user_exception_still_run() -> None:
    def fn() -> Any:
        echo("ran")
        raise KeyError("user")

    with pytest.raises(KeyError):
        run(fn)
    assert LOG.names() == ["echo"]


def test_an_earlier_op_failure_replaces_a_later_user_exception() -> None:
    def fn() -> Any:
        fail("op")
        raise KeyError("user")

    with pytest.raises(OpError, match="op") as info:
        run(fn)
    assert info.value.__context__ is None  # not chained to the user's exception


def test_keyboard_interrupt_cancels_what_is_pending() -> None:
    rec = Recording(Engine())

    def fn() -> Any:
        echo("never")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_traced(rec, fn)
    assert LOG.names() == []
    op = next(n.id for n in rec.nodes if n.kind == "op")
    assert rec.state[op].status is Status.CANCELLED
    assert tracer.active() is None
