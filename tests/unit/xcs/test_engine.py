"""The engine: dataflow order, limits, failures in program order, executors, nesting."""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest

from ember import xcs
from ember.xcs._internal.ir import Status
from tests.helpers import LOG, OpError, echo, fail, run_script, run_traced, slow_echo, upper


def test_a_node_starts_when_its_own_inputs_are_done() -> None:
    # A (0.4 s) || B (0.05 s) -> C (0.4 s): ready-queue dataflow takes ~0.45 s, not 0.8 s.
    @xcs.jit
    def program() -> Any:
        a = slow_echo("a", 0.4)
        b = slow_echo("b", 0.05)
        c = slow_echo(b, 0.4)
        return a, c

    assert program() == ("a", "b")
    by_arg = {c.args: c for c in LOG.entries}
    a, c = by_arg["('a', 0.4)"], by_arg["('b', 0.4)"]
    assert c.start < a.end  # C started while A was still running
    # Level by level, C would start after A: the span at least both their run times.
    assert LOG.span() < (a.end - a.start) + (c.end - c.start)


def test_ops_run_on_worker_threads_and_glue_inline() -> None:
    @xcs.jit
    def program() -> Any:
        return [echo(i).upper() for i in range(3)]

    trace = xcs.trace(program)
    kinds = {n: a for n, a in trace.graph.nodes(data=True)}
    main = threading.current_thread().name
    assert all(a["thread"] != main for a in kinds.values() if a["kind"] == "op")
    assert all(a["thread"] == main for a in kinds.values() if a["kind"] == "glue")


def test_max_workers_caps_concurrency() -> None:
    @xcs.jit(max_workers=2)
    def program() -> Any:
        return [slow_echo(i, 0.05) for i in range(6)]

    assert program() == list(range(6))
    assert LOG.max_overlap() <= 2


def test_max_workers_one_runs_in_program_order_and_nothing_after_a_failure() -> None:
    @xcs.jit(max_workers=1)
    def program() -> Any:
        ok = echo("first")
        bad = fail("stop")
        later = [echo(i) for i in range(5)]
        return ok, bad, later

    with pytest.raises(OpError, match="stop"):
        program()
    assert LOG.names() == ["echo", "fail"]


def test_dependents_of_a_failed_op_never_run_and_are_cancelled() -> None:
    @xcs.jit
    def program() -> Any:
        bad = fail("boom", delay=0.05)
        return upper(bad), echo("independent-but-later")

    trace_error = None
    with pytest.raises(OpError) as info:
        program()
    trace_error = info.value
    assert "upper" not in LOG.names()
    assert any("fail" in note for note in trace_error.__notes__)


def test_earliest_failure_in_program_order_wins_deterministically() -> None:
    @xcs.jit
    def program() -> Any:
        slow = fail("early but slow", delay=0.1)
        fast = fail("late but fast")
        return slow, fast

    for _ in range(3):
        with pytest.raises(OpError, match="early but slow"):
            program()


def test_a_failure_is_recorded_on_the_graph() -> None:
    def program() -> Any:
        a = echo("fine")
        b = fail("bad")
        c = upper(b)
        return a, c

    with pytest.raises(OpError):
        xcs.trace(program)
    from ember.xcs._internal.engine import Engine
    from ember.xcs._internal.tracer import Recording

    rec = Recording(Engine())
    with pytest.raises(OpError) as info:
        run_traced(rec, program)
    statuses = {n.name: rec.state[n.id].status for n in rec.nodes if n.kind == "op"}
    assert statuses == {"echo": Status.DONE, "fail": Status.FAILED, "upper": Status.CANCELLED}
    failed = next(n.id for n in rec.nodes if n.name == "fail")
    assert rec.state[failed].error is info.value


def test_contextvars_are_captured_at_call_time() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    @xcs.op
    def read() -> str:
        return var.get()

    @xcs.jit
    def program() -> Any:
        var.set("first")
        a = read()
        var.set("second")
        b = read()
        return a, b

    assert program() == ("first", "second")


def test_a_custom_thread_pool_executor_is_used() -> None:
    with ThreadPoolExecutor(2, thread_name_prefix="custom") as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return [slow_echo(i, 0.02) for i in range(4)]

        assert program() == [0, 1, 2, 3]
    assert {c.thread.split("_")[0] for c in LOG.entries} == {"custom"}
    assert LOG.max_overlap() <= 2


