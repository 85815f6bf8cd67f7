"""``anthropic/...`` (and bare ``claude-...`` ids): Claude through the ``anthropic`` SDK.

System messages in a chat prompt become the request's ``system`` field, as the
messages API wants; ``max_tokens`` (required by the API) defaults to 1024. The key
comes from ``ANTHROPIC_API_KEY`` for Anthropic's endpoint; at a custom ``base_url``
only from the variable ``api_key_env=`` names (``"EMPTY"`` otherwise). The SDK's own
retries are off (the shared retry loop does them).
"""

from __future__ import annotations

import threading
from typing import Any

from ember.models.providers.base import Failure, Prompt, Provider, to_messages
from ember.models.providers.openai_provider import retry_after_seconds
from ember.models.response import Response, make_usage

__all__ = ["AnthropicProvider"]

DEFAULT_MAX_TOKENS = 1024


class AnthropicProvider(Provider):
    """Messages through the ``anthropic`` SDK.

    Args:
        **options: Those of ``Provider``;
            ``base_url`` is the API root (without ``/v1``), None for api.anthropic.com.
    """

    name = "anthropic"
    api_key_variable = "ANTHROPIC_API_KEY"
    default_max_concurrency = 16

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._client: Any = None
        self._client_lock = threading.Lock()

    def list_models(self) -> list[str]:
        """Common Claude models (any name the endpoint serves works)."""
        return ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]

    def client(self) -> Any:
        """The SDK client, made on first use."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    try:
                        import anthropic
                    except ImportError as error:
                        raise ImportError(
                            "the anthropic provider needs the anthropic SDK: "
                            "pip install 'ember-xcs[models]'"
                        ) from error
                    key = self.api_key() or "EMPTY"  # local servers need none
                    self._client = anthropic.Anthropic(
                        api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0
                    )
        return self._client

    def complete(self, model: str, prompt: Prompt, **params: Any) -> Response:
        """One messages request."""
        client = self.client()  # first: it explains a missing SDK
        import anthropic

        messages = to_messages(prompt)
        system = "\n".join(str(m["content"]) for m in messages if m["role"] == "system")
        chat = [m for m in messages if m["role"] != "system"]
        if system and "system" not in params:
            params["system"] = system
        params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        try:
            reply = client.messages.create(model=model, messages=chat, **params)
        except anthropic.APIStatusError as error:
            retry_after = retry_after_seconds(getattr(error.response, "headers", None))
            raise Failure(error.status_code, error.message, retry_after) from error
        except anthropic.APIConnectionError as error:  # includes APITimeoutError
            raise Failure(None, f"{type(error).__name__}: {error}") from error
        text = "".join(getattr(block, "text", "") for block in reply.content)
        usage = reply.usage
        return Response(
            text, make_usage(usage.input_tokens, usage.output_tokens), f"{self.name}/{model}"
        )
