"""``ember._stop``: an op's stop signal, seen by code running in the op."""

from __future__ import annotations

import threading
import time

from ember import _stop


def test_a_signal_is_current_only_between_enter_and_leave() -> None:
    signal = _stop.Stop()
    assert _stop.current() is None and not _stop.stopped()
    previous = _stop.enter(signal)
    try:
        assert _stop.current() is signal and not _stop.stopped()
        signal.stop()
        assert _stop.stopped()
    finally:
        _stop.leave(previous)
    assert _stop.current() is None and not _stop.stopped()


def test_stopping_an_op_stops_what_it_started_not_the_reverse() -> None:
    outer = _stop.Stop()
    inner = _stop.Stop(parent=outer)
    inner.stop()
    assert inner.is_set() and not outer.is_set()
    other = _stop.Stop(parent=outer)
    outer.stop()
    assert other.is_set()


def test_a_sleep_ends_when_the_signal_or_a_parents_is_set() -> None:
    for which in ("self", "parent"):
        outer = _stop.Stop()
        signal = _stop.Stop(parent=outer)
        target = signal if which == "self" else outer
        threading.Timer(0.05, target.stop).start()
        start = time.perf_counter()
        assert signal.sleep(10) is True
        assert time.perf_counter() - start < 5, which


def test_a_sleep_that_is_not_cut_short_lasts_and_says_so() -> None:
    signal = _stop.Stop()
    start = time.perf_counter()
    assert signal.sleep(0.05) is False
    assert time.perf_counter() - start >= 0.05
    signal.stop()
    assert signal.sleep(10) is True  # set already: no sleep at all
