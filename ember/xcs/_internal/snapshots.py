"""Arguments in, templates and edges out; templates back to argument values.

When an op (or glue) call is recorded, :func:`snapshot` turns its arguments into
*templates*, so that nothing the caller does afterwards reaches the call, and nothing
is done to the caller's objects:

* **Copied**, level by level, each with its own type's copy semantics (a fresh
  object filled item by item -- never a copy cleared and refilled): the built-in
  containers ``list``, ``tuple``, ``dict``, ``set``, ``frozenset``, ``deque``,
  ``OrderedDict``, ``defaultdict``, ``Counter``, ``bytearray``, slices and dict
  views, named tuples and dataclass instances. So ``r = ask_batch(batch);
  batch.clear()`` behaves as in plain Python. Pending deferred values of the
  recording trace become :class:`~.ir.Ref` markers (and dependencies); values already
  known are taken as values.
* **By reference**, untouched: everything else -- subclasses of the containers,
  custom mappings and sequences (a chat history over ``self._store``,
  ``CaseInsensitiveDict``), ``os.environ``, readers, cursors, clients. Such an object
  is *lent* to the call (see the tracer: user code that changes it later waits for
  the call first). Deferred values inside it -- in its attributes, and in the
  containers, dataclasses and objects of user classes they hold, up to a budget --
  are dependencies too, and a :class:`~.ir.Holding` marker names where they sit.
* **Iterators** are never drained: the op consumes them as it runs, as in plain
  Python (partial consumption, infinite iterators). :attr:`Snapshot.iterators` tells
  the tracer to run such a call at once; generators and builtin iterators become
  :class:`~.ir.Stream` markers (concrete items as they are taken).

:func:`resolve` turns a template back into concrete arguments once its references
are known. This module knows nothing about graphs or threads.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import types
from collections import abc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ember.xcs._internal.concrete import (
    ATOMIC_IDS,
    OPAQUE,
    attributes,
    concrete_item,
    instance_dict,
    isinstance_safe,
    map_items,
)
from ember.xcs._internal.deferred import Deferred, Owner
from ember.xcs._internal.ir import Holding, Ref, Slot, Stream
from ember.xcs._internal.usercode import is_user_class

__all__ = ["Snapshot", "copy_structure", "resolve", "shares_objects", "snapshot"]


class Snapshot:
    """What :func:`snapshot` found while copying one call's arguments.

    Attributes:
        deps: Ids of nodes whose values the arguments use (pending or known), in
            the order met, without repeats.
        markers: Whether the templates hold markers (refs to nodes not yet
            finished, objects holding deferred values, streams) that
            :func:`resolve` must replace.
        inputs: Input node ids of the objects found at the top level of an
            argument or one container level down.
        lent: Objects passed by reference (and the containers and objects inside
            them that were looked into): the call reads them when it runs.
        iterators: Whether an argument is (or holds) an iterator, which the call
            must consume as it runs: it cannot wait.
        inner_iterators: Iterators found inside objects passed by reference (they
            stay where they are: what they read is made concrete before the call).
        held: Deps found inside objects passed by reference (the call reads their
            values in place, not copies).
        holdings: The markers of objects of your classes passed directly (a later
            change may hand the call a copy; see ``Recording.before_change``).
        exhausted: Objects passed by reference too big to look through within the
            budget: the call runs at once (their values are made concrete first).
    """

    __slots__ = (
        "deps",
        "exhausted",
        "held",
        "holdings",
        "inner_iterators",
        "inputs",
        "iterators",
        "lent",
        "markers",
    )

    def __init__(self) -> None:
        self.deps: list[int] = []
        self.markers = False
        self.inputs: list[int] = []
        self.lent: list[Any] = []
        self.iterators = False
        self.inner_iterators: list[Any] = []
        self.held: set[int] = set()
        self.holdings: list[Holding] = []
        self.exhausted: list[Any] = []


Scans = dict[int, tuple[Any, "Snapshot", list[Slot]]]
"""What looking through objects passed by reference found, by object id: valid until
anything pending runs (the recording clears it then), so an object handed to many
calls (a context, a client) is looked through once."""


def snapshot(
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    owner: Owner,
    input_ids: Mapping[int, int],
    scans: Scans | None = None,
) -> tuple[tuple[Any, ...], dict[str, Any], Snapshot]:
    """Copy a call's arguments into templates, recording what they depend on.

    Args:
        args: Positional arguments as the user passed them.
        kwargs: Keyword arguments as the user passed them.
        owner: The recording trace; only its deferred values become dependencies.
        input_ids: ``id(obj) -> input node`` for the arguments of the traced call.
        scans: Earlier scans of objects passed by reference, to reuse and extend.

    Returns:
        The positional and keyword templates, and what was found.
    """
    found = Snapshot()
    if (
        id(type(args[0])) in ATOMIC_IDS
        if len(args) == 1
        else all(id(type(a)) in ATOMIC_IDS for a in args)
    ) and (not kwargs or all(id(type(v)) in ATOMIC_IDS for v in kwargs.values())):
        # The common fast path: plain values only.
        if input_ids:
            for a in (*args, *kwargs.values()):
                node = input_ids.get(id(a))
                if node is not None and node not in found.inputs:
                    found.inputs.append(node)
        return args, dict(kwargs), found
    walker = _Snapshotter(owner, input_ids, found, {} if scans is None else scans)
    args_t = tuple([walker.copy(a, 0) for a in args])
    kwargs_t = {k: walker.copy(v, 0) for k, v in kwargs.items()}
    return args_t, kwargs_t, found


# Looking into objects passed by reference: at most this many members per object,
# this many levels down (the object's attributes are level 1).
SCAN_BUDGET = 100_000
SCAN_DEPTH = 12

# Iterators whose items xcs can make concrete as they are taken (generators are
# checked by type): the builtin iterators over containers, map/zip/filter, itertools.
_STREAM_MODULES = frozenset({"builtins", "itertools", "_collections"})


class _Snapshotter:
    __slots__ = ("found", "input_ids", "memo", "owner", "scans", "seen_deps", "seen_inputs")

    def __init__(
        self, owner: Owner, input_ids: Mapping[int, int], found: Snapshot, scans: Scans
    ) -> None:
        self.owner = owner
        self.input_ids = input_ids
        self.found = found
        self.scans = scans
        # id(original) -> (original, copy); holding the original keeps its id from
        # being reused by a temporary.
        self.memo: dict[int, tuple[Any, Any]] = {}
        # Membership in found.deps / found.inputs (lists: program order), in O(1).
        self.seen_deps: set[int] = set(found.deps)
        self.seen_inputs: set[int] = set(found.inputs)

    def _dep(self, node: int) -> None:
        if node not in self.seen_deps:
            self.seen_deps.add(node)
            self.found.deps.append(node)

    def _input(self, node: int) -> None:
        if node not in self.seen_inputs:
            self.seen_inputs.add(node)
            self.found.inputs.append(node)

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
            if node is not None:
                self._input(node)
        if id(t) in ATOMIC_IDS:
            return x
        done = self.memo.get(id(x))
        if done is not None and done[0] is x:
            return done[1]
        copied = copy_container(x, lambda item: self.copy(item, depth + 1), self.memo)
        if copied is not x or t is frozenset:  # a frozenset of plain values is kept
            return copied
        return self._by_reference(x)

    def _by_reference(self, x: Any) -> Any:
        """An object the call gets as it is: lent to it, with its deferred values found."""
        if isinstance(x, (type, types.ModuleType, types.CodeType)) or _plain_builtin(x):
            return x
        if isinstance_safe(x, abc.Iterator):
            self.found.iterators = True
            if isinstance(x, types.GeneratorType) or type(x).__module__ in _STREAM_MODULES:
                self.found.markers = True
                return Stream(x)
            return x
        slots = self._scan_once(x)
        if _copied_on_change(x):  # marked, so a later change can hand the call a copy
            holding = Holding(x, slots, self.owner)
            self.found.markers = True
            self.found.holdings.append(holding)
            return holding
        if slots:
            self.found.markers = True
            return Holding(x, slots, self.owner)
        return x

    def _scan_once(self, root: Any) -> list[Slot]:
        """:meth:`_scan`, or what an earlier scan of ``root`` found, merged into this call's."""
        cached = self.scans.get(id(root))
        if cached is None or cached[0] is not root:
            outer = self.found, self.seen_deps, self.seen_inputs
            self.found, self.seen_deps, self.seen_inputs = Snapshot(), set(), set()
            try:
                slots = self._scan(root)
                cached = self.scans[id(root)] = (root, self.found, slots)
            finally:
                self.found, self.seen_deps, self.seen_inputs = outer
        _, inner, slots = cached
        found = self.found
        for node in inner.deps:
            self._dep(node)
        found.held |= inner.held
        found.lent.extend(inner.lent)
        found.iterators = found.iterators or inner.iterators
        found.inner_iterators.extend(inner.inner_iterators)
        found.exhausted.extend(inner.exhausted)
        found.markers = found.markers or bool(slots)
        return slots

    def _scan(self, root: Any) -> list[Slot]:
        """Where this trace's deferred values sit inside ``root`` (within the budget).

        Looks into attributes, items of lists, tuples, deques and dicts (subclasses
        too, through their built-in storage), dataclasses, namespaces and objects of
        user classes -- a library object only when it is the root -- and into what a
        function's closure, a bound method's object or a partial's arguments hold,
        breadth first. Every mutable object met is lent to the call; an iterator met
        means the call consumes it (it runs at once), and so does running out of
        budget (what was not looked at may hold pending values). A deferred value
        inside a tuple is found through the place the outermost tuple sits.
        """
        owner, found = self.owner, self.found
        lent = found.lent
        lent.append(root)
        slots: list[Slot] = []
        marked: set[tuple[int, bool, Any]] = set()
        seen = {id(root)}
        budget = SCAN_BUDGET
        library_root = not _looked_into(root)  # its own attributes only, never deeper
        queue: collections.deque[tuple[Any, int, Slot | None]] = collections.deque(
            [(root, 0, None)]
        )
        while queue:
            holder, depth, in_tuple = queue.popleft()
            namespace = instance_dict(holder)
            if namespace is not None:
                lent.append(namespace)  # ``obj.__dict__[k] = v`` changes obj too
            for place, is_attribute, where, v in _members(holder):
                budget -= 1
                if budget < 0:
                    found.exhausted.append(root)  # too big to look through: at once
                    return slots
                t = type(v)
                if t is Deferred:
                    if v._self_owner is owner and place is not None:
                        slot = in_tuple or (place, is_attribute, where)
                        self._dep(v._self_node)
                        found.held.add(v._self_node)
                        mark = (id(slot[0]), slot[1], slot[2])
                        if mark not in marked:
                            marked.add(mark)
                            slots.append(slot)
                    continue
                if id(t) in ATOMIC_IDS or id(v) in seen or t in _IMMUTABLE_LEAVES:
                    continue
                seen.add(id(v))
                if not (library_root and depth == 0) and isinstance_safe(v, abc.Iterator):
                    found.iterators = True  # the call consumes it: it cannot wait
                    found.inner_iterators.append(v)
                if not isinstance(v, tuple):
                    lent.append(v)  # a change to it waits for the call
                if depth + 1 < SCAN_DEPTH and _looked_into(v):
                    inner = (
                        in_tuple or (place, is_attribute, where) if isinstance(v, tuple) else None
                    )
                    queue.append((v, depth + 1, inner))
        return slots


