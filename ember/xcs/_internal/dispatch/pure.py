"""Known-pure library calls: the work done on each answer is recorded as glue.

``int(reply.strip())``, ``json.loads(reply)``, ``re.search(p, reply)``,
``"yes" in reply.lower()``, ``table[reply]``: plain programs do a little work on
every answer right after the call. If that work waited for the answer, the next
iteration's call would not even be recorded until then, and the loop would run one
call at a time. A call of a function in :data:`PURE` -- one that only computes its
result from its arguments (no side effects, nothing read that could change) -- whose
arguments include a pending value is recorded as glue instead: it runs when its
inputs are done, exactly once, in the thread that materializes, and a failure
surfaces as any failing glue's does (the original exception, in program order).

The table is one dict (callee -> name and what its result is), documented in
``docs/parallelism.md``; :func:`pure` adds users' own functions and other
libraries'. A call stays glue only when every argument is a value that cannot change
before the glue runs, or that xcs can copy or lend (atomic values, pending values,
small built-in containers of them, compiled patterns, templates); anything else --
a callback (``re.sub(p, fn, s)``, ``json.loads(s, object_hook=f)``), an object of
your class -- makes the call run now, on concrete values, as any library call.
"""

from __future__ import annotations

import ast
import builtins
import json
import operator
import re
import string
import textwrap
import types
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ember.xcs._internal import tracer
from ember.xcs._internal.concrete import ATOMIC_IDS, concrete_argument
from ember.xcs._internal.deferred import Deferred, value_of
from ember.xcs._internal.dispatch.expressions import SMALL, key, runs_no_code_of_yours, value
from ember.xcs._internal.dispatch.formatting import first_pending
from ember.xcs._internal.purity import BUILTIN, Kind, return_kind

__all__ = [
    "BUILT_IN",
    "LENDABLE",
    "PURE",
    "PureCall",
    "contains",
    "length",
    "pure",
    "pure_method",
    "recordable",
]

F = TypeVar("F", bound=Callable[..., Any])


_MATCH: Kind = re.Match[str] | None
_FOUND: Kind = list[str | tuple[str, ...]]
_SPLIT: Kind = list[str | None]

PURE: dict[Any, tuple[str, Kind]] = {
    int: ("int()", int),
    float: ("float()", float),
    str: ("str()", str),
    repr: ("repr()", str),
    ascii: ("ascii()", str),
    bool: ("bool()", bool),
    abs: ("abs()", BUILTIN),
    round: ("round()", BUILTIN),
    json.loads: ("json.loads()", BUILTIN),
    json.dumps: ("json.dumps()", str),
    ast.literal_eval: ("ast.literal_eval()", BUILTIN),
    re.search: ("re.search()", _MATCH),
    re.match: ("re.match()", _MATCH),
    re.fullmatch: ("re.fullmatch()", _MATCH),
    re.findall: ("re.findall()", _FOUND),
    re.split: ("re.split()", _SPLIT),
    re.sub: ("re.sub()", str),
    re.subn: ("re.subn()", tuple[str, int]),
    re.escape: ("re.escape()", str),
    re.Pattern.search: ("Pattern.search()", _MATCH),
    re.Pattern.match: ("Pattern.match()", _MATCH),
    re.Pattern.fullmatch: ("Pattern.fullmatch()", _MATCH),
    re.Pattern.findall: ("Pattern.findall()", _FOUND),
    re.Pattern.split: ("Pattern.split()", _SPLIT),
    re.Pattern.sub: ("Pattern.sub()", str),
    re.Pattern.subn: ("Pattern.subn()", tuple[str, int]),
    textwrap.dedent: ("textwrap.dedent()", str),
    textwrap.indent: ("textwrap.indent()", str),
    textwrap.shorten: ("textwrap.shorten()", str),
    textwrap.wrap: ("textwrap.wrap()", list[str]),
    textwrap.fill: ("textwrap.fill()", str),
    string.Template.substitute: ("Template.substitute()", str),
    string.Template.safe_substitute: ("Template.safe_substitute()", str),
}
"""Callees known to be pure: name in the graph, and what is known of the result's type.

Every unbound method of ``str`` is here too, except ``join`` and ``format``, which
are formatting (``formatting.py``).
"""

PURE.update(
    {
        method: (f"str.{name}()", BUILTIN)
        for name, method in vars(str).items()
        if not name.startswith("_") and name not in ("join", "format") and callable(method)
    }
)

PURE.update(
    {
        error: (f"{error.__name__}()", error)
        for error in vars(builtins).values()
        if isinstance(error, type)
        and issubclass(error, BaseException)
        and not issubclass(error, (UnicodeError, BaseExceptionGroup))  # more arguments
    }
)
"""Built-in exceptions too: ``raise ValueError(reply)`` makes one and changes nothing."""

_AGGREGATES: dict[Any, tuple[str, Kind]] = {
    sum: ("sum()", None),
    min: ("min()", None),
    max: ("max()", None),
    sorted: ("sorted()", list),
}
PURE.update(_AGGREGATES)
"""Aggregates over a small list of answers (``sum(scores) / len(scores)``): glue too.

Given a generator instead (``sum(ask(q) for q in qs)``), they drain it first, so the
ops it makes run together, then run on the values (``PureCall.drain``). (``any`` and
``all`` stop early, so a generator's ops must run one by one: they are not here.)"""

BUILT_IN: frozenset[Any] = frozenset(PURE)
"""The entries xcs ships (what ``xcs.pure`` adds is not among them)."""

_PURE_RECEIVERS = frozenset({str, re.Pattern})  # whose bound methods may be in the table


LENDABLE: frozenset[type] = frozenset({re.Pattern, re.RegexFlag, string.Template})
"""Library objects that only library code reads: a glue call gets them by reference."""


