"""``@jit``: the wrapper that traces a function and runs its independent ops in parallel.

A call of a jitted function goes one of three ways:

* **inlined** -- a trace is already active on this thread (the function was called
  from another jitted function or an operator): the plain function runs and its ops
  join the enclosing graph, under the enclosing call's options;
* **direct** -- an earlier traced call with the same call structure found no
  parallelism: the plain function runs (ops are ordinary calls), except for a
  re-check by tracing after 1, 2, 4, 8, ... such runs; likewise, for good, when
  the function cannot be rewritten or a traced call met code the rewrite does not
  cover (``fallback``);
* **traced** -- everything else: the call is traced afresh, its ops run on the
  engine, and the result comes back concrete.

The wrapper owns the per-structure decisions and the stats; tracing, running and
analysis live in ``_internal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import itertools
import threading
import time
import types
import weakref
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from ember.xcs import _otel
from ember.xcs._internal import logs, parallelism, runtime, tracer, waits
from ember.xcs._internal.decisions import Decision, Decisions, call_key
from ember.xcs._internal.dispatch.callees import CONCRETE, PASS, entry_point, register
from ember.xcs._internal.dispatch.twins import twin_of
from ember.xcs._internal.engine import Engine
from ember.xcs._internal.errors import PendingValueError, warn_at
from ember.xcs._internal.protocol import FunctionLike, reject_unsupported
from ember.xcs._internal.rewrite import Unrewritable
from ember.xcs._internal.stats import JitStats
from ember.xcs._internal.tracer import Recording
from ember.xcs._internal.usercode import first_warning

__all__ = ["JitFunction", "JitOptions", "get_jit_stats", "jit", "reset_jit_stats", "split_jitted"]


@dataclasses.dataclass(frozen=True)
class JitOptions:
    """How a jitted function runs its ops (see ``jit``)."""

    max_workers: int | None = None
    executor: Executor | None = None
    timeout: float | None = None
    cache: bool = True

    def __post_init__(self) -> None:
        workers = self.max_workers
        if workers is not None and (
            not isinstance(workers, int) or isinstance(workers, bool) or workers < 1
        ):
            raise ValueError(
                f"jit(max_workers=...) must be a positive int or None, got {workers!r}"
            )
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise TypeError(
                "jit(executor=...) must be a concurrent.futures.Executor, "
                f"got {type(self.executor).__name__}"
            )
        timeout = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
        ):
            raise ValueError(
                f"jit(timeout=...) must be a positive number of seconds, got {timeout!r}"
            )
        if not isinstance(self.cache, bool):
            raise TypeError(f"jit(cache=...) must be True or False, got {self.cache!r}")


P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")

_PLAIN = (Decision.DIRECT, Decision.FALLBACK)  # decisions to run the plain function

# Live wrappers by creation order (stats are listed in that order).
_wrappers: weakref.WeakValueDictionary[int, JitFunction[..., Any]] = weakref.WeakValueDictionary()
_wrappers_lock = threading.Lock()
_created = itertools.count()


class JitFunction(FunctionLike, Generic[P, R]):
    """A jitted function; call it like the original. ``stats()`` reports what it did.

    Type checkers see the original's signature and return type (``JitFunction[P, R]``
    for a ``Callable[P, R]``); as a method it binds like a function does.
    """

    __xcs_composite__ = True
    __wrapped__: Callable[P, R]
    __qualname__: str  # these are set by functools.update_wrapper

    def __init__(self, fn: Callable[P, R], options: JitOptions) -> None:
        functools.update_wrapper(self, fn)
        if "__qualname__" not in vars(self):  # a partial or a callable object: its type's
            self.__name__ = getattr(fn, "__name__", type(fn).__name__)
            self.__qualname__ = getattr(fn, "__qualname__", type(fn).__qualname__)
        self.options = options
        self._engine = Engine(options.executor, options.max_workers, options.timeout)
        self._decisions = Decisions()  # per call structure, for this code of fn
        self._code = getattr(fn, "__code__", None)
        self._stats = JitStats()
        self._fallback: str | None = None  # why it runs plainly for good, once it does
        self._async = inspect.iscoroutinefunction(inspect.unwrap(fn))  # an async def
        with _wrappers_lock:
            _wrappers[next(_created)] = self

    if TYPE_CHECKING:  # how a method binds, for type checkers (FunctionLike does it)

        @overload
        def __get__(self, instance: None, owner: type | None = None) -> JitFunction[P, R]: ...
        @overload
        def __get__(
            self: JitFunction[Concatenate[S, Q], T], instance: S, owner: type | None = None
        ) -> Callable[Q, T]: ...
        def __get__(self, instance: object, owner: type | None = None) -> Any: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._async:
            return self._acall(args, kwargs)  # type: ignore[return-value]  # R is a coroutine
        fn = self.__wrapped__
        plan = self._plan(args, kwargs)
        if plan is None:
            return fn(*args, **kwargs)
        key, target = plan
        with self._traced(key) as recording:
            result: R = runtime.run(recording, fn, args, kwargs, target)
        return result

    async def _acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A call of a jitted ``async def``: traced on the caller's loop (``runtime.arun``)."""
        fn: Callable[..., Any] = self.__wrapped__
        plan = self._plan(args, kwargs)
        if plan is None:
            return await fn(*args, **kwargs)
        key, target = plan
        with self._traced(key) as recording:
            result = await runtime.arun(recording, fn, args, kwargs, target)
        return result

    def _plan(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Hashable | None, Callable[..., Any]] | None:
        """``(decision key, twin)`` to trace this call, or None to call ``fn`` plainly."""
        fn = self.__wrapped__
        if tracer.active() is not None:  # called by library code inside a trace
            self._stats.count_inlined()
            return None
        if self._fallback is not None:
            self._stats.count_direct()
            return None
        if getattr(fn, "__code__", None) is not self._code:  # replaced: decide afresh
            self._code = getattr(fn, "__code__", None)
            self._decisions.clear()
        key = call_key(args, kwargs) if self.options.cache else None
        if key is not None and self._decisions.get(key) in _PLAIN:
            self._stats.count_direct()
            return None
        try:
            target = entry_point(fn)
        except Unrewritable as reason:
            self._fall_back(str(reason))
            self._stats.count_direct()
            return None
        return key, target

    @contextlib.contextmanager
    def _traced(self, key: Hashable | None) -> Iterator[Recording]:
        """A traced call's recording; what the call taught (decisions, stats, spans) after."""
        recording = Recording(self._engine)
        completed = False
        try:
            yield recording
            completed = True
        except BaseException as error:
            if isinstance(error, PendingValueError):
                self._gap(key, error)
            _keep_failed_trace(recording, error)
            raise
        finally:
            self._learn(key, recording, completed)
            _otel.export_call(self.__qualname__, recording, completed)  # if it is set up

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """Await a call from async code without blocking the event loop.

        A jitted ``async def`` is simply awaited. A jitted sync function runs on a
        thread (with this task's contextvars), so the loop goes on meanwhile;
        cancelling the awaiting task does not stop that call (it runs to its end).
        """
        if self._async:
            return await self(*args, **kwargs)  # type: ignore[misc]
        return await asyncio.to_thread(self, *args, **kwargs)

    def _gap(self, key: Hashable | None, gap: PendingValueError) -> None:
        """A pending value reached code that needed a real one: run such calls plainly."""
        reason = f"a pending value reached code that needed a real one at {gap.location}"
        if key is None:
            self._fallback = reason  # no key to mark (cache=False): the whole function
        else:
            self._decisions.set(key, Decision.FALLBACK)
        self._stats.fall_back(reason)
        logs.gap(self.__module__, self.__qualname__, reason, every_call=key is None)

    def _fall_back(self, reason: str) -> None:
        """Run plainly from now on, saying once, at the function's own line, why."""
        self._fallback = reason
        self._stats.fall_back(reason)
        logs.cannot_rewrite(self.__module__, self.__qualname__, reason)
        code = getattr(inspect.unwrap(self.__wrapped__), "__code__", None)
        if code is not None and not first_warning(code):
            return  # already said, when it ran as a callee of another jitted function
        filename = code.co_filename if code else "<unknown>"
        line = code.co_firstlineno if code else 0
        warn_at(
            f"xcs.jit cannot rewrite {self.__qualname__!r}: {reason}. It runs as plain "
            "Python: correct, but its calls do not run in parallel.",
            filename,
            line,
        )

    def _inline(self) -> tuple[Any, int]:
        """How the dispatcher calls this function inside a trace: its twin, inlined."""
        self._stats.count_inlined()
        fn = self.__wrapped__
        twin = None
        if self._fallback is None and isinstance(fn, types.FunctionType):
            twin = twin_of(fn)
        if twin is None:
            return self.__wrapped__, CONCRETE
        return twin, PASS

    def _learn(self, key: Hashable | None, recording: Recording, completed: bool) -> None:
        wall = time.perf_counter() - recording.t0
        summary = parallelism.summarize_ops(recording.ops, recording.depth, recording.state)
        decision = None
        if completed:
            parallel = summary.max_parallelism >= 2
            decision = Decision.PARALLEL if parallel else Decision.DIRECT
            if key is not None:
                self._decisions.set(key, decision)
        found = waits.waits_of(recording)
        advice = waits.hint(
            summary.ops,
            summary.max_parallelism,
            found,
            sorted(recording.opaque),
            recording.own_thread_ops,
        )
        self._stats.count_traced(summary, wall, decision, found, advice, recording.own_thread_ops)
        if logs.LOG.isEnabledFor(logs.DEBUG):
            cached = key is not None
            logs.decided(self.__module__, self.__qualname__, summary, decision, cached, advice)

    def _by_value(self) -> tuple[Any, ...]:
        # The executor stays behind: another process runs it on its own shared pool.
        options = self.options
        return (_rebuild, (self.__wrapped__, options.max_workers, options.timeout, options.cache))

    def __repr__(self) -> str:
        return f"<xcs.jit {self.__module__}.{self.__qualname__}>"

    def stats(self) -> dict[str, Any]:
        """Totals since this wrapper was made (or ``xcs.reset_jit_stats()``)."""
        return self._stats.as_dict()


