"""One outermost traced call, from entry to exit.

Entry: a fresh :class:`~.tracer.Recording` becomes this thread's trace, with one
``input`` node per argument. Exit: everything still pending runs (an ``exit`` sync),
and deferred values inside the result are replaced by their values, so nothing the
caller gets back is a proxy. When the function raises, the ops it recorded before
raising run first; if one of them fails, that exception is the one raised (plain
Python would have raised it first). A ``TypeError`` raised because a deferred value
reached code that needed a real one becomes :class:`~.errors.PendingValueError`.
``KeyboardInterrupt`` and other non-``Exception`` exits cancel what is pending
instead.

The jit wrapper and ``xcs.trace`` both call :func:`run`; neither knows these steps.
"""

from __future__ import annotations

import linecache
import re
import types
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from ember.xcs._internal import collector, tracer
from ember.xcs._internal.concrete import Concretizer
from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.dispatch.frames import enter_next
from ember.xcs._internal.dispatch.statements import forget_stores
from ember.xcs._internal.errors import PendingValueError, reraise
from ember.xcs._internal.locations import describe_location
from ember.xcs._internal.tracer import Recording
from ember.xcs._internal.usercode import is_user_code

__all__ = ["arun", "run"]


def run(
    recording: Recording,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    target: Callable[..., Any] | None = None,
) -> Any:
    """Call ``fn`` with ``recording`` as this thread's trace; return a concrete result.

    Args:
        recording: A new recording (its materializer decides how nodes run).
        fn: The user's function (not a wrapper).
        args: Positional arguments.
        kwargs: Keyword arguments.
        target: What to call instead of ``fn``: its rewritten twin (see
            ``dispatch.callees.entry_point``); ``fn`` itself when None.

    Returns:
        What ``fn`` returned, with every deferred value replaced by its value (None
        when the recording does not execute).

    Raises:
        BaseException: What ``fn`` raises, or the earliest op failure before it.
    """
    if target is None:
        target = fn
    for name, value in _named_arguments(fn, args, kwargs):
        recording.add_input(name, value)
    previous = tracer.enter(recording)
    collector.fewer_collections()
    try:
        try:
            enter_next(target)
            result = target(*args, **kwargs)
        except BaseException as exc:
            error: BaseException | None = exc
        else:
            error = None
        if error is not None:
            _settle_after(recording, error)
            _raise(recording, error)
        recording.materialize("exit", need_value=False)
        return _concrete(recording, result)
    finally:
        recording.end_loans()  # nothing of this call is pending any more (or ever runs)
        forget_stores()
        tracer.leave(previous)
        collector.more_collections()


async def arun(
    recording: Recording,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    target: Callable[..., Any] | None = None,
) -> Any:
    """:func:`run` for an ``async def``: awaited on the caller's loop, waits awaited too.

    The body's coroutine is stepped with ``recording`` entered on this thread around
    each step (``awaiting.Driven``); the exit and exception syncs are awaited too.
    """
    from ember.xcs._internal import awaiting

    if target is None:
        target = fn
    recording.loop, recording.loop_thread = awaiting.current_loop()
    for name, value in _named_arguments(fn, args, kwargs):
        recording.add_input(name, value)
    collector.fewer_collections()
    try:
        try:
            previous = tracer.enter(recording)
            try:
                enter_next(target)
                coroutine = target(*args, **kwargs)
            finally:
                tracer.leave(previous)
            result = await awaiting.Driven(coroutine, recording)
        except BaseException as exc:
            error: BaseException | None = exc
        else:
            error = None
        if error is not None:
            if isinstance(error, (Exception, SystemExit)):
                await awaiting.wait(recording, "exception", None, False, None, 0)
            else:
                recording.cancel_pending(error)  # cancelled: run nothing more
            _raise(recording, error)
        await awaiting.wait(recording, "exit", None, False, None, 0)
        return _concrete(recording, result)
    finally:
        recording.end_loans()
        forget_stores()
        collector.more_collections()


