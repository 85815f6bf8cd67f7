"""Independent ops overlap in time. Ratios with generous margins, never absolute seconds."""

from __future__ import annotations

import time
from typing import Any

from ember import xcs
from tests.helpers import LOG, slow_echo


@xcs.jit
def sixteen(delay: float) -> list[Any]:
    return [slow_echo(i, delay) for i in range(16)]


def test_sixteen_ops_of_a_fifth_of_a_second_take_well_under_half_the_sequential_time() -> None:
    start = time.perf_counter()
    assert sixteen(0.2) == list(range(16))
    wall = time.perf_counter() - start
    sequential = LOG.busy_seconds()  # what the same calls took, added up
    assert sequential >= 16 * 0.2
    assert wall < 0.5 * sequential
    assert LOG.max_overlap() >= 8


def test_a_fan_out_then_fan_in_overlaps_each_wave() -> None:
    @xcs.jit
    def waves(n: int) -> Any:
        first = [slow_echo(i, 0.05) for i in range(n)]
        second = [slow_echo(f"{a}", 0.05) for a in first]  # each depends on one of the first
        return slow_echo(second, 0.05)

    start = time.perf_counter()
    assert waves(8) == [str(i) for i in range(8)]
    wall = time.perf_counter() - start
    assert wall < 0.5 * LOG.busy_seconds()
