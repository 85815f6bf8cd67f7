"""OpenTelemetry spans of traced calls, read back from the real SDK's in-memory exporter.

After the fact (``Trace.to_otel(tracer)``) needs no global state: the tests hand it a
tracer of their own provider. The live path (every traced ``@jit`` call) reads the
global provider, which ``trace.set_tracer_provider`` sets once per process, for good;
so the ``live`` fixture puts its provider in place by patching the module global that
holds it (``opentelemetry.trace._TRACER_PROVIDER``) and restores it afterwards: later
tests see the default (unconfigured) provider again, and the exported spans stop. If
OpenTelemetry renames that global, these tests fail at the patch, loudly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ember import models, xcs
from ember.models.providers import OpenAIProvider, RetryPolicy
from ember.models.registry import ModelRegistry
from ember.models.server import LocalLLMServer
from ember.xcs import _otel

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).name
LATENCY = 0.15


class Exported:
    """An in-memory exporter on a provider of its own, and what it caught."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name.startswith(prefix)]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        return sorted(
            (s for s in self.spans() if s.parent and s.parent.span_id == parent.context.span_id),
            key=lambda s: s.attributes["ember.node"],
        )


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[Exported]:
    """A configured global tracer provider for this test only (see the module docstring)."""
    exported = Exported()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", exported.provider)
    yield exported
    monkeypatch.undo()
    assert _otel.live_tracer() is None  # unconfigured again: later jitted calls send nothing


chat = models.instance("simulated/chat", temperature=0.3, max_tokens=64)


def ensemble(question: str) -> str:
    drafts = [chat(f"{question} (draft {i})", latency=LATENCY).text for i in range(3)]
    return chat("Pick the best:\n" + "\n".join(drafts)).text


def _overlap(spans: list[ReadableSpan]) -> bool:
    """Whether all the spans were running at one moment."""
    return max(s.start_time for s in spans) < min(s.end_time for s in spans)


def test_a_jitted_call_is_a_span_under_the_callers_with_a_span_per_op(live):
    jitted = xcs.jit(ensemble)
    with trace.get_tracer("app").start_as_current_span("request") as request:
        answer = jitted("Why is the sky blue?")
    assert answer == ensemble("Why is the sky blue?")
    (call,) = live.named("ember.xcs.jit")
    assert call.name == "ember.xcs.jit ensemble"
    assert call.parent.span_id == request.get_span_context().span_id
    assert call.context.trace_id == request.get_span_context().trace_id
    assert call.attributes["ember.ops"] == 4 and call.attributes["ember.parallel_groups"] == 2
    ops = live.children(call)
    assert [s.name for s in ops] == ["chat chat"] * 4
    assert [s.attributes["ember.parallel_group"] for s in ops] == [0, 0, 0, 1]
    assert _overlap(ops[:3])  # the drafts ran side by side, as recorded
    assert all(ops[3].start_time >= s.end_time for s in ops[:3])  # the pick waited for them
    assert all(call.start_time <= s.start_time and s.end_time <= call.end_time for s in ops)
    assert all(s.end_time - s.start_time >= LATENCY * 0.9e9 for s in ops[:3])
    draft = ops[0]
    assert draft.kind is SpanKind.CLIENT and draft.status.status_code is StatusCode.UNSET
    attributes = dict(draft.attributes)
    line = attributes.pop("ember.location")
    assert line.endswith(f"{HERE}:{ensemble.__code__.co_firstlineno + 1}")
    assert attributes.pop("ember.thread")
    tokens = chat("Why is the sky blue? (draft 0)", latency=0).usage
    assert attributes == {
        "ember.op": "simulated/chat",
        "ember.node": draft.attributes["ember.node"],
        "ember.status": "done",
        "ember.parallel_group": 0,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "simulated",
        "gen_ai.system": "simulated",
        "gen_ai.request.model": "chat",
        "ember.model_id": "simulated/chat",
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.usage.input_tokens": tokens["prompt_tokens"],
        "gen_ai.usage.output_tokens": tokens["completion_tokens"],
        "ember.cost": 0.0,
        "ember.retries": 0,
        "ember.cached": False,
    }
    assert tokens["completion_tokens"] > 0


def test_calls_the_response_cache_answered_say_so(live):
    jitted = xcs.jit(ensemble)
    with models.cache(memory=True):
        jitted("Why?")  # sent, and kept
        jitted("Why?")  # answered from the cache
    first, second = live.named("ember.xcs.jit")
    assert [s.attributes["ember.cached"] for s in live.children(first)] == [False] * 4
    assert [s.attributes["ember.cached"] for s in live.children(second)] == [True] * 4
    assert all(s.attributes["ember.retries"] == 0 for s in live.children(second))


def test_the_trace_of_a_call_sends_the_same_spans_after_the_fact():
    assert _otel.live_tracer() is None  # no provider is configured: jitted calls send nothing
    kept = xcs.trace(ensemble, "Why?")
    exported = Exported()
    time.sleep(0.05)
    kept.to_otel(exported.provider.get_tracer("test"))
    (call,) = exported.named("ember.xcs.trace")
    assert call.name == "ember.xcs.trace ensemble" and call.parent is None
    ops = exported.children(call)
    assert len(ops) == len(exported.spans()) - 1 == 4
    assert [s.attributes["ember.parallel_group"] for s in ops] == [0, 0, 0, 1]
    assert _overlap(ops[:3])
    # The times are the run's, not the export's.
    assert call.end_time <= time.time_ns() - 0.04e9
    assert round((call.end_time - call.start_time) / 1e9, 3) == round(kept.wall_seconds, 3)
    assert ops[3].attributes["gen_ai.usage.output_tokens"] > 0


