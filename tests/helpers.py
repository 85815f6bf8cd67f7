"""Shared toy ops for the test suite, with one thread-safe call log.

Every op here appends ``(name, args, kwargs, start, end, thread)`` to :data:`LOG`, so a
test can check which calls happened, how often, with which arguments, and whether
they overlapped in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import itertools
import logging
import threading
import time
from collections import Counter, abc, deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ember import xcs


class Call(NamedTuple):
    name: str
    args: str  # repr at call time (arguments may change later)
    kwargs: str
    start: float
    end: float
    thread: str


class CallLog:
    """Thread-safe record of op calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Call] = []
        self._since = 0.0

    def clear(self) -> None:
        with self._lock:
            self.entries = []
            self._since = time.perf_counter()

    def add(self, call: Call) -> None:
        with self._lock:
            if call.start < self._since:
                # Started before the log was cleared: an op of an earlier run still
                # finishing in the background (after a failure), not one of this run.
                return
            self.entries.append(call)

    def calls(self) -> Counter[tuple[str, str, str]]:
        """The calls as a multiset of (name, repr(args), repr(kwargs))."""
        with self._lock:
            return Counter((c.name, c.args, c.kwargs) for c in self.entries)

    def names(self) -> list[str]:
        with self._lock:
            return [c.name for c in sorted(self.entries, key=lambda c: c.start)]

    def busy_seconds(self) -> float:
        """Sum of the durations of all logged calls (the sequential time)."""
        with self._lock:
            return sum(c.end - c.start for c in self.entries)

    def span(self) -> float:
        """From the first call's start to the last call's end (excludes tracing and
        rewriting before the first op starts)."""
        with self._lock:
            return max(c.end for c in self.entries) - min(c.start for c in self.entries)

    def max_overlap(self) -> int:
        """The largest number of calls that were running at one moment."""
        with self._lock:
            events = sorted(
                [(c.start, 1) for c in self.entries] + [(c.end, -1) for c in self.entries],
                key=lambda e: (e[0], e[1]),
            )
        best = running = 0
        for _, delta in events:
            running += delta
            best = max(best, running)
        return best


LOG = CallLog()


class _Unread:
    """Stands for an iterator in the log: it is the op's to consume (perhaps forever)."""

    def __repr__(self) -> str:
        return "<iterator>"


