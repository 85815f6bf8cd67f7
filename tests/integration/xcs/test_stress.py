"""Many threads, many jitted functions, nesting and failures at once: correct, no hang."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from ember import xcs
from tests.helpers import OpError, combine, echo, fail_if, slow_echo, upper


@xcs.jit
def leaf(tag: str, n: int) -> Any:
    return [upper(f"{tag}.{i}") for i in range(n)]


@xcs.op
def nest(tag: str) -> Any:
    return leaf(tag, 2)  # a jitted call inside an op, on a worker


@xcs.jit
def middle(tag: str) -> Any:
    return [nest(f"{tag}/{i}") for i in range(3)]


@xcs.jit
def fan(tag: str, n: int) -> Any:
    return combine([slow_echo(f"{tag}{i}", random.random() * 0.005) for i in range(n)])


@xcs.jit
def risky(tag: str, bad: int) -> Any:
    return [fail_if(i, bad) for i in range(4)], echo(tag)


def expected_leaf(tag: str, n: int) -> Any:
    return [f"{tag}.{i}".upper() for i in range(n)]


def worker(seed: int, errors: list[BaseException], rounds: int) -> None:
    rng = random.Random(seed)
    try:
        for round_ in range(rounds):
            tag = f"t{seed}r{round_}"
            choice = rng.randrange(4)
            if choice == 0:
                assert leaf(tag, 3) == expected_leaf(tag, 3)
            elif choice == 1:
                assert middle(tag) == [expected_leaf(f"{tag}/{i}", 2) for i in range(3)]
            elif choice == 2:
                n = rng.randrange(1, 6)
                assert fan(tag, n) == "|".join(f"{tag}{i}" for i in range(n))
            else:
                bad = rng.choice([1, 7])  # 7 never fails
                try:
                    result = risky(tag, bad)
                except OpError as exc:
                    assert bad == 1 and "bad value 1" in str(exc)
                else:
                    assert bad == 7 and result == ([0, 1, 2, 3], tag)
    except BaseException as exc:  # reported by the test
        errors.append(exc)


@pytest.mark.timeout(120)
def test_dozens_of_threads_mixing_functions_nesting_and_failures() -> None:
    before = {t.ident for t in threading.enumerate()}
    errors: list[BaseException] = []
    threads = [threading.Thread(target=worker, args=(s, errors, 25)) for s in range(32)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    assert errors == []
    assert time.perf_counter() - start < 100
    # No thread outlives the test but the shared pool's workers (created once, reused).
    leftovers = [
        t
        for t in threading.enumerate()
        if t.ident not in before and not t.name.startswith("xcs-worker")
    ]
    assert leftovers == []
    stats = xcs.get_jit_stats()
    assert stats[f"{__name__}.leaf"]["calls"] >= 25


@pytest.mark.timeout(180)
def test_the_same_on_a_two_worker_shared_pool() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "EMBER_XCS_MAX_WORKERS": "2"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:logging", __file__, "-k", "dozens"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=170)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 passed" in out.stdout
