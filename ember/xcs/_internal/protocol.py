"""What makes a callable an op or a composite, and the ``@op`` decorator.

The tracer knows nothing about models or operators; they plug in through two
attributes:

* ``__xcs_op__``: an :class:`~.ir.OpSpec` on anything that is an op. Calling an op
  must go through :func:`call_op`, which records a node and returns a deferred
  value when a trace is active on this thread, and otherwise just calls the
  function (the whole cost outside a trace is one thread-local read).
* ``__xcs_composite__ = True`` (``@xcs.composite``) on classes whose objects are
  traced *through* rather than deferred: their ``__call__`` and methods run rewritten
  on the tracing thread, wherever their code lives (library code included), so the
  ops inside become nodes of the caller's graph. Operators are composites; jitted
  functions are traced through (inlined) by a hook of their own.

:class:`Op` is the standard op wrapper that ``@xcs.op`` returns.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ember import _stop
from ember.xcs._internal import tracer
from ember.xcs._internal.errors import XCSError
from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.locations import describe_location

__all__ = [
    "FunctionLike",
    "Op",
    "call_op",
    "composite",
    "is_composite",
    "is_op",
    "op",
    "reject_unsupported",
]

OP_ATTRIBUTE = "__xcs_op__"
COMPOSITE_ATTRIBUTE = "__xcs_composite__"


def is_op(obj: object) -> bool:
    """Whether calling ``obj`` is an xcs op call."""
    return isinstance(getattr(obj, OP_ATTRIBUTE, None), OpSpec)


def is_composite(obj: object) -> bool:
    """Whether ``obj`` is traced through (its class, or it, is marked a composite)."""
    try:
        return getattr(obj, COMPOSITE_ATTRIBUTE, False) is True
    except Exception:  # an object whose attribute lookup fails: not marked
        return False


def composite(cls: type) -> type:
    """Mark a class as a composite: calls of its objects are traced through.

    Its ``__call__`` and the methods it calls on itself run rewritten under ``@jit``
    -- even when the class lives in a library -- so the ops they call defer and join
    the caller's graph. Operators (``ember.operators.Operator``) are composites.

    Args:
        cls: The class to mark.

    Returns:
        ``cls`` itself.
    """
    if not isinstance(cls, type):
        raise TypeError(f"xcs.composite marks classes, got {cls!r}")
    cls.__xcs_composite__ = True  # type: ignore[attr-defined]
    return cls


def _found_by_name(obj: Any) -> bool:
    """Whether ``obj`` is what its ``__module__`` and ``__qualname__`` name."""
    target: Any = sys.modules.get(getattr(obj, "__module__", None) or "")
    for part in str(getattr(obj, "__qualname__", "")).split("."):
        target = getattr(target, part, None)
    return target is obj


class FunctionLike:
    """A wrapper that behaves as the function it wraps does where Python asks.

    It binds as a method when it is a class attribute, and pickles by reference when
    its module holds it under its name (as pickle sends functions), otherwise by value
    (:meth:`_by_value`: cloudpickle can send a local function, pickle refuses).
    """

    __qualname__: str
    __call__: Callable[..., Any]  # the subclass's

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def __reduce__(self) -> str | tuple[Any, ...]:
        if _found_by_name(self):
            return str(self.__qualname__)
        return self._by_value()

    def _by_value(self) -> tuple[Any, ...]:
        """``(callable, args)`` that rebuild this wrapper in another process."""
        raise NotImplementedError


def call_op(
    spec: OpSpec, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Any:
    """Call an op from the ``__call__`` of an op-like object (a model binding, say).

    Outside a trace it is ``fn(*args, **kwargs)``. Inside one it records a node and
    returns a deferred value when the dispatcher made the call; otherwise (library
    code called the object) it runs at once, still as a node.
    """
    recording = tracer.active()
    if recording is None:
        if tracer.tracing:
            tracer.op_outside_trace()
        return fn(*args, **kwargs)
    if tracer.take_deferral():
        return recording.record_op(spec, fn, args, kwargs)
    return recording.run_now(spec, fn, args, kwargs)


def acall_op(
    spec: OpSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> Any:
    """:func:`call_op` for an async op: ``fn`` is an ``async def``; returns what to await.

    In traced async code, when the dispatcher made the call, a call recorded when it
    is awaited (``awaiting.AsyncCall``); anywhere else ``fn``'s coroutine, as plain
    Python has it.
    """
    recording = tracer.active()
    if recording is not None and recording.loop is not None and tracer.take_deferral():
        from ember.xcs._internal.awaiting import AsyncCall

        return AsyncCall(recording, spec, fn, args, kwargs)
    return fn(*args, **kwargs)


def served_from_cache() -> None:
    """Say, from inside an op, that this run was answered from a cache.

    A cache in front of an op (``ember.models``' response cache, or the user's own)
    calls it when it answers without doing the work; the trace then marks the op's
    node (``cached`` in ``Trace.graph``, a mark in drawings, ``cached_ops`` in a jitted
    function's ``stats()``). An op calling it twice (two cached calls inside it) counts
    two in its node (one in ``cached_ops``, which counts ops). Outside a deferred
    op (plain Python, an op run at once, another process) it does nothing.
    """
    from ember.xcs._internal.pool import Task

    task = _stop.current()
    if isinstance(task, Task):
        task.cached += 1


def op_position() -> tuple[int, int] | None:
    """The running op's place in program order: ``(id of its traced call, node id)``.

    None outside a deferred op. Caches use it to decide which of two identical calls
    in flight at once counts as the one made first, as plain Python would order them.
    """
    from ember.xcs._internal.pool import Task

    task = _stop.current()
    if isinstance(task, Task):
        return id(task.recording), task.node.id
    return None


def reject_unsupported(fn: Callable[..., Any], what: str) -> None:
    """Raise :class:`XCSError` if ``fn`` is an async generator or a generator function.

    Args:
        fn: The function being decorated.
        what: The decorator's name for the message (``"xcs.jit"``).
    """
    target = inspect.unwrap(fn) if callable(fn) else fn
    if inspect.isasyncgenfunction(target):
        kind = "an async generator function"
        fix = "Return a list instead of yielding, or decorate the function that consumes it."
    elif inspect.isgeneratorfunction(target):
        kind = "a generator function"
        fix = "Return a list instead of yielding, or decorate the function that consumes it."
    else:
        return
    code = getattr(target, "__code__", None)
    where = f" at {describe_location(code.co_filename, code.co_firstlineno)}" if code else ""
    raise XCSError(
        f"{what} cannot be applied to {getattr(target, '__qualname__', target)!r}{where}: "
        f"it is {kind}, which xcs does not support yet. {fix}"
    )


P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")


class Op(FunctionLike, Generic[P, R]):
    """An xcs op: inside a trace, a call records a node and returns a deferred value.

    Outside any trace it is the wrapped function, called directly. Ops receive
    concrete values, must not mutate their arguments, and may run concurrently on
    worker threads. Type checkers see the function's signature and return type (the
    deferred value stands in for the result).
    """

    __xcs_op__: OpSpec
    __qualname__: str  # set by functools.update_wrapper

    def __init__(self, fn: Callable[P, R], spec: OpSpec) -> None:
        functools.update_wrapper(self, fn)
        self.__xcs_op__ = spec
        self._fn = fn
        self._async = inspect.iscoroutinefunction(inspect.unwrap(fn))  # an async op

    if TYPE_CHECKING:  # how a method binds, for type checkers (FunctionLike does it)

        @overload
        def __get__(self, instance: None, owner: type | None = None) -> Op[P, R]: ...
        @overload
        def __get__(
            self: Op[Concatenate[S, Q], T], instance: S, owner: type | None = None
        ) -> Callable[Q, T]: ...
        def __get__(self, instance: object, owner: type | None = None) -> Any: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        recording = tracer.active()
        if recording is None:
            if tracer.tracing:
                tracer.op_outside_trace()
            return self._fn(*args, **kwargs)
        if self._async:  # its coroutine, as plain Python returns it (not a node)
            return self._fn(*args, **kwargs)
        # Not called through the dispatcher (by library code, a property, a dunder):
        # it runs now, after everything recorded before it, and is still a node.
        result: R = recording.run_now(self.__xcs_op__, self._fn, args, kwargs)
        return result

    def defer(self, *args: Any, **kwargs: Any) -> Any:
        """The call rewritten code makes: record a node, return a deferred value."""
        recording = tracer.active()
        if recording is None:
            return self._fn(*args, **kwargs)
        if self._async:  # recorded when awaited, in async code; sync code gets the coroutine
            if recording.loop is None:
                return self._fn(*args, **kwargs)
            from ember.xcs._internal.awaiting import AsyncCall

            return AsyncCall(recording, self.__xcs_op__, self._fn, args, kwargs)
        # Threads run the function; other processes get the op (it pickles by name).
        return recording.record_op(self.__xcs_op__, self._fn, args, kwargs, self)

    def _by_value(self) -> tuple[Any, ...]:
        return (Op, (self._fn, self.__xcs_op__))

    def __repr__(self) -> str:
        spec = self.__xcs_op__
        limit = f", max_concurrency={spec.max_concurrency}" if spec.max_concurrency else ""
        return f"<xcs.op {spec.name!r}{limit}>"


@overload
def op(fn: Callable[P, R], /) -> Op[P, R]: ...
@overload
def op(
    fn: None = None, /, *, name: str | None = None, max_concurrency: int | None = None
) -> Callable[[Callable[P, R]], Op[P, R]]: ...


def op(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    max_concurrency: int | None = None,
) -> Op[..., Any] | Callable[[Callable[..., Any]], Op[..., Any]]:
    """Mark a function as an xcs op: a leaf operation that ``@jit`` runs in parallel.

    Use it on the calls worth overlapping -- an LLM call, a tool call, an HTTP
    request. Forms: ``@op``, ``@op()``, ``@op(name="ask", max_concurrency=4)``,
    ``op(fn)``.

    Args:
        fn: The function (or any callable) to wrap.
        name: Display name in graphs and errors; defaults to the function's name.
        max_concurrency: Bound on concurrent runs of this op across all traces
            (for API rate limits); None for no bound.

    Returns:
        The op, or a decorator making one when ``fn`` is not given.

    Raises:
        TypeError: ``fn`` is not callable.
        XCSError: ``fn`` is an ``async def`` or a generator function.
    """

    def make(target: Callable[..., Any]) -> Op[..., Any]:
        if not callable(target):
            raise TypeError(f"xcs.op expects a function or callable, got {target!r}")
        reject_unsupported(target, "xcs.op")
        if isinstance(target, Op) and name is None and max_concurrency is None:
            return target
        base = target._fn if isinstance(target, Op) else target
        label = name or getattr(base, "__name__", None) or type(base).__name__
        return Op(base, OpSpec(label, max_concurrency))

    if fn is not None:
        return make(fn)
    return make
