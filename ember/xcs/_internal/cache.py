"""Call-structure keys and the per-key decision of a jitted function.

A key describes the *structure* of a call, never argument values: the argument
count, each argument's type and, for containers, their length; keyword names. Two
calls with the same key are expected to trace the same way, so the first traced
call decides for the key:

* ``parallel``: a parallel group with two or more ops was seen; every later call
  is traced afresh (a graph is never replayed for new arguments).
* ``direct``: no parallelism; later calls run the plain function, except that it
  is traced again on an exponentially growing schedule (see :class:`Decisions`).
* ``fallback``: a traced call met code the rewrite does not cover (a pending value
  reached a callee that needed a real one); later calls run the plain function,
  for good.

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
    FALLBACK = "fallback"


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


class _Entry:
    __slots__ = ("decision", "next_check", "runs")

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.runs = 0  # direct runs since the last traced call
        self.next_check = 1  # trace again after this many direct runs


class Decisions:
    """Thread-safe, bounded map from call keys to decisions (least recently used go).

    A ``direct`` key is traced again after 1, 2, 4, 8, ... direct runs, so
    parallelism that depends on the data (``f(1)`` first, ``f(50)`` later, both
    one int) is still found, at a cost that vanishes over many calls.
    """

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._map: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Decision | None:
        """How calls with ``key`` run: PARALLEL (traced), DIRECT or FALLBACK (plainly).

        None (trace it) for a first call, or a direct key whose re-check is due.
        """
        with self._lock:
            entry = self._map.get(key)
            if entry is None:
                return None
            self._map.move_to_end(key)
            if entry.decision is not Decision.DIRECT:
                return entry.decision
            entry.runs += 1
            if entry.runs < entry.next_check:
                return Decision.DIRECT
            entry.runs = 0
            entry.next_check *= 2
            return None

    def set(self, key: Hashable, decision: Decision) -> None:
        """Record what a traced call found.

        A ``parallel`` key never turns ``direct``; ``fallback`` is final.
        """
        with self._lock:
            entry = self._map.get(key)
            if entry is None:
                self._map[key] = _Entry(decision)
            elif entry.decision is Decision.FALLBACK:
                pass
            elif entry.decision is not Decision.PARALLEL or decision is Decision.FALLBACK:
                entry.decision = decision
            self._map.move_to_end(key)
            while len(self._map) > self._capacity:
                self._map.popitem(last=False)

    def __len__(self) -> int:
        return len(self._map)