def _raise(recording: Recording, error: BaseException) -> NoReturn:
    """Raise what the function raised (everything before it has run)."""
    if isinstance(error, TypeError) and _from_pending_value(recording, error):
        raise PendingValueError(_user_location(error), error) from error
    if recording.execute and isinstance(error, Exception):
        # What the function stored before raising, and the exception's own
        # values (``self.reply = reply``), are left concrete too.
        leniently = Concretizer(_own_values(recording, leniently=True))
        _settle_stores(recording, leniently, error)
    reraise(error)


def _concrete(recording: Recording, result: Any) -> Any:
    """The function's result, and what it stored, with every deferred value made a value."""
    if not recording.execute:
        return None
    # One concretizer for all: an object stored in two places is patched once.
    concrete = Concretizer(_own_values(recording))
    _settle_stores(recording, concrete)
    return concrete(result)


def _settle_stores(recording: Recording, concrete: Concretizer, *more: Any) -> None:
    """Replace the deferred values stored into remembered places (in place) by values."""
    for (_, name), namespace in recording.remembered_globals.items():
        value = namespace.get(name)
        new = concrete(value)
        if new is not value:
            namespace[name] = new
    for holder in (*recording.remembered.values(), *more):
        if isinstance(holder, types.ModuleType):  # a module's attributes
            for name, value in list(vars(holder).items()):
                new = concrete(value)
                if new is not value:
                    setattr(holder, name, new)
        else:
            concrete(holder)


def _own_values(recording: Recording, *, leniently: bool = False) -> Any:
    """How exit settles a deferred value.

    This trace's are made values (a failed one is left in place when ``leniently``:
    the exception being raised wins); another trace's are left for its own exit.
    """

    def value(deferred: Deferred) -> Any:
        if deferred._self_owner is not recording:
            return deferred
        if not leniently:
            return recording.demand(deferred._self_node)
        try:
            return recording.demand(deferred._self_node)
        except BaseException:
            return deferred

    return value


_PROXY_NAME = re.compile(rf"\b{Deferred.__name__}\b")


def _from_pending_value(recording: Recording, error: TypeError) -> bool:
    """Whether ``error`` was raised by a callee given a deferred value (not by an op).

    C code names the type it refused, and a deferred value's type is its proxy class.
    """
    if recording.failed_with(error):
        return False  # an op's own TypeError
    return _PROXY_NAME.search(str(error)) is not None


def _user_location(error: BaseException) -> str:
    """The innermost user-code line the exception passed through, as messages show it."""
    location = "<unknown>"
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if is_user_code(code) and linecache.getline(code.co_filename, tb.tb_lineno):
            location = describe_location(code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return location


def _settle_after(recording: Recording, error: BaseException) -> None:
    """Finish pending work after ``fn`` raised ``error``; raise an earlier op failure."""
    if isinstance(error, (Exception, SystemExit)):
        # A deliberate exit too: plain Python ran, and printed, everything before it.
        recording.materialize("exception", need_value=False)
        return
    recording.cancel_pending(error)  # KeyboardInterrupt: run nothing more


def _named_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """Pair each argument with its parameter name (``*args`` ones as ``args[i]``)."""
    code = getattr(fn, "__code__", None)
    names: tuple[str, ...] = ()
    star = "args"
    if code is not None:
        names = code.co_varnames[: code.co_argcount]
        if isinstance(fn, types.MethodType):
            names = names[1:]  # ``self`` is bound, not among the arguments
        if code.co_flags & 0x04:  # CO_VARARGS
            star = code.co_varnames[code.co_argcount + code.co_kwonlyargcount]
    pairs = [
        (names[i] if i < len(names) else f"{star}[{i - len(names)}]", value)
        for i, value in enumerate(args)
    ]
    pairs.extend(kwargs.items())
    return pairs
