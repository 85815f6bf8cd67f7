"""Saying why a call waited: ``stats()["waits"]``, ``stats()["hint"]``, ``print(trace)``.

Each shape that holds calls back names its line, what it waited for and the fix; a
program that is parallel already gets no hint.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import re
import time
import urllib.parse

from ember import xcs

DELAY = 0.02


@xcs.op
def llm(prompt: str) -> str:
    time.sleep(DELAY)
    return f"answer {prompt}" + (" yes" if len(prompt) % 2 else " no")


def _line_of(fn: object, text: str) -> str:
    """``file.py:N`` of the first line of ``fn`` containing ``text``."""
    lines, first = inspect.getsourcelines(fn)  # type: ignore[arg-type]
    number = first + next(i for i, line in enumerate(lines) if text in line)
    return f"test_waits.py:{number}"


def verifier(questions: list[str]) -> list[str]:
    out = []
    for q in questions:
        draft = llm(f"draft {q}")
        verdict = llm(f"verify {draft}")
        if verdict.endswith("yes"):
            draft = llm(f"revise {draft}")
        out.append(draft)
    return out


def test_a_per_item_verifier_loop_names_its_branch_and_xcs_map() -> None:
    jitted = xcs.jit(verifier)
    assert jitted([f"q{i}" for i in range(4)]) == verifier([f"q{i}" for i in range(4)])
    stats = jitted.stats()
    branch = _line_of(verifier, "if verdict")
    assert stats["hint"] is not None
    assert branch in stats["hint"] and "waited 4x" in stats["hint"]
    assert "a branch on a pending answer" in stats["hint"] and "xcs.map" in stats["hint"]
    [wait] = stats["waits"]
    assert wait["line"].endswith(branch) and wait["times"] == 4
    assert wait["waited_for"].startswith("a branch") and wait["seconds"] > 0

    text = str(xcs.trace(verifier, ["a", "bb"]))
    assert text.splitlines()[-1] == (
        f"waited 2x at {branch} for a branch on a pending answer (if/while/and/or) "
        + re.search(r"\(\d+\.\d\ds\)$", text).group()  # type: ignore[union-attr]
    )


def g_eval(criteria: list[str], samples: int = 3) -> float:
    """G-Eval's shape: sample scores per criterion, skip the ones that do not parse."""
    scores = []
    for criterion in criteria:
        for i in range(samples):
            reply = llm(f"Rate {criterion} ({i}) from 1 to 5")
            try:
                scores.append(int(reply.split()[-1] == "yes") + 1)
            except ValueError:
                continue
    return sum(scores) / len(scores)


def test_the_g_eval_shape_names_its_try() -> None:
    jitted = xcs.jit(g_eval)
    assert jitted(["coherence", "fluency"]) == g_eval(["coherence", "fluency"])
    hint = jitted.stats()["hint"]
    assert hint is not None and _line_of(g_eval, "try:") in hint
    assert "try/with" in hint and "xcs.map" in hint


def test_a_library_call_on_each_answer_is_named_with_xcs_pure() -> None:
    def quoted(questions: list[str]) -> list[str]:
        return [urllib.parse.quote(llm(q)) for q in questions]

    jitted = xcs.jit(quoted)
    assert jitted(["a", "b", "c"]) == quoted(["a", "b", "c"])
    hint = jitted.stats()["hint"]
    assert "3 ops ran one at a time" in hint
    assert "the library call quote()" in hint and "xcs.pure" in hint


def test_a_callee_behind_lru_cache_is_named() -> None:
    @functools.lru_cache
    def cached(q: str) -> str:
        return llm(q)

    def uses_cache(questions: list[str]) -> list[str]:
        return [cached(q) for q in questions]

    jitted = xcs.jit(uses_cache)
    jitted(["x1", "x2", "x3"])
    hint = jitted.stats()["hint"]
    assert "cached" in hint and "functools.lru_cache" in hint


def test_ops_on_the_functions_own_threads_are_counted_and_said() -> None:
    def own_pool(questions: list[str]) -> list[str]:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return list(pool.map(llm, questions))

    jitted = xcs.jit(own_pool)
    assert jitted(["a", "b", "c"]) == own_pool(["a", "b", "c"])
    stats = jitted.stats()
    assert stats["ops_on_own_threads"] == 3
    assert "threads the function started itself" in stats["hint"]


def test_a_parallel_program_gets_no_hint_and_no_repeated_waits() -> None:
    def ensemble(question: str) -> str:
        drafts = [llm(f"{question} ({i})") for i in range(5)]
        best = max(drafts, key=len)  # one wait, after every draft was asked for
        return llm(f"polish {best}")

    jitted = xcs.jit(ensemble)
    jitted("why?")
    stats = jitted.stats()
    assert stats["hint"] is None
    assert [w["times"] for w in stats["waits"]] == [1]
    assert stats["ops_on_own_threads"] == 0


def test_waits_inside_xcs_map_items_do_not_count_as_own_threads() -> None:
    def per_item(q: str) -> str:
        return verifier([q])[0]

    def mapped(questions: list[str]) -> list[str]:
        return xcs.map(per_item, questions)

    jitted = xcs.jit(mapped)
    assert jitted(["a", "bb", "ccc"]) == verifier(["a", "bb", "ccc"])
    assert jitted.stats()["ops_on_own_threads"] == 0
