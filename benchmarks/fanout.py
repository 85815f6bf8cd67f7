"""Fan-out benchmark: ``@jit`` against a hand-written thread pool, and per-op overhead.

Run by hand (not part of the test suite)::

    python benchmarks/fanout.py            # default sizes
    python benchmarks/fanout.py --repeat 9

Prints, in one run:

1. A 64-way fan-out of 50 ms (sleeping, I/O-like) ops: wall time under ``@jit``, with
   a hand-written ``ThreadPoolExecutor(64).map``, run sequentially (estimated from
   the op time), and the ideal (the critical path: one op).
2. The overhead per recorded zero-cost op: a fan-out of N ops that return at once,
   under ``@jit`` (record + run, per op) against ``ThreadPoolExecutor(64).map`` (per
   task) and a plain call.

Figures are medians over ``--repeat`` runs; this machine's noise is reported as the
min-max range.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ember import xcs

SLEEP = 0.05
WIDTH = 64


def _sleep_op(i: int) -> int:
    time.sleep(SLEEP)
    return i


def _zero_op(i: int) -> int:
    return i


sleepy = xcs.op(_sleep_op)
zero = xcs.op(_zero_op)


@xcs.jit(cache=False)
def fan_out_sleepy(n: int) -> list[int]:
    return [sleepy(i) for i in range(n)]


@xcs.jit(cache=False)
def fan_out_zero(n: int) -> list[int]:
    return [zero(i) for i in range(n)]


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _show(label: str, times: list[float], unit: float = 1.0, suffix: str = "s") -> float:
    med = statistics.median(times) / unit
    lo, hi = min(times) / unit, max(times) / unit
    print(f"  {label:<38} {med:10.3f} {suffix}   (range {lo:.3f}-{hi:.3f})")
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--zero-ops", type=int, default=2000)
    args = parser.parse_args()

    pool = ThreadPoolExecutor(WIDTH)
    list(pool.map(_zero_op, range(WIDTH)))  # start the pool's threads
    fan_out_sleepy(4)  # start the shared pool's threads
    assert fan_out_sleepy(WIDTH) == list(range(WIDTH))

    print(f"{WIDTH}-way fan-out of {SLEEP * 1000:.0f} ms ops (wall time):")
    jit_s = _show("@jit", _timed(lambda: fan_out_sleepy(WIDTH), args.repeat))
    pool_s = _show(
        f"ThreadPoolExecutor({WIDTH}).map",
        _timed(lambda: list(pool.map(_sleep_op, range(WIDTH))), args.repeat),
    )
    print(f"  {'sequential (64 x 50 ms)':<38} {WIDTH * SLEEP:10.3f} s")
    print(f"  {'ideal (critical path: one op)':<38} {SLEEP:10.3f} s")
    print(
        f"  @jit / ThreadPoolExecutor: {jit_s / pool_s:.2f}x   "
        f"@jit / ideal: {jit_s / SLEEP:.2f}x   "
        f"speedup over sequential: {WIDTH * SLEEP / jit_s:.1f}x"
    )

    n = args.zero_ops
    print(f"\nOverhead per zero-cost op (fan-out of {n}, microseconds per op):")
    _show(
        "@jit (record + run)",
        _timed(lambda: fan_out_zero(n), args.repeat),
        unit=n / 1e6,
        suffix="us",
    )
    _show(
        f"ThreadPoolExecutor({WIDTH}).map",
        _timed(lambda: list(pool.map(_zero_op, range(n))), args.repeat),
        unit=n / 1e6,
        suffix="us",
    )
    _show(
        "plain calls",
        _timed(lambda: [_zero_op(i) for i in range(n)], args.repeat),
        unit=n / 1e6,
        suffix="us",
    )
    trace = xcs.trace(fan_out_zero, n)
    ops = [n for n, a in trace.graph.nodes(data=True) if a["kind"] == "op"]
    print(
        f"  (graph: {trace.graph.number_of_nodes()} nodes, {len(ops)} ops, "
        f"{len(trace.parallel_groups)} parallel group)"
    )
    pool.shutdown()


if __name__ == "__main__":
    main()
