"""Totals a jitted function reports through ``f.stats()`` and ``xcs.get_jit_stats``.

One :class:`JitStats` per wrapper object, updated under a lock by concurrent
callers. Fields (all totals since the wrapper was made or ``reset_jit_stats``):

* ``calls``: every call; ``traced_calls``, ``direct_calls``, ``inlined_calls``
  (called inside another trace, so part of that one) split it.
* ``decision``: ``untraced`` until a traced call of its own completes (calls that
  raised, or were inlined into another trace, decide nothing), then ``parallel`` if
  any call structure was found parallel, else ``fallback`` if the function (or one
  call structure) runs plainly for good, else ``direct``.
* ``ops``, ``max_parallelism``, ``op_seconds``, ``wall_seconds``, ``cpu_bound_ops``:
  over traced calls. ``concurrency`` = op_seconds / wall_seconds. ``speedup`` =
  estimated sequential time / wall time, where CPU-bound ops count their CPU time
  (None before any traced call). ``hint`` says when CPU-bound ops ran side by side
  on about one core (they hold the GIL: threads cannot help them); ops that release
  the GIL (hashing, compression) are CPU-bound too, but gain, and get no hint.
* ``ops_run_at_once``: ops of traced calls that library code called (callbacks such
  as ``map(op, xs)``) or code xcs could not rewrite, so they ran at once, one after
  another, not in parallel.
* ``fallback_reason``: why the function, or calls of one structure, run plainly
  for good (the latest reason; None so far).
* ``waits``: the lines where traced calls waited for ops before making more calls
  (what cost parallelism; ``waits.py``), most time first, at most five: each a dict
  of ``line`` (``file:line``, or ``In [7], line 3`` in a notebook cell),
  ``waited_for`` (a branch on an answer, a library call, a ``try``...),
  ``times`` and ``seconds``. ``hint`` also names the first such line of a call that
  ran two or more ops one at a time, and the fix (a rewrite, or ``xcs.map``).
* ``ops_on_own_threads``: op calls made on threads the function started itself
  (its own ``ThreadPoolExecutor``): not in the graph, so said here.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from ember.xcs._internal.parallelism import Summary
from ember.xcs._internal.waits import Wait

_SHOWN_WAITS = 5

__all__ = ["JitStats"]

_GIL_HINT = (
    "In {n} traced call(s), CPU-bound ops ran side by side on about one core: they "
    "hold the GIL, so threads cannot run them at the same time (unless other programs "
    "kept the other cores busy: run again to confirm). Release the GIL in the op "
    "(native code, I/O) or give jit a process executor."
)


class JitStats:
    """Counters of one jitted function; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fallback: str | None = None  # permanent: a reset does not undo it
        self.reset()

    def reset(self) -> None:
        """Zero every total (decisions made so far are kept by the caller)."""
        with self._lock:
            # Plain calls are counted without the lock: ``next`` on a count is atomic.
            self._direct = itertools.count()
            self._inlined = itertools.count()
            self._traced = 0
            self._ops = self._max_parallelism = self._cpu_bound = self._gil_bound = 0
            self._immediate = self._own_thread_ops = self._cached = 0
            self._waits: dict[tuple[str, str], list[float]] = {}  # (line, why) -> [n, s]
            self._advice: str | None = None
            self._op_seconds = self._wall_seconds = self._sequential_seconds = 0.0
            self._decisions: set[str] = {"fallback"} if self._fallback else set()

    def fall_back(self, reason: str) -> None:
        """The function (or calls of one structure) run plainly for good, for this reason."""
        with self._lock:
            self._fallback = reason
            self._decisions.add("fallback")

    def count_inlined(self) -> None:
        """A call made inside another trace (it became part of that graph)."""
        next(self._inlined)

    def count_direct(self) -> None:
        """A call that ran the plain function."""
        next(self._direct)

    def count_traced(
        self,
        summary: Summary,
        wall_seconds: float,
        decision: str | None,
        waits: list[Wait] = (),  # type: ignore[assignment]
        advice: str | None = None,
        own_thread_ops: int = 0,
    ) -> None:
        """A traced call: add its ops, times and waits; note the decision it led to."""
        with self._lock:
            for wait in waits:
                total = self._waits.setdefault((wait.line, wait.waited_for), [0, 0.0])
                total[0] += 1
                total[1] += wait.seconds
            self._advice = advice  # the latest traced call's
            self._own_thread_ops += own_thread_ops
            self._traced += 1
            self._ops += summary.ops
            self._max_parallelism = max(self._max_parallelism, summary.max_parallelism)
            self._op_seconds += summary.op_seconds
            self._sequential_seconds += summary.sequential_seconds
            self._wall_seconds += wall_seconds
            self._cpu_bound += summary.cpu_bound_ops
            self._immediate += summary.immediate_ops
            self._cached += summary.cached_ops
            self._gil_bound += summary.gil_bound
            if decision is not None:
                self._decisions.add(decision)

    def as_dict(self) -> dict[str, Any]:
        """The stats as a plain dict (see the module docstring for each field)."""
        with self._lock:
            wall = self._wall_seconds
            if not self._decisions:
                decision = "untraced"  # no call of its own has finished being traced
            elif "parallel" in self._decisions:
                decision = "parallel"
            elif "fallback" in self._decisions:
                decision = "fallback"
            else:
                decision = "direct"
            direct, inlined = _value(self._direct), _value(self._inlined)
            return {
                "calls": self._traced + direct + inlined,
                "traced_calls": self._traced,
                "direct_calls": direct,
                "inlined_calls": inlined,
                "decision": decision,
                "ops": self._ops,
                "max_parallelism": self._max_parallelism,
                "op_seconds": self._op_seconds,
                "wall_seconds": wall,
                "concurrency": self._op_seconds / wall if wall > 0 else None,
                "speedup": self._sequential_seconds / wall if self._traced and wall > 0 else None,
                "cpu_bound_ops": self._cpu_bound,
                "ops_run_at_once": self._immediate,
                "cached_ops": self._cached,
                "hint": self._hint(),
                "fallback_reason": self._fallback,
                "waits": [
                    {"line": line, "waited_for": why, "times": int(n), "seconds": s}
                    for (line, why), (n, s) in sorted(
                        self._waits.items(), key=lambda item: -item[1][1]
                    )[:_SHOWN_WAITS]
                ],
                "ops_on_own_threads": self._own_thread_ops,
            }

    def _hint(self) -> str | None:
        parts = [_GIL_HINT.format(n=self._gil_bound)] if self._gil_bound else []
        if self._advice is not None:
            parts.append(self._advice)
        return " ".join(parts) or None


def _value(counter: itertools.count[int]) -> int:
    """How many times ``next`` was called on a count started at 0 (read, not advanced)."""
    return int(repr(counter)[len("count(") : -1])