def _members(x: Any) -> Iterator[tuple[Any, bool, Any, Any]]:
    """``(holder, is an attribute, name or key, value)`` for what ``x`` holds.

    A holder of None marks a value that cannot be put back (a partial's argument).
    """
    # Plain values (most items of big containers) hold nothing: skipped at C speed.
    if isinstance(x, list):
        yield from ((x, False, i, v) for i, v in enumerate(list.__iter__(x)) if _holds(v))
    elif isinstance(x, tuple):
        yield from ((x, False, i, v) for i, v in enumerate(tuple.__iter__(x)) if _holds(v))
    elif isinstance(x, dict):
        yield from ((x, False, k, v) for k, v in dict.items(x) if _holds(v))
    elif isinstance(x, collections.deque):
        items = enumerate(collections.deque.__iter__(x))
        yield from ((x, False, i, v) for i, v in items if _holds(v))
    elif type(x) is types.FunctionType:  # a callable the op calls: what its closure holds
        for cell in x.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell
                yield (cell, True, "cell_contents", cell.cell_contents)
        return
    elif type(x) is types.MethodType:
        yield from ((None, True, "__self__", x.__self__), (None, True, "__func__", x.__func__))
        return
    elif type(x) is types.BuiltinMethodType:  # items.copy: the list it reads
        if not _plain_builtin(x):
            yield (None, True, "__self__", x.__self__)
        return
    elif type(x) is functools.partial:
        yield from ((None, False, None, v) for v in (*x.args, *x.keywords.values()))
        return
    if type(x) not in _PLAIN_CONTAINERS:
        yield from ((x, True, name, v) for name, v in attributes(x))


