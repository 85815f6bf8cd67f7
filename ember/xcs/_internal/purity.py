"""What is known about a pending value's type, and which method calls on it are pure.

A method call on a pending value (``reply.strip()``) can wait -- be recorded as glue
and run when the value is needed -- only if running it later cannot be noticed: it
has no side effects outside the value. That is known when:

* the value's type is a built-in type (``str``, ``list``, ``dict``, ...): their
  methods touch nothing but the value itself (in-place changes of it keep program
  order through the recording's order edges);
* the type is unknown and the method's name is one of the read-only methods of the
  built-in types (``strip``, ``split``, ``get``, ``count``, ...).

A value's type is known from the op's return annotation (``-> str``, ``-> list[str]``,
``-> str | None``; ``-> Page`` says it is *not* a built-in), and carries over to what
glue makes from a built-in scalar (a ``str``'s methods give built-in values). A
method of any other value (``page.show()``) is not known pure: the dispatcher makes
the value concrete and calls the method in program order.

This module is pure: no graphs, no threads.
"""

from __future__ import annotations

import contextlib
import types
import typing
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["BUILTIN", "Kind", "pure_method", "result_kind", "returns"]


class _Builtin:
    def __repr__(self) -> str:
        return "BUILTIN"


BUILTIN = _Builtin()
"""The kind of a value known to be of some built-in type (which one is not known)."""

Kind = type | _Builtin | None
"""What is known of a value's type: its class, :data:`BUILTIN`, or None (nothing)."""

_SCALARS = frozenset({str, bytes, int, float, bool, complex, type(None)})

_READ_ONLY = frozenset({"copy", "count", "get", "index", "items", "keys", "values"})
_READ_ONLY_SETS = frozenset(
    {"difference", "intersection", "isdisjoint", "issubset", "issuperset", "union"}
) | {"symmetric_difference"}

PURE_NAMES: frozenset[str] = (
    frozenset(
        name
        for cls in (str, bytes, int, float, complex, tuple, frozenset)
        for name in dir(cls)
        if not name.startswith("_")
    )
    | _READ_ONLY
    | _READ_ONLY_SETS
)
"""Method names read-only on every built-in type that has them."""


def _builtin(cls: Any) -> bool:
    return isinstance(cls, type) and cls.__module__ == "builtins"


def pure_method(kind: Kind, name: str) -> bool:
    """Whether calling method ``name`` of a value of this kind may wait (no side effects)."""
    if kind is None:
        return name in PURE_NAMES
    return kind is BUILTIN or _builtin(kind)


def result_kind(receiver: Kind) -> Kind:
    """The kind of what glue makes from a value of kind ``receiver``.

    A built-in scalar's attributes, items and methods give built-in values; nothing
    is known of what a container holds.
    """
    if receiver is BUILTIN or receiver in _SCALARS:
        return BUILTIN
    return None


_returns: weakref.WeakKeyDictionary[Any, Kind] = weakref.WeakKeyDictionary()


def returns(fn: Callable[..., Any]) -> Kind:
    """What ``fn``'s return annotation says about its value (cached per function)."""
    try:
        return _returns[fn]
    except (KeyError, TypeError):
        pass
    kind = _from_annotation(fn)
    with contextlib.suppress(TypeError):  # not weakly referable: asked again next time
        _returns[fn] = kind
    return kind


def _from_annotation(fn: Any) -> Kind:
    target = getattr(fn, "__func__", fn)
    while hasattr(target, "__wrapped__"):
        target = target.__wrapped__
    annotations = getattr(target, "__annotations__", None)
    if not isinstance(annotations, dict) or "return" not in annotations:
        return None
    annotation = annotations["return"]
    if isinstance(annotation, str):  # from __future__ import annotations
        try:
            annotation = eval(annotation, getattr(target, "__globals__", {}))
        except Exception:  # an annotation that does not evaluate says nothing
            return None
    return _kind_of(annotation)


def _kind_of(annotation: Any) -> Kind:
    if annotation is None:
        return type(None)
    if annotation is typing.Any or annotation is object:
        return None  # says nothing
    if isinstance(annotation, type):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        kinds = [_kind_of(arg) for arg in typing.get_args(annotation)]
        return BUILTIN if all(k is BUILTIN or _builtin(k) for k in kinds) else None
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return BUILTIN if all(type(v) in _SCALARS for v in values) else None
    if origin is typing.Annotated:
        return _kind_of(typing.get_args(annotation)[0])
    if isinstance(origin, type):
        return origin  # list[str] is a list
    return None
