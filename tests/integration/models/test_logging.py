"""Retries, give-ups and calls as ``logging`` records and listener events, over real HTTP.

The local server injects 429s (with ``Retry-After``), 500s and stalls; the records on the
``ember`` logger and the ``models.on_call`` events are counted per kind, with their levels,
fields and endpoint, and searched for the API key the requests carry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ember import models, xcs
from ember.models.providers import AnthropicProvider, Failure, OpenAIProvider, RetryPolicy
from ember.models.providers.base import Provider
from ember.models.registry import CallEvent, ModelRegistry
from ember.models.response import Response, make_usage
from ember.models.server import LocalLLMServer
from tests.helpers import kept_records

KEY_VARIABLE = "EMBER_TEST_LOGGING_KEY"
KEY = "sk-logtest-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"  # what the server requires
WRONG_KEY = "sk-wrongkey-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
QUICK = RetryPolicy(attempts=4, base=0.01, cap=0.05)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalLLMServer]:
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    with LocalLLMServer(api_key=KEY) as running:
        yield running


def _providers(server: LocalLLMServer, **options: Any) -> dict[str, Provider]:
    options = {"retry": QUICK, "timeout": 5, "api_key_env": KEY_VARIABLE, **options}
    return {
        "openai": OpenAIProvider(base_url=server.openai_base_url, **options),
        "anthropic": AnthropicProvider(base_url=server.anthropic_base_url, **options),
    }


@pytest.fixture
def registry(server: LocalLLMServer) -> ModelRegistry:
    """Both SDK providers at the local server, sending the key, with quick retries."""
    fresh = ModelRegistry()
    for name, provider in _providers(server).items():
        fresh.register_provider(name, provider)
    return fresh


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``ember`` loggers, from every thread, at DEBUG and up."""
    with kept_records("ember") as kept:
        yield kept


class Heard:
    """A listener keeping every event, and the thread that told it."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.threads: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, event: CallEvent) -> None:
        with self._lock:
            self.events.append(event)
            self.threads.append(threading.get_ident())

    def kind(self, kind: str) -> list[CallEvent]:
        return [e for e in self.events if e.kind == kind]


def of(records: list[logging.LogRecord], event: str) -> list[logging.LogRecord]:
    return [r for r in records if getattr(r, "ember_event", None) == event]


def url(server: LocalLLMServer, provider: str) -> str:
    """The URL of the provider's requests (chat completions, messages)."""
    return server.url + {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}[provider]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_429_with_retry_after_is_logged_and_heard(registry, server, records, provider):
    chat = registry.instance(f"{provider}/chat")
    server.inject(429, 2, retry_after=0.05)
    heard = Heard()
    remove = registry.on_call(heard)
    try:
        response = chat("Why is the sky blue?")
    finally:
        remove()
    assert response.attempts == 3
    endpoint = url(server, provider)
    retries = of(records, "retry")
    assert [r.levelno for r in retries] == [logging.WARNING] * 2
    assert all(r.name == "ember.models" for r in records)
    assert [r.ember_attempt for r in retries] == [1, 2]
    for record in retries:
        assert record.ember_model == f"{provider}/chat"
        assert (record.ember_status, record.ember_attempts) == (429, 4)
        assert record.ember_backoff == record.ember_retry_after == 0.05  # as the server asked
        assert record.ember_url == endpoint
        assert record.ember_error == "RateLimitError"  # the SDK's exception
    message = retries[0].getMessage()
    assert message.startswith(f"{provider}/chat: attempt 1 of 4 failed with HTTP 429 at {endpoint}")
    assert "retrying in 0.05 s (Retry-After: 0.05 s)" in message
    assert "injected fault: HTTP 429" in message  # what the server said
    assert of(records, "give_up") == []
    (call,) = of(records, "call")
    assert call.levelno == logging.DEBUG and call.ember_attempt == 3 and call.ember_error is None
    assert f"{provider}/chat answered in " in call.getMessage()
    # the listener heard each retry before the call, with the same numbers
    assert [e.kind for e in heard.events] == ["retry", "retry", "call"]
    for number, event in enumerate(heard.kind("retry"), 1):
        assert (event.attempt, event.status, event.backoff, event.retry_after) == (
            number,
            429,
            0.05,
            0.05,
        )
        assert event.response is None and isinstance(event.error, Failure)
        assert event.error.url == endpoint and event.model_id == f"{provider}/chat"
    (done,) = heard.kind("call")
    assert done.attempt == 3 and done.error is None and done.response is not None
    assert done.status is None and done.backoff is None


