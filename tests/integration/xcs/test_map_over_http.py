"""``xcs.map`` over real HTTP: per-item programs that branch on their own answers.

Each item's work waits on its answers (draft, verify, ``if`` the verdict says so,
revise), so one trace runs one item at a time; ``xcs.map`` runs the items at the same
time, each traced and exact. Against the local server (real openai/anthropic SDK
clients, ``ember.models`` and ``operators.Router``, real HTTP on loopback) the results,
the requests made (the multiset of prompts) and the exceptions must be plain Python's,
while the server sees the items overlap and the wall time drops. On a failure the
first failing item *in item order* is raised, after the items before it finished,
and later items start nothing more.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import networkx as nx
import openai
import pytest

from ember import models, xcs
from ember.models.server import LocalLLMServer
from ember.operators import Operator, Router
from tests.integration.test_real_programs import CLASSIFY

LATENCY = 0.12
MODEL = "gpt-4o-mini"
QUESTIONS = [f"Why does phenomenon {i} happen?" for i in range(6)]
# The simulated verifier accepts the drafts of questions 0-2 and rejects those of 3-5.
REVISED = [False, False, False, True, True, True]


@pytest.fixture
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer(latency=LATENCY) as running:
        yield running


def _prompts(server: LocalLLMServer) -> Counter[str]:
    """The prompts the server answered so far, as a multiset."""
    return Counter(r.prompt for r in server.requests)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def _faster_of_two(fn: Callable[..., Any], args: Any, first_s: float, server: Any) -> float:
    """The faster of a checked run's time and one more run's: one run can be a slow draw
    on a busy machine (a ratio of times, not the luck of one)."""
    server.reset()
    _, again_s = _timed(fn, args)
    return min(first_s, again_s)


def _sent_prompt(error: openai.APIStatusError) -> str:
    """The user message of the request an SDK error came from."""
    return json.loads(error.request.content)["messages"][-1]["content"]


def _raised(fn: Callable[..., Any], *args: Any) -> BaseException:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - returned to the test
        return exc
    pytest.fail(f"{fn!r} returned instead of raising")


def draft_verify_revise(client: openai.OpenAI) -> Callable[[str], dict[str, Any]]:
    """One question's work as users write it with the plain SDK: it branches on the verdict."""

    def ask(prompt: str) -> str:
        resp = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], temperature=0
        )
        return resp.choices[0].message.content.strip()

    def per_question(question: str) -> dict[str, Any]:
        draft = ask(f"Question: {question}\nAnswer in one word.")
        report = ask(
            f"Question: {question}\nAnswer: {draft}\nCheck the answer. Reply with Verdict: 1 or 0."
        )
        verdict = report.splitlines()[0].removeprefix("Verdict:").strip()
        if verdict == "1":
            return {"question": question, "answer": draft, "revised": False}
        revised = ask(
            f"Question: {question}\nRejected answer: {draft}\nGive a better one-word answer."
        )
        return {"question": question, "answer": revised, "revised": True}

    return per_question


# --- 1. draft -> verify -> if -> revise, per question --------------------------------------


def test_per_question_branching_equals_plain_and_overlaps_across_items(server, oai) -> None:
    per_question = draft_verify_revise(oai)

    def answer_all(questions: list[str]) -> list[dict[str, Any]]:
        return xcs.map(per_question, questions)

    plain, plain_s = _timed(lambda qs: [per_question(q) for q in qs], QUESTIONS)
    plain_prompts = _prompts(server)
    assert [r["revised"] for r in plain] == REVISED  # both branches taken
    assert sum(plain_prompts.values()) == 2 * len(QUESTIONS) + sum(REVISED)

    server.reset()
    mapped, mapped_s = _timed(xcs.map, per_question, QUESTIONS)
    assert mapped == plain
    assert _prompts(server) == plain_prompts
    assert server.peak_concurrency >= len(QUESTIONS)  # items overlap, seen by the server
    mapped_s = _faster_of_two(lambda qs: xcs.map(per_question, qs), QUESTIONS, mapped_s, server)
    assert mapped_s < 0.6 * plain_s, (mapped_s, plain_s)

    server.reset()
    jitted, jitted_s = _timed(xcs.jit(answer_all), QUESTIONS)
    assert jitted == plain
    assert _prompts(server) == plain_prompts
    assert server.peak_concurrency >= len(QUESTIONS)
    jitted_s = _faster_of_two(xcs.jit(answer_all), QUESTIONS, jitted_s, server)
    assert jitted_s < 0.6 * plain_s, (jitted_s, plain_s)

    # Inside a trace, the map is one op whose node keeps each item's own graph.
    trace = xcs.trace(answer_all, QUESTIONS)
    assert trace.result == plain
    ops = [d for _, d in trace.graph.nodes(data=True) if d["kind"] == "op"]
    assert [d["name"] for d in ops] == ["xcs.map[draft_verify_revise.<locals>.per_question]"]
    items = ops[0]["items"]
    assert len(items) == len(QUESTIONS)
    assert all(isinstance(g, nx.DiGraph) for g in items)
    calls = [[d["name"] for _, d in g.nodes(data=True) if d["kind"] == "op"] for g in items]
    assert calls == [[f"chat.completions.create[{MODEL}]"] * (3 if r else 2) for r in REVISED]

    server.reset()  # max_workers bounds the items in flight (each item's calls are a chain)
    assert xcs.map(per_question, QUESTIONS, max_workers=2) == plain
    assert server.peak_concurrency == 2


