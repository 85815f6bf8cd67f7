"""What a callee is, what to call instead, and how it takes its arguments.

* an **op** is returned as its *deferring* entry point: the call records a node and
  gives a deferred value. An op called any other way while a trace is active (by
  library code, a property, a dunder) runs at once -- it is still a node;
* **user code** (see ``usercode.py``) is returned as its rewritten twin, a user class
  as what its constructor needs (``constructors.py``), and jitted functions as the twin
  of what they wrap (inlined, through a hook the jit layer registers);
* **structure-only builtins** (``list``, ``tuple``, ``dict``, ``zip``, ``len``,
  ``isinstance``, ``list.append``, ``dict.update``, ...) get pending values as they are;
* **formatting** (``str.join``, ``str.format``) of pending values is recorded as glue;
* **known-pure calls** (``int``, ``json.loads``, ``re.search``, ``str`` methods, what
  ``xcs.pure`` declared; see ``pure.py``) with a pending argument are recorded as glue;
* **print and logging** are recorded as ordered effects (``effects.py``);
* **clock reads** wait for what is pending (``clocks.py``);
* **everything else** is library code and gets concrete values.

Resolutions of long-lived callees (builtins, library classes, module-level functions
and ops) are cached by the callee itself: most call sites are answered by one lookup.
"""

from __future__ import annotations

import collections
import functools
import re
import types
from collections.abc import Callable, Collection
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.deferred import Deferred, value_of
from ember.xcs._internal.dispatch.clocks import as_clock
from ember.xcs._internal.dispatch.constructors import constructor
from ember.xcs._internal.dispatch.effects import EFFECTS
from ember.xcs._internal.dispatch.expressions import CACHE_MAX, value
from ember.xcs._internal.dispatch.formatting import format_glue, join_glue
from ember.xcs._internal.dispatch.frames import caller, entering, may_defer
from ember.xcs._internal.dispatch.pure import PURE, PureCall, length, pure_method
from ember.xcs._internal.dispatch.registry import registered
from ember.xcs._internal.dispatch.twins import twin_of, unrewritable
from ember.xcs._internal.protocol import Op, is_composite, is_op
from ember.xcs._internal.purity import class_attribute
from ember.xcs._internal.rewrite import Unrewritable
from ember.xcs._internal.usercode import is_user_class, known_library_class
from ember.xcs._internal.waits import method_call

__all__ = [
    "CONCRETE",
    "DRAIN",
    "FORMAT",
    "METHOD",
    "PASS",
    "STORE",
    "STORING",
    "STORING_NAMES",
    "CMethod",
    "entry_point",
    "forget_resolutions",
    "known_resolution",
    "lookup",
    "member",
    "method_kind",
    "register",
]


CMethod = type(re.compile("").search)
"""Bound methods of C classes that take their defining class (``pattern.search``):
a subclass of ``types.BuiltinMethodType``, of another type."""


# How a callee takes its arguments.
PASS = 0  # as they are (ops, user code, structure-only builtins)


STORE = 1  # as they are; a receiving container is made concrete at exit (list.append)


CONCRETE = 2  # concrete values; generators yield concrete items one by one


DRAIN = 3  # concrete values; generators drained first, their ops run together


FORMAT = 4  # as they are, generators drained (str.join, str.format: recorded as glue)


METHOD = 5  # a pending value's method: glue if the arguments cannot change, else DRAIN


_STRUCTURE: frozenset[Any] = frozenset(
    {
        list,
        tuple,
        dict,
        zip,
        enumerate,
        reversed,
        isinstance,
        issubclass,
        iter,
        range,
        slice,
    }
)


_EXHAUSTING: frozenset[Any] = frozenset(
    {sorted, set, frozenset, sum, min, max, collections.Counter, str.join}
)


# Methods of containers that only store or move references.
STORING = {
    (list, "append"),
    (list, "extend"),
    (list, "insert"),
    (list, "__setitem__"),
    (dict, "update"),
    (dict, "setdefault"),
    (dict, "__setitem__"),
    (collections.deque, "append"),
    (collections.deque, "appendleft"),
    (collections.deque, "extend"),
}


STORING_NAMES = frozenset(name for _, name in STORING)


def member(value: Any, group: Collection[Any]) -> bool:
    """``value in group``, False for a value that refuses hashing (an odd metaclass)."""
    try:
        return value in group
    except TypeError:
        return False


def _type_of(*args: Any, **kwargs: Any) -> Any:
    """``type(x)``: a container holding pending values answers as it is (structure only)."""
    if len(args) == 1 and not kwargs:
        return type(value(args[0]))  # a pending value's own type needs its value
    return type(*[value(a) for a in args], **kwargs)  # type(name, bases, ns): a class


def _id_of(x: Any, /) -> int:
    """``id(x)``: a container's identity never waits; a pending value's needs its value."""
    return id(value(x))


def _callable(x: Any, /) -> bool:
    """``callable(x)``: the proxy is always callable, so a pending value is asked by value."""
    return callable(value(x))


