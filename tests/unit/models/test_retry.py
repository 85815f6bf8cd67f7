"""The retry loop every provider shares: which failures are retried, how long it waits."""

from __future__ import annotations

import random

import pytest

from ember.models import MissingAPIKeyError, ProviderError, RateLimitError, Response
from ember.models.providers.base import Failure, Provider, RetryPolicy, to_messages


class Scripted(Provider):
    """Fails with the scripted failures, then answers; counts attempts."""

    name = "scripted"
    default_retry = RetryPolicy(attempts=4, base=0.001, cap=0.002)

    def __init__(self, failures: list[Failure], **options) -> None:
        super().__init__(**options)
        self.failures = list(failures)
        self.attempts = 0

    def complete(self, model, prompt, **params):
        self.attempts += 1
        if self.failures:
            failure = self.failures.pop(0)
            raise failure from KeyError("the SDK's own error")
        return Response(f"{model}:{prompt}")


def test_transient_failures_are_retried_until_an_answer():
    provider = Scripted([Failure(429, "slow down"), Failure(503, "busy"), Failure(None, "timeout")])
    response = provider.invoke("scripted/m", "m", "hi", {})
    assert response.text == "m:hi"
    assert provider.attempts == 4


def test_the_last_429_is_a_rate_limit_error_with_the_sdk_error_as_cause():
    provider = Scripted([Failure(429, "slow down")] * 4)
    with pytest.raises(RateLimitError) as info:
        provider.invoke("scripted/m", "m", "hi", {})
    error = info.value
    assert (error.status, error.attempts, error.model_id) == (429, 4, "scripted/m")
    assert isinstance(error.__cause__, KeyError)
    assert "after 4 attempts" in str(error) and "slow down" in str(error)
    assert provider.attempts == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status):
    provider = Scripted([Failure(status, "bad request")])
    with pytest.raises(ProviderError) as info:
        provider.invoke("scripted/m", "m", "hi", {})
    assert type(info.value) is ProviderError
    assert info.value.status == status and info.value.attempts == 1
    assert provider.attempts == 1


def test_full_jitter_stays_under_the_doubling_ceiling_and_the_cap():
    policy = RetryPolicy(attempts=10, base=0.5, cap=3.0)
    rng = random.Random(1)
    failure = Failure(500, "x")
    for attempt in range(1, 9):
        ceiling = min(3.0, 0.5 * 2 ** (attempt - 1))
        waits = [policy.delay(attempt, failure, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter spreads over the whole range
    assert policy.delay(10, failure, rng) is None  # out of attempts


def test_retry_after_is_honoured_and_a_long_one_ends_the_retries():
    policy = RetryPolicy(attempts=5, max_retry_after=10)
    rng = random.Random(0)
    assert policy.delay(1, Failure(429, "x", retry_after=2.5), rng) == 2.5
    assert policy.delay(1, Failure(429, "x", retry_after=11), rng) is None


def test_bad_policies_are_refused():
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="base"):
        RetryPolicy(base=-1)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=-1)


def test_every_way_the_retries_stop_is_said():
    policy = RetryPolicy(attempts=3, max_retry_after=10, deadline=5)
    rng = random.Random(0)
    reasons = {
        "status": policy.decide(1, Failure(401, "x"), rng)[1],
        "attempts": policy.decide(3, Failure(500, "x"), rng)[1],
        "retry_after": policy.decide(1, Failure(429, "x", retry_after=11), rng)[1],
        "deadline": policy.decide(1, Failure(429, "x", retry_after=2), rng, elapsed=4)[1],
    }
    assert reasons["status"].startswith("Not retried: HTTP 401 is not a transient failure")
    assert reasons["attempts"] == (
        "Gave up: all 3 attempts the retry policy allows failed (RetryPolicy.attempts)."
    )
    limit = "asked to wait 11 s (Retry-After), longer than the retry policy's limit of 10 s"
    assert limit in reasons["retry_after"]
    assert "max_retry_after=11" in reasons["retry_after"]
    assert "past the retry policy's deadline of 5 s" in reasons["deadline"]
    assert policy.decide(1, Failure(429, "x", retry_after=2), rng, elapsed=2) == (2, "")
    assert RetryPolicy(attempts=1).decide(1, Failure(None, "x"), rng)[1] == (
        "Not retried: the retry policy allows 1 attempt (RetryPolicy.attempts)."
    )


def test_the_error_says_why_the_retries_stopped():
    provider = Scripted([Failure(503, "busy", url="http://h:1/v1/x")] * 4)
    with pytest.raises(ProviderError) as info:
        provider.invoke("scripted/m", "m", "hi", {})
    assert str(info.value) == (
        "model 'scripted/m' failed (HTTP 503) after 4 attempts at http://h:1/v1/x: busy. "
        "Gave up: all 4 attempts the retry policy allows failed (RetryPolicy.attempts)."
    )
    assert info.value.url == "http://h:1/v1/x" and info.value.reason.startswith("Gave up")


def test_missing_key_names_the_variable(monkeypatch):
    class Keyed(Scripted):
        name = "keyed"
        api_key_variable = "EMBER_TEST_KEY"

    monkeypatch.delenv("EMBER_TEST_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="EMBER_TEST_KEY") as info:
        Keyed([]).api_key()
    assert info.value.variable == "EMBER_TEST_KEY"
    assert Keyed([]).api_key(required=False) is None
    monkeypatch.setenv("EMBER_TEST_KEY", "sk-123")
    assert Keyed([]).api_key() == "sk-123"


def test_prompts_become_messages():
    assert to_messages("hi") == [{"role": "user", "content": "hi"}]
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert to_messages(chat) == chat
    with pytest.raises(TypeError, match="role"):
        to_messages([{"content": "hi"}])
    with pytest.raises(TypeError, match="int"):
        to_messages(3)
