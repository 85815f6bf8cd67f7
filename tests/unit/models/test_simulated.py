"""The simulated provider: deterministic, format-aware, latency and seeded failures."""

from __future__ import annotations

import time

import pytest

from ember import models
from ember.models.providers.simulated import SimulatedProvider, simulate


def test_answers_are_a_function_of_the_inputs():
    first = models("simulated/chat", "Why is the sky blue?")
    again = models("simulated/chat", "Why is the sky blue?")
    assert first == again and first.model_id == "simulated/chat"
    assert str(first) == first.text
    seeds = {models("simulated/chat", "Why is the sky blue?", seed=i).text for i in range(40)}
    assert 2 <= len(seeds) <= 3  # three options per prompt, the first most often
    assert models("simulated/chat", "Why is the sky blue?", latency=0.0) == first  # not sampling


def test_echo_and_usage():
    response = models("simulated/echo", "twelve chars")
    assert response.text == "twelve chars"
    assert response.usage == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "total_tokens": 6,
        "cost": 0.0,
        "cached": False,
    }
    assert not response.cached
    chat = [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}]
    assert models("simulated/echo", chat).text == "a\nb"


def test_judge_and_verifier_formats():
    judged = simulate("chat", "Pick one.\n- heat\n- light\n- heat\nReply with Final answer:", {})
    assert "Reasoning:" in judged and judged.splitlines()[-1] in (
        "Final answer: heat",
        "Final answer: light",
    )
    checked = simulate("chat", "Question: q\nAnswer: heat\nReply with Verdict:", {})
    lines = checked.splitlines()
    assert lines[0] in ("Verdict: 1", "Verdict: 0") and lines[-1] == "Revised answer: heat"


def test_latency_sleeps():
    start = time.perf_counter()
    models("simulated/chat", "x", latency=0.1)
    assert time.perf_counter() - start >= 0.1


def test_failures_are_seeded_by_the_attempt_so_retries_recover():
    provider = SimulatedProvider()

    def outcomes():
        seen = []
        for i in range(30):
            try:
                provider.invoke("simulated/chat", "chat", f"q{i}", {"failure_rate": 0.5})
                seen.append("ok")
            except models.ProviderError as error:
                seen.append(error.attempts)
        return seen

    first = outcomes()
    assert first.count("ok") >= 25  # 0.5 ** 5 fails all five attempts
    assert outcomes() == first  # deterministic


def test_failure_rate_one_always_fails_with_500_after_every_attempt():
    with pytest.raises(models.ProviderError) as info:
        models("simulated/chat", "x", failure_rate=1.0)
    assert info.value.status == 500 and info.value.attempts == 5


@pytest.mark.parametrize("params", [{"latency": -1}, {"failure_rate": 2}])
def test_bad_simulation_knobs_are_refused(params):
    with pytest.raises(ValueError, match="latency must be >= 0"):
        models("simulated/chat", "x", **params)
