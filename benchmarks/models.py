"""Models benchmark: an ensemble + judge pipeline through the ``openai`` SDK over HTTP.

Run by hand (not part of the test suite)::

    python benchmarks/models.py                      # 10 questions x (8 drafts + judge), 200 ms
    python benchmarks/models.py --repeat 9 --latency 0.2

Every call goes through the real ``openai`` SDK to :class:`ember.models.server.LocalLLMServer`
on loopback, which answers after ``--latency`` seconds. The server runs in its own
process (``python -m ember serve``), as a real endpoint would, so its work does not
compete with the client for the GIL (``--in-process`` to run it on a thread here).
The same pipeline runs:

* sequentially (plain Python, one call at a time);
* under ``@xcs.jit`` with its defaults (the shared pool of 64 threads, the openai
  provider's limit of 32 requests in flight);
* under ``@xcs.jit(max_workers=N)`` with the provider limit raised to N, N the number
  of calls (what the hand-written versions below get);
* hand-written with a ``ThreadPoolExecutor`` (all drafts submitted at once, each
  judge submitted as soon as its question's drafts are in);
* hand-written with ``asyncio.gather`` on ``openai.AsyncOpenAI``;
* and the ideal: the critical path, two calls (a draft, then the judge).

Medians over ``--repeat`` runs (sequential once: it is long), with the min-max range;
every run's answers are checked against the sequential ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from ember import models, operators, xcs
from ember.models.providers import OpenAIProvider
from ember.models.server import LocalLLMServer

QUESTIONS = [f"Question {i}: why does thing {i} happen?" for i in range(100)]


def timed(fn: Callable[[], Any], repeat: int, expected: Any) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        assert result == expected, "a run answered differently from the sequential one"
    return times


def show(label: str, times: list[float], ideal: float) -> None:
    med = statistics.median(times)
    print(
        f"  {label:<42} {med:8.3f} s  ({min(times):.3f}-{max(times):.3f})"
        f"  {med / ideal:6.2f}x ideal"
    )


def model_waves(trace: xcs.Trace, name: str) -> list[int]:
    """Calls of model ``name`` in each parallel group of ``trace`` (groups without any left out)."""
    counts = [sum(trace.graph.nodes[op]["name"] == name for op in g) for g in trace.parallel_groups]
    return [n for n in counts if n]


def pipeline_for(model: models.ModelBinding, width: int) -> Callable[[list[str]], list[str]]:
    ensemble = operators.UniformEnsemble(width, model, seed=0)
    judge = operators.JudgeSynthesis(model)

    def answer_all(questions: list[str]) -> list[str]:
        return [judge(q, ensemble(q)).final_answer for q in questions]

    return answer_all


def thread_pool(base_url: str, questions: list[str], width: int) -> list[str]:
    """The hand-written version a careful engineer writes with a thread pool."""
    client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)

    def ask(prompt: str, seed: int | None = None) -> str:
        extra = {} if seed is None else {"seed": seed}
        reply = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": prompt}], **extra
        )
        return reply.choices[0].message.content or ""

    def judge(question: str, drafts: list[str]) -> str:
        candidates = "\n".join("- " + d for d in drafts)
        prompt = operators.JudgeSynthesis.PROMPT.format(question=question, candidates=candidates)
        return operators.reasoning.parse_judgement(ask(prompt)).final_answer

    with ThreadPoolExecutor(max_workers=len(questions) * width) as pool:
        drafts = [[pool.submit(ask, q, i) for i in range(width)] for q in questions]
        judges = [
            pool.submit(lambda q=q, fs=fs: judge(q, [f.result() for f in fs]))
            for q, fs in zip(questions, drafts, strict=True)
        ]
        return [f.result() for f in judges]


def async_gather(base_url: str, questions: list[str], width: int) -> list[str]:
    """The hand-written version with asyncio.gather."""

    async def main() -> list[str]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)

        async def ask(prompt: str, seed: int | None = None) -> str:
            extra = {} if seed is None else {"seed": seed}
            reply = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": prompt}], **extra
            )
            return reply.choices[0].message.content or ""

        async def one(question: str) -> str:
            drafts = await asyncio.gather(*(ask(question, i) for i in range(width)))
            candidates = "\n".join("- " + d for d in drafts)
            prompt = operators.JudgeSynthesis.PROMPT.format(
                question=question, candidates=candidates
            )
            return operators.reasoning.parse_judgement(await ask(prompt)).final_answer

        try:
            return list(await asyncio.gather(*(one(q) for q in questions)))
        finally:
            await client.close()

    return asyncio.run(main())


@contextlib.contextmanager
def serving(latency: float, in_process: bool) -> Iterator[str]:
    """The OpenAI base URL of a local server, on a thread here or in its own process."""
    if in_process:
        with LocalLLMServer(latency=latency) as server:
            yield server.openai_base_url
            print(f"\n  server: peak {server.peak_concurrency} requests in flight")
        return
    command = [sys.executable, "-m", "ember", "serve", "--port", "0", "--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        yield line.split("OpenAI base URL: ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--in-process", action="store_true", help="serve on a thread here")
    args = parser.parse_args()
    questions = QUESTIONS[: args.questions]
    calls = args.questions * (args.width + 1)
    ideal = 2 * args.latency

    with serving(args.latency, args.in_process) as url:
        print(
            f"{args.questions} questions x ({args.width} drafts + 1 judge) = {calls} calls "
            f"of {args.latency * 1000:.0f} ms, openai SDK -> {url}\n"
        )
        default = OpenAIProvider(base_url=url)
        unbounded = OpenAIProvider(base_url=url, max_concurrency=calls)
        models.register_provider("bench", default)
        models.register_provider("bench_unbounded", unbounded)
        plain = pipeline_for(models.instance("bench/chat"), args.width)
        wide = pipeline_for(models.instance("bench_unbounded/chat"), args.width)
        jit_default, jit_wide = xcs.jit(plain), xcs.jit(max_workers=calls)(wide)

        start = time.perf_counter()
        expected = plain(questions)
        sequential = time.perf_counter() - start
        jit_default(questions)  # warm: SDK clients, connections, the rewrite
        jit_wide(questions)
        thread_pool(url, questions, args.width)

        waves = model_waves(xcs.trace(plain, questions), "bench/chat")
        ideal_waves = [args.questions * args.width, args.questions]
        print(f"  model calls per parallel group under @jit: {waves} (ideal {ideal_waves})")
        if waves != ideal_waves:
            sys.exit("the pipeline lost its parallel structure under @jit")
        overhead = (sequential - calls * args.latency) / calls * 1e3
        print(f"  {'sequential (plain Python)':<42} {sequential:8.3f} s")
        print(f"    (SDK + HTTP cost per call beyond the latency: {overhead:.1f} ms)")
        show(
            f"@jit, 64 threads, provider limit {default.max_concurrency}",
            timed(lambda: jit_default(questions), args.repeat, expected),
            ideal,
        )
        show(
            f"@jit(max_workers={calls}), provider limit {calls}",
            timed(lambda: jit_wide(questions), args.repeat, expected),
            ideal,
        )
        show(
            f"ThreadPoolExecutor({calls}), hand-written",
            timed(lambda: thread_pool(url, questions, args.width), args.repeat, expected),
            ideal,
        )
        show(
            "asyncio.gather + AsyncOpenAI, hand-written",
            timed(lambda: async_gather(url, questions, args.width), args.repeat, expected),
            ideal,
        )
        print(f"  {'ideal (critical path: 2 calls)':<42} {ideal:8.3f} s")


if __name__ == "__main__":
    main()
