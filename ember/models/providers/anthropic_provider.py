"""``anthropic/...`` (and bare ``claude-...`` ids): Claude through the ``anthropic`` SDK.

System messages in a chat prompt become the request's ``system`` field, as the
messages API wants; ``max_tokens`` (required by the API) defaults to 1024. The key
comes from ``ANTHROPIC_API_KEY`` for Anthropic's endpoint; at a custom ``base_url``
only from the variable ``api_key_env=`` names (``"EMPTY"`` otherwise). The SDK does the
HTTP (see ``ember.models.providers.sdk``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from ember.models.parameters import ANTHROPIC_PARAMETERS
from ember.models.providers.base import Prompt, to_messages
from ember.models.providers.sdk import SDKProvider
from ember.models.response import Response, make_usage

__all__ = ["AnthropicProvider"]

DEFAULT_MAX_TOKENS = 1024


class AnthropicProvider(SDKProvider):
    """Messages through the ``anthropic`` SDK.

    Args:
        **options: Those of ``Provider``; ``base_url`` is the API root (without
            ``/v1``), None for api.anthropic.com.
    """

    name = "anthropic"
    api_key_variable = "ANTHROPIC_API_KEY"
    default_max_concurrency = 16
    sdk = "anthropic"
    client_class = "Anthropic"
    parameters = ANTHROPIC_PARAMETERS

    def list_models(self) -> list[str]:
        """Common Claude models (any name the endpoint serves works)."""
        return ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]

    def complete(self, model: str, prompt: Prompt, **params: Any) -> Response:
        """One messages request."""
        messages = to_messages(prompt)
        system = "\n".join(str(m["content"]) for m in messages if m["role"] == "system")
        chat = [m for m in messages if m["role"] != "system"]
        if system and "system" not in params:
            params["system"] = system
        params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)

        def create(client: Any) -> Any:
            known, extra = _split_for(client.messages.create, params)
            if extra:  # sampling parameters newer SDKs no longer name (temperature, ...)
                known["extra_body"] = {**known.get("extra_body", {}), **extra}
            return client.messages.create(model=model, messages=chat, **known)

        reply = self.request(create)
        text = "".join(getattr(block, "text", "") for block in reply.content)
        usage = reply.usage
        return Response(
            text, make_usage(usage.input_tokens, usage.output_tokens), f"{self.name}/{model}"
        )


def _split_for(method: Any, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` the SDK method names as keyword arguments, and the rest (sent as JSON)."""
    accepted = _keywords(getattr(method, "__func__", method))
    if accepted is None:
        return dict(params), {}
    known = {k: v for k, v in params.items() if k in accepted}
    return known, {k: v for k, v in params.items() if k not in accepted}


@functools.cache
def _keywords(function: Any) -> frozenset[str] | None:
    """The keyword arguments ``function`` names; None when it takes any (``**kwargs``)."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters)