class _JitDecorator(Protocol):
    """What ``jit(...)`` with options returns, for type checkers: ``jit`` with them set."""

    @overload
    def __call__(self, fn: staticmethod[P, R], /) -> staticmethod[P, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, fn: classmethod[T, P, R], /) -> classmethod[T, P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> JitFunction[P, R]: ...


@overload
def jit(fn: staticmethod[P, R], /) -> staticmethod[P, R]: ...  # type: ignore[overload-overlap]
@overload
def jit(fn: classmethod[T, P, R], /) -> classmethod[T, P, R]: ...
@overload
def jit(fn: Callable[P, R], /) -> JitFunction[P, R]: ...
@overload
def jit(
    fn: None = None,
    /,
    *,
    max_workers: int | None = None,
    executor: Executor | None = None,
    timeout: float | None = None,
    cache: bool = True,
) -> _JitDecorator: ...


def jit(
    fn: Callable[..., Any] | staticmethod[..., Any] | classmethod[Any, ..., Any] | None = None,
    /,
    *,
    max_workers: int | None = None,
    executor: Executor | None = None,
    timeout: float | None = None,
    cache: bool = True,
) -> Any:
    """Run the independent ops of ``fn`` in parallel, computing exactly what ``fn`` does.

    Forms: ``@jit``, ``@jit()``, ``jit(f)``, ``@jit(max_workers=8)``. Works on
    functions, methods, static and class methods. ``jit(jit(f))`` is the same
    wrapper unless new options are given.

    Args:
        fn: The function to wrap.
        max_workers: At most this many ops of one call run at once.
        executor: Where ops run: any ``concurrent.futures.Executor`` (thread pools,
            process pools, Dask's ``Client.get_executor()``); the shared pool when None.
        timeout: Seconds an op may run, or wait for a ``max_concurrency`` slot with
            none coming free, before the call raises ``xcs.OpTimeoutError`` naming it;
            an op that ran too long goes on in the background.
        cache: False traces every call instead of remembering, per call
            structure, that a function has no parallelism.

    Returns:
        The jitted function, or a decorator when ``fn`` is not given.

    Raises:
        XCSError: ``fn`` is a generator or ``async def`` function.
        TypeError, ValueError: An option or ``fn`` is not of a usable kind.
    """
    options = JitOptions(max_workers, executor, timeout, cache)

    def make(target: Any) -> Any:
        if isinstance(target, staticmethod):
            return staticmethod(make(target.__func__))
        if isinstance(target, classmethod):
            return classmethod(make(target.__func__))
        if isinstance(target, JitFunction):
            if options == JitOptions():
                return target
            target = target.__wrapped__
        if not callable(target):
            raise TypeError(f"xcs.jit expects a function or callable, got {target!r}")
        reject_unsupported(target, "xcs.jit")
        return JitFunction(target, options)

    return make(fn) if fn is not None else make


def _keep_failed_trace(recording: Recording, error: BaseException) -> None:
    """A traced call raised: its trace goes on the exception (``xcs.trace_of``).

    Only failing calls pay for building a ``Trace``. (``_trace`` imports this module.)
    """
    from ember.xcs._trace import failed_call

    failed_call(recording, error)


def _rebuild(
    fn: Callable[..., Any], max_workers: int | None, timeout: float | None, cache: bool
) -> JitFunction[..., Any]:
    """Unpickle a jitted function sent by value (see ``JitFunction.__reduce__``)."""
    return JitFunction(fn, JitOptions(max_workers, None, timeout, cache))


def _wrapper_of(fn: Any) -> JitFunction[..., Any]:
    target = getattr(fn, "__func__", fn)  # a bound method of a jitted function
    if not isinstance(target, JitFunction):
        raise TypeError(f"get_jit_stats expects a function made by xcs.jit, got {fn!r}")
    return target


def split_jitted(fn: Callable[..., Any]) -> tuple[Callable[..., Any], Engine]:
    """``fn`` without its jit wrapper (a bound method stays bound), and the engine to use.

    A jitted function brings its own options; anything else gets a default engine.
    """
    if isinstance(fn, JitFunction):
        return fn.__wrapped__, fn._engine
    if isinstance(fn, types.MethodType) and isinstance(fn.__func__, JitFunction):
        jitted = fn.__func__
        return types.MethodType(jitted.__wrapped__, fn.__self__), jitted._engine
    return fn, Engine()


def get_jit_stats(f: Any = None) -> dict[str, Any]:
    """Stats of one jitted function, or of all of them by module-qualified name.

    Args:
        f: A jitted function (or a bound method of one); None for all.

    Returns:
        ``f.stats()``, or ``{"module.qualname": stats, ...}`` for every live wrapper,
        in creation order (a second wrapper of one function is ``module.qualname#2``).
    """
    if f is not None:
        return _wrapper_of(f).stats()
    with _wrappers_lock:
        wrappers = [_wrappers[k] for k in sorted(_wrappers.keys())]
    out: dict[str, Any] = {}
    for wrapper in wrappers:
        name = base = f"{wrapper.__module__}.{wrapper.__qualname__}"
        copies = 1
        while name in out:  # several wrappers of one function: name#2, name#3, ...
            copies += 1
            name = f"{base}#{copies}"
        out[name] = wrapper.stats()
    return out


def reset_jit_stats() -> None:
    """Zero the stats of every jitted function (decisions already made are kept)."""
    with _wrappers_lock:
        wrappers = list(_wrappers.values())
    for wrapper in wrappers:
        wrapper._stats.reset()


register(JitFunction, JitFunction._inline)
