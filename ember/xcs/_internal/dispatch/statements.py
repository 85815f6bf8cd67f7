"""Statements the rewrite routes here: exception scopes and stores that outlive a call.

Exception scopes (see ``rewrite/statements.py``): :func:`sync` before ``try``/``with``,
:func:`now` before a bind or store inside a ``try`` body (and a ``yield`` in a
``try``/``with`` body), :func:`settle` when an exception leaves one, :func:`enter` and
:func:`leave` around a ``try`` body.

Stores: the value stored into an attribute, item or global goes through
:func:`store`/:func:`store_global`, and the object stored into through
:func:`holder` (after the value, as Python evaluates them); an object that got a pending
value is remembered and made concrete at exit. A store into an object a pending op got
by reference waits for it, or hands it a copy (``Recording.before_change``). When
storing runs Python code (a setter, ``__setattr__``, ``__setitem__``, a descriptor),
:class:`Store` calls it: yours as its twin, a library's with a concrete value.
Augmented assignments (``obj.n += v``, ``name += v``) remember what they change and
give the target's own operator a concrete value where it would take the proxy.
"""

from __future__ import annotations

import collections
import functools
import operator
import sys
import types
from collections.abc import Callable
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.concrete import ATOMIC_IDS, concretize, map_items
from ember.xcs._internal.deferred import Deferred, value_of
from ember.xcs._internal.dispatch.clear import clear
from ember.xcs._internal.dispatch.expressions import CACHE_MAX, operates_itself, value
from ember.xcs._internal.dispatch.formatting import first_pending
from ember.xcs._internal.dispatch.frames import caller, scope, stack
from ember.xcs._internal.dispatch.twins import twin_of
from ember.xcs._internal.errors import reraise
from ember.xcs._internal.purity import class_attribute

__all__ = [
    "augmented",
    "changing",
    "each_now",
    "enter",
    "forget_stores",
    "holder",
    "iadd",
    "ior",
    "kept",
    "kept_globals",
    "leave",
    "now",
    "remember",
    "scope_end",
    "scope_sync",
    "settle",
    "store",
    "store_global",
    "sync",
]


def scope_sync(names: tuple[str, ...] | None) -> None:
    """Before a try or with statement: a sync, unless its body is clear.

    Clear (``clear.py``): the values of ``names``, what the body reads, are inert.
    ``names`` is None for a body that can never be clear. The decision is handed to
    :func:`enter`, at the start of the body, through the frame.
    """
    frame = caller()
    recording = tracer.active()
    is_clear = names is not None and recording is not None and clear(frame, names)
    scope.decisions[id(frame)] = is_clear
    if not is_clear and recording is not None:
        _materialize(recording)


def sync() -> None:
    """Materialize everything pending (after a statement in a try, at the end of a with).

    Inside a clear block nothing there is pending: nothing waits.
    """
    blocks = scope.blocks
    if blocks and blocks[-1] is not None:
        return
    recording = tracer.active()
    if recording is not None:
        _materialize(recording)


def scope_end() -> None:
    """After a try or with statement: a failure held inside a clear block is raised now.

    It comes from something recorded before the block (plain Python would have raised
    it there), and the block's handlers never saw it; raising it here, rather than at
    the next sync, keeps the code after the block from running.
    """
    if scope.blocks and any(mark is not None for mark in scope.blocks):
        return  # still inside a clear block: held until it ends
    recording = tracer.active()
    if recording is not None and recording.held is not None:
        recording.materialize("scope", need_value=False)


def _materialize(recording: tracer.Recording) -> None:
    if recording.pending or recording.held is not None:
        recording.materialize("scope", need_value=False)


def now(x: Any) -> Any:
    """A value bound or returned inside a try body: everything pending runs first."""
    sync()
    return value(x)


def settle() -> None:
    """An exception is leaving a try/with body: run what is pending first.

    An op that failed earlier in program order replaces the exception: plain Python
    would have raised that one first.
    """
    if not isinstance(sys.exc_info()[1], Exception):
        return  # KeyboardInterrupt and the like: nothing more runs
    if scope.blocks and scope.blocks[-1] is not None:
        return  # a clear block: no failure of its own to look for
    try:
        sync()
    except BaseException as failure:
        error = failure
    else:
        return
    reraise(error, detach=True)


def forget_stores() -> None:
    """The outermost traced call on this thread ended: no store of it is in flight."""
    scope.pending_stores.clear()
    scope.decisions.clear()


def enter(try_body: bool) -> None:
    """A try or with body begins (as :func:`scope_sync` decided).

    A try body that is not clear counts in ``scope.depth``: stores made from here
    on materialize first. In a clear body, failures of what was recorded before it
    are held (``tracer.hold_failures``), never raised inside it.
    """
    if scope.decisions.pop(id(caller()), False):
        recording = tracer.active()
        mark = len(recording.nodes) if recording is not None else 0
        tracer.hold_failures(mark)
        scope.blocks.append(mark)
        return
    scope.blocks.append(None)
    if try_body:
        scope.depth += 1