def test_500s_past_the_attempts_give_up_once_with_the_reason(registry, server, records):
    chat = registry.instance("openai/chat")
    server.inject(500, 4)
    heard = Heard()
    remove = registry.on_call(heard)
    try:
        with pytest.raises(models.ProviderError) as info:
            chat("question")
    finally:
        remove()
    error = info.value
    retries = of(records, "retry")
    assert [(r.ember_attempt, r.ember_status, r.levelno) for r in retries] == [
        (1, 500, logging.WARNING),
        (2, 500, logging.WARNING),
        (3, 500, logging.WARNING),
    ]
    assert all(0 <= r.ember_backoff <= 0.05 and r.ember_retry_after is None for r in retries)
    assert all("Retry-After" not in r.getMessage() for r in retries)
    (gave_up,) = of(records, "give_up")
    assert gave_up.levelno == logging.ERROR and gave_up.name == "ember.models"
    assert gave_up.ember_reason == error.reason
    assert error.reason.startswith("Gave up: all 4 attempts")
    assert (gave_up.ember_attempt, gave_up.ember_status) == (4, 500)
    assert gave_up.ember_url == url(server, "openai")
    start = f"openai/chat failed with HTTP 500 after 4 attempts at {gave_up.ember_url}"
    assert gave_up.getMessage().startswith(start)
    # the reason is said once, in the give-up record
    assert sum(r.getMessage().count(error.reason) for r in records) == 1
    (call,) = of(records, "call")
    assert call.levelno == logging.DEBUG and call.ember_error == "ProviderError"
    assert (call.ember_attempt, call.ember_status) == (4, 500)
    assert [e.kind for e in heard.events] == ["retry"] * 3 + ["call"]
    assert heard.events[-1].error is error and heard.events[-1].attempt == 4
    assert heard.events[-1].status == 500


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 400, "count": 1}, "Not retried: HTTP 400 is not a transient failure"),
        ({"status": 429, "count": 1, "retry_after": 120}, "the server asked to wait 120 s"),
    ],
    ids=["client-error", "retry-after-too-long"],
)
def test_a_give_up_without_retries_says_why(registry, server, records, fault, reason):
    chat = registry.instance("anthropic/chat")
    server.inject(fault["status"], fault["count"], retry_after=fault.get("retry_after"))
    with pytest.raises(models.ProviderError) as info:
        chat("question")
    assert of(records, "retry") == []
    (gave_up,) = of(records, "give_up")
    assert gave_up.levelno == logging.ERROR and gave_up.ember_reason == info.value.reason
    assert reason in gave_up.getMessage() and gave_up.ember_attempt == 1
    assert gave_up.ember_retry_after == fault.get("retry_after")


def test_a_stall_past_the_timeout_is_logged_with_the_exception_class(server, records):
    registry = ModelRegistry()
    registry.register_provider("openai", _providers(server, timeout=0.3)["openai"])
    server.inject_stall(1.0)
    heard = Heard()
    remove = registry.on_call(heard)
    try:
        assert registry.instance("openai/chat")("question").text
    finally:
        remove()
    (retry,) = of(records, "retry")
    assert retry.levelno == logging.WARNING and retry.ember_status is None
    assert retry.ember_error == "APITimeoutError" and retry.ember_retry_after is None
    assert "failed with no answer (APITimeoutError)" in retry.getMessage()
    assert "no answer within the timeout" in retry.getMessage()
    (event,) = heard.kind("retry")
    assert event.status is None and type(event.error.__cause__).__name__ == "APITimeoutError"
    assert heard.kind("call")[0].attempt == 2


