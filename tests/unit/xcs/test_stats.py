"""Stats counters and the dict they report."""

from __future__ import annotations

import threading

import pytest

from ember.xcs._internal.parallelism import Summary
from ember.xcs._internal.stats import JitStats


def test_fresh_stats() -> None:
    stats = JitStats().as_dict()
    assert stats["decision"] == "untraced"
    assert stats["speedup"] is None and stats["concurrency"] is None
    assert stats["fallback_reason"] is None


def test_totals_and_derived_fields() -> None:
    stats = JitStats()
    stats.count_traced(Summary(4, 4, 0.8, 0.8, 0), 0.2, "parallel")
    stats.count_traced(Summary(2, 1, 0.2, 0.1, 1, gil_bound=True), 0.2, "direct")
    stats.count_direct()
    stats.count_inlined()
    out = stats.as_dict()
    counts = [out[k] for k in ("calls", "traced_calls", "direct_calls", "inlined_calls")]
    assert counts == [4, 2, 1, 1]
    assert out["ops"] == 6 and out["max_parallelism"] == 4
    assert out["op_seconds"] == pytest.approx(1.0) and out["wall_seconds"] == pytest.approx(0.4)
    assert out["concurrency"] == pytest.approx(2.5) and out["speedup"] == pytest.approx(0.9 / 0.4)
    assert out["decision"] == "parallel" and out["cpu_bound_ops"] == 1 and "GIL" in out["hint"]


def test_concurrent_updates_are_not_lost() -> None:
    stats = JitStats()

    def work() -> None:
        for _ in range(1000):
            stats.count_direct()
            stats.count_traced(Summary(1, 1, 0.0, 0.0, 0), 0.0, "direct")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = stats.as_dict()
    assert out["calls"] == 16000 and out["direct_calls"] == 8000 and out["ops"] == 8000
