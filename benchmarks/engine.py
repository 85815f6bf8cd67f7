"""Engine benchmark: the figures of the engine issue, in one run.

Run by hand (not part of the test suite)::

    python benchmarks/engine.py              # all sections
    python benchmarks/engine.py --repeat 9

Sections:

1. 64 x 50 ms sleeping ops, warm: @jit wall time against the ideal (one op: 50 ms),
   a hand-written ``ThreadPoolExecutor(64).map``, ``asyncio.gather`` of
   ``asyncio.sleep`` (an event loop, no threads), and the floor of this machine (64
   threads already started, released at once: what any thread pool must pay).
2. 2,000 zero-cost ops: @jit overhead per op against ``dask.delayed`` with the
   threaded scheduler on the same graph (a fan-out joined by one list).
3. A 3-level nested fan-out: 4 ops, each calling a jitted function that fans out to
   4 ops, each calling one that fans out to 4 leaves of 20 ms (64 leaves).
4. CPU-bound ops that release the GIL (hashlib on 32 MiB buffers): sequential
   against @jit on this machine's cores.

Medians over ``--repeat`` runs, with the min-max range.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ember import xcs

SLEEP = 0.05
WIDTH = 64


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def show(label: str, times: list[float], scale: float = 1e3, unit: str = "ms") -> float:
    med = statistics.median(times) * scale
    print(f"  {label:<44} {med:9.2f} {unit}  ({min(times) * scale:.2f}-{max(times) * scale:.2f})")
    return med


# --- 1. 64 x 50 ms ------------------------------------------------------------------


def _sleep(i: int) -> int:
    time.sleep(SLEEP)
    return i


sleepy = xcs.op(_sleep)


@xcs.jit(cache=False)
def fan_out_sleepy(n: int) -> list[int]:
    return [sleepy(i) for i in range(n)]


async def _gather(n: int) -> list[int]:
    """The same fan-out written with asyncio (no threads: an event loop)."""

    async def one(i: int) -> int:
        await asyncio.sleep(SLEEP)
        return i

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def thread_floor() -> float:
    """64 started threads released at once, each sleeping 50 ms: the machine's floor."""
    gates = [threading.Event() for _ in range(WIDTH)]
    done = threading.Barrier(WIDTH + 1)

    def wait(gate: threading.Event) -> None:
        gate.wait()
        time.sleep(SLEEP)
        done.wait()

    threads = [threading.Thread(target=wait, args=(g,)) for g in gates]
    for t in threads:
        t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    for gate in gates:
        gate.set()
    done.wait()
    elapsed = time.perf_counter() - start
    for t in threads:
        t.join()
    return elapsed


def section_sleep(repeat: int) -> None:
    print(f"1. {WIDTH} x {SLEEP * 1000:.0f} ms ops, warm (wall time)")
    pool = ThreadPoolExecutor(WIDTH)
    list(pool.map(_sleep, range(WIDTH)))
    fan_out_sleepy(WIDTH)
    jit_ms = show("@jit", timed(lambda: fan_out_sleepy(WIDTH), repeat))
    pool_ms = show(
        f"ThreadPoolExecutor({WIDTH}).map",
        timed(lambda: list(pool.map(_sleep, range(WIDTH))), repeat),
    )
    show("asyncio.gather of asyncio.sleep", timed(lambda: asyncio.run(_gather(WIDTH)), repeat))
    floor_ms = show(
        "floor: started threads released at once", [thread_floor() for _ in range(repeat)]
    )
    ideal_ms = SLEEP * 1000
    print(f"  {'ideal (one op)':<44} {ideal_ms:9.2f} ms")
    print(
        f"  -> @jit over ideal {100 * (jit_ms / ideal_ms - 1):.1f}%, over the floor "
        f"{100 * (jit_ms / floor_ms - 1):.1f}%, "
        f"vs ThreadPoolExecutor.map {100 * (jit_ms / pool_ms - 1):+.1f}%"
    )
    pool.shutdown()


# --- 2. 2,000 zero-cost ops against dask.delayed -------------------------------------


def _zero(i: int) -> int:
    return i


zero = xcs.op(_zero)


@xcs.jit(cache=False)
def fan_out_zero(n: int) -> list[int]:
    return [zero(i) for i in range(n)]


