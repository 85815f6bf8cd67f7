"""``python -m ember demo``: an ensemble -> judge pipeline, run plainly and under ``@jit``.

For each question an ensemble of model calls drafts answers and a judge call
synthesizes one. The pipeline is plain sequential Python built from
``ember.operators``; the demo runs it as is, then under ``@xcs.jit``, and prints both
wall times, the speedup, the answers, the trace of one question, and writes the
drawing of that trace.

By default the model is ``simulated/chat`` (offline, deterministic, each call
sleeping ``--latency`` seconds), so the two runs must agree exactly. With
``--model`` it calls a real model (``gpt-4o-mini``: key from ``OPENAI_API_KEY``), and
with ``--base-url`` any OpenAI-compatible endpoint (its key from the variable
``--api-key-env`` names); a sampling model may then answer differently in the two runs.

This file is rewritten by ``@jit`` like user code (see ``source._EMBER_USER``).
"""

from __future__ import annotations

import pathlib
import sys
import threading
import time
from typing import Any

from ember import models, operators, xcs

QUESTIONS = [
    "Why is the sky blue?",
    "What makes bread rise?",
    "Why do cats purr?",
    "What causes the tides?",
    "Why does ice float?",
]
DEFAULT_OUT = "ember-demo.svg"


class AnswerQuestion(operators.Operator):
    """Drafts from an ensemble, then a judge's final answer."""

    def __init__(self, ensemble: operators.Ensemble, judge: operators.JudgeSynthesis) -> None:
        self.ensemble = ensemble
        self.judge = judge

    def forward(self, question: str) -> str:
        """The judge's final answer to ``question``."""
        drafts = self.ensemble(question)
        answer: str = self.judge(question, drafts).final_answer
        return answer


def answer_all(pipeline: AnswerQuestion, questions: list[str]) -> list[str]:
    """Answer every question, one after another (as plain Python reads)."""
    return [pipeline(question) for question in questions]


def build(
    width: int,
    latency: float,
    model: str | None,
    base_url: str | None,
    api_key_env: str | None = None,
) -> tuple[AnswerQuestion, str]:
    """The pipeline and a description of the model it calls."""
    if model is None and base_url is None:
        binding = models.instance("simulated/chat", latency=latency)
        where = f"simulated model, {latency * 1000:.0f} ms a call"
    else:
        name = model or "chat"
        if base_url is not None and "/" not in name:
            name = f"openai/{name}"
        binding = models.instance(name, base_url=base_url, api_key_env=api_key_env)
        where = f"{binding.model_id}" + (f" at {base_url}" if base_url else "")
    # Seeds make repeated members differ (OpenAI-style APIs and the simulation use them).
    seed = None if binding.provider.name == "anthropic" else 0
    ensemble = operators.UniformEnsemble(width, binding, seed=seed)
    return AnswerQuestion(ensemble, operators.JudgeSynthesis(binding)), where


def _timed(label: str, run: Any, calls: int) -> tuple[list[str], float]:
    """Run ``run()`` with a progress bar of model calls; returns its result and seconds."""
    from tqdm import tqdm

    lock = threading.Lock()
    with tqdm(total=calls, desc=label, unit="call", leave=False, file=sys.stderr) as bar:

        def tick(event: models.CallEvent) -> None:
            with lock:
                bar.update(1)

        remove = models.on_call(tick)
        try:
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
        finally:
            remove()
    return result, seconds


def _draw(trace: xcs.Trace, out: str | None) -> int:
    path = pathlib.Path(out or DEFAULT_OUT)
    try:
        written = trace.draw(path)
    except ImportError as error:
        print(f"\nDrawing skipped: {error}")
        return 0
    except (OSError, ValueError) as error:
        print(f"\nCould not write the drawing to {path}: {error}", file=sys.stderr)
        return 1
    print(f"\nThe drawing of this graph: {written}")
    return 0


def main(
    width: int = 8,
    latency: float = 0.1,
    *,
    questions: int = len(QUESTIONS),
    out: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> int:
    """Run the demo; returns the process exit status."""
    asked = QUESTIONS[:questions]
    try:
        pipeline, where = build(width, latency, model, base_url, api_key_env)
    except models.ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    calls = len(asked) * (width + 1)
    print(f"{len(asked)} questions x ({width} drafts + 1 judge) = {calls} calls; {where}\n")
    try:
        plain, plain_s = _timed("plain Python", lambda: answer_all(pipeline, asked), calls)
        # Once per process, jit rewrites the code it runs: done here by a trace that
        # calls no model, so the timing below is the pipeline's, and no call is paid twice.
        start = time.perf_counter()
        xcs.trace(answer_all, pipeline, asked, execute=False)
        prepare_s = time.perf_counter() - start
        jitted = xcs.jit(answer_all)
        fast, jit_s = _timed("@xcs.jit", lambda: jitted(pipeline, asked), calls)
    except models.ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    same = "same answers" if fast == plain else "answers differ: the model samples"
    print(f"plain Python: {plain_s:6.2f} s")
    print(f"@xcs.jit:     {jit_s:6.2f} s   ({plain_s / jit_s:.1f}x faster, {same})")
    print(f"  (before the first call, once per process: {prepare_s * 1000:.0f} ms to rewrite")
    print("   the pipeline for @jit and trace it without calling the model)\n")
    for question, answer in zip(asked, fast, strict=True):
        print(f"  {question:<26} -> {answer}")
    trace = xcs.trace(answer_all, pipeline, asked[:1])
    print(
        f"\nThe graph of one question: {sum(len(group) for group in trace.parallel_groups)} ops in "
        f"{len(trace.parallel_groups)} parallel groups"
    )
    print(trace)
    return _draw(trace, out)
