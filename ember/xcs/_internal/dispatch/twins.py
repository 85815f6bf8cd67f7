"""The rewritten twin of a user function, made once and remembered.

A user function (see ``usercode.py``) is rewritten on its first call from rewritten
code; a function that cannot be rewritten is remembered as such (with the reason),
and warned about once -- at once for an unexpected reason (a stale source), or when it
first calls an op for an expected one (no source, ``async def``).
"""

from __future__ import annotations

import sys
import types
import weakref
from typing import Any

from ember.xcs._internal.dispatch.frames import rewritten, stack
from ember.xcs._internal.errors import warn_unrewritable
from ember.xcs._internal.rewrite import (
    HELPERS,
    Unrewritable,
    make_async_twin,
    make_twin,
    rewrite_async_variant,
    rewrite_function,
)
from ember.xcs._internal.usercode import first_warning, is_user_code, note_quietly_unrewritten

__all__ = ["async_twin_of", "twin_of", "unrewritable"]


unrewritable: weakref.WeakKeyDictionary[types.FunctionType, str] = weakref.WeakKeyDictionary()


def twin_of(
    fn: types.FunctionType, *, warn: bool = True, composite: bool = False
) -> types.FunctionType | None:
    """The rewritten twin of a user function, or None (library code, or no usable source).

    Args:
        fn: The function.
        warn: Warn (once) when ``fn`` is user code that cannot be rewritten for an
            unexpected reason (a stale source), or, for an expected one (no source,
            ``async def``), once it calls an op; False: the caller warns itself.
        composite: ``fn`` belongs to a composite (``xcs.composite``): rewritten
            wherever it is defined, library code included.
    """
    if rewritten(fn.__code__):
        return fn  # made by rewritten code: a nested def or lambda of a twin
    if not (composite or is_user_code(fn.__code__)) or fn in unrewritable:
        return None
    try:
        twin = make_twin(fn, rewrite_function)
    except Unrewritable as reason:
        unrewritable[fn] = str(reason)  # its ops will run at once, as library code's do
        code = fn.__code__
        if not warn:
            pass
        elif reason.expected:  # nothing wrong yet: say so if it calls an op (tracer.run_now)
            note_quietly_unrewritten(fn, str(reason))
        elif first_warning(code):  # once per function, however many closures share it
            warn_unrewritable(fn.__qualname__, code.co_filename, code.co_firstlineno, str(reason))
        return None
    if HELPERS not in fn.__globals__:
        fn.__globals__[HELPERS] = sys.modules[__package__]  # what rewritten code calls
    return twin


def async_twin_of(target: Any) -> Any:
    """What async traced code awaits instead of calling ``target``, or None.

    ``target`` is what the dispatcher resolved a call to. When it is a twin (or a
    method of one) of a plain ``def`` of yours, the ``async def`` variant of that twin
    (``rewrite_async_variant``): called from an ``async def``, your sync helper then
    waits where it needs an answer by awaiting, and the loop goes on. The next call
    entered is the variant (``frames.stack.next``), so the ops it calls defer.
    """
    fn = target.__func__ if type(target) is types.MethodType else target
    if type(fn) is not types.FunctionType or not rewritten(fn.__code__):
        return None
    made = make_async_twin(fn, rewrite_async_variant)
    if made is None:
        return None
    stack.next = made.__code__
    return made if fn is target else types.MethodType(made, target.__self__)
