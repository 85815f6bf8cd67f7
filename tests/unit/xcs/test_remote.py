"""Ops on executors in other processes: one pickled call each, reported back, never merged."""

from __future__ import annotations

import queue
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from ember.xcs import XCSError
from ember.xcs._internal import remote, tracer
from ember.xcs._internal.engine import Engine
from ember.xcs._internal.ir import Node, NodeKind
from ember.xcs._internal.pool import Task
from ember.xcs._internal.tracer import Recording


def make_task(fn: Any, *args: Any, reports: queue.SimpleQueue[Any]) -> Task:
    node = Node(4, NodeKind.OP, "ask", fn, args)
    return Task(Recording(Engine()), node, args, {}, reports.put)


class Inline(Executor):
    """Runs each call at once and remembers what it was given (as a process pool would)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls.append(args)
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class Refusing(Executor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise RuntimeError("cannot schedule new futures after shutdown")


def fails(x: str) -> str:
    raise KeyError(x)


def test_remote_executors_are_told_apart_from_thread_pools() -> None:
    with ProcessPoolExecutor(1) as processes, ThreadPoolExecutor(1) as threads:
        assert remote.is_remote(processes) and not remote.is_remote(threads)
    fake = type("Client", (Executor,), {"__module__": "distributed.client"})()
    assert remote.is_remote(fake)


def test_a_remote_call_reports_the_value_or_the_ops_own_error_and_records_nothing() -> None:
    previous = tracer.enter(Recording(Engine()))  # as a forked worker may inherit it
    try:
        ok, value, start, end, thread, cpu = remote.call_remote(str.upper, ("a",), {}, "t1")
        assert (ok, value) == (True, "A") and start <= end and thread.startswith("pid")
        assert tracer.active() is not None  # restored after the call
        ok, error, *_ = remote.call_remote(fails, ("k",), {}, "t2")
        assert not ok and isinstance(error, KeyError)
    finally:
        tracer.leave(previous)


def test_each_call_carries_its_own_token_so_identical_calls_are_never_merged() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    executor = Inline()
    dispatch = remote.RemoteHandoff(executor)
    dispatch.start([make_task(str.upper, "a", reports=reports) for _ in range(3)])
    tokens = [call[-1] for call in executor.calls]
    assert len(set(tokens)) == 3
    node, ok, value, *_ = reports.get_nowait()
    assert (node, ok, value) == (4, True, "A")
    assert not dispatch.help()  # a waiting thread never runs a remote op itself


def test_an_executor_that_refuses_the_call_fails_the_op_with_a_clear_error() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    remote.RemoteHandoff(Refusing()).start([make_task(str.upper, "a", reports=reports)])
    node, ok, error, *_ = reports.get_nowait()
    assert (node, ok) == (4, False) and isinstance(error, XCSError)
    assert "op 'ask'" in str(error) and "picklable" in str(error)
    assert isinstance(error.__cause__, RuntimeError)