# --- 2. failures: the first failing item in item order ---------------------------------------


def _inject_two_failures(server: LocalLLMServer) -> None:
    """Item 2 fails on its second call (its verify); item 4, later, on its first (sooner)."""
    server.reset()
    server.inject(400, prompt=f"{QUESTIONS[2]}\nAnswer: ")
    server.inject(400, prompt=f"{QUESTIONS[4]}\nAnswer in one word")


def test_the_first_failing_item_in_item_order_is_raised(server, oai) -> None:
    per_question = draft_verify_revise(oai)

    def answer_all(questions: list[str]) -> list[dict[str, Any]]:
        return xcs.map(per_question, questions)

    _inject_two_failures(server)
    plain = _raised(lambda qs: [per_question(q) for q in qs], QUESTIONS)
    plain_prompts = _prompts(server)
    assert type(plain) is openai.BadRequestError
    assert _sent_prompt(plain).startswith(f"Question: {QUESTIONS[2]}\nAnswer: ")

    for run in (lambda qs: xcs.map(per_question, qs), xcs.jit(answer_all)):
        _inject_two_failures(server)
        error = _raised(run, QUESTIONS)
        assert type(error) is openai.BadRequestError
        assert error.status_code == 400 and str(error) == str(plain)
        assert _sent_prompt(error) == _sent_prompt(plain)  # item 2's verify, not item 4's draft
        item = f"[ember.xcs] raised by item 2 of 6 in xcs.map[{per_question.__qualname__}]"
        assert f"{item}: {QUESTIONS[2]!r}" in error.__notes__
        assert not any("item 4" in note for note in error.__notes__)
        # Item 4 failed first in time, yet item 2 is what plain Python raises.
        failed = {r.prompt.splitlines()[0]: r.end for r in server.requests if r.status == 400}
        assert failed[f"Question: {QUESTIONS[4]}"] < failed[f"Question: {QUESTIONS[2]}"]
        # Every call plain Python made was made (items 0 and 1 ran to the end).
        assert not plain_prompts - _prompts(server)


def test_return_exceptions_puts_the_sdk_errors_in_their_items_places(server, oai) -> None:
    per_question = draft_verify_revise(oai)
    good = [0, 1, 3, 5]
    plain = {i: per_question(QUESTIONS[i]) for i in good}
    plain_prompts = _prompts(server)

    def tolerant(questions: list[str]) -> list[Any]:
        return xcs.map(per_question, questions, return_exceptions=True)

    for run in (tolerant, xcs.jit(tolerant)):
        _inject_two_failures(server)
        results = run(QUESTIONS)
        assert isinstance(results, list) and len(results) == len(QUESTIONS)
        assert [i for i, r in enumerate(results) if isinstance(r, BaseException)] == [2, 4]
        assert all(type(results[i]) is openai.BadRequestError for i in (2, 4))
        assert _sent_prompt(results[2]).startswith(f"Question: {QUESTIONS[2]}\nAnswer: ")
        assert _sent_prompt(results[4]) == f"Question: {QUESTIONS[4]}\nAnswer in one word."
        assert {i: results[i] for i in good} == plain
        made = _prompts(server)
        assert not plain_prompts - made  # the good items made all their calls
        # ... and the failing ones theirs up to the failure: item 2 two, item 4 one.
        assert sum(made.values()) == sum(plain_prompts.values()) + 3


# --- 3. cancellation: later items start nothing more -----------------------------------------

CHAIN = 4


def refine_chain(client: openai.OpenAI) -> Callable[[str], str]:
    """An item whose calls each need the previous answer (a loop of dependent calls)."""

    def refine(topic: str) -> str:
        text = topic
        for step in range(CHAIN):
            resp = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"[{topic}] step {step}: improve {text}"}],
            )
            text = resp.choices[0].message.content.strip()
        return text

    return refine


def _chain_steps(server: LocalLLMServer) -> list[str]:
    records = sorted(
        (r for r in server.requests if r.prompt.startswith("[chain]")), key=lambda r: r.start
    )
    return [r.prompt.split(":")[0] for r in records]