def test_no_record_or_event_holds_the_key(server, records, monkeypatch):
    # Requests carry the key (the server refuses any other); a second provider sends a
    # wrong one and is answered 401. Neither key appears in any record's message, its
    # arguments or its fields, nor in any event's repr.
    monkeypatch.setenv("EMBER_TEST_LOGGING_WRONG_KEY", WRONG_KEY)
    registry = ModelRegistry()
    for name, provider in _providers(server).items():
        registry.register_provider(name, provider)
    wrong = _providers(server, api_key_env="EMBER_TEST_LOGGING_WRONG_KEY")["openai"]
    registry.register_provider("wrong", wrong)
    heard = Heard()
    remove = registry.on_call(heard)
    try:
        server.inject(429, 1, retry_after=0.01)
        registry.instance("openai/chat")("a")
        server.inject(500, 4)
        with pytest.raises(models.ProviderError):
            registry.instance("anthropic/chat")("b")
        with pytest.raises(models.ProviderError) as refused:
            registry.instance("wrong/chat")("c")
    finally:
        remove()
    assert refused.value.status == 401
    assert {r.api_key for r in server.requests} == {True}
    kinds = sorted({r.ember_event for r in records})
    assert kinds == ["call", "give_up", "retry"]
    for record in records:
        for key in (KEY, WRONG_KEY):
            everything = [record.getMessage(), repr(record.msg), repr(record.args)]
            everything += [repr(v) for k, v in vars(record).items() if k.startswith("ember_")]
            everything.append(repr(vars(record)))
            assert not any(key in text for text in everything), record.getMessage()
            assert key[:12] not in repr(vars(record))  # not even the start of one
    assert len(heard.events) == 7  # 1 retry + 1 call, 3 retries + 1 call, 1 call
    assert not any(key in repr(event) for event in heard.events for key in (KEY, WRONG_KEY))


SK = "sk-abc123def456ghi789"


