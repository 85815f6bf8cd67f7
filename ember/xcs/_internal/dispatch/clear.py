"""Whether a ``try`` or ``with`` body is *clear*: it touches no pending value, calls no op.

Exception scopes are sync points so that an op's failure is raised where plain Python
raises it, inside or outside the block (see ``statements.py``). A body that can reach
no pending value and no op needs none of that: ``try: prompt = TEMPLATE.format(**f)
except KeyError: ...`` before each call must not make a loop wait for every answer.

The rewrite lists the names a body reads before binding them (``rewrite/statements.py``;
a body with a nested function, lambda, class, ``yield``, ``await``, ``global`` or a
frame builtin is never clear). Here, just before the statement, each of those names is
looked up in the caller's frame, and the body is clear when every value is *inert*:
nothing in it is pending, and nothing it reaches is your code or an op --

* plain values (``str``, numbers, ``None``, ...), and known deferred values of them;
* small built-in containers (``list``, ``tuple``, ``dict``, ``set``) of inert values;
* library modules, functions, builtins and classes (not ember's, not yours), compiled
  patterns and ``string.Template`` objects; functions declared pure (``xcs.pure``).

Anything else -- an object or function of yours, an op, a model, an ``ember``
module, a pending value -- makes the statement a sync point as before. A name not
bound yet is skipped (the body binds it, from inert values, or raises ``NameError``
as in plain Python).
"""

from __future__ import annotations

import types
from typing import Any

from ember.xcs._internal.concrete import ATOMIC_IDS
from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.dispatch.expressions import SMALL
from ember.xcs._internal.dispatch.pure import LENDABLE, PURE
from ember.xcs._internal.usercode import is_user_class, is_user_file

__all__ = ["clear"]

_MISSING = object()


def clear(frame: types.FrameType, names: tuple[str, ...]) -> bool:
    """Whether the values of ``names`` in ``frame`` are all inert (see above)."""
    if not names:
        return True
    local = frame.f_locals
    namespaces = (local, frame.f_globals, frame.f_builtins)
    for name in names:
        for namespace in namespaces:
            found = namespace.get(name, _MISSING)
            if found is not _MISSING:
                if not _inert(found, 0):
                    return False
                break
    return True


_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})


def _inert(value: Any, depth: int) -> bool:
    cls = type(value)
    if id(cls) in ATOMIC_IDS:
        return True
    if cls is Deferred:
        if not value._self_owner.is_known(value._self_node):
            return False
        return _inert(value.__wrapped__, depth)
    if cls in _CONTAINERS:
        if depth > 2 or len(value) > SMALL:
            return False
        if cls is dict:
            return all(_inert(k, depth + 1) and _inert(v, depth + 1) for k, v in value.items())
        return all(_inert(v, depth + 1) for v in value)
    if cls is types.ModuleType:
        return _library(getattr(value, "__name__", ""), getattr(value, "__file__", None))
    if cls is types.BuiltinFunctionType:
        owner = value.__self__
        return owner is None or (type(owner) is types.ModuleType and _inert(owner, depth))
    if cls is types.FunctionType:
        if _known_pure(value):
            return True
        return _library(value.__module__ or "", value.__code__.co_filename)
    if isinstance(value, type):
        return not is_user_class(value) and not (value.__module__ or "").startswith("ember")
    return cls in LENDABLE


def _known_pure(fn: Any) -> bool:
    try:
        return fn in PURE
    except TypeError:
        return False


def _library(module: str, filename: str | None) -> bool:
    """Library code that is not ember's (ember's modules call models: ops)."""
    if module == "ember" or module.startswith("ember."):
        return False
    return filename is None or not is_user_file(filename)
