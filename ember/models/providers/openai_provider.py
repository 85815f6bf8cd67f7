"""``openai/...``: OpenAI and every server speaking its chat-completions API.

vLLM, Ollama, llama.cpp's server and ``ember.models.server`` all speak it: point
``base_url`` at them (``models.instance("openai/llama3", base_url="http://localhost:11434/v1")``).
The key comes from ``OPENAI_API_KEY`` for OpenAI's own endpoint. At a custom
``base_url`` no key is sent unless ``api_key_env=`` names its variable (your OpenAI key
never goes to a third party by accident); ``"EMPTY"`` stands in, as vLLM documents.

The ``openai`` SDK does the HTTP (see ``ember.models.providers.sdk``).
"""

from __future__ import annotations

from typing import Any

from ember.models.parameters import OPENAI_PARAMETERS
from ember.models.providers.base import Failure, Prompt, to_messages
from ember.models.providers.sdk import SDKProvider
from ember.models.response import Response, make_usage

__all__ = ["OpenAIProvider"]


class OpenAIProvider(SDKProvider):
    """Chat completions through the ``openai`` SDK.

    Args:
        **options: Those of ``Provider``; ``base_url`` is the API root (ending in
            ``/v1``), None for api.openai.com.
    """

    name = "openai"
    api_key_variable = "OPENAI_API_KEY"
    default_max_concurrency = 32
    sdk = "openai"
    client_class = "OpenAI"
    parameters = OPENAI_PARAMETERS

    def list_models(self) -> list[str]:
        """Common OpenAI chat models (any name the endpoint serves works)."""
        return ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini"]

    def complete(self, model: str, prompt: Prompt, **params: Any) -> Response:
        """One chat-completions request."""
        messages = to_messages(prompt)
        reply = self.request(
            lambda client: client.chat.completions.create(model=model, messages=messages, **params)
        )
        if not reply.choices:
            raise Failure(None, "the response held no choices")
        text = reply.choices[0].message.content or ""
        usage = reply.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        return Response(text, make_usage(*tokens), f"{self.name}/{model}")
