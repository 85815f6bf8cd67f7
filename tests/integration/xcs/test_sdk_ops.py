"""Plain SDK code under ``@jit`` alone: real openai/anthropic clients, real HTTP on loopback.

Calls of the SDKs' request methods are ops without marking (``registry.py``,
``sdks.py``): they overlap (seen on the server), and answers, call counts and the
SDK's own exceptions equal plain Python's. Users' clients join through
``xcs.register_op``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from ember import xcs
from ember.models.server import LocalLLMServer
from tests.helpers import waves

LATENCY = 0.15


@pytest.fixture
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer(latency=LATENCY) as running:
        yield running


def _both(
    server: LocalLLMServer,
    fn: Callable[..., Any],
    *args: Any,
    prepare: Callable[[], None] = lambda: None,
) -> tuple[Any, Any, int]:
    """``fn(*args)`` plain and jitted: (plain outcome, jitted outcome, peak overlap under jit).

    An outcome is ``("value", v)`` or ``("raised", type, str)``. When nothing failed,
    the server's request counts must be equal (after a failure, calls that plain
    Python never reached may have started already).
    """

    def outcome(f: Callable[..., Any]) -> tuple[Any, ...]:
        try:
            return ("value", f(*args))
        except Exception as exc:
            return ("raised", type(exc), str(exc))

    server.reset()
    prepare()
    plain = outcome(fn)
    plain_requests = len(server.requests)
    server.reset()
    prepare()
    jitted = outcome(xcs.jit(fn))
    if plain[0] == "value" and jitted[0] == "value":
        assert len(server.requests) == plain_requests, "jit made a different number of calls"
    return plain, jitted, server.peak_concurrency


def test_inline_chat_completions_in_a_loop_overlap_and_parse_like_plain(server, oai) -> None:
    def grade(questions: list[str]) -> list[tuple[str, int]]:
        graded = []
        for q in questions:
            resp = oai.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": q}], temperature=0
            )
            text = resp.choices[0].message.content.strip()
            graded.append((text.lower(), resp.usage.total_tokens))
        return graded

    questions = [f"Why does thing {i} happen?" for i in range(8)]
    plain, jitted, peak = _both(server, grade, questions)
    assert plain == jitted and plain[0] == "value"
    assert peak == 8

    trace = xcs.trace(grade, questions)
    names = [n for n, d in trace.graph.nodes(data=True) if d["kind"] == "op"]
    assert len(names) == 8
    assert {trace.graph.nodes[n]["name"] for n in names} == {"chat.completions.create[gpt-4o-mini]"}
    assert waves(trace) == [8]


def test_an_injected_400_raises_the_sdks_own_error_in_both(server, oai) -> None:
    def ask_all(questions: list[str]) -> list[str]:
        return [
            oai.chat.completions.create(model="m", messages=[{"role": "user", "content": q}])
            .choices[0]
            .message.content
            for q in questions
        ]

    questions = ["first", "second (bad)", "third"]
    plain, jitted, _ = _both(
        server, ask_all, questions, prepare=lambda: server.inject(400, prompt="(bad)")
    )
    assert plain[0] == "raised" and plain[1] is openai.BadRequestError
    assert jitted == plain


def test_user_except_clauses_catch_the_sdk_error_under_jit(server, oai) -> None:
    def careful(questions: list[str]) -> list[str]:
        out = []
        for q in questions:
            try:
                resp = oai.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": q}]
                )
                out.append(resp.choices[0].message.content)
            except openai.BadRequestError as exc:
                out.append(f"refused: {exc.status_code}")
        return out

    questions = ["a", "b (bad)", "c"]
    plain, jitted, _ = _both(
        server, careful, questions, prepare=lambda: server.inject(400, prompt="(bad)")
    )
    assert plain == jitted
    assert plain[1][1] == "refused: 400"


def test_anthropic_messages_create_overlaps_and_equals_plain(server, claude) -> None:
    def summarize(docs: list[str]) -> list[str]:
        summaries = []
        for doc in docs:
            msg = claude.messages.create(
                model="claude-3-5-haiku-latest",
                max_tokens=64,
                messages=[{"role": "user", "content": f"Summarize: {doc}"}],
            )
            summaries.append(msg.content[0].text.upper())
        return summaries

    docs = [f"document {i}" for i in range(6)]
    plain, jitted, peak = _both(server, summarize, docs)
    assert plain == jitted and plain[0] == "value"
    assert peak == 6
    trace = xcs.trace(summarize, docs)
    assert waves(trace) == [6]
    ops = [d["name"] for _, d in trace.graph.nodes(data=True) if d["kind"] == "op"]
    assert ops == ["messages.create[claude-3-5-haiku-latest]"] * 6

    def refused(docs: list[str]) -> list[str]:
        return [
            claude.messages.create(
                model="c", max_tokens=8, messages=[{"role": "user", "content": d}]
            )
            .content[0]
            .text
            for d in docs
        ]

    plain, jitted, _ = _both(
        server, refused, ["x", "y (bad)"], prepare=lambda: server.inject(400, prompt="(bad)")
    )
    assert plain[0] == "raised" and plain[1] is anthropic.BadRequestError
    assert jitted == plain


def test_responses_completions_and_embeddings_are_ops_too(server, oai) -> None:
    def mixed(topic: str) -> tuple[Any, ...]:
        answer = oai.responses.create(model="gpt-4o-mini", input=f"Explain {topic}")
        legacy = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt=f"About {topic}")
        vectors = oai.embeddings.create(model="text-embedding-3-small", input=[topic, "other"])
        return (
            answer.output_text,
            legacy.choices[0].text,
            [len(d.embedding) for d in vectors.data],
        )

    plain, jitted, peak = _both(server, mixed, "tides")
    assert plain == jitted and plain[0] == "value"
    assert peak == 3
    trace = xcs.trace(mixed, "tides")
    assert sorted(d["name"] for _, d in trace.graph.nodes(data=True) if d["kind"] == "op") == [
        "completions.create[gpt-3.5-turbo-instruct]",
        "embeddings.create[text-embedding-3-small]",
        "responses.create[gpt-4o-mini]",
    ]


def test_a_streaming_call_runs_at_once_in_program_order(server, oai) -> None:
    def streamed(q: str) -> tuple[str, str]:
        first = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": q}])
        pieces = []
        for chunk in oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": q}], stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        return first.choices[0].message.content, "".join(pieces)

    plain, jitted, _ = _both(server, streamed, "why is the sky blue?")
    assert plain == jitted and plain[0] == "value"
    assert plain[1][0] == plain[1][1]
    trace = xcs.trace(streamed, "why is the sky blue?")
    ops = [d for _, d in trace.graph.nodes(data=True) if d["kind"] == "op"]
    assert [d["immediate"] for d in ops] == [False, True]


def test_the_bound_per_endpoint_holds_and_can_be_changed(server, oai) -> None:
    target = "openai.resources.chat:Completions.create"

    def fan(n: int) -> list[str]:
        return [
            oai.chat.completions.create(model="m", messages=[{"role": "user", "content": str(i)}])
            .choices[0]
            .message.content
            for i in range(n)
        ]

    xcs.register_op(target, max_concurrency=2)
    try:
        server.reset()
        xcs.jit(fan)(6)
        assert server.peak_concurrency == 2
    finally:
        xcs.register_op(target, max_concurrency=32)
    server.reset()
    xcs.jit(fan)(6)
    assert server.peak_concurrency == 6


def test_outside_a_trace_the_sdk_is_untouched(server, oai) -> None:
    from openai.resources.chat import Completions

    original = Completions.__dict__["create"]
    xcs.jit(lambda: oai.chat.completions.create(model="m", messages=[]))
    assert Completions.__dict__["create"] is original
    resp = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(resp, openai.types.chat.ChatCompletion)  # a value, not a deferred


def test_importing_ember_imports_no_sdk() -> None:
    code = (
        "import sys, ember, ember.xcs, ember.models, ember.operators\n"
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class InternalClient:
    """A team's own HTTP wrapper, in code the team does not want to edit."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer k"},
        )
        with urllib.request.urlopen(request) as reply:
            return json.loads(reply.read())


