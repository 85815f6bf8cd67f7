"""How a traced call eases Python's garbage collector while it records and runs.

A trace keeps a few objects per op call alive until the call returns (its node, its
state, the deferred value), so recording 100k calls allocates hundreds of thousands
of long-lived objects. With the default thresholds the collector runs a young
collection every 700 allocations and, every hundred of those, a full one that walks
every object of the process -- the trace included, again and again as it grows: at
100k ops a quarter of the call went to the collector, and the cost per op grew with
the trace.

While at least one traced call is in progress, the youngest generation's threshold is
raised to :data:`YOUNG_THRESHOLD` (collections still happen, ten or more times less
often), and put back when the last one ends -- unless the program changed the
thresholds meanwhile, which is then left alone. A threshold already higher (set by
the program) is never lowered, and a disabled collector stays disabled.
"""

from __future__ import annotations

import gc
import os
import threading

__all__ = ["YOUNG_THRESHOLD", "fewer_collections", "more_collections"]

YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_active = 0  # traced calls in progress (any thread)
_saved: tuple[int, ...] | None = None  # the thresholds to restore
_raised: tuple[int, ...] | None = None  # what we set them to


def fewer_collections() -> None:
    """A traced call begins: collect less often (until :func:`more_collections`)."""
    global _active, _saved, _raised
    with _lock:
        _active += 1
        if _active > 1:
            return
        current = gc.get_threshold()
        if current[0] and current[0] < YOUNG_THRESHOLD:
            _saved, _raised = current, (YOUNG_THRESHOLD, *current[1:])
            gc.set_threshold(*_raised)


def more_collections() -> None:
    """A traced call ended: the last one out restores the program's thresholds."""
    global _active, _saved, _raised
    with _lock:
        _active -= 1
        if _active or _saved is None:
            return
        if gc.get_threshold() == _raised:
            gc.set_threshold(*_saved)
        _saved = _raised = None


def _forget_in_child() -> None:
    # A forked child runs none of the parent's traced calls: thresholds as they were.
    global _lock, _active, _saved, _raised
    _lock = threading.Lock()
    if _saved is not None and gc.get_threshold() == _raised:
        gc.set_threshold(*_saved)
    _active, _saved, _raised = 0, None, None


os.register_at_fork(after_in_child=_forget_in_child)
