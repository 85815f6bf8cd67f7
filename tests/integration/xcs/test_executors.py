"""One contract for every executor, plus what differs for executors in other processes.

The contract runs against the shared pool, a custom ThreadPoolExecutor, and Dask's
executor on a real ``distributed.LocalCluster`` (threads, on loopback). Executors in
other processes (a process pool, a Dask cluster of processes) get smoke tests.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest

from ember import xcs
from tests.helpers import (
    LOG,
    OpError,
    echo,
    fail,
    remote_crash,
    remote_fail,
    remote_where,
    slow_echo,
    upper,
)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=16, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(params=["shared-pool", "thread-pool", "dask-threads"])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor | None]:
    if request.param == "shared-pool":
        yield None
    elif request.param == "thread-pool":
        with ThreadPoolExecutor(16, thread_name_prefix="contract") as pool:
            yield pool
    else:
        yield request.getfixturevalue("dask_client").get_executor(pure=False)


def test_independent_ops_overlap(executor: Executor | None) -> None:
    @xcs.jit(executor=executor)
    def program() -> Any:
        return [slow_echo(i, 0.1) for i in range(8)]

    assert program() == list(range(8))
    assert LOG.span() < 0.5 * LOG.busy_seconds()


def test_a_node_starts_when_its_own_inputs_are_done(executor: Executor | None) -> None:
    @xcs.jit(executor=executor)
    def program() -> Any:
        a = slow_echo("a", 0.3)
        b = slow_echo("b", 0.05)
        return a, slow_echo(b, 0.3)

    assert program() == ("a", "b")
    by_args = {c.args: c for c in LOG.entries}
    assert by_args["('b', 0.3)"].start < by_args["('a', 0.3)"].end


def test_every_call_runs_exactly_once_even_when_identical(executor: Executor | None) -> None:
    @xcs.jit(executor=executor)
    def program() -> Any:
        return [echo("same") for _ in range(5)] + [upper("same")]

    assert program() == ["same"] * 5 + ["SAME"]
    assert sorted(LOG.names()) == ["echo"] * 5 + ["upper"]


def test_the_earliest_failure_wins_with_its_type_and_note(executor: Executor | None) -> None:
    @xcs.jit(executor=executor)
    def program() -> Any:
        first = fail("first", delay=0.15)
        second = fail("second")
        return upper(first), second

    with pytest.raises(OpError, match="first") as info:
        program()
    assert any("fail" in note for note in info.value.__notes__)
    assert "upper" not in LOG.names()


def test_max_workers_caps_concurrency(executor: Executor | None) -> None:
    @xcs.jit(executor=executor, max_workers=2)
    def program() -> Any:
        return [slow_echo(i, 0.05) for i in range(6)]

    assert program() == list(range(6))
    assert LOG.max_overlap() <= 2


def test_timeouts(executor: Executor | None) -> None:
    @xcs.jit(executor=executor, timeout=0.1)
    def program() -> Any:
        return slow_echo("stuck", 0.6)

    with pytest.raises(xcs.OpTimeoutError):
        program()


@xcs.op(max_concurrency=1)
def single(x: Any) -> Any:
    time.sleep(0.03)
    return slow_echo(x, 0.0)  # logs the call (runs directly inside the op)


def test_max_concurrency_holds(executor: Executor | None) -> None:
    @xcs.jit(executor=executor)
    def program() -> Any:
        return [single(i) for i in range(4)]

    assert program() == list(range(4))
    calls = sorted(LOG.entries, key=lambda c: c.start)
    assert all(a.end <= b.start + 0.001 for a, b in zip(calls, calls[1:], strict=False))


# Sent to another process by value, ``inner`` has no source there: it runs plainly.
@pytest.mark.filterwarnings("ignore::ember.xcs.XCSWarning")
def test_a_jitted_call_inside_an_op_is_its_own_trace(executor: Executor | None) -> None:
    @xcs.jit
    def inner(x: Any) -> Any:
        return [upper(x), upper(x + "!")]

    @xcs.op
    def outer(x: Any) -> Any:
        return inner(x)

    @xcs.jit(executor=executor)
    def program() -> Any:
        return [outer(x) for x in "ab"]

    assert program() == [["A", "A!"], ["B", "B!"]]


CONTRACT_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("contract", default="unset")


@xcs.op
def read_contract_var() -> str:
    return CONTRACT_VAR.get()


def test_contextvars(executor: Executor | None, request: pytest.FixtureRequest) -> None:
    @xcs.jit(executor=executor)
    def program() -> Any:
        token = CONTRACT_VAR.set("at call")
        try:
            return read_contract_var()
        finally:
            CONTRACT_VAR.reset(token)

    expected = "unset" if "dask" in request.node.callspec.id else "at call"
    assert program() == expected  # restored around thread ops; they do not cross to Dask


# --- executors in other processes -------------------------------------------------------


def test_a_process_pool_runs_module_level_ops_in_other_processes() -> None:
    with ProcessPoolExecutor(2) as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return [remote_where(i, 0.2) for i in range(4)]

        start = time.perf_counter()
        results = program()
        wall = time.perf_counter() - start
    assert [x for x, _ in results] == [0, 1, 2, 3]
    assert os.getpid() not in {pid for _, pid in results}
    assert wall < 0.75 * 4 * 0.2  # two at a time


def test_a_process_pool_brings_back_the_ops_exception() -> None:
    with ProcessPoolExecutor(1) as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return remote_fail("over there")

        with pytest.raises(OpError, match="over there") as info:
            program()
    assert any("remote_fail" in note for note in info.value.__notes__)


def test_an_op_that_cannot_be_pickled_is_a_clear_error() -> None:
    local = xcs.op(lambda x: x)

    with ProcessPoolExecutor(1) as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return local(1)

        with pytest.raises(xcs.XCSError, match="picklable") as info:
            program()
    assert "<lambda>" in str(info.value) and info.value.__cause__ is not None


def test_a_dead_worker_process_is_reported_without_blaming_an_innocent_op() -> None:
    # Every op on a ProcessPoolExecutor fails when one worker dies; the earliest in
    # program order is raised. It must say it was lost and name the suspects, not
    # claim it could not be pickled.
    with ProcessPoolExecutor(3) as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return [remote_where(0, 0.5), remote_crash(0.05), remote_where(2, 0.5)]

        with pytest.raises(xcs.XCSError, match="was lost") as info:
            program()
    message = str(info.value)
    assert message.startswith("op 'remote_where' (node %")
    assert "'remote_crash' (node %" in message and "not necessarily the cause" in message
    assert "picklable" not in message
    assert type(info.value.__cause__).__name__ == "BrokenProcessPool"


def test_cached_model_calls_in_other_processes_share_the_cache_file(tmp_path) -> None:
    # A call made with a file cache on runs, in a worker process, through that process's
    # cache of the same file; a cache in memory is this process's only (no error either).
    from ember import models

    chat = models.instance("simulated/chat", latency=0.05)
    with ProcessPoolExecutor(2) as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return [chat(f"question {i}") for i in range(4)]

        with models.cache(tmp_path / "shared.sqlite3") as cache:
            cold = program()
            warm = program()
            assert cache.info().entries == 4  # stored by the workers, read here
            assert chat("question 3").cached
        with models.cache(memory=True) as memory:
            in_memory = program()
            assert memory.info().entries == 0
    assert [r.cached for r in cold] == [False] * 4 and [r.cached for r in warm] == [True] * 4
    assert [r.text for r in warm] == [r.text for r in cold] == [r.text for r in in_memory]
    assert not any(r.cached for r in in_memory)


@pytest.mark.timeout(120)
def test_a_dask_cluster_of_processes_smoke() -> None:
    cluster = distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=2, dashboard_address=":0"
    )
    try:
        with distributed.Client(cluster) as client:

            @xcs.jit(executor=client.get_executor(pure=False))
            def program() -> Any:
                return [remote_where(i, 0.1) for i in range(4)]

            results = program()
    finally:
        cluster.close()
    assert [x for x, _ in results] == [0, 1, 2, 3]
    assert os.getpid() not in {pid for _, pid in results}


def test_no_threads_leak_from_the_contract_suite() -> None:
    names = {t.name for t in threading.enumerate()}
    assert not any(name.startswith("contract") for name in names)