def test_register_op_makes_a_users_own_client_an_op(server) -> None:
    client = InternalClient(server.openai_base_url)

    def lookup(terms: list[str]) -> list[str]:
        found = []
        for term in terms:
            body = {"model": "m", "messages": [{"role": "user", "content": term}]}
            reply = client.post_json("/chat/completions", body)
            found.append(reply["choices"][0]["message"]["content"])
        return found

    terms = [f"term {i}" for i in range(5)]
    plain, jitted, peak = _both(server, lookup, terms)
    assert peak == 1 and plain == jitted  # user code, run in program order: one at a time

    xcs.register_op(InternalClient.post_json, name="search", max_concurrency=3)
    try:
        plain, jitted, peak = _both(server, lookup, terms)
        assert plain == jitted and plain[0] == "value"
        assert peak == 3
        trace = xcs.trace(lookup, terms)
        assert {d["name"] for _, d in trace.graph.nodes(data=True) if d["kind"] == "op"} == {
            "search"
        }
        xcs.register_op(InternalClient.post_json, max_concurrency=None)  # only the bound
        plain, jitted, peak = _both(server, lookup, terms)
        assert peak == 5 and plain == jitted
        assert {d["name"] for _, d in xcs.trace(lookup, terms).graph.nodes(data=True)} >= {"search"}
    finally:
        xcs.unregister_op(InternalClient.post_json)
    assert _both(server, lookup, terms)[2] == 1


