"""``anthropic/...`` (and bare ``claude-...`` ids): Claude through the ``anthropic`` SDK.

System messages in a chat prompt become the request's ``system`` field, as the
messages API wants; ``max_tokens`` (required by the API) defaults to 1024. The key
comes from ``ANTHROPIC_API_KEY`` for Anthropic's endpoint; at a custom ``base_url``
only from the variable ``api_key_env=`` names (``"EMPTY"`` otherwise). The SDK does the
HTTP (see ``ember.models.providers.sdk``).
"""

from __future__ import annotations

from typing import Any

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
        reply = self.request(
            lambda client: client.messages.create(model=model, messages=chat, **params)
        )
        text = "".join(getattr(block, "text", "") for block in reply.content)
        usage = reply.usage
        return Response(
            text, make_usage(usage.input_tokens, usage.output_tokens), f"{self.name}/{model}"
        )
