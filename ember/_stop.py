"""An op's stop signal: how code running in an op learns that nobody waits for it.

A thread cannot be stopped from outside, so an op whose result will be dropped -- the
call was interrupted (Ctrl-C), the op ran past ``jit(timeout=)``, or an earlier op
failed -- goes on running. What it can do is notice and stop early: the engine
*stops* such an op's :class:`Stop`, and code inside the op asks :func:`stopped` (the
model providers do between retries: no further request is sent, no backoff slept).

The engine's tasks are ``Stop`` objects; the thread running one makes it
:func:`current` for the op's duration. A task created while another op runs (a
jitted function called inside an op) has that op's signal as its parent: stopping
the outer op stops what it started.

This module knows nothing about the engine or the providers: both import it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Stop", "current", "enter", "leave", "stopped"]

_local = threading.local()
_callbacks_lock = threading.Lock()  # guards every signal's callback list (rarely taken)


class Stop:
    """A stop signal: unset until :meth:`stop`, then set for good.

    Args:
        parent: The signal of the op that created this one (None at top level): when
            it is set, this one counts as set too.
    """

    __slots__ = ("_callbacks", "_parent", "_set")

    def __init__(self, parent: Stop | None = None) -> None:
        self._parent = parent
        self._set = False
        self._callbacks: list[Callable[[], None]] | None = None

    def stop(self) -> None:
        """Set the signal and run what was waiting for it (once; from any thread)."""
        if self._set:
            return
        self._set = True
        with _callbacks_lock:
            callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback()

    def is_set(self) -> bool:
        """Whether this signal, or the signal of an op that started this one, is set."""
        signal: Stop | None = self
        while signal is not None:
            if signal._set:
                return True
            signal = signal._parent
        return False

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once when this signal, or a parent's, is set (at once if it is).

        It runs on the thread that sets the signal. Returns a function that stops watching.
        """
        done = [False]

        def once() -> None:
            with _callbacks_lock:
                if done[0]:
                    return
                done[0] = True
            callback()

        chain: list[Stop] = []
        signal: Stop | None = self
        while signal is not None:
            chain.append(signal)
            signal = signal._parent
        with _callbacks_lock:
            for signal in chain:
                if signal._callbacks is None:
                    signal._callbacks = []
                signal._callbacks.append(once)
        if self.is_set():  # set while we listed ourselves: its callbacks may have run
            once()

        def unwatch() -> None:
            with _callbacks_lock:
                for signal in chain:
                    callbacks = signal._callbacks
                    if callbacks is not None and once in callbacks:
                        callbacks.remove(once)

        return unwatch

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less if the signal is set meanwhile.

        Returns:
            Whether the signal is set (the sleep was cut short, or it was set already).
        """
        if self.is_set():
            return True
        woken = threading.Event()
        unwatch = self.watch(woken.set)
        try:
            woken.wait(seconds)
        finally:
            unwatch()
        return self.is_set()


def current() -> Stop | None:
    """The signal of the op running on this thread, or None outside ops."""
    return getattr(_local, "signal", None)


def enter(signal: Stop) -> Stop | None:
    """Make ``signal`` this thread's current one; returns the previous, for :func:`leave`."""
    previous = getattr(_local, "signal", None)
    _local.signal = signal
    return previous


def leave(previous: Stop | None) -> None:
    """Restore the signal :func:`enter` replaced."""
    _local.signal = previous


def stopped() -> bool:
    """Whether the op running on this thread was stopped: its result will be dropped."""
    signal = getattr(_local, "signal", None)
    return signal is not None and signal.is_set()
