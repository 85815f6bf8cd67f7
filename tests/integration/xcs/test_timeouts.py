"""``jit(timeout=)`` is a promise: no wait outlasts it, whatever holds the threads or slots.

A timed-out op keeps running (a thread cannot be stopped): it keeps its pool thread
and its ``max_concurrency`` slot. The calls after it must still honour their own
timeouts -- when every pool thread is held by such ops, when the only slot is, and
when a custom executor never runs anything -- and the error says what the op waited
for. Each hang case runs in a fresh interpreter with a hard timeout (a regression
hangs the script, not the suite); waits that make progress (a legitimately busy
slot) must not time out.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ember import xcs
from tests.helpers import best_seconds, run_script

TIMEOUT = 0.3

# A script's prologue: ops that hang until released (never, here) and a way to time a call.
PROLOGUE = """
import json, os, threading, time
from ember import xcs
forever = threading.Event()

def timed(fn, *args):
    start = time.perf_counter()
    try:
        fn(*args)
    except xcs.OpTimeoutError as error:
        return {"s": time.perf_counter() - start, "error": str(error),
                "waiting_for": error.waiting_for, "op": error.op_name}
    return {"s": time.perf_counter() - start, "error": None}
"""


def _run(body: str, **env: str) -> list[dict[str, Any]]:
    # os._exit: the abandoned ops still hang (the pool's threads would be joined at
    # exit); it skips flushing, so flush first.
    epilogue = "\nimport sys\nsys.stdout.flush()\nos._exit(0)\n"
    out = run_script(PROLOGUE + body + epilogue, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.timeout(90)
def test_a_pool_full_of_abandoned_ops_does_not_outlast_the_next_calls_timeout() -> None:
    # Four workers; the first call leaves four hung ops on them. The second call's ops
    # find no worker: the waiting thread helps, and must still stop at the timeout.
    results = _run(
        f"""
@xcs.op
def hang(i):
    forever.wait()
    return i

@xcs.jit(timeout={TIMEOUT})
def many(n):
    return [hang(i) for i in range(n)]

for n in (4, 2, 2):
    print(json.dumps(timed(many, n)), flush=True)
""",
        EMBER_XCS_MAX_WORKERS="4",
    )
    for result in results:
        assert result["error"] is not None and result["op"] == "hang"
        assert result["waiting_for"] is None  # it ran (on an overflow thread) too long
        assert "ran longer than jit(timeout=0.3)" in result["error"]
        assert result["s"] < 5 * TIMEOUT, results


@pytest.mark.timeout(90)
def test_the_pool_being_full_does_not_stop_quick_ops_of_a_timed_call() -> None:
    results = _run(
        f"""
@xcs.op
def hang(i):
    forever.wait()

@xcs.op
def quick(i):
    time.sleep(0.01)
    return i

@xcs.jit(timeout={TIMEOUT})
def stuck(n):
    return [hang(i) for i in range(n)]

@xcs.jit(timeout={TIMEOUT})
def fine(n):
    return [quick(i) for i in range(n)]

print(json.dumps(timed(stuck, 4)), flush=True)
print(json.dumps(timed(fine, 8)), flush=True)
print(json.dumps(fine(3)), flush=True)
""",
        EMBER_XCS_MAX_WORKERS="4",
    )
    stuck, fine, values = results
    assert stuck["error"] is not None
    assert fine["error"] is None and fine["s"] < 3 * TIMEOUT, fine
    assert values == [0, 1, 2]


@pytest.mark.timeout(90)
def test_a_slot_held_by_an_abandoned_op_times_out_the_op_waiting_for_it() -> None:
    results = _run(
        f"""
@xcs.op(max_concurrency=1)
def hang(i):
    forever.wait()
    return i

@xcs.jit(timeout={TIMEOUT})
def one(i):
    return hang(i)

for i in range(3):
    print(json.dumps(timed(one, i)), flush=True)
"""
    )
    first, *later = results
    assert first["waiting_for"] is None and first["s"] < 5 * TIMEOUT
    for result in later:
        assert result["s"] < 5 * TIMEOUT, results
        assert "max_concurrency=1" in result["waiting_for"]
        assert "1 of them held by ops a call abandoned" in result["waiting_for"]
        assert "never started" in result["error"]


@pytest.mark.timeout(60)
def test_a_custom_executor_that_runs_nothing_cannot_outlast_the_timeout() -> None:
    results = _run(
        f"""
from concurrent.futures import Executor

class Parked(Executor):
    # Accepts work and never runs it: the waiting thread must help.
    def submit(self, fn, *args, **kwargs):
        self.parked = fn

@xcs.op
def hang(i):
    forever.wait()

@xcs.op
def quick(i):
    return i * 2

parked = Parked()
print(json.dumps(timed(xcs.jit(lambda: hang(1), executor=parked, timeout={TIMEOUT}))))
print(json.dumps(xcs.jit(lambda: [quick(i) for i in range(3)], executor=parked,
                         timeout={TIMEOUT})()))
"""
    )
    hung, values = results
    assert hung["error"] is not None and hung["s"] < 5 * TIMEOUT
    assert values == [0, 2, 4]


@pytest.mark.timeout(60)
def test_nested_jitted_calls_on_an_exhausted_pool_still_finish_under_a_timeout() -> None:
    # Two workers, four outer ops each waiting on an inner jitted fan-out: the
    # waiting threads must help (on overflow threads), and nothing times out.
    results = _run(
        """
@xcs.op
def leaf(i):
    time.sleep(0.02)
    return i

@xcs.jit(timeout=5.0)
def inner(k):
    return sum([leaf(k * 10 + j) for j in range(3)])

@xcs.op
def branch(k):
    return inner(k)

@xcs.jit(timeout=5.0)
def outer():
    return [branch(k) for k in range(4)]

print(json.dumps(outer()))  # an OpTimeoutError would end the script with an error
""",
        EMBER_XCS_MAX_WORKERS="2",
    )
    assert results == [[sum(k * 10 + j for j in range(3)) for k in range(4)]]


def test_a_busy_slot_that_keeps_coming_free_is_not_a_timeout() -> None:
    # Six 0.15 s ops through two slots take 0.45 s, past the 0.3 s timeout, but a slot
    # frees every 0.15 s: waiting with progress is not a hang.
    @xcs.op(max_concurrency=2)
    def paced(i: int) -> int:
        time.sleep(0.15)
        return i

    @xcs.jit(timeout=TIMEOUT)
    def program() -> list[int]:
        return [paced(i) for i in range(6)]

    start = time.perf_counter()
    assert program() == list(range(6))
    assert time.perf_counter() - start > TIMEOUT  # the waits really were longer


def test_a_timeout_costs_nothing_per_op() -> None:
    # Deadlines are checked once per due time, not per completion: a 3,000-op
    # fan-out under a timeout costs about what it costs without one.
    @xcs.op
    def zero(i: int) -> int:
        return i

    def fan_out(n: int) -> list[int]:
        return [zero(i) for i in range(n)]

    plain, timed = xcs.jit(fan_out, cache=False), xcs.jit(fan_out, cache=False, timeout=60.0)
    plain(3000), timed(3000)  # warm: rewrite, pool threads
    times: dict[Any, list[float]] = {plain: [], timed: []}
    for _ in range(7):  # alternately, so both see the same machine
        for fn, seen in times.items():
            seen.append(best_seconds(lambda fn=fn: fn(3000), runs=1))
    assert min(times[timed]) < 2 * min(times[plain])
