"""Ops on executors in other processes or on other machines: process pools and Dask.

Such an executor gets one picklable call per op, :func:`call_remote`, and reports
back through the future's done-callback. What differs from thread executors:

* the op, its arguments and its result must be picklable (an ``@xcs.op`` at module
  level pickles by reference); when they are not, or the executor fails to run the
  call, the op fails with an :class:`~.errors.XCSError` naming it, the executor's
  error as its cause;
* the op's own exceptions come back as copies (pickled), with xcs's note added;
* contextvars do not cross; a waiting thread never runs such an op itself (it is
  meant for another process), so a jitted call nested in an op must not wait for
  the same executor when all of its workers may be busy;
* identical calls are never merged: each carries a unique token, where Dask would
  otherwise merge ``pure`` calls with equal arguments into one task;
* ``jit(timeout=)`` counts from submission; times come from the remote wall clock;
* when a worker process dies, the executor fails every op it holds at once: each is
  reported *lost*, naming the other ops in flight then (any of them may be the one
  that killed it), never blamed on pickling.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from typing import Any

from ember._redact import shown_text
from ember.xcs._internal import tracer
from ember.xcs._internal.errors import XCSError
from ember.xcs._internal.ir import Node
from ember.xcs._internal.pool import Task

__all__ = ["RemoteHandoff", "call_remote", "is_remote"]

_tokens = itertools.count()


def is_remote(executor: Executor) -> bool:
    """Whether ``executor`` runs calls outside this process (so they are pickled)."""
    return isinstance(executor, ProcessPoolExecutor) or type(executor).__module__.startswith(
        "distributed."
    )


def call_remote(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], token: str
) -> tuple[bool, Any, float, float, str, float]:
    """Run one op where the executor puts it; never raises for the op's own errors.

    Args:
        fn: The op.
        args: Its concrete positional arguments.
        kwargs: Its concrete keyword arguments.
        token: Unique per call, so no executor merges two identical calls.

    Returns:
        (ok, value or exception, wall start, wall end, thread, thread CPU seconds).
    """
    del token
    previous = tracer.enter(None)  # a forked worker may have inherited a trace
    thread = f"pid{os.getpid()}/{threading.current_thread().name}"
    cpu0 = time.thread_time()
    start = time.time()
    try:
        value, ok = fn(*args, **kwargs), True
    except Exception as exc:
        value, ok = exc, False
    finally:
        tracer.leave(previous)
    return ok, value, start, time.time(), thread, time.thread_time() - cpu0


class RemoteHandoff:
    """One pickled call per op on a process or cluster executor; no helping."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._run_id = f"{os.getpid()}-{id(self)}"
        self._clock_offset = time.time() - time.perf_counter()  # wall -> perf_counter
        self._sent: dict[int, Task] = {}  # node -> task sent and not finished
        self._lost: list[Task] = []  # tasks in flight when the executor broke

    def start(self, tasks: list[Task]) -> None:
        for task in tasks:
            self._start(task)

    def _start(self, task: Task) -> None:
        task.claim()  # nobody here may run it: only the executor, or nothing
        task.started = time.perf_counter()
        token = f"{self._run_id}-{task.node.id}-{next(_tokens)}"
        fn = task.node.op or task.node.fn
        assert fn is not None
        try:
            future = self._executor.submit(call_remote, fn, task.args, dict(task.kwargs), token)
        except Exception as exc:  # refused at once (shut down, unpicklable for Dask, ...)
            if task.slot is not None:
                task.slot.give_back()
            self._report_failure(task, exc)
            return
        task.handle = future
        self._sent[task.node.id] = task
        future.add_done_callback(lambda done: self._finished(task, done))

    def help(self) -> bool:
        return False

    def abandon(self, task: Task) -> None:
        task.abandoned = True

    def _finished(self, task: Task, future: Future[Any]) -> None:
        if task.slot is not None:
            task.slot.give_back()
        if future.cancelled():
            self._sent.pop(task.node.id, None)
            return  # the engine cancelled it and no longer waits for it
        try:
            ok, value, start, end, thread, cpu = future.result()
        except BaseException as exc:
            if _broken(exc):
                if not self._lost:  # the first to hear of it: the rest are still listed
                    self._lost = list(self._sent.values())
                self._sent.pop(task.node.id, None)
                self._report_lost(task, exc)
            else:
                self._sent.pop(task.node.id, None)
                self._report_failure(task, exc)
            return
        self._sent.pop(task.node.id, None)
        offset = self._clock_offset
        task.report((task.node.id, ok, value, start - offset, end - offset, thread, cpu))

    def _report_lost(self, task: Task, cause: BaseException) -> None:
        """The executor broke (a worker died) while ``task`` was queued or running."""
        node = task.node
        others = [t.node for t in self._lost if t is not task]
        named = ", ".join(f"{_name(n)} (node %{n.id}, called at {n.location})" for n in others[:5])
        if len(others) > 5:
            named += f" and {len(others) - 5} more"
        suspects = (
            f"the op that killed it may be another one in flight then: {named}"
            if others
            else "it was the only op in flight there"
        )
        error = XCSError(
            f"op {_name(node)} (node %{node.id}, called at {node.location}) was lost: "
            f"{type(self._executor).__name__} broke while the op was queued or running "
            f"on it ({type(cause).__name__}: {shown_text(str(cause))}). A worker process "
            "died (killed, out of memory, or crashed in native code) and every op on the "
            f"executor failed with it, so this op is not necessarily the cause: {suspects}. "
            "A broken "
            "executor runs nothing more: make a new one."
        )
        error.__cause__ = cause
        now = time.perf_counter()
        task.report((node.id, False, error, task.started or now, now, "?", 0.0))

    def _report_failure(self, task: Task, cause: BaseException) -> None:
        node = task.node
        error = XCSError(
            f"op {_name(node)} (node %{node.id}, called at {node.location}) could not run on "
            f"{type(self._executor).__name__}: {type(cause).__name__}: {shown_text(str(cause))}. "
            "Ops sent to "
            "another process must be picklable, and so must their arguments and results: "
            "define the op at module level (or use a thread executor)."
        )
        error.__cause__ = cause
        now = time.perf_counter()
        task.report((node.id, False, error, task.started or now, now, "?", 0.0))


def _name(node: Node) -> str:
    """An op's name as an error message shows it (quoted, secrets redacted)."""
    return shown_text(repr(node.name))


def _broken(error: BaseException) -> bool:
    """Whether ``error`` says the executor itself broke (a worker process died)."""
    return isinstance(error, BrokenExecutor) or type(error).__name__ == "KilledWorker"
