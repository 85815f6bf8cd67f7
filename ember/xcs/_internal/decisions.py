"""Call-structure keys and the per-key decision of a jitted function.

A key describes the *structure* of a call, never argument values, like a JAX
treedef: the argument count; each argument's type and, for containers (lists,
tuples, dicts, sets, frozensets, deques), their length and the structure of their
items, recursively (a homogeneous container says its item structure once; dicts
with a few string keys say their keys); keyword names. Ops, operators, jitted
functions and model bindings among the arguments add their identity (their ``id``:
nothing is kept alive). Two calls with the same key are expected to trace the
same way, so the first traced call decides for the key:

* ``parallel``: a parallel group with two or more ops was seen; every later call
  is traced afresh (a graph is never replayed for new arguments).
* ``direct``: no parallelism; later calls run the plain function, except that it
  is traced again on an exponentially growing schedule (see :class:`Decisions`).
* ``fallback``: a traced call met code the rewrite does not cover (a pending value
  reached a callee that needed a real one); later calls run the plain function,
  for good. (The jit wrapper's stats keep the reason.)

Keys hold types, ints and strings only, so they never keep arguments alive, and
computing one never fails (a call whose types refuse hashing gets no key and is
traced). The jit wrapper adds the function's code to the picture: decisions are
dropped when ``fn.__code__`` is replaced. Decisions live in a bounded LRU map;
``fallback`` keys are kept apart and never evicted.
"""

from __future__ import annotations

import collections
import enum
import itertools
import threading
from collections.abc import Hashable, Mapping
from typing import Any

from ember.xcs._internal.deferred import ATOMIC_IDS

__all__ = ["Decision", "Decisions", "call_key"]


class Decision(enum.StrEnum):
    """How calls with one key run."""

    PARALLEL = "parallel"
    DIRECT = "direct"
    FALLBACK = "fallback"


_DIRECT, _FALLBACK = Decision.DIRECT, Decision.FALLBACK  # (enum attribute access is slow)

_SEQUENCES = (list, tuple, set, frozenset, collections.deque)
_MAX_DEPTH = 6  # deeper structure is summarized by type and length (cycles end here)
_MAX_KEYS = 32  # dicts with at most this many string keys say their keys
_SAMPLE = 8  # items of a container whose own structure is looked into
_IDENTIFIED = ("__xcs_op__", "__xcs_composite__")


_scalar_keys: set[tuple[type, ...]] = set()  # argument types seen that are all scalars


def call_key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Hashable | None:
    """The structure of a call (see the module docstring).

    Returns None when no key can be made (a type that refuses hashing): such a
    call is simply traced, like every call with ``jit(cache=False)``.
    """
    if not kwargs:
        kinds = tuple(map(type, args))
        try:
            if kinds in _scalar_keys:
                return kinds  # the common case: a few scalars (a str, a float ...)
        except TypeError:  # a type that refuses hashing: no key
            return None
        for kind in kinds:
            if id(kind) not in ATOMIC_IDS:
                break
        else:
            if len(_scalar_keys) < 1024:
                _scalar_keys.add(kinds)
            return kinds
    else:
        names = tuple(kwargs) if len(kwargs) == 1 else tuple(sorted(kwargs))
        kinds = tuple(map(type, args))
        kinds_by_name = tuple([type(kwargs[name]) for name in names])
        for kind in (*kinds, *kinds_by_name):
            if id(kind) not in ATOMIC_IDS:
                break
        else:
            return (kinds, names, kinds_by_name)  # scalars, some passed by keyword
    try:
        shapes = tuple([_shape(a, 0) for a in args])
        key: Hashable = shapes
        if kwargs:
            key = (shapes, tuple(sorted((k, _shape(v, 0)) for k, v in kwargs.items())))
        hash(key)
    except Exception:  # e.g. a metaclass defining __eq__ without __hash__
        return None
    return key


def _shape(value: Any, depth: int) -> Hashable:
    cls: type = type(value)
    if id(cls) in ATOMIC_IDS:
        return cls
    if cls in _SEQUENCES:
        if depth >= _MAX_DEPTH or not value:
            return (cls, len(value))
        return (cls, len(value), _items(value, depth + 1))
    if cls is dict:
        if depth >= _MAX_DEPTH or not value:
            return (dict, len(value))
        if len(value) <= _MAX_KEYS and all(type(k) is str for k in value):
            return (dict, tuple(value), tuple([_shape(v, depth + 1) for v in value.values()]))
        return (dict, len(value), _items(value.values(), depth + 1))
    if _identified(cls):
        return (cls, id(value))
    return cls


