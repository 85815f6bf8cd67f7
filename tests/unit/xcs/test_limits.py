"""Per-op concurrency limits: slots, waking, borrowing by a nested call."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ember import xcs
from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.limits import Limit, hold, limit_for, take, unhold
from tests.helpers import LOG, logged, slow_echo


def test_slots_are_taken_given_back_and_wake_waiters() -> None:
    limit = Limit(2)
    woken: list[int] = []
    first, second = take(limit), take(limit)
    assert first and second and take(limit) is None
    limit.wait(lambda: woken.append(1))
    first.give_back()
    assert woken == [1] and take(limit) is not None


def test_a_thread_running_such_an_op_lends_its_slot_to_one_nested_op_at_a_time() -> None:
    limit = Limit(1)
    mine = take(limit)
    assert mine is not None and take(limit) is None  # outside any op: nothing to borrow
    entry = hold(limit)
    borrowed = take(limit)
    assert borrowed is not None and borrowed.lender is not None
    assert take(limit) is None  # only one slot to lend
    borrowed.give_back()
    assert take(limit) is not None
    unhold(entry)


def test_limits_belong_to_op_specs_by_identity() -> None:
    a, b = OpSpec("ask", 2), OpSpec("ask", 2)
    assert limit_for(a) is limit_for(a) and limit_for(a) is not limit_for(b)
    assert limit_for(OpSpec("free")) is None and limit_for(None) is None


@logged(name="limited", max_concurrency=2)
def limited(x: Any) -> Any:
    time.sleep(0.05)
    return x


def test_max_concurrency_holds_across_traces_and_threads() -> None:
    @xcs.jit(cache=False)
    def program(tag: str) -> Any:
        return [limited(f"{tag}{i}") for i in range(4)]

    results: dict[str, Any] = {}
    threads = [
        threading.Thread(target=lambda t=t: results.__setitem__(t, program(t))) for t in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {t: [f"{t}{i}" for i in range(4)] for t in "ab"}
    assert len(LOG.entries) == 8 and LOG.max_overlap() <= 2


def test_other_ops_do_not_wait_for_a_limited_one() -> None:
    @xcs.jit
    def program() -> Any:
        slow = [limited(i) for i in range(6)]  # 3 waves of 2
        free = [slow_echo(i, 0.05) for i in range(6)]
        return slow, free

    program()
    frees = [c for c in LOG.entries if c.name == "slow_echo"]
    assert max(c.start for c in frees) < min(c.end for c in LOG.entries if c.name == "limited")
    assert LOG.span() < 0.25  # 3 waves of the limited op, everything else beside them


@logged(name="recursive", max_concurrency=1)
def recursive(depth: int) -> Any:
    if depth == 0:
        return "leaf"
    return nested_twice(depth - 1)


@xcs.jit
def nested_twice(depth: int) -> Any:
    return [recursive(depth), recursive(depth)]


@pytest.mark.timeout(30)
def test_an_op_nesting_a_jit_of_itself_never_waits_for_its_own_slot() -> None:
    assert nested_twice(2) == [[["leaf", "leaf"]] * 2] * 2
