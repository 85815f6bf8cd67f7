"""Async code under a trace: waits that await, async ops as tasks on the caller's loop.

An ``async def`` traced by ``@jit`` runs on its caller's event loop, as it would
plainly. Three things differ from a sync trace (the contract is in
``docs/developer/decisions.md``):

* **Waiting.** The rewrite of an ``async def`` calls the dispatcher's helpers through
  ``awaits.asynced``. When a helper needs values (a branch, a library call, a scope),
  :meth:`~.tracer.Recording.materialize` raises :class:`Suspend` instead of blocking,
  *if* only dispatcher frames lie between it and ``asynced`` (nothing of the user's
  has run that a retry would run again); ``asynced`` awaits :func:`wait`, which
  materializes as a coroutine on the loop (``engine.Engine.arun``) while the loop runs
  other tasks, then calls the helper again, which finds the values ready. A value
  forced anywhere else (a proxy's own method, a function of the user's that library
  code, a property or a dunder calls) blocks the loop for that wait, exactly as
  computed, and says so once per line. (A sync function of the user's that the async
  code calls itself runs as its async variant: ``dispatch/twins.async_twin_of``.)
* **Async ops** (:class:`AsyncCall`): a call records nothing until it is awaited, as
  a coroutine's body does not start before; then it is one node, whose run (on a pool
  thread, like any op) starts the coroutine as a task on the caller's loop, in the
  contextvars captured at the call, and waits for it. While the loop is blocked by a
  wait (above) the coroutine runs on a private loop of that thread instead.
* **Driving** (:class:`Driven`): the body's coroutine is stepped with its recording
  entered on the loop's thread around each step only, so other tasks of the loop
  never record into it.

Cancellation: :func:`wait` interrupts the materialization it waits for (the engine
stops what it started) and re-raises ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import sys
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import Any

from ember import _stop
from ember.xcs._internal import tracer
from ember.xcs._internal.deferred import OUTSIDE
from ember.xcs._internal.errors import warn_at
from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.pool import Task, _DaemonThreadPool
from ember.xcs._internal.usercode import is_user_code

__all__ = [
    "AsyncCall",
    "AsyncRunner",
    "Driven",
    "LoopHandoff",
    "Suspend",
    "loop_handoff",
    "suspend_or_block",
    "wait",
    "waiters",
]

waiters = _DaemonThreadPool(max_workers=32, thread_name_prefix="ember-xcs-wait")
"""Threads that materialize while an async body's loop goes on (one per waiting call)."""

_warned: set[tuple[str, int]] = set()


class Suspend(BaseException):  # a signal, not an error: never escapes asynced
    """Raised by a materialization an ``asynced`` helper call can await instead."""

    def __init__(
        self,
        recording: tracer.Recording,
        reason: str,
        demanded: int | None,
        need_value: bool,
        why: str | None,
    ) -> None:
        super().__init__(reason)
        self.recording = recording
        self.reason = reason
        self.demanded = demanded
        self.need_value = need_value
        self.why = why
        self.hold = tracer._context.hold_before

    async def wait(self) -> None:
        """Materialize what the helper waited for, awaited."""
        await wait(self.recording, self.reason, self.demanded, self.need_value, self.why, self.hold)


def suspend_or_block(
    recording: tracer.Recording,
    reason: str,
    demanded: int | None,
    need_value: bool,
    why: str | None,
) -> None:
    """On an async body's loop thread: raise :class:`Suspend`, or warn and let it block.

    Suspending is safe when the helper itself asked for the values: the frames between
    the materialization and ``asynced`` are all the dispatcher's or xcs's own, and no
    code outside the dispatcher asked (:data:`~.deferred.OUTSIDE`: a proxy's method or
    an op called by library code, perhaps from C code no frame shows, after consuming
    an iterator a retry would find empty). A retry then runs nothing twice.
    """
    from ember.xcs._internal.dispatch.frames import waiter_code

    frame: types.FrameType | None = sys._getframe(2)
    user_line: tuple[str, int] | None = None
    outside = OUTSIDE.depth > 0
    while frame is not None:
        code = frame.f_code
        if code is waiter_code:
            if not outside:
                raise Suspend(recording, reason, demanded, need_value, why)
            outside = False  # the line to name is the awaiting one, further out
        elif is_user_code(code):
            user_line = (code.co_filename, frame.f_lineno)
            break
        frame = frame.f_back
    if user_line is not None and user_line not in _warned:
        _warned.add(user_line)
        warn_at(
            "this line waited for pending calls without an await point, so the event loop "
            "was blocked meanwhile (the values are exact); write the code that needs the "
            "values in a function the async code calls directly (not through library "
            "code, a property or a dunder method)",
            *user_line,
        )


