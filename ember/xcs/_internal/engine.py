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
  at most ``max_workers`` at a time. Glue runs inline in the materializing thread
  as soon as it is ready (it is cheap, and glue on one object keeps program order
  through the recording's order edges).
* **done / failed**: the value or exception is recorded on the node.
* **cancelled**: never run, because a node it depends on failed or because it comes
  after the earliest failure in program order (the sequential program would never
  have reached it). Its error is that failure.

Errors: the batch ends when every node *before* the earliest failure has finished;
the exception raised is the earliest failure in program order -- never whichever
finished first -- as the original object with a note naming the op and the user's
line. Ops already running after it finish in the background; their results are
dropped.

No deadlock under nesting: an op is a claimable task. The executor's worker claims
it when it starts; a materializing thread that has nothing to do and sees a task
no worker has claimed for a while runs it itself. So nested jitted calls inside
ops never exhaust a small pool.

This module owns the default thread pool; nothing else starts threads.
"""

from __future__ import annotations

import atexit
import heapq
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.errors import XCSError, add_op_note
from ember.xcs._internal.ir import FINISHED, Node, NodeKind, Status
from ember.xcs._internal.ir_builder import resolve
from ember.xcs._internal.tracer import Recording

__all__ = ["Engine", "default_executor"]

DEFAULT_MAX_WORKERS = 64
# How long a dispatched op may sit unclaimed before the waiting thread runs it itself.
HELP_AFTER = 0.002
MAX_WAIT_SLICE = 0.1

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _pool_size() -> int:
    raw = os.environ.get("EMBER_XCS_MAX_WORKERS", "")
    if not raw:
        return DEFAULT_MAX_WORKERS
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise XCSError(
            f"EMBER_XCS_MAX_WORKERS must be a positive integer, got {raw!r}. "
            f"Unset it to use the default of {DEFAULT_MAX_WORKERS} workers."
        )
    return size


def default_executor() -> ThreadPoolExecutor:
    """The shared pool for ops, created on first use."""
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_pool_size(), thread_name_prefix="xcs-worker")
            pool = _pool
    return pool


def _shutdown_pool() -> None:
    pool = _pool
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _forget_pool_in_child() -> None:
    # The parent's worker threads do not exist in a forked child.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


atexit.register(_shutdown_pool)
os.register_at_fork(after_in_child=_forget_pool_in_child)


class Engine:
    """Runs batches of pending nodes; installed as a recording's materializer.

    Args:
        executor: Where ops run; the shared thread pool when None.
        max_workers: At most this many ops of one call run at once (a thread
            helping by running an op itself counts); None for no bound.
    """

    def __init__(self, executor: Executor | None = None, max_workers: int | None = None) -> None:
        self.executor = executor
        self.max_workers = max_workers

    def __call__(self, recording: Recording, batch: list[int]) -> None:
        _Run(recording, batch, self.executor or default_executor(), self.max_workers).run()


Report = tuple[int, bool, Any, float, float, str, float]
"""(node, ok, value or exception, start, end, thread name, thread CPU seconds)."""


class _Task:
    """One op run, claimable exactly once, by a worker or by the waiting thread."""

    __slots__ = ("claim", "node", "recording", "report", "run_args", "run_kwargs")

    def __init__(
        self,
        recording: Recording,
        node: Node,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        report: Callable[[Report], None],
    ) -> None:
        self.recording = recording
        self.node = node
        self.run_args = args
        self.run_kwargs = kwargs
        self.report = report
        self.claim = threading.Lock()

    def __call__(self) -> None:
        """Entry point on the executor: run unless already claimed (or cancelled)."""
        if self.claim.acquire(blocking=False):
            self.execute()

    def execute(self) -> None:
        """Run the op; the caller holds the claim."""
        node = self.node
        fn = node.fn
        assert fn is not None
        saved = tracer.begin_op(self.recording)
        thread = threading.current_thread().name
        cpu0 = time.thread_time()
        start = time.perf_counter()
        try:
            if node.context is not None:
                value = node.context.run(fn, *self.run_args, **self.run_kwargs)
            else:
                value = fn(*self.run_args, **self.run_kwargs)
            ok = True
        except BaseException as exc:
            value, ok = exc, False
        end = time.perf_counter()
        cpu = time.thread_time() - cpu0
        tracer.end_op(saved)
        self.report((node.id, ok, value, start, end, thread, cpu))


class _Run:
    """One materialization: the state sets of the module docstring and their transitions."""

    def __init__(
        self, recording: Recording, batch: list[int], executor: Executor, limit: int | None
    ) -> None:
        self.rec = recording
        self.batch = batch
        self.executor = executor
        self.limit = limit if limit is not None else math.inf
        self.waiting: dict[int, int] = {}
        self.ready_ops: list[int] = []
        self.ready_glue: list[int] = []
        self.inflight: dict[int, _Task] = {}
        self.failures: dict[int, BaseException] = {}
        self.cutoff: float = math.inf  # id of the earliest failure so far
        self.completions: queue.SimpleQueue[Report] = queue.SimpleQueue()

    # --- the loop ---------------------------------------------------------------

    def run(self) -> None:
        try:
            self._prepare()
            while True:
                self._dispatch()
                if not self._busy():
                    break
                self._complete(self._wait())
        except BaseException as interrupt:  # Ctrl-C or an internal error: stop everything
            self._cancel_unfinished(interrupt)
            raise
        if self.failures:
            winner = self.failures[min(self.failures)]
            self._cancel_unfinished(winner)
            raise winner
        self._check_all_done()

    def _prepare(self) -> None:
        graph, state = self.rec.graph, self.rec.state
        members = set(self.batch)
        for node in self.batch:
            count = 0
            for pred in graph.pred[node]:
                status = state[pred]["status"]
                if status is Status.DONE:
                    continue
                if pred in members:
                    count += 1
                elif status in FINISHED:  # failed or cancelled in an earlier batch
                    self._fail(node, state[pred]["error"], note=False)
                    break
            else:
                self.waiting[node] = count
                if count == 0:
                    self._push_ready(node)

    def _busy(self) -> bool:
        cutoff = self.cutoff
        if cutoff == math.inf:
            return bool(self.inflight)
        return any(node < cutoff for node in self.inflight)

    def _dispatch(self) -> None:
        while True:
            while self.ready_ops and len(self.inflight) < self.limit:
                node = heapq.heappop(self.ready_ops)
                if node < self.cutoff:
                    self._start_op(node)
            if not self.ready_glue:
                return
            while self.ready_glue:
                node = heapq.heappop(self.ready_glue)
                if node < self.cutoff:
                    self._run_glue(node)

    def _wait(self) -> Report:
        """Next completion; meanwhile run a dispatched op no worker has started."""
        timeout = HELP_AFTER
        while True:
            try:
                return self.completions.get(timeout=timeout)
            except queue.Empty:
                pass
            # Waiting in short, growing slices keeps Ctrl-C prompt and lets this
            # thread notice a saturated (or nested, exhausted) pool.
            timeout = HELP_AFTER if self._help() else min(timeout * 2, MAX_WAIT_SLICE)

    def _help(self) -> bool:
        for task in reversed(list(self.inflight.values())):
            if task.claim.acquire(blocking=False):
                task.execute()  # nobody started it: run it on this thread
                return True
        return False

    # --- transitions ------------------------------------------------------------

    def _push_ready(self, node: int) -> None:
        if self.rec.nodes[node].kind is NodeKind.OP:
            heapq.heappush(self.ready_ops, node)
        else:
            heapq.heappush(self.ready_glue, node)

    def _release(self, node: int, *, dispatched: bool) -> None:
        """Count ``node`` done for its successors (or only *started*, if dispatched)."""
        waiting = self.waiting
        for succ, edge in self.rec.graph.succ[node].items():
            if succ not in waiting or (edge.get("order") == "dispatch") != dispatched:
                continue
            waiting[succ] -= 1
            if waiting[succ] == 0:
                self._push_ready(succ)

    def _arguments(self, record: Node, copy_refs: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if not record.refs:
            return record.args, dict(record.kwargs)
        values = self.rec.values
        args = tuple([resolve(a, values, copy_refs=copy_refs) for a in record.args])
        kwargs = {k: resolve(v, values, copy_refs=copy_refs) for k, v in record.kwargs.items()}
        return args, kwargs

    def _start_op(self, node: int) -> None:
        record = self.rec.nodes[node]
        # A later in-place change of an object this op reads must not reach it.
        copy_refs = any(e.get("order") == "dispatch" for e in self.rec.graph.succ[node].values())
        args, kwargs = self._arguments(record, copy_refs)
        task = _Task(self.rec, record, args, kwargs, self.completions.put)
        self.inflight[node] = task
        self.rec.state[node]["status"] = Status.RUNNING
        try:
            self.executor.submit(task)
        except RuntimeError:  # executor shut down (e.g. interpreter exit): run it here
            if task.claim.acquire(blocking=False):
                task.execute()
        self._release(node, dispatched=True)

    def _run_glue(self, node: int) -> None:
        record = self.rec.nodes[node]
        assert record.fn is not None
        saved = tracer.begin_op(self.rec)
        start = time.perf_counter()
        try:
            args, kwargs = self._arguments(record, False)
            value, ok = record.fn(*args, **kwargs), True
        except BaseException as exc:
            value, ok = exc, False
        finally:
            tracer.end_op(saved)
        end = time.perf_counter()
        self._finish(node, ok, value, start, end, threading.current_thread().name, end - start)

    def _complete(self, report: Report) -> None:
        node = report[0]
        if self.inflight.pop(node, None) is None:
            return  # abandoned after a failure
        self._finish(*report)

    def _finish(
        self, node: int, ok: bool, value: Any, start: float, end: float, thread: str, cpu: float
    ) -> None:
        state = self.rec.state[node]
        t0 = self.rec.t0
        state.update(start=start - t0, end=end - t0, thread=thread, cpu=cpu)
        if ok:
            self.rec.values[node] = value
            state["status"] = Status.DONE
            record = self.rec.nodes[node]
            if record.kind is not NodeKind.OP:
                self._release(node, dispatched=True)
            self._release(node, dispatched=False)
        else:
            state["status"] = Status.FAILED
            self._fail(node, value, note=True)

    def _fail(self, node: int, exc: BaseException, *, note: bool) -> None:
        state = self.rec.state[node]
        state["error"] = exc
        if state["status"] is not Status.FAILED:
            state["status"] = Status.CANCELLED
        if note:
            record = self.rec.nodes[node]
            label = record.name if record.kind is NodeKind.OP else f"glue {record.name}"
            add_op_note(exc, node, label, str(record.location))
        self.failures[node] = exc
        self.cutoff = min(self.cutoff, node)

    def _cancel_unfinished(self, error: BaseException) -> None:
        state = self.rec.state
        for node in self.batch:
            task = self.inflight.get(node)
            if task is not None:
                task.claim.acquire(blocking=False)  # an unstarted task will never start
            if state[node]["status"] not in FINISHED:
                state[node]["status"] = Status.CANCELLED
                state[node]["error"] = error
        self.inflight.clear()

    def _check_all_done(self) -> None:
        state = self.rec.state
        stuck = [n for n in self.batch if state[n]["status"] is not Status.DONE]
        if stuck:
            raise XCSError(f"internal: nodes {stuck} did not run; please report this bug")
