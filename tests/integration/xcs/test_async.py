"""``async def`` under ``@jit``: awaits of ops overlap, values and exceptions stay exact.

Each program runs plainly (``asyncio.run`` of the un-jitted function) and jitted, on the
same inputs; the results and the exceptions must be equal, and the op calls (as a
multiset) too when no op fails (after a failure, ops that had already started may have
been called as well, as in the sync contract). Timing checks are ratios with generous
margins.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ember import xcs

CALLS: list[str] = []
LATENCY = 0.1


@xcs.op
async def llm(prompt: str) -> str:
    CALLS.append(prompt)
    await asyncio.sleep(LATENCY)
    if "bad" in prompt:
        raise ValueError(f"refused: {prompt}")
    return f"<{prompt}>"


@xcs.op
def sync_llm(prompt: str) -> str:
    CALLS.append(f"sync {prompt}")
    time.sleep(LATENCY)
    return f"[{prompt}]"


# --- programs -------------------------------------------------------------------------


async def sequential(question: str) -> str:
    drafts = [await llm(f"{question} (try {i})") for i in range(5)]
    return await llm("Pick the best:\n" + "\n".join(drafts))


async def branching(question: str) -> list[Any]:
    first = await llm(question)
    second = await llm("then " + first) if "x" in first else "none"
    out = []
    for i in range(3):
        try:
            out.append(await llm(f"bad {i}" if i == 1 else f"ok {i}"))
        except ValueError as error:
            out.append(str(error))
    return [first, second, out]


async def fails_after_others(question: str) -> list[str]:
    kept = [await llm(f"{question} {i}") for i in range(3)]
    await llm("bad one")
    kept.append(await llm("never asked"))
    return kept


async def first_failure_in_program_order(question: str) -> list[str]:
    return [await llm(f"bad {question} {i}") for i in range(3)]


async def gathered(question: str) -> Any:
    pair = await asyncio.gather(llm(question + " 1"), llm(question + " 2"))
    return pair, await asyncio.gather(*[llm(p) for p in pair])


async def helper(question: str) -> str:
    return (await llm(question)).upper()


async def nested_helpers(question: str) -> list[str]:
    return [await helper(f"{question} {i}") for i in range(4)]


async def numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


class Session:
    def __init__(self) -> None:
        self.log: list[str] = []

    async def __aenter__(self) -> Session:
        self.log.append("open")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.log.append("close")


async def async_for_and_with(question: str) -> Any:
    answers = []
    async for i in numbers(3):
        answers.append(await llm(f"{question} {i}"))
    async with Session() as session:
        session.log.append(await llm("inside"))
    return answers, session.log


async def sync_ops_awaited_around(question: str) -> list[str]:
    plain = [sync_llm(f"{question} {i}") for i in range(3)]
    awaited = [await llm(p) for p in plain]
    return [p.upper() for p in awaited]


async def parses_each_answer(question: str) -> dict[str, int]:
    lengths = {}
    for i in range(4):
        reply = await llm(f"{question} {i}")
        lengths[reply] = len(reply.strip("<>"))
    return lengths


async def awaited_later(question: str) -> list[str]:
    pending = [llm(f"{question} {i}") for i in range(3)]  # coroutines: nothing runs yet
    CALLS.append("between")
    return [await p for p in pending]


async def never_awaited(question: str) -> str:
    llm(f"{question} dropped").close()  # a coroutine never awaited never runs
    return await llm(question)


async def library_calls_ops_back(question: str) -> Any:
    first = await llm(question)  # pending while library code calls the sync op back
    shouted = list(map(sync_llm, [question, "b"]))
    ranked = sorted([question, "zz"], key=sync_llm)
    mapped = map(sync_llm, ["late"])
    second = await llm(first)
    return first, shouted, ranked, list(mapped), second


async def branches_on_answers(question: str) -> Any:
    first = await llm(question)
    second = await llm(question + " 2")
    flags = [len(first) > 3, not second, first if len(second) > 100 else "short"]
    while len(first) < 12:
        first = await llm(first)
    assert len(first) >= 12, "never fails"
    either = second and first
    kept = [a for a in [first, second] if len(a) > 4]
    match len(second):
        case 0:
            size = "empty"
        case _:
            size = "some"
    return flags, first, either, kept, size


async def generator_of_answers(question: str) -> list[str]:
    answers = [await llm(f"{question} {i}") for i in range(3)]
    return sorted(a.upper() for a in answers)


async def mapped_items(question: str) -> Any:
    first = await llm(question)
    fine = await xcs.map(draft_verify_revise, [question, first])
    failing = await xcs.map(draft_verify_revise, [first, f"wrong {question}", "later"])
    return fine, failing


# Sync helpers of the user's, called from async code: each waits where it needs an
# answer (an await under @jit: no blocked loop, no warning), and stays exact.


def score(reply: str) -> int:
    if "1" in reply:  # a branch on the answer, inside a sync helper
        return 1
    return len(reply) % 3


def repeated(reply: str, *, times: int = 2, sep: str = " ") -> str:
    words = []
    for _ in range(times):
        words.append(reply.upper())
    return sep.join(words) if reply else "none"


class Grader:
    def __init__(self, bar: int) -> None:
        self.bar = bar
        self.seen: list[str] = []

    def grade(self, reply: str) -> str:
        self.seen.append(reply)
        return "pass" if len(reply) > self.bar else "fail"


class StrictGrader(Grader):
    def grade(self, reply: str) -> str:
        verdict = super().grade(reply)  # zero-argument super() in a helper's method
        return verdict.upper() if verdict == "pass" else verdict


def depth(reply: str, n: int) -> int:
    return 0 if n == 0 or not reply else 1 + depth(reply[1:], n - 1)


def words_of(reply: str) -> Any:  # a generator: stays sync, as library code takes it
    for part in reply.split(" "):
        if part:
            yield part


def asks_again(reply: str) -> str:
    if reply.endswith(("1>", "3>")):
        return sync_llm(reply)  # an op called from the helper: deferred
    return reply


def refuses(reply: str) -> str:
    if "2" in reply:
        raise KeyError(reply)
    return reply


async def sync_helpers_branch_on_answers(question: str) -> Any:
    grader = StrictGrader(6)
    out: list[Any] = []
    limit = 2

    def short(reply: str) -> bool:  # a closure of the async function, branching too
        return len(reply) < limit * 5 if reply else False

    for i in range(4):
        reply = await llm(f"{question} {i}")
        out.append(
            (
                score(reply),
                repeated(reply, times=1),
                grader.grade(reply),
                depth(reply, 3),
                list(words_of(reply)),
                asks_again(reply),
                short(reply),
            )
        )
    try:
        refuses(await llm(question + " 2"))
    except KeyError as error:
        out.append(repr(error))
    out.append(grader.seen)
    return out


PROGRAMS: list[Callable[[str], Awaitable[Any]]] = [
    sequential,
    branching,
    fails_after_others,
    first_failure_in_program_order,
    gathered,
    nested_helpers,
    async_for_and_with,
    sync_ops_awaited_around,
    parses_each_answer,
    awaited_later,
    never_awaited,
    library_calls_ops_back,
    branches_on_answers,
    generator_of_answers,
    mapped_items,
    sync_helpers_branch_on_answers,
]


async def _outcome(fn: Callable[[str], Awaitable[Any]], arg: str) -> tuple[Any, ...]:
    CALLS.clear()
    try:
        result, error = await fn(arg), None
    except Exception as exc:
        result, error = None, (type(exc), str(exc))
    return result, error, Counter(CALLS)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_jit_of_an_async_program_is_the_program(program: Callable[[str], Awaitable[Any]]) -> None:
    plain = asyncio.run(_outcome(program, "q x"))
    jitted = asyncio.run(_outcome(xcs.jit(program), "q x"))
    assert jitted[:2] == plain[:2]
    if plain[1] is None:
        assert jitted[2] == plain[2]  # every op called exactly as often
    else:  # after a failure, ops already started may have been called too
        assert not plain[2] - jitted[2]


def test_an_op_failure_is_the_same_object_with_a_note() -> None:
    async def run() -> ValueError:
        with pytest.raises(ValueError) as info:
            await xcs.jit(first_failure_in_program_order)("z")
        return info.value

    error = asyncio.run(run())
    assert str(error) == "refused: bad z 0"
    assert any("llm" in note for note in getattr(error, "__notes__", []))


# --- overlap, and a loop that keeps running -----------------------------------------------


def test_sequential_awaits_overlap_and_the_loop_keeps_running() -> None:
    async def run() -> tuple[float, float, int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        start = time.perf_counter()
        plain = await sequential("q")
        plain_s = time.perf_counter() - start
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = time.perf_counter()
        fast = await xcs.jit(sequential)("q")
        jit_s = time.perf_counter() - start
        during = ticks
        task.cancel()
        assert fast == plain
        return plain_s, jit_s, during, len(CALLS)

    plain_s, jit_s, ticks, _ = asyncio.run(run())
    assert jit_s < plain_s * 0.6  # 6 calls in 2 waves instead of 6 in a row
    assert ticks >= 0.3 * jit_s / 0.005  # the loop was never blocked for long


def test_the_trace_shows_one_wave_of_drafts() -> None:
    jitted = xcs.jit(sequential)
    asyncio.run(jitted("q"))
    stats = jitted.stats()
    assert stats["ops"] == 6 and stats["max_parallelism"] == 5


# --- cancellation and timeouts -----------------------------------------------------------------

SLOW = 5.0  # seconds a slow op would take: the calls below end long before that
STARTED: list[str] = []
CANCELLED: list[str] = []


@xcs.op
async def slow(prompt: str) -> str:
    STARTED.append(prompt)
    try:
        await asyncio.sleep(SLOW)
    except asyncio.CancelledError:
        CANCELLED.append(prompt)
        raise
    return prompt


async def slow_program(question: str) -> list[str]:
    first = [await slow(f"{question} {i}") for i in range(3)]
    return first + [await slow("after " + first[0])]  # waits for the first


def test_cancelling_the_awaiting_task_cancels_the_running_ops() -> None:
    STARTED.clear()
    CANCELLED.clear()

    async def run() -> float:
        task = asyncio.create_task(xcs.jit(slow_program)("q"))
        await asyncio.sleep(0.3)
        start = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.perf_counter() - start

    took = asyncio.run(run())
    assert took < SLOW / 5  # cancelled, not waited for
    assert sorted(STARTED) == ["q 0", "q 1", "q 2"]  # "after" never started
    deadline = time.monotonic() + 2
    while len(CANCELLED) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(CANCELLED) == sorted(STARTED)


def test_asyncio_timeout_around_a_jitted_call() -> None:
    async def run() -> None:
        async with asyncio.timeout(0.3):
            await xcs.jit(slow_program)("t")

    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        asyncio.run(run())
    assert time.perf_counter() - start < SLOW / 3  # the running calls were cancelled


def test_jit_timeout_fails_a_running_async_op_and_cancels_it() -> None:
    STARTED.clear()
    CANCELLED.clear()
    start = time.perf_counter()
    with pytest.raises(xcs.OpTimeoutError) as info:
        asyncio.run(xcs.jit(timeout=0.2)(slow_program)("t"))
    assert time.perf_counter() - start < SLOW / 3
    assert "slow" in str(info.value)
    assert sorted(STARTED) == ["t 0", "t 1", "t 2"]  # the one after them never started
    assert sorted(CANCELLED) == sorted(STARTED)  # stopped: each one cancelled


# --- context, and async ops from sync code ---------------------------------------------------

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


@xcs.op
async def tagged(prompt: str) -> str:
    await asyncio.sleep(0.01)
    return f"{REQUEST.get()}:{prompt}"


async def with_context(question: str) -> list[str]:
    out = []
    for tag in ("a", "b"):
        REQUEST.set(tag)
        out.append(await tagged(question))
    return out


def test_async_ops_see_the_contextvars_of_their_call() -> None:
    assert asyncio.run(xcs.jit(with_context)("q")) == ["a:q", "b:q"]


def test_an_async_op_called_from_sync_traced_code_returns_its_coroutine() -> None:
    def sync_program(question: str) -> str:
        coroutine = llm(question)
        return asyncio.run(coroutine)

    CALLS.clear()
    assert xcs.jit(sync_program)("s") == "<s>" and CALLS == ["s"]


# --- xcs.map over async items -------------------------------------------------------------


async def draft_verify_revise(question: str) -> str:
    draft = await llm(f"draft {question}")
    verdict = await llm(f"verify {draft}")
    if "wrong" in question:
        raise ValueError(f"cannot answer {question}")
    if "ok" in verdict:
        return draft
    return await llm(f"revise {draft}")


def test_xcs_map_runs_async_items_at_once_each_exact() -> None:
    questions = [f"q{i}" for i in range(6)]

    async def plain() -> list[str]:
        return [await draft_verify_revise(q) for q in questions]

    CALLS.clear()
    start = time.perf_counter()
    expected = asyncio.run(plain())
    plain_s = time.perf_counter() - start
    plain_calls = Counter(CALLS)
    CALLS.clear()
    start = time.perf_counter()
    got = asyncio.run(xcs.map(draft_verify_revise, questions))
    map_s = time.perf_counter() - start
    assert got == expected and Counter(CALLS) == plain_calls
    assert map_s < plain_s / 3  # 6 items side by side, 3 calls each


def test_xcs_map_of_async_items_raises_the_first_failing_item_in_item_order() -> None:
    questions = ["q0", "wrong 1", "q2", "wrong 3"]
    with pytest.raises(ValueError, match="cannot answer wrong 1") as info:
        asyncio.run(xcs.map(draft_verify_revise, questions))
    assert any("item 1 of 4" in note for note in info.value.__notes__)
    got = asyncio.run(xcs.map(draft_verify_revise, questions, return_exceptions=True))
    assert [type(r) for r in got] == [str, ValueError, str, ValueError]


async def draft_then_check_each(questions: list[str]) -> list[str]:
    drafts = [await llm(q) for q in questions]  # pending when xcs.map is awaited
    checked = await xcs.map(draft_verify_revise, drafts)
    return [c.upper() for c in checked]


def test_xcs_map_awaited_in_a_jitted_async_def_is_one_op_of_its_graph() -> None:
    questions = ["q0", "q1 x", "q2"]
    plain = asyncio.run(_outcome(draft_then_check_each, questions))
    jitted = asyncio.run(_outcome(xcs.jit(draft_then_check_each), questions))
    assert jitted == plain
    trace = asyncio.run(xcs.trace(draft_then_check_each, questions))
    maps = [
        n for n, d in trace.graph.nodes(data=True) if d["name"] == "xcs.map[draft_verify_revise]"
    ]
    assert len(maps) == 1
    node = trace.graph.nodes[maps[0]]
    assert node["kind"] == "op" and node["immediate"]  # in place, after the drafts
    assert len(node["items"]) == 3
    for graph in node["items"]:  # each item's own calls, recorded in its own graph
        assert [d["kind"] for _, d in graph.nodes(data=True)].count("op") >= 2
    drafts = [n for n, d in trace.graph.nodes(data=True) if d["name"] == "llm"]
    assert len(drafts) == 3 and all(n < maps[0] for n in drafts)


# --- the run on the loop: what an answer unblocks starts at once ------------------------


@xcs.op
async def takes(prompt: str, seconds: float) -> str:
    CALLS.append(prompt)
    await asyncio.sleep(seconds)
    return prompt


async def fast_and_slow_questions(question: str) -> list[str]:
    fast = [await takes(f"{question} fast {i}", 0.05) for i in range(3)]
    fast_pick = await takes("pick " + ", ".join(fast), 0.05)
    slow = [await takes(f"{question} slow {i}", 0.8) for i in range(3)]
    slow_pick = await takes("pick " + ", ".join(slow), 0.05)
    return [fast_pick.upper(), slow_pick.upper()]


def test_an_answer_unblocks_what_reads_it_at_once_on_the_loops_thread() -> None:
    plain = asyncio.run(_outcome(fast_and_slow_questions, "q"))
    jitted = asyncio.run(_outcome(xcs.jit(fast_and_slow_questions), "q"))
    assert jitted == plain

    async def traced() -> tuple[xcs.Trace, str]:
        trace = await xcs.trace(fast_and_slow_questions, "q")
        return trace, threading.current_thread().name

    trace, loop_thread = asyncio.run(traced())
    nodes = trace.graph.nodes
    ops = {d["name"]: d for _, d in nodes(data=True) if d["kind"] == "op"}
    assert len(ops) == 1  # all named "takes": look at them by start time instead
    calls = sorted((d for _, d in nodes(data=True) if d["kind"] == "op"), key=lambda d: d["start"])
    slow_ends = [d["end"] for d in calls[:6] if d["end"] - d["start"] > 0.5]
    fast_pick = calls[6]  # the six drafts start at once; the fast pick right after three
    assert len(slow_ends) == 3
    assert fast_pick["start"] < min(slow_ends) - 0.4  # not held back by the slow drafts
    glue = [d for _, d in nodes(data=True) if d["kind"] == "glue"]
    assert glue and {d["thread"] for d in glue} == {loop_thread}  # no hop to a thread


# --- threads the run still uses ------------------------------------------------------------


def test_nested_jitted_calls_in_sync_ops_of_an_async_body_on_a_one_thread_pool() -> None:
    with ThreadPoolExecutor(1) as pool:

        @xcs.jit(executor=pool)
        def leaf(x: str) -> list[str]:
            return [sync_llm(f"{x}.{i}") for i in range(2)]

        @xcs.op
        def middle(x: str) -> list[str]:
            return leaf(x)  # a jitted call inside an op on the pool's only worker

        async def top(question: str) -> list[Any]:
            return [middle(f"{question}{i}") for i in range(3)] + [await llm(question)]

        plain = asyncio.run(_outcome(top, "q"))
        jitted = asyncio.run(asyncio.wait_for(_outcome(xcs.jit(executor=pool)(top), "q"), 20))
        assert jitted == plain