class OneThreadPerTask(Executor):
    """An executor that is not a ThreadPoolExecutor: one new thread per task."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            future.set_result(fn(*args, **kwargs))

        threading.Thread(target=run, name="per-task").start()
        return future


def test_any_executor_gets_one_task_per_op() -> None:
    @xcs.jit(executor=OneThreadPerTask())
    def program() -> Any:
        return [slow_echo(i, 0.05) for i in range(4)]

    program()  # the first call also rewrites the function: time the second
    LOG.clear()
    start = time.perf_counter()
    assert program() == [0, 1, 2, 3]
    assert time.perf_counter() - start < 0.5 * LOG.busy_seconds()
    assert {c.thread for c in LOG.entries} == {"per-task"}


@pytest.mark.timeout(30)
def test_nested_jitted_calls_inside_ops_never_deadlock_a_small_pool() -> None:
    with ThreadPoolExecutor(1) as pool:

        @xcs.jit(executor=pool)
        def leaf(x: int) -> Any:
            return [slow_echo(f"{x}.{i}", 0.01) for i in range(3)]

        @xcs.op
        def middle(x: int) -> Any:
            return leaf(x)  # a jitted call inside an op on the pool's only worker

        @xcs.jit(executor=pool)
        def top() -> Any:
            return [middle(x) for x in range(3)]

        assert top() == [[f"{x}.{i}" for i in range(3)] for x in range(3)]


def test_a_shut_down_pool_falls_back_to_running_on_the_waiting_thread() -> None:
    pool = ThreadPoolExecutor(2)
    pool.shutdown()

    @xcs.jit(executor=pool)
    def program() -> Any:
        return [echo(i) for i in range(3)]

    assert program() == ["0", "1", "2"]
    assert {c.thread for c in LOG.entries} == {threading.current_thread().name}


def test_an_op_still_running_after_a_failure_does_not_keep_earlier_ops_from_running() -> None:
    # Program order: fast(0), slow(1), needs_slow(2), fail(3, after fast), long(4).
    # With two slots, long(4) starts before fail(3) fails; needs_slow(2) comes before
    # the failure in program order, so it must still run although long(4) is busy.
    @xcs.jit(max_workers=2)
    def program() -> Any:
        fast = echo("fast")
        slow = slow_echo("slow", 0.1)
        needs_slow = upper(slow)
        bad = fail(fast, delay=0.02)
        long = slow_echo("long", 0.4)
        return needs_slow, bad, long

    with pytest.raises(OpError):
        program()
    assert "upper" in LOG.names()


def test_an_op_after_a_failure_that_finishes_anyway_is_dropped() -> None:
    from ember.xcs._internal.engine import Engine
    from ember.xcs._internal.tracer import Recording

    def program() -> Any:
        first = slow_echo("first", 0.2)
        bad = fail("bad")
        later = echo("later")  # starts at once, finishes while ``first`` still runs
        return first, bad, later

    rec = Recording(Engine())
    with pytest.raises(OpError) as info:
        run_traced(rec, program)
    by_name = {n.name: n.id for n in rec.nodes if n.kind == "op"}
    later = rec.state[by_name["echo"]]
    assert later.status is Status.CANCELLED and later.error is info.value
    assert rec.state[by_name["slow_echo"]].status is Status.DONE
    assert by_name["echo"] not in rec.values


class WrappedPool(Executor):
    """A thread pool behind an Executor that is not a ThreadPoolExecutor."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(workers)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, **kwargs: Any) -> None:
        self.pool.shutdown(wait, **kwargs)


@pytest.mark.timeout(30)
def test_nested_jitted_calls_never_deadlock_a_custom_executor() -> None:
    executor = WrappedPool(2)

    @xcs.jit(executor=executor)
    def inner(x: int) -> Any:
        return [slow_echo(x * 2, 0.02), slow_echo(x * 2 + 1, 0.02)]

    @xcs.op
    def outer_op(x: int) -> Any:
        return inner(x)

    @xcs.jit(executor=executor)
    def outer() -> Any:
        return [outer_op(x) for x in range(4)]

    assert outer() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    executor.shutdown()


@pytest.mark.timeout(30)
def test_a_one_worker_pool_that_is_briefly_busy_never_hangs() -> None:
    with ThreadPoolExecutor(1) as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return [slow_echo(i, 0.1) for i in range(3)]

        pool.submit(time.sleep, 0.05)  # the only worker is busy when the call starts
        assert program() == [0, 1, 2]


@pytest.mark.timeout(60)
def test_many_callers_on_a_one_worker_shared_pool_all_finish() -> None:
    code = """
import threading
from ember import xcs
@xcs.op
def ask(i):
    return i
@xcs.jit
def f(k):
    return [ask(k), ask(k + 1), ask(k + 2)]
def worker():
    for k in range(150):
        assert f(k) == [k, k + 1, k + 2]
threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join(timeout=30)
print(sum(t.is_alive() for t in threads))
"""

    env = {"EMBER_XCS_MAX_WORKERS": "1"}
    out = run_script(code, env=env)
    assert out.stdout.strip() == "0", out.stderr


