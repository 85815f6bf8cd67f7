"""Call-structure keys and decisions."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

from ember.xcs._internal.decisions import Decision, Decisions, call_key


def test_keys_follow_structure_not_values() -> None:
    assert call_key((1, "a"), {}) == call_key((2, "b"), {})
    assert call_key(([1, 2],), {}) != call_key(([1, 2, 3],), {})
    assert call_key((1,), {}) != call_key((1.0,), {})
    assert call_key((), {"a": 1}) != call_key((), {"b": 1})
    assert call_key((), {"a": 1, "b": 2}) == call_key((), {"b": 3, "a": 4})


def test_keys_never_fail_and_hold_no_arguments() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

    key = call_key((Unhashable(), [[]], {}), {"k": Unhashable()})
    hash(key)
    assert Unhashable in key[0]


def test_decisions_are_bounded_and_parallel_is_never_downgraded() -> None:
    decisions = Decisions(capacity=2)
    decisions.set("a", Decision.PARALLEL)
    decisions.set("a", Decision.DIRECT)
    assert decisions.get("a") is Decision.PARALLEL
    decisions.set("b", Decision.DIRECT)
    decisions.get("a")  # a is now the most recently used
    decisions.set("c", Decision.DIRECT)
    assert decisions.get("b") is None and decisions.get("a") is Decision.PARALLEL
    assert len(decisions) == 2


def test_direct_keys_are_rechecked_on_an_exponential_schedule() -> None:
    decisions = Decisions()
    decisions.set("k", Decision.DIRECT)
    traced_at = [n for n in range(1, 32) if decisions.get("k") is None]
    assert traced_at == [1, 3, 7, 15, 31]  # after 1, 2, 4, 8, 16 direct runs
    decisions.set("k", Decision.PARALLEL)  # a re-check found parallelism
    assert decisions.get("k") is Decision.PARALLEL


def test_fallback_is_final_and_never_rechecked() -> None:
    decisions = Decisions()
    decisions.set("parallel", Decision.PARALLEL)
    decisions.set("parallel", Decision.FALLBACK)
    decisions.set("direct", Decision.DIRECT)
    decisions.set("direct", Decision.FALLBACK)
    for key in ("parallel", "direct"):
        decisions.set(key, Decision.PARALLEL)
        decisions.set(key, Decision.DIRECT)
        assert [decisions.get(key) for _ in range(20)] == [Decision.FALLBACK] * 20


def test_decisions_survive_concurrent_use() -> None:
    decisions = Decisions(capacity=50)

    def work(offset: int) -> None:
        for i in range(500):
            decisions.set((offset, i % 70), Decision.DIRECT)
            decisions.get((offset, i % 60))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(decisions) == 50


def test_keys_follow_nested_structure() -> None:
    def key(*args: Any, **kwargs: Any) -> Any:
        return call_key(args, kwargs)

    assert key([[1, 2], [3, 4]]) == key([[5, 6], [7, 8]])
    assert key([[1, 2], [3]]) != key([[1], [2, 3]])
    assert key([1, "a"]) != key(["a", 1]) != key([1, 1])
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert key(chat) == key([{"role": "x", "content": "y"}] * 2)
    assert key(chat) != key([{"role": "user", "text": "hi"}] * 2)
    assert key({"k": [1, 2]}) != key({"k": [1, 2, 3]})
    assert key((1, (2, 3))) != key((1, (2, (3,))))
    assert key(1, flag=True) == key(2, flag=False) != key(2, other=False)
    assert key([1] * 1000) == key([2] * 1000) != key([2] * 999)


def test_ops_and_jitted_functions_among_arguments_add_their_identity() -> None:
    from ember import xcs

    @xcs.op
    def first(x: Any) -> Any:
        return x

    @xcs.op
    def second(x: Any) -> Any:
        return x

    assert call_key((first, "q"), {}) == call_key((first, "other"), {})
    assert call_key((first, "q"), {}) != call_key((second, "q"), {})
    assert call_key(([first, second],), {}) != call_key(([second, first],), {})
    jitted = xcs.jit(lambda x: x)
    assert call_key((jitted,), {}) != call_key((xcs.jit(lambda x: x),), {})


def test_keys_of_cyclic_deep_and_huge_arguments_are_made_quickly() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    nested: list[Any] = []
    for _ in range(5000):
        nested = [nested]
    huge = [{"role": "user", "content": str(i)} for i in range(100_000)]
    for value in (cyclic, nested, huge):
        start = time.perf_counter()
        hash(call_key((value,), {}))
        assert time.perf_counter() - start < 0.5


def test_keys_keep_no_argument_alive() -> None:
    class Prompt:
        pass

    prompt = Prompt()
    alive = weakref.ref(prompt)
    key = call_key(([prompt], {"p": prompt}), {"k": prompt})
    del prompt
    gc.collect()
    assert alive() is None and key is not None


def test_fallback_keys_are_never_evicted() -> None:
    decisions = Decisions(capacity=2)
    decisions.set("gap", Decision.FALLBACK)
    for i in range(10):
        decisions.set(i, Decision.DIRECT)
    assert decisions.get("gap") is Decision.FALLBACK
    assert len(decisions) == 3  # two keys in the LRU, the fallback apart
    decisions.clear()
    assert decisions.get("gap") is None and len(decisions) == 0
