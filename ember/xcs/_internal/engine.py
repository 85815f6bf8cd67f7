"""Runs the pending nodes of a recording: ready-queue dataflow on a thread pool.

One *materialization* runs a batch of pending nodes and waits for them. The loop in
:class:`_Run` is a sequence of transitions between these states (the ``status``
attribute of each graph node)::

    pending --(inputs done)--> ready --(dispatch)--> running --+--> done
       |                         |                             +--> failed
       +-------------------------+--(an input failed, or after the
                                      earliest failure)--> cancelled

* **pending**: recorded; ``waiting[n]`` counts inputs not yet done. An input joined
  by an ``order="dispatch"`` edge counts as done once it has *started* (it copied its
  arguments), not finished.
* **ready**: all inputs done. Two heaps in program order: ops and glue.
* **running**: an op handed to the executor. Ops are dispatched in program order,
  at most ``max_workers`` at a time; an op whose ``max_concurrency`` slots are all
  taken (by any trace) waits aside, in program order, until one frees. Glue runs
  inline in the materializing thread as soon as it is ready (it is cheap, and glue
  on one object keeps program order through the recording's order edges).
* **done / failed**: the value or exception is recorded on the node.
* **cancelled**: never run, because a node it depends on failed or because it comes
  after the earliest failure in program order (the sequential program would never
  have reached it). Its error is that failure.

Errors: the batch ends when every node *before* the earliest failure has finished;
the exception raised is the earliest failure in program order -- never whichever
finished first -- as the original object with a note naming the op and the user's
line. Ops already running after it finish in the background; their results are
dropped, and they are *stopped* (``ember._stop``: a model call sends no further retry),
as are the running ops of a call interrupted by Ctrl-C.

Timeouts: an op running longer than ``timeout`` fails with
:class:`~.errors.OpTimeoutError` and goes on in the background like any abandoned
op (stopped, too); so does one waiting that long for a ``max_concurrency`` slot with none coming
free (held by ops of other calls, or by ops a timed-out call abandoned). Under a
timeout the waiting thread never runs an op itself (it could not watch the clock
then): it helps on an overflow thread. Deadlines are checked at most once per due
time, not per completion, so a timeout costs nothing per op.

How ops reach threads (and why nested jitted calls never deadlock: a waiting
thread runs queued ops itself when the pool does not) is ``pool.py``'s concern.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import heapq
import math
import queue
import threading
import time
import types
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.awaiting import AsyncRunner, LoopHandoff, loop_handoff, waiters
from ember.xcs._internal.deferred import call
from ember.xcs._internal.errors import (
    OpTimeoutError,
    XCSError,
    add_op_note,
    reraise,
    warn_ran_late,
)
from ember.xcs._internal.ir import FINISHED, Node, NodeKind, Status
from ember.xcs._internal.limits import Limit, limit_for, take
from ember.xcs._internal.pool import (
    DEFAULT_MAX_WORKERS,
    Handoff,
    Report,
    RunnerHandoff,
    SubmitHandoff,
    Task,
    default_executor,
)
from ember.xcs._internal.purity import observe, observe_attribute
from ember.xcs._internal.remote import RemoteHandoff, is_remote
from ember.xcs._internal.snapshots import resolve, shares_objects
from ember.xcs._internal.tracer import Recording

__all__ = ["Engine"]

# How long the waiting thread waits for a completion before checking whether it
# must run a queued op itself; the wait then grows up to MAX_WAIT_SLICE, which
# bounds how late Ctrl-C is noticed. Timeouts cut a wait short.
HELP_AFTER = 0.002
MAX_WAIT_SLICE = 0.1

# Put in the completion queue when a max_concurrency slot this run waits for frees.
_WAKE: Any = ("wake",)


def handoff_for(
    executor: Executor | None, limit: int | None, timeout: float | None = None
) -> Handoff:
    """How one materialization hands ops to ``executor`` (None: the shared pool)."""
    pool = executor if executor is not None else default_executor()
    if isinstance(pool, ThreadPoolExecutor):
        size = getattr(pool, "_max_workers", DEFAULT_MAX_WORKERS)
        return RunnerHandoff(pool, min(size, limit) if limit is not None else size, timeout)
    if is_remote(pool):
        return RemoteHandoff(pool)
    return SubmitHandoff(pool, timeout)


class Engine:
    """Runs batches of pending nodes; installed as a recording's materializer.

    Args:
        executor: Where ops run; the shared thread pool when None.
        max_workers: At most this many ops of one call run at once (a thread
            helping by running an op itself counts); None for no bound.
        timeout: Seconds an op on a worker may run before the call raises
            :class:`~.errors.OpTimeoutError` for it; None for no limit.
    """

    def __init__(
        self,
        executor: Executor | None = None,
        max_workers: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.executor = executor
        self.max_workers = max_workers
        self.timeout = timeout

    def __call__(self, recording: Recording, batch: list[int]) -> None:
        _Run(recording, batch, self.executor, self.max_workers, self.timeout).run()

    async def arun(self, recording: Recording, batch: list[int]) -> None:
        """Run ``batch`` for an async body, on its loop's thread (see :class:`_LoopRun`)."""
        await _LoopRun(recording, batch, self.executor, self.max_workers, self.timeout).arun()


