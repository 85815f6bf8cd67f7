"""Handing ops to threads: claimable tasks, runner dispatch, helping, the shared pool."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import pytest

from ember.xcs._internal import pool
from ember.xcs._internal.engine import Engine
from ember.xcs._internal.ir import Node, NodeKind
from ember.xcs._internal.tracer import Recording
from tests.helpers import run_script


def make_task(fn: Any, *args: Any, reports: queue.SimpleQueue[Any]) -> pool.Task:
    node = Node(0, NodeKind.OP, "t", fn, args)
    return pool.Task(Recording(Engine()), node, args, {}, reports.put)


def test_a_task_is_claimed_exactly_once() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    task = make_task(lambda: 1, reports=reports)
    wins = []
    threads = [threading.Thread(target=lambda: wins.append(task.claim())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    task()  # claimed already: does not run
    assert reports.empty()


def test_a_task_reports_its_value_or_exception_with_timing() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    make_task(lambda x: x * 2, 21, reports=reports)()
    make_task(lambda: 1 / 0, reports=reports)()
    node, ok, value, start, end, thread, cpu = reports.get()
    assert (node, ok, value) == (0, True, 42) and end >= start and cpu >= 0
    assert thread == threading.current_thread().name
    _, ok, error, *_ = reports.get()
    assert not ok and isinstance(error, ZeroDivisionError)


def test_runner_dispatch_uses_at_most_its_slots() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    running = []
    lock = threading.Lock()
    peak = [0]

    def work() -> None:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.02)
        with lock:
            running.pop()

    with ThreadPoolExecutor(8) as executor:
        dispatch = pool.RunnerHandoff(executor, slots=3)
        for _ in range(9):
            dispatch.start([make_task(work, reports=reports)])
        for _ in range(9):
            reports.get(timeout=5)
    assert peak[0] <= 3


def test_help_runs_a_queued_task_only_when_the_pool_does_not() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    gate = threading.Event()
    with ThreadPoolExecutor(1) as executor:
        executor.submit(gate.wait)  # the only worker is busy
        dispatch = pool.RunnerHandoff(executor, slots=4)
        dispatch.start([make_task(lambda: "helped", reports=reports)])
        assert dispatch.help()  # our runner is stuck behind the busy worker
        assert reports.get(timeout=1)[2] == "helped"
        assert not dispatch.help()  # nothing queued any more
        gate.set()


def test_under_a_timeout_help_runs_the_task_on_an_overflow_thread() -> None:
    # The waiting thread must keep watching the clock, so it does not run the op.
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    gate, release = threading.Event(), threading.Event()
    with ThreadPoolExecutor(1) as executor:
        executor.submit(gate.wait)  # the only worker is busy
        dispatch = pool.RunnerHandoff(executor, slots=4, timeout=0.05)
        hung = make_task(lambda: release.wait(5), reports=reports)
        quick = make_task(lambda: threading.current_thread().name, reports=reports)
        dispatch.start([hung, quick])
        assert dispatch.help()  # returns at once: the hung op runs elsewhere
        while hung.started is None:
            time.sleep(0.001)
        assert not dispatch.help()  # one overflow thread at a time...
        time.sleep(0.06)
        assert dispatch.help()  # ...until its op outlives the timeout (abandoned)
        assert reports.get(timeout=1)[2] == "xcs-overflow"
        release.set()
        gate.set()


def test_an_abandoned_runner_stops_counting_toward_the_calls_threads() -> None:
    # One slot (max_workers=1), its runner stuck in an op the engine abandoned: the
    # call's next op must get a thread of its own, not wait behind the stuck one.
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    release = threading.Event()
    with ThreadPoolExecutor(2) as executor:
        dispatch = pool.RunnerHandoff(executor, slots=1, timeout=0.05)
        stuck = make_task(lambda: release.wait(5), reports=reports)
        dispatch.start([stuck])
        while stuck.started is None:
            time.sleep(0.001)
        dispatch.abandon(stuck)
        dispatch.start([make_task(lambda: "next", reports=reports)])
        assert reports.get(timeout=2)[2] == "next"
        release.set()


def test_handoff_for_chooses_by_executor_kind() -> None:
    from concurrent.futures import ProcessPoolExecutor

    from ember.xcs._internal.engine import handoff_for
    from ember.xcs._internal.remote import RemoteHandoff

    with ThreadPoolExecutor(3) as executor:
        assert isinstance(handoff_for(executor, None), pool.RunnerHandoff)
    assert isinstance(handoff_for(None, 2), pool.RunnerHandoff)

    class Other(Executor):
        pass

    assert isinstance(handoff_for(Other(), None), pool.SubmitHandoff)
    with ProcessPoolExecutor(1) as processes:
        assert isinstance(handoff_for(processes, None), RemoteHandoff)


def test_the_shared_pool_is_created_once_with_the_configured_size() -> None:
    assert pool.default_executor() is pool.default_executor()
    code = "from ember.xcs._internal import pool; print(pool.default_executor()._max_workers)"
    env = {"EMBER_XCS_MAX_WORKERS": "5"}
    out = run_script(code, env=env)
    assert out.stdout.strip() == "5"


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_pool_size_is_a_clear_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBER_XCS_MAX_WORKERS", value)
    with pytest.raises(pool.XCSError, match="EMBER_XCS_MAX_WORKERS"):
        pool._pool_size()


def test_a_forked_child_gets_a_fresh_pool() -> None:
    code = """