async def wait(
    recording: tracer.Recording,
    reason: str,
    demanded: int | None,
    need_value: bool,
    why: str | None,
    hold: int,
) -> None:
    """Materialize, awaited: the loop goes on meanwhile. Cancelling stops the run.

    The engine's run is a coroutine on the loop (``Engine.arun``); a materializer
    without one runs on a helper thread, awaited.
    """
    where = tracer.user_location()  # the awaiting line (on the loop's thread)
    run = getattr(recording.materializer, "arun", None)
    if run is not None:
        await recording.amaterialize(reason, demanded, need_value, why, where, hold, run)
        return

    def off_loop() -> None:
        tracer._context.hold_before = hold
        try:
            recording._materialize(reason, demanded, need_value, why, where)
        finally:
            tracer._context.hold_before = 0

    future = waiters.submit(off_loop)
    try:
        await asyncio.wrap_future(future)
    except asyncio.CancelledError as cancelled:
        recording.interrupted = cancelled
        wake = recording.wake
        if wake is not None:
            wake()
        concurrent.futures.wait([future])  # the engine stops what it started, then returns
        raise


class Driven:
    """Awaitable stepping ``coroutine`` with ``recording`` entered around each step."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any], recording: tracer.Recording):
        self.coroutine = coroutine
        self.recording = recording

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, recording = self.coroutine, self.recording
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            previous = tracer.enter(recording)
            try:
                step = coroutine.send(sent) if thrown is None else coroutine.throw(thrown)
            except StopIteration as returned:
                return returned.value
            finally:
                tracer.leave(previous)
            try:
                sent, thrown = (yield step), None
            except BaseException as error:  # cancellation and the like: into the body
                sent, thrown = None, error


def _outcome(done: asyncio.Task[Any]) -> tuple[bool, Any]:
    """How a finished task of an async op ended: (True, its value) or (False, the error)."""
    if done.cancelled():
        return False, asyncio.CancelledError()
    error = done.exception()
    return (False, error) if error is not None else (True, done.result())


class AsyncRunner:
    """What a node of an async op runs (on a pool thread): its coroutine, to the end.

    On the caller's loop as a task, in the op's contextvars (this thread's, entered by
    the engine); on a private loop while the caller's loop is blocked by a wait.
    Stopping the op cancels the task.
    """

    __slots__ = ("__wrapped__", "recording")

    def __init__(self, fn: Callable[..., Any], recording: tracer.Recording) -> None:
        self.__wrapped__ = fn  # what it runs; also read for its return annotation
        self.recording = recording

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        coroutine = self.__wrapped__(*args, **kwargs)
        loop = self.recording.loop
        if self.recording.loop_blocked or loop is None or loop.is_closed():
            with asyncio.Runner() as runner:
                return runner.run(coroutine, context=contextvars.copy_context())
        context = contextvars.copy_context()
        result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        task: list[asyncio.Task[Any]] = []

        def start() -> None:
            if not result.set_running_or_notify_cancel():
                coroutine.close()
                return
            running = loop.create_task(coroutine, context=context)
            task.append(running)
            running.add_done_callback(finished)

        def finished(done: asyncio.Task[Any]) -> None:
            ok, value = _outcome(done)
            if ok:
                result.set_result(value)
            else:
                result.set_exception(value)

        def cancel() -> None:
            if not result.cancel():
                loop.call_soon_threadsafe(lambda: task and task[0].cancel())

        loop.call_soon_threadsafe(start)
        signal = _stop.current()
        unwatch = signal.watch(cancel) if signal is not None else None
        try:
            return result.result()
        finally:
            if unwatch is not None:
                unwatch()


class LoopHandoff:
    """Hands the async ops of a materialization to the caller's loop as tasks.

    The engine's other ops go to threads; an async op needs none: one thread-safe
    call per hand-over starts its tasks on the loop, and each reports to the engine
    when it ends, so many can be in flight at once as under ``asyncio.gather``. Only
    while the loop is free (the body awaits the materialization): a materialization
    blocking the loop runs them through :class:`AsyncRunner` on threads instead.
    Stopping a task (a failure before it, a timeout, Ctrl-C) cancels it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, direct: bool = False) -> None:
        self.loop = loop
        self.direct = direct  # called on the loop's thread: tasks are made at once

    def start(self, tasks: list[Task]) -> None:
        if self.direct:
            self._start_all(tasks)
        else:
            self.loop.call_soon_threadsafe(self._start_all, tasks)

    def help(self) -> bool:
        return False  # nothing waits for a thread

    def abandon(self, task: Task) -> None:
        task.abandoned = True

    def _start_all(self, tasks: list[Task]) -> None:
        for task in tasks:
            if task.claim():  # else cancelled meanwhile: it never starts
                self._start(task)

    def _start(self, task: Task) -> None:
        node = task.node
        runner = node.fn
        assert isinstance(runner, AsyncRunner)
        context = node.context.copy() if node.context is not None else contextvars.copy_context()
        task.started = start = time.perf_counter()
        saved = tracer.begin_op(task.recording)  # (made inside an async body's step)
        try:
            coroutine = context.run(runner.__wrapped__, *task.args, **task.kwargs)
            running = self.loop.create_task(coroutine, context=context)
        except Exception as error:  # the op's own failure, before its first await
            self._report(task, False, error, start)
            return
        finally:
            tracer.end_op(saved)

        def cancel() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs
                self.loop.call_soon_threadsafe(running.cancel)

        unwatch = task.watch(cancel)

        def finished(done: asyncio.Task[Any]) -> None:
            unwatch()
            self._report(task, *_outcome(done), start)

        running.add_done_callback(finished)

    def _report(self, task: Task, ok: bool, value: Any, start: float) -> None:
        end = time.perf_counter()
        task.ended = True
        if task.slot is not None:
            task.slot.give_back()
        task.report((task.node.id, ok, value, start, end, threading.current_thread().name, 0.0))


