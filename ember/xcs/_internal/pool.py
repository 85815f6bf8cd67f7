"""Where ops run: the shared thread pool, and how one materialization hands ops to it.

Two ways to hand over, chosen by the executor:

* :class:`RunnerHandoff` for a ``ThreadPoolExecutor`` (the shared pool included):
  ops go into a deque, and up to ``slots`` *runner* tasks on the pool pop and run
  them until it is empty. A pool task per runner, not per op, costs about a tenth
  of ``submit`` per op. When the pool does not start our runners (it is saturated,
  or exhausted by nested jitted calls waiting inside ops, or shut down) the waiting
  thread *helps*: it runs queued ops itself, oldest first, so nesting never
  deadlocks -- or, under ``jit(timeout=)``, starts them on an overflow thread it can
  stop waiting for (:class:`Helper`), so a full pool never outlasts a timeout.
* :class:`SubmitHandoff` for any other in-process ``Executor``: one executor task
  per op; a waiting thread runs submitted ops the executor has not started.
  (Executors in other processes: ``remote.py``.)

Either way an op is a :class:`Task` that can be *claimed* exactly once, by the thread
that runs it or by the engine cancelling it; a claimed task never starts again.
Reports of finished tasks go to the materializing thread through a queue.

This module owns the shared pool: created on first use with ``EMBER_XCS_MAX_WORKERS``
workers (default 64), shut down at interpreter exit, forgotten in a forked child. Its
workers are daemon threads (:class:`_DaemonThreadPool`): interpreter exit never waits
for an op still running, so Ctrl-C, or a timeout or failure that ends the program,
ends it at once -- such ops are cut off wherever they are.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import thread as _futures_thread
from typing import Any, Protocol

from ember import _stop
from ember.xcs._internal import tracer
from ember.xcs._internal.errors import XCSError
from ember.xcs._internal.ir import Node
from ember.xcs._internal.limits import Slot, hold, unhold

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "Handoff",
    "Report",
    "RunnerHandoff",
    "SubmitHandoff",
    "Task",
    "default_executor",
]

DEFAULT_MAX_WORKERS = 64

Report = tuple[int, bool, Any, float, float, str, float]
"""(node, ok, value or exception, start, end, thread name, thread CPU seconds)."""


class Task(_stop.Stop):
    """One run of an op, claimable exactly once.

    It is also the op's stop signal (:mod:`ember._stop`): the engine stops a task whose
    result it will drop, and the thread running it makes it current meanwhile, so a
    model call in the op sends no further retries.
    """

    __slots__ = (
        "_token",
        "abandoned",
        "args",
        "cached",
        "ended",
        "handle",
        "inline",
        "kwargs",
        "node",
        "recording",
        "report",
        "slot",
        "started",
    )

    def __init__(
        self,
        recording: tracer.Recording,
        node: Node,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        report: Callable[[Report], None],
        slot: Slot | None = None,
    ) -> None:
        super().__init__(_stop.current())  # made inside an op: stopping that op stops this
        self.recording = recording
        self.node = node
        self.slot = slot  # of the op's max_concurrency limit, given back when it ends
        self.args = args
        self.kwargs = kwargs
        self.report = report
        self.started: float | None = None  # perf_counter() when the op began running
        self.inline = False  # run by the waiting thread itself (no timeout applies)
        self.handle: Future[Any] | None = None  # the executor's future, for remote runs
        self.abandoned = False  # timed out: the engine no longer waits for it
        self.ended = False  # the op returned or raised (set before its slot is given back)
        self.cached = 0  # calls inside it answered from a cache (protocol.served_from_cache)
        self._token = [True]

    def claim(self) -> bool:
        """Take the right to run (or cancel) this task; True for exactly one caller."""
        try:
            self._token.pop()  # atomic: only one pop can succeed
        except IndexError:
            return False
        return True

    def cancel(self) -> bool:
        """Make sure the task never starts; False if it already has."""
        if self.handle is not None:  # sent away: only its future can stop it
            return self.handle.cancel()
        if not self.claim():
            return False
        if self.slot is not None:
            self.slot.give_back()
        return True

    def __call__(self) -> None:
        """Executor entry point: run unless claimed already (run elsewhere or cancelled)."""
        if self.claim():
            self.execute()

    def execute(
        self, *, inline: bool = False, thread: str | None = None, entered: bool = False
    ) -> bool:
        """Run the op on this thread and report; the caller has claimed the task.

        Args:
            inline: The materializing thread runs the op itself. A ``KeyboardInterrupt``
                (or any other non-``Exception``) arriving then is not the op's failure:
                it propagates, and the engine cancels what has not started.
            thread: This thread's name, when the caller already knows it.
            entered: The caller already marked this thread as running ops of the
                task's recording (a runner does once for all its tasks).

        Returns:
            Whether the op succeeded.
        """
        node = self.node
        fn = node.fn
        assert fn is not None
        saved = None if entered else tracer.begin_op(self.recording)
        if thread is None:
            thread = threading.current_thread().name
        cpu0 = time.thread_time()
        self.inline = inline
        slot = self.slot
        held = hold(slot.limit) if slot is not None else None
        self.started = start = time.perf_counter()
        signal = _stop.enter(self)
        try:
            if node.context is not None:  # shared by ops: each enters its own copy
                value = node.context.copy().run(fn, *self.args, **self.kwargs)
            else:
                value = fn(*self.args, **self.kwargs)
            ok = True
        except Exception as exc:
            value, ok = exc, False
        except BaseException as exc:
            if inline:
                raise
            value, ok = exc, False  # SystemExit in a worker: the op's failure
        finally:
            self.ended = True
            if held is not None and slot is not None:
                unhold(held)
                slot.give_back()
            if saved is not None:
                tracer.end_op(saved)
            _stop.leave(signal)
        end = time.perf_counter()
        cpu = time.thread_time() - cpu0
        self.report((node.id, ok, value, start, end, thread, cpu))
        return ok


class Handoff(Protocol):
    """How one materialization hands its ops to threads."""

    def start(self, tasks: list[Task]) -> None:
        """Hand over tasks, in program order (they run at once, or when threads free)."""

    def help(self) -> bool:
        """Run one handed-over task if no worker will soon (see :class:`Helper`)."""

    def abandon(self, task: Task) -> None:
        """The engine no longer waits for ``task`` (it timed out); it may still run."""


def _claim_next(queue: collections.deque[Task], stop: list[float] | None) -> Task | None:
    """Claim the oldest unclaimed task of ``queue`` (program order), or None.

    ``stop[0]`` is the id of the earliest op seen failing: later ops are left alone
    (the engine cancels them).
    """
    while True:
        try:
            task = queue.popleft()
        except IndexError:
            return None
        if stop is not None and task.node.id > stop[0]:
            continue
        if task.claim():
            return task


class Helper:
    """How a waiting thread runs a queued task the pool is not getting to.

    Without a timeout it runs the task itself (``inline``): nothing is cheaper, and a
    Ctrl-C then reaches the waiting thread at once. With ``jit(timeout=)`` a thread
    that is running an op cannot also watch the clock, so the task runs on a fresh
    *overflow* thread instead, and the waiter keeps timing it: one overflow thread
    at a time per waiter, plus one more each time the previous one's op outlives the
    timeout (that op is abandoned; it goes on in the background).
    """

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._current: Task | None = None  # the task on the live overflow thread

    def free(self) -> bool:
        """Whether the waiter may help now."""
        task = self._current
        if task is None or task.ended or self.timeout is None:
            return True
        started = task.started
        return started is not None and time.perf_counter() - started >= self.timeout

    def run(self, task: Task, stop: list[float] | None, done: Callable[[], None]) -> None:
        """Run a claimed task, then call ``done`` (on the thread that ran it)."""
        if self.timeout is None:
            try:
                if not task.execute(inline=True) and stop is not None:
                    stop[0] = min(stop[0], task.node.id)
            finally:
                done()
            return
        self._current = task

        def overflow() -> None:
            try:
                if not task.execute() and stop is not None:
                    stop[0] = min(stop[0], task.node.id)
            finally:
                done()

        threading.Thread(target=overflow, name="xcs-overflow", daemon=True).start()


class RunnerHandoff:
    """Ops in a deque, drained by at most ``slots`` runner tasks on a thread pool.

    Counters (under ``_lock``): ``_active`` threads are draining the deque (runners,
    and a helping waiter); ``_queued`` runners were submitted but have not started.
    Whenever the deque is not empty, some runner is active or queued, or a waiter
    helps: :meth:`_ensure_runner` runs after every change that could break this. A
    thread whose op was abandoned (timed out) stops counting at once, and leaves
    when the op ends.
    """

    def __init__(self, pool: ThreadPoolExecutor, slots: int, timeout: float | None = None) -> None:
        self._pool = pool
        self._slots = slots
        self._queue: collections.deque[Task] = collections.deque()
        self._lock = threading.Lock()
        self._active = 0
        self._queued = 0
        self._no_pool = False  # the pool refused work (shut down): helpers do it all
        # The id of the earliest op seen failing: runners start nothing after it (the
        # engine cancels those), so a failure stops the queue at once, not one op late.
        self._stop = [math.inf]
        self._timed = timeout is not None
        self._helper = Helper(timeout)

    def start(self, tasks: list[Task]) -> None:
        self._queue.extend(tasks)
        self._ensure_runner()

    def _ensure_runner(self) -> None:
        """Submit a runner per queued task, up to the free slots.

        Active runners may be busy with a long op, so they do not count as able to
        take a new task; a runner that finds the queue empty simply ends.
        """
        with self._lock:
            wanted = min(len(self._queue), self._slots - self._active - self._queued)
            if self._no_pool or wanted <= 0:
                return
            self._queued += wanted
        for submitted in range(wanted):
            try:
                self._pool.submit(self._runner)
            except RuntimeError:  # "cannot schedule new futures after shutdown"
                with self._lock:
                    self._queued -= wanted - submitted
                    self._no_pool = True
                return

    def _runner(self) -> None:
        with self._lock:
            self._queued -= 1
            if self._active >= self._slots:
                return  # enough threads are draining (a waiter may be helping)
            self._active += 1
        queue, stop, timed = self._queue, self._stop, self._timed
        thread = threading.current_thread().name
        saved = None  # every task here belongs to one recording: enter it once
        try:
            while True:
                try:
                    task = queue.popleft()
                except IndexError:
                    with self._lock:
                        if queue:  # appended after our pop, before start() saw us: go on
                            continue
                        self._active -= 1
                        return
                if task.node.id > stop[0] or not task.claim():
                    continue
                if saved is None:
                    saved = tracer.begin_op(task.recording)
                if not task.execute(thread=thread, entered=True):
                    stop[0] = min(stop[0], task.node.id)
                if timed:
                    with self._lock:
                        if task.abandoned:
                            return  # no longer counted: see abandon()
        finally:
            if saved is not None:
                tracer.end_op(saved)

    def help(self) -> bool:
        with self._lock:
            # Help only when no runner will get to the queue: the runners we asked
            # for have not started (pool saturated or exhausted by nesting), or the
            # pool is gone, or nobody is draining at all.
            drained = self._active > 0 and self._queued == 0 and not self._no_pool
            if not self._queue or drained or self._active >= self._slots:
                return False
            if not self._helper.free():
                return False
            task = _claim_next(self._queue, self._stop)
            if task is None:
                return False
            self._active += 1
        self._helper.run(task, self._stop, functools.partial(self._helped, task))
        return True

    def _helped(self, task: Task) -> None:
        with self._lock:
            if not task.abandoned:
                self._active -= 1
        self._ensure_runner()

    def abandon(self, task: Task) -> None:
        with self._lock:
            if task.started is not None and not task.ended and not task.abandoned:
                task.abandoned = True
                self._active -= 1  # its thread is stuck: it no longer drains the queue
        self._ensure_runner()


class SubmitHandoff:
    """One executor task per op, for in-process executors that are not thread pools.

    A waiting thread may run a submitted op the executor has not started yet (it
    claims the task first), so nested jitted calls never exhaust the executor.
    """

    def __init__(self, executor: Executor, timeout: float | None = None) -> None:
        self._executor = executor
        self._submitted: collections.deque[Task] = collections.deque()
        self._helper = Helper(timeout)

    def start(self, tasks: list[Task]) -> None:
        self._submitted.extend(tasks)
        for task in tasks:
            with contextlib.suppress(RuntimeError):  # shut down: the waiting thread runs it
                self._executor.submit(task)

    def help(self) -> bool:
        if not self._helper.free():
            return False
        task = _claim_next(self._submitted, None)
        if task is None:
            return False
        self._helper.run(task, None, _nothing)
        return True

    def abandon(self, task: Task) -> None:
        task.abandoned = True


def _nothing() -> None:
    pass


class _DaemonThreadPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose workers never hold up interpreter exit.

    ``ThreadPoolExecutor`` starts non-daemon workers and joins them all at exit
    (``concurrent.futures`` registers that join with ``threading``), so a program
    ended by Ctrl-C, an ``OpTimeoutError`` or any exception would wait for every op
    still running -- model calls no one will read, billed meanwhile -- and a second
    Ctrl-C would interrupt that join with a ``threading`` traceback. These workers
    are daemon threads, left out of that join: at exit, ops still running are cut
    off wherever they are. Everything else is ``ThreadPoolExecutor``'s own: idle
    workers reused, at most ``max_workers``, ``shutdown``.
    """

    def _adjust_thread_count(self) -> None:
        # ThreadPoolExecutor._adjust_thread_count (CPython 3.11-3.14), but a daemon
        # worker not put in concurrent.futures.thread._threads_queues (joined at exit).
        if self._idle_semaphore.acquire(timeout=0):
            return

        def wake(_: object, work_queue: Any = self._work_queue) -> None:
            work_queue.put(None)  # the pool was collected: let the workers end

        threads = len(self._threads)
        if threads >= self._max_workers:
            return
        me = weakref.ref(self, wake)
        args: tuple[Any, ...]
        if hasattr(self, "_create_worker_context"):  # Python 3.14
            args = (me, self._create_worker_context(), self._work_queue)
        else:
            args = (me, self._work_queue, self._initializer, self._initargs)
        worker = threading.Thread(
            name=f"{self._thread_name_prefix}_{threads}",
            target=_futures_thread._worker,
            args=args,
            daemon=True,
        )
        worker.start()
        self._threads.add(worker)  # type: ignore[attr-defined]  # a set, typed AbstractSet


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
                _pool = _DaemonThreadPool(_pool_size(), thread_name_prefix="xcs-worker")
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