def _holds(v: Any) -> bool:
    """Whether ``v`` is anything but a plain value (a number, a string)."""
    return id(type(v)) not in ATOMIC_IDS


def _copied_on_change(x: Any) -> bool:
    """Whether a later change to ``x`` may give the calls reading it a copy instead.

    Objects of your classes (pydantic models and ``eq=False`` dataclasses included):
    a shallow copy keeps what they hold; not containers, whose items are their state.
    """
    cls = type(x)
    return (
        instance_dict(x) is not None
        and not isinstance(x, (list, dict, set, collections.deque, BaseException))
        and is_user_class(cls)
    )


def _plain_builtin(x: Any) -> bool:
    """A builtin function (``len``, ``time.time``): bound to nothing the op could read."""
    return type(x) is types.BuiltinFunctionType and (
        x.__self__ is None or isinstance(x.__self__, types.ModuleType)
    )


# Immutable objects that hold nothing to look into or lend.
_IMMUTABLE_LEAVES = frozenset({frozenset, types.ModuleType, types.CodeType, type})

# Library classes that are containers in all but name: looked into like yours.
_NAMESPACES = (types.SimpleNamespace, collections.UserDict, collections.UserList)


def _looked_into(v: Any) -> bool:
    """Whether the scan of an object passed by reference looks inside ``v``."""
    if isinstance(v, (list, tuple, dict, collections.deque, *_NAMESPACES)):
        return True
    if isinstance(v, (types.FunctionType, types.MethodType, functools.partial)):
        return True
    if type(v) is types.BuiltinMethodType:
        return not _plain_builtin(v)
    if isinstance(v, (*OPAQUE, type)) or isinstance_safe(v, abc.Iterator):
        return False
    return dataclasses.is_dataclass(v) or is_user_class(type(v))


