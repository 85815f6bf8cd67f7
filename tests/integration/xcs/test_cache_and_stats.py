"""Decisions per call structure and the stats that report them, under real use."""

from __future__ import annotations

import importlib
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ember import xcs
from tests.helpers import LOG, echo, slow_echo

MODULE = """\
from tests.helpers import echo

def pipeline(xs):
    {body}
"""
PARALLEL_BODY = "return [echo(x) for x in xs]"
SEQUENTIAL_BODY = "return echo(echo(xs[0]) + xs[-1])"


@pytest.fixture
def two_modules(tmp_path: Path) -> Iterator[tuple[types.ModuleType, types.ModuleType]]:
    """Two modules, each with a function named ``pipeline``: one parallel, one not."""
    (tmp_path / "xcs_team_a.py").write_text(MODULE.format(body=PARALLEL_BODY))
    (tmp_path / "xcs_team_b.py").write_text(MODULE.format(body=SEQUENTIAL_BODY))
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("xcs_team_a"), importlib.import_module("xcs_team_b")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("xcs_team_a", None)
        sys.modules.pop("xcs_team_b", None)


def test_functions_named_alike_in_two_modules_decide_apart(two_modules: Any) -> None:
    team_a, team_b = two_modules
    a, b = xcs.jit(team_a.pipeline), xcs.jit(team_b.pipeline)
    for _ in range(3):
        assert a(["x", "y"]) == ["x", "y"]
        assert b(["x", "y"]) == "xy"
    everything = xcs.get_jit_stats()
    assert everything["xcs_team_a.pipeline"]["decision"] == "parallel"
    assert everything["xcs_team_b.pipeline"]["decision"] == "direct"
    assert a.stats()["traced_calls"] == 3  # parallel: traced afresh every call
    assert (b.stats()["traced_calls"], b.stats()["direct_calls"]) == (2, 1)  # re-checked once


def test_decisions_are_stable_across_calls_and_follow_the_arguments() -> None:
    @xcs.jit
    def ask_all(batches: list[list[str]]) -> Any:
        return [echo(batch[0]) for batch in batches]

    ask_all([["a"]])  # one op: direct for one batch of one
    for _ in range(5):
        ask_all([["b"]])
    stats = ask_all.stats()
    assert (stats["traced_calls"], stats["direct_calls"]) == (3, 3)  # calls 1, 2 and 4 traced
    ask_all([["a"], ["b", "c"]])  # another structure (two batches): traced, parallel
    assert ask_all.stats()["decision"] == "parallel"
    ask_all([["d"]])  # the first structure is still direct (its 7th call)
    assert ask_all.stats()["direct_calls"] == 4


def test_replacing_the_code_drops_the_decisions() -> None:
    def program(xs: list[str]) -> Any:
        return echo(xs[0])

    def fanned(xs: list[str]) -> Any:
        return [echo(x) for x in xs]

    jitted = xcs.jit(program)
    for _ in range(3):
        jitted(["a", "b"])
    assert jitted.stats()["direct_calls"] == 1
    program.__code__ = fanned.__code__  # the function now fans out
    assert jitted(["a", "b"]) == ["a", "b"]
    stats = jitted.stats()
    assert stats["decision"] == "parallel" and stats["traced_calls"] == 3


def test_concurrent_callers_keep_the_cache_and_the_counters_exact() -> None:
    @xcs.jit
    def fan(xs: list[str]) -> Any:
        return [slow_echo(x, 0.001) for x in xs]

    @xcs.jit
    def single(x: str) -> Any:
        return echo(x)

    threads, rounds = 8, 30
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(rounds):
                width = 2 + (t + i) % 3  # lists of 2, 3 or 4: parallel, traced every call
                assert fan([f"{t}.{i}.{j}" for j in range(width)]) == [
                    f"{t}.{i}.{j}" for j in range(width)
                ]
                assert single(f"{t}.{i}") == f"{t}.{i}"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors
    calls = threads * rounds
    fan_stats, single_stats = fan.stats(), single.stats()
    fan_ops = sum(1 for c in LOG.entries if c.name == "slow_echo")
    assert (fan_stats["calls"], fan_stats["traced_calls"]) == (calls, calls)
    assert fan_stats["ops"] == fan_ops == sum(2 + k % 3 for k in range(calls))
    assert fan_stats["max_parallelism"] == 4
    assert (
        single_stats["calls"]
        == calls
        == single_stats["traced_calls"] + single_stats["direct_calls"]
    )
    assert single_stats["decision"] == "direct"
    # traced at most when the exponential schedule says so (each thread may race it once)
    assert single_stats["traced_calls"] <= 10 + threads
    assert sum(1 for c in LOG.entries if c.name == "echo") == calls


def test_speedup_is_honest_about_ops_that_hold_the_gil() -> None:
    @xcs.op
    def spin(n: int) -> int:
        deadline = time.thread_time() + 0.03
        while time.thread_time() < deadline:
            pass
        return n

    @xcs.op
    def wait(n: int) -> int:
        time.sleep(0.03)
        return n

    @xcs.jit
    def spins() -> Any:
        return [spin(i) for i in range(4)]

    @xcs.jit
    def waits() -> Any:
        return [wait(i) for i in range(4)]

    spins()
    waits()
    assert spins.stats()["speedup"] < 1.5  # CPU time counted: threads could not help
    assert waits.stats()["speedup"] > 2.5  # four sleeps overlapped
    assert waits.stats()["concurrency"] > 2.5
