"""Expressions the rewrite routes here: values where a proxy would be wrong.

``x is None``, ``x in "lit"``, ``raise e``, ``match s``, dict keys, set members,
subscripts of concrete containers: real values. Tested values, indexes and keys of
objects whose own ``__bool__``/``__hash__``/``__index__`` is Python code get their
attributes' answers first (the interpreter calls those and rejects a stand-in).
Operators between a pending value and an object whose class would take the proxy as
it is (numpy, yours in Python) give it a value. Set and dict comprehensions collect
first and hash once, so their calls still overlap.
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable, Iterable
from typing import Any

from ember.xcs._internal.concrete import ATOMIC_IDS, concretize, fill_attributes
from ember.xcs._internal.deferred import Deferred, value_of
from ember.xcs._internal.tracer import waiting_for
from ember.xcs._internal.waits import BRANCH

__all__ = [
    "CACHE_MAX",
    "FORMATTED_IN_PYTHON",
    "SMALL",
    "InPython",
    "binary",
    "both",
    "deep",
    "dict_of",
    "either",
    "index",
    "item",
    "key",
    "operates_itself",
    "raised",
    "runs_no_code_of_yours",
    "set_of",
    "truth",
    "value",
]

CACHE_MAX = 4096
"""How many entries the dispatcher's per-class and per-callee caches hold."""


def value(x: Any) -> Any:
    """``x`` as a value: a deferred one is materialized (``x is None``, ``x in "lit"``)."""
    return value_of(x) if type(x) is Deferred else x


class InPython(dict[type, bool]):
    """Per class: does it implement one of some dunders as a Python function (cached)."""

    def __init__(self, *dunders: str) -> None:
        super().__init__()
        self.dunders = dunders

    def __missing__(self, cls: type) -> bool:
        found = any(isinstance(getattr(cls, d, None), types.FunctionType) for d in self.dunders)
        if len(self) >= CACHE_MAX:  # bounded, like _known
            self.clear()
        self[cls] = found
        return found


_TESTED_IN_PYTHON = InPython("__bool__", "__len__")


_HASHED_IN_PYTHON = InPython("__hash__")


_INDEXED_IN_PYTHON = InPython("__hash__", "__index__")


FORMATTED_IN_PYTHON = InPython("__str__", "__repr__", "__format__")


def truth(x: Any) -> Any:
    """A value about to be tested for truth, as it is.

    An object whose own ``__bool__`` or ``__len__`` is Python code (it may return an
    answer an op has not filled yet) gets its own attributes' answers first.
    """
    cls = type(x)
    if cls is Deferred:
        if not x._self_owner.is_known(x._self_node):
            waiting_for(BRANCH)  # bool(x) demands it next
        return x
    if id(cls) in ATOMIC_IDS or not _TESTED_IN_PYTHON[cls]:
        return x
    return fill_attributes(x, value_of)


def either(x: Any, other: Any) -> Any:
    """``x or other``, ``other`` a literal (``reply or ""``): glue when ``x`` is pending.

    Evaluating a literal early cannot be noticed, so the test of ``x`` can wait for its
    answer like any work on it, and a loop that defaults each answer stays parallel.
    """
    return _boolean("or", _or, x, other)


def both(x: Any, other: Any) -> Any:
    """``x and other``, ``other`` a literal: glue when ``x`` is pending."""
    return _boolean("and", _and, x, other)


def _or(x: Any, other: Any) -> Any:
    return x or other


def _and(x: Any, other: Any) -> Any:
    return x and other


def _boolean(name: str, fn: Callable[[Any, Any], Any], x: Any, other: Any) -> Any:
    if type(x) is Deferred and not x._self_owner.is_known(x._self_node) and _native(x):
        # The result may be x's own object ("part"): changes to it keep program order.
        return x._self_owner.record_glue(name, fn, (x, other), {}, x._self_node, "part")
    return fn(truth(x), other)  # a value's own __bool__, or a branch on the answer


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


SMALL = 256
"""Largest built-in container glue copies (a bigger one makes the work run now)."""


def item(container: Any, index: Any) -> Any:
    """``container[index]`` in an expression.

    A pending container records glue. So does a small concrete ``dict``, ``list``,
    ``tuple`` or ``str`` looked up by a pending index, when its members cannot change
    (``table[reply]``: the container is copied, the result is one of its members).
    Any other concrete container gets the index as a value: a dict looks a pending
    key up by hashing it, and a ``defaultdict`` would keep the proxy as the key of the
    entry it adds.
    """
    if type(container) is Deferred:
        return container[index]
    if type(index) is Deferred and not index._self_owner.is_known(index._self_node):
        found = _lookup_glue(container, index)
        if found is not None:
            return found
    return container[_as_key(index, _INDEXED_IN_PYTHON)]


