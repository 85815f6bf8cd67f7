"""The deferred value: a wrapt proxy standing for the result of a recorded node.

A :class:`Deferred` belongs to an *owner* (the trace that recorded it) and names one
node of the owner's graph. It does two things and nothing else:

* **Records glue.** While its value is unknown, attribute access, indexing,
  arithmetic (in-place forms included), comparisons and method calls on it are
  recorded by the owner as ``glue`` nodes and give new deferred values. Calling a
  pending *attribute* of a pending value (``d.strip()``) is a glue method call.
  Glue stays lazy only while its other operands cannot change before it runs
  (immutable values, deferred values, tuples of them); with any other operand
  (``d.extend(lst)``, ``d.append(obj)``, ``d + [x]``) it demands instead, so a later
  change to the operand cannot leak in and identities stay those of plain Python.
* **Demands.** Everything else that needs the value -- ``bool``, ``len``, ``iter``,
  ``str``, ``repr``, ``hash``, ``int``/``float``/``index``, ``in``, ``isinstance``
  (through ``__class__``), formatting, pickling and copying, setting attributes or
  items, calling a value that is not a pending attribute, and any name starting
  with ``_`` -- asks the owner for the value. wrapt calls :meth:`__wrapped_get__`
  the first time the wrapped object is needed; the owner materializes what is
  pending (or raises the node's original exception) and wrapt keeps the value.

Once the value is known, every operation acts on it and returns plain values.

What this module does not do: decide what runs, when, or where (the owner and the
engine do), and make proxy-hostile C code (``str.join``, ``json.dumps``, ``x is
None``) exact -- that is the call-site rewrite's job.
"""

from __future__ import annotations

import copy
import operator
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import wrapt

if TYPE_CHECKING:
    _ProxyBase = wrapt.BaseObjectProxy[Any]
else:  # not subscriptable at run time
    _ProxyBase = wrapt.BaseObjectProxy

__all__ = [
    "ATOMIC",
    "ATOMIC_IDS",
    "OUTSIDE",
    "Deferred",
    "Effect",
    "Owner",
    "call",
    "frozen",
    "value_of",
]

Effect = Literal["new", "part", "write"]
"""What a glue operation does to its receiver's object.

``new``: makes a fresh value (``d + 1``, ``d == x``); ``part``: gives (a part of) the
receiver's object (``d.attr``, ``d[0]``); ``write``: may change the receiver in place
(a method call, ``d += x``).
"""


class _Outside(threading.local):
    depth = 0


OUTSIDE = _Outside()
"""How many values this thread is waiting for on behalf of code outside the dispatcher:
a proxy's own methods (called by the interpreter, library or C code) and ops called by
library code. Async code never suspends such a wait to retry it (``awaiting.py``):
what ran before it, an iterator consumed or a list half built, would not run again."""


class Owner(Protocol):
    """What a deferred value needs from the trace that recorded it."""

    def is_known(self, node: int) -> bool:
        """Whether ``node`` has finished (done, failed or cancelled)."""

    def demand(self, node: int) -> Any:
        """Return the value of ``node``, materializing if needed, or raise its error."""

    def record_glue(
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        receiver: int,
        effect: Effect,
        method: str | None = None,
        *,
        kind: Any = ...,
    ) -> Deferred:
        """Record ``fn(*args, **kwargs)`` as a glue node acting on ``receiver``.

        ``kind``: what is known of the result's type, if the caller knows it.
        """

    def pure_call(self, node: int) -> bool:
        """Whether calling the pending attribute ``node`` has no effect outside the value."""

    def may_wait(self, node: int, access: str) -> bool:
        """Whether ``access`` (``.name``, ``[]``, a dunder) on ``node``'s value may be glue."""


def value_of(deferred: Deferred) -> Any:
    """The value of a deferred value: materialized if needed, or its error raised."""
    return deferred._self_owner.demand(deferred._self_node)


