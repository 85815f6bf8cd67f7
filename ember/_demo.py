"""``python -m ember demo``: the same pipeline run plainly and under ``@jit``.

An ensemble of simulated LLM calls answers each question, then a judge call picks an
answer. The simulated calls sleep (like a network call) and return deterministic
text, so the demo needs no key and no network. It prints the wall time of the plain
function, of the jitted one, the speedup, and the trace of one call.
"""

from __future__ import annotations

import hashlib
import time

from ember import xcs

QUESTIONS = [
    "Why is the sky blue?",
    "What makes bread rise?",
    "Why do cats purr?",
]


def _pick(options: list[str], seed: str) -> str:
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return options[digest % len(options)]


@xcs.op(name="draft")
def draft(question: str, attempt: int, latency: float) -> str:
    """A simulated LLM call drafting an answer (deterministic for its inputs)."""
    time.sleep(latency)
    return _pick(["scattering", "chemistry", "physics", "history"], f"{question}/{attempt}")


@xcs.op(name="judge")
def judge(question: str, drafts: list[str], latency: float) -> str:
    """A simulated LLM call choosing the most common draft."""
    time.sleep(latency)
    return max(sorted(set(drafts)), key=drafts.count)


def answer_all(questions: list[str], width: int, latency: float) -> dict[str, str]:
    """Draft ``width`` answers per question, then judge each question's drafts."""
    answers = {}
    for question in questions:
        drafts = [draft(question, i, latency) for i in range(width)]
        answers[question] = judge(question, drafts, latency)
    return answers


def main(width: int = 8, latency: float = 0.1) -> int:
    """Run the demo; returns the process exit status."""
    print(
        f"{len(QUESTIONS)} questions x ({width} drafts + 1 judge), {latency * 1000:.0f} ms a call\n"
    )
    start = time.perf_counter()
    plain = answer_all(QUESTIONS, width, latency)
    plain_s = time.perf_counter() - start

    jitted = xcs.jit(answer_all)
    start = time.perf_counter()
    fast = jitted(QUESTIONS, width, latency)
    jit_s = time.perf_counter() - start

    assert fast == plain, "jit must compute what the plain function computes"
    print(f"plain Python: {plain_s:6.2f} s")
    print(f"@xcs.jit:     {jit_s:6.2f} s   ({plain_s / jit_s:.1f}x faster, same answers)\n")
    for question, answer in fast.items():
        print(f"  {question:<28} -> {answer}")
    trace = xcs.trace(answer_all, QUESTIONS[:1], width, latency)
    print(f"\nThe graph of one question ({len(trace.parallel_groups)} parallel groups):")
    print(trace)
    return 0
