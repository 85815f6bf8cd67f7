"""A traced call raises the young generation's threshold while it runs, and restores it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from ember import xcs
from ember.xcs._internal import collector


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, ...]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


@xcs.op
def seen_threshold(_: int) -> tuple[int, ...]:
    return gc.get_threshold()


@xcs.jit
def during(n: int) -> list[tuple[int, ...]]:
    return [seen_threshold(i) for i in range(n)]


def test_a_traced_call_collects_less_often_and_restores_the_thresholds() -> None:
    assert during(3) == [(collector.YOUNG_THRESHOLD, 10, 10)] * 3
    assert gc.get_threshold() == (700, 10, 10)
    assert xcs.trace(during.__wrapped__, 2).result == [(collector.YOUNG_THRESHOLD, 10, 10)] * 2
    assert gc.get_threshold() == (700, 10, 10)


def test_a_failing_call_restores_them_too() -> None:
    @xcs.jit
    def fails() -> None:
        seen_threshold(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    assert gc.get_threshold() == (700, 10, 10)


def test_higher_thresholds_and_a_disabled_collector_are_left_alone() -> None:
    gc.set_threshold(50_000, 20, 10)
    assert during(1) == [(50_000, 20, 10)]
    gc.set_threshold(0)  # collection disabled by threshold
    assert during(1) == [(0, 20, 10)]
    assert gc.get_threshold() == (0, 20, 10)


def test_thresholds_the_program_sets_during_a_call_are_kept() -> None:
    @xcs.jit
    def retunes() -> list[tuple[int, ...]]:
        gc.set_threshold(1234, 5, 5)
        return [seen_threshold(0)]

    assert retunes() == [(1234, 5, 5)]
    assert gc.get_threshold() == (1234, 5, 5)


def test_overlapping_calls_on_threads_restore_when_the_last_one_ends() -> None:
    release, entered = threading.Event(), threading.Event()

    @xcs.op
    def wait() -> int:
        entered.set()
        release.wait(5)
        return 1

    @xcs.jit
    def slow() -> int:
        return wait() + 0

    thread = threading.Thread(target=slow)
    thread.start()
    assert entered.wait(5)
    assert during(1) == [(collector.YOUNG_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, 10, 10)  # slow() still runs
    release.set()
    thread.join(5)
    assert gc.get_threshold() == (700, 10, 10)
