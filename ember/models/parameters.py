"""Which parameters a model call takes: checked in one place, the same for every provider.

A parameter reaches the request body and the trace, so a wrong one is refused where
it is given -- ``models(...)``, ``models.instance(...)``, a binding's call, or
``Provider.invoke`` -- before any request, by :func:`check_parameters`:

* a credential (``api_key=``, ``token=``): ``SecretParameterError``;
* a name the provider does not take (``temprature=``): ``UnknownParameterError``,
  naming the closest known one (``did you mean temperature?``).

Each built-in provider lists the parameters it takes (``Provider.parameters``): the
fields of its API's request (OpenAI chat completions, Anthropic messages) -- every
keyword the SDK's request method names, and those newer SDKs no longer name
(Anthropic's ``temperature``) -- and the SDK's per-request options (``timeout``,
``extra_headers``, ``extra_query``, ``extra_body``). A test checks the lists against the
installed SDKs. A field ember does not list goes into the request as it is inside
``extra_body={...}``. The simulated provider takes the union of both (code written for
either runs on it unchanged), plus ``latency`` and ``failure_rate``. A provider of
the user's own that sets no list (``parameters = None``) takes any name.

``base_url`` and ``api_key_env`` are not parameters of the request: they choose the
endpoint, and are taken by ``models(...)``, ``models.instance(...)`` and a binding's
call (:data:`CLIENT_OPTIONS`) before anything here sees the parameters.

Not done here: checking values (a temperature of 7); the service answers 400 for those.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember.models.errors import UnknownParameterError, refuse_secret_parameters

if TYPE_CHECKING:
    from ember.models.providers.base import Provider

__all__ = [
    "ANTHROPIC_PARAMETERS",
    "CLIENT_OPTIONS",
    "OPENAI_PARAMETERS",
    "SIMULATED_PARAMETERS",
    "check_parameters",
]

CLIENT_OPTIONS = frozenset({"base_url", "api_key_env"})
"""Where a call goes, given with the call or the binding: never sent in the request."""

_SDK_OPTIONS = frozenset({"timeout", "extra_headers", "extra_query", "extra_body"})

OPENAI_PARAMETERS = _SDK_OPTIONS | frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
"""What ``openai/...`` calls take: the chat-completions request's fields (not ``model``,
``messages`` or ``stream``, which ember sets) and the SDK's per-request options."""

ANTHROPIC_PARAMETERS = _SDK_OPTIONS | frozenset(
    {
        "cache_control",
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "max_tokens",
        "mcp_servers",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "system",
        "temperature",
        "thinking",
        "tool_choice",
        "tools",
        "top_k",
        "top_p",
        "user_profile_id",
        "workspace_id",
    }
)
"""What ``anthropic/...`` calls take: the messages request's fields (not ``model``,
``messages`` or ``stream``) and the SDK's per-request options."""

SIMULATED_PARAMETERS = (
    OPENAI_PARAMETERS | ANTHROPIC_PARAMETERS | frozenset({"latency", "failure_rate"})
)
"""What ``simulated/...`` calls take: whatever either real provider takes (so a program
moves between them unchanged), and the simulation's own ``latency`` and ``failure_rate``."""


def check_parameters(model_id: str, provider: Provider, params: Mapping[str, Any]) -> None:
    """Refuse a credential, or a name ``provider`` does not take, among ``params``.

    Args:
        model_id: The model the parameters are for (named in the error).
        provider: The provider serving it; its ``parameters`` are the names it takes
            (None: any name).
        params: A call's parameters or a binding's defaults.

    Raises:
        SecretParameterError: A parameter is named like a credential (checked first,
            for every provider).
        UnknownParameterError: A parameter the provider does not take, with the closest
            name it does take when one is close.
    """
    if not params:
        return
    known = provider.parameters
    # No listed name is a credential's (a test checks), so only the others are looked at:
    # on the common path this is a set lookup per name.
    unlisted = list(params) if known is None else [n for n in params if n not in known]
    if not unlisted:
        return
    refuse_secret_parameters(model_id, dict.fromkeys(unlisted), provider.api_key_variable)
    if known is not None:
        name = unlisted[0]
        raise UnknownParameterError(model_id, name, closest(name, known))


def closest(name: object, known: frozenset[str]) -> str | None:
    """The known parameter ``name`` was most likely meant to be (a typo, another case)."""
    if not isinstance(name, str):
        return None
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    found = difflib.get_close_matches(name.lower(), sorted(by_lower), n=1, cutoff=0.75)
    return by_lower[found[0]] if found else None