# What library code may call on a value it is given: converting, formatting, testing,
# measuring, iterating, comparing, hashing it.
_LIBRARY_DUNDERS = (
    "__str__", "__repr__", "__format__", "__int__", "__float__", "__index__", "__bool__",
    "__len__", "__iter__", "__contains__", "__eq__", "__hash__", "__abs__", "__round__",
    "[]",
)  # fmt: skip


def runs_no_code_of_yours(values: Iterable[Any]) -> bool:
    """Whether library code given ``values`` later would run none of your code.

    For each pending value among them (or one container level inside): what is known
    of its type says none of those dunders is Python code (a built-in type, or a class
    that implements none of them; an unknown type counts as plain). Glue that hands a
    pending value to library code needs it: ``str(page)`` of a ``-> Page`` whose
    ``__str__`` is yours runs in program order instead.
    """
    for v in values:
        cls = type(v)
        if cls is Deferred:
            if not _native(v):
                return False
        elif cls is list or cls is tuple:
            if not all(_native(m) for m in v if type(m) is Deferred):
                return False
        elif cls is dict and not all(_native(m) for m in v.values() if type(m) is Deferred):
            return False
    return True


def _native(x: Deferred) -> bool:
    owner, node = x._self_owner, x._self_node
    if owner.is_known(node):
        return True
    return all(owner.may_wait(node, dunder) for dunder in _LIBRARY_DUNDERS)


def _lookup_glue(container: Any, index: Deferred) -> Deferred | None:
    """``container[index]`` recorded as glue, or None if the container may change."""
    cls = type(container)
    if cls is dict:
        members: Any = container.values()
    elif cls is list or cls is tuple:
        members = container
    elif cls is str or cls is bytes:
        members = ()
    else:
        return None
    if len(container) > SMALL and members:
        return None
    for m in members:
        if id(type(m)) not in ATOMIC_IDS:  # the result is a member: copies would not be
            return None
    if not _native(index):  # hashed or compared by your code
        return None
    owner = index._self_owner
    return owner.record_glue(
        "[]", operator.getitem, (container, index), {}, index._self_node, "new", kind=None
    )


def _as_key(x: Any, in_python: InPython) -> Any:
    cls = type(x)
    if cls is Deferred:
        return value_of(x)
    if id(cls) in ATOMIC_IDS:
        return x
    if (cls is tuple or cls is frozenset) and _holds_deferred(x):
        return concretize(x, value_of)
    if not in_python[cls]:
        return x
    return fill_attributes(x, value_of)


def _holds_deferred(members: tuple[Any, ...] | frozenset[Any]) -> bool:
    for v in members:
        t = type(v)
        if t is Deferred or ((t is tuple or t is frozenset) and _holds_deferred(v)):
            return True
    return False


def raised(x: Any) -> Any:
    """The exception of a ``raise`` statement, as a value, holding no pending values.

    Its ``args`` and attributes (``self.reply = reply``) are made concrete: the
    exception travels to handlers and callers that expect real values.
    """
    x = value(x)
    if isinstance(x, BaseException):
        concretize(x, value_of)
    return x


def deep(x: Any) -> Any:
    """``x`` concrete all the way down (a ``match`` subject)."""
    return concretize(x, value_of)


def set_of(items: list[Any]) -> set[Any]:
    """A set comprehension's members: all materialized at once, then hashed."""
    return set(concretize(items, value_of))


def dict_of(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A dict comprehension: keys made values together (values may stay pending)."""
    if any(type(k) is Deferred for k, _ in pairs):
        keys = concretize([k for k, _ in pairs], value_of)
        return dict(zip(keys, (v for _, v in pairs), strict=True))
    return dict(pairs)


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


_OPERATES_IN_PYTHON = InPython(
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
        if kind_r is not Deferred and operates_itself(kind_r):
            left = value_of(left)
    elif kind_r is Deferred and operates_itself(kind_l):
        right = value_of(right)
    return fn(left, right)


def operates_itself(cls: type) -> bool:
    """Whether ``cls``'s operators would get a pending operand as it is.

    Built-in types hand unknown operands over (``NotImplemented``) and the proxy's own
    reflected operator takes it from there. Your classes implementing operators in
    Python, and library types (numpy arrays take any object), would not.
    """
    if id(cls) in ATOMIC_IDS:
        return False
    return cls.__module__ != "builtins" or _OPERATES_IN_PYTHON[cls]