# Builtins answered from the structure of their argument: a pending value itself is
# made a value (its type, identity or callability is its value's), a container holding
# pending values is asked as it is.
_BY_STRUCTURE: dict[Any, Callable[..., Any]] = {
    type: _type_of,
    id: _id_of,
    callable: _callable,
    len: length,  # of a pending value: glue (pure.py)
}


def _resolve_builtin(f: Any) -> tuple[Any, int]:
    clock = as_clock(f)
    if clock is not None:
        return clock, CONCRETE
    receiver = getattr(f, "__self__", None)
    if receiver is None or isinstance(receiver, types.ModuleType):
        if f in _STRUCTURE:
            return f, PASS
        return f, DRAIN if f in _EXHAUSTING else CONCRETE
    pure = pure_method(f)
    if pure is not None:  # "lit".replace(...), pattern.search(...)
        return pure, PASS
    cls = type(receiver)
    if cls is str and f.__name__ == "join":
        return functools.partial(join_glue, receiver), FORMAT
    if cls is str and f.__name__ == "format":
        return functools.partial(format_glue, receiver), FORMAT
    return f, STORE if (cls, f.__name__) in STORING else CONCRETE


def method_kind(f: Any) -> int | None:
    """How a builtin type's method (``out.append``) takes its arguments, or None.

    None for methods that are not called themselves (``str.join`` becomes glue).
    """
    cls = type(f.__self__)
    if cls is str and f.__name__ in ("join", "format"):
        return None
    return STORE if (cls, f.__name__) in STORING else CONCRETE


def resolve(f: Any) -> tuple[Any, int]:
    """What to call for ``f``, and how it takes its arguments."""
    cls = type(f)
    if cls is Deferred:  # as in lookup
        return f, METHOD if f._self_method is not None else CONCRETE
    pure = member(f, PURE) and PURE[f]
    if pure:
        return PureCall(f, *pure), PASS
    if member(f, _BY_STRUCTURE):
        return _BY_STRUCTURE[f], PASS
    if member(f, EFFECTS):
        return EFFECTS[f], PASS
    if cls in (types.BuiltinFunctionType, CMethod, types.MethodWrapperType):
        return _resolve_builtin(f)
    if cls in (list, tuple, dict) or member(f, _STRUCTURE):
        return f, PASS
    hook = _HOOKS.get(cls)
    if hook is not None:
        return hook(f)
    if isinstance(f, type):
        return _resolve_class(f)
    return _resolve_instance(f)


_HOOKS: dict[type, Callable[[Any], tuple[Any, int]]] = {}


def _resolve_function(fn: types.FunctionType) -> tuple[Any, int]:
    sdk_call = registered(fn)  # an SDK request method, a client's (registry.py)
    if sdk_call is not None:
        return sdk_call, PASS
    twin = twin_of(fn)
    return (twin, PASS) if twin is not None else (fn, CONCRETE)


def _resolve_method(method: types.MethodType) -> tuple[Any, int]:
    fn = method.__func__
    if type(fn) is types.FunctionType and is_composite(method.__self__):
        twin = twin_of(fn, composite=True)  # a composite's methods are traced through
        target, kind = (twin, PASS) if twin is not None else (fn, CONCRETE)
    else:
        target, kind = resolve(fn)
    if target is fn:
        return method, kind
    return types.MethodType(target, method.__self__), kind


def _resolve_partial(partial: functools.partial[Any]) -> tuple[Any, int]:
    target, kind = resolve(partial.func)
    if target is partial.func:
        return partial, kind
    return functools.partial(target, *partial.args, **partial.keywords), kind


def _resolve_class(cls: type) -> tuple[Any, int]:
    """A library class gets concrete values; a user class, what its constructor needs."""
    if is_user_class(cls):
        target, takes_pending = constructor(cls)
        return target, PASS if takes_pending else CONCRETE
    if member(cls, _EXHAUSTING):
        return cls, DRAIN
    return cls, CONCRETE


def _resolve_op(op: Op[..., Any]) -> tuple[Any, int]:
    return functools.partial(_call_op, op), PASS


