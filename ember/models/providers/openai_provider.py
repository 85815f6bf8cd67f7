"""``openai/...``: OpenAI and every server speaking its chat-completions API.

vLLM, Ollama, llama.cpp's server and ``ember.models.server`` all speak it: point
``base_url`` at them (``models.instance("openai/llama3", base_url="http://localhost:11434/v1")``).
The key comes from ``OPENAI_API_KEY`` for OpenAI's own endpoint. At a custom
``base_url`` no key is sent unless ``api_key_env=`` names its variable (your OpenAI key
never goes to a third party by accident); ``"EMPTY"`` stands in, as vLLM documents.

The ``openai`` SDK does the HTTP; its own retries are off, since
``invoke`` retries with jitter and
honours ``Retry-After`` once for every provider.
"""

from __future__ import annotations

import threading
from typing import Any

from ember.models.providers.base import Failure, Prompt, Provider, to_messages
from ember.models.response import Response, make_usage

__all__ = ["OpenAIProvider", "retry_after_seconds"]


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header, when it holds a number."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: rare for APIs; fall back to backoff
        if seconds >= 0:
            return seconds
    return None


class OpenAIProvider(Provider):
    """Chat completions through the ``openai`` SDK.

    Args:
        **options: Those of ``Provider``;
            ``base_url`` is the API root (ending in ``/v1``), None for api.openai.com.
    """

    name = "openai"
    api_key_variable = "OPENAI_API_KEY"
    default_max_concurrency = 32

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._client: Any = None
        self._client_lock = threading.Lock()

    def list_models(self) -> list[str]:
        """Common OpenAI chat models (any name the endpoint serves works)."""
        return ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini"]

    def client(self) -> Any:
        """The SDK client, made on first use (importing ``openai`` is slow)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    try:
                        import openai
                    except ImportError as error:
                        raise ImportError(
                            "the openai provider needs the openai SDK: "
                            "pip install 'ember-xcs[models]'"
                        ) from error
                    key = self.api_key() or "EMPTY"  # local servers need none
                    self._client = openai.OpenAI(
                        api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0
                    )
        return self._client

    def complete(self, model: str, prompt: Prompt, **params: Any) -> Response:
        """One chat-completions request."""
        client = self.client()  # first: it explains a missing SDK
        import openai

        try:
            reply = client.chat.completions.create(
                model=model, messages=to_messages(prompt), **params
            )
        except openai.APIStatusError as error:
            retry_after = retry_after_seconds(getattr(error.response, "headers", None))
            raise Failure(error.status_code, error.message, retry_after) from error
        except openai.APIConnectionError as error:  # includes APITimeoutError
            raise Failure(None, f"{type(error).__name__}: {error}") from error
        if not reply.choices:
            raise Failure(None, "the response held no choices")
        text = reply.choices[0].message.content or ""
        usage = reply.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        return Response(text, make_usage(*tokens), f"{self.name}/{model}")
