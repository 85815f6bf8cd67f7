"""Per-thread state of rewritten code, and which frames may defer ops.

Two thread-locals, both keyed by the id of the user's frame that makes a call or a
store (helpers see it as ``sys._getframe(1)``):

* ``stack``: the decision :func:`~.calls.callee` made for a call, found again by
  :func:`~.calls.args` and :func:`~.calls.kwargs` after the arguments were evaluated
  (they may contain calls of their own); ``next``, the twin the next call enters; and
  which frames were entered through the dispatcher.
* ``scope``: how many ``try`` bodies the thread is inside (stores materialize first),
  and whether the value a frame last stored held pending values.

An op defers only when the frame calling it was entered through the dispatcher (or is
a comprehension or generator inside such code). A rewritten lambda or nested def
called back by library code (``sorted(key=...)``, ``re.sub(p, fn, s)``) was not: its
ops run at once. The last helper before a call names the twin it enters; the twin's
first statement, ``@xcs.entered()``, marks its own frame (or unmarks a reused frame id)
-- no locals, no epilogue.
"""

from __future__ import annotations

import sys
import threading
import types
from typing import Any

from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.rewrite import HELPERS

__all__ = [
    "caller",
    "enter_next",
    "entered",
    "entering",
    "may_defer",
    "rewritten",
    "scope",
    "stack",
]

waiter_code: types.CodeType | None = None
"""The code of ``awaits.asynced``: in an ``async def``, helpers are called through it
(so it can await what they wait for), one frame between them and the user's frame."""


def caller(depth: int = 1) -> types.FrameType:
    """The user's frame ``depth`` levels above the helper asking.

    ``sys._getframe(depth)`` as the helper sees it, but past ``awaits.asynced`` when that
    is what called the helper.
    """
    frame = sys._getframe(depth + 1)
    if frame.f_code is waiter_code and frame.f_back is not None:
        return frame.f_back
    return frame


class _Stack(threading.local):
    def __init__(self) -> None:
        # (frame id, kind, callee, code of the twin the call enters, if it is one)
        self.entries: list[tuple[int, int, Any, types.CodeType | None]] = []
        self.next: types.CodeType | None = None  # the twin the next call enters
        # Frame id -> the code of the frame entered through the dispatcher. The code
        # tells a live entry from one a dead frame left under a reused id.
        self.entered: dict[int, types.CodeType] = {}


stack = _Stack()


class _Scope(threading.local):
    def __init__(self) -> None:
        self.depth = 0  # try bodies this thread is inside (stores materialize first)
        # Frame id -> the value that frame last passed to store() held pending values.
        # By frame: evaluating the target after the value may run code that stores too.
        self.pending_stores: dict[int, bool] = {}
        # Frame id -> whether the try/with statement it is about to run is clear.
        self.decisions: dict[int, bool] = {}
        # The try/with bodies this thread is inside, innermost last: for a clear one,
        # the node its block began at; None for one that synced (see statements.py).
        self.blocks: list[int | None] = []


scope = _Scope()


_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>"})


_GENERATOR = 0x20 | 0x200  # CO_GENERATOR, CO_ASYNC_GENERATOR


def entering(target: Any) -> types.CodeType | None:
    """The code a call of ``target`` enters if it is a (non-generator) twin."""
    if type(target) is Deferred:
        return None  # looking inside would demand it
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if type(code) is types.CodeType and rewritten(code) and not code.co_flags & _GENERATOR:
        return code
    return None


def rewritten(code: types.CodeType) -> bool:
    """Whether ``code`` is rewritten: a twin, or a def or lambda nested in one."""
    return HELPERS in code.co_names  # every rewritten function calls @xcs.entered()


def enter_next(target: Any) -> None:
    """The next call is ``target`` (a twin), entered through the dispatcher."""
    stack.next = entering(target)


def entered() -> None:
    """First statement of every rewritten function: was this frame entered by us?"""
    frame = sys._getframe(1)
    if scope.pending_stores:  # a frame id reused: what an earlier frame stored is not ours
        scope.pending_stores.pop(id(frame), None)
    if stack.next is frame.f_code:
        stack.entered[id(frame)] = frame.f_code
        stack.next = None
    else:
        stack.entered.pop(id(frame), None)


def may_defer(frame: types.FrameType) -> bool:
    """Whether an op called from ``frame`` may defer (rather than run at once)."""
    while frame.f_code.co_name in _COMPREHENSIONS and frame.f_back is not None:
        frame = frame.f_back
    if frame.f_code.co_flags & _GENERATOR:
        return True  # generator bodies are drained or taken item by item by the dispatcher
    return stack.entered.get(id(frame)) is frame.f_code