import os
from ember import xcs
@xcs.op
def f(x):
    return x * 2
@xcs.jit
def g(n):
    return [f(i) for i in range(n)]
assert g(3) == [0, 2, 4]
pid = os.fork()
if pid == 0:
    ok = g(4) == [0, 2, 4, 6]
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    out = run_script(code, timeout=60)
    assert out.stdout.strip() == "0", out.stderr


def test_a_helping_caller_runs_queued_ops_in_program_order() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    order: list[int] = []
    gate = threading.Event()
    with ThreadPoolExecutor(1) as executor:
        executor.submit(gate.wait)
        dispatch = pool.RunnerHandoff(executor, slots=1)
        for i in range(3):
            dispatch.start([make_task(order.append, i, reports=reports)])
        while dispatch.help():
            pass
        gate.set()
    assert order == [0, 1, 2]


def test_submit_dispatch_helps_with_ops_the_executor_has_not_started() -> None:
    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    gate = threading.Event()
    with ThreadPoolExecutor(1) as inner:
        inner.submit(gate.wait)

        class Wrapper(Executor):
            def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                return inner.submit(fn, *args, **kwargs)

        dispatch = pool.SubmitHandoff(Wrapper())
        dispatch.start([make_task(lambda: "helped", reports=reports)])
        assert dispatch.help()
        assert reports.get(timeout=1)[2] == "helped"
        gate.set()


def test_a_value_pending_at_fork_raises_in_the_child() -> None:
    code = """
import os
from ember import xcs
@xcs.op
def ask(i):
    return i
@xcs.jit
def g():
    a = ask(5)
    pid = os.fork()
    if pid == 0:
        if a:  # the child cannot run the parent's pending op
            pass
        os._exit(1)
    os.waitpid(pid, 0)
    return a
try:
    print("parent:", g(), flush=True)
except xcs.XCSError as exc:
    print("child:", "forked" in str(exc), flush=True)
    os._exit(0)
"""
    out = run_script(code, timeout=60)
    assert sorted(out.stdout.split("\n")) == ["", "child: True", "parent: 5"], (
        out.stdout + out.stderr
    )


def test_a_jitted_call_during_interpreter_shutdown_runs_sequentially() -> None:
    code = """
import atexit

def late():
    import threading
    from ember import xcs
    @xcs.op
    def f(x):
        assert threading.current_thread() is threading.main_thread()  # no pool any more
        return x * 2
    @xcs.jit
    def g(n):
        return [f(i) for i in range(n)]
    print("late:", g(3), flush=True)

atexit.register(late)  # registered first, so it runs after xcs shut its pool down
from ember import xcs
@xcs.op
def f(x):
    return x
@xcs.jit
def warm(n):
    return [f(i) for i in range(n)]
print("warm:", warm(2), flush=True)
"""
    out = run_script(code, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["warm: [0, 1]", "late: [0, 2, 4]"]


def test_the_shared_pools_workers_never_hold_up_interpreter_exit() -> None:
    # Daemon threads, left out of the join concurrent.futures does at exit: an op
    # still running when the program ends does not keep the process alive.
    from concurrent.futures import thread as futures_thread

    shared = pool.default_executor()
    names = {shared.submit(lambda: threading.current_thread().name).result() for _ in range(4)}
    workers = [t for t in threading.enumerate() if t.name in names]
    assert workers and all(t.daemon for t in workers)
    assert not set(workers) & set(futures_thread._threads_queues)  # type: ignore[attr-defined]
    assert all(name.startswith("xcs-worker_") for name in names)


def test_a_task_is_the_stop_signal_of_its_op_while_it_runs() -> None:
    from ember import _stop

    reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
    seen = []
    task = make_task(lambda: seen.append((_stop.current(), _stop.stopped())), reports=reports)
    task.stop()
    assert task.claim() and task.execute()
    assert seen == [(task, True)] and _stop.current() is None
    # A task made while an op runs (a nested jitted call) is stopped with that op.
    previous = _stop.enter(task)
    try:
        inner = make_task(lambda: None, reports=reports)
    finally:
        _stop.leave(previous)
    assert inner.is_set()
