"""The call protocol: ``@xcs.callee(f)(*@xcs.args(a, *b), **@xcs.kwargs(k=c, **d))``.

The call itself still happens in the user's own frame, so ``super()``, ``locals()``,
logging's ``funcName`` and warning locations are untouched. :func:`callee` decides what
``f`` is and returns what to call (``callees.py``); :func:`args` and :func:`kwargs`
then prepare the values for it. Between the two the arguments are evaluated, and they
may contain calls of their own: the decision travels on the per-thread ``stack`` whose
entries carry the calling frame's id, so nested calls, generators suspended
mid-argument and statements abandoned by an exception never hand a call the wrong
decision.

Library code gets concrete values: pending ones are materialized (list items and dict
values patched in place). A generator argument is drained first (its ops recorded,
then run together) for consumers that always exhaust it (``sorted``, ``set``, ``sum``,
...), and otherwise given as a generator of concrete items, so ``any``, ``next`` and
``islice`` still stop early -- and leave the rest to the caller.

A call of library code with an object lent to a pending op (see ``Recording.lent``)
waits for that op only if the call may change the object: a method of it not known to
only read (``history.append``, ``cursor.execute``, ``environ.update``), one of the few
functions that change their arguments (``setattr``, ``random.shuffle``,
``heapq.heappush``), or a bound method that changes its object handed to library code
(``map(history.append, xs)``). Other library functions are taken to read what they are
given (``print``, ``json.dumps``, ``str``, ``copy.copy``).

A library call (not a pure one, not a store into a container) first runs the
effects waiting (``print`` and logging of pending values, see ``effects.py``): it may
observe or add to their output.
"""

from __future__ import annotations

import bisect
import heapq
import operator
import random
import types
from collections.abc import Iterator
from types import BuiltinMethodType
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.concrete import ATOMIC_IDS, concrete_argument
from ember.xcs._internal.deferred import Deferred, frozen
from ember.xcs._internal.dispatch.callees import (
    DRAIN,
    FORMAT,
    METHOD,
    PASS,
    STORE,
    STORING,
    STORING_NAMES,
    CMethod,
    known_resolution,
    lookup,
    member,
    method_kind,
)
from ember.xcs._internal.dispatch.effects import flush_effects
from ember.xcs._internal.dispatch.expressions import value
from ember.xcs._internal.dispatch.frames import caller, scope, stack
from ember.xcs._internal.dispatch.pure import pure_method
from ember.xcs._internal.dispatch.statements import remember, sync
from ember.xcs._internal.waits import calling

__all__ = ["args", "args_last", "call0", "callee", "kwargs"]


def _find(remove: bool) -> tuple[int, Any]:
    """The decision :func:`callee` made in the calling frame: (kind, callee).

    The most recent entry of that frame; entries above it were left by calls whose
    arguments raised, or by generators suspended inside their arguments.
    """
    frame = id(caller(2))
    entries = stack.entries
    for index in range(len(entries) - 1, -1, -1):
        if entries[index][0] == frame:
            _, kind, f, code = entries[index]
            if remove:
                del entries[index]
                stack.next = code  # the call happens right after this helper returns
            return kind, f
    return PASS, None  # called outside the protocol: leave the values alone


def call0(f: Any) -> Any:
    """``f()`` with no arguments: what to call."""
    known = known_resolution(f)
    if known is not None and (known[3] is None or known[3] is f.__code__):
        if tracer.effects and known[1] != PASS:
            flush_effects()  # library code may observe the output
        stack.next = known[2]
        return known[0]
    target, kind, code = lookup(f)
    if tracer.effects and kind != PASS and kind != METHOD:
        flush_effects()
    if tracer.lenders and kind != PASS and kind != METHOD:
        recording = tracer.active()
        if recording is not None and recording.lent:
            recording.before_change(*_changed_by(target, ()))
    stack.next = code
    return target


def callee(f: Any) -> Any:
    """The callee of a call with arguments: what to call (they follow via args/kwargs)."""
    known = known_resolution(f)
    if known is not None and (known[3] is None or known[3] is f.__code__):
        stack.entries.append((id(caller()), known[1], f, known[2]))
        return known[0]
    cls = type(f)
    receiver = getattr(f, "__self__", None) if cls is BuiltinMethodType or cls is CMethod else None
    if (
        receiver is not None
        and type(receiver) is not types.ModuleType
        and type(receiver) is not type
    ):
        pure = pure_method(f)  # "lit".replace(...), pattern.search(...): glue if pending
        if pure is not None:
            stack.entries.append((id(caller()), PASS, f, None))
            return pure
        kind = method_kind(f)  # out.append, text.split: the method itself is called
        if kind is not None:
            stack.entries.append((id(caller()), kind, f, None))
            return f
    target, kind, code = lookup(f)
    stack.entries.append((id(caller()), kind, f, code))
    return target


def args(*values: Any) -> tuple[Any, ...]:
    """Positional arguments of a call that also has keyword arguments."""
    kind, receiver = _find(remove=False)
    return _prepare(values, kind, receiver)


def args_last(*values: Any) -> tuple[Any, ...]:
    """Positional arguments of a call with no keyword arguments."""
    entries = stack.entries
    if entries and entries[-1][0] == id(caller()):  # the usual case: the last entry
        entry = entries[-1]
        _, kind, f, code = entry
        if kind != PASS:
            # Prepared before the entry goes: in async code preparing may wait and be
            # tried again (dispatch/awaits.py), finding the entry where it was.
            values = _prepare(values, kind, f)
        if entries and entries[-1] is entry:
            entries.pop()
        else:
            entries.remove(entry)
        stack.next = code
        return values
    kind, f = _find(remove=False)
    if kind != PASS:
        values = _prepare(values, kind, f)
    _find(remove=True)
    return values


