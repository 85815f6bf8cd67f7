"""The provider contract, and the retry loop every provider shares.

A ``Provider`` turns ``complete(model, prompt, **params)`` into a
``Response``. When the service fails it raises
``Failure`` (the HTTP status, the service's message, the ``Retry-After`` it
sent) chained to the SDK's own exception; ``Provider.invoke`` retries the
failures a ``RetryPolicy`` calls transient -- 429, 5xx, timeouts, lost
connections -- with exponential backoff and full jitter (or the server's
``Retry-After``), and turns what is left into ``ProviderError``
or ``RateLimitError``.

Keys come only from the environment (``api_key``), and go only where the SDK puts
keys (the authentication header): ``invoke`` refuses a parameter named like a
credential (``api_key=``, ``token=``) with ``SecretParameterError`` before any
request, so a key never lands in a request body.

Providers hold no per-call state: one instance serves every thread at once.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeAlias, cast

from ember._redact import redact_text
from ember.models.errors import (
    MissingAPIKeyError,
    ProviderError,
    RateLimitError,
    refuse_secret_parameters,
)
from ember.models.response import Response

__all__ = ["Failure", "Message", "Prompt", "Provider", "RetryPolicy", "to_messages"]

Message: TypeAlias = Mapping[str, Any]
Prompt: TypeAlias = str | Sequence[Message] | Response
"""A prompt: a string (one user message), chat messages (``{"role", "content"}``), or
another model's response (its text), so models chain."""

_TRANSIENT = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class Failure(Exception):
    """A request that failed; raised by ``Provider.complete``, handled by the retry loop.

    Attributes:
        status: HTTP status, or None when no answer came (timeout, lost connection).
        message: What the service said, without credentials.
        retry_after: Seconds the service asked to wait, when it said.
    """

    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(status, message, retry_after)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status or 'no answer'}: {self.message}"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a failed request again.

    Attributes:
        attempts: Requests made at most (1 means no retry).
        base: First backoff ceiling in seconds; it doubles each attempt.
        cap: Largest backoff ceiling in seconds.
        max_retry_after: A ``Retry-After`` longer than this ends the retries.
        statuses: HTTP statuses worth retrying (None, no answer, always is).
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = _TRANSIENT

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be an int >= 1, got {self.attempts!r}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("RetryPolicy.base and .cap must be >= 0 seconds")

    def retryable(self, failure: Failure) -> bool:
        """Whether ``failure`` is transient (worth another attempt)."""
        return failure.status is None or failure.status in self.statuses

    def delay(self, attempt: int, failure: Failure, rng: random.Random) -> float | None:
        """Seconds to wait after failed attempt ``attempt`` (1-based); None to give up."""
        if attempt >= self.attempts or not self.retryable(failure):
            return None
        if failure.retry_after is not None:
            wait = failure.retry_after
            return wait if wait <= self.max_retry_after else None
        # Full jitter: spreads clients that failed together (AWS architecture blog).
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


def to_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """Chat messages from a prompt.

    Raises:
        TypeError: The prompt is neither a string nor a sequence of messages.
    """
    if isinstance(prompt, Response):
        prompt = prompt.text
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt):
        messages = [dict(cast(Message, m)) for m in prompt]
        for message in messages:
            if "role" not in message or "content" not in message:
                raise TypeError(f"a chat message needs 'role' and 'content' keys, got {message!r}")
        return messages
    raise TypeError(
        "a prompt is a string, a list of chat messages ({'role': ..., 'content': ...}) "
        f"or a Response, got {type(prompt).__name__}"
    )


def prompt_text(prompt: Prompt) -> str:
    """The text of a prompt (messages joined), for simulations and token estimates."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Response):
        return prompt.text
    return "\n".join(str(m["content"]) for m in to_messages(prompt))


class Provider(abc.ABC):
    """A service that completes prompts (OpenAI, Anthropic, a simulation).

    Subclasses set ``name`` and implement ``complete``; register them with
    ``models.register_provider(name, cls)``.

    Args:
        base_url: Where the service listens; None for the provider's default.
        timeout: Seconds one request may take before it counts as failed.
        max_concurrency: Requests in flight at once across every ``@jit`` call
            and thread tracing one (the service's rate limit), or None for no bound.
        retry: When to retry; the provider's default when None.
        api_key_env: The environment variable holding the key. By default the
            provider's own (``api_key_variable``) at its own endpoint, and none
            at a custom ``base_url``: a key is never sent to an endpoint it was not
            meant for unless you name it here.
    """

    name: ClassVar[str] = "provider"
    api_key_variable: ClassVar[str | None] = None
    """Environment variable holding the API key, or None when no key is needed."""
    default_max_concurrency: ClassVar[int | None] = None
    default_retry: ClassVar[RetryPolicy] = RetryPolicy()

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        api_key_env: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.base_url = base_url
        self.timeout = timeout
        self.max_concurrency = (
            max_concurrency if max_concurrency is not None else self.default_max_concurrency
        )
        self.retry = retry or self.default_retry
        self.api_key_env = api_key_env
        self._rng = random.Random()

    @abc.abstractmethod
    def complete(self, model: str, prompt: Prompt, **params: Any) -> Response:
        """Make one request; return the response or raise ``Failure``.

        Args:
            model: The model name, without the provider prefix.
            prompt: A string or chat messages.
            **params: Sampling parameters (``temperature``, ``max_tokens``, ...).
        """

    def list_models(self) -> list[str]:
        """Model names this provider is known to serve (may be incomplete)."""
        return []

    def api_key(self, *, required: bool = True) -> str | None:
        """The API key from the environment, or None when this endpoint needs none.

        The variable is ``api_key_env`` when given; otherwise the provider's own
        variable at its own endpoint, and none at a custom ``base_url``.

        Raises:
            MissingAPIKeyError: ``required`` and the variable is unset or empty.
        """
        variable = self.api_key_env
        if variable is None and self.base_url is None:
            variable = self.api_key_variable
        if variable is None:
            return None
        key = os.environ.get(variable) or None
        if key is None and required:
            raise MissingAPIKeyError(self.name, variable)
        return key

    def invoke(
        self, model_id: str, model: str, prompt: Prompt, params: Mapping[str, Any]
    ) -> Response:
        """Complete ``prompt``, retrying transient failures.

        Raises:
            RateLimitError: The service answered 429 to the last attempt.
            ProviderError: Any other failure, after the retries it deserved.
            SecretParameterError: A parameter is a credential (``api_key=``); no
                request is made.
        """
        refuse_secret_parameters(model_id, params, self.api_key_variable)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.complete(model, prompt, **params)
            except Failure as failure:
                wait = self.retry.delay(attempt, failure, self._rng)
                if wait is None:
                    kind = RateLimitError if failure.status == 429 else ProviderError
                    raise kind(model_id, failure.status, failure.message, attempt) from (
                        failure.__cause__ or failure
                    )
            time.sleep(wait)

    def __repr__(self) -> str:
        where = f" at {redact_text(self.base_url)}" if self.base_url else ""
        return f"<{type(self).__name__} {self.name!r}{where}>"
