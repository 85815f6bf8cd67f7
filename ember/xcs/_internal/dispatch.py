"""The dispatcher: what rewritten code calls instead of calling things directly.

The rewrite turns every call ``f(a, *b, k=c, **d)`` in user code into::

    @xcs.callee(f)(*@xcs.args(a, *b), **@xcs.kwargs(k=c, **d))

(``@xcs`` is this module, under a global name no user can write). The call itself
still happens in the user's own frame, so ``super()``, ``locals()``, logging's
``funcName`` and warning locations are untouched. :func:`callee` decides what ``f``
is and returns what to call; :func:`args` and :func:`kwargs` then prepare the values
for it:

* an **op** is returned as its *deferring* entry point: the call records a node and
  gives a deferred value. An op called any other way while a trace is active (by
  library code, a property, a dunder) runs at once -- it is still a node;
* **user code** (see ``usercode.py``) is returned as its rewritten twin, and jitted
  functions as the twin of what they wrap (inlined), both getting pending values;
* **structure-only builtins** (``list``, ``tuple``, ``dict``, ``zip``, ``len``,
  ``isinstance``, ``list.append``, ``dict.update``, ...) get pending values as they
  are; a container that receives one is remembered, to be made concrete at exit;
* **formatting** (``str.join``, ``str.format``) of pending values is recorded as glue,
  so prompts built from earlier answers stay lazy;
* **everything else** is library code and gets concrete values: pending ones are
  materialized (list items and dict values patched in place). A generator argument
  is drained first (its ops recorded, then run together) for consumers that always
  exhaust it (``sorted``, ``set``, ``sum``, ``min``, ``max``, ...), and otherwise
  wrapped to give concrete items one by one, so ``any``/``all``/``next`` still stop
  early.

Between :func:`callee` and :func:`args` the arguments are evaluated, and they may
contain calls of their own; the decision travels on a per-thread stack whose entries
carry the calling frame's id, so nested calls, generators suspended mid-argument and
statements abandoned by an exception never hand a call the wrong decision.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import datetime
import functools
import heapq
import operator
import os
import random
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.concrete import (
    ATOMIC_IDS,
    concrete_item,
    concretize,
    fill_attributes,
    map_items,
)
from ember.xcs._internal.deferred import Deferred, frozen, value_of
from ember.xcs._internal.errors import reraise, warn_unrewritable
from ember.xcs._internal.protocol import Op, is_op
from ember.xcs._internal.purity import class_attribute
from ember.xcs._internal.rewrite import HELPERS, Unrewritable, make_twin, rewrite_function
from ember.xcs._internal.usercode import (
    first_warning,
    is_user_class,
    is_user_code,
    known_library_class,
    note_quietly_unrewritten,
)

__all__ = ["args", "args_last", "call0", "callee", "kwargs"]

# How a callee takes its arguments.
PASS = 0  # as they are (ops, user code, structure-only builtins)
STORE = 1  # as they are; a receiving container is made concrete at exit (list.append)
CONCRETE = 2  # concrete values; generators yield concrete items one by one
DRAIN = 3  # concrete values; generators drained first, their ops run together
FORMAT = 4  # as they are, generators drained (str.join, str.format: recorded as glue)
METHOD = 5  # a pending value's method: glue if the arguments cannot change, else DRAIN


class _Stack(threading.local):
    def __init__(self) -> None:
        # (frame id, kind, callee, code of the twin the call enters, if it is one)
        self.entries: list[tuple[int, int, Any, types.CodeType | None]] = []
        self.next: types.CodeType | None = None  # the twin the next call enters
        self.entered: dict[int, bool] = {}  # frame id -> entered through the dispatcher


_stack = _Stack()


def _find(remove: bool) -> tuple[int, Any]:
    """The decision :func:`callee` made in the calling frame: (kind, callee).

    The most recent entry of that frame; entries above it were left by calls whose
    arguments raised, or by generators suspended inside their arguments.
    """
    frame = id(sys._getframe(2))
    entries = _stack.entries
    for index in range(len(entries) - 1, -1, -1):
        if entries[index][0] == frame:
            _, kind, f, code = entries[index]
            if remove:
                del entries[index]
                _stack.next = code  # the call happens right after this helper returns
            return kind, f
    return PASS, None  # called outside the protocol: leave the values alone


# --- which frames may defer ops -------------------------------------------------------------
#
# An op defers only when the frame calling it was entered through the dispatcher (or
# is a comprehension or generator inside such code). A rewritten lambda or nested def
# called back by library code (``sorted(key=...)``, ``re.sub(p, fn, s)``) was not:
# its ops run at once. The last helper before a call names the twin it enters; the
# twin's first statement, ``@xcs.entered()``, marks its own frame (or unmarks a
# reused frame id) -- no locals, no epilogue.

_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>"})
_GENERATOR = 0x20 | 0x200  # CO_GENERATOR, CO_ASYNC_GENERATOR


def _entering(target: Any) -> types.CodeType | None:
    """The code a call of ``target`` enters if it is a (non-generator) twin."""
    if type(target) is Deferred:
        return None  # looking inside would demand it
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if type(code) is types.CodeType and _rewritten(code) and not code.co_flags & _GENERATOR:
        return code
    return None


def _rewritten(code: types.CodeType) -> bool:
    """Whether ``code`` is rewritten: a twin, or a def or lambda nested in one."""
    return HELPERS in code.co_names  # every rewritten function calls @xcs.entered()


def enter_next(target: Any) -> None:
    """The next call is ``target`` (a twin), entered through the dispatcher."""
    _stack.next = _entering(target)


def entered() -> None:
    """First statement of every rewritten function: was this frame entered by us?"""
    frame = sys._getframe(1)
    if _scope.pending_stores:  # a frame id reused: what an earlier frame stored is not ours
        _scope.pending_stores.pop(id(frame), None)
    if _stack.next is frame.f_code:
        _stack.entered[id(frame)] = True
        _stack.next = None
    else:
        _stack.entered.pop(id(frame), None)


def may_defer(frame: types.FrameType) -> bool:
    """Whether an op called from ``frame`` may defer (rather than run at once)."""
    while frame.f_code.co_name in _COMPREHENSIONS and frame.f_back is not None:
        frame = frame.f_back
    if frame.f_code.co_flags & _GENERATOR:
        return True  # generator bodies are drained or taken item by item by the dispatcher
    return _stack.entered.get(id(frame), False)


# --- classifying callees ---------------------------------------------------------------

_STRUCTURE: frozenset[Any] = frozenset(
    {
        list,
        tuple,
        dict,
        zip,
        enumerate,
        reversed,
        len,
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
_STORING = {
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


_STORING_NAMES = frozenset(name for _, name in _STORING)


def _member(value: Any, group: frozenset[Any]) -> bool:
    """``value in group``, False for a value that refuses hashing (an odd metaclass)."""
    try:
        return value in group
    except TypeError:
        return False


class _Clock:
    """A clock read in user code: a sync point (it observes how long earlier work took).

    Plain Python has finished every op called before the read, so everything pending
    runs first; ``time.localtime()``-style calls read the clock only without their
    time argument.
    """

    __slots__ = ("_fn", "_reads_with")

    def __init__(self, fn: Callable[..., Any], reads_with: int | None) -> None:
        self._fn = fn
        self._reads_with = reads_with  # most arguments it reads the clock with; None: any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._reads_with is None or len(args) + len(kwargs) <= self._reads_with:
            recording = tracer.active()
            if recording is not None and recording.pending:
                recording.materialize("clock read", need_value=False)
        return self._fn(*args, **kwargs)


_CLOCKS: dict[Any, int | None] = {
    clock: None
    for clock in (
        time.time,
        time.time_ns,
        time.monotonic,
        time.monotonic_ns,
        time.perf_counter,
        time.perf_counter_ns,
        time.process_time,
        time.process_time_ns,
        time.thread_time,
        time.thread_time_ns,
        datetime.datetime.now,
        datetime.datetime.utcnow,
        datetime.datetime.today,
        datetime.date.today,
    )
}
_CLOCKS.update({time.localtime: 0, time.gmtime: 0, time.ctime: 0, time.asctime: 0})
_CLOCKS.update({time.strftime: 1, time.clock_gettime: 1, time.clock_gettime_ns: 1})
_CLOCKS[os.times] = None


def _clock(f: Any) -> int | bool | None:
    """How many arguments ``f`` reads the clock with (None: any), or False: not a clock.

    The clocks of ``time`` and ``datetime``, also bound to a subclass of ``date``
    (``MyDateTime.now()``).
    """
    try:
        if f in _CLOCKS:
            return _CLOCKS[f]
    except TypeError:  # an unhashable receiver
        return False
    owner = getattr(f, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, datetime.date):
        return None if f.__name__ in ("now", "utcnow", "today") else False
    return False


def _resolve_builtin(f: Any) -> tuple[Any, int]:
    clock = _clock(f)
    if clock is not False:
        return _Clock(f, clock), CONCRETE
    receiver = getattr(f, "__self__", None)
    if receiver is None or isinstance(receiver, types.ModuleType):
        if f in _STRUCTURE:
            return f, PASS
        return f, DRAIN if f in _EXHAUSTING else CONCRETE
    cls = type(receiver)
    if cls is str and f.__name__ == "join":
        return functools.partial(_join, receiver), FORMAT
    if cls is str and f.__name__ == "format":
        return functools.partial(_format, receiver), FORMAT
    return f, STORE if (cls, f.__name__) in _STORING else CONCRETE


def _method_kind(f: Any) -> int | None:
    """How a builtin type's method (``out.append``) takes its arguments, or None.

    None for methods that are not called themselves (``str.join`` becomes glue).
    """
    cls = type(f.__self__)
    if cls is str and f.__name__ in ("join", "format"):
        return None
    return STORE if (cls, f.__name__) in _STORING else CONCRETE


def _resolve(f: Any) -> tuple[Any, int]:
    """What to call for ``f``, and how it takes its arguments."""
    cls = type(f)
    if cls is Deferred:  # as in _lookup
        return f, METHOD if f._self_method is not None else CONCRETE
    if cls in (types.BuiltinFunctionType, types.BuiltinMethodType, types.MethodWrapperType):
        return _resolve_builtin(f)
    if cls in (list, tuple, dict) or _member(f, _STRUCTURE):
        return f, PASS
    hook = _HOOKS.get(cls)
    if hook is not None:
        return hook(f)
    if isinstance(f, type):
        return _resolve_class(f)
    return _resolve_instance(f)


_HOOKS: dict[type, Callable[[Any], tuple[Any, int]]] = {}
"""Per callee type, how to resolve it; higher layers add theirs (jitted functions)."""

_unrewritable: weakref.WeakKeyDictionary[types.FunctionType, str] = weakref.WeakKeyDictionary()


def twin_of(fn: types.FunctionType, *, warn: bool = True) -> types.FunctionType | None:
    """The rewritten twin of a user function, or None (library code, or no usable source).

    Args:
        fn: The function.
        warn: Warn (once) when ``fn`` is user code that cannot be rewritten for an
            unexpected reason (a stale source), or, for an expected one (no source,
            ``async def``), once it calls an op; False: the caller warns itself.
    """
    if _rewritten(fn.__code__):
        return fn  # made by rewritten code: a nested def or lambda of a twin
    if not is_user_code(fn.__code__) or fn in _unrewritable:
        return None
    try:
        twin = make_twin(fn, rewrite_function)
    except Unrewritable as reason:
        _unrewritable[fn] = str(reason)  # its ops will run at once, as library code's do
        code = fn.__code__
        if not warn:
            pass
        elif reason.expected:  # nothing wrong yet: say so if it calls an op (tracer.run_now)
            note_quietly_unrewritten(fn, str(reason))
        elif first_warning(code):  # once per function, however many closures share it
            warn_unrewritable(fn.__qualname__, code.co_filename, code.co_firstlineno, str(reason))
        return None
    if HELPERS not in fn.__globals__:
        fn.__globals__[HELPERS] = sys.modules[__name__]  # what rewritten code calls
    return twin


def _resolve_function(fn: types.FunctionType) -> tuple[Any, int]:
    twin = twin_of(fn)
    return (twin, PASS) if twin is not None else (fn, CONCRETE)


def _resolve_method(method: types.MethodType) -> tuple[Any, int]:
    target, kind = _resolve(method.__func__)
    if target is method.__func__:
        return method, kind
    return types.MethodType(target, method.__self__), kind


def _resolve_partial(partial: functools.partial[Any]) -> tuple[Any, int]:
    target, kind = _resolve(partial.func)
    if target is partial.func:
        return partial, kind
    return functools.partial(target, *partial.args, **partial.keywords), kind


def _resolve_class(cls: type) -> tuple[Any, int]:
    """A library class gets concrete values; a user class, what its constructor needs."""
    if is_user_class(cls):
        return _constructor(cls)
    if _member(cls, _EXHAUSTING):
        return cls, DRAIN
    return cls, CONCRETE


# Builtin exceptions whose __new__ and __init__ only store their arguments (in ``args``).
_STORING_EXCEPTIONS = frozenset(
    {
        BaseException,
        Exception,
        ValueError,
        TypeError,
        RuntimeError,
        LookupError,
        KeyError,
        IndexError,
        ArithmeticError,
        ZeroDivisionError,
        AssertionError,
        NotImplementedError,
        Warning,
        UserWarning,
    }
)


def _constructor(cls: type) -> tuple[Any, int]:
    """How to make an instance of a user class, decided by the code that actually runs.

    ``cls(...)`` runs the metaclass's ``__call__``, then ``__new__`` and ``__init__``
    (and a dataclass's ``__post_init__``). Each is user code (called as its twin:
    pending values are fine), code that only stores its arguments (``object``'s,
    builtin exceptions', a named tuple's or a dataclass's generated methods), or
    library code -- pydantic's ``BaseModel.__init__``, attrs' generated ``__init__``,
    an ``Enum``'s metaclass: then, as for any library call, the arguments are made
    concrete first. Where the class was defined does not matter.
    """
    if type(cls).__call__ is not type.__call__:
        return cls, CONCRETE
    new: Any = cls.__new__
    new_twin = None
    if not _storing_new(cls, new):
        new_twin = twin_of(new) if type(new) is types.FunctionType else None
        if new_twin is None:
            return cls, CONCRETE
    init = class_attribute(cls, "__init__")
    init_twin = post_twin = None
    if _generated(init, "__init__") and dataclasses.is_dataclass(cls):
        post = getattr(cls, "__post_init__", None)
        if post is not None:
            # The generated __init__ calls self.__post_init__: an instance attribute
            # can send that call to the twin (not on classes without a __dict__).
            post_twin = twin_of(post) if type(post) is types.FunctionType else None
            if post_twin is None or not _instances_have_dict(cls):
                return cls, CONCRETE
    elif not _storing_init(init):
        init_twin = twin_of(init) if type(init) is types.FunctionType else None
        if init_twin is None:
            return cls, CONCRETE
    if new_twin is None and init_twin is None and post_twin is None:
        return cls, PASS  # only storing code runs: the class itself takes pending values
    return functools.partial(_construct, cls, new_twin, init_twin, post_twin), PASS


def _storing_new(cls: type, new: Any) -> bool:
    if new is object.__new__:
        return True
    if type(new) is types.BuiltinFunctionType:
        return new.__self__ in _STORING_EXCEPTIONS
    return _generated(new, "__new__") and issubclass(cls, tuple) and hasattr(cls, "_fields")


def _storing_init(init: Any) -> bool:
    if init is None or init is object.__init__:
        return True
    return type(init) is types.WrapperDescriptorType and init.__objclass__ in _STORING_EXCEPTIONS


def _generated(fn: Any, name: str) -> bool:
    """Whether ``fn`` is a method generated from a string (dataclasses, namedtuple)."""
    return (
        type(fn) is types.FunctionType
        and fn.__code__.co_filename == "<string>"
        and fn.__name__ == name
    )


def _instances_have_dict(cls: type) -> bool:
    return cls.__dictoffset__ != 0


def _construct(
    cls: type,
    new: types.FunctionType | None,
    init: types.FunctionType | None,
    post_init: types.FunctionType | None,
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``cls(*args, **kwargs)``, with the user code of its constructor rewritten."""
    if new is None:
        make: Any = cls.__new__
        plain = make is object.__new__  # it refuses arguments when __init__ takes them
        instance: Any = make(cls) if plain else make(cls, *args, **kwargs)
    else:
        _stack.next = new.__code__  # entered through the dispatcher: its ops may defer
        instance = new(cls, *args, **kwargs)
    if not isinstance(instance, cls):
        return instance  # as type.__call__: __init__ runs only on an instance of cls
    if init is not None:
        _stack.next = init.__code__
        returned = init(instance, *args, **kwargs)
        if returned is not None:
            raise TypeError(f"__init__() should return None, not '{type(returned).__name__}'")
    elif post_init is not None:
        _construct_dataclass(instance, post_init, args, kwargs)
    else:
        type(instance).__init__(instance, *args, **kwargs)
    return instance


def _construct_dataclass(
    instance: Any, post_init: types.FunctionType, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Run a dataclass's generated ``__init__``, its ``__post_init__`` call sent to the twin."""

    def enter_post_init(*post_args: Any) -> Any:
        remove()  # gone before your code runs: vars(self) shows only your attributes
        _stack.next = post_init.__code__
        return post_init(instance, *post_args)

    def remove() -> None:
        if attributes.get("__post_init__") is enter_post_init:
            del attributes["__post_init__"]

    attributes = object.__getattribute__(instance, "__dict__")
    attributes["__post_init__"] = enter_post_init  # found before the class's method
    try:
        type(instance).__init__(instance, *args, **kwargs)
    finally:
        remove()


def _resolve_op(op: Op) -> tuple[Any, int]:
    return functools.partial(_call_op, op), PASS


def _call_op(op: Op, /, *args: Any, **kwargs: Any) -> Any:
    """An op called by rewritten code: deferred if its caller was entered by us."""
    if may_defer(sys._getframe(1)):
        return op.defer(*args, **kwargs)
    return op(*args, **kwargs)


class _Deferring:
    """Calls an op-like object (one with ``__xcs_op__``) so that its ``call_op`` defers."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not may_defer(sys._getframe(1)):
            return self._target(*args, **kwargs)
        tracer.allow_deferral()
        try:
            return self._target(*args, **kwargs)
        finally:
            # Consumed by call_op; cleared here when the call failed before reaching it
            # (bad arguments), so no later call of library code defers by mistake.
            tracer.take_deferral()


def _resolve_instance(obj: Any) -> tuple[Any, int]:
    """A callable instance: an op-like object defers; otherwise its ``__call__`` decides."""
    if is_op(obj):
        return _Deferring(obj), PASS
    call = class_attribute(type(obj), "__call__")
    if isinstance(call, types.FunctionType):
        twin = twin_of(call)
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
            reason = _unrewritable.get(fn) or (
                "it is library code, and jit rewrites user code only (call it from a "
                "function of your own, and jit that)"
            )
            raise Unrewritable(reason)
        return twin
    target, _ = _resolve(fn)
    if target is fn:
        raise Unrewritable(
            f"it is a {type(fn).__name__} object (a decorator such as functools.lru_cache "
            "wraps the function), which jit cannot see through; apply @xcs.jit to the "
            "function itself, under such decorators"
        )
    return target


# --- the protocol -----------------------------------------------------------------------


# Resolutions of long-lived callees (builtins, library classes, module-level functions,
# classes and ops), by the callee itself: most call sites are answered by one lookup.
_known: dict[Any, tuple[Any, int, types.CodeType | None, Any]] = {}
_KNOWN_MAX = 4096


def _known_resolution(f: Any) -> tuple[Any, int, types.CodeType | None, Any] | None:
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


def _lookup(f: Any) -> tuple[Any, int, types.CodeType | None]:
    """What to call for ``f``, how it takes its arguments, and the twin code it enters.

    A method of a pending value known to be pure (see ``Recording.pure_call``) is
    called on the proxy and recorded as glue. Any other pending callee -- a method
    that may have side effects, a pending function -- is made concrete, in program
    order, and resolved like any callee (a user method runs as its twin).
    """
    if type(f) is Deferred:
        if f._self_method is not None and f._self_owner.pure_call(f._self_node):
            return f, METHOD, None
        f = _value(f)
    known = _known_resolution(f)
    if known is not None and (known[3] is None or known[3] is f.__code__):
        return known[0], known[1], known[2]
    target, kind = _resolve(f)
    code = _entering(target)
    if _long_lived(f):
        if len(_known) >= _KNOWN_MAX:
            _known.clear()
        _known[f] = (target, kind, code, f.__code__ if type(f) is types.FunctionType else None)
    return target, kind, code


def _long_lived(f: Any) -> bool:
    """Whether ``f`` lives as long as its module (so caching its resolution costs nothing)."""
    cls = type(f)
    if cls is types.BuiltinFunctionType:
        return f.__self__ is None or isinstance(f.__self__, types.ModuleType)
    if isinstance(f, type):  # library classes (a user class's __init__ may be replaced)
        return known_library_class(f)
    if cls is types.FunctionType or cls is Op:  # checked against f.__code__ when used
        return "<locals>" not in getattr(f, "__qualname__", "<locals>")
    return False


def call0(f: Any) -> Any:
    """``f()`` with no arguments: what to call."""
    known = _known_resolution(f)
    if known is not None and (known[3] is None or known[3] is f.__code__):
        _stack.next = known[2]
        return known[0]
    target, kind, code = _lookup(f)
    if tracer.lenders and kind != PASS and kind != METHOD:
        recording = tracer.active()
        if recording is not None and recording.lent:
            recording.before_change(*_changed_by(target, ()))
    _stack.next = code
    return target


def callee(f: Any) -> Any:
    """The callee of a call with arguments: what to call (they follow via args/kwargs)."""
    known = _known_resolution(f)
    if known is not None and (known[3] is None or known[3] is f.__code__):
        _stack.entries.append((id(sys._getframe(1)), known[1], f, known[2]))
        return known[0]
    receiver = getattr(f, "__self__", None) if type(f) is types.BuiltinMethodType else None
    if (
        receiver is not None
        and type(receiver) is not types.ModuleType
        and type(receiver) is not type
    ):
        kind = _method_kind(f)  # out.append, text.split: the method itself is called
        if kind is not None:
            _stack.entries.append((id(sys._getframe(1)), kind, f, None))
            return f
    target, kind, code = _lookup(f)
    _stack.entries.append((id(sys._getframe(1)), kind, f, code))
    return target


def args(*values: Any) -> tuple[Any, ...]:
    """Positional arguments of a call that also has keyword arguments."""
    kind, receiver = _find(remove=False)
    return _prepare(values, kind, receiver)


def args_last(*values: Any) -> tuple[Any, ...]:
    """Positional arguments of a call with no keyword arguments."""
    entries = _stack.entries
    if entries and entries[-1][0] == id(sys._getframe(1)):  # the usual case: the last entry
        _, kind, f, _stack.next = entries.pop()
    else:
        kind, f = _find(remove=True)
    if kind == PASS:
        return values
    return _prepare(values, kind, f)


def kwargs(**values: Any) -> dict[str, Any]:
    """Keyword arguments of a call (evaluated after the positional ones)."""
    kind, receiver = _find(remove=True)
    if kind == PASS:
        return values
    return dict(zip(values, _prepare(tuple(values.values()), kind, receiver), strict=True))


# --- what library code may change ---------------------------------------------------------
#
# A call of library code with an object lent to a pending op (see ``Recording.lent``)
# waits for that op only if the call may change the object: a method of it that is
# not known to only read (``history.append``, ``cursor.execute``, ``environ.update``),
# one of the few functions that change their arguments (``setattr``,
# ``random.shuffle``, ``heapq.heappush``), or a bound method that changes its object
# handed to library code (``map(history.append, xs)``). Other library functions are
# taken to read what they are given (``print``, ``json.dumps``, ``str``, ``copy.copy``).

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
    elif _member(f, _CHANGING_FUNCTIONS):
        changed.extend(values)
    return [getattr(v, "__self__", v) for v in changed]


def _changing_method(f: Any) -> bool:
    """Whether ``f`` is a bound method that may change its object."""
    cls = type(f)
    if cls is not types.BuiltinMethodType and cls is not types.MethodType:
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
        if f._self_method in _STORING_NAMES:
            receiver = getattr(f.__wrapped__, "__self__", None)
            if (type(receiver), f._self_method) in _STORING:
                _remember(receiver)
                return values
        kind = DRAIN
    if kind == STORE:
        for v in values:
            if id(type(v)) not in ATOMIC_IDS:
                break
        else:
            return values  # plain values (strings, numbers) are stored: the usual case
        if _scope.depth and any(_pending_inside(v) for v in values):
            sync()  # inside a try body: materialize before storing
            return tuple([value(v) for v in values])
        # A container, object, generator or zip may hold -- or yield as it is consumed --
        # pending values, at any depth: the receiver is made concrete at exit.
        _remember(f.__self__)  # the list, dict or deque stored into
        return values
    for v in values:
        if id(type(v)) not in ATOMIC_IDS:
            break
    else:
        return values  # the common case: nothing to look into
    if kind == FORMAT:
        # type(), not isinstance(): isinstance would demand a pending value's class.
        return tuple([list(v) if type(v) is types.GeneratorType else v for v in values])
    return tuple([_concrete(v, kind) for v in values])


def _concrete(value: Any, kind: int) -> Any:
    cls = type(value)
    if id(cls) in ATOMIC_IDS:
        return value
    if isinstance(value, types.GeneratorType):
        if kind == DRAIN:
            items = list(value)  # records the ops it calls; they run together below
            return concretize(items, _value)
        # Concrete items one by one, so short-circuits (any, next) stay exact.
        return map_items(value, concrete_item)
    return concretize(value, _value)


_value = value_of  # the value of a pending value (materialized if needed)


# --- expressions the rewrite routes here ------------------------------------------------


def value(x: Any) -> Any:
    """``x`` as a value: a deferred one is materialized (``x is None``, ``x in "lit"``)."""
    return _value(x) if type(x) is Deferred else x


class _InPython(dict[type, bool]):
    """Per class: does it implement one of some dunders as a Python function (cached)."""

    def __init__(self, *dunders: str) -> None:
        super().__init__()
        self.dunders = dunders

    def __missing__(self, cls: type) -> bool:
        found = any(isinstance(getattr(cls, d, None), types.FunctionType) for d in self.dunders)
        if len(self) >= _KNOWN_MAX:  # bounded, like _known
            self.clear()
        self[cls] = found
        return found


_TESTED_IN_PYTHON = _InPython("__bool__", "__len__")
_HASHED_IN_PYTHON = _InPython("__hash__")
_INDEXED_IN_PYTHON = _InPython("__hash__", "__index__")
_FORMATTED_IN_PYTHON = _InPython("__str__", "__repr__", "__format__")


def truth(x: Any) -> Any:
    """A value about to be tested for truth, as it is.

    An object whose own ``__bool__`` or ``__len__`` is Python code (it may return an
    answer an op has not filled yet) gets its own attributes' answers first.
    """
    cls = type(x)
    if cls is Deferred or id(cls) in ATOMIC_IDS or not _TESTED_IN_PYTHON[cls]:
        return x
    return fill_attributes(x, _value)


def index(x: Any) -> Any:
    """The index of ``obj[x] = v`` or ``del obj[x]``, as a value (the container keeps it).

    An object whose own ``__hash__`` or ``__index__`` is Python code gets its own
    attributes' answers first.
    """
    return _as_key(x, _INDEXED_IN_PYTHON)


def key(x: Any) -> Any:
    """A dict key, set member or stored-to subscript, as a value.

    A container keeps the object it is given as a key, so a pending one is made a
    value (a tuple holding pending values is rebuilt). An object whose class hashes
    in Python (its ``__hash__`` may return an attribute an op has not filled yet)
    gets its own attributes' answers first.
    """
    return _as_key(x, _HASHED_IN_PYTHON)


def item(container: Any, index: Any) -> Any:
    """``container[index]`` in an expression.

    A pending container records glue. A concrete one gets the index as a value: a
    dict looks a pending key up by hashing it, and a ``defaultdict`` would keep the
    proxy as the key of the entry it adds.
    """
    if type(container) is Deferred:
        return container[index]
    return container[_as_key(index, _INDEXED_IN_PYTHON)]


def _as_key(x: Any, in_python: _InPython) -> Any:
    cls = type(x)
    if cls is Deferred:
        return _value(x)
    if id(cls) in ATOMIC_IDS:
        return x
    if (cls is tuple or cls is frozenset) and _holds_deferred(x):
        return concretize(x, _value)
    if not in_python[cls]:
        return x
    return fill_attributes(x, _value)


def _holds_deferred(members: tuple[Any, ...] | frozenset[Any]) -> bool:
    for v in members:
        t = type(v)
        if t is Deferred or ((t is tuple or t is frozenset) and _holds_deferred(v)):
            return True
    return False


def changing(target: Any) -> Any:
    """The object of ``del obj.name`` or ``del obj[k]``: pending readers of it run first."""
    _before_change(target)
    return target


def raised(x: Any) -> Any:
    """The exception of a ``raise`` statement, as a value, holding no pending values.

    Its ``args`` and attributes (``self.reply = reply``) are made concrete: the
    exception travels to handlers and callers that expect real values.
    """
    x = value(x)
    if isinstance(x, BaseException):
        concretize(x, _value)
    return x


def each_now(source: Any) -> Any:
    """``yield from source`` inside a ``try`` or ``with`` body: each item is a store."""
    return map_items(source, now, owned=True)


def deep(x: Any) -> Any:
    """``x`` concrete all the way down (a ``match`` subject)."""
    return concretize(x, _value)


def set_of(items: list[Any]) -> set[Any]:
    """A set comprehension's members: all materialized at once, then hashed."""
    return set(concretize(items, _value))


def dict_of(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A dict comprehension: keys made values together (values may stay pending)."""
    if any(type(k) is Deferred for k, _ in pairs):
        keys = concretize([k for k, _ in pairs], _value)
        return dict(zip(keys, (v for _, v in pairs), strict=True))
    return dict(pairs)


def _first_pending(values: Any) -> Deferred | None:
    """A pending deferred among ``values`` (one container level deep), if any."""
    for v in values:
        if type(v) is Deferred:
            if not v._self_owner.is_known(v._self_node):
                return v
        elif type(v) in (tuple, list):
            found = _first_pending(v)
            if found is not None:
                return found
        elif type(v) is dict:
            found = _first_pending(v.values())
            if found is not None:
                return found
    return None


def _settled(x: Any) -> Any:
    """A value to format, as it is: objects that format themselves in Python get answers.

    Formatting calls an object's ``__str__``/``__repr__``/``__format__``, which may
    return an attribute an op has not filled yet, and the interpreter rejects the
    stand-in. Such objects -- the value itself, or members of a list, tuple or dict
    it is -- get their own attributes' answers first. Nothing else is touched, so
    formatting pending values stays lazy.
    """
    cls = type(x)
    if cls is Deferred or id(cls) in ATOMIC_IDS:
        return x
    for member in _members(x) if cls is list or cls is tuple or cls is dict else (x,):
        kind = type(member)
        if kind is not Deferred and id(kind) not in ATOMIC_IDS and _FORMATTED_IN_PYTHON[kind]:
            fill_attributes(member, _value)
    return x


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mult": operator.mul,
    "MatMult": operator.matmul,
    "Div": operator.truediv,
    "FloorDiv": operator.floordiv,
    "Pow": operator.pow,
    "LShift": operator.lshift,
    "RShift": operator.rshift,
    "BitOr": operator.or_,
    "BitXor": operator.xor,
    "BitAnd": operator.and_,
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Lt": operator.lt,
    "LtE": operator.le,
    "Gt": operator.gt,
    "GtE": operator.ge,
}
_ARITHMETIC = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "pow", "lshift", "rshift")
_OPERATES_IN_PYTHON = _InPython(
    *(f"__{name}__" for base in (*_ARITHMETIC, "or", "xor", "and") for name in (base, f"r{base}")),
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
)


def binary(left: Any, right: Any, symbol: str) -> Any:
    """``left <op> right`` (arithmetic or a comparison).

    When one side is pending and the other is an object whose class implements
    operators in Python, the pending side is made a value first: that code would get
    the proxy (``type(other) is str`` would be wrong). Otherwise the operator acts
    as written (pending values record glue).
    """
    fn = _OPERATORS[symbol]
    kind_l, kind_r = type(left), type(right)
    if kind_l is Deferred:
        if kind_r is not Deferred and _operates_itself(kind_r):
            left = _value(left)
    elif kind_r is Deferred and _operates_itself(kind_l):
        right = _value(right)
    return fn(left, right)


def _operates_itself(cls: type) -> bool:
    """Whether ``cls``'s operators would get a pending operand as it is.

    Built-in types hand unknown operands over (``NotImplemented``) and the proxy's own
    reflected operator takes it from there. Your classes implementing operators in
    Python, and library types (numpy arrays take any object), would not.
    """
    if id(cls) in ATOMIC_IDS:
        return False
    return cls.__module__ != "builtins" or _OPERATES_IN_PYTHON[cls]


def _glue(name: str, fn: Callable[..., Any], args: tuple[Any, ...], pending: Deferred) -> Any:
    owner = pending._self_owner
    return owner.record_glue(name, fn, args, {}, pending._self_node, "new")


def mod(left: Any, right: Any) -> Any:
    """``left % right``; formatting a str with pending values is recorded as glue."""
    if type(left) is str:
        right = _settled(right)
        pending = _first_pending((right,))
        if pending is not None:
            return _glue("%", _percent, (left, right), pending)
        return left % _shallow(right)
    return left % right


def _percent(left: str, right: Any) -> str:
    return str(left % right)


def _shallow(x: Any) -> Any:
    """A deferred value, or the deferred items of a tuple or dict, as values."""
    if type(x) is Deferred:
        return _value(x)
    if type(x) is tuple and any(type(v) is Deferred for v in x):
        return tuple(value(v) for v in x)
    if type(x) is dict and any(type(v) is Deferred for v in x.values()):
        return {k: value(v) for k, v in x.items()}
    return x


_CONVERSIONS: dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}


def _render(parts: tuple[tuple[Any, ...], ...]) -> str:
    out = []
    for part in parts:
        if len(part) == 1:
            out.append(part[0])
            continue
        item, conversion, spec = value(part[0]), part[1], part[2]
        if conversion != -1:
            item = _CONVERSIONS[conversion](item)
        out.append(format(item, value(spec) or ""))
    return "".join(out)


def fstring(*parts: tuple[Any, ...]) -> Any:
    """An f-string; with pending values inside it is recorded as glue (stays lazy)."""
    parts = tuple((_settled(p[0]), *p[1:]) if len(p) == 3 else p for p in parts)
    pending = _first_pending(part[0] for part in parts if len(part) == 3)
    if pending is not None:
        return _glue("f-string", _render_parts, parts, pending)
    return _render(parts)


def _render_parts(*parts: tuple[Any, ...]) -> str:
    return _render(parts)


def _join(separator: str, items: Any) -> Any:
    """``separator.join(items)``, recorded as glue while an item is pending."""
    items = items if type(items) is list else list(items)
    pending = _first_pending(items)
    if pending is not None:
        return _glue(".join()", _join_values, (separator, items), pending)
    return separator.join([value(i) for i in items])


def _join_values(separator: str, items: list[Any]) -> str:
    return separator.join(items)


def _format(template: str, *args: Any, **kwargs: Any) -> Any:
    """``template.format(...)``, recorded as glue while an argument is pending."""
    args = tuple(_settled(a) for a in args)
    kwargs = {k: _settled(v) for k, v in kwargs.items()}
    pending = _first_pending((*args, *kwargs.values()))
    if pending is not None:
        return _glue_call(".format()", template.format, args, kwargs, pending)
    return template.format(*[value(a) for a in args], **{k: value(v) for k, v in kwargs.items()})


def _glue_call(
    name: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    pending: Deferred,
) -> Any:
    owner = pending._self_owner
    return owner.record_glue(name, fn, args, kwargs, pending._self_node, "new")


# --- exception scopes and stores (see scopes.py) -----------------------------------------


class _Scope(threading.local):
    def __init__(self) -> None:
        self.depth = 0  # try bodies this thread is inside (stores materialize first)
        # Frame id -> the value that frame last passed to store() held pending values.
        # By frame: evaluating the target after the value may run code that stores too.
        self.pending_stores: dict[int, bool] = {}


_scope = _Scope()


def sync() -> None:
    """Materialize everything pending (before try/with, after a statement in a try)."""
    recording = tracer.active()
    if recording is not None and recording.pending:
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
    try:
        sync()
    except BaseException as failure:
        error = failure
    else:
        return
    reraise(error, detach=True)


def forget_stores() -> None:
    """The outermost traced call on this thread ended: no store of it is in flight."""
    _scope.pending_stores.clear()


def enter() -> None:
    """A try body begins: stores made from here on materialize first."""
    _scope.depth += 1


def leave() -> None:
    """A try body ends."""
    _scope.depth -= 1


def store(x: Any) -> Any:
    """A value assigned to an attribute or item (noted for :func:`holder` if pending).

    Inside a try body it is materialized first.
    """
    if _scope.depth:
        x = now(x)
    pending = _holds_pending(x)
    if pending or _scope.pending_stores:
        _scope.pending_stores[id(sys._getframe(1))] = pending
    return x


def store_global(x: Any, names: tuple[str, ...]) -> Any:
    """A value assigned to globals ``names``: made concrete at exit if pending."""
    if _scope.depth:
        x = now(x)
    if _holds_pending(x):
        _remember_globals(sys._getframe(1).f_globals, names)
    return x


def holder(target: Any) -> Any:
    """The object an attribute or item is stored into.

    Remembered if it got a pending value; pending readers of it run first. If
    storing into it runs Python code (a property setter, ``__setattr__``,
    ``__setitem__``, a descriptor), the store goes through :class:`_Store`.
    """
    in_python = id(type(target)) not in ATOMIC_IDS and _STORES_IN_PYTHON[type(target)]
    _before_change(target, attribute_store=not in_python)
    if _scope.pending_stores and _scope.pending_stores.get(id(sys._getframe(1))):
        _remember(target)
        if in_python:
            return _Store(target)
    return target


def kept(target: Any) -> Any:
    """The object of ``obj.n += v`` or ``obj[k] += v``: made concrete at exit."""
    _before_change(target, attribute_store=not _STORES_IN_PYTHON[type(target)])
    _remember(target)
    if _STORES_IN_PYTHON[type(target)]:
        return _Store(target)
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
        setattr(_Store(target) if _STORES_IN_PYTHON[type(target)] else target, name, value)

    def __setitem__(self, key: Any, value: Any) -> None:
        target = object.__getattribute__(self, "_Augmented__target")
        (_Store(target) if _STORES_IN_PYTHON[type(target)] else target)[key] = value


class _Operand:
    """The current value of an augmented target: its in-place operator, applied safely."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def _apply(self, fn: Callable[[Any, Any], Any], other: Any) -> Any:
        current = self.value
        pending = type(other) is Deferred and type(current) is not Deferred
        if pending and _operates_itself(type(current)):
            other = _value(other)
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
        if len(self) >= _KNOWN_MAX:
            self.clear()
        self[cls] = found
        return found


def _python_setter(attribute: Any) -> bool:
    """Whether a class attribute is a data descriptor whose ``__set__`` is Python code."""
    if isinstance(attribute, property):
        return attribute.fset is not None
    setter = getattr(type(attribute), "__set__", None)
    return type(setter) is types.FunctionType


_STORES_IN_PYTHON = _StoresInPython()


class _Store:
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
        return fn(*args[:-1], concretize(args[-1], _value))
    _stack.next = twin.__code__  # entered through the dispatcher: its ops may defer
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
        return _value(x)
    if isinstance(target, (list, dict, collections.deque, bytearray)):
        _remember(target)
    return x


def kept_globals(x: Any, name: str) -> Any:
    """The value of ``g += x`` for a global ``g`` (which may become pending): settled at exit."""
    _remember_globals(sys._getframe(1).f_globals, (name,))
    return x


def _remember_globals(namespace: dict[str, Any], names: tuple[str, ...]) -> None:
    recording = tracer.active()
    if recording is not None:
        recording.remember_globals(namespace, names)


def _remember(container: Any) -> None:
    """Make ``container`` concrete at the exit of the active trace (if any)."""
    recording = tracer.active()
    if recording is not None:
        recording.remember(container)


def _holds_pending(x: Any) -> bool:
    if type(x) is Deferred:
        return True
    if type(x) in (list, tuple, dict, set):
        return _first_pending(x.values() if type(x) is dict else x) is not None
    return False