def kwargs(**values: Any) -> dict[str, Any]:
    """Keyword arguments of a call (evaluated after the positional ones)."""
    kind, receiver = _find(remove=False)
    if kind != PASS:  # prepared before the entry goes (see args_last)
        values = dict(zip(values, _prepare(tuple(values.values()), kind, receiver), strict=True))
    _find(remove=True)
    return values


_READING_METHODS = frozenset(
    {"copy", "count", "get", "index", "items", "keys", "values", "__getitem__", "__len__"}
    | {"__contains__", "__iter__", "__reversed__", "__repr__", "__str__", "__format__"}
    | {"union", "intersection", "difference", "symmetric_difference", "isdisjoint"}
    | {"issubset", "issuperset", "startswith", "endswith", "find", "format", "join"}
)


# Methods that only read, on any library object: pydantic models, templates, patterns.
_READING_LIBRARY_METHODS = frozenset(
    {"model_dump", "model_dump_json", "safe_substitute", "substitute", "search", "match"}
    | {"fullmatch", "findall", "finditer", "sub", "subn", "split", "__str__", "__repr__"}
    | {"debug", "info", "warning", "error", "exception", "critical", "log", "isEnabledFor"}
)


_CHANGING_FUNCTIONS: frozenset[Any] = frozenset(
    {setattr, delattr, operator.setitem, operator.delitem, random.shuffle}
    | {heapq.heappush, heapq.heappop, heapq.heapify, heapq.heapreplace, heapq.heappushpop}
    | {bisect.insort, bisect.insort_left, bisect.insort_right}
)


def _changed_by(f: Any, values: tuple[Any, ...]) -> list[Any]:
    """What library callee ``f`` called with ``values`` may change (see above)."""
    changed = [v for v in values if _changing_method(v)]
    receiver = getattr(f, "__self__", None)
    if receiver is not None and not isinstance(receiver, types.ModuleType):
        if _changing_method(f):
            changed.append(receiver)
    elif member(f, _CHANGING_FUNCTIONS):
        changed.extend(values)
    return [getattr(v, "__self__", v) for v in changed]


def _changing_method(f: Any) -> bool:
    """Whether ``f`` is a bound method that may change its object."""
    cls = type(f)
    if cls is not BuiltinMethodType and cls is not CMethod and cls is not types.MethodType:
        return False
    receiver = f.__self__
    if receiver is None or isinstance(receiver, (types.ModuleType, type)):
        return False
    if f.__name__ in _READING_METHODS and type(receiver).__module__ == "builtins":
        return False  # list.copy, dict.get on built-in containers only read
    return f.__name__ not in _READING_LIBRARY_METHODS


def _pending_inside(value: Any) -> bool:
    cls = type(value)
    if cls is Deferred:
        return True
    if cls is list or cls is tuple or cls is dict:
        return any(type(v) is Deferred for v in _members(value))
    return False


def _members(value: Any) -> Iterator[Any]:
    return iter(value.values()) if type(value) is dict else iter(value)


def _prepare(values: tuple[Any, ...], kind: int, f: Any) -> tuple[Any, ...]:
    if kind == PASS:
        return values
    # Library code may observe or add to the output: waiting prints and log records
    # go first. (A pure method of a pending value stays glue.)
    if (
        tracer.effects
        and kind != STORE
        and kind != FORMAT
        and (kind != METHOD or not all(frozen(v) for v in values))
    ):
        flush_effects()
    if tracer.lenders and kind != METHOD and kind != FORMAT:
        recording = tracer.active()
        if recording is not None and recording.lent:
            recording.before_change(*_changed_by(f, values))
    if kind == METHOD:
        if all(frozen(v) for v in values):
            return values  # recorded as glue on the pending receiver
        # It runs now, on the receiver's value. A container storing what it is given
        # (``answers.append({...})``) takes it as it is and is made concrete at exit;
        # any other method gets concrete arguments.
        if f._self_method in STORING_NAMES:
            receiver = getattr(f.__wrapped__, "__self__", None)
            if (type(receiver), f._self_method) in STORING:
                remember(receiver)
                return values
        kind = DRAIN
    if kind == STORE:
        for v in values:
            if id(type(v)) not in ATOMIC_IDS:
                break
        else:
            return values  # plain values (strings, numbers) are stored: the usual case
        if scope.depth and any(_pending_inside(v) for v in values):
            sync()  # inside a try body: materialize before storing
            return tuple([value(v) for v in values])
        # A container, object, generator or zip may hold -- or yield as it is consumed --
        # pending values, at any depth: the receiver is made concrete at exit.
        remember(f.__self__)  # the list, dict or deque stored into
        return values
    for v in values:
        if id(type(v)) not in ATOMIC_IDS:
            break
    else:
        return values  # the common case: nothing to look into
    if kind == FORMAT:
        # type(), not isinstance(): isinstance would demand a pending value's class.
        return tuple([list(v) if type(v) is types.GeneratorType else v for v in values])
    drain = kind == DRAIN
    tracer.waiting_for(calling(getattr(f, "__qualname__", None) or type(f).__name__))
    try:
        return tuple([concrete_argument(v, drain) for v in values])
    finally:
        tracer.waiting_for(None)