def test_a_target_named_by_string_waits_for_its_module(tmp_path, monkeypatch) -> None:
    (tmp_path / "later_client.py").write_text(
        "import time\ndef fetch(x):\n    time.sleep(0.1)\n    return x * 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    xcs.register_op("later_client:fetch", name="fetch")
    try:
        assert "later_client" not in sys.modules  # registering imported nothing
        import later_client  # type: ignore[import-not-found]

        def run(n: int) -> list[int]:
            return [later_client.fetch(i) + 1 for i in range(n)]

        trace = xcs.trace(run, 5)
        assert trace.result == [1, 3, 5, 7, 9]
        assert waves(trace) == [5]
    finally:
        xcs.unregister_op("later_client:fetch")
        sys.modules.pop("later_client", None)


@pytest.mark.parametrize(
    ("target", "kwargs", "error", "words"),
    [
        (len, {}, TypeError, "Python function"),
        ("no_colon", {}, TypeError, "module:Qualified.name"),
        (time.sleep, {}, TypeError, "Python function"),
        (lambda: 0, {"max_concurrency": 0}, ValueError, "positive int"),
        (lambda: 0, {"label": "model"}, TypeError, "label must be callable"),
        (lambda: 0, {"name": 3}, TypeError, "name must be a str"),
    ],
)
def test_register_op_refuses_bad_input(target, kwargs, error, words) -> None:
    with pytest.raises(error, match=words):
        xcs.register_op(target, **kwargs)


def test_unregistering_what_is_not_registered_says_so() -> None:
    with pytest.raises(KeyError, match="not registered"):
        xcs.unregister_op(lambda: 0)
    with pytest.raises(KeyError, match="not registered"):
        xcs.unregister_op("nowhere:fn")


def test_responses_output_text_and_chat_parse_stay_lazy_in_a_loop(server, oai) -> None:
    def explain(topics: list[str]) -> list[str]:
        return [oai.responses.create(model="m", input=t).output_text.upper() for t in topics]

    def structured(questions: list[str]) -> list[str]:
        out = []
        for q in questions:
            parsed = oai.chat.completions.parse(
                model="gpt-4o-mini", messages=[{"role": "user", "content": q}]
            )
            out.append(parsed.choices[0].message.content.lower())
        return out

    topics = [f"topic {i}" for i in range(5)]
    for fn in (explain, structured):
        plain, jitted, peak = _both(server, fn, topics)
        assert plain == jitted and plain[0] == "value"
        assert peak == 5, fn.__name__