_MAPPINGS: dict[type, Callable[[Any], Any]] = {
    dict: lambda x: {},
    collections.OrderedDict: lambda x: collections.OrderedDict(),
    collections.defaultdict: lambda x: collections.defaultdict(x.default_factory),
    collections.Counter: lambda x: collections.Counter(),
}
_KEYS: type = type({}.keys())
_VALUES: type = type({}.values())
_ITEMS: type = type({}.items())


def copy_container(
    x: Any, each: Callable[[Any], Any], memo: dict[int, tuple[Any, Any]] | None
) -> Any:
    """A copy of the container ``x`` one level deep, with ``each`` mapped over its members.

    Only the built-in containers (by exact type), named tuples and dataclass
    instances are copied, each the way its own type copies; anything else is
    returned as it is (passed by reference).
    """
    t = type(x)
    make = _MAPPINGS.get(t)
    if make is not None:
        out = make(x)
        if memo is not None:
            memo[id(x)] = (x, out)
        for k, v in x.items():
            out[each(k)] = each(v)
        extra = getattr(x, "__dict__", None)
        if extra:  # attributes set on the instance (an OrderedDict's) travel too
            vars(out).update(extra)
        return out
    if t is list:
        items: list[Any] = []
        if memo is not None:
            memo[id(x)] = (x, items)
        items.extend([each(v) for v in x])
        return items
    if t is tuple:
        return tuple([each(v) for v in x])
    if t is set or t is frozenset:
        members = list(x)
        if t is frozenset and all(id(type(v)) in ATOMIC_IDS for v in members):
            return x  # immutable, holding nothing: the op may have it
        mapped = [each(v) for v in members]
        out = x.copy() if mapped == members and t is set else t(mapped)
        # A copy may iterate in another order (after deletions, say): then the op
        # reads the set itself, by reference, as in plain Python.
        return out if all(a is b for a, b in zip(out, mapped, strict=True)) else x
    if t is collections.deque:
        return collections.deque([each(v) for v in x], x.maxlen)
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
    if isinstance(x, tuple) and hasattr(t, "_fields") and hasattr(t, "_make"):
        named = t._make([each(v) for v in x])  # a named tuple
        for name, v in attributes(x):  # a subclass's own attributes travel too
            object.__setattr__(named, name, each(v))
        return named
    if dataclasses.is_dataclass(x) and not isinstance(x, type) and _equal_by_value(t):
        return _copy_dataclass(x, each, memo)
    return x


