"""Call-structure keys and the per-key decision of a jitted function.

A key describes the *structure* of a call, never argument values: the argument
count, each argument's type and, for containers, their length; keyword names. Two
calls with the same key are expected to trace the same way, so the first traced
call decides for the key:

* ``parallel``: a parallel group with two or more ops was seen; every later call
  is traced afresh (a graph is never replayed for new arguments).
* ``direct``: no parallelism; later calls run the plain function.

Keys hold types and ints only, so they never keep arguments alive, and computing
one never fails (a call whose types refuse hashing gets no key and is traced).
Decisions live in a bounded LRU map.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

__all__ = ["Decision", "Decisions", "call_key"]

_SIZED = (list, tuple, dict, set, frozenset)


class Decision(enum.StrEnum):
    """How calls with one key run."""

    PARALLEL = "parallel"
    DIRECT = "direct"


def _shape(value: Any) -> Hashable:
    cls: type = type(value)
    if cls in _SIZED:
        return (cls, len(value))
    return cls


def call_key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Hashable | None:
    """The structure of a call: argument types, container lengths, keyword names.

    Returns None when no key can be made (a type that refuses hashing): such a
    call is simply traced, like every call with ``jit(cache=False)``.
    """
    shapes = tuple([_shape(a) for a in args])
    key: Hashable = shapes
    if kwargs:
        key = (shapes, tuple(sorted((k, _shape(v)) for k, v in kwargs.items())))
    try:
        hash(key)
    except TypeError:  # e.g. a metaclass defining __eq__ without __hash__
        return None
    return key


class Decisions:
    """Thread-safe, bounded map from call keys to decisions (least recently used go)."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._map: OrderedDict[Hashable, Decision] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Decision | None:
        """The decision for ``key``, or None before its first traced call."""
        with self._lock:
            decision = self._map.get(key)
            if decision is not None:
                self._map.move_to_end(key)
            return decision

    def set(self, key: Hashable, decision: Decision) -> None:
        """Record the decision for ``key``; a ``parallel`` key never turns ``direct``."""
        with self._lock:
            if self._map.get(key) is Decision.PARALLEL:
                return
            self._map[key] = decision
            self._map.move_to_end(key)
            while len(self._map) > self._capacity:
                self._map.popitem(last=False)

    def __len__(self) -> int:
        return len(self._map)