def _items(values: Any, depth: int) -> Hashable:
    """The structure of a container's items: one shape if they all share it.

    The item types are all looked at (at C speed); the structure inside items that
    are containers themselves, only for the first :data:`_SAMPLE` of them.
    """
    kinds = set(map(type, values))
    if len(kinds) == 1:
        (kind,) = kinds
        if id(kind) in ATOMIC_IDS:
            return kind  # a list of prompts: one type
    shapes = [_shape(v, depth) for v in itertools.islice(values, _SAMPLE)]
    first = shapes[0]
    if len(kinds) == 1 and all(s == first for s in shapes):
        return first
    return (tuple(shapes), frozenset(kinds) if len(kinds) > 1 else first)


_identified_types: dict[type, bool] = {}


def _identified(cls: type) -> bool:
    """Whether arguments of this type add their identity: ops, operators, bindings."""
    found = _identified_types.get(cls)
    if found is None:
        found = any(
            name in vars(k) or name in vars(k).get("__annotations__", {})
            for k in cls.__mro__
            for name in _IDENTIFIED
        )
        if len(_identified_types) > 4096:
            _identified_types.clear()
        _identified_types[cls] = found
    return found


class _Entry:
    __slots__ = ("decision", "next_check", "runs", "used")

    def __init__(self, decision: Decision, used: int) -> None:
        self.decision = decision
        self.runs = 0  # direct runs since the last traced call
        self.next_check = 1  # trace again after this many direct runs
        self.used = used  # when it was last looked up (for eviction)


class Decisions:
    """Thread-safe, bounded map from call keys to decisions (least recently used go).

    A ``direct`` key is traced again after 1, 2, 4, 8, ... direct runs, so
    parallelism that depends on the data (``f(1)`` first, ``f(50)`` later, both
    one int) is still found, at a cost that vanishes over many calls. ``fallback``
    keys are final: kept apart from the LRU.

    Lookups take no lock (a stale use stamp or re-check count is harmless); every
    change of a decision is made under the lock.
    """

    def __init__(self, capacity: int = 256, fallback_capacity: int = 4096) -> None:
        self._capacity = capacity
        self._fallback_capacity = fallback_capacity
        self._map: dict[Hashable, _Entry] = {}
        self._fallbacks: dict[Hashable, None] = {}  # an ordered set (oldest first)
        self._lock = threading.Lock()
        self._clock = itertools.count()

    def get(self, key: Hashable) -> Decision | None:
        """How calls with ``key`` run: PARALLEL (traced), DIRECT or FALLBACK (plainly).

        None (trace it) for a first call, or a direct key whose re-check is due.
        Takes no lock: the only race is two threads both finding a re-check due.
        """
        entry = self._map.get(key)
        if entry is None:
            return _FALLBACK if self._fallbacks and key in self._fallbacks else None
        entry.used = next(self._clock)
        decision = entry.decision
        if decision is not _DIRECT:
            return decision
        runs = entry.runs + 1
        if runs < entry.next_check:
            entry.runs = runs
            return _DIRECT
        entry.runs = 0
        entry.next_check *= 2
        return None

    def set(self, key: Hashable, decision: Decision) -> None:
        """Record what a traced call found.

        A ``parallel`` key never turns ``direct``; ``fallback`` is final.
        """
        with self._lock:
            if key in self._fallbacks:
                return
            if decision is Decision.FALLBACK:
                self._map.pop(key, None)
                self._fallbacks[key] = None
                if len(self._fallbacks) > self._fallback_capacity:  # a bound, never expected
                    del self._fallbacks[next(iter(self._fallbacks))]
                return
            entry = self._map.get(key)
            if entry is None:
                if len(self._map) >= self._capacity:  # evict the least recently used
                    del self._map[min(self._map, key=lambda k: self._map[k].used)]
                self._map[key] = _Entry(decision, next(self._clock))
            elif entry.decision is not Decision.PARALLEL:
                entry.decision = decision

    def clear(self) -> None:
        """Forget every decision (the function's code was replaced)."""
        with self._lock:
            self._map.clear()
            self._fallbacks.clear()

    def __len__(self) -> int:
        return len(self._map) + len(self._fallbacks)
