"""``await`` in a rewritten ``async def``: helpers that wait by awaiting (see ``awaiting.py``).

The rewrite of an ``async def`` calls every helper that may need values through
:func:`asynced` (``await @xcs.asynced(@xcs.truth, x)``), and every ``await E`` becomes
``await @xcs.awaited(E)``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType, MethodType
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.awaiting import AsyncCall, Suspend, wait
from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.dispatch import frames
from ember.xcs._internal.dispatch.expressions import truth
from ember.xcs._internal.dispatch.twins import async_twin_of
from ember.xcs._internal.protocol import Op
from ember.xcs._internal.waits import calling

__all__ = ["asynced", "awaited", "ready"]


def ready(x: Any) -> Any:
    """A value the code uses at once (iterates, tests, enters): known now, not pending."""
    if type(x) is Deferred:
        return x._self_owner.demand(x._self_node)
    return x


def _calls_back(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether library code given these arguments may call an op back.

    An op (``map(op, xs)``, ``sorted(xs, key=op)``) or a ``map``/``filter`` object made
    earlier. ``type()``, not ``isinstance``: a pending value's class is not asked for.
    """
    for arg in (*args, *kwargs.values()):
        kind = type(arg)
        if kind in _CALLING_BACK or issubclass(kind, Op):
            return True
    return False


_CALLING_BACK = (map, filter)


async def asynced(helper: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``helper(*args, **kwargs)``; when it must wait for values, await them and call again.

    ``truth`` hands back the value to test as it is: here it is made known first, so
    the test in the user's frame does not wait (blocking the loop). Before library
    code gets an op to call, what is pending is awaited: the op runs at once when
    called, and the wait it would need then could not be awaited (see ``OUTSIDE``).
    """
    recording = tracer.active()
    if recording is not None and recording.pending and _calls_back(args, kwargs):
        name = getattr(helper, "__name__", "library code")
        await wait(recording, "an op handed to library code", None, True, calling(name), 0)
    kind = type(helper)
    if kind is FunctionType or kind is MethodType:  # perhaps a sync function of yours
        variant = async_twin_of(helper)
        if variant is not None:
            return await variant(*args, **kwargs)
    while True:
        try:
            result = helper(*args, **kwargs)
            if helper is truth:
                result = ready(result)
            return result
        except Suspend as suspend:
            await suspend.wait()


frames.waiter_code = asynced.__code__


async def awaited(value: Any) -> Any:
    """``await value`` in traced async code.

    An async op's call becomes its node here (its coroutine would start here) and its
    pending value is the result; a pending value is awaited once it is known; anything
    else is awaited as plain Python awaits it.
    """
    kind = type(value)
    if kind is AsyncCall:
        if value.recording is tracer.active():
            return value.record()
        return await value
    if kind is Deferred:
        recording = value._self_owner
        node = value._self_node
        if isinstance(recording, tracer.Recording) and not recording.is_known(node):
            await wait(recording, f"demand %{node}", node, True, "an await", 0)
        return await value._self_owner.demand(node)
    return await value
