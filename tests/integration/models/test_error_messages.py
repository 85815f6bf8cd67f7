"""What a failed model call says, over real HTTP on loopback: the same for every provider.

* ``base_url=`` given to a call reaches that endpoint (no SDK ``TypeError``, no key
  needed unless the endpoint wants one).
* A parameter the provider does not take is refused before any request, with the
  same message for simulated, openai and anthropic (``did you mean temperature?``).
* A failure names the endpoint, the root cause when no answer came, and why the
  retries stopped; the SDK's own exception stays the ``__cause__``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anthropic
import openai
import pytest

from ember import models, xcs
from ember.models.providers import AnthropicProvider, OpenAIProvider, RetryPolicy
from ember.models.registry import ModelRegistry
from ember.models.server import LocalLLMServer

PROVIDERS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}
SDKS = {"openai": openai, "anthropic": anthropic}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer() as running:
        yield running


@pytest.fixture
def fresh(server: LocalLLMServer) -> LocalLLMServer:
    server.reset()
    return server


def base_url(server: LocalLLMServer, provider: str) -> str:
    return server.openai_base_url if provider == "openai" else server.anthropic_base_url


def registry_at(url: str, provider: str, **options: object) -> ModelRegistry:
    """A registry whose ``provider`` name serves ``url`` with the given options."""
    registry = ModelRegistry()
    registry.register_provider(provider, PROVIDERS[provider](base_url=url, **options))
    return registry


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port where nothing listens (bound, so no one else takes it meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# --- base_url given to a call ---------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_calls_base_url_reaches_that_endpoint_without_a_key(fresh, provider, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    url = base_url(fresh, provider)
    assert models(f"{provider}/echo", "hi", base_url=url).text == "hi"
    assert models.instance(f"{provider}/echo")("again", base_url=url).text == "again"
    assert [r.path for r in fresh.requests] == [PATHS[provider]] * 2


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_calls_base_url_sends_no_key_unless_named(provider, monkeypatch):
    secret = "sk-local-0123456789abcdef"
    monkeypatch.setenv(PROVIDERS[provider].api_key_variable, secret)  # the provider's own
    monkeypatch.setenv("EMBER_LOCAL_KEY", secret)
    with LocalLLMServer(api_key=secret) as keyed:
        url = base_url(keyed, provider)
        with pytest.raises(models.ProviderError) as info:
            models(f"{provider}/echo", "hi", base_url=url)  # the provider's key stays home
        assert info.value.status == 401 and secret not in str(info.value)
        named = models(f"{provider}/echo", "hi", base_url=url, api_key_env="EMBER_LOCAL_KEY")
        assert named.text == "hi"


def test_calls_with_a_base_url_overlap_under_jit(server):
    server.latency = 0.2
    try:
        claude = models.instance("anthropic/chat")

        def both(question: str) -> tuple[str, str]:
            first = models("openai/chat", question, base_url=server.openai_base_url)
            second = claude(question, base_url=server.anthropic_base_url)  # a binding's call
            return first.text, second.text

        expected = both("Why?")
        server.reset()
        assert xcs.jit(both)("Why?") == expected
        assert server.peak_concurrency == 2
    finally:
        server.latency = 0.0


def test_simulated_models_take_a_base_url_too():
    # Swapping an id for a simulated one keeps the call valid; the simulation ignores it.
    plain = models("simulated/chat", "Why?")
    assert models("simulated/chat", "Why?", base_url="http://127.0.0.1:9/v1") == plain


# --- unknown parameters -----------------------------------------------------------------


def typo_message(model_id: str) -> str:
    return (
        f"model {model_id!r} has no parameter 'temprature': did you mean temperature? A field "
        "of the provider's API that ember does not list goes into the request as it is with "
        "extra_body={'temprature': ...} (the names each provider takes: ember.models.parameters)."
    )


@pytest.mark.parametrize("provider", ["simulated", *sorted(PROVIDERS)])
def test_a_typod_parameter_is_refused_the_same_way_by_every_provider(fresh, provider):
    model_id = f"{provider}/chat"
    chat = models.instance(
        model_id, base_url=base_url(fresh, "openai" if provider == "simulated" else provider)
    )
    attempts = {
        "a call": lambda: chat("hi", temprature=0),
        "models()": lambda: models(model_id, "hi", temprature=0),
        "a default": lambda: models.instance(model_id, temprature=0),
        "added defaults": lambda: chat.with_defaults(temprature=0),
        "under jit": lambda: xcs.jit(lambda q: chat(q, temprature=0).text)("hi"),
    }
    for how, attempt in attempts.items():
        with pytest.raises(models.UnknownParameterError) as info:
            attempt()
        assert str(info.value) == typo_message(model_id), how
        assert isinstance(info.value, TypeError)  # as Python's own "unexpected keyword"
        assert (info.value.parameter, info.value.suggestion) == ("temprature", "temperature")
    assert fresh.requests == []  # refused before any request


def test_a_name_far_from_every_parameter_gets_no_guess():
    with pytest.raises(models.UnknownParameterError) as info:
        models("simulated/chat", "hi", colour="blue")
    assert str(info.value) == (
        "model 'simulated/chat' has no parameter 'colour'. Check the name. A field of the "
        "provider's API that ember does not list goes into the request as it is with "
        "extra_body={'colour': ...} (the names each provider takes: ember.models.parameters)."
    )
    assert info.value.suggestion is None


def test_names_ember_sets_itself_say_what_to_do_instead():
    with pytest.raises(models.UnknownParameterError, match="to stream, call the SDK's client"):
        models("openai/gpt-4o", "hi", stream=True)
    with pytest.raises(models.UnknownParameterError, match="the messages are the prompt"):
        models("simulated/chat", "hi", messages=[])


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_extra_body_sends_a_field_ember_does_not_list(fresh, provider):
    # The server seeds its answer with every field of the body, as the simulation does
    # with extra_body's fields: equal answers mean the field arrived, at the top level.
    url = base_url(fresh, provider)
    prompts = [f"q{i}" for i in range(12)]
    extra = {"max_tokens": 1024, "extra_body": {"top_k_novel": 5}}
    sent = [models(f"{provider}/chat", p, base_url=url, **extra).text for p in prompts]
    simulated = [models("simulated/chat", p, **extra).text for p in prompts]
    without = [models("simulated/chat", p, max_tokens=1024).text for p in prompts]
    assert sent == simulated != without


# --- failures: where, why, and why the retries stopped ------------------------------------


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_dead_endpoint_names_its_url_and_the_refused_connection(provider, dead_port):
    root = f"http://127.0.0.1:{dead_port}" + ("/v1" if provider == "openai" else "")
    registry = registry_at(root, provider, retry=RetryPolicy(attempts=2, base=0.01))
    with pytest.raises(models.ProviderError) as info:
        registry.instance(f"{provider}/echo")("hi")
    error = info.value
    url = f"http://127.0.0.1:{dead_port}{PATHS[provider]}"
    assert str(error) == (
        f"model '{provider}/echo' failed (no answer) after 2 attempts at {url}: connection "
        "refused (ConnectionRefusedError: [Errno 111] Connection refused): is a server "
        "listening there? Check base_url. Gave up: all 2 attempts the retry policy allows "
        "failed (RetryPolicy.attempts)."
    )
    assert (type(error), error.status, error.attempts, error.url) == (
        models.ProviderError,
        None,
        2,
        url,
    )
    assert type(error.__cause__) is SDKS[provider].APIConnectionError  # the SDK's own


def test_a_password_in_the_endpoint_is_not_shown(dead_port):
    secret = "hunter2-do-not-show"
    root = f"http://user:{secret}@127.0.0.1:{dead_port}/v1"
    registry = registry_at(root, "openai", retry=RetryPolicy(attempts=1))
    with pytest.raises(models.ProviderError) as info:
        registry.instance("openai/echo")("hi")
    assert secret not in str(info.value) and secret not in repr(registry.provider("openai"))
    assert f"at http://user:<redacted>@127.0.0.1:{dead_port}/v1/chat/completions:" in str(
        info.value
    )


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_stalled_endpoint_says_the_timeout(fresh, provider):
    fresh.inject_stall(10)
    url = base_url(fresh, provider)
    registry = registry_at(url, provider, retry=RetryPolicy(attempts=1), timeout=0.3)
    with pytest.raises(models.ProviderError) as info:
        registry.instance(f"{provider}/echo")("hi")
    assert str(info.value) == (
        f"model '{provider}/echo' failed (no answer) after 1 attempt at "
        f"{fresh.url}{PATHS[provider]}: no answer within the timeout (TimeoutError: timed "
        "out): the provider's timeout is 0.3 s (a call's timeout= overrides it); pass a larger "
        "timeout= if the model needs longer. Not retried: the retry policy allows 1 attempt "
        "(RetryPolicy.attempts)."
    )
    assert type(info.value.__cause__) is SDKS[provider].APITimeoutError


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_long_retry_after_says_why_the_retries_stopped(fresh, provider):
    fresh.inject(429, 1, retry_after=120)
    registry = registry_at(base_url(fresh, provider), provider)  # the default policy
    with pytest.raises(models.RateLimitError) as info:
        registry.instance(f"{provider}/echo")("hi")
    error = info.value
    assert str(error).endswith(
        ". Gave up: the server asked to wait 120 s (Retry-After), longer than the retry "
        "policy's limit of 60 s; to wait that long, give the provider "
        "RetryPolicy(max_retry_after=120)."
    )
    assert str(error).startswith(
        f"model '{provider}/echo' failed (HTTP 429) after 1 attempt at "
        f"{fresh.url}{PATHS[provider]}: "
    )
    assert (error.status, error.attempts) == (429, 1) and len(fresh.requests) == 1
    assert type(error.__cause__) is SDKS[provider].RateLimitError


def test_a_long_retry_after_is_waited_for_when_the_policy_allows_it(fresh):
    fresh.inject(429, 1, retry_after=0.2)
    patient = RetryPolicy(max_retry_after=0.1)
    registry = registry_at(fresh.openai_base_url, "openai", retry=patient)
    with pytest.raises(models.RateLimitError, match=r"limit of 0\.1 s"):
        registry.instance("openai/echo")("hi")
    fresh.inject(429, 1, retry_after=0.2)
    registry = registry_at(fresh.openai_base_url, "openai", retry=RetryPolicy(max_retry_after=1))
    assert registry.instance("openai/echo")("hi").text == "hi"
    assert [r.status for r in fresh.requests] == [429, 429, 200]


def test_a_status_not_worth_retrying_says_so(fresh):
    fresh.inject(404, 1)
    registry = registry_at(fresh.openai_base_url, "openai")
    with pytest.raises(models.ProviderError) as info:
        registry.instance("openai/echo")("hi")
    assert str(info.value).endswith(
        ". Not retried: HTTP 404 is not a transient failure (retried: 408, 409, 425, 429, 500, "
        "502, 503, 504, 529, timeouts and lost connections); check the model name, the "
        "parameters and the key."
    )
    assert info.value.attempts == 1 and type(info.value.__cause__) is openai.NotFoundError


def test_used_up_attempts_say_so(fresh):
    fresh.inject(503, 3)
    registry = registry_at(
        fresh.anthropic_base_url, "anthropic", retry=RetryPolicy(attempts=3, base=0.01)
    )
    with pytest.raises(models.ProviderError) as info:
        registry.instance("anthropic/echo")("hi")
    assert str(info.value).endswith(
        ". Gave up: all 3 attempts the retry policy allows failed (RetryPolicy.attempts)."
    )
    assert info.value.status == 503 and info.value.attempts == 3 == len(fresh.requests)


def test_a_deadline_ends_the_retries_and_says_so(fresh):
    fresh.inject(503, 1, retry_after=0.5)
    registry = registry_at(
        fresh.openai_base_url, "openai", retry=RetryPolicy(deadline=0.2, base=0.01)
    )
    with pytest.raises(models.ProviderError) as info:
        registry.instance("openai/echo")("hi")
    assert str(info.value).endswith(
        ". Gave up: the next attempt, 0.5 s from now, would start past the retry policy's "
        "deadline of 0.2 s from the first (RetryPolicy.deadline)."
    )
    assert info.value.attempts == 1 and len(fresh.requests) == 1
