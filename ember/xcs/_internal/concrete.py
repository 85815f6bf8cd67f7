"""Making values concrete: deferred values inside user objects replaced by their values.

Three tools, all acting on values the user's code holds:

* :func:`concretize` replaces every deferred value inside a value -- a traced call's
  result, something it stored, the arguments library code is about to get -- by its
  value. Mutable containers are patched in place (aliases see the values), tuples and
  frozensets rebuilt, attributes of objects set, closure cells of returned functions
  filled. Dict keys and set members are rebuilt in order with the container's own
  ``__setitem__``/``add``, never with ``update``: ``Counter.update`` would count the
  pairs.
* :func:`fill_attributes` fills only an object's own attributes: cheap enough before
  each truth test or hash of an object whose dunders are Python code.
* :func:`map_items` hands out a generator's items through a function, delegating
  ``send``/``throw``/``close`` exactly as ``yield from`` does.

It also owns :func:`attributes`, how an object's own attributes are read (and
re-exports :data:`~ember.xcs._internal.deferred.ATOMIC`). It knows nothing about
graphs, threads or templates.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import gc
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any

from ember.xcs._internal.deferred import ATOMIC, ATOMIC_IDS, Deferred, value_of
from ember.xcs._internal.usercode import is_user_class

__all__ = [
    "ATOMIC",
    "ATOMIC_IDS",
    "OBJECT_DEPTH",
    "OPAQUE",
    "Concretizer",
    "attributes",
    "concrete_argument",
    "concrete_item",
    "concretize",
    "fill_attributes",
    "instance_dict",
    "isinstance_safe",
    "map_items",
]

# Objects whose attributes are never looked into for deferred values.
OPAQUE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.FrameType,
)

OBJECT_DEPTH = 3
"""How many objects deep :func:`concretize` patches attributes (containers don't count)."""

_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_PLAIN = frozenset({list, dict, set, collections.deque, collections.OrderedDict})
_ITERATORS = frozenset({"builtins", "itertools"})  # iterators over what they hold


def isinstance_safe(x: Any, classes: Any) -> bool:
    """``isinstance`` that is False where the check itself fails.

    Checks against abstract classes cache by type; a type whose metaclass refuses
    hashing makes them raise.
    """
    try:
        return isinstance(x, classes)
    except TypeError:
        return False


def attributes(x: Any) -> list[tuple[str, Any]]:
    """Instance attributes of ``x`` (``__dict__`` and ``__slots__``) as pairs.

    Read without running the object's own code (a ``__getattribute__`` of its class).
    """
    pairs: list[tuple[str, Any]] = []
    namespace = instance_dict(x)
    if namespace is not None:
        pairs.extend(namespace.items())
    for cls in type(x).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name in ("__dict__", "__weakref__"):
                continue
            try:
                pairs.append((name, object.__getattribute__(x, name)))
            except AttributeError:
                continue
    return pairs


def instance_dict(x: Any) -> dict[str, Any] | None:
    """``x.__dict__`` (None without one), read without running the object's own code."""
    try:
        namespace = object.__getattribute__(x, "__dict__")
    except (AttributeError, TypeError):
        return None
    return namespace if type(namespace) is dict else None


def _set_attribute(x: Any, name: str, value: Any) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # a read-only attribute
        if isinstance(x, type):
            setattr(x, name, value)
        else:
            object.__setattr__(x, name, value)


def concretize(value: Any, demand: Callable[[Deferred], Any]) -> Any:
    """Replace every deferred value inside ``value`` by its concrete value.

    Built-in containers (subclasses too) are patched in place, through the built-in
    type's own methods, so aliases see the values and no subclass code runs; tuples,
    frozensets and named tuples are rebuilt. Any other object -- a dataclass, an object
    of your class, a mapping or sequence class keeping its data in attributes -- has
    its attributes (``__dict__`` and ``__slots__``) patched, up to :data:`OBJECT_DEPTH`
    objects deep, so a result object holding a list of answers comes back concrete
    without walking whole object graphs and without calling its methods. So are
    exceptions' ``args``, causes and contexts; functions' closure cells, defaults and
    attributes (and bound methods' objects); ``functools.partial`` arguments; and the
    attributes of classes.

    Args:
        value: A traced function's result, or anything it stored.
        demand: Returns the value of a deferred (raising its error if it failed);
            returning the deferred itself leaves it in place.

    Returns:
        ``value`` (or its rebuilt copy) with no deferred value left inside.
    """
    return Concretizer(demand)(value)


class Concretizer:
    """Makes values concrete; one instance shares its work across several values.

    An object reached from two of them (a tuple stored in two lists) is made concrete
    once: a rebuilt tuple is the same new tuple in both places.
    """

    __slots__ = ("demand", "seen")

    def __init__(self, demand: Callable[[Deferred], Any]) -> None:
        self.demand = demand
        self.seen: dict[int, tuple[Any, Any]] = {}  # id -> (original, result), as in copies

    def __call__(self, value: Any) -> Any:
        """``value`` with no deferred value left inside (see :func:`concretize`)."""
        return self.walk(value, 0)

    def walk(self, x: Any, depth: int) -> Any:
        t = type(x)
        if t is Deferred:
            value = self.demand(x)
            return x if value is x else self.walk(value, depth)
        if id(t) in ATOMIC_IDS:
            return x
        key = id(x)
        done = self.seen.get(key)
        if done is not None and done[0] is x:
            return done[1]
        self.seen[key] = (x, x)
        out = self._patch(x, depth)
        self.seen[key] = (x, out)
        return out

    def _patch(self, x: Any, depth: int) -> Any:
        if isinstance(x, list):
            for i, v in enumerate(list(list.__iter__(x))):
                new = self.walk(v, depth)
                if new is not v:
                    list.__setitem__(x, i, new)
        elif isinstance(x, dict):
            self._patch_dict(x, depth)
        elif isinstance(x, set):
            members = list(set.__iter__(x))
            new_members = [self.walk(v, depth) for v in members]
            if any(a is not b for a, b in zip(new_members, members, strict=True)):
                set.clear(x)
                for member in new_members:
                    set.add(x, member)
        elif isinstance(x, collections.deque):
            for i, v in enumerate(list(collections.deque.__iter__(x))):
                new = self.walk(v, depth)
                if new is not v:
                    collections.deque.__setitem__(x, i, new)
        elif isinstance(x, (tuple, frozenset)):
            return self._rebuilt(x, depth)
        else:
            return self._patch_other(x, depth)
        if type(x) in _PLAIN:
            return x
        return self._patch_attributes(x, depth)  # a subclass may have attributes too

    def _patch_other(self, x: Any, depth: int) -> Any:
        t = type(x)
        if t is slice:
            parts = (self.walk(x.start, depth), self.walk(x.stop, depth), self.walk(x.step, depth))
            if parts[0] is x.start and parts[1] is x.stop and parts[2] is x.step:
                return x
            return slice(*parts)
        if t in _DICT_VIEWS or (t.__module__ in _ITERATORS and isinstance_safe(x, Iterator)):
            # A dict view holds its dict; zip, enumerate, reversed, iter() hold the
            # iterators and containers they read: those are patched in place.
            for inner in gc.get_referents(x):
                self.walk(inner, depth)
            return x
        if t is types.FunctionType:
            self._patch_function(x, depth)
            return x
        if t is types.MethodType or t is types.BuiltinMethodType:
            self.walk(x.__self__, depth + 1)  # a bound method returned: its object
            if t is types.MethodType:
                self.walk(x.__func__, depth)
            return x
        if t is functools.partial:
            return self._patch_partial(x, depth)
        if isinstance(x, type):
            if is_user_class(x):
                self._patch_class(x, depth)
            return x
        if isinstance(x, OPAQUE):
            return x
        if isinstance(x, BaseException):
            self._patch_exception(x, depth)
        return self._patch_attributes(x, depth)

    def _patch_attributes(self, x: Any, depth: int) -> Any:
        """Patch an object through its attributes, never its methods.

        Your objects, and mapping or sequence classes keeping their data in attributes.
        """
        if dataclasses.is_dataclass(x):
            next_depth = depth  # dataclasses are structure, like containers
        elif depth < OBJECT_DEPTH:
            next_depth = depth + 1
        else:
            return x
        cls = type(x)
        if "<locals>" in cls.__qualname__ and is_user_class(cls):
            self.walk(
                cls, next_depth
            )  # made by the traced code: its methods may close over answers
        for name, v in attributes(x):
            new = self.walk(v, next_depth)
            if new is not v:
                _set_attribute(x, name, new)
        return x

    def _patch_dict(self, x: dict[Any, Any], depth: int) -> None:
        base: Any = collections.OrderedDict if isinstance(x, collections.OrderedDict) else dict
        pairs = list(base.items(x))
        new_pairs = [(self.walk(k, depth), self.walk(v, depth)) for k, v in pairs]
        if any(new[0] is not old[0] for new, old in zip(new_pairs, pairs, strict=True)):
            # A key changes: rebuild in order, by item assignment (``update`` would
            # count the pairs of a Counter).
            base.clear(x)
            for k, v in new_pairs:
                base.__setitem__(x, k, v)
            return
        for (k, v), (_, new) in zip(pairs, new_pairs, strict=True):
            if new is not v:
                base.__setitem__(x, k, new)

    def _rebuilt(self, x: tuple[Any, ...] | frozenset[Any], depth: int) -> Any:
        members = list(tuple.__iter__(x) if isinstance(x, tuple) else frozenset.__iter__(x))
        new_members = [self.walk(v, depth) for v in members]
        if all(a is b for a, b in zip(new_members, members, strict=True)):
            return x
        if isinstance(x, tuple) and hasattr(type(x), "_fields"):
            return type(x)._make(new_members)  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # a subclass with another constructor
            return type(x)(new_members)
        return x

    def _patch_function(self, fn: types.FunctionType, depth: int) -> None:
        """A function returned or stored: closure cells, defaults and attributes get values."""
        for cell in fn.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            new = self.walk(content, depth + 1)
            if new is not content:
                cell.cell_contents = new
        if fn.__defaults__:
            defaults = self.walk(fn.__defaults__, depth)
            if defaults is not fn.__defaults__:
                fn.__defaults__ = defaults
        if fn.__kwdefaults__:
            self.walk(fn.__kwdefaults__, depth)
        if fn.__dict__:
            self.walk(fn.__dict__, depth + 1)

    def _patch_class(self, cls: type, depth: int) -> None:
        """A class the traced code made or stored into: its attributes, its methods."""
        if depth >= OBJECT_DEPTH or not isinstance(getattr(cls, "__dict__", None), Mapping):
            return
        for name, v in list(vars(cls).items()):
            if name.startswith("__") and name.endswith("__"):
                continue
            raw = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
            new = self.walk(raw, depth + 1)
            if new is not raw:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(cls, name, new)

    def _patch_partial(self, p: functools.partial[Any], depth: int) -> Any:
        args = self.walk(p.args, depth)
        keywords = {k: self.walk(v, depth) for k, v in p.keywords.items()}
        self.walk(p.func, depth)
        changed = args is not p.args or any(keywords[k] is not v for k, v in p.keywords.items())
        if changed:
            p.__setstate__((p.func, args, keywords, vars(p) or None))  # type: ignore[attr-defined]
        return p

    def _patch_exception(self, error: BaseException, depth: int) -> None:
        """An exception's ``args`` (not an attribute) and the exceptions chained to it."""
        args = self.walk(error.args, depth)
        if args is not error.args:
            error.args = args
        for chained in (error.__cause__, error.__context__):
            if chained is not None:
                self.walk(chained, depth + 1)


def concrete_item(item: Any) -> Any:
    """``item`` made concrete (for :func:`map_items`: items handed to library code)."""
    return concretize(item, value_of)


def concrete_argument(x: Any, drain: bool = False) -> Any:
    """An argument of library code, concrete: as the dispatcher hands it over.

    A generator is drained first when ``drain`` (consumers that always exhaust it:
    its ops are recorded, then run together), and otherwise becomes a generator of
    concrete items taken one by one (``any`` and ``next`` still stop early).
    """
    if id(type(x)) in ATOMIC_IDS:
        return x
    if type(x) is types.GeneratorType:  # a pending value's own type is not asked
        if drain:
            return concretize(list(x), value_of)
        return map_items(x, concrete_item)
    return concretize(x, value_of)


def fill_attributes(x: Any, demand: Callable[[Deferred], Any]) -> Any:
    """Replace, in place, the attributes of ``x`` that are deferred values by their values.

    One level only -- the object's own attributes, not what they hold -- so it costs
    little enough to run before each truth test or hash of an object whose class
    implements ``__bool__``, ``__hash__`` or ``__str__`` in Python (those read the
    object's own fields, and the interpreter rejects a stand-in they return).

    Returns:
        ``x`` itself.
    """
    for name, v in attributes(x):
        if type(v) is Deferred:
            _set_attribute(x, name, demand(v))
    return x


def map_items(
    source: Iterable[Any], fn: Callable[[Any], Any], *, owned: bool = False
) -> Generator[Any, Any, Any]:
    """A generator of ``fn(item)`` for the items of ``source``, delegating like ``yield from``.

    ``send`` and ``throw`` reach ``source`` as they would through ``yield from source``
    (PEP 380), and its return value is this generator's. When ``fn`` raises, ``source``
    is closed first (plain Python's generator would have raised inside) and the
    exception propagates.

    Args:
        source: What to take items from.
        fn: Applied to each item as it is taken.
        owned: Closing this generator closes ``source`` too (``yield from`` semantics).
            Otherwise ``source`` belongs to the caller: a consumer that stops early
            (``next``, ``islice``) and drops this generator leaves the rest of
            ``source`` to the caller, as in plain Python.
    """
    iterator = iter(source)
    try:
        item = next(iterator)
    except StopIteration as stop:
        return stop.value
    while True:
        try:
            mapped = fn(item)
        except BaseException:
            _close(iterator)
            raise
        try:
            sent = yield mapped
        except GeneratorExit:
            if owned:
                _close(iterator)
            raise
        except BaseException as error:
            throw = getattr(iterator, "throw", None)
            if throw is None:
                raise
            try:
                item = throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                item = next(iterator) if sent is None else iterator.send(sent)  # type: ignore[attr-defined]
            except StopIteration as stop:
                return stop.value


def _close(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
