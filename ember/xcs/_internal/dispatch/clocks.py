"""Clock reads in user code: sync points, since they observe how long earlier work took.

Plain Python has finished every op called before a clock read, so everything pending
runs first: ``time.time()``, ``monotonic()``, ``perf_counter()`` (and their ``_ns``
forms), ``process_time()``, ``thread_time()``, ``clock_gettime()``, ``os.times()``,
``datetime.now()``/``utcnow()``/``today()`` and ``date.today()`` (also bound to a
subclass), and ``time.localtime()``-style calls without their time argument.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from typing import Any

from ember.xcs._internal import tracer

__all__ = ["as_clock"]


class _Clock:
    """A clock read in user code: a sync point (it observes how long earlier work took).

    Plain Python has finished every op called before the read, so everything pending
    runs first; ``time.localtime()``-style calls read the clock only without their
    time argument.
    """

    __slots__ = ("_fn", "_reads_with")

    def __init__(self, fn: Callable[..., Any], reads_with: int | None) -> None:
        self._fn = fn
        self._reads_with = reads_with  # most arguments it reads the clock with; None: any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._reads_with is None or len(args) + len(kwargs) <= self._reads_with:
            recording = tracer.active()
            if recording is not None and recording.pending:
                recording.materialize("clock read", need_value=False)
        return self._fn(*args, **kwargs)


_CLOCKS: dict[Any, int | None] = {
    clock: None
    for clock in (
        time.time,
        time.time_ns,
        time.monotonic,
        time.monotonic_ns,
        time.perf_counter,
        time.perf_counter_ns,
        time.process_time,
        time.process_time_ns,
        time.thread_time,
        time.thread_time_ns,
        datetime.datetime.now,
        datetime.datetime.utcnow,
        datetime.datetime.today,
        datetime.date.today,
    )
}


_CLOCKS.update({time.localtime: 0, time.gmtime: 0, time.ctime: 0, time.asctime: 0})


_CLOCKS.update({time.strftime: 1, time.clock_gettime: 1, time.clock_gettime_ns: 1})


_CLOCKS[os.times] = None


def as_clock(f: Any) -> _Clock | None:
    """``f`` as a sync point if it is a clock read, else None."""
    reads_with = _reads_with(f)
    return None if reads_with is False else _Clock(f, reads_with)


def _reads_with(f: Any) -> int | bool | None:
    """How many arguments ``f`` reads the clock with (None: any), or False: not a clock.

    The clocks of ``time`` and ``datetime``, also bound to a subclass of ``date``
    (``MyDateTime.now()``).
    """
    try:
        if f in _CLOCKS:
            return _CLOCKS[f]
    except TypeError:  # an unhashable receiver
        return False
    owner = getattr(f, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, datetime.date):
        return None if f.__name__ in ("now", "utcnow", "today") else False
    return False
