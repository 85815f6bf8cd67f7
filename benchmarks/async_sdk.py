"""Async benchmark: sequential awaits of ``AsyncOpenAI`` under ``@jit`` vs ``asyncio.gather``.

Run by hand (not part of the test suite)::

    python benchmarks/async_sdk.py                   # 10 questions x (8 drafts + judge), 200 ms
    python benchmarks/async_sdk.py --questions 2 --width 2 --latency 0.01 --repeat 1  # tiny
    python benchmarks/async_sdk.py --paired 20       # also: @jit / gather, run in turn

Each question's pipeline is written as async code reads naturally -- one ``await`` after
another: eight drafts, then a judge that reads them -- and the questions one after
another. Every call goes through the real ``openai.AsyncOpenAI`` client to
:class:`ember.models.server.LocalLLMServer` (in its own process, ``python -m ember
serve``), which answers after ``--latency`` seconds. The same work runs:

* plainly (the awaits one after another);
* under ``@xcs.jit`` (the awaits overlap: all drafts at once, then all judges), with
  its defaults (32 requests in flight per endpoint for the openai SDK) and with as many
  allowed as there are calls (what the hand-written version gets);
* hand-written with ``asyncio.gather`` (drafts gathered per question, questions
  gathered): what ``@jit`` spares the user from writing;
* and the ideal: the critical path, two calls.

A ticker task on the same loop measures the longest stall of the loop during each
run. Medians over ``--repeat`` runs with the min-max range; every run's
answers are checked against the plain ones, and the ``@jit`` structure (parallel
groups) is printed and checked: the script exits non-zero when it is lost. With
``--paired N``, ``@jit`` (as many in flight as calls) and ``asyncio.gather`` then run
in turn N times each, and the median of their ratios is printed: the fairest
comparison on a machine whose speed drifts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import pathlib
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import openai

from ember import xcs

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from models import serving  # benchmarks/models.py: the server in its own process

QUESTIONS = [f"Question {i}: why does thing {i} happen?" for i in range(100)]


async def ask(client: Any, prompt: str) -> str:
    resp = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], temperature=0
    )
    return str(resp.choices[0].message.content)


def sequential_pipeline(width: int) -> Callable[[Any, list[str]], Coroutine[Any, Any, list[str]]]:
    async def answer_all(client: Any, questions: list[str]) -> list[str]:
        answers = []
        for question in questions:
            drafts = []
            for i in range(width):
                resp = await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"{question} (draft {i})"}],
                    temperature=0,
                )
                drafts.append(resp.choices[0].message.content.strip())
            pick = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Pick one:\n" + "\n".join(drafts)}],
                temperature=0,
            )
            answers.append(pick.choices[0].message.content)
        return answers

    return answer_all


def gathered_pipeline(width: int) -> Callable[[Any, list[str]], Coroutine[Any, Any, list[str]]]:
    async def answer_all(client: Any, questions: list[str]) -> list[str]:
        async def one(question: str) -> str:
            drafts = await asyncio.gather(
                *[ask(client, f"{question} (draft {i})") for i in range(width)]
            )
            return await ask(client, "Pick one:\n" + "\n".join(d.strip() for d in drafts))

        return list(await asyncio.gather(*[one(q) for q in questions]))

    return answer_all


async def _ticker(ticks: list[float]) -> None:
    """Ticks every 5 ms while the loop is free (the gaps show when it was not)."""
    while True:
        await asyncio.sleep(0.005)
        ticks.append(time.perf_counter())


async def measure(args: argparse.Namespace, base_url: str) -> int:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    questions = QUESTIONS[: args.questions]
    plain = sequential_pipeline(args.width)
    jitted = xcs.jit(plain)
    gathered = gathered_pipeline(args.width)
    calls = args.questions * (args.width + 1)
    print(
        f"{args.questions} questions x ({args.width} drafts + 1 judge) = {calls} calls of "
        f"{args.latency * 1000:.0f} ms, openai.AsyncOpenAI -> {base_url}\n"
    )
    expected = await plain(client, questions)  # (also warms the connection pool up)
    trace = await xcs.trace(plain, client, questions)
    groups = [
        sum(1 for n in group if trace.graph.nodes[n]["kind"] == "op")
        for group in trace.parallel_groups
    ]
    groups = [g for g in groups if g]
    ideal_groups = [args.questions * args.width, args.questions]
    print(f"  model calls per parallel group under @jit: {groups} (ideal {ideal_groups})\n")
    stalls: dict[str, float] = {}

    async def timed(
        label: str, run: Callable[[], Coroutine[Any, Any, list[str]]], repeat: int
    ) -> tuple[str, list[float]]:
        times = []
        for _ in range(repeat):
            ticks: list[float] = []
            task = asyncio.create_task(_ticker(ticks))
            await asyncio.sleep(0)
            start = time.perf_counter()
            result = await run()
            end = time.perf_counter()
            task.cancel()
            marks = [start, *ticks, end]
            stall = max(b - a for a, b in itertools.pairwise(marks))
            stalls[label] = max(stalls.get(label, 0.0), stall)
            times.append(end - start)
            assert result == expected, "a run answered differently from the plain one"
        return label, times

    ideal = 2 * args.latency
    rows = [
        await timed("plain (awaits in a row)", lambda: plain(client, questions), 1),
        await timed("@xcs.jit", lambda: jitted(client, questions), args.repeat),
    ]
    # As the hand-written versions: no bound on requests in flight (the SDK's default
    # entry allows 32 per endpoint), and a pool as wide as the calls.
    xcs.register_op("openai.resources.chat:AsyncCompletions.create", max_concurrency=calls)
    wide = xcs.jit(max_workers=calls)(plain)
    rows.append(
        await timed(
            f"@xcs.jit, {calls} in flight allowed",
            lambda: wide(client, questions),
            args.repeat,
        )
    )
    xcs.register_op("openai.resources.chat:AsyncCompletions.create", max_concurrency=32)
    rows.append(
        await timed(
            "asyncio.gather (hand-written)", lambda: gathered(client, questions), args.repeat
        )
    )
    print(f"  {'':34} {'median (min-max)':>24} {'x ideal':>8} {'longest stall':>14}")
    for label, times in rows:
        median = statistics.median(times)
        spread = f"({min(times):.3f}-{max(times):.3f})" if len(times) > 1 else ""
        stall = f"{stalls[label] * 1000:.0f} ms"
        print(f"  {label:34} {median:8.3f} s {spread:>15} {median / ideal:7.2f}x {stall:>14}")
    print(f"  {'ideal (critical path: 2 calls)':34} {ideal:8.3f} s")
    print(
        "\n  longest stall: the longest the event loop went without running the ticker "
        "task (5 ms period)"
    )
    if args.paired:
        xcs.register_op("openai.resources.chat:AsyncCompletions.create", max_concurrency=calls)
        ratios = []
        for _ in range(args.paired):
            _, (gather_s,) = await timed("paired", lambda: gathered(client, questions), 1)
            _, (jit_s,) = await timed("paired", lambda: wide(client, questions), 1)
            ratios.append(jit_s / gather_s)
        xcs.register_op("openai.resources.chat:AsyncCompletions.create", max_concurrency=32)
        print(
            f"\n  @xcs.jit ({calls} in flight) / asyncio.gather, {args.paired} runs in turn: "
            f"median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
            f"max {max(ratios):.3f})"
        )
    await client.close()
    return 0 if groups == ideal_groups else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--paired", type=int, default=0, metavar="N")
    args = parser.parse_args()
    with serving(args.latency, in_process=False) as base_url:
        status = asyncio.run(measure(args, base_url))
    if status:
        print("\n  the @jit structure was lost", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
