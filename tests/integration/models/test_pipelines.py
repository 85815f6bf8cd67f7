"""Pipelines of models and operators: @jit returns, calls and raises what plain Python does."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from ember import models, xcs
from ember.models.providers import SimulatedProvider
from ember.operators import (
    Chain,
    JudgeSynthesis,
    MostCommon,
    Operator,
    Router,
    UniformEnsemble,
    Verifier,
)
from tests.helpers import waves


class Recorder(SimulatedProvider):
    """The simulation, logging every call (model, prompt, parameters, start, end)."""

    name = "rec"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, str, float, float]] = []
        self.since = 0.0

    def invoke(self, model_id, model, prompt, params):
        start = time.perf_counter()
        try:
            return super().invoke(model_id, model, prompt, params)
        finally:
            with self.lock:
                # A call that started before clear() is an earlier run's, still finishing
                # in the background after that run failed: not one of this run.
                if start >= self.since:
                    self.calls.append(
                        (
                            model,
                            str(prompt),
                            repr(sorted(params.items())),
                            start,
                            time.perf_counter(),
                        )
                    )

    def multiset(self) -> Counter:
        with self.lock:
            return Counter(call[:3] for call in self.calls)

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
            self.since = time.perf_counter()


REC = Recorder()
models.register_provider("rec", REC)

chat = models.instance("rec/chat", latency=0.02)
draft = UniformEnsemble(4, chat, seed=0)
other = UniformEnsemble(4, "rec/judge", seed=0, latency=0.02)
vote = MostCommon()
verify = Verifier(chat)
judge = JudgeSynthesis(chat)


def ensemble_then_judge(qs: list[str]) -> Any:
    return {q: judge(q, draft(q)).final_answer for q in qs}


def two_branches_then_judge(qs: list[str]) -> Any:
    out = []
    for q in qs:
        left = verify(q, vote(draft(q)))
        right = verify(q, vote(other(q)))
        out.append(judge(q, [left.revised_answer, right.revised_answer]))
    return out


def chained(qs: list[str]) -> Any:
    pick = Chain(draft, vote)
    return [pick(q).upper() for q in qs]


def routed(qs: list[str]) -> Any:
    router = Router(
        {"light": draft, "other": other}, lambda q: "light" if "sky" in q else "x", default="other"
    )
    return [router(q) for q in qs]


def module_calls(qs: list[str]) -> Any:
    replies = [models("rec/chat", f"Q: {q}", temperature=0.5) for q in qs]
    total = sum(r.usage["total_tokens"] for r in replies)
    longest = max(replies, key=lambda r: len(r.text)) if replies else None
    return [str(r) for r in replies], total, longest and longest.model_id


def a_failing_branch(qs: list[str]) -> Any:
    broken = models.instance("rec/chat", failure_rate=1.0)
    good = [chat(q) for q in qs]
    bad = broken(qs[0])
    more = [chat(q + "?") for q in qs]
    return good, bad.text, more


def caught_failure(qs: list[str]) -> Any:
    broken = models.instance("rec/chat", failure_rate=1.0)
    answers = []
    for q in qs:
        try:
            answers.append(broken(q).text)
        except models.ProviderError as error:
            answers.append(f"fallback after {error.attempts}: {chat(q).text}")
    return answers


def usage_inside(qs: list[str]) -> Any:
    models.reset_usage()
    texts = [chat(q).text for q in qs]
    return texts, models.usage("rec/chat")["calls"]


class Pipeline(Operator):
    def __init__(self) -> None:
        self.first = draft
        self.second = other

    def forward(self, q: str) -> Any:
        return judge(q, self.first(q) + self.second(q))


def custom_operator(qs: list[str]) -> Any:
    pipeline = Pipeline()
    return [pipeline(q).reasoning for q in qs]


PROGRAMS = [
    ensemble_then_judge,
    two_branches_then_judge,
    chained,
    routed,
    module_calls,
    a_failing_branch,
    caught_failure,
    usage_inside,
    custom_operator,
]
FAILING = {a_failing_branch}
INPUTS = [["Why is the sky blue?", "What makes bread rise?"], ["Why do cats purr?"]]


def _run(fn, qs):
    REC.clear()
    try:
        return ("value", fn(qs)), REC.multiset()
    except Exception as error:  # compared by type and text
        return ("raised", type(error), str(error)), REC.multiset()


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_jit_matches_plain_python(program):
    jitted = xcs.jit(program)
    for qs in INPUTS:
        expected, expected_calls = _run(program, qs)
        got, calls = _run(jitted, qs)
        assert got == expected
        if program in FAILING:
            # Calls after a failure in program order may have started beside it
            # (docs/exactness.md); every call plain Python made was made.
            assert not expected_calls - calls
        else:
            assert calls == expected_calls  # every model call made exactly as often


# Model calls per parallel group on INPUTS[0] (2 questions): the ideal structure, so a
# line that makes a pipeline wait (``type(answers) is str``) fails the day it is written.
IDEAL_WAVES = {
    ensemble_then_judge: [8, 2],  # 2 x 4 drafts, then 2 judges
    two_branches_then_judge: [16, 4, 2],  # 2 x 2 ensembles, 4 verifiers, 2 judges
    chained: [8],
    routed: [8],
    module_calls: [2],
    caught_failure: [1, 1, 1, 1],  # a try around each call: one after another (docs)
    usage_inside: [2],
    custom_operator: [16, 2],
}


@pytest.mark.parametrize("program", list(IDEAL_WAVES), ids=lambda p: p.__name__)
def test_each_pipeline_gets_its_ideal_waves(program):
    trace = xcs.trace(program, INPUTS[0])
    assert waves(trace, "rec/chat", "rec/judge") == IDEAL_WAVES[program]


def test_two_ensemble_verify_branches_run_in_parallel_before_the_judge():
    questions = ["Why is the sky blue?"]
    trace = xcs.trace(two_branches_then_judge, questions)
    groups = [
        sorted(trace.graph.nodes[n]["name"] for n in group) for group in trace.parallel_groups
    ]
    assert groups[0] == ["rec/chat"] * 4 + ["rec/judge"] * 4  # both ensembles at once
    assert groups[1] == ["most_common"] * 2
    assert groups[2] == ["rec/chat"] * 2  # both verifiers at once
    assert groups[-2:] == [["rec/chat"], ["parse_judgement"]]  # the judge last

    slow = models.instance("rec/chat", latency=0.1)
    branches = [UniformEnsemble(4, slow, seed=s) for s in (0, 10)]
    verifier = Verifier(slow)

    def answer(q: str) -> Any:
        left = verifier(q, vote(branches[0](q)))
        right = verifier(q, vote(branches[1](q)))
        return JudgeSynthesis(slow)(q, [left.revised_answer, right.revised_answer])

    start = time.perf_counter()
    plain = answer("q")
    plain_s = time.perf_counter() - start
    REC.clear()
    start = time.perf_counter()
    assert xcs.jit(answer)("q") == plain
    jit_s = time.perf_counter() - start
    assert jit_s < 0.5 * plain_s  # 11 calls of 0.1 s plainly, 3 waves under jit
    verifier_calls = [c for c in REC.calls if c[1].startswith("Question: q\nAnswer:")]
    (_, _, _, a_start, a_end), (_, _, _, b_start, b_end) = verifier_calls
    assert a_start < b_end and b_start < a_end  # the two verifications overlapped


def test_model_calls_run_in_other_processes():
    binding = models.instance("simulated/chat", latency=0.01)

    def ask(qs: list[str]) -> Any:
        return [binding(q).text for q in qs]

    with ProcessPoolExecutor(2) as pool:
        assert xcs.jit(executor=pool)(ask)(["a", "b", "c"]) == ask(["a", "b", "c"])