def _equal_by_value(cls: type) -> bool:
    """Whether a dataclass compares by its fields (``eq=False``: by identity, not copied)."""
    params = getattr(cls, "__dataclass_params__", None)
    return bool(getattr(params, "eq", False))


def _copy_dataclass(
    x: Any, each: Callable[[Any], Any], memo: dict[int, tuple[Any, Any]] | None
) -> Any:
    """A copy of a dataclass instance: each attribute (fields and others) copied in turn.

    Made without running the class's code (no ``__copy__``, ``__reduce_ex__`` or
    ``__init__``): its state is its attributes. A class with its own ``__new__`` is
    passed by reference instead.
    """
    cls = type(x)
    new: Any = cls.__new__
    if new is not object.__new__:
        return x
    out = object.__new__(cls)
    if memo is not None:
        memo[id(x)] = (x, out)
    for name, value in attributes(x):
        object.__setattr__(out, name, each(value))
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
        fresh containers; objects holding deferred values get them in place;
        streams give concrete items as they are taken.
    """
    t = type(template)
    if id(t) in ATOMIC_IDS:
        return template
    if t is Ref:
        value = values[template.node]
        return copy_structure(value) if copy_refs else value
    if t is Holding:
        return _fill(template, values)
    if t is Stream:
        return map_items(template.source, concrete_item)
    return copy_container(template, lambda item: resolve(item, values, copy_refs=copy_refs), None)


def _fill(holding: Holding, values: Mapping[int, Any]) -> Any:
    """Put values where :func:`snapshot` found deferred values inside a lent object."""
    owner = holding.owner

    def real(v: Any) -> Any:
        if type(v) is Deferred:
            mine = v._self_owner is owner and v._self_node in values
            return values[v._self_node] if mine else v
        if isinstance(v, tuple) and (type(v) is tuple or hasattr(type(v), "_make")):
            items = [real(item) for item in v]
            if any(a is not b for a, b in zip(items, v, strict=True)):
                return tuple(items) if type(v) is tuple else type(v)._make(items)  # type: ignore[attr-defined]
        return v

    for holder, is_attribute, where in holding.slots:
        try:
            current = object.__getattribute__(holder, where) if is_attribute else holder[where]
        except (AttributeError, LookupError, TypeError):
            continue  # gone since: the op gets what is there now
        new = real(current)
        if new is current:
            continue
        if is_attribute:
            try:
                object.__setattr__(holder, where, new)
            except (AttributeError, TypeError):  # a read-only attribute
                continue
        elif isinstance(holder, list):
            list.__setitem__(holder, where, new)
        elif isinstance(holder, dict):
            dict.__setitem__(holder, where, new)
        else:
            holder[where] = new
    return holding.obj


def copy_structure(value: Any) -> Any:
    """Copy the containers of ``value`` level by level; leaves are shared."""
    if id(type(value)) in ATOMIC_IDS:
        return value
    return copy_container(value, copy_structure, None)


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
