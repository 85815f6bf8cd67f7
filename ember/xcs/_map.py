"""``xcs.map``: one function over many items at once, each item traced and exact.

Where each item's work branches on its own answers (draft, verify, ``if`` the
verdict says so, revise), one trace can only run one item at a time: every branch
waits for its answer. ``xcs.map(fn, items)`` runs ``fn(item)`` for every item at the
same time, each on a thread of its own under a trace of its own -- so within an
item, everything ``@jit`` promises holds (its ops deferred and parallel, values,
call counts and exceptions as plain Python's) -- and returns the results in item
order, like ``asyncio.gather`` over per-item coroutines.

What it relaxes, and only this: items run at the same time, so their side effects
(prints, writes, appends to shared lists) interleave. Use it when items are
independent.

Failures: the exception of the first failing item *in item order* is raised -- the
original object, with a note naming the item and the item's trace attached
(``xcs.trace_of``) -- once every item before it has finished; items after it start
nothing more (their unstarted ops are cancelled). With
``return_exceptions=True`` every item runs and exceptions take their items' places.

Inside a traced call, ``xcs.map`` is an op of the enclosing graph (``xcs.map[fn]``)
that runs in place, not deferred (the items run the caller's code, which may read
what came before and be read by what comes after); its items' graphs are kept on that
node (``items``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Literal, TypeVar, overload

from ember._redact import shown, shown_text
from ember.xcs._internal import runtime, tracer
from ember.xcs._internal.dispatch.callees import entry_point
from ember.xcs._internal.engine import Engine
from ember.xcs._internal.errors import warn_caller
from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.protocol import FunctionLike
from ember.xcs._internal.rewrite import Unrewritable
from ember.xcs._internal.tracer import Recording
from ember.xcs._jit import split_jitted
from ember.xcs._trace import failed_call, keep_as_last_failed

__all__ = ["ItemsStopped", "map", "vmap"]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_WORKERS = 64
"""Items run at once when ``max_workers`` is not given."""

_SHOWN = 40  # characters of an item's repr in notes (secrets redacted: ember._redact)


class ItemsStopped(BaseException):
    """Raised inside an item that was stopped because an earlier item failed.

    Never reaches the caller of ``xcs.map``: the earlier item's exception does. A
    ``BaseException``, so that an item's ``except Exception`` does not swallow it.
    """


def _check(fn: Any, max_workers: Any, return_exceptions: Any) -> None:
    if not callable(fn):
        raise TypeError(f"xcs.map expects a function as its first argument, got {fn!r}")
    if max_workers is not None and (type(max_workers) is not int or max_workers < 1):
        raise ValueError(
            f"xcs.map: max_workers must be a positive int or None, got {max_workers!r}"
        )
    if type(return_exceptions) is not bool:
        raise TypeError(
            f"xcs.map: return_exceptions must be True or False, got {return_exceptions!r}"
        )


class _Items:
    """One ``xcs.map`` run: the items' threads, traces, results and first failure."""

    def __init__(
        self,
        fn: Callable[..., Any],
        items: list[Any],
        engine: Engine,
        return_exceptions: bool,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] | None = None,
    ) -> None:
        self.fn = fn
        self.items = items
        self.calls = calls if calls is not None else [((item,), {}) for item in items]
        self.engine = engine
        self.return_exceptions = return_exceptions
        self.results: list[Any] = [None] * len(items)
        self.errors: dict[int, BaseException] = {}
        self.recordings: list[Recording | None] = [None] * len(items)
        self.first_failure = len(items)  # index of the earliest failing item so far
        self.lock = threading.Lock()
        try:
            self.target = entry_point(fn)
        except Unrewritable as reason:
            warn_caller(
                f"xcs.map cannot rewrite {getattr(fn, '__qualname__', fn)!r}: {reason}; its "
                "items run at the same time, but the ops within each run one at a time.",
                stacklevel=5,
            )
            self.target = fn

    def run_item(self, index: int) -> None:
        """Run ``fn(items[index])`` under a trace of its own (on a thread of the map)."""
        with self.lock:
            if index > self.first_failure:
                return  # an earlier item failed: plain Python never got here
            recording = self.recordings[index] = Recording(self.engine)
        try:
            args, kwargs = self.calls[index]
            self.results[index] = runtime.run(recording, self.fn, args, kwargs, self.target)
        except BaseException as exc:
            self.errors[index] = exc
            if not isinstance(exc, ItemsStopped):  # its trace: xcs.trace_of(exc)
                failed_call(recording, exc, last=False)
            if self.return_exceptions and isinstance(exc, Exception):
                self.results[index] = exc
            elif not isinstance(exc, ItemsStopped):
                self._stop_after(index)

    def _stop_after(self, index: int) -> None:
        with self.lock:
            if index >= self.first_failure:
                return
            self.first_failure = index
            running = [r for i, r in enumerate(self.recordings) if i > index and r is not None]
        stopped = ItemsStopped(f"xcs.map: item {index} failed")
        for recording in running:
            recording.stop(stopped)

    def stop_all(self, error: BaseException) -> None:
        """Ctrl-C in the caller: no item starts anything more."""
        with self.lock:
            self.first_failure = -1
            running = [r for r in self.recordings if r is not None]
        for recording in running:
            recording.stop(error)

    def outcome(self) -> list[Any]:
        """The results in item order, or the first failing item's exception, raised."""
        failing = [i for i, e in self.errors.items() if not isinstance(e, ItemsStopped)]
        if not self.return_exceptions:
            if failing:
                first = min(failing)
                error = self.errors[first]
                name = shown_text(getattr(self.fn, "__qualname__", type(self.fn).__name__))
                error.add_note(
                    f"[ember.xcs] raised by item {first} of {len(self.items)} in "
                    f"xcs.map[{name}]: {shown(self.items[first], _SHOWN)}"
                )
                keep_as_last_failed(error)
                raise error
        else:
            for i in failing:
                if not isinstance(self.errors[i], Exception):
                    raise self.errors[i]  # Ctrl-C, SystemExit: not a result
        return self.results


