"""Scale benchmark: does every cost grow linearly with the number of ops?

Run by hand (not part of the test suite)::

    python benchmarks/scale.py                       # 1k, 10k and 100k ops
    python benchmarks/scale.py --sizes 1000 10000 --repeat 3

Sections, each at every size (microseconds per op; flat across sizes = linear):

1. Fan-out of zero-cost ops, a whole ``@jit`` call (record, run, return), and the
   share of it spent in garbage collection.
2. Fan-in: ``total([z(i) for i in range(n)])``, one op reading every result.
3. A chain of zero-cost ops (``x = z(x)``, n times): each step waits for the last.
4. Two waves joined by a sync (``n/2`` ops, ``if`` on one result, ``n/2`` more): the
   trace, ``Trace.op_graph``, the Chrome/Perfetto export, the drawing's graphviz
   source and the mermaid text.

Then the fixed-size targets of the hardening issue:

5. Recording alone, 2,000 zero-cost ops (microseconds per recorded op).
6. A warm 64 x 50 ms fan-out against a hand-written ``ThreadPoolExecutor(64).map``,
   measured alternately in the same run.

Medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ember import xcs


@xcs.op
def z(i: int) -> int:
    return i


@xcs.op
def total(values: list[int]) -> int:
    return sum(values)


def fan_out(n: int) -> list[int]:
    return [z(i) for i in range(n)]


def fan_in(n: int) -> int:
    return total([z(i) for i in range(n)])


def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = z(x)
    return x


def two_waves(n: int) -> tuple[list[int], list[int]]:
    first = [z(i) for i in range(n // 2)]
    if first[0] == 0:  # a sync: the program needs a value here
        second = [z(i) for i in range(n // 2)]
    return first, second


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class GcClock:
    """Seconds spent in garbage collection while it is installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def row(label: str, per_op: list[float]) -> None:
    cells = "".join(f"{us:12.2f}" for us in per_op)
    spread = max(per_op) / min(per_op) if min(per_op) > 0 else float("inf")
    print(f"  {label:<34}{cells}   max/min {spread:.2f}")


def section_calls(sizes: list[int], repeat: int) -> None:
    print(f"\n1-3. whole @jit calls, us per op at {', '.join(f'{n:,}' for n in sizes)} ops")
    for name, program in (("fan-out", fan_out), ("fan-in", fan_in), ("chain", chain)):
        jitted = xcs.jit(program, cache=False)
        jitted(10)  # warm: rewrite, pool threads
        per_op, gc_share = [], []
        for n in sizes:
            with GcClock() as clock:
                seconds = median_seconds(lambda: jitted(n), repeat)  # noqa: B023
            per_op.append(1e6 * seconds / n)
            gc_share.append(clock.seconds / (seconds * repeat))
        row(name, per_op)
        print(f"  {'  of which gc':<34}" + "".join(f"{100 * g:11.0f}%" for g in gc_share))


def section_exports(sizes: list[int], repeat: int) -> None:
    print("\n4. two waves joined by a sync, us per op: the trace and its exports")
    exports: dict[str, Callable[[xcs.Trace], Any]] = {
        "Trace.op_graph": lambda trace: trace.op_graph,
        "to_chrome_trace": lambda trace: trace.to_chrome_trace(),
        "graphviz source (dot)": lambda trace: trace.draw(format="dot"),
        "to_mermaid": lambda trace: trace.to_mermaid(),
    }
    steps: dict[str, list[float]] = {}
    for n in sizes:
        traced = median_seconds(lambda: xcs.trace(two_waves, n), repeat)  # noqa: B023
        steps.setdefault("xcs.trace", []).append(1e6 * traced / n)
        for label, export in exports.items():
            times = []
            for _ in range(repeat):  # a fresh trace each time: nothing cached
                trace = xcs.trace(two_waves, n)
                assert len(trace.parallel_groups) == 2
                start = time.perf_counter()
                export(trace)
                times.append(time.perf_counter() - start)
            steps.setdefault(label, []).append(1e6 * statistics.median(times) / n)
    for label, per_op in steps.items():
        row(label, per_op)


def section_recording(repeat: int, n: int = 2000) -> None:
    from ember.xcs._internal import tracer
    from ember.xcs._internal.dispatch.callees import entry_point
    from ember.xcs._internal.dispatch.frames import enter_next
    from ember.xcs._internal.engine import Engine
    from ember.xcs._internal.tracer import Recording

    rewritten = entry_point(fan_out)  # as @jit runs it

    def record() -> float:
        recording = Recording(Engine())
        previous = tracer.enter(recording)
        try:
            start = time.perf_counter()
            enter_next(rewritten)
            rewritten(n)
            elapsed = time.perf_counter() - start
            recording.materialize("exit", need_value=False)
        finally:
            tracer.leave(previous)
        return elapsed

    record()
    per_op = statistics.median(record() for _ in range(repeat)) * 1e6 / n
    print(f"\n5. recording alone, {n:,} zero-cost ops: {per_op:.2f} us per op (target <= 10)")


def _sleep(i: int) -> int:
    time.sleep(0.05)
    return i


sleepy = xcs.op(_sleep)


def sleepy_fan_out(n: int) -> list[int]:
    return [sleepy(i) for i in range(n)]


def section_sleep(repeat: int, width: int = 64) -> None:
    jitted = xcs.jit(sleepy_fan_out, cache=False)
    pool = ThreadPoolExecutor(width)
    jitted(width), list(pool.map(_sleep, range(width)))  # warm both
    jit_times, pool_times = [], []
    for _ in range(max(repeat, 5)):  # alternate, so both see the same machine
        jit_times.append(median_seconds(lambda: jitted(width), 1))
        pool_times.append(median_seconds(lambda: list(pool.map(_sleep, range(width))), 1))
    pool.shutdown()
    jit_ms, pool_ms = 1e3 * statistics.median(jit_times), 1e3 * statistics.median(pool_times)
    print(
        f"\n6. warm {width} x 50 ms: @jit {jit_ms:.2f} ms, ThreadPoolExecutor({width}).map "
        f"{pool_ms:.2f} ms -> {100 * (jit_ms / pool_ms - 1):+.1f}% (target within 3%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"sizes: {args.sizes}, medians of {args.repeat}")
    section_calls(args.sizes, args.repeat)
    section_exports(args.sizes, args.repeat)
    section_recording(max(args.repeat, 5))
    section_sleep(args.repeat)


if __name__ == "__main__":
    main()