def leave(try_body: bool) -> None:
    """A try or with body ends."""
    mark = scope.blocks.pop()
    if mark is not None:
        outer = next((m for m in reversed(scope.blocks) if m is not None), 0)
        tracer.hold_failures(outer)
    elif try_body:
        scope.depth -= 1


def store(x: Any) -> Any:
    """A value assigned to an attribute or item (noted for :func:`holder` if pending).

    Inside a try body it is materialized first.
    """
    if scope.depth:
        x = now(x)
    pending = _holds_pending(x)
    if pending or scope.pending_stores:
        scope.pending_stores[id(caller())] = pending
    return x


def store_global(x: Any, names: tuple[str, ...]) -> Any:
    """A value assigned to globals ``names``: made concrete at exit if pending."""
    if scope.depth:
        x = now(x)
    if _holds_pending(x):
        _remember_globals(caller().f_globals, names)
    return x


def holder(target: Any) -> Any:
    """The object an attribute or item is stored into.

    Remembered if it got a pending value; pending readers of it run first. If
    storing into it runs Python code (a property setter, ``__setattr__``,
    ``__setitem__``, a descriptor), the store goes through :class:`Store`.
    """
    in_python = id(type(target)) not in ATOMIC_IDS and STORES_IN_PYTHON[type(target)]
    _before_change(target, attribute_store=not in_python)
    if scope.pending_stores and scope.pending_stores.get(id(caller())):
        remember(target)
        if in_python:
            return Store(target)
    return target


def kept(target: Any) -> Any:
    """The object of ``obj.n += v`` or ``obj[k] += v``: made concrete at exit."""
    _before_change(target, attribute_store=not STORES_IN_PYTHON[type(target)])
    remember(target)
    if STORES_IN_PYTHON[type(target)]:
        return Store(target)
    return target


def augmented(target: Any) -> Any:
    """The object of ``obj.n += v`` / ``obj[k] += v`` with a value ``v`` that may be pending.

    As :func:`kept`, and the current value's in-place operator gets ``v`` concrete
    when its class would take the proxy as it is (numpy, yours in Python).
    """
    kept(target)
    return _Augmented(target)


class _Augmented:
    """Reads the current value as an :class:`_Operand`, stores the result as ``kept`` does."""

    __slots__ = ("__target",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_Augmented__target", target)

    def __getattr__(self, name: str) -> Any:
        return _Operand(getattr(object.__getattribute__(self, "_Augmented__target"), name))

    def __getitem__(self, key: Any) -> Any:
        return _Operand(object.__getattribute__(self, "_Augmented__target")[key])

    def __setattr__(self, name: str, value: Any) -> None:
        target = object.__getattribute__(self, "_Augmented__target")
        setattr(Store(target) if STORES_IN_PYTHON[type(target)] else target, name, value)

    def __setitem__(self, key: Any, value: Any) -> None:
        target = object.__getattribute__(self, "_Augmented__target")
        (Store(target) if STORES_IN_PYTHON[type(target)] else target)[key] = value


class _Operand:
    """The current value of an augmented target: its in-place operator, applied safely."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def _apply(self, fn: Callable[[Any, Any], Any], other: Any) -> Any:
        current = self.value
        pending = type(other) is Deferred and type(current) is not Deferred
        if pending and operates_itself(type(current)):
            other = value_of(other)
        return fn(current, other)


for _name, _fn in {
    "iadd": operator.iadd,
    "isub": operator.isub,
    "imul": operator.imul,
    "imatmul": operator.imatmul,
    "itruediv": operator.itruediv,
    "ifloordiv": operator.ifloordiv,
    "imod": operator.imod,
    "ipow": operator.ipow,
    "ilshift": operator.ilshift,
    "irshift": operator.irshift,
    "iand": operator.iand,
    "ixor": operator.ixor,
    "ior": operator.ior,
}.items():
    setattr(_Operand, f"__{_name}__", functools.partialmethod(_Operand._apply, _fn))


class _StoresInPython(dict[type, bool]):
    """Per class: does storing an attribute or item into its objects run Python code."""

    def __missing__(self, cls: type) -> bool:
        found = (
            type(getattr(cls, "__setattr__", None)) is types.FunctionType
            or type(getattr(cls, "__setitem__", None)) is types.FunctionType
            or any(_python_setter(v) for k in cls.__mro__ for v in vars(k).values())
        )
        if len(self) >= CACHE_MAX:
            self.clear()
        self[cls] = found
        return found


def _python_setter(attribute: Any) -> bool:
    """Whether a class attribute is a data descriptor whose ``__set__`` is Python code."""
    if isinstance(attribute, property):
        return attribute.fset is not None
    setter = getattr(type(attribute), "__set__", None)
    return type(setter) is types.FunctionType


STORES_IN_PYTHON = _StoresInPython()


class Store:
    """Stands for the target of ``obj.name = v`` / ``obj[k] = v`` whose store runs Python code.

    The interpreter would hand the value to that code as it is. Your code (a
    setter, ``__setattr__``, ``__setitem__``, ``__set__``) runs as its twin, which
    takes pending values; a library's (pydantic's ``BaseModel.__setattr__``,
    ``WeakValueDictionary.__setitem__``) gets concrete values, as library calls do.
    Loads (``obj.n += v`` reads first) pass through.
    """

    __slots__ = ("__target",)  # private: _Store__target, a name no code of yours uses

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_Store__target", target)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_Store__target"), name)

    def __getitem__(self, key: Any) -> Any:
        return object.__getattribute__(self, "_Store__target")[key]

    def __setattr__(self, name: str, value: Any) -> None:
        target = object.__getattribute__(self, "_Store__target")
        cls = type(target)
        setter = getattr(cls, "__setattr__", None)
        if type(setter) is types.FunctionType:
            _call_python(setter, (target, name, value))
            return
        attribute = class_attribute(cls, name)
        if isinstance(attribute, property) and type(attribute.fset) is types.FunctionType:
            _call_python(attribute.fset, (target, value))
        elif type(set_ := getattr(type(attribute), "__set__", None)) is types.FunctionType:
            _call_python(set_, (attribute, target, value))
        else:
            setattr(target, name, value)

    def __setitem__(self, key: Any, value: Any) -> None:
        target = object.__getattribute__(self, "_Store__target")
        setitem = getattr(type(target), "__setitem__", None)
        if type(setitem) is types.FunctionType:
            _call_python(setitem, (target, key, value))
        else:
            target[key] = value


def _call_python(fn: types.FunctionType, args: tuple[Any, ...]) -> Any:
    """Call a store dunder: your code as its twin; a library's with a concrete value (last)."""
    twin = twin_of(fn)
    if twin is None:
        return fn(*args[:-1], concretize(args[-1], value_of))
    stack.next = twin.__code__  # entered through the dispatcher: its ops may defer
    return twin(*args)