def test_a_failing_item_cancels_a_later_items_unstarted_calls(server, oai) -> None:
    refine = refine_chain(oai)
    server.inject(400, prompt="[fails] step 0")
    error = _raised(xcs.map, refine, ["fails", "chain"])
    assert type(error) is openai.BadRequestError
    item = f"[ember.xcs] raised by item 0 of 2 in xcs.map[{refine.__qualname__}]"
    assert f"{item}: 'fails'" in error.__notes__
    time.sleep(CHAIN * LATENCY + 0.3)  # long enough for the whole chain, had it gone on
    steps = _chain_steps(server)
    assert len(steps) < CHAIN, steps  # plain Python made none; the rest were cancelled
    assert steps == [f"[chain] step {i}" for i in range(len(steps))]


def test_an_earlier_item_runs_to_its_end_before_a_later_failure_is_raised(server, oai) -> None:
    refine = refine_chain(oai)
    server.inject(400, prompt="[fails] step 0")
    plain = _raised(lambda ts: [refine(t) for t in ts], ["chain", "fails"])
    plain_prompts = _prompts(server)

    server.reset()
    server.inject(400, prompt="[fails] step 0")
    error = _raised(xcs.map, refine, ["chain", "fails"])
    raised_at = time.perf_counter()
    assert type(error) is type(plain) is openai.BadRequestError
    item = f"[ember.xcs] raised by item 1 of 2 in xcs.map[{refine.__qualname__}]"
    assert f"{item}: 'fails'" in error.__notes__
    assert _prompts(server) == plain_prompts  # the whole chain, then the failure
    assert _chain_steps(server) == [f"[chain] step {i}" for i in range(CHAIN)]
    assert raised_at >= max(r.end for r in server.requests)


# --- 4. operators.Router over many tickets ---------------------------------------------------


# The simulated classifier sends these to billing, account, technical, billing, ...
TICKETS = [
    f"My {thing} is not working, please help."
    for thing in ("invoice", "login", "plan", "refund", "password", "crash")
]


class Desk(Operator):
    """A specialist: one model call in its own role."""

    def __init__(self, model: models.ModelBinding, role: str) -> None:
        self.model = model
        self.role = role

    def forward(self, ticket: str) -> str:
        return (
            f"{self.role}: {self.model(f'You are the {self.role} desk. Reply to: {ticket}').text}"
        )


def test_a_router_over_many_tickets_equals_plain_and_overlaps(server) -> None:
    url = server.openai_base_url
    classifier = models.instance("openai/classifier", base_url=url, temperature=0)

    def classify(ticket: str) -> str:
        return classifier(CLASSIFY.format(ticket=ticket)).text.rsplit("Final answer:", 1)[-1]

    router = Router(
        {
            role: Desk(models.instance(f"openai/{role}-desk", base_url=url), role)
            for role in ("billing", "technical", "account")
        },
        classify,
    )

    def triage(tickets: list[str]) -> list[str]:
        return xcs.map(router, tickets)

    plain, plain_s = _timed(lambda ts: [router(t) for t in ts], TICKETS)
    plain_prompts = _prompts(server)
    assert {answer.split(":")[0] for answer in plain} == {"billing", "technical", "account"}
    assert sum(plain_prompts.values()) == 2 * len(TICKETS)

    for run in (lambda ts: xcs.map(router, ts), xcs.jit(triage)):
        server.reset()
        routed, routed_s = _timed(run, TICKETS)
        assert routed == plain
        assert _prompts(server) == plain_prompts
        assert server.peak_concurrency >= len(TICKETS)  # every ticket classified at once
        routed_s = _faster_of_two(run, TICKETS, routed_s, server)
        assert routed_s < 0.6 * plain_s, (routed_s, plain_s)

    trace = xcs.trace(triage, TICKETS[:2])
    assert [d["name"] for _, d in trace.graph.nodes(data=True) if d["kind"] == "op"] == [
        "xcs.map[Router]"
    ]


# --- 5. the anthropic SDK ---------------------------------------------------------------------


def test_anthropic_messages_per_item_branching_equals_plain_and_overlaps(server, claude) -> None:
    def ask(prompt: str) -> str:
        msg = claude.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=64,
            messages=[{"role": "user", "content": prompt}],
        )
        return msg.content[0].text

    def triage(doc: str) -> tuple[str, str, str]:
        topic = ask(f"Summarize in one word: {doc}")
        if len(topic) < 6:  # a short topic needs no detail
            return doc, topic, ""
        return doc, topic, ask(f"Explain why '{topic}' matters for: {doc}")

    def triage_all(docs: list[str]) -> list[tuple[str, str, str]]:
        return xcs.map(triage, docs)

    docs = [f"document {i}" for i in range(6)]
    plain = [triage(d) for d in docs]
    plain_prompts = _prompts(server)
    assert {bool(detail) for _, _, detail in plain} == {True, False}  # both branches

    for run in (lambda ds: xcs.map(triage, ds), xcs.jit(triage_all)):
        server.reset()
        assert run(docs) == plain
        assert _prompts(server) == plain_prompts
        assert server.peak_concurrency >= len(docs)
