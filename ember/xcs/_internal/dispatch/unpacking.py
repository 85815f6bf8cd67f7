"""Unpacking a pending value into targets: ``answer, confidence = ask_pair(q)``.

Python unpacks by iterating, which a pending value can only do once it is known. The
rewrite routes the value of an unpacking assignment (``a, b = x``), and the items of
a ``for`` loop or comprehension with such a target, through :func:`unpack` with the
target's *shape*: a tuple with ``None`` for each plain target and a nested shape
for each nested one (``(a, b), c`` is ``((None, None), None)``). A pending value
records one glue node that does the real unpacking -- a function compiled for the
shape, so the ``ValueError`` of a wrong length is Python's own, word for word, on
every version -- and one item glue per target; the targets get those items. Any
other value is returned as it is, and Python unpacks it as always. Starred targets
(``first, *rest = x``) are not rewritten: they wait for the value.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.rewrite.source import AST_LOCK

__all__ = ["Shape", "unpack", "unpack_each"]

Shape = tuple[Any, ...]
"""One entry per target: ``None`` for a plain target, a shape for a nested one."""

_unpackers: dict[Shape, Callable[[Any], tuple[Any, ...]]] = {}


def unpack(value: Any, shape: Shape) -> Any:
    """``value``, ready to be unpacked into targets of ``shape`` without waiting.

    A pending value becomes a tuple (nested as the shape) of pending items; a tuple
    or list holding pending values for nested targets gets the same for them. The
    unpacking glue raises, when it runs, what Python raises here (a wrong length,
    a value that is not iterable).
    """
    if type(value) is Deferred:
        owner = value._self_owner
        if owner.is_known(value._self_node) or not owner.may_wait(value._self_node, "__iter__"):
            return value  # known, or iterated by your __iter__: Python unpacks it now
        whole = owner.record_glue(
            "unpack", _unpacker(shape), (value,), {}, value._self_node, "part"
        )
        return _items(whole, shape)
    cls = type(value)
    if (cls is tuple or cls is list) and len(value) == len(shape) and any(shape):
        return tuple([v if s is None else unpack(v, s) for v, s in zip(value, shape, strict=True)])
    return value


def unpack_each(iterable: Iterable[Any], shape: Shape) -> Iterable[Any]:
    """The items of a loop or comprehension whose target unpacks, through :func:`unpack`.

    Each item is taken as the loop asks for it: nothing is read ahead.
    """
    if type(iterable) is Deferred:
        return iterable  # iterating it waits for it; its items are values then
    return _each(iterable, shape)


def _each(iterable: Iterable[Any], shape: Shape) -> Iterator[Any]:
    for item in iterable:
        yield unpack(item, shape)


def _items(whole: Deferred, shape: Shape) -> tuple[Any, ...]:
    owner, node = whole._self_owner, whole._self_node
    items = []
    for index, sub in enumerate(shape):
        item = owner.record_glue("[]", operator.getitem, (whole, index), {}, node, "part")
        items.append(item if sub is None else _items(item, sub))
    return tuple(items)


def _unpacker(shape: Shape) -> Callable[[Any], tuple[Any, ...]]:
    """A function that unpacks its argument into ``shape`` as Python does, compiled once."""
    fn = _unpackers.get(shape)
    if fn is None:
        names = (f"v{i}" for i in itertools.count())

        def target(s: Shape) -> str:
            return "(" + "".join(f"{next(names) if t is None else target(t)}, " for t in s) + ")"

        spelled = target(shape)  # a target, and the same tuple as an expression
        namespace: dict[str, Any] = {}
        source = f"def unpack(value):\n    {spelled} = value\n    return {spelled}\n"
        with AST_LOCK:  # see there: compiling is not thread-safe on older Pythons
            code = compile(source, "<xcs unpack>", "exec")
        exec(code, namespace)
        fn = _unpackers[shape] = namespace["unpack"]
    return fn