def iadd(target: Any, x: Any) -> Any:
    """``name += x``: a list extended in place (one the caller may hold) is remembered."""
    x = _keep_extended(target, x)
    target += x
    return target


def ior(target: Any, x: Any) -> Any:
    """``name |= x``: a dict updated in place (one the caller may hold) is remembered."""
    x = _keep_extended(target, x)
    target |= x
    return target


def _before_change(target: Any, *, attribute_store: bool = False) -> None:
    """User code is about to change ``target``: pending calls reading it run first.

    ``attribute_store``: the change is an attribute or item store that runs no code
    of the target's class (see ``Recording.before_change``).
    """
    if tracer.lenders:
        recording = tracer.active()
        if recording is not None and recording.lent:
            recording.before_change(target, attribute_store=attribute_store)


def _keep_extended(target: Any, x: Any) -> Any:
    """Before ``target += x`` on an object: what it changes is remembered.

    A pending ``x`` is made a value: the target's own code takes it (a deque, a numpy
    array, your class), and a list would iterate it at once anyway.
    """
    if type(target) is Deferred or id(type(target)) in ATOMIC_IDS:
        return x  # ``n += 1``: a new value is bound, no object changes
    _before_change(target)
    if id(type(x)) in ATOMIC_IDS:
        return x
    if type(x) is Deferred:  # the target's own code takes it (deque, numpy, yours)
        return value_of(x)
    if isinstance(target, (list, dict, collections.deque, bytearray)):
        remember(target)
    return x


def kept_globals(x: Any, name: str) -> Any:
    """The value of ``g += x`` for a global ``g`` (which may become pending): settled at exit."""
    _remember_globals(caller().f_globals, (name,))
    return x


def _remember_globals(namespace: dict[str, Any], names: tuple[str, ...]) -> None:
    recording = tracer.active()
    if recording is not None:
        recording.remember_globals(namespace, names)


def remember(container: Any) -> None:
    """Make ``container`` concrete at the exit of the active trace (if any)."""
    recording = tracer.active()
    if recording is not None:
        recording.remember(container)


def _holds_pending(x: Any) -> bool:
    if type(x) is Deferred:
        return True
    if type(x) in (list, tuple, dict, set):
        return first_pending(x.values() if type(x) is dict else x) is not None
    return False


def changing(target: Any) -> Any:
    """The object of ``del obj.name`` or ``del obj[k]``: pending readers of it run first."""
    _before_change(target)
    return target


def each_now(source: Any) -> Any:
    """``yield from source`` inside a ``try`` or ``with`` body: each item is a store."""
    return map_items(source, now, owned=True)