def _python_method(fn: Any) -> bool:
    """Whether ``fn`` is a bound method written in Python (which may have side effects)."""
    return type(fn) is types.MethodType and type(fn.__func__) is types.FunctionType


class _Run:
    """One materialization: the state sets of the module docstring and their transitions."""

    def __init__(
        self,
        recording: Recording,
        batch: list[int],
        executor: Executor | None,
        limit: int | None,
        timeout: float | None,
    ) -> None:
        self.rec = recording
        self.timeout = timeout
        self.batch = batch
        self.handoff = handoff_for(executor, limit, timeout)
        self.on_loop = loop_handoff(recording)  # async ops: tasks on the caller's loop
        self.looped: set[int] = set()  # nodes handed to it
        self.limit = limit if limit is not None else math.inf
        self.waiting: dict[int, int] = {}  # pending node -> inputs not yet done
        self.after_start: dict[int, list[int]] = {}  # node -> successors it unblocks on start
        self.after_done: dict[int, list[int]] = {}  # node -> successors it unblocks when done
        self.ready_ops: list[int] = []
        self.ready_glue: list[int] = []
        self.blocked: list[int] = []  # ready ops whose max_concurrency slots are all taken
        self.blocked_since: dict[int, tuple[float, Limit]] = {}  # first refused, and where
        # No deadline can fall before this: checked again then (see _expire).
        self.check_at = math.inf if timeout is None else time.perf_counter() + timeout
        self.inflight: dict[int, Task] = {}
        self.failures: dict[int, BaseException] = {}
        self.cutoff: float = math.inf  # id of the earliest failure so far
        self.completions: queue.SimpleQueue[Report] = queue.SimpleQueue()
        self.put: Callable[[Report], None] = self.completions.put  # where tasks report
        self.wake = functools.partial(self.completions.put, _WAKE)  # one identity: dedup
        self.stop_seen = False  # the recording's stop (xcs.map) has been applied

    # --- the loop ---------------------------------------------------------------

    def run(self) -> None:
        self.rec.wake = self.wake  # an async caller cancelled: see _wait
        try:
            self._prepare()
            while True:
                self._hand_off()
                if not self._busy():
                    break
                report = self._wait()
                if report is not None:
                    self._complete(report)
                    self._drain()
        except BaseException as interrupt:  # Ctrl-C or an internal error: stop everything
            self._cancel_unfinished(interrupt)
            raise
        finally:
            self.rec.wake = None
        self._end()

    def _end(self) -> None:
        """Raise the earliest failure in program order, if any (the batch has ended)."""
        if self.failures:
            winner = self.failures[min(self.failures)]
            self._cancel_unfinished(winner)
            reraise(winner, ran_elsewhere=True)
        self._check_all_done()

    def _prepare(self) -> None:
        rec, state = self.rec, self.rec.state  # read only: transitions are rec's
        members = set(self.batch)
        for node in self.batch:
            started: list[int] = []
            done: list[int] = []
            self.after_start[node], self.after_done[node] = started, done
            for succ, kind in rec.succ[node].items():
                if succ in members:
                    (started if kind == "dispatch" else done).append(succ)
        for node in self.batch:
            count = 0
            for pred in rec.pred[node]:
                status = state[pred].status
                if status is Status.DONE:
                    continue
                if pred in members:
                    count += 1
                elif status in FINISHED:  # failed or cancelled in an earlier batch
                    error = state[pred].error
                    assert error is not None
                    self._fail(node, error, note=False)
                    break
            else:
                self.waiting[node] = count
                if count == 0:
                    self._push_ready(node)

    def _busy(self) -> bool:
        """Whether anything before the earliest failure is still running or ready."""
        cutoff = self.cutoff
        if cutoff == math.inf:
            return bool(self.inflight or self.blocked)
        if self.ready_ops and self.ready_ops[0] < cutoff:
            return True  # waiting for a slot (ops after the failure may still hold one)
        if any(node < cutoff for node in self.blocked):
            return True
        return any(node < cutoff for node in self.inflight)

    def _hand_off(self) -> None:
        if self.rec.stopped is not None and not self.stop_seen:
            self.stop_seen = True
            self._stop(self.rec.stopped)
        if self.blocked:  # slots may have come free: try again, in program order
            for node in self.blocked:
                heapq.heappush(self.ready_ops, node)
            self.blocked.clear()
        while True:
            tasks = []
            while self.ready_ops and len(self.inflight) < self.limit:
                node = heapq.heappop(self.ready_ops)
                if node < self.cutoff:
                    task = self._start_op(node)
                    if task is not None:
                        tasks.append(task)
            if tasks:
                self._start(tasks)  # all at once: one hand-over, then glue
            if not self.ready_glue:
                return
            while self.ready_glue:
                node = heapq.heappop(self.ready_glue)
                if node < self.cutoff:
                    self._run_glue(node)

    def _start(self, tasks: list[Task]) -> None:
        on_loop = self.on_loop
        if on_loop is not None:
            looped = [t for t in tasks if type(t.node.fn) is AsyncRunner]
            if looped:
                self.looped.update(t.node.id for t in looped)
                on_loop.start(looped)
                tasks = [t for t in tasks if type(t.node.fn) is not AsyncRunner]
        if tasks:
            self.handoff.start(tasks)

    def _drain(self) -> None:
        """Take every report already waiting, before dispatching again."""
        completions = self.completions
        while True:
            try:
                report = completions.get_nowait()
            except queue.Empty:
                return
            if report is not _WAKE:
                self._complete(report)

    def _wait(self) -> Report | None:
        """Next completion, or None when an op ran out of time or a slot came free.

        Meanwhile run a queued op if the pool is not getting to it. Waiting in short,
        growing slices keeps Ctrl-C prompt and notices a stalled pool.
        """
        slice_ = HELP_AFTER
        while True:
            if self.rec.interrupted is not None:  # the task awaiting an async call: cancelled
                raise self.rec.interrupted
            wait = slice_
            if self.timeout is not None:
                now = time.perf_counter()
                if now >= self.check_at and self._expire(now):
                    return None
                wait = min(wait, self.check_at - now)
            try:
                report = self.completions.get(timeout=wait)
            except queue.Empty:
                pass
            else:
                return None if report is _WAKE else report
            if self.rec.stopped is not None and not self.stop_seen:
                return None  # stopped from another thread: hand nothing more out
            if self.blocked:
                return None  # try the waiting ops again (also covers a missed wake-up)
            slice_ = HELP_AFTER if self.handoff.help() else min(slice_ * 2, MAX_WAIT_SLICE)

    def _expire(self, now: float) -> bool:
        """Fail the ops whose time ran out; plan the next check. True if any failed.

        Ops that start (or are refused a slot) after ``now`` cannot be due before
        ``now + timeout``, so one pass over what is in flight finds every deadline
        before the next check.
        """
        timeout = self.timeout
        assert timeout is not None
        next_check = now + timeout
        running: list[tuple[int, Task]] = []
        for node, task in self.inflight.items():
            started = task.started
            if started is None or task.inline:
                continue  # not started yet (its clock starts when it does), or helped
            if started + timeout <= now:
                running.append((node, task))
            else:
                next_check = min(next_check, started + timeout)
        waiting: list[tuple[int, float, Limit]] = []
        for node in self.blocked:
            since, limit = self.blocked_since[node]
            due = max(since, limit.given_back) + timeout  # no slot came free since
            if due <= now:
                waiting.append((node, since, limit))
            else:
                next_check = min(next_check, due)
        self.check_at = next_check
        for node, task in running:
            del self.inflight[node]  # its result, if it ever comes, is dropped
            (self.on_loop if node in self.looped and self.on_loop else self.handoff).abandon(task)
            task.stop()  # a model call in it sends no further retries
            if task.slot is not None:
                task.slot.abandon()
            self._time_out(node, task.started, None)
        for node, since, limit in waiting:
            self.blocked.remove(node)
            del self.blocked_since[node]
            self._time_out(node, since, _slot_wait(limit))
        return bool(running or waiting)

    def _time_out(self, node: int, since: float | None, waiting_for: str | None) -> None:
        assert self.timeout is not None
        record = self.rec.nodes[node]
        error = OpTimeoutError(node, record.name, str(record.location), self.timeout, waiting_for)
        self.rec.fail(node, error, since)
        self._fail(node, error, note=False)

    # --- transitions ------------------------------------------------------------

    def _push_ready(self, node: int) -> None:
        if self.rec.nodes[node].kind is NodeKind.OP:
            heapq.heappush(self.ready_ops, node)
        else:
            heapq.heappush(self.ready_glue, node)

    def _release(self, successors: list[int]) -> None:
        waiting = self.waiting
        for succ in successors:
            if succ in waiting:
                waiting[succ] -= 1
                if waiting[succ] == 0:
                    self._push_ready(succ)

    def _arguments(
        self, record: Node, copy_refs: bool
    ) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
        if not record.markers:
            return record.args, record.kwargs  # copies already, made at record time
        values = self.rec.values
        args = tuple([resolve(a, values, copy_refs=copy_refs) for a in record.args])
        kwargs = {k: resolve(v, values, copy_refs=copy_refs) for k, v in record.kwargs.items()}
        return args, kwargs

    def _start_op(self, node: int) -> Task | None:
        """Make the task of a ready op (None if it must wait for a slot)."""
        record = self.rec.nodes[node]
        slot = None
        spec = record.spec
        limit = limit_for(spec) if spec is not None and spec.max_concurrency else None
        if limit is not None:
            slot = take(limit)
            if slot is None:  # every slot of this op is taken: retry when one frees
                limit.wait(self.wake)
                slot = take(limit)  # one freed before we were listed: no wake-up comes
                if slot is None:
                    self.blocked.append(node)
                    if node not in self.blocked_since:
                        self.blocked_since[node] = (time.perf_counter(), limit)
                    return None
            self.blocked_since.pop(node, None)
        unblocks = self.after_start[node]
        if unblocks and any(shares_objects(self.rec.values[d]) for d in record.deps):
            # A copy cannot shield this op from a later in-place change of an object
            # it reads: that change waits until the op has finished, not just started.
            self.after_done[node].extend(unblocks)
            unblocks = []
        # An in-place change this op unblocks must not reach the objects it reads.
        args, kwargs = self._arguments(record, copy_refs=bool(unblocks))
        task = Task(self.rec, record, args, kwargs, self.put, slot)
        self.inflight[node] = task
        self.rec.start(node)
        if unblocks:
            self._release(unblocks)
        return task

    def _run_glue(self, node: int) -> None:
        record = self.rec.nodes[node]
        assert record.fn is not None
        saved = tracer.begin_op(self.rec)
        start = time.perf_counter()
        try:
            args, kwargs = self._arguments(record, False)
            if record.fn is call and _python_method(args[0]):
                where = record.location
                method = f"{type(args[0].__self__).__name__}.{args[0].__name__}"
                warn_ran_late(method, str(where), where.file, where.line)
            value, ok = record.fn(*args, **kwargs), True
            if record.fn is getattr:  # what an attribute holds, for later traces
                observe_attribute(args[0], args[1], value)
        except Exception as exc:  # KeyboardInterrupt and the like propagate
            value, ok = exc, False
        finally:
            tracer.end_op(saved)
        end = time.perf_counter()
        self._release(self.after_start[node])
        self._finish(node, ok, value, start, end, threading.current_thread().name, end - start)

    def _complete(self, report: Report) -> None:
        node = report[0]
        task = self.inflight.pop(node, None)
        if task is None:
            return  # abandoned after a failure was handled
        if task.cached:
            self.rec.state[node].cached = task.cached
        if node > self.cutoff:  # ran after a failure it comes after: result dropped
            self._timing(*report)
            return
        self._finish(*report)

    def _timing(
        self, node: int, ok: bool, value: Any, start: float, end: float, thread: str, cpu: float
    ) -> None:
        self.rec.record_times(node, start, end, thread, cpu)

    def _finish(
        self, node: int, ok: bool, value: Any, start: float, end: float, thread: str, cpu: float
    ) -> None:
        self.rec.finish(node, ok, value, start, end, thread, cpu)
        if ok:
            spec = self.rec.nodes[node].spec
            if spec is not None:  # what an op returns says what later calls of it return
                observe(spec, value)
            successors = self.after_done[node]
            if successors:
                self._release(successors)
        else:
            self._fail(node, value, note=True)

    def _fail(self, node: int, exc: BaseException, *, note: bool) -> None:
        self.rec.cancel(node, exc)  # a node that failed itself stays failed
        if note:
            record = self.rec.nodes[node]
            glue = record.kind is not NodeKind.OP
            add_op_note(
                exc,
                node,
                record.name,
                str(record.location),
                glue=glue,
                args=record.args,  # which call it was: its arguments, shortened
                kwargs=record.kwargs,
                values=self.rec.values,
            )
        self.failures[node] = exc
        if node < self.cutoff:
            self.cutoff = node
            # Ops after the failure that no thread has started never will.
            for later in [n for n in self.inflight if n > node]:
                if self.inflight[later].cancel():
                    del self.inflight[later]

    def _stop(self, error: BaseException) -> None:
        """The recording was stopped: the first op not started fails, and all after it.

        Ops handed out that no thread has taken yet count as not started.
        """
        state = self.rec.state
        unstarted = [n for n in self.batch if state[n].status is Status.PENDING]
        for node, task in sorted(self.inflight.items()):
            if task.cancel():
                del self.inflight[node]
                unstarted.append(node)
        if unstarted:
            self._fail(min(unstarted), error, note=False)

    def _cancel_unfinished(self, error: BaseException) -> None:
        for task in self.inflight.values():
            if not task.cancel():  # a task nobody started never will
                task.stop()  # one running goes on, dropped: it sends no further retries
        self.inflight.clear()
        self.rec.cancel_pending(error, self.batch)

    def _check_all_done(self) -> None:
        state = self.rec.state
        stuck = [n for n in self.batch if state[n].status is not Status.DONE]
        if stuck:
            raise XCSError(f"internal: nodes {stuck} did not run; please report this bug")


