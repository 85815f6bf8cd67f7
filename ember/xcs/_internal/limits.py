"""``@op(max_concurrency=N)``: at most N runs of one op at once, across every trace.

Each op spec with a limit has one :class:`Limit` (specs that name another in
``shares_limit_with`` use that one's: every model of a provider, say). The engine
takes a :class:`Slot` before it hands an op to a thread; the slot is given back the
moment the op ends (or when the op is cancelled before it started), and engines that
were refused a slot are woken to try again.

Re-entrant per thread: the thread running an op *holds* its slot. A jitted call
nested inside that op materializes on the same thread, and while it waits the
outer op is not using its slot, so the nested engine may *borrow* it for one op of
the same kind at a time. An op that nests a jit of itself therefore never waits
for its own slot, and the total in flight still never exceeds N.

Nothing here blocks: refusing a slot is the engine's cue to run something else.
For ``jit(timeout=)`` a limit keeps when a slot was last given back (an op waiting
for a slot times out only after ``timeout`` with none coming free) and how many of
its slots are held by ops a timed-out call abandoned (they still run, and still
count: the bound is never exceeded).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

from ember.xcs._internal.ir import OpSpec

__all__ = ["Limit", "Slot", "hold", "limit_for", "take", "unhold"]


class Limit:
    """The slots of one op spec."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.abandoned = 0  # slots held by ops whose call timed out and left them
        self.given_back = time.perf_counter()  # when a slot last came free
        self.lock = threading.Lock()
        self._waiters: dict[int, Callable[[], None]] = {}

    def acquire(self) -> bool:
        """Take a free slot if there is one."""
        with self.lock:
            if self.used >= self.size:
                return False
            self.used += 1
            return True

    def wait(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (once) the next time a slot is given back or returned."""
        with self.lock:
            self._waiters[id(wake)] = wake

    def notify(self) -> None:
        """Wake every registered waiter (they retry; a callback only enqueues)."""
        with self.lock:
            waiters, self._waiters = list(self._waiters.values()), {}
        for wake in waiters:
            wake()


class _Held(threading.local):
    def __init__(self) -> None:
        # Limit -> [slots this thread holds while running ops, of those lent out]
        self.slots: dict[Limit, list[int]] = {}


_held = _Held()


class Slot:
    """A slot taken for one op: from the limit, or borrowed from the taking thread."""

    __slots__ = ("abandoned", "lender", "limit", "returned")

    def __init__(self, limit: Limit, lender: list[int] | None) -> None:
        self.limit = limit
        self.lender = lender  # the borrowing thread's [held, lent] entry, if borrowed
        self.abandoned = False
        self.returned = False

    def give_back(self) -> None:
        """Return the slot (the op ended, or will never start) and wake waiting engines."""
        limit = self.limit
        with limit.lock:
            self.returned = True
            if self.abandoned:
                limit.abandoned -= 1
            if self.lender is None:
                limit.used -= 1
            else:
                self.lender[1] -= 1
            limit.given_back = time.perf_counter()
        limit.notify()

    def abandon(self) -> None:
        """The op holding this slot timed out: it still runs (and holds the slot)."""
        limit = self.limit
        with limit.lock:
            if not self.returned and not self.abandoned:
                self.abandoned = True
                limit.abandoned += 1


def take(limit: Limit) -> Slot | None:
    """A slot for an op dispatched by this thread, or None if none is free now."""
    if limit.acquire():
        return Slot(limit, None)
    entry = _held.slots.get(limit)
    if entry is not None:
        with limit.lock:
            if entry[0] > entry[1]:  # this thread runs such an op and is waiting in it
                entry[1] += 1
                return Slot(limit, entry)
    return None


def hold(limit: Limit) -> list[int]:
    """Mark this thread as running an op that holds a slot of ``limit``.

    Returns:
        The thread's entry for ``limit``; pass it to :func:`unhold` when the op ends.
    """
    entry = _held.slots.get(limit)
    if entry is None:
        entry = _held.slots[limit] = [0, 0]
    entry[0] += 1
    return entry


def unhold(entry: list[int]) -> None:
    """The op that :func:`hold` marked has ended."""
    entry[0] -= 1


_limits: weakref.WeakKeyDictionary[OpSpec, Limit] = weakref.WeakKeyDictionary()
_limits_lock = threading.Lock()


def limit_for(spec: OpSpec | None) -> Limit | None:
    """The shared limit of an op spec, or None when it has none."""
    if spec is None or spec.max_concurrency is None:
        return None
    owner = spec.shares_limit_with
    if owner is None or owner.max_concurrency is None:
        owner = spec  # nothing to share: its own bound
    limit = _limits.get(owner)
    if limit is None:
        with _limits_lock:
            limit = _limits.get(owner)
            if limit is None:
                assert owner.max_concurrency is not None
                limit = _limits[owner] = Limit(owner.max_concurrency)
    return limit