def _run(
    fn: Callable[..., Any],
    items: Iterable[Any],
    max_workers: int | None,
    return_exceptions: bool,
    engine: Engine | None = None,
    keep: list[Recording | None] | None = None,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] | None = None,
    combine: Callable[[list[Any]], Any] | None = None,
) -> Any:
    """Run the items (``fn(item)``, or ``fn(*args, **kwargs)`` per call) and wait for them.

    ``combine`` makes the results into what is returned (``vmap``'s dict of lists).
    """
    unwrapped, own_engine = split_jitted(fn)
    if unwrapped is not fn or engine is None:  # a jitted function brings its own options
        engine = own_engine
    run = _Items(unwrapped, list(items), engine, return_exceptions, calls)
    count = len(run.items)
    if count == 0:
        return []
    threads = min(count, max_workers or DEFAULT_MAX_WORKERS)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="xcs-map")
    try:
        futures = [pool.submit(run.run_item, i) for i in range(count)]
        pending = set(futures)
        while pending:  # short waits: Ctrl-C reaches this thread promptly
            _, pending = wait(pending, timeout=0.1)
    except BaseException as interrupt:
        run.stop_all(interrupt)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if keep is not None:
        keep.extend(run.recordings)
    results = run.outcome()
    return results if combine is None else combine(results)


