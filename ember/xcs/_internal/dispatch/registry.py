"""Library functions that are ops without marking: SDK request methods, users' clients.

``client.chat.completions.create(...)`` written inline in a jitted function is a
call of a library function the tracer would otherwise run at once, one call at a
time. A function registered here (``register_op``) is an op wherever rewritten
code calls it: the call records a node and returns a deferred value, runs on the
pool, and its exceptions propagate unchanged. Nothing is patched: the function
object is only looked up when the dispatcher resolves a call, so outside a trace
(and from library code inside one) it is the function it always was.

Targets are function objects or ``"module:Qualified.name"`` strings. A string is
resolved only once its module has been imported by someone else (xcs never imports
it), so the built-in entries for the official SDKs (``sdks.py``) import no SDK, and
the SDKs' lazily loaded parts stay unloaded until the program uses them.

Each entry says how its calls are named, bounded and typed:

* ``name`` plus a per-call ``label`` (the model) names the node:
  ``chat.completions.create[gpt-4o-mini]``;
* ``max_concurrency`` bounds calls in flight per ``endpoint`` (a key taken from the
  receiver: the SDK client's base URL), across every trace;
* ``run_now`` picks calls that run at once, exact and not deferred (``stream=True``:
  a stream is consumed as it arrives);
* ``returns`` is the type of a deferred call's result, so that reading
  ``resp.choices[0].message.content`` can wait too.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import threading
import types
from collections.abc import Callable, Hashable
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.dispatch.frames import caller, may_defer
from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.purity import Kind

__all__ = ["Entry", "RegisteredCall", "register_op", "registered", "unregister_op"]


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """How calls of one registered function are recorded.

    Attributes:
        name: Node name; the call's label is appended in brackets.
        max_concurrency: Calls in flight at once per endpoint, or None for no bound.
        endpoint: Receiver -> key of the endpoint the bound applies to (None: one
            bound for every call of the target).
        label: ``(*args, **kwargs) -> str | None``: detail shown in the node name.
        run_now: ``(*args, **kwargs) -> bool``: True for calls that run at once.
        returns: The result type of a deferred call (a class, an annotation, or a
            ``"module:name"`` string resolved when needed), or None (the function's
            return annotation, then what it returned before).
    """

    name: str
    max_concurrency: int | None = None
    endpoint: Callable[[Any], Hashable] | None = None
    label: Callable[..., str | None] | None = None
    run_now: Callable[..., bool] | None = None
    returns: Any = None


_UNSET: Any = object()

# Resolved entries by function object; string targets wait by module, then qualname.
_entries: dict[Any, Entry] = {}
_waiting: dict[str, dict[str, Entry]] = {}
_lock = threading.Lock()


def register_op(
    target: Callable[..., Any] | str,
    *,
    name: str | None = _UNSET,
    max_concurrency: int | None = _UNSET,
    endpoint: Callable[[Any], Hashable] | None = _UNSET,
    label: Callable[..., str | None] | None = _UNSET,
    run_now: Callable[..., bool] | None = _UNSET,
    returns: Any = _UNSET,
) -> None:
    """Make calls of a library function ops inside ``@jit``, without marking them.

    Use it for clients you call inline -- an internal HTTP wrapper,
    ``httpx.Client.post``, a vector store's ``query`` -- so that ``@jit`` overlaps
    their calls as it does the official SDKs' (which are registered this way). A call
    from your (rewritten) code records a node and returns a deferred value; the
    function itself is not changed, so outside a trace, and from library code, it
    behaves as it always did. Its exceptions propagate unchanged.

    Registering a target again changes only the settings passed:
    ``xcs.register_op("openai.resources.chat:Completions.create", max_concurrency=64)``
    raises the bound of the built-in entry.

    Args:
        target: The function -- a module-level function, or a method as found on its
            class (``httpx.Client.post``; a bound method registers its function, for
            every object of the class) -- or ``"module:Qualified.name"``, resolved once
            that module has been imported (registering imports nothing).
        name: Node name in graphs, stats and errors (default: the qualified name).
        max_concurrency: Bound on calls in flight at once, per endpoint, across all
            traces; None for no bound.
        endpoint: ``receiver -> key``: calls whose receivers (the method's ``self``)
            give the same key share one bound; None for one bound in all.
        label: ``(*args, **kwargs) -> str | None``, shown after the name
            (``create[gpt-4o-mini]``). It gets the arguments as passed: a pending
            value is not a ``str`` and is left out.
        run_now: ``(*args, **kwargs) -> bool``: calls for which it is true run at
            once, in program order, instead of being deferred (a streaming request).
        returns: The type a deferred call returns, if its annotation is not precise
            (``ChatCompletion`` rather than ``ChatCompletion | Stream[...]``), so that
            attribute reads on the result can wait too.

    Raises:
        TypeError: ``target`` is not a function or a ``"module:name"`` string, or a
            setting has the wrong type.
        ValueError: ``max_concurrency`` is not a positive int or None.
    """
    given = {
        key: setting
        for key, setting in {
            "name": name,
            "max_concurrency": max_concurrency,
            "endpoint": endpoint,
            "label": label,
            "run_now": run_now,
            "returns": returns,
        }.items()
        if setting is not _UNSET
    }
    _check(given)
    _resolve_waiting()  # a built-in entry's function may be named as an object now
    if isinstance(target, str):
        module, qualname = _split(target)
        resolved = _resolved(module, qualname)  # outside the lock: it may run code
    with _lock:
        if isinstance(target, str):
            waiting = _waiting.setdefault(module, {})
            old = waiting.get(qualname) or _entries.pop(resolved, None)
            waiting[qualname] = _updated(old, qualname, given)
        else:
            fn = _function_of(target)
            old = _entries.get(fn)
            _entries[fn] = _updated(old, getattr(fn, "__qualname__", repr(fn)), given)
        _specs.clear()
    _forget()


def unregister_op(target: Callable[..., Any] | str) -> None:
    """Undo ``register_op``: calls of ``target`` are library calls again.

    Raises:
        KeyError: ``target`` is not registered.
    """
    _resolve_waiting()
    if isinstance(target, str):
        module, qualname = _split(target)
        resolved = _resolved(module, qualname)  # outside the lock: it may run code
    with _lock:
        if isinstance(target, str):
            found = _waiting.get(module, {}).pop(qualname, None)
            if not _waiting.get(module, True):
                del _waiting[module]
            if _entries.pop(resolved, None) is None and found is None:
                raise KeyError(f"xcs.unregister_op: {target!r} is not registered")
        else:
            fn = _function_of(target)
            if _entries.pop(fn, None) is None:
                raise KeyError(f"xcs.unregister_op: {target!r} is not registered")
    _forget()


def _forget() -> None:
    from ember.xcs._internal.dispatch.callees import forget_resolutions

    forget_resolutions()  # a call site may have resolved the target as library code


def _check(given: dict[str, Any]) -> None:
    name = given.get("name")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"xcs.register_op: name must be a str, got {name!r}")
    limit = given.get("max_concurrency")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(
            f"xcs.register_op: max_concurrency must be a positive int or None, got {limit!r}"
        )
    for key in ("endpoint", "label", "run_now"):
        if given.get(key) is not None and not callable(given[key]):
            raise TypeError(f"xcs.register_op: {key} must be callable or None, got {given[key]!r}")


def _split(target: str) -> tuple[str, str]:
    module, sep, qualname = target.partition(":")
    if not sep or not module or not qualname:
        raise TypeError(
            f"xcs.register_op: a target given by name is 'module:Qualified.name' "
            f"(like 'httpx:Client.post'), got {target!r}"
        )
    return module, qualname


def _function_of(target: Any) -> Any:
    fn = target.__func__ if isinstance(target, types.MethodType) else target
    if not isinstance(fn, types.FunctionType):
        raise TypeError(
            f"xcs.register_op takes a Python function, a method as found on its class, "
            f"or a 'module:Qualified.name' string, got {type(target).__name__} "
            f"{target!r}; to make another callable an op, wrap it with xcs.op"
        )
    from ember.xcs._internal.protocol import is_op

    if is_op(fn):
        raise TypeError(f"xcs.register_op: {target!r} is an op already")
    return fn


def _updated(old: Entry | None, qualname: str, given: dict[str, Any]) -> Entry:
    base = old if old is not None else Entry(qualname)
    if given.get("name", _UNSET) is None:
        given = {**given, "name": qualname}
    return dataclasses.replace(base, **given)


def _resolved(module: str, qualname: str) -> Any:
    """The object ``module:qualname`` names if its module is imported (never imports it)."""
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        if target is None:
            return None
        target = getattr(target, part, None)
    return target


def _resolve_waiting() -> None:
    """Move string entries whose module is imported now to the table of functions.

    The lock is not held while names are looked up: a module's attribute may run code
    (a lazy loader) that registers ops itself.
    """
    with _lock:
        ready = {m: dict(_waiting[m]) for m in _waiting if m in sys.modules}
    if not ready:
        return
    found = {
        (module, qualname): _resolved(module, qualname)
        for module, entries in ready.items()
        for qualname in entries
    }
    with _lock:
        for (module, qualname), fn in found.items():
            entries = _waiting.get(module, {})
            entry = entries.get(qualname)
            if entry is not None and isinstance(fn, types.FunctionType):
                _entries[fn] = entry
                del entries[qualname]
                if not entries:
                    del _waiting[module]


def registered(fn: Any) -> RegisteredCall | None:
    """What a call site calls for ``fn``, if it is a registered function; else None."""
    if _waiting and any(module in sys.modules for module in tuple(_waiting)):
        _resolve_waiting()
    try:
        entry = _entries.get(fn)
    except TypeError:  # unhashable
        return None
    return None if entry is None else RegisteredCall(fn, entry)


# Op specs per (entry, endpoint key, label): one node name each, one limit per endpoint.
_specs: dict[tuple[Any, ...], OpSpec] = {}
_SPECS_MAX = 4096


def _spec(entry: Entry, endpoint: Hashable, label: str | None) -> OpSpec:
    key = (entry, endpoint, label)
    spec = _specs.get(key)
    if spec is None:
        bound = _specs.get((entry, endpoint, _BOUND))
        if bound is None:
            bound = OpSpec(entry.name, entry.max_concurrency)
        name = entry.name if label is None else f"{entry.name}[{label}]"
        spec = OpSpec(name, entry.max_concurrency, shares_limit_with=bound)
        with _lock:
            if len(_specs) >= _SPECS_MAX:  # a bound is shared only while its key stays
                _specs.clear()
            _specs.setdefault((entry, endpoint, _BOUND), bound)
            spec = _specs.setdefault(key, spec)
    return spec


_BOUND = object()  # the key of an endpoint's own spec, whose limit the others share


def _returns(entry: Entry) -> Kind:
    kind = entry.returns
    if isinstance(kind, str):
        module, _, qualname = kind.partition(":")
        return _resolved(module, qualname) if module in sys.modules else None
    return kind


class RegisteredCall:
    """What rewritten code calls for a registered function: records an op node."""

    __slots__ = ("asynchronous", "entry", "fn")

    def __init__(self, fn: Callable[..., Any], entry: Entry) -> None:
        self.fn = fn
        self.entry = entry
        # An async method (AsyncOpenAI's): its calls are async ops (awaiting.AsyncCall).
        self.asynchronous = inspect.iscoroutinefunction(inspect.unwrap(fn))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recording = tracer.active()
        if recording is None:
            return self.fn(*args, **kwargs)
        entry = self.entry
        endpoint: Hashable = None
        if entry.endpoint is not None and args:
            try:
                endpoint = entry.endpoint(args[0])
            except Exception:  # a receiver without the attribute: the shared bound
                endpoint = None
        label = entry.label(*args, **kwargs) if entry.label is not None else None
        spec = _spec(entry, endpoint, label if type(label) is str else None)
        if self.asynchronous:
            return self._async_call(recording, spec, args, kwargs, may_defer(caller()))
        if entry.run_now is not None and entry.run_now(*args, **kwargs):
            why = f"{entry.name}(), a call that runs at once (streaming)"
            return recording.run_now(spec, self.fn, args, kwargs, why)
        if not may_defer(caller()):
            return recording.run_now(spec, self.fn, args, kwargs)
        return recording.record_op(spec, self.fn, args, kwargs, kind=_returns(entry))

    def _async_call(
        self,
        recording: tracer.Recording,
        spec: OpSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        deferring: bool,
    ) -> Any:
        """An async method's call: recorded when awaited, in traced async code.

        Its coroutine as plain Python has it in sync code, for streams (read as they
        arrive) and when its caller was not entered by the dispatcher.
        """
        entry = self.entry
        streams = entry.run_now is not None and entry.run_now(*args, **kwargs)
        if recording.loop is None or streams or not deferring:
            return self.fn(*args, **kwargs)
        from ember.xcs._internal.awaiting import AsyncCall

        return AsyncCall(recording, spec, self.fn, args, kwargs, _returns(entry))

    def __repr__(self) -> str:
        return f"<xcs registered op {self.entry.name!r}>"