def call(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Glue for a method call: ``call(bound, *a)`` is ``bound(*a)``."""
    return fn(*args, **kwargs)


# Leaf types that need no copy and contain nothing, the one set every part of xcs
# uses (checked by exact type). Looked up by id: hashing a user's type could run its
# metaclass's __hash__ (or fail).
ATOMIC: frozenset[type] = frozenset(
    {str, int, float, bool, type(None), bytes, complex, range, type(Ellipsis), type(NotImplemented)}
)
ATOMIC_IDS: frozenset[int] = frozenset(id(t) for t in ATOMIC)


def frozen(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` cannot change before a glue operation that uses it runs.

    A glue operation whose other operands are all frozen (atomic values, deferred
    values, tuples of them) stays lazy. Any other operand could change, or be stored
    by identity (``d.append(obj)``, ``d + [obj]``), before the glue runs, so the
    operation demands instead and runs now, exactly as in plain Python.
    """
    cls = type(value)
    if id(cls) in ATOMIC_IDS:
        return True
    if cls is Deferred:  # pending: changes only through ordered glue; known: its value
        known = value._self_owner.is_known(value._self_node)
        return not known or frozen(value.__wrapped__, depth)
    if cls is slice:
        return frozen(value.start) and frozen(value.stop) and frozen(value.step)
    if (cls is tuple or cls is frozenset) and depth < 4:
        return all(frozen(item, depth + 1) for item in value)
    return False


def _binary(
    fn: Callable[[Any, Any], Any], name: str, effect: Effect = "new"
) -> Callable[[Deferred, Any], Any]:
    dunder = f"__{fn.__name__.strip('_')}__"

    def method(self: Deferred, other: Any) -> Any:
        owner, node = self._self_owner, self._self_node
        if owner.is_known(node) or not frozen(other) or not owner.may_wait(node, dunder):
            return fn(self.__wrapped__, other)
        return owner.record_glue(name, fn, (self, other), {}, node, effect)

    method.__name__ = dunder
    return method


def _reflected(fn: Callable[[Any, Any], Any], name: str) -> Callable[[Deferred, Any], Any]:
    dunder = f"__r{fn.__name__.strip('_')}__"

    def method(self: Deferred, other: Any) -> Any:
        owner, node = self._self_owner, self._self_node
        if owner.is_known(node) or not frozen(other) or not owner.may_wait(node, dunder):
            return fn(other, self.__wrapped__)
        return owner.record_glue(name, fn, (other, self), {}, node, "new")

    method.__name__ = dunder
    return method


def _unary(fn: Callable[[Any], Any], name: str) -> Callable[[Deferred], Any]:
    dunder = f"__{fn.__name__.strip('_')}__"

    def method(self: Deferred) -> Any:
        owner, node = self._self_owner, self._self_node
        if owner.is_known(node) or not owner.may_wait(node, dunder):
            return fn(self.__wrapped__)
        return owner.record_glue(name, fn, (self,), {}, node, "new")

    method.__name__ = dunder
    return method


class Deferred(_ProxyBase):
    """A proxy for the value of a node that may not have run yet.

    Created only by an owner (the tracer). Attributes live on the proxy under
    wrapt's ``_self_`` prefix so they never touch the value.
    """

    __slots__ = ("_self_method", "_self_node", "_self_owner")  # no per-proxy __dict__
    _self_owner: Owner
    _self_node: int
    _self_method: str | None

    def __init__(self, owner: Owner, node: int, method: str | None = None) -> None:
        super().__init__(None)  # None + __wrapped_factory__ = resolved lazily by wrapt
        self._self_owner = owner
        self._self_node = node
        self._self_method = method  # attribute name when this is a pending bound method

    # --- lazy resolution (called by wrapt's C code) -------------------------------

    def __wrapped_factory__(self) -> None:
        """Present so wrapt resolves ``__wrapped__`` lazily via ``__wrapped_get__``."""

    def __wrapped_get__(self) -> Any:
        # Whoever touched the proxy (the interpreter, library code, C code) may have
        # done things before that a retry of the dispatcher's helper would do again.
        OUTSIDE.depth += 1
        try:
            return self._self_owner.demand(self._self_node)
        finally:
            OUTSIDE.depth -= 1

    def __wrapped_setattr_fixups__(self) -> None:
        """Wrapt calls this after ``__wrapped__`` is set; nothing to fix up."""

    # --- glue: attribute access, items, calls -----------------------------------

    def __getattr__(self, name: str) -> Any:
        owner = self._self_owner
        if name == "__wrapped__":
            # Reached when resolving the value raised AttributeError (a failed
            # ``reply.keys`` glue): raise it from here, where it propagates.
            return owner.demand(self._self_node)
        node = self._self_node
        if name.startswith("_") or owner.is_known(node) or not owner.may_wait(node, f".{name}"):
            return getattr(self.__wrapped__, name)
        return owner.record_glue(f".{name}", getattr, (self, name), {}, node, "part", name)

    def __getitem__(self, key: Any) -> Any:
        owner = self._self_owner
        node = self._self_node
        if owner.is_known(node) or not frozen(key) or not owner.may_wait(node, "[]"):
            return self.__wrapped__[key]
        return owner.record_glue("[]", operator.getitem, (self, key), {}, self._self_node, "part")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._self_owner
        method = self._self_method
        if (
            method is None
            or owner.is_known(self._self_node)
            or not all(frozen(a) for a in args)
            or not all(frozen(v) for v in kwargs.values())
        ):
            return self.__wrapped__(*args, **kwargs)
        return owner.record_glue(
            f".{method}()", call, (self, *args), kwargs, self._self_node, "write"
        )

    # --- demands that wrapt does not forward the way we need --------------------------

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def __hash__(self) -> int:
        return hash(self.__wrapped__)

    def __iter__(self) -> Any:
        return iter(self.__wrapped__)

    def __next__(self) -> Any:
        return next(self.__wrapped__)

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickles as the value itself
        return self.__wrapped__.__reduce_ex__(protocol)

    def __reduce__(self) -> Any:
        return self.__wrapped__.__reduce__()

    def __copy__(self) -> Any:
        return copy.copy(self.__wrapped__)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return copy.deepcopy(self.__wrapped__, memo)

    # --- glue: comparisons, arithmetic ------------------------------------------

    __eq__ = _binary(operator.eq, "==")
    __ne__ = _binary(operator.ne, "!=")
    __lt__ = _binary(operator.lt, "<")
    __le__ = _binary(operator.le, "<=")
    __gt__ = _binary(operator.gt, ">")
    __ge__ = _binary(operator.ge, ">=")

    __add__ = _binary(operator.add, "+")
    __sub__ = _binary(operator.sub, "-")
    __mul__ = _binary(operator.mul, "*")
    __matmul__ = _binary(operator.matmul, "@")
    __truediv__ = _binary(operator.truediv, "/")
    __floordiv__ = _binary(operator.floordiv, "//")
    __mod__ = _binary(operator.mod, "%")
    __divmod__ = _binary(divmod, "divmod")
    _pow = _binary(operator.pow, "**")
    __lshift__ = _binary(operator.lshift, "<<")
    __rshift__ = _binary(operator.rshift, ">>")
    __and__ = _binary(operator.and_, "&")
    __xor__ = _binary(operator.xor, "^")
    __or__ = _binary(operator.or_, "|")

    __radd__ = _reflected(operator.add, "+")
    __rsub__ = _reflected(operator.sub, "-")
    __rmul__ = _reflected(operator.mul, "*")
    __rmatmul__ = _reflected(operator.matmul, "@")
    __rtruediv__ = _reflected(operator.truediv, "/")
    __rfloordiv__ = _reflected(operator.floordiv, "//")
    __rmod__ = _reflected(operator.mod, "%")
    __rdivmod__ = _reflected(divmod, "divmod")
    _rpow = _reflected(operator.pow, "**")
    __rlshift__ = _reflected(operator.lshift, "<<")
    __rrshift__ = _reflected(operator.rshift, ">>")
    __rand__ = _reflected(operator.and_, "&")
    __rxor__ = _reflected(operator.xor, "^")
    __ror__ = _reflected(operator.or_, "|")

    # In-place forms act on the value, so a list extended with ``+=`` stays the same
    # list object (aliases see the change), exactly as in plain Python.
    __iadd__ = _binary(operator.iadd, "+=", "write")
    __isub__ = _binary(operator.isub, "-=", "write")
    __imul__ = _binary(operator.imul, "*=", "write")
    __imatmul__ = _binary(operator.imatmul, "@=", "write")
    __itruediv__ = _binary(operator.itruediv, "/=", "write")
    __ifloordiv__ = _binary(operator.ifloordiv, "//=", "write")
    __imod__ = _binary(operator.imod, "%=", "write")
    __ipow__ = _binary(operator.ipow, "**=", "write")
    __ilshift__ = _binary(operator.ilshift, "<<=", "write")
    __irshift__ = _binary(operator.irshift, ">>=", "write")
    __iand__ = _binary(operator.iand, "&=", "write")
    __ixor__ = _binary(operator.ixor, "^=", "write")
    __ior__ = _binary(operator.ior, "|=", "write")

    def __pow__(self, other: Any, modulo: Any = None) -> Any:
        if modulo is not None:  # three-argument pow() needs the value
            return pow(self.__wrapped__, other, modulo)
        return self._pow(other)

    def __rpow__(self, other: Any, modulo: Any = None) -> Any:
        if modulo is not None:
            return pow(other, self.__wrapped__, modulo)
        return self._rpow(other)

    __neg__ = _unary(operator.neg, "neg")
    __pos__ = _unary(operator.pos, "pos")
    __abs__ = _unary(operator.abs, "abs")
    __invert__ = _unary(operator.invert, "~")