class Flaky(Provider):
    """Fails its first attempt at an endpoint whose URL holds credentials."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__(base_url=f"https://user:hunter2@api.example.com/v1?api_key={SK}")
        self.failed = threading.local()

    def invoke(self, model_id: str, model: str, prompt: Any, params: Any) -> Response:
        self.failed.once = False
        return super().invoke(model_id, model, prompt, params)

    def complete(self, model: str, prompt: Any, **params: Any) -> Response:
        if not self.failed.once:
            self.failed.once = True
            raise Failure(503, "busy", 0.01, f"{self.base_url}&token=tok-secret-value")
        return Response("ok", make_usage(1, 1), f"{self.name}/{model}")


def test_the_endpoint_is_logged_with_its_credentials_redacted(records):
    registry = ModelRegistry()
    registry.register_provider("flaky", Flaky())
    assert registry.instance("flaky/x")("hi").text == "ok"
    (retry,) = of(records, "retry")
    shown = retry.ember_url
    assert shown.startswith("https://user:<redacted>@api.example.com/v1?api_key=<redacted>")
    assert shown.endswith("&token=<redacted>")
    for secret in ("hunter2", SK, "tok-secret-value"):
        assert secret not in repr(vars(retry))


def test_under_jit_retries_are_heard_on_the_calling_threads(registry, server, records):
    chat = registry.instance("openai/chat")
    prompts = [f"document {i}" for i in range(8)]
    for prompt in prompts[:5]:
        server.inject(429, 1, retry_after=0.02, prompt=prompt)
    heard = Heard()
    remove = registry.on_call(heard)
    try:
        answers = xcs.jit(lambda: [chat(p).text for p in prompts])()
    finally:
        remove()
    assert len(answers) == 8
    assert (len(heard.kind("call")), len(heard.kind("retry"))) == (8, 5)
    assert len(of(records, "retry")) == 5 and len(of(records, "call")) == 8
    assert sorted(r.ember_attempt for r in of(records, "call")) == [1, 1, 1, 2, 2, 2, 2, 2]
    # each retry was told on the thread making the call, before that call's own event
    told = list(zip(heard.events, heard.threads, strict=True))
    for index, (event, thread) in enumerate(told):
        if event.kind == "retry":
            later = [e for e, t in told[index + 1 :] if t == thread]
            assert later and later[0].kind == "call" and later[0].attempt == 2


def test_a_listener_added_inside_jit_hears_the_retries_of_calls_made_while_there(server):
    # models.on_call inside @jit waits for pending calls: the listener hears exactly the
    # calls (and their retries) plain Python would make while it is there.
    name = "logtest-openai"
    models.register_provider(name, _providers(server)["openai"])
    chat = models.instance(f"{name}/chat")
    for prompt in ("before 0", "during 0", "during 1", "after 0"):
        server.inject(429, 1, retry_after=0.01, prompt=prompt)
    heard = Heard()

    def run() -> list[str]:
        before = [chat(f"before {i}").text for i in range(2)]
        remove = models.on_call(heard)
        during = [chat(f"during {i}").text for i in range(3)]
        remove()
        after = [chat(f"after {i}").text for i in range(2)]
        return before + during + after

    assert len(xcs.jit(run)()) == 7
    assert (len(heard.kind("call")), len(heard.kind("retry"))) == (3, 2)
    assert all(e.model_id == f"{name}/chat" for e in heard.events)


def test_nothing_is_built_when_logging_is_off(registry, server, monkeypatch, caplog):
    # Above WARNING no record is made and no message is built: the level checks
    # guard every log call (ERROR is what a give-up needs).
    from ember.models import registry as registry_module
    from ember.models.providers import base

    caplog.set_level(logging.CRITICAL, logger="ember")

    def built(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a log record was built with logging off")

    monkeypatch.setattr(base.Provider, "_log_retry", built)
    monkeypatch.setattr(base.Provider, "_log_give_up", built)
    monkeypatch.setattr(registry_module, "_log_call", built)
    chat = registry.instance("openai/chat")
    server.inject(429, 1, retry_after=0.01)
    assert chat("a").text
    server.inject(500, 4)
    with pytest.raises(models.ProviderError):
        chat("b")
    assert [r for r in caplog.records if r.name.startswith("ember")] == []


def test_the_library_adds_only_a_null_handler_and_sets_no_level():
    ember_logger = logging.getLogger("ember")
    assert [type(h) for h in ember_logger.handlers] == [logging.NullHandler]
    for name in ("ember.models", "ember.xcs"):
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).level == logging.NOTSET


def test_a_call_stopped_between_attempts_logs_it_once_at_info(server, records):
    # jit(timeout=) abandons the op: its backoff is cut short and no attempt follows;
    # the give-up says so at INFO (the run had ended for another reason first).
    from ember.models.providers.base import STOPPED

    registry = ModelRegistry()
    patient = RetryPolicy(attempts=100, base=0.05, cap=0.05)
    registry.register_provider("openai", _providers(server, retry=patient)["openai"])
    chat = registry.instance("openai/chat")
    chat("warm up")
    server.inject(429, count=1000, retry_after=0.05)

    @xcs.jit(timeout=0.3)
    def ask() -> str:
        return chat("hello").text

    with pytest.raises(xcs.OpTimeoutError):
        ask()
    deadline = time.monotonic() + 5
    while not of(records, "give_up") and time.monotonic() < deadline:
        time.sleep(0.02)  # the abandoned op notices at its next backoff
    (stopped,) = of(records, "give_up")
    assert stopped.levelno == logging.INFO and stopped.ember_reason == STOPPED
    assert stopped.ember_status == 429 and len(of(records, "retry")) == stopped.ember_attempt
    server.reset()
