"""Formatting pending values is recorded as glue, so prompts built from answers stay lazy.

f-strings, ``%``, ``str.join`` and ``str.format`` with a pending value among their
parts record a glue node that renders when the values are known; with none, they
render at once. Objects that format themselves in Python get their answers first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ember.xcs._internal.concrete import ATOMIC_IDS, fill_attributes
from ember.xcs._internal.deferred import Deferred, value_of
from ember.xcs._internal.dispatch.expressions import FORMATTED_IN_PYTHON, value

__all__ = ["first_pending", "format_glue", "fstring", "join_glue", "mod", "settled"]


def first_pending(values: Any) -> Deferred | None:
    """A pending deferred among ``values`` (one container level deep), if any."""
    for v in values:
        if type(v) is Deferred:
            if not v._self_owner.is_known(v._self_node):
                return v
        elif type(v) in (tuple, list):
            found = first_pending(v)
            if found is not None:
                return found
        elif type(v) is dict:
            found = first_pending(v.values())
            if found is not None:
                return found
    return None


def settled(x: Any) -> Any:
    """A value to format, as it is: objects that format themselves in Python get answers.

    Formatting calls an object's ``__str__``/``__repr__``/``__format__``, which may
    return an attribute an op has not filled yet, and the interpreter rejects the
    stand-in. Such objects -- the value itself, or members of a list, tuple or dict
    it is -- get their own attributes' answers first. Nothing else is touched, so
    formatting pending values stays lazy.
    """
    cls = type(x)
    if cls is Deferred or id(cls) in ATOMIC_IDS:
        return x
    members = x.values() if cls is dict else x if cls is list or cls is tuple else (x,)
    for member in members:
        kind = type(member)
        if kind is not Deferred and id(kind) not in ATOMIC_IDS and FORMATTED_IN_PYTHON[kind]:
            fill_attributes(member, value_of)
    return x


def _glue(name: str, fn: Callable[..., Any], args: tuple[Any, ...], pending: Deferred) -> Any:
    owner = pending._self_owner
    return owner.record_glue(name, fn, args, {}, pending._self_node, "new")


def mod(left: Any, right: Any) -> Any:
    """``left % right``; formatting a str with pending values is recorded as glue."""
    if type(left) is str:
        right = settled(right)
        pending = first_pending((right,))
        if pending is not None:
            return _glue("%", _percent, (left, right), pending)
        return left % _shallow(right)
    return left % right


def _percent(left: str, right: Any) -> str:
    return str(left % right)


def _shallow(x: Any) -> Any:
    """A deferred value, or the deferred items of a tuple or dict, as values."""
    if type(x) is Deferred:
        return value_of(x)
    if type(x) is tuple and any(type(v) is Deferred for v in x):
        return tuple(value(v) for v in x)
    if type(x) is dict and any(type(v) is Deferred for v in x.values()):
        return {k: value(v) for k, v in x.items()}
    return x


_CONVERSIONS: dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}


def _render(parts: tuple[tuple[Any, ...], ...]) -> str:
    out = []
    for part in parts:
        if len(part) == 1:
            out.append(part[0])
            continue
        item, conversion, spec = value(part[0]), part[1], part[2]
        if conversion != -1:
            item = _CONVERSIONS[conversion](item)
        out.append(format(item, value(spec) or ""))
    return "".join(out)


def fstring(*parts: tuple[Any, ...]) -> Any:
    """An f-string; with pending values inside it is recorded as glue (stays lazy)."""
    parts = tuple((settled(p[0]), *p[1:]) if len(p) == 3 else p for p in parts)
    pending = first_pending(part[0] for part in parts if len(part) == 3)
    if pending is not None:
        return _glue("f-string", _render_parts, parts, pending)
    return _render(parts)


def _render_parts(*parts: tuple[Any, ...]) -> str:
    return _render(parts)


def join_glue(separator: str, items: Any) -> Any:
    """``separator.join(items)``, recorded as glue while an item is pending."""
    items = items if type(items) is list else list(items)
    pending = first_pending(items)
    if pending is not None:
        return _glue(".join()", _join_values, (separator, items), pending)
    return separator.join([value(i) for i in items])


def _join_values(separator: str, items: list[Any]) -> str:
    return separator.join(items)


def format_glue(template: str, *args: Any, **kwargs: Any) -> Any:
    """``template.format(...)``, recorded as glue while an argument is pending."""
    args = tuple(settled(a) for a in args)
    kwargs = {k: settled(v) for k, v in kwargs.items()}
    pending = first_pending((*args, *kwargs.values()))
    if pending is not None:
        return _glue_call(".format()", template.format, args, kwargs, pending)
    return template.format(*[value(a) for a in args], **{k: value(v) for k, v in kwargs.items()})


def _glue_call(
    name: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    pending: Deferred,
) -> Any:
    owner = pending._self_owner
    return owner.record_glue(name, fn, args, kwargs, pending._self_node, "new")