def _shown(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    """A call's arguments as the log keeps them (an iterator is the op's to consume)."""
    shown_args = tuple(_Unread() if isinstance(a, Iterator) else a for a in args)
    return repr(shown_args), repr(sorted(kwargs.items()))


def logged(name: str | None = None, **op_options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Make an xcs op that logs each call in :data:`LOG`."""

    def decorate(fn: Callable[..., Any]) -> Any:
        label = name or fn.__name__

        def body(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            shown = _shown(args, kwargs)
            try:
                return fn(*args, **kwargs)
            finally:
                LOG.add(
                    Call(
                        label,
                        *shown,
                        start,
                        time.perf_counter(),
                        threading.current_thread().name,
                    )
                )

        body.__name__ = body.__qualname__ = fn.__name__
        body.__module__ = fn.__module__
        body.__wrapped__ = fn  # type: ignore[attr-defined]  # its annotations are the op's
        return xcs.op(name=label, **op_options)(body)

    return decorate


@logged()
def echo(x: Any, delay: float = 0.0) -> str:
    """Return ``str(x)`` after ``delay`` seconds."""
    if delay:
        time.sleep(delay)
    return str(x)


@logged()
def slow_echo(x: Any, delay: float = 0.05) -> Any:
    """Return ``x`` itself after ``delay`` seconds."""
    time.sleep(delay)
    return x


@logged()
def upper(text: str) -> str:
    return str(text).upper()


@logged()
def length(value: Any) -> int:
    return len(value)


@logged()
def combine(parts: Any, sep: str = "|") -> str:
    return sep.join(str(p) for p in parts)


@logged()
def as_list(*items: Any) -> list[Any]:
    return list(items)


@logged()
def info(x: Any) -> dict[str, Any]:
    return {"value": x, "text": str(x), "items": [x, x]}


@dataclasses.dataclass
class Box:
    label: str
    value: Any = None


@logged()
def make_box(label: str, value: Any = None) -> Box:
    return Box(label, value)


@logged()
def increment(n: int) -> int:
    return n + 1


class OpError(ValueError):
    """An exception raised on purpose by a toy op."""


@logged()
def fail(message: str, delay: float = 0.0) -> Any:
    """Raise :class:`OpError` after ``delay`` seconds."""
    if delay:
        time.sleep(delay)
    raise OpError(message)


@logged()
def fail_if(x: Any, bad: Any) -> Any:
    """Return ``x``, or raise :class:`OpError` when ``x == bad``."""
    if x == bad:
        raise OpError(f"bad value {x!r}")
    return x


@logged()
def fail_when(x: Any, letter: str) -> Any:
    """Return ``x``, or raise :class:`OpError` when ``letter`` occurs in ``str(x)``."""
    if letter in str(x):
        raise OpError(f"{letter!r} in {x!r}")
    return x


def alogged(sync: Any) -> Any:
    """The async twin of a :func:`logged` op: an ``async def`` op, logged under the same
    name, that lets the loop run once before it does what ``sync`` does."""
    fn = sync.__wrapped__.__wrapped__  # the op's body, then the user's function
    label = sync.__name__

    async def body(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        shown = _shown(args, kwargs)
        try:
            await asyncio.sleep(0)
            return fn(*args, **kwargs)
        finally:
            LOG.add(Call(label, *shown, start, time.perf_counter(), "loop"))

    body.__name__ = body.__qualname__ = f"a{fn.__name__}"
    body.__module__ = fn.__module__
    body.__annotations__ = dict(fn.__annotations__)
    return xcs.op(name=label)(body)


aecho = alogged(echo)
aupper = alogged(upper)
acombine = alogged(combine)
afail_if = alogged(fail_if)
afail_when = alogged(fail_when)

ASYNC_TWINS = {
    "echo": "aecho",
    "upper": "aupper",
    "combine": "acombine",
    "fail_if": "afail_if",
    "fail_when": "afail_when",
}
"""The toy ops above and the names of their async twins (for :mod:`tests.asyncify`)."""


def contains_proxy(value: Any, _seen: set[int] | None = None) -> bool:
    """Whether a deferred proxy hides anywhere in ``value``: in containers of any kind,
    dataclass fields, or the attributes of objects."""
    from ember.xcs._internal.deferred import Deferred

    seen = _seen if _seen is not None else set()
    if type(value) is Deferred:
        return True
    if isinstance(value, (str, bytes, int, float, type(None))) or id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, abc.Mapping):
        return any(contains_proxy(k, seen) or contains_proxy(v, seen) for k, v in value.items())
    if isinstance(value, (abc.Sequence, abc.Set, deque)):
        return any(contains_proxy(v, seen) for v in value)
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and not isinstance(value, type):
        return any(contains_proxy(v, seen) for v in attributes.values())
    return False


def type_structure(value: Any) -> Any:
    """The nested types of ``value`` (containers recursively), for exact comparisons."""
    if isinstance(value, dict):
        return (
            type(value),
            tuple((type_structure(k), type_structure(v)) for k, v in value.items()),
        )
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(type_structure(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return (type(value), tuple(sorted(repr(type_structure(v)) for v in value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value),
            tuple(type_structure(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    return type(value)


@dataclasses.dataclass
class Outcome:
    """What one run of a program did."""

    value: Any = None
    error: BaseException | None = None
    calls: Counter[tuple[str, str, str]] = dataclasses.field(default_factory=Counter)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def run_logged(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    LOG.clear()
    outcome = Outcome()
    try:
        outcome.value = fn(*args, **kwargs)
        if inspect.isawaitable(outcome.value):  # an async program: run it as plain asyncio
            outcome.value = asyncio.run(_awaited(outcome.value))
    except Exception as exc:  # noqa: BLE001 - compared by the caller
        outcome.error = exc
    outcome.calls = LOG.calls()
    return outcome


def assert_same_as_plain(
    fn: Callable[..., Any], jitted: Callable[..., Any], *args: Any, **kwargs: Any
) -> Outcome:
    """The differential check: ``jitted`` must do exactly what ``fn`` does.

    Same value (and nested types, so no proxy leaks), or same exception type and
    message; and, when no op failed, the same op calls with the same arguments (when
    one failed, ops recorded after it may have started: jit's calls include plain's).
    """
    plain = run_logged(fn, *args, **kwargs)
    got = run_logged(jitted, *args, **kwargs)
    if plain.error is not None:
        assert got.error is not None, f"plain raised {plain.error!r}, jit returned {got.value!r}"
        assert type(got.error) is type(plain.error), (got.error, plain.error)
        assert str(got.error) == str(plain.error)
        missing = plain.calls - got.calls
        assert not missing, f"plain made calls jit did not: {missing}"
        if not isinstance(plain.error, OpError):  # no op failed: every op ran, once
            assert got.calls == plain.calls
    else:
        assert got.error is None, f"jit raised {got.error!r}, plain returned {plain.value!r}"
        assert got.value == plain.value
        assert type_structure(got.value) == type_structure(plain.value)
        assert not contains_proxy(got.value)
        assert got.calls == plain.calls
    return got


def where(x: Any, delay: float = 0.0) -> tuple[Any, int]:
    """``(x, pid)`` after ``delay`` seconds: shows which process ran the op."""
    import os

    time.sleep(delay)
    return x, os.getpid()


@xcs.op
def remote_where(x: Any, delay: float = 0.0) -> tuple[Any, int]:
    """Module-level op for executors in other processes (pickles by reference)."""
    return where(x, delay)


@xcs.op
def remote_fail(message: str) -> Any:
    raise OpError(message)


@xcs.op
def remote_crash(delay: float) -> Any:
    """Module-level op that kills the worker process running it (a native crash, say)."""
    import os

    time.sleep(delay)
    os._exit(3)


def run_traced(recording: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` as a traced call into ``recording``, rewritten as ``@jit`` runs it."""
    from ember.xcs._internal import runtime
    from ember.xcs._internal.dispatch.callees import entry_point

    return runtime.run(recording, fn, args, kwargs, entry_point(fn))


def best_seconds(fn: Callable[[], object], runs: int = 5) -> float:
    """The best of ``runs`` timings of ``fn()`` (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_script(code: str, *, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Run ``code`` as a script file in a fresh interpreter (so jit finds its source)."""
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".py", prefix="xcs_script_", delete=False) as f:
        f.write(code)
    try:
        return subprocess.run(
            [sys.executable, f.name],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        os.unlink(f.name)


def waves(trace: Any, *names: str) -> list[int]:
    """How many ops named ``names`` (any op, if none given) each parallel group holds.

    Groups without such ops are left out: ``[40, 5]`` reads "40 model calls at once,
    then 5", whatever zero-cost parsing ops ran between them.
    """
    return _waves(trace.graph, trace.parallel_groups, names)


def _waves(graph: Any, groups: list[list[int]], names: tuple[str, ...]) -> list[int]:
    """:func:`waves` of one graph; an ``xcs.map`` op's items add theirs, side by side.

    Items run at the same time, so the k-th wave of every item falls in one wave.
    """
    from ember.xcs._internal import parallelism

    counts: list[int] = []
    for group in groups:
        n = sum(1 for op in group if not names or graph.nodes[op]["name"] in names)
        side_by_side: list[int] = []
        for op in group:
            for item in graph.nodes[op].get("items") or []:
                if item is None:
                    continue
                shape = parallelism.shape_of(item)
                own = _waves(item, parallelism.parallel_groups(shape), names)
                side_by_side += [0] * (len(own) - len(side_by_side))
                side_by_side = [
                    a + b for a, b in itertools.zip_longest(side_by_side, own, fillvalue=0)
                ]
        if side_by_side:
            side_by_side[0] += n
            counts.extend(side_by_side)
        elif n:
            counts.append(n)
    return counts


class KeptRecords(logging.Handler):
    """A handler keeping every record it is given (from any thread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def kept_records(name: str) -> Iterator[list[logging.LogRecord]]:
    """Every record of logger ``name`` and its children at DEBUG and up, while open."""
    logger = logging.getLogger(name)
    kept, level = KeptRecords(), logger.level
    logger.addHandler(kept)
    logger.setLevel(logging.DEBUG)
    try:
        yield kept.records
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
