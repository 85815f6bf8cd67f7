"""Why a traced call waited: the lines that cost parallelism, and what fixes the first.

Every point where the program needed a pending value is a ``sync`` node with a file
and line, and -- set by the dispatcher helper that asked (``tracer.waiting_for``) --
what it waited for: a branch on an answer, a library call, a method of a value of
unknown type, a ``try``/``with`` block, a clock read. A sync *costs parallelism*
when it waited for at least one op and more ops were recorded after it: those later
calls could not even be made until the answer came back.

:func:`waits_of` lists those syncs of one recording; ``f.stats()`` totals them per
line (``waits``) and, when a call with two or more ops ran them one at a time,
:func:`hint` names the first such line and the rewrite (or ``xcs.map``) that fixes
it. Ops that ran at once inside a callee xcs cannot see through (``lru_cache``), and
ops started on threads the function created itself, are said there too.

This module reads recordings; it changes nothing.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ember.xcs._internal.ir import NodeKind
from ember.xcs._internal.locations import shorten_location

if TYPE_CHECKING:
    from ember.xcs._internal.tracer import Recording

__all__ = [
    "BRANCH",
    "SCOPE",
    "Wait",
    "calling",
    "describe",
    "hint",
    "method_call",
    "waits_of",
]

BRANCH = "a branch on a pending answer (if/while/and/or)"
SCOPE = "a try/with block around pending calls"
_VALUE = "a use of a pending answer that needs its value"


def calling(name: str) -> str:
    """What a library call that needs a pending argument waited for."""
    return f"the library call {name}()"


def method_call(name: str) -> str:
    """What a method call on a pending value that runs in program order waited for."""
    return f"the method call .{name}() on a pending answer"


_BY_SYNC_NAME = {
    "scope": SCOPE,
    "clock read": "a clock read (time.time(), perf_counter())",
    "flush output": "output (print, logging) before library code",
    "exception": "an exception raised by the function",
    "barrier": "xcs.barrier()",
    "a change to an object a pending call reads": "a change to an object a pending call reads",
}

_FIXES = {
    "branch": (
        "The branch needs each answer before the code after it -- and the next call -- "
        "can run. If each item's work branches on its own answers, run the items with "
        "xcs.map(fn, items); otherwise make all the calls first and branch afterwards."
    ),
    "library": (
        "That call needs the answer as a value. If it only computes a result from its "
        "arguments, declare it with xcs.pure(...) so it waits too; otherwise move it "
        "after the calls, or run each item with xcs.map(fn, items)."
    ),
    "method": (
        "A method of a pending value runs in program order unless xcs knows it only "
        "reads the value: annotate the op's return type (-> str, -> MyResponse) when it "
        "returns a built-in or library type; a method of your own class runs your code, "
        "so call it after the calls, or run each item with xcs.map(fn, items)."
    ),
    "scope": (
        "A try or with block waits for the pending calls it guards. Put the per-item "
        "try inside a function and run the items with xcs.map(fn, items), or make the "
        "calls before the block."
    ),
    "other": ("Move that use after the calls, or run each item's work with xcs.map(fn, items)."),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Wait:
    """One sync that cost parallelism.

    Attributes:
        line: ``file:line`` of the user's code that waited (``In [7], line 3`` in
            a notebook cell).
        waited_for: What it waited for, in words.
        seconds: How long it waited.
    """

    line: str
    waited_for: str
    seconds: float


def waits_of(recording: Recording) -> list[Wait]:
    """The syncs of ``recording`` that waited for ops and were followed by more ops."""
    last_op = recording.ops[-1] if recording.ops else -1
    found = []
    nodes, state, pred = recording.nodes, recording.state, recording.pred
    for node in recording.syncs:
        if node > last_op:
            break
        if not any(nodes[p].kind is NodeKind.OP for p in pred[node]):
            continue  # it ran only glue: nothing it held back was a call
        s = state[node]
        name = s.name
        why = (
            s.waited_for
            or _BY_SYNC_NAME.get(name)
            or (
                "an op called by library code, run at once" if name.endswith("runs now") else _VALUE
            )
        )
        seconds = (s.end or 0.0) - (s.start or 0.0)
        found.append(Wait(str(s.location), why, max(0.0, seconds)))
    return found


def _fix(why: str) -> str:
    if why == BRANCH:
        return _FIXES["branch"]
    if why == SCOPE:
        return _FIXES["scope"]
    if why.startswith("the library call"):
        return _FIXES["library"]
    if why.startswith("the method call"):
        return _FIXES["method"]
    return _FIXES["other"]


def hint(
    ops: int,
    max_parallelism: int,
    waits: Iterable[Wait],
    opaque: Iterable[str],
    own_thread_ops: int,
) -> str | None:
    """What to change when a traced call ran its ops one at a time, or missed some.

    Args:
        ops: Ops of the call.
        max_parallelism: Its largest parallel group.
        waits: Its syncs that cost parallelism, in program order.
        opaque: Callees xcs could not see through (``functools.lru_cache``) whose ops
            ran at once.
        own_thread_ops: Ops started on threads the function created itself.
    """
    parts = []
    if own_thread_ops:
        parts.append(
            f"{own_thread_ops} op call(s) ran on threads the function started itself (its "
            "own ThreadPoolExecutor, say): xcs does not see them, so they are not in the "
            "graph. Call them from the function's own code, in a plain loop: @jit runs "
            "them in parallel."
        )
    waits = list(waits)
    times = collections.Counter(w.line for w in waits)
    # A line that held calls back on every pass of a loop, or any wait of a call whose
    # ops all ran one at a time, is worth a rewrite.
    first = next(
        (w for w in waits if times[w.line] >= 2 or (ops >= 2 and max_parallelism <= 1)), None
    )
    if first is not None:
        how = "ran one at a time" if max_parallelism <= 1 else "were held back"
        parts.append(
            f"{ops} ops {how}: {shorten_location(first.line)} waited {times[first.line]}x for "
            f"{first.waited_for}, and the calls after it could not start until then. "
            f"{_fix(first.waited_for)}"
        )
    for name in opaque:
        parts.append(
            f"{name} is wrapped by a decorator xcs cannot see through, so the ops it "
            "calls ran at once, one at a time. Cache inside instead (apply the cache to "
            "a helper the function calls), or remove the decorator."
        )
    return " ".join(parts) or None


def describe(waits: Iterable[Wait]) -> list[str]:
    """Lines for ``print(trace)``: each line that cost parallelism, how often, for what."""
    grouped: dict[tuple[str, str], list[float]] = {}
    for w in waits:
        grouped.setdefault((w.line, w.waited_for), []).append(w.seconds)
    return [
        f"waited {len(times)}x at {shorten_location(line)} for {why} ({sum(times):.2f}s)"
        for (line, why), times in grouped.items()
    ]