def _call_op(op: Op[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """An op called by rewritten code: deferred if its caller was entered by us."""
    if may_defer(caller()):
        return op.defer(*args, **kwargs)
    return op(*args, **kwargs)


class _Deferring:
    """Calls an op-like object (one with ``__xcs_op__``) so that its ``call_op`` defers."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not may_defer(caller()):
            return self._target(*args, **kwargs)
        tracer.allow_deferral()
        try:
            return self._target(*args, **kwargs)
        finally:
            # Consumed by call_op; cleared here when the call failed before reaching it
            # (bad arguments), so no later call of library code defers by mistake.
            tracer.take_deferral()


class _Opaque:
    """Calls a callee xcs cannot see through; notes it when ops ran inside (at once)."""

    __slots__ = ("_decorator", "_target")

    def __init__(self, target: Any, decorator: str) -> None:
        self._target = target
        self._decorator = decorator

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recording = tracer.active()
        before = len(recording.ops) if recording is not None else 0
        try:
            return self._target(*args, **kwargs)
        finally:
            if recording is not None and len(recording.ops) > before:
                name = getattr(self._target, "__qualname__", None) or repr(self._target)
                recording.opaque.add(f"{name} (wrapped by {self._decorator})")


_OPAQUE: dict[type, str] = {
    type(functools.lru_cache(maxsize=None)(lambda: None)): "functools.lru_cache",
}


def _resolve_instance(obj: Any) -> tuple[Any, int]:
    """A callable instance: an op-like object defers; otherwise its ``__call__`` decides."""
    if is_op(obj):
        return _Deferring(obj), PASS
    opaque = _OPAQUE.get(type(obj))
    if opaque is not None:  # a decorator xcs cannot see through: said if ops run inside
        return _Opaque(obj, opaque), CONCRETE
    call = class_attribute(type(obj), "__call__")
    if isinstance(call, types.FunctionType):
        twin = twin_of(call, composite=is_composite(obj))
        if twin is not None:
            return types.MethodType(twin, obj), PASS
    return obj, CONCRETE


_HOOKS.update(
    {
        types.FunctionType: _resolve_function,
        types.MethodType: _resolve_method,
        functools.partial: _resolve_partial,
        Op: _resolve_op,
    }
)


def register(cls: type, resolve: Callable[[Any], tuple[Any, int]]) -> None:
    """Teach the dispatcher a callee type of a higher layer (jitted functions)."""
    _HOOKS[cls] = resolve


def entry_point(fn: Any) -> Any:
    """What a traced call of ``fn`` runs: its twin, so the ops it calls defer.

    Raises:
        Unrewritable: ``fn`` is (or binds) a function that cannot be rewritten:
            library code, no source, a source that does not match, ``async def``,
            or it is a callable object that hides the function (``lru_cache``).
    """
    if isinstance(fn, types.MethodType):
        return types.MethodType(entry_point(fn.__func__), fn.__self__)
    if isinstance(fn, types.FunctionType):
        twin = twin_of(fn, warn=False)
        if twin is None:
            reason = unrewritable.get(fn) or (
                "it is library code, and jit rewrites user code only (call it from a "
                "function of your own, and jit that)"
            )
            raise Unrewritable(reason)
        return twin
    target, _ = resolve(fn)
    if target is fn or type(target) is _Opaque:
        raise Unrewritable(
            f"it is a {type(fn).__name__} object (a decorator such as functools.lru_cache "
            "wraps the function), which jit cannot see through; apply @xcs.jit to the "
            "function itself, under such decorators"
        )
    return target


# Resolutions of long-lived callees (builtins, library classes, module-level functions,
# classes and ops), by the callee itself: most call sites are answered by one lookup.
_known: dict[Any, tuple[Any, int, types.CodeType | None, Any]] = {}


def forget_resolutions() -> None:
    """Drop the cached resolutions (a callee was declared pure: ``xcs.pure``)."""
    _known.clear()


def known_resolution(f: Any) -> tuple[Any, int, types.CodeType | None, Any] | None:
    """The cached resolution of ``f``, if any.

    A deferred value is never hashed: that would demand it, and a method of a
    pending value must stay lazy.
    """
    if type(f) is Deferred:
        return None
    try:
        return _known.get(f)
    except TypeError:  # unhashable callee
        return None


def lookup(f: Any) -> tuple[Any, int, types.CodeType | None]:
    """What to call for ``f``, how it takes its arguments, and the twin code it enters.

    A method of a pending value known to be pure (see ``Recording.pure_call``) is
    called on the proxy and recorded as glue. Any other pending callee -- a method
    that may have side effects, a pending function -- is made concrete, in program
    order, and resolved like any callee (a user method runs as its twin).
    """
    if type(f) is Deferred:
        if f._self_method is not None and f._self_owner.pure_call(f._self_node):
            return f, METHOD, None
        if f._self_method is not None:
            tracer.waiting_for(method_call(f._self_method))
        f = value_of(f)
    known = known_resolution(f)
    if known is not None and (known[3] is None or known[3] is f.__code__):
        return known[0], known[1], known[2]
    target, kind = resolve(f)
    code = entering(target)
    if _long_lived(f):
        if len(_known) >= CACHE_MAX:
            _known.clear()
        _known[f] = (target, kind, code, f.__code__ if type(f) is types.FunctionType else None)
    return target, kind, code


def _long_lived(f: Any) -> bool:
    """Whether ``f`` lives as long as its module (so caching its resolution costs nothing)."""
    if member(f, PURE) or member(f, _BY_STRUCTURE) or member(f, EFFECTS):
        return True  # a table's entries: xcs.pure forgets the cache when it adds one
    cls = type(f)
    if cls is types.BuiltinFunctionType:
        return f.__self__ is None or isinstance(f.__self__, types.ModuleType)
    if isinstance(f, type):  # library classes (a user class's __init__ may be replaced)
        return known_library_class(f)
    if cls is types.FunctionType or cls is Op:  # checked against f.__code__ when used
        return "<locals>" not in getattr(f, "__qualname__", "<locals>")
    return False
