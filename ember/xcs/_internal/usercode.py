"""Which code is the user's, and which of it was left unrewritten.

*User code* is what ``jit`` rewrites: functions whose file lies outside the standard
library and site-packages (notebook cells and ``exec``'d strings included, a source is
looked for later), plus ``ember.operators`` and the demo's pipeline; the rest of
``ember`` is library code. Classes are the user's by their module's file.

Code left unrewritten for an expected reason (no source, an ``async def``) is noted
quietly; the tracer asks about it when such code calls an op, to warn once. Both the
rewrite (compile time) and the dispatcher and tracer (run time) use this module; it
imports nothing from the rest of xcs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import site
import sys
import sysconfig
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

__all__ = [
    "Unrewritten",
    "any_quietly_unrewritten",
    "first_warning",
    "is_user_class",
    "is_user_code",
    "is_user_file",
    "known_library_class",
    "note_quietly_unrewritten",
    "quietly_unrewritten",
]


@dataclasses.dataclass(frozen=True)
class Unrewritten:
    """A user function left unrewritten: what a warning about it names."""

    qualname: str
    filename: str
    line: int
    reason: str


# Code objects are tracked by identity (equal code -- the same line typed twice at the
# prompt -- may be two functions) through weak references (nothing is kept alive).
# _quiet: id(code) -> (ref, what it belongs to, ref to that function's code); nested
# code (comprehensions, lambdas, inner functions) belongs to the function around it.
# _warned: id(function code) -> (ref,) for functions already warned about.
_CodeRef = weakref.ref[types.CodeType]
_quiet: dict[int, tuple[_CodeRef, Unrewritten, _CodeRef]] = {}
_warned: dict[int, tuple[_CodeRef]] = {}
_registry_lock = threading.Lock()


def _drop(table: dict[int, Any], key: int, ref: _CodeRef) -> None:
    """Weak-reference callback: forget a dead code object (unless its id was reused)."""
    entry = table.get(key)
    if entry is not None and entry[0] is ref:
        table.pop(key, None)


def _ref(table: dict[int, Any], code: types.CodeType) -> _CodeRef:
    return weakref.ref(code, functools.partial(_drop, table, id(code)))


def _holds(table: dict[int, Any], code: types.CodeType) -> bool:
    entry = table.get(id(code))
    return entry is not None and entry[0]() is code


def first_warning(code: types.CodeType) -> bool:
    """True the first time it is asked about this function's code: warn then, only then."""
    with _registry_lock:
        if _holds(_warned, code):
            return False
        _warned[id(code)] = (_ref(_warned, code),)
        return True


def note_quietly_unrewritten(fn: types.FunctionType, reason: str) -> None:
    """Remember user code left unrewritten for an expected reason (no warning yet)."""
    code = fn.__code__
    info = Unrewritten(fn.__qualname__, code.co_filename, code.co_firstlineno, reason)
    with _registry_lock:
        if _holds(_warned, code):
            return
        root = weakref.ref(code)
        for inner in _nested(code):
            _quiet[id(inner)] = (_ref(_quiet, inner), info, root)


def any_quietly_unrewritten() -> bool:
    """Whether any code was left unrewritten quietly (cheap: no lock, no frame walk)."""
    return bool(_quiet)


def quietly_unrewritten(code: types.CodeType) -> Unrewritten | None:
    """The unrewritten function ``code`` belongs to, the first time it is asked (then None).

    Code without source (``exec``, the interactive prompt) or an ``async def`` is
    left unrewritten without a warning: usually it calls no op. When it does, its ops
    run at once, one after another -- worth a warning, once.
    """
    with _registry_lock:
        if not _holds(_quiet, code):
            return None
        _, info, root_ref = _quiet[id(code)]
        root = root_ref()
        if root is None:  # pragma: no cover - the function's code outlives its nested code
            return None
        for inner in _nested(root):
            if _holds(_quiet, inner):
                del _quiet[id(inner)]
        _warned[id(root)] = (_ref(_warned, root),)
        return info


def _nested(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and every code object defined inside it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested(const)


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update(site.getsitepackages())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        dirs.add(user_site)
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs)


_LIBRARY = _library_dirs()
_EMBER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "")
# Ember's own code written as users write theirs, so jit rewrites it: operators (their
# forward methods call models) and the demo's pipeline.
_EMBER_USER = (os.path.join(_EMBER, "operators", ""), os.path.join(_EMBER, "_demo.py"))


def is_user_code(code: types.CodeType) -> bool:
    """Whether this code is the user's (rewritten) or a library's (not)."""
    return is_user_file(code.co_filename)


def is_user_file(filename: str) -> bool:
    """Whether code from this file is the user's (rewritten) or a library's (not)."""
    user = _user_files.get(filename)
    if user is None:
        if filename.startswith("<"):
            user = True  # notebook cells and exec'd strings: a source is looked for later
        else:
            path = os.path.realpath(filename)
            if path.startswith(_EMBER):
                user = path.startswith(_EMBER_USER)
            else:
                user = not path.startswith(_LIBRARY)
        _user_files[filename] = user
    return user


_user_files: dict[str, bool] = {}  # by file name (a few per module ever imported)
_user_classes: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def is_user_class(cls: type) -> bool:
    """Whether ``cls`` was defined in user code (by its module's file; cached)."""
    try:
        user = _user_classes.get(cls)
    except TypeError:  # a class that refuses hashing: decide afresh each time
        user = None
    if user is None:
        module = sys.modules.get(getattr(cls, "__module__", None) or "")
        filename = getattr(module, "__file__", None)
        user = is_user_file(filename) if filename else cls.__module__ == "__main__"
        with contextlib.suppress(TypeError):
            _user_classes[cls] = user
    return user


def known_library_class(cls: type) -> bool:
    """Whether ``cls`` is already known to be a library class (no lookup, never raises)."""
    try:
        return _user_classes.get(cls) is False
    except TypeError:
        return False


# --- finding the source ------------------------------------------------------------
