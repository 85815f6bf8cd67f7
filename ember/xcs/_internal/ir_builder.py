"""Arguments in, edges out; templates back to values; results made concrete.

Three walks over user values, all sharing one notion of *structure*: lists, tuples
(named tuples included), dicts, sets, frozensets, their subclasses and dataclass
instances are looked into; iterators and generators are drained; anything else is a
leaf passed by reference.

* :func:`snapshot` copies the arguments of a call at record time, level by level, so
  ``r = ask_batch(batch); batch.clear()`` behaves as in plain Python. Pending
  deferred values of the recording trace become :class:`~.ir.Ref` markers (and
  dependencies); values already known are taken as values. Iterators are drained
  into :class:`~.ir.Drained` (the op gets an iterator over the items). A leaf object
  whose attributes hold deferred values (or a list, tuple or dict in an attribute
  does) becomes a :class:`~.ir.Holding`: those values are dependencies too.
* :func:`resolve` turns a template back into concrete arguments once the values of
  its references are known (a held object's deferred attributes are set in place).
* :func:`concretize` replaces deferred values inside a result by their values:
  mutable containers are patched in place, tuples and frozensets rebuilt.

This module knows nothing about graphs or threads.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import gc
import io
import types
from collections import abc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ember.xcs._internal.deferred import Deferred, Owner
from ember.xcs._internal.ir import Drained, Holding, Ref

__all__ = [
    "ATOMIC",
    "ATOMIC_IDS",
    "Snapshot",
    "concretize",
    "copy_structure",
    "fill_attributes",
    "resolve",
    "shares_objects",
    "snapshot",
]

# Leaf types that need no copy and contain nothing (checked by exact type). Looked up
# by id: hashing a user's type could run its metaclass's __hash__ (or fail).
ATOMIC: frozenset[type] = frozenset(
    {str, int, float, bool, type(None), bytes, complex, range, type(Ellipsis)}
)
ATOMIC_IDS: frozenset[int] = frozenset(id(t) for t in ATOMIC)


class Snapshot:
    """What :func:`snapshot` found while copying one call's arguments.

    Attributes:
        deps: Ids of nodes whose values the arguments use (pending or known), in
            the order met, without repeats.
        markers: Whether the templates hold markers (refs to nodes not yet
            finished, drained iterators) that :func:`resolve` must replace.
        inputs: Input node ids of the objects found at the top level of an
            argument or one container level down.
    """

    __slots__ = ("deps", "inputs", "markers")

    def __init__(self) -> None:
        self.deps: list[int] = []
        self.markers = False
        self.inputs: list[int] = []


def snapshot(
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    owner: Owner,
    input_ids: Mapping[int, int],
) -> tuple[tuple[Any, ...], dict[str, Any], Snapshot]:
    """Copy a call's arguments into templates, recording what they depend on.

    Args:
        args: Positional arguments as the user passed them.
        kwargs: Keyword arguments as the user passed them.
        owner: The recording trace; only its pending deferred values become refs.
        input_ids: ``id(obj) -> input node`` for the arguments of the traced call.

    Returns:
        The positional and keyword templates, and what was found.
    """
    found = Snapshot()
    if not kwargs and (
        id(type(args[0])) in ATOMIC_IDS
        if len(args) == 1
        else all(id(type(a)) in ATOMIC_IDS for a in args)
    ):  # the common fast path: plain values only
        if input_ids:
            for a in args:
                node = input_ids.get(id(a))
                if node is not None and node not in found.inputs:
                    found.inputs.append(node)
        return args, {}, found
    walker = _Snapshotter(owner, input_ids, found)
    args_t = tuple([walker.copy(a, 0) for a in args])
    kwargs_t = {k: walker.copy(v, 0) for k, v in kwargs.items()}
    return args_t, kwargs_t, found


class _Snapshotter:
    __slots__ = ("found", "input_ids", "memo", "owner")

    def __init__(self, owner: Owner, input_ids: Mapping[int, int], found: Snapshot) -> None:
        self.owner = owner
        self.input_ids = input_ids
        self.found = found
        # id(original) -> (original, copy); holding the original keeps its id from
        # being reused by a temporary (items a drained generator yields, say).
        self.memo: dict[int, tuple[Any, Any]] = {}

    def _dep(self, node: int) -> None:
        deps = self.found.deps
        if node not in deps:
            deps.append(node)

    def copy(self, x: Any, depth: int) -> Any:
        t = type(x)
        if t is Deferred:
            if x._self_owner is self.owner:
                node = x._self_node
                self._dep(node)
                if not self.owner.is_known(node):
                    self.found.markers = True
                    return Ref(node)
            # Known (or from another trace): use the value, copied like any other.
            return self.copy(x.__wrapped__, depth)
        if depth <= 1 and self.input_ids:
            node = self.input_ids.get(id(x))
            if node is not None and node not in self.found.inputs:
                self.found.inputs.append(node)
        if id(t) in ATOMIC_IDS:
            return x
        done = self.memo.get(id(x))
        if done is not None and done[0] is x:
            return done[1]
        copied = _rebuild(x, lambda item: self.copy(item, depth + 1), self.memo, drain=True)
        if type(copied) is Drained:
            self.found.markers = True
        elif copied is x:  # a leaf object, passed by reference
            hidden = self._hidden(x)
            if hidden:
                self.found.markers = True
                return Holding(x, hidden)
        return copied

    def _hidden(self, x: Any) -> list[Deferred]:
        """Deferred values of this trace in the attributes of ``x`` (or one container in)."""
        if isinstance(x, _OPAQUE):
            return []
        found: list[Deferred] = []
        for _, v in _attributes(x):
            t = type(v)
            if t is Deferred:
                found.append(v)
            elif t is list or t is tuple or t is dict:
                found.extend(i for i in (v.values() if t is dict else v) if type(i) is Deferred)
        found = [d for d in found if d._self_owner is self.owner]
        for d in found:
            self._dep(d._self_node)
        return found


def _isinstance(x: Any, classes: Any) -> bool:
    """``isinstance`` that is False where the check itself fails.

    Checks against abstract classes cache by type; a type whose metaclass refuses
    hashing makes them raise.
    """
    try:
        return isinstance(x, classes)
    except TypeError:
        return False


# Objects whose attributes are never looked into for hidden deferred values.
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)

_KEYS: type = type({}.keys())
_VALUES: type = type({}.values())
_ITEMS: type = type({}.items())


def _rebuild(
    x: Any, each: Callable[[Any], Any], memo: dict[int, tuple[Any, Any]] | None, *, drain: bool
) -> Any:
    """Copy the structure of ``x`` one level, mapping ``each`` over its members.

    Structure: lists, dicts, tuples (named ones too), sets, frozensets, their
    subclasses, deques and other mutable sequences, mappings and sets, dict views,
    slices, bytearrays and dataclass instances; with ``drain``, iterators too (not
    files). Returns ``x`` itself for anything else (a leaf, passed by reference).
    """
    t = type(x)
    if t is list:
        out: Any = []
        if memo is not None:
            memo[id(x)] = (x, out)
        out.extend([each(v) for v in x])
        return out
    if t is dict:
        out = {}
        if memo is not None:
            memo[id(x)] = (x, out)
        for k, v in x.items():
            out[each(k)] = each(v)
        return out
    if t is tuple:
        return tuple([each(v) for v in x])
    if t is set or t is frozenset:
        return t([each(v) for v in x])
    if t is slice:  # ``d[n:]`` with a pending ``n``
        return slice(each(x.start), each(x.stop), each(x.step))
    if t is bytearray:
        return bytearray(x)
    if t is _KEYS:
        return dict.fromkeys([each(k) for k in x]).keys()
    if t is _VALUES:
        return dict(enumerate([each(v) for v in x])).values()
    if t is _ITEMS:
        return dict([(each(k), each(v)) for k, v in x]).items()
    if t is collections.deque:
        return collections.deque([each(v) for v in x], x.maxlen)
    if isinstance(x, tuple):
        if hasattr(t, "_fields"):  # named tuple
            return t._make([each(v) for v in x])
        return x  # another tuple subclass: how to rebuild it is unknown
    if _isinstance(x, (list, abc.MutableSequence)):
        return _refill(x, memo, lambda out: out.extend([each(v) for v in x]))
    if _isinstance(x, (dict, abc.MutableMapping)):
        return _refill(x, memo, lambda out: out.update([(each(k), each(v)) for k, v in x.items()]))
    if _isinstance(x, (set, abc.MutableSet)):
        return _refill(x, memo, lambda out: [out.add(each(v)) for v in x])
    if isinstance(x, frozenset):
        return t(each(v) for v in x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _rebuild_dataclass(x, each, memo)
    if drain and _isinstance(x, Iterator) and not isinstance(x, io.IOBase):
        return Drained([each(v) for v in x])
    return x


def _refill(x: Any, memo: dict[int, tuple[Any, Any]] | None, fill: Callable[[Any], object]) -> Any:
    """A shallow copy of the mutable container ``x``, emptied and filled anew."""
    try:
        out = copy.copy(x)
        out.clear()
    except Exception:  # a container that cannot be copied is passed by reference
        return x
    if memo is not None:
        memo[id(x)] = (x, out)
    fill(out)
    return out


def _rebuild_dataclass(
    x: Any, each: Callable[[Any], Any], memo: dict[int, tuple[Any, Any]] | None
) -> Any:
    try:
        out = copy.copy(x)
    except Exception:  # an uncopyable dataclass is passed by reference, like any object
        return x
    if memo is not None:
        memo[id(x)] = (x, out)
    for field in dataclasses.fields(x):
        try:
            value = getattr(x, field.name)
        except AttributeError:  # field(init=False) never set
            continue
        object.__setattr__(out, field.name, each(value))
    return out


def resolve(template: Any, values: Mapping[int, Any], *, copy_refs: bool = False) -> Any:
    """Build the concrete value of a template whose references are all known.

    Args:
        template: A template made by :func:`snapshot`.
        values: Values of finished nodes by id.
        copy_refs: Copy the structure of referenced values (level by level), for a
            call that must not see later in-place changes of them.

    Returns:
        The template with every :class:`~.ir.Ref` replaced by its node's value, in
        fresh containers; drained iterators become iterators again.
    """
    t = type(template)
    if id(t) in ATOMIC_IDS:
        return template
    if t is Ref:
        value = values[template.node]
        return copy_structure(value) if copy_refs else value
    if t is Drained:
        return iter([resolve(v, values, copy_refs=copy_refs) for v in template.items])
    if t is Holding:
        return _fill(template, values)
    return _rebuild(
        template, lambda item: resolve(item, values, copy_refs=copy_refs), None, drain=False
    )


def _fill(holding: Holding, values: Mapping[int, Any]) -> Any:
    """Set the deferred values :func:`snapshot` found in an object to their values."""
    found = {id(d) for d in holding.deferreds}

    def real(v: Any) -> Any:
        return values[v._self_node] if type(v) is Deferred and id(v) in found else v

    obj = holding.obj
    for name, v in _attributes(obj):
        t = type(v)
        new = v
        if t is Deferred:
            new = real(v)
        elif t is list:
            for i, item in enumerate(v):
                if type(item) is Deferred:
                    v[i] = real(item)
        elif t is dict:
            for key, item in list(v.items()):
                if type(item) is Deferred:
                    v[key] = real(item)
        elif t is tuple and any(type(item) is Deferred for item in v):
            new = tuple([real(item) for item in v])
        if new is not v:
            with contextlib.suppress(AttributeError, TypeError):  # read-only attribute
                object.__setattr__(obj, name, new)
    return obj


def copy_structure(value: Any) -> Any:
    """Copy the containers of ``value`` level by level; leaves are shared."""
    if id(type(value)) in ATOMIC_IDS:
        return value
    return _rebuild(value, copy_structure, None, drain=False)


_PLAIN_CONTAINERS = (list, tuple, dict, set, frozenset)


def shares_objects(value: Any, _seen: set[int] | None = None) -> bool:
    """Whether :func:`copy_structure` of ``value`` would still share a mutable object.

    True when a leaf is anything but an immutable atom (a class instance, a
    dataclass, a bytearray): a change made to it in place would reach the copy too.
    """
    cls = type(value)
    if id(cls) in ATOMIC_IDS:
        return False
    if cls not in _PLAIN_CONTAINERS:
        return True
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return False
    seen.add(id(value))
    items = value.items() if cls is dict else value
    if cls is dict:
        return any(shares_objects(k, seen) or shares_objects(v, seen) for k, v in items)
    return any(shares_objects(item, seen) for item in items)


def concretize(value: Any, demand: Callable[[Deferred], Any]) -> Any:
    """Replace every deferred value inside ``value`` by its concrete value.

    Mutable containers (lists, dicts, sets, deques and other mutable sequences,
    mappings and sets) are patched in place, so aliases of them see the values;
    tuples, frozensets and named tuples are rebuilt; dataclass fields are set in
    place. The attributes (``__dict__`` and ``__slots__``) of other objects are
    patched too, up to :data:`OBJECT_DEPTH` objects deep, so a result object holding
    a list of answers comes back concrete without walking whole object graphs; so
    are the closure cells of functions that directly hold a deferred value.

    Args:
        value: A traced function's result, or anything it stored.
        demand: Returns the value of a deferred (raising its error if it failed).

    Returns:
        ``value`` (or its rebuilt copy) with no deferred value left inside.
    """
    return _Concretizer(demand).walk(value, 0)


OBJECT_DEPTH = 3

_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))


class _Concretizer:
    __slots__ = ("demand", "seen")

    def __init__(self, demand: Callable[[Deferred], Any]) -> None:
        self.demand = demand
        self.seen: dict[int, tuple[Any, Any]] = {}  # id -> (original, result), as in copies

    def walk(self, x: Any, depth: int) -> Any:
        t = type(x)
        if t is Deferred:
            return self.walk(self.demand(x), depth)
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
        def walk(item: Any) -> Any:
            return self.walk(item, depth)

        if _isinstance(x, (list, abc.MutableSequence)):
            for i, v in enumerate(list(x)):
                new = walk(v)
                if new is not v:
                    x[i] = new
            return x
        if _isinstance(x, (dict, abc.MutableMapping)):
            if any(type(k) is Deferred for k in x):
                items = [(walk(k), walk(v)) for k, v in x.items()]
                x.clear()
                x.update(items)
            else:
                for k, v in list(x.items()):
                    new = walk(v)
                    if new is not v:
                        x[k] = new
            return x
        if _isinstance(x, (set, abc.MutableSet)):
            members = list(x)
            new_members = [walk(v) for v in members]
            if any(a is not b for a, b in zip(new_members, members, strict=True)):
                x.clear()
                for member in new_members:
                    x.add(member)
            return x
        if isinstance(x, (tuple, frozenset)):
            members = list(x)
            new_members = [walk(v) for v in members]
            if all(a is b for a, b in zip(new_members, members, strict=True)):
                return x
            if isinstance(x, tuple) and hasattr(type(x), "_fields"):
                return type(x)._make(new_members)  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):  # a subclass with another constructor
                return type(x)(new_members)
            return x
        if type(x) is slice:
            parts = (walk(x.start), walk(x.stop), walk(x.step))
            if parts[0] is x.start and parts[1] is x.stop and parts[2] is x.step:
                return x
            return slice(*parts)
        if type(x) in _DICT_VIEWS:
            for mapping in gc.get_referents(x):  # a view holds its dict, and only that
                walk(mapping)
            return x
        if type(x) is types.FunctionType:
            self._patch_cells(x)
            return x
        if isinstance(x, (type, types.ModuleType, types.FunctionType, types.MethodType)):
            return x
        if dataclasses.is_dataclass(x):
            next_depth = depth  # dataclasses are structure, like containers
        elif depth < OBJECT_DEPTH:
            next_depth = depth + 1
        else:
            return x
        for name, v in _attributes(x):
            new = self.walk(v, next_depth)
            if new is not v:
                with contextlib.suppress(AttributeError, TypeError):  # read-only attribute
                    object.__setattr__(x, name, new)
        return x

    def _patch_cells(self, fn: types.FunctionType) -> None:
        """A closure returned or stored: its cells holding deferred values get the values."""
        for cell in fn.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if type(content) is Deferred:
                cell.cell_contents = self.walk(content, OBJECT_DEPTH)


def fill_attributes(x: Any, demand: Callable[[Deferred], Any]) -> Any:
    """Replace, in place, the attributes of ``x`` that are deferred values by their values.

    One level only -- the object's own attributes, not what they hold -- so it costs
    little enough to run before each truth test or hash of an object whose class
    implements ``__bool__``, ``__hash__`` or ``__str__`` in Python (those read the
    object's own fields, and the interpreter rejects a stand-in they return).

    Returns:
        ``x`` itself.
    """
    for name, v in _attributes(x):
        if type(v) is Deferred:
            with contextlib.suppress(AttributeError, TypeError):  # read-only attribute
                if isinstance(x, type):
                    setattr(x, name, demand(v))
                else:
                    object.__setattr__(x, name, demand(v))
    return x


def _attributes(x: Any) -> list[tuple[str, Any]]:
    """Instance attributes of ``x`` (``__dict__`` and ``__slots__``) as pairs."""
    pairs: list[tuple[str, Any]] = []
    with contextlib.suppress(TypeError):  # no __dict__
        pairs.extend(vars(x).items())
    for cls in type(x).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name in ("__dict__", "__weakref__"):
                continue
            try:
                pairs.append((name, object.__getattribute__(x, name)))
            except AttributeError:
                continue
    return pairs
