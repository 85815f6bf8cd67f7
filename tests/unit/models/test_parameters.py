"""``ember.models.parameters``: one check of a call's parameters, before any provider sees them."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

from ember import models
from ember._redact import is_secret_name
from ember.models.parameters import (
    ANTHROPIC_PARAMETERS,
    OPENAI_PARAMETERS,
    SIMULATED_PARAMETERS,
    check_parameters,
    closest,
)
from ember.models.providers import AnthropicProvider, OpenAIProvider, Provider, SimulatedProvider
from ember.models.providers.simulated import simulate
from ember.models.registry import ModelRegistry
from ember.models.response import Response

SET_BY_EMBER = {"self", "model", "messages", "stream", "stream_options"}


def sdk_keywords(method: Any) -> set[str]:
    return set(inspect.signature(method).parameters) - SET_BY_EMBER


def test_the_lists_hold_every_keyword_the_installed_sdks_name():
    # An SDK release that adds a request field fails here: add the name to the list (until
    # then, users send it with extra_body=).
    from anthropic.resources.messages import Messages
    from openai.resources.chat.completions import Completions

    assert sdk_keywords(Completions.create) - OPENAI_PARAMETERS == set()
    assert sdk_keywords(Messages.create) - ANTHROPIC_PARAMETERS == set()
    assert not (SET_BY_EMBER - {"self"}) & (OPENAI_PARAMETERS | ANTHROPIC_PARAMETERS)


def test_each_provider_declares_its_list():
    assert OpenAIProvider.parameters is OPENAI_PARAMETERS
    assert AnthropicProvider.parameters is ANTHROPIC_PARAMETERS
    assert SimulatedProvider.parameters is SIMULATED_PARAMETERS
    assert OPENAI_PARAMETERS | ANTHROPIC_PARAMETERS < SIMULATED_PARAMETERS  # code moves freely
    assert {"temperature", "top_k", "seed", "latency", "failure_rate"} <= SIMULATED_PARAMETERS
    assert "seed" not in ANTHROPIC_PARAMETERS and "top_k" not in OPENAI_PARAMETERS


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("temprature", "temperature"),
        ("Temperature", "temperature"),
        ("max_token", "max_tokens"),
        ("top-p", "top_p"),
        ("stop_sequence", "stop_sequences"),
        ("colour", None),
        ("x", None),
    ],
)
def test_the_closest_known_name_is_suggested(typed, meant):
    assert closest(typed, SIMULATED_PARAMETERS) == meant


def test_a_credential_is_refused_before_its_name_is_looked_up():
    for params in ({"api_key": "sk-x", "temprature": 0}, {"temprature": 0, "token": "t"}):
        with pytest.raises(models.SecretParameterError):
            check_parameters("openai/x", OpenAIProvider(), params)
    # Listed names skip the credential check: none of them may be a credential's.
    assert not [name for name in SIMULATED_PARAMETERS if is_secret_name(name)]


class Mine(Provider):
    """A user's provider that lists no parameters: any name goes to ``complete``."""

    name = "mine"

    def complete(self, model: str, prompt: Any, **params: Any) -> Response:
        return Response(f"{model}:{sorted(params)}")


class Listed(Mine):
    """A user's provider that lists its parameters: checked like the built-in ones."""

    parameters = frozenset({"style"})


def test_a_users_provider_is_checked_only_when_it_lists_its_parameters():
    registry = ModelRegistry()
    registry.register_provider("mine", Mine)
    registry.register_provider("listed", Listed)
    assert registry.instance("mine/m")("hi", anything=1).text == "m:['anything']"
    assert registry.instance("listed/m")("hi", style=1).text == "m:['style']"
    with pytest.raises(models.UnknownParameterError, match="did you mean style"):
        registry.instance("listed/m")("hi", styel=1)
    with pytest.raises(models.SecretParameterError):  # for every provider
        registry.instance("mine/m")("hi", api_key="k")


def test_the_provider_itself_checks_when_called_directly():
    with pytest.raises(models.UnknownParameterError, match="takes no parameter 'base_url'"):
        SimulatedProvider().invoke("simulated/chat", "chat", "hi", {"base_url": "x"})


def test_the_new_errors_pickle_with_their_fields():
    for error in (
        models.UnknownParameterError("openai/x", "temprature", "temperature"),
        models.ProviderError("openai/x", None, "refused", 2, "http://h/v1", "Gave up: ..."),
        models.RateLimitError("openai/x", 429, "slow", 1, None, "Gave up: Retry-After"),
    ):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__ == error.__dict__


def test_the_simulation_is_seeded_by_what_the_server_would_receive():
    # extra_body's fields reach the server at the top level; timeout and extra_headers
    # never reach the body at all.
    prompts = [f"question {i}" for i in range(20)]
    flat = [simulate("chat", p, {"top_k": 3}) for p in prompts]
    assert [simulate("chat", p, {"extra_body": {"top_k": 3}}) for p in prompts] == flat
    plain = [simulate("chat", p, {}) for p in prompts]
    assert plain != flat
    options = {"timeout": 5, "extra_headers": {"X": "y"}, "extra_query": {"a": "b"}}
    assert [simulate("chat", p, options) for p in prompts] == plain