def _map_or_record(
    fn: Callable[..., Any],
    items: Iterable[Any],
    max_workers: int | None,
    return_exceptions: bool,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] | None = None,
    combine: Callable[[list[Any]], Any] | None = None,
) -> Any:
    """Run the items now, or -- inside a trace -- record them as one op of its graph."""
    recording = tracer.active()
    if recording is None:
        return _run(fn, items, max_workers, return_exceptions, calls=calls, combine=combine)
    kept: list[Recording | None] = []
    engine = recording.materializer if isinstance(recording.materializer, Engine) else None
    run = functools.partial(_run, engine=engine, keep=kept)
    args = (fn, items, max_workers, return_exceptions)
    kwargs: dict[str, Any] = {} if calls is None else {"calls": calls}
    if combine is not None:
        kwargs["combine"] = combine
    spec = _spec_for(fn)
    # In place, not deferred: the items run the caller's code, which may read (and
    # change) what the code before it left, and the code after it may read what they
    # did. Everything recorded before runs first; the items still run side by side.
    why = f"{spec.name}, which runs its items in place"
    result = recording.run_now(spec, run, args, kwargs, why)
    recording.keep_parts(kept)
    return result


def _arun_or_record(
    fn: Callable[..., Any], items: Iterable[Any], max_workers: int | None, return_exceptions: bool
) -> Coroutine[Any, Any, list[Any]]:
    """Run async items now, or -- awaited in async traced code -- as one op of its graph."""
    recording = tracer.active()
    if recording is None or recording.loop is None:
        return _arun(fn, items, max_workers, return_exceptions)
    return _arecord(recording, fn, items, max_workers, return_exceptions)


async def _arecord(
    recording: Recording,
    fn: Callable[..., Any],
    items: Iterable[Any],
    max_workers: int | None,
    return_exceptions: bool,
) -> list[Any]:
    kept: list[Recording | None] = []
    run = functools.partial(_arun, keep=kept)
    spec = _spec_for(fn)
    why = f"{spec.name}, which runs its items in place"  # as in _map_or_record
    args = (fn, items, max_workers, return_exceptions)
    results: list[Any] = await recording.arun_now(spec, run, args, {}, why)
    recording.keep_parts(kept)  # as _map_or_record: on its node, now the last op
    return results


async def _arun(
    fn: Callable[..., Any],
    items: Iterable[Any],
    max_workers: int | None,
    return_exceptions: bool,
    keep: list[Recording | None] | None = None,
) -> list[Any]:
    """``xcs.map`` of an ``async def``: every item a task on this loop, each traced.

    As with threads: results in item order; the first failing item in item order is
    raised (noted) once the items before it have finished, and the items after it are
    cancelled; with ``return_exceptions`` exceptions take their items' places. ``keep``
    gets each item's recording, in item order.
    """
    items = list(items)
    if keep is not None:
        keep[:] = [None] * len(items)  # filled as the items start
    unwrapped, engine = split_jitted(fn)
    try:
        target = entry_point(unwrapped)
    except Unrewritable as reason:
        warn_caller(
            f"xcs.map cannot rewrite {getattr(unwrapped, '__qualname__', unwrapped)!r}: "
            f"{reason}; its items run at the same time, but the ops within each run one at "
            "a time.",
            stacklevel=4,
        )
        target = unwrapped
    limit = asyncio.Semaphore(max_workers or DEFAULT_MAX_WORKERS)

    async def item(index: int) -> Any:
        async with limit:
            recording = Recording(engine)
            if keep is not None:
                keep[index] = recording
            try:
                return await runtime.arun(recording, unwrapped, (items[index],), {}, target)
            except BaseException as error:
                failed_call(recording, error, last=False)
                raise

    tasks = [asyncio.ensure_future(item(i)) for i in range(len(items))]
    if return_exceptions:
        return await asyncio.gather(*tasks, return_exceptions=True)
    results: list[Any] = []
    try:
        for index, task in enumerate(tasks):
            try:
                results.append(await task)
            except Exception as error:
                name = shown_text(getattr(unwrapped, "__qualname__", type(unwrapped).__name__))
                error.add_note(
                    f"[ember.xcs] raised by item {index} of {len(items)} in "
                    f"xcs.map[{name}]: {shown(items[index], _SHOWN)}"
                )
                keep_as_last_failed(error)
                raise
    finally:
        for task in tasks:
            task.cancel()  # (done ones ignore it) later items: plain Python never got there
        await asyncio.gather(*tasks, return_exceptions=True)
    return results


_specs: dict[str, OpSpec] = {}


