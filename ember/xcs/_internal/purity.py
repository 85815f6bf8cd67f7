"""What is known about a pending value's type, and which work on it may wait.

Work on a pending value -- ``reply.strip()``, ``resp.text``, ``parsed["k"]``, ``a + b``
-- can wait (be recorded as glue and run when the value is needed) only if running it
later cannot be noticed: it touches nothing but the value. That is known from the
value's *kind*, what xcs knows of its type:

* **A built-in type** (``str``, ``list``, ``dict``, ...): everything on it may wait
  (in-place changes of the value keep program order through the recording's order
  edges).
* **Another class**: attribute reads, items and operators may wait unless the class
  implements them in Python (a property, ``__getattribute__``, a ``__getattr__`` for a
  name the class does not declare, ``__getitem__``, ``__add__``: code that may have
  side effects); a method call may wait only if the
  method is not Python code (one inherited from ``dict``, say). ``page.show()`` runs in
  program order -- your method, rewritten, so the ops it calls still defer.
* **Unknown**: attribute reads, items and operators wait (data access, nearly always);
  a method call runs in program order.

Kinds come from annotations -- the op's return annotation (``-> str``,
``-> list[Answer]``, ``-> ChatCompletion``), then a class's annotated attributes and
its properties' and methods' return annotations along a chain
(``resp.choices[0].message.content``) -- and, where there is none, from what was seen:
the type an op returned on its earlier calls, and the type an attribute of a class
held. So an unannotated op's first call may wait where later ones do not.

What a kind allows is worked out from classes and annotations once and cached
(:func:`_per_kind`), as a class's Python-ness is (``_python``): a class changed after
xcs first looked at it keeps what was found then. What was *seen* is never cached: it
grows.

This module is pure: no graphs, no threads.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import types
import typing
from collections import abc
from collections.abc import Callable
from typing import Any

__all__ = [
    "BUILTIN",
    "Kind",
    "attribute_kind",
    "call_kind",
    "class_attribute",
    "item_kind",
    "observe",
    "observe_attribute",
    "op_kind",
    "pure_method",
    "result_kind",
    "return_kind",
    "waits_for",
]


class _Builtin:
    def __repr__(self) -> str:
        return "BUILTIN"


BUILTIN: Any = _Builtin()
"""The kind of a value known to be of some built-in type (which one is not known)."""

Kind = Any
"""What is known of a value's type: an annotation (a class, ``list[str]``, a union),
:data:`BUILTIN`, or None (nothing)."""

_SCALARS = frozenset({str, bytes, int, float, bool, complex, type(None), bytearray})
_SEQUENCES = (list, tuple, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Iterator)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)


_R = typing.TypeVar("_R")


def _per_kind(fn: Callable[..., _R]) -> Callable[..., _R]:
    """Cache ``fn(kind, *names)``: it reads classes and annotations only.

    Keyed by the kind's identity (hashing ``list[Choice]`` costs more than the lookup
    saves), the kind kept in the entry so the identity stays its own.
    """
    cache: dict[tuple[Any, ...], tuple[Kind, _R]] = {}

    @functools.wraps(fn)
    def cached(kind: Kind, *names: str) -> _R:
        key = (id(kind), *names)
        hit = cache.get(key)
        if hit is not None and hit[0] is kind:
            return hit[1]
        result = fn(kind, *names)
        if len(cache) >= 4096:
            cache.clear()
        cache[key] = (kind, result)
        return result

    return cached


def _origin(kind: Kind) -> Any:
    """The class a kind stands for (``list`` for ``list[str]``), or None."""
    if kind is None or kind is BUILTIN:
        return None
    if isinstance(kind, type):
        return kind
    origin: Any = typing.get_origin(kind)
    return origin if isinstance(origin, type) else None


def _members(kind: Kind) -> list[Kind]:
    """The alternatives of a union (``str | None``), or the kind itself."""
    origin: Any = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        return list(typing.get_args(kind))
    if origin is typing.Annotated:
        return _members(typing.get_args(kind)[0])
    if origin is typing.Literal:
        return [type(v) for v in typing.get_args(kind)]
    return [kind]


@_per_kind
def builtin(kind: Kind) -> bool:
    """Whether every value of this kind is of a built-in type."""
    if kind is BUILTIN:
        return True
    if kind is None:
        return False
    members = _members(kind)
    return all(
        m is BUILTIN or (_origin(m) is not None and _origin(m).__module__ == "builtins")
        for m in members
    )


def _single(kind: Kind) -> Kind:
    """A kind without its ``None`` alternative (``str | None`` -> ``str``), or the kind."""
    members = [m for m in _members(kind) if m is not type(None) and m is not None]
    return members[0] if len(members) == 1 else kind


def class_attribute(cls: type, name: str) -> Any:
    """What ``name`` is on ``cls`` itself (its MRO), unbound; None if it has none."""
    return next((vars(k)[name] for k in cls.__mro__ if name in vars(k)), None)


# --- what work may wait ---------------------------------------------------------------

_WAITS_IN_PYTHON: dict[tuple[type, str], bool] = {}  # (class, name) -> Python code


def _python(cls: type, name: str) -> bool:
    """Whether ``cls`` implements ``name`` (an attribute of the class) as Python code."""
    key = (cls, name)
    found = _WAITS_IN_PYTHON.get(key)
    if found is None:
        attribute = class_attribute(cls, name)
        if isinstance(attribute, property):
            found = not _quiet(attribute.fget)
        elif isinstance(attribute, (staticmethod, classmethod)):
            found = type(attribute.__func__) is types.FunctionType
        elif _quiet(attribute):
            found = False  # library code known to touch nothing but the object
        else:
            getter = getattr(type(attribute), "__get__", None)
            found = type(attribute) is types.FunctionType or (
                attribute is not None and type(getter) is types.FunctionType
            )
        if len(_WAITS_IN_PYTHON) > 4096:
            _WAITS_IN_PYTHON.clear()
        _WAITS_IN_PYTHON[key] = found
    return found


# Library code written in Python known to only read the object (qualname -> module):
# pydantic's ``__getattr__`` looks up private and extra fields, or raises; the openai
# SDK's ``Response.output_text`` joins the response's text parts.
_QUIET = {
    "BaseModel.__getattr__": "pydantic.main",
    "Response.output_text": "openai.types.responses.response",
}


def _quiet(attribute: Any) -> bool:
    """Whether ``attribute`` is library code in :data:`_QUIET`."""
    qualname = getattr(attribute, "__qualname__", None)
    return isinstance(qualname, str) and _QUIET.get(qualname) == getattr(
        attribute, "__module__", None
    )


def _declared(cls: type, name: str) -> bool:
    """Whether ``name`` is a class attribute or an annotated one (a field)."""
    return any(name in vars(k) for k in cls.__mro__) or name in _hints(cls)


@_per_kind
def waits_for(kind: Kind, access: str) -> bool:
    """Whether ``access`` on a pending value of this kind may wait (be glue).

    Args:
        kind: What is known of the value's type.
        access: ``.name`` (an attribute read), ``[]`` (an item), or an operator's
            dunder (``__add__``, ``__eq__``, ...).
    """
    if kind is None or builtin(kind):
        return True
    for member in _members(kind):
        cls = _origin(member)
        if cls is None or cls.__module__ == "builtins":
            continue
        if access.startswith("."):
            name = access[1:]
            if _python(cls, "__getattribute__") or _python(cls, name):
                return False
            if _python(cls, "__getattr__") and not _declared(cls, name):
                return False  # perhaps computed by the class's __getattr__
        elif _python(cls, "__getitem__" if access == "[]" else access):
            return False
    return True


@_per_kind
def pure_method(kind: Kind, name: str) -> bool:
    """Whether calling method ``name`` of a value of this kind may wait (no side effects)."""
    if kind is None:
        return False
    if builtin(kind):
        return True
    for member in _members(kind):
        cls = _origin(member)
        if cls is None:
            return False
        if cls.__module__ != "builtins" and _python(cls, name):
            return False
    return True


# --- kinds along a chain of glue --------------------------------------------------------


def _narrowed(kind: Kind) -> Kind:
    """``kind`` without its ``None`` alternative; :data:`BUILTIN` for a scalar.

    Whatever glue makes from a built-in scalar is built-in too.
    """
    if kind is None:
        return None
    kind = _single(kind)
    return BUILTIN if kind is BUILTIN or kind in _SCALARS else kind


def attribute_kind(kind: Kind, name: str) -> Kind:
    """The kind of ``value.name`` for a value of this kind.

    For a union of classes (``TextBlock | ToolUseBlock``), the kind the members that
    declare ``name`` agree on (on the others, reading it raises), else nothing.
    """
    kind = _narrowed(kind)
    if kind is None or kind is BUILTIN:
        return kind
    members = _members(kind)
    if len(members) > 1:
        found = {
            _narrowed(attribute_kind(m, name))
            for m in members
            if _origin(m) is not None and _declared(_origin(m), name)
        }
        return found.pop() if len(found) == 1 else None
    cls = _origin(kind)
    if cls is None or cls.__module__ == "builtins":
        return BUILTIN if cls is not None else None
    hinted = _hints(cls).get(name)
    if hinted is not None:
        return hinted
    attribute = class_attribute(cls, name)
    if isinstance(attribute, property) and attribute.fget is not None:
        return return_kind(attribute.fget)
    seen = _attributes_seen.get(cls)
    return seen.get(name) if seen else None


@_per_kind
def item_kind(kind: Kind) -> Kind:
    """The kind of ``value[k]`` for a value of this kind."""
    kind = _narrowed(kind)
    if kind is None or kind is BUILTIN:
        return kind
    cls, args = _origin(kind), typing.get_args(kind)
    if cls is None:
        return None
    if cls in _BUILTIN_RESULTS:
        return BUILTIN  # m[1]
    if args and issubclass(cls, _MAPPINGS):
        return args[-1]
    if args and issubclass(cls, tuple) and (len(args) == 1 or args[-1] is Ellipsis):
        return args[0]
    if args and issubclass(cls, tuple):
        return BUILTIN if all(builtin(a) for a in args) else None
    if args and issubclass(cls, _SEQUENCES):
        return args[0]
    return None


# Library classes in C whose methods and items give built-in values only.
_BUILTIN_RESULTS: frozenset[type] = frozenset({re.Match})


@_per_kind
def call_kind(kind: Kind, name: str) -> Kind:
    """The kind of ``value.name(...)`` for a value of this kind."""
    kind = _narrowed(kind)
    if kind is None or kind is BUILTIN:
        return kind
    cls = _origin(kind)
    if cls in _BUILTIN_RESULTS:
        return BUILTIN  # m.group(1), m.span()
    if cls is None or cls.__module__ == "builtins":
        return None  # list.pop(), dict.get(): an item, of a kind not kept here
    method = getattr(cls, name, None)
    return return_kind(method) if method is not None else None


@_per_kind
def result_kind(kind: Kind, access: str) -> Kind:
    """The kind of what an operator or formatting makes from a value of this kind."""
    if access in ("f-string", ".join()", ".format()", "%"):
        return str
    return BUILTIN if kind is not None and builtin(kind) else None


# --- where kinds come from ----------------------------------------------------------------


class _Bounded(dict[Any, Any]):
    """A cache that forgets everything when full.

    Its values may refer to its keys (a class's hints name the class), so weak keys
    would never let them go.
    """

    def __setitem__(self, key: Any, value: Any) -> None:
        if len(self) >= 4096:
            self.clear()
        super().__setitem__(key, value)


_returns: dict[Any, Kind] = _Bounded()  # function -> its return annotation's kind
_ops_seen: dict[Any, Kind] = _Bounded()  # op spec -> the type it returned
_attributes_seen: dict[type, dict[str, Kind]] = _Bounded()  # class -> name -> type held
_hinted: dict[type, dict[str, Any]] = _Bounded()  # class -> its evaluated annotations
_MIXED = object()  # seen returning different types: nothing is known


def op_kind(fn: Callable[..., Any], spec: Any) -> Kind:
    """The kind of an op's value: its return annotation, else the type it returned before."""
    kind = return_kind(fn)
    if kind is not None:
        return kind
    seen = _ops_seen.get(spec)
    return None if seen is _MIXED else seen


def observe(spec: Any, value: Any) -> None:
    """An op finished with ``value``: remember its type (for ops without annotations)."""
    with contextlib.suppress(TypeError):
        seen = _ops_seen.get(spec)
        if seen is None:
            _ops_seen[spec] = type(value)
        elif seen is not _MIXED and seen is not type(value):
            _ops_seen[spec] = _MIXED


def observe_attribute(owner: Any, name: str, value: Any) -> None:
    """Glue read ``owner.name`` and got ``value``: remember its type for the class."""
    cls = type(owner)
    if cls.__module__ == "builtins":
        return
    with contextlib.suppress(TypeError):
        seen = _attributes_seen.get(cls)
        if seen is None:
            seen = _attributes_seen[cls] = {}
        before = seen.get(name)
        if before is None and name not in seen:
            seen[name] = type(value)
        elif before is not type(value):
            seen[name] = None  # mixed


def return_kind(fn: Any) -> Kind:
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
    return _evaluated(annotations["return"], getattr(target, "__globals__", {}))


def _evaluated(annotation: Any, namespace: dict[str, Any]) -> Kind:
    if isinstance(annotation, str):  # from __future__ import annotations
        try:
            annotation = eval(annotation, namespace)
        except Exception:  # an annotation that does not evaluate says nothing
            return None
    if annotation is typing.Any or annotation is object or isinstance(annotation, typing.TypeVar):
        return None
    if annotation is None:
        return type(None)
    return annotation


def _hints(cls: type) -> dict[str, Any]:
    """A class's annotated attributes, evaluated (cached).

    Annotations that do not evaluate (a name imported only for type checkers, in the
    class or a base) are left out; the others still count.
    """
    try:
        return _hinted[cls]
    except (KeyError, TypeError):
        pass
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a forward reference that does not resolve: one by one
        hints = _hints_one_by_one(cls)
    hints = {
        k: v
        for k, v in hints.items()
        if v is not typing.Any and typing.get_origin(v) is not typing.ClassVar
    }
    with contextlib.suppress(TypeError):
        _hinted[cls] = hints
    return hints


def _hints_one_by_one(cls: type) -> dict[str, Any]:
    """The annotations of ``cls`` and its bases that evaluate, base first."""
    hints: dict[str, Any] = {}
    for k in reversed(cls.__mro__):
        namespace = getattr(sys.modules.get(k.__module__), "__dict__", {})
        for name, annotation in vars(k).get("__annotations__", {}).items():
            try:
                hints[name] = typing.get_type_hints(
                    _Annotated(name, annotation), namespace, dict(vars(k))
                )[name]
            except Exception:
                hints.pop(name, None)  # unknown here: nothing is known of it
    return hints


class _Annotated:
    """An object with one annotation, for evaluating it as ``get_type_hints`` does."""

    def __init__(self, name: str, annotation: Any) -> None:
        self.__annotations__ = {name: annotation}