def test_an_object_argument_read_by_an_op_is_not_changed_under_it() -> None:
    class Basket:
        def __init__(self) -> None:
            self.items = [1]

        def add(self, item: int) -> None:
            self.items.append(item)

    @xcs.op
    def make() -> Basket:
        return Basket()

    @xcs.op
    def read(basket: Basket) -> list[int]:
        time.sleep(0.05)
        return list(basket.items)

    def program() -> Any:
        basket = make()
        seen = read(basket)
        basket.add(2)  # plain Python: after ``read`` returned
        return seen, list(basket.items)

    assert xcs.jit(program)() == program() == ([1], [1, 2])


@pytest.mark.timeout(30)
def test_keyboard_interrupt_while_the_caller_runs_an_op_propagates_promptly() -> None:
    code = """
import os, signal, threading, time
from concurrent.futures import ThreadPoolExecutor
from ember import xcs
calls = []
@xcs.op
def slow(i):
    calls.append(i)
    time.sleep(0.5)
    return i
pool = ThreadPoolExecutor(1)
pool.submit(time.sleep, 3)  # the only worker is busy: the caller runs the ops itself
@xcs.jit(executor=pool)
def f():
    return [slow(i) for i in range(4)]
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
start = time.perf_counter()
try:
    f()
except KeyboardInterrupt as exc:
    # flush: os._exit skips it, and stdout is a pipe (buffered unless PYTHONUNBUFFERED)
    print(round(time.perf_counter() - start, 1), getattr(exc, "__notes__", None), calls, flush=True)
os._exit(0)
"""

    out = run_script(code, timeout=30)
    printed = out.stdout.strip().split(" ", 2)
    assert len(printed) == 3, (out.returncode, out.stdout, out.stderr)
    elapsed, notes, calls = printed
    assert float(elapsed) < 0.4, out.stdout  # not after the op (0.5 s) or the rest
    assert notes == "None"  # never treated as the op's failure
    assert calls == "[0]"


def test_an_op_running_too_long_raises_op_timeout_error_naming_it() -> None:
    @xcs.jit(timeout=0.1)
    def program() -> Any:
        quick = slow_echo("quick", 0.01)
        stuck = slow_echo("stuck", 1.0)  # MARK-stuck
        return quick, stuck

    start = time.perf_counter()
    with pytest.raises(xcs.OpTimeoutError) as info:
        program()
    assert time.perf_counter() - start < 0.6  # not the op's full second
    error = info.value
    assert isinstance(error, TimeoutError) and isinstance(error, xcs.XCSError)
    line = next(
        i for i, t in enumerate(open(__file__), 1) if "MARK-stuck" in t and "next(" not in t
    )
    assert error.op_name == "slow_echo" and error.location == f"{__file__}:{line}"
    assert "timeout=0.1" in str(error)


def test_an_earlier_failure_still_wins_over_a_later_timeout() -> None:
    @xcs.jit(timeout=0.05)
    def program() -> Any:
        first = slow_echo("", 0.04)
        early = fail(first + "early", delay=0.03)  # starts at 0.04 s, fails at 0.07 s
        stuck = slow_echo("stuck", 1.0)  # times out at 0.05 s, but comes later
        return early, stuck

    with pytest.raises(OpError, match="early"):
        program()


def test_ops_within_the_timeout_are_unaffected() -> None:
    @xcs.jit(timeout=1.0)
    def program() -> Any:
        return [slow_echo(i, 0.02) for i in range(5)]

    assert program() == list(range(5))


def test_a_timed_out_op_is_failed_in_the_graph() -> None:
    from ember.xcs._internal.engine import Engine
    from ember.xcs._internal.tracer import Recording

    rec = Recording(Engine(timeout=0.05))
    with pytest.raises(xcs.OpTimeoutError):
        run_traced(rec, lambda: slow_echo("stuck", 0.5))
    op = next(n.id for n in rec.nodes if n.kind == "op")
    assert rec.state[op].status is Status.FAILED
    assert isinstance(rec.state[op].error, xcs.OpTimeoutError)


def test_bad_timeouts_are_rejected() -> None:
    for bad in (0, -1, "1", True):
        with pytest.raises(ValueError, match="timeout"):
            xcs.jit(timeout=bad)  # type: ignore[call-overload]


@pytest.mark.timeout(60)
def test_ctrl_c_while_waiting_cancels_unstarted_ops_and_reraises_promptly() -> None:
    code = """
import os, signal, threading, time
from ember import xcs
calls = []
@xcs.op
def slow(i):
    calls.append(i)
    time.sleep(1.0)
    return i
@xcs.jit(max_workers=2)
def f():
    return [slow(i) for i in range(6)]
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
start = time.perf_counter()
try:
    f()
except KeyboardInterrupt as exc:
    elapsed = time.perf_counter() - start
    time.sleep(1.2)  # let the two running ops finish: nothing else may start
    print(round(elapsed, 1), getattr(exc, "__notes__", None), sorted(calls))
"""

    out = run_script(code, timeout=30)
    elapsed, notes, calls = out.stdout.strip().split(" ", 2)
    assert float(elapsed) < 0.45, out.stdout + out.stderr
    assert notes == "None" and calls == "[0, 1]"