def _spec_for(fn: Any) -> OpSpec:
    name = f"xcs.map[{getattr(fn, '__qualname__', type(fn).__name__)}]"
    spec = _specs.get(name)
    if spec is None:
        if len(_specs) > 1024:
            _specs.clear()
        spec = _specs.setdefault(name, OpSpec(name))
    return spec


class _Map(FunctionLike):
    """The object ``xcs.map`` is: a function that joins an enclosing trace as an op."""

    def __init__(self) -> None:
        self.__name__ = self.__qualname__ = "map"
        self.__module__ = "ember.xcs"
        self.__doc__ = type(self).__call__.__doc__
        self.__signature__ = inspect.signature(type(self).__call__).replace(
            parameters=list(inspect.signature(type(self).__call__).parameters.values())[1:]
        )

    @overload
    def __call__(  # type: ignore[overload-overlap]  # an async def: awaitable results
        self,
        fn: Callable[[T], Coroutine[Any, Any, R]],
        items: Iterable[T],
        *,
        max_workers: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> Coroutine[Any, Any, list[R]]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self,
        fn: Callable[[T], Coroutine[Any, Any, R]],
        items: Iterable[T],
        *,
        max_workers: int | None = None,
        return_exceptions: bool,
    ) -> Coroutine[Any, Any, list[R | BaseException]]: ...
    @overload
    def __call__(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        max_workers: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[R]: ...
    @overload
    def __call__(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        max_workers: int | None = None,
        return_exceptions: bool,
    ) -> list[R | BaseException]: ...

    def __call__(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        max_workers: int | None = None,
        return_exceptions: bool = False,
    ) -> list[R] | list[R | BaseException] | Coroutine[Any, Any, list[Any]]:
        """Run ``fn(item)`` for every item at the same time; results in item order.

        Each item runs under a trace of its own, so within an item everything
        ``@jit`` promises holds: its ops defer and run in parallel, and its values,
        calls and exceptions are plain Python's. Across items one thing is relaxed:
        items run at the same time, so their side effects interleave -- use it when
        items are independent, as with ``asyncio.gather``. It works inside and
        outside ``@jit``; inside, it is an op of the enclosing graph
        (``xcs.map[fn]``) that runs in place (what is pending runs first), the items'
        graphs kept on its node (``items``).

        Args:
            fn: The per-item function (a plain function, a jitted one -- its options
                apply -- or any callable).
            items: The items; consumed into a list first.
            max_workers: Items running at once (default: all of them, up to 64).
            return_exceptions: False: raise the first failing item's exception (in
                item order) once the items before it have finished; items after it
                start nothing more. True: run every item and return exceptions in
                place of their results.

        Returns:
            ``[fn(item) for item in items]``, computed concurrently.

        Raises:
            BaseException: The exception of the first failing item in item order,
                as the original object with a note naming the item.
            TypeError: ``fn`` is not callable.
            ValueError: ``max_workers`` is not a positive int.
        """
        _check(fn, max_workers, return_exceptions)
        if inspect.iscoroutinefunction(inspect.unwrap(split_jitted(fn)[0])):
            # An async def: an awaitable of the results (``await xcs.map(fn, items)``).
            return _arun_or_record(fn, items, max_workers, return_exceptions)
        results: list[R | BaseException] = _map_or_record(fn, items, max_workers, return_exceptions)
        return results

    def _by_value(self) -> tuple[Any, ...]:
        return (_Map, ())

    def __repr__(self) -> str:
        return "<function ember.xcs.map>"


map = _Map()


class _Batched(FunctionLike):
    """``xcs.vmap(fn)``: ``fn`` over a batch, each element an item of ``xcs.map``."""

    def __init__(self, fn: Callable[..., Any], in_axes: Any, max_workers: int | None) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._in_axes = in_axes
        self._max_workers = max_workers

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        calls = _split_batch(self._in_axes, args, kwargs)
        return _map_or_record(
            self._fn, range(len(calls)), self._max_workers, False, calls, _combined
        )

    def _by_value(self) -> tuple[Any, ...]:
        return (_Batched, (self._fn, self._in_axes, self._max_workers))

    def __repr__(self) -> str:
        return f"<xcs.vmap {getattr(self._fn, '__qualname__', self._fn)!r}>"


def _batched_length(value: Any) -> int | None:
    """How many elements a batched argument has (None: it is broadcast to every call)."""
    if isinstance(value, (list, tuple)):
        return len(value)
    if isinstance(value, dict):
        lengths = {len(v) for v in value.values() if isinstance(v, (list, tuple))}
        if len(lengths) > 1:
            raise ValueError(
                f"xcs.vmap: the lists in a batched dict must have one length, got {sorted(lengths)}"
            )
        return lengths.pop() if lengths else None
    return None


def _element(value: Any, index: int) -> Any:
    if isinstance(value, (list, tuple)):
        return value[index]
    if isinstance(value, dict):
        return {k: v[index] if isinstance(v, (list, tuple)) else v for k, v in value.items()}
    return value


def _split_batch(
    in_axes: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """One ``(args, kwargs)`` per element of the batch."""
    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            raise ValueError(
                f"xcs.vmap: in_axes has {len(in_axes)} entries for {len(args)} positional "
                "arguments; give one (0 or None) per argument"
            )
        axes = list(in_axes)
    else:
        axes = [in_axes] * len(args)
    batched_args = [axis == 0 for axis in axes]
    batched = [a for a, b in zip(args, batched_args, strict=True) if b] + list(kwargs.values())
    lengths = {n for value in batched if (n := _batched_length(value)) is not None}
    if len(lengths) != 1:
        raise ValueError(
            "xcs.vmap: batched arguments (lists, tuples, dicts of lists) must all have one "
            f"length, got {sorted(lengths) or 'none'}"
        )
    size = lengths.pop()
    return [
        (
            tuple(_element(a, i) if b else a for a, b in zip(args, batched_args, strict=True)),
            {k: _element(v, i) for k, v in kwargs.items()},
        )
        for i in range(size)
    ]


def _combined(results: list[Any]) -> Any:
    """Results as a list, or -- when every one is a dict with the same keys -- a dict of lists."""
    if results and all(type(r) is dict for r in results):
        keys = list(results[0])
        if all(list(r) == keys for r in results):
            return {k: [r[k] for r in results] for k in keys}
    return results


def vmap(
    fn: Callable[..., Any],
    in_axes: int | tuple[int | None, ...] | None = 0,
    *,
    max_workers: int | None = None,
) -> Callable[..., Any]:
    """Earlier Ember's batching transform, built on ``xcs.map``.

    ``vmap(fn)(xs)`` is ``xcs.map(fn, xs)``: the elements run at the same time, each
    traced and exact. Batched arguments are lists and tuples (one element per call)
    and dicts of lists (one dict per call, built from the lists' elements; other
    values in the dict go to every call); any other argument goes to every call.
    When every result is a dict with the same keys, the results come back as one
    dict of lists (the shape of earlier Ember's operator outputs), else as a list.

    Args:
        fn: The per-element function.
        in_axes: ``0`` batches every positional argument; ``None`` none of them; a
            tuple says it per positional argument (``(0, None)``). Keyword arguments
            are always batched (a dict of lists, as earlier Ember's ``inputs=``).
        max_workers: Elements running at once (as in ``xcs.map``).

    Returns:
        The batched function.

    Raises:
        TypeError: ``fn`` is not callable.
        ValueError: ``in_axes`` is not 0, None or a tuple of them (earlier Ember
            accepted other axes only for tensors, which xcs does not batch).
    """
    _check(fn, max_workers, False)
    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,)
    if any(axis not in (0, None) for axis in axes):
        raise ValueError(
            f"xcs.vmap: in_axes must be 0, None or a tuple of them, got {in_axes!r}; items "
            "are batched along their first axis only"
        )
    return _Batched(fn, in_axes, max_workers)