def section_zero(repeat: int, n: int) -> None:
    print(f"\n2. {n:,} zero-cost ops (microseconds per op)")
    fan_out_zero(n)
    jit_us = show(
        "@jit (record + run + exit)", timed(lambda: fan_out_zero(n), repeat), 1e6 / n, "us"
    )
    try:
        import dask
    except ImportError:
        print("  (dask not installed: pip install -e '.[dask]')")
        return
    delayed_zero = dask.delayed(_zero, pure=False)

    def with_dask() -> list[int]:
        parts = [delayed_zero(i) for i in range(n)]
        return dask.compute(parts, scheduler="threads")[0]

    with_dask()
    dask_us = show(
        "dask.delayed, threaded scheduler (build + compute)",
        timed(with_dask, repeat),
        1e6 / n,
        "us",
    )
    print(f"  -> @jit / dask.delayed = {jit_us / dask_us:.3f}")
    split = [_split(n) for _ in range(repeat)]
    parts = ", ".join(
        f"{name} {statistics.median(s[i] for s in split):.1f}"
        for i, name in enumerate(("record", "run", "exit"))
    )
    print(f"  @jit split (us per op, medians): {parts}")


def _fan_out(n: int) -> list[object]:
    return [zero(i) for i in range(n)]


def _split(n: int) -> tuple[float, float, float]:
    """Time recording, running and finishing a fan-out of zero-cost ops separately."""
    from ember.xcs._internal import tracer
    from ember.xcs._internal.concrete import concretize
    from ember.xcs._internal.deferred import value_of
    from ember.xcs._internal.dispatch.callees import entry_point
    from ember.xcs._internal.dispatch.frames import enter_next
    from ember.xcs._internal.engine import Engine
    from ember.xcs._internal.parallelism import summarize_ops
    from ember.xcs._internal.tracer import Recording

    fan_out = entry_point(_fan_out)  # rewritten, as @jit runs it
    recording = Recording(Engine())
    previous = tracer.enter(recording)
    try:
        start = time.perf_counter()
        enter_next(fan_out)
        results = fan_out(n)
        recorded = time.perf_counter()
        recording.materialize("exit", need_value=False)
        ran = time.perf_counter()
        concretize(results, value_of)
        summarize_ops(recording.ops, recording.depth, recording.state)
        done = time.perf_counter()
    finally:
        tracer.leave(previous)
    return tuple(1e6 * t / n for t in (recorded - start, ran - recorded, done - ran))  # type: ignore[return-value]


# --- 3. nested fan-out ---------------------------------------------------------------


def _leaf(tag: str) -> str:
    time.sleep(0.02)
    return tag


leaf = xcs.op(_leaf)


@xcs.jit(cache=False)
def level3(tag: str) -> list[str]:
    return [leaf(f"{tag}.{i}") for i in range(4)]


@xcs.op
def call3(tag: str) -> list[str]:
    return level3(tag)


@xcs.jit(cache=False)
def level2(tag: str) -> list[list[str]]:
    return [call3(f"{tag}.{i}") for i in range(4)]


@xcs.op
def call2(tag: str) -> list[list[str]]:
    return level2(tag)


@xcs.jit(cache=False)
def level1() -> list[list[list[str]]]:
    return [call2(str(i)) for i in range(4)]


def section_nested(repeat: int) -> None:
    print("\n3. 3-level nested fan-out: 4 x 4 x 4 leaves of 20 ms (wall time)")
    level1()
    jit_ms = show("@jit", timed(level1, repeat))
    print(f"  {'sequential (64 x 20 ms)':<44} {64 * 20:9.2f} ms")
    print(f"  {'ideal (one leaf)':<44} {20:9.2f} ms")
    print(f"  -> speedup over sequential {64 * 20 / jit_ms:.1f}x")


# --- 4. CPU-bound ops that release the GIL --------------------------------------------


BUFFER = os.urandom(32 * 1024 * 1024)


def _digest(seed: int) -> str:
    hasher = hashlib.sha256(bytes([seed]))
    hasher.update(BUFFER)  # releases the GIL while it hashes
    return hasher.hexdigest()[:12]


digest = xcs.op(_digest)


@xcs.jit(cache=False)
def digests(n: int) -> list[str]:
    return [digest(i) for i in range(n)]


def section_cpu(repeat: int) -> None:
    n = 8
    print(f"\n4. {n} x sha256 of 32 MiB (releases the GIL), {os.cpu_count()} cores (wall time)")
    assert digests(n) == [_digest(i) for i in range(n)]
    seq_ms = show("sequential", timed(lambda: [_digest(i) for i in range(n)], repeat))
    jit_ms = show("@jit", timed(lambda: digests(n), repeat))
    print(f"  -> speedup {seq_ms / jit_ms:.2f}x")
    stats = digests.stats()
    print(f"  stats: cpu_bound_ops={stats['cpu_bound_ops']} hint={stats['hint']!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--zero-ops", type=int, default=2000)
    args = parser.parse_args()
    section_sleep(args.repeat)
    section_zero(args.repeat, args.zero_ops)
    section_nested(args.repeat)
    section_cpu(args.repeat)


if __name__ == "__main__":
    main()