class _LoopRun(_Run):
    """A materialization awaited by an async body, run on its event loop's thread.

    The transitions are :class:`_Run`'s; only the waiting differs. Instead of a helper
    thread blocking on the completion queue, the body's own coroutine awaits a future
    that each report resolves: a task of an async op reports from its done callback,
    on the loop, so the ops its value unblocks (a judge reading eight drafts, the glue
    before it) start in the same loop iteration, as the next line of a hand-written
    ``asyncio.gather`` version would -- no thread hop, no wait for the GIL while the
    loop is busy. Async ops become tasks at once (no thread-safe hand-over); sync ops
    still go to the pool, whose threads report through ``call_soon_threadsafe``. A
    pool that does not get to its queue is helped from a waiter thread (helping runs
    an op, which must never happen on the loop). Cancelling the body stops the run.
    """

    def __init__(
        self,
        recording: Recording,
        batch: list[int],
        executor: Executor | None,
        limit: int | None,
        timeout: float | None,
    ) -> None:
        super().__init__(recording, batch, executor, limit, timeout)
        self.loop = loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.on_loop = LoopHandoff(loop, direct=True)
        self.arrived: asyncio.Future[bool] | None = None  # what the run awaits, if it does
        self.poked = False  # a wake-up is on its way to the loop from another thread
        self.helping: concurrent.futures.Future[bool] | None = None
        self.put = self._put  # reports of tasks (Task.report) come here
        self.wake = functools.partial(self._put, _WAKE)

    def _put(self, report: Report) -> None:
        self.completions.put(report)
        if threading.get_ident() == self.loop_thread:
            self._notify()
        elif not self.poked:
            self.poked = True
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                self.loop.call_soon_threadsafe(self._notify)

    def _notify(self) -> None:
        self.poked = False  # (before the run drains the queue: no report is missed)
        arrived = self.arrived
        if arrived is not None and not arrived.done():
            arrived.set_result(False)  # (not a slice that ran out)

    async def arun(self) -> None:
        try:
            self._prepare()
            while True:
                self._hand_off()
                if not self._busy():
                    break
                await self._await_reports()
                self._drain()
        except BaseException as interrupt:  # cancelled, or an internal error: stop all
            self._cancel_unfinished(interrupt)
            raise
        self._end()

    async def _await_reports(self) -> None:
        """Until a report (or a wake-up) arrives, an op runs out of time, or a slot frees.

        As :meth:`_Run._wait`, in growing slices that notice a stalled pool.
        """
        slice_ = HELP_AFTER
        loop = self.loop
        while True:
            if not self.completions.empty():
                return
            wait = slice_
            if self.timeout is not None:
                now = time.perf_counter()
                if now >= self.check_at and self._expire(now):
                    return
                wait = min(wait, self.check_at - now)
            self.arrived = arrived = loop.create_future()
            timer = loop.call_later(wait, _slice_ran_out, arrived)
            try:
                ran_out = await arrived
            finally:
                timer.cancel()
                self.arrived = None
            if not self.completions.empty():
                return
            if self.rec.stopped is not None and not self.stop_seen:
                return  # stopped from another thread: hand nothing more out
            if self.blocked:
                return  # try the waiting ops again (also covers a missed wake-up)
            if ran_out:  # (not a wake-up whose report an earlier drain took)
                helped = self._help_elsewhere()
                slice_ = HELP_AFTER if helped else min(slice_ * 2, MAX_WAIT_SLICE)

    def _help_elsewhere(self) -> bool:
        """Let a waiter thread help the pool (:meth:`Handoff.help` runs an op itself).

        True while that help goes on, or when the last one ran an op.
        """
        previous = self.helping
        if previous is not None and not previous.done():
            return True
        self.helping = waiters.submit(self.handoff.help)
        return previous is not None and previous.exception() is None and previous.result()


def _slice_ran_out(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(True)


def _slot_wait(limit: Limit) -> str:
    """What an op refused a slot of ``limit`` waited for, for its timeout error."""
    what = (
        f"a free slot of its max_concurrency={limit.size} limit (all {limit.size} in use, "
        "none given back meanwhile)"
    )
    if limit.abandoned:
        what += (
            f"; {limit.abandoned} of them held by ops a call abandoned when it timed out: "
            "they still run, and a slot frees only when its op ends"
        )
    return what