def loop_handoff(recording: tracer.Recording) -> LoopHandoff | None:
    """Where ``recording``'s async ops start now: its loop, if that is free to run them."""
    loop = recording.loop
    if (
        loop is None
        or recording.loop_blocked
        or loop.is_closed()
        or threading.get_ident() == recording.loop_thread
    ):
        return None
    return LoopHandoff(loop)


class AsyncCall:
    """A call of an async op in traced async code, before it is awaited.

    Awaited by the rewritten code (``awaits.awaited``), it becomes one node of the
    graph and its pending value; handed to library code (``asyncio.gather``,
    ``create_task``), it is an awaitable running the op there, plainly.
    """

    __slots__ = ("args", "fn", "kind", "kwargs", "recording", "spec")

    def __init__(
        self,
        recording: tracer.Recording,
        spec: OpSpec,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        kind: Any = None,
    ) -> None:
        self.kind = kind  # what is known of the result's type, beyond fn's annotation
        self.recording = recording
        self.spec = spec
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def record(self) -> Any:
        """The node of this call, recorded now (at its ``await``); its pending value."""
        runner = AsyncRunner(self.fn, self.recording)
        return self.recording.record_op(
            self.spec, runner, self.args, dict(self.kwargs), kind=self.kind
        )

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._plainly().__await__()

    async def _plainly(self) -> Any:
        from ember.xcs._internal.concrete import Concretizer
        from ember.xcs._internal.deferred import Deferred

        recording = self.recording
        if recording.pending:  # its arguments may be pending: everything runs first
            await wait(recording, f"{self.spec.name} awaited by library code", None, True, None, 0)

        def value(deferred: Deferred) -> Any:
            if deferred._self_owner is not recording:
                return deferred
            return recording.demand(deferred._self_node)

        concrete = Concretizer(value)
        args = tuple(concrete(a) for a in self.args)
        kwargs = {k: concrete(v) for k, v in self.kwargs.items()}
        return await self.fn(*args, **kwargs)

    def close(self) -> None:
        """As a coroutine's ``close()`` before it started: the op never runs."""

    def __repr__(self) -> str:
        return f"<coroutine of xcs.op {self.spec.name!r}, not yet awaited>"


def current_loop() -> tuple[Any, int]:
    """The running event loop and its thread (for a new async recording)."""
    return asyncio.get_running_loop(), threading.get_ident()