@xcs.op
def slow(x: str) -> str:
    time.sleep(0.1)
    return x


@xcs.op
def broken(x: str) -> str:
    time.sleep(0.02)
    raise ValueError(f"cannot handle {x!r} with key sk-live-0123456789abcdefghijklmnop")


def failing(x: str) -> list[str]:
    return [slow(x), broken(x), slow(x + "!")]


def test_a_failed_op_is_an_error_span_with_its_exception(live):
    with pytest.raises(ValueError, match="cannot handle"):
        xcs.jit(failing)("a")
    (call,) = live.named("ember.xcs.jit")
    assert call.status.status_code is StatusCode.ERROR
    assert call.events[0].name == "exception"
    by_status = {s.attributes["ember.status"]: s for s in live.children(call)}
    failed = by_status["failed"]
    assert failed.name == "broken" and failed.attributes["ember.op"] == "broken"
    assert failed.kind is SpanKind.INTERNAL
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "ValueError"
    (event,) = failed.events
    assert event.name == "exception" and event.attributes["exception.type"] == "ValueError"
    assert "cannot handle 'a'" in event.attributes["exception.message"]
    assert "<redacted>" in event.attributes["exception.message"]
    assert "sk-live-0123456789" not in json.dumps(_everything(live.spans()))
    assert by_status["done"].status.status_code is StatusCode.UNSET


FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05)


def test_model_calls_over_http_carry_retries_tokens_and_no_secret(live, monkeypatch):
    secret = "sk-proj-TESTSECRET0123456789abcdefghij"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("EMBER_TEST_KEY", secret)
    with LocalLLMServer(latency=0.05, api_key=secret) as server:
        registry = ModelRegistry()
        registry.register_provider(
            "openai",
            OpenAIProvider(
                base_url=server.openai_base_url, retry=FAST_RETRY, api_key_env="EMBER_TEST_KEY"
            ),
        )
        gpt = registry.instance("openai/gpt-4o-mini", temperature=0.0)
        server.inject(429, 2, retry_after=0.01, prompt="b")

        def ask_all(prompts: list[str]) -> list[str]:
            return [gpt(p, max_tokens=20).text for p in prompts]

        assert xcs.jit(ask_all)(["a", "b", "c"]) == ask_all(["a", "b", "c"])
        statuses = [r.status for r in server.requests]
    assert statuses.count(429) == 2
    (call,) = live.named("ember.xcs.jit")
    ops = live.children(call)
    assert [s.name for s in ops] == ["chat gpt-4o-mini"] * 3
    assert [s.attributes["ember.retries"] for s in ops] == [0, 2, 0]
    for span in ops:
        assert span.attributes["gen_ai.provider.name"] == "openai"
        assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert span.attributes["gen_ai.request.temperature"] == 0.0
        assert span.attributes["gen_ai.request.max_tokens"] == 20
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
        assert span.attributes["gen_ai.usage.output_tokens"] > 0
        assert span.attributes["server.address"] == "127.0.0.1"
        assert f":{span.attributes['server.port']}/" in server.openai_base_url
    assert secret not in json.dumps(_everything(live.spans()))


def test_a_call_that_gives_up_after_retries_says_how_many(live):
    with LocalLLMServer(latency=0.0) as server:
        registry = ModelRegistry()
        registry.register_provider(
            "openai", OpenAIProvider(base_url=server.openai_base_url, retry=FAST_RETRY)
        )
        gpt = registry.instance("openai/chat")
        server.inject(503, 4, prompt="x")

        def ask(p: str) -> tuple[str, str]:
            return gpt(p).text, gpt("fine").text

        with pytest.raises(models.ProviderError):
            xcs.jit(ask)("x")
    (call,) = live.named("ember.xcs.jit")
    failed = next(s for s in live.children(call) if s.attributes["ember.status"] == "failed")
    assert failed.attributes["ember.retries"] == 3
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.attributes["error.type"] == "ember.models.errors.ProviderError"
    assert failed.status.status_code is StatusCode.ERROR


def test_a_provider_configured_after_calls_is_seen_at_the_next_call(monkeypatch):
    jitted = xcs.jit(ensemble)
    jitted("before")  # decided and remembered: not configured
    assert _otel.live_tracer() is None
    exported = Exported()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", exported.provider)
    xcs.jit(ensemble, cache=False)("after")
    assert [s.name for s in exported.named("ember.xcs.jit")] == ["ember.xcs.jit ensemble"]


def _everything(spans: list[ReadableSpan]) -> list[Any]:
    """Every name, attribute, event and status text the spans hold, for grepping."""
    found: list[Any] = []
    for span in spans:
        found += [span.name, dict(span.attributes), span.status.description]
        found += [[event.name, dict(event.attributes)] for event in span.events]
    return found


def test_import_and_jitted_calls_do_not_import_opentelemetry(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from ember import models, xcs

        chat = models.instance("simulated/chat")

        @xcs.jit
        def both(q):
            return chat(q).text, chat(q + "?").text

        both("a")
        xcs.trace(both, "b")
        assert both.stats()["traced_calls"] == 1
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    (tmp_path / "app.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "app.py"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