def pure(fn: F, *, name: str | None = None) -> F:
    """Declare ``fn`` pure: called with a pending value, it is recorded as glue.

    Pure means its result depends only on its arguments and it changes nothing: no
    output, no globals, no changes to its arguments, no clock or randomness. Then
    running it later, when its inputs are done, cannot be noticed -- and a loop that
    parses each answer right after its call stays parallel. Use it for your own
    helpers and for other libraries' functions (``xcs.pure(yaml.safe_load)``).

    Args:
        fn: The function (a plain function, builtin or library function).
        name: Its name in the graph (default: its qualified name).

    Returns:
        ``fn`` itself, so ``@xcs.pure`` works as a decorator.

    Raises:
        TypeError: ``fn`` is not callable, or is an op or a class (an op is already
            deferred; a class's constructor may run any code).
    """
    if not callable(fn) or isinstance(fn, type):
        raise TypeError(
            f"xcs.pure takes a function, not {type(fn).__name__} {fn!r}; decorate the "
            "function whose result depends only on its arguments"
        )
    from ember.xcs._internal.protocol import is_op

    if is_op(fn):
        raise TypeError(f"xcs.pure: {fn!r} is an op, which is deferred already")
    label = name or f"{getattr(fn, '__qualname__', getattr(fn, '__name__', repr(fn)))}()"
    PURE[fn] = (label, return_kind(fn))
    from ember.xcs._internal.dispatch.callees import forget_resolutions

    forget_resolutions()  # a call site may have resolved fn as user or library code
    return fn


class PureCall:
    """What a call site calls for a pure callee: glue if an argument is pending."""

    __slots__ = ("drain", "fn", "kind", "name")

    def __init__(self, fn: Callable[..., Any], name: str, kind: Kind) -> None:
        self.fn = fn
        self.name = name
        self.kind = kind
        self.drain = fn in _AGGREGATES  # a generator argument is drained, its ops together

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.drain:  # a generator's ops are recorded together, its answers kept pending
            args = tuple([list(a) if type(a) is types.GeneratorType else a for a in args])
        for a in args:
            if id(type(a)) not in ATOMIC_IDS:
                break
        else:
            for v in kwargs.values():
                if id(type(v)) not in ATOMIC_IDS:
                    break
            else:  # plain values: the usual case
                return self.fn(*args, **kwargs)
        pending = first_pending((*args, *kwargs.values()))
        if (
            pending is not None
            and recordable(args)
            and recordable(kwargs.values())
            and runs_no_code_of_yours((*args, *kwargs.values()))
        ):
            owner = pending._self_owner
            return owner.record_glue(
                self.name, self.fn, args, kwargs, pending._self_node, "new", kind=self.kind
            )
        drain = self.drain
        if drain and tracer.effects:  # as for any library call that takes values
            from ember.xcs._internal.dispatch.effects import flush_effects  # imports this

            flush_effects()
        args = tuple([concrete_argument(a, drain) for a in args])
        return self.fn(*args, **{k: concrete_argument(v, drain) for k, v in kwargs.items()})

    def __repr__(self) -> str:
        return f"<pure {self.name}>"


def pure_method(f: Any) -> PureCall | None:
    """A pure bound method of a library object (``"lit".replace``, ``pattern.search``)."""
    receiver = type(f.__self__)
    if receiver not in _PURE_RECEIVERS:
        return None
    entry = PURE.get(getattr(receiver, f.__name__, None))
    return None if entry is None else PureCall(f, *entry)


def length(x: Any, /) -> Any:
    """``len(x)``: glue on a pending value; a container holding pending values answers now."""
    if type(x) is Deferred:
        owner = x._self_owner
        if not owner.is_known(x._self_node) and runs_no_code_of_yours((x,)):
            return owner.record_glue("len()", len, (x,), {}, x._self_node, "new", kind=int)
        return len(value_of(x))
    return len(x)


def contains(member: Any, container: Any, negated: bool = False) -> Any:
    """``member in container`` (``not in`` when ``negated``); glue if a side is pending."""
    pending = first_pending((container, member))
    if (
        pending is not None
        and _recordable(member)
        and _recordable(container)
        and runs_no_code_of_yours((member, container))
    ):
        fn = _not_contains if negated else operator.contains
        name = "not in" if negated else "in"
        owner = pending._self_owner
        return owner.record_glue(
            name, fn, (container, member), {}, pending._self_node, "new", kind=bool
        )
    found = key(member) in value(container)
    return not found if negated else found


def _not_contains(container: Any, member: Any) -> bool:
    return member not in container


def recordable(values: Iterable[Any]) -> bool:
    """Whether glue can take every one of ``values`` (see :func:`_recordable`)."""
    return all(_recordable(v) for v in values)


def _recordable(x: Any, depth: int = 0) -> bool:
    """Whether glue can take ``x``: it cannot change, or is copied or lent safely."""
    cls = type(x)
    if cls is Deferred:  # pending: glue orders later changes; known: its value decides
        return not x._self_owner.is_known(x._self_node) or _recordable(x.__wrapped__, depth)
    if id(cls) in ATOMIC_IDS or cls in LENDABLE:
        return True
    if depth > 2:
        return False
    if cls is list or cls is tuple:
        return len(x) <= SMALL and all(_recordable(m, depth + 1) for m in x)
    if cls is dict:
        return len(x) <= SMALL and all(
            id(type(k)) in ATOMIC_IDS and _recordable(v, depth + 1) for k, v in x.items()
        )
    if cls is set or cls is frozenset:  # members are hashable: plain values here
        return len(x) <= SMALL and all(id(type(m)) in ATOMIC_IDS for m in x)
    return cls is slice
