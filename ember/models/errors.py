"""Errors of ``ember.models``: each says what failed, for which model, and what to do.

::

    ModelError                     anything a model call cannot do
     +-- ModelNotFoundError        an id no provider serves
     +-- MissingAPIKeyError        the provider's key is not in the environment
     +-- ProviderError             the provider answered with an error (after retries)
          +-- RateLimitError       429: too many requests (after retries)

``ProviderError`` keeps the HTTP status (None for timeouts and connection failures)
and chains the SDK's own exception as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "MissingAPIKeyError",
    "ModelError",
    "ModelNotFoundError",
    "ProviderError",
    "RateLimitError",
]


class ModelError(Exception):
    """Base class of every error ``ember.models`` raises."""


class ModelNotFoundError(ModelError, LookupError):
    """No registered provider serves this model id."""


class MissingAPIKeyError(ModelError):
    """The provider needs an API key and its environment variable is not set.

    Attributes:
        provider: The provider's name.
        variable: The environment variable to set.
    """

    def __init__(self, provider: str, variable: str) -> None:
        self.provider = provider
        self.variable = variable
        super().__init__(
            f"provider {provider!r} needs an API key: set the environment variable {variable} "
            "(keys are read from the environment only, never from code or logs)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.provider, self.variable))


class ProviderError(ModelError):
    """The provider answered with an error (or none), after any retries.

    Attributes:
        model_id: The model that was called.
        status: HTTP status, or None for timeouts and connection failures.
        message: What the provider said.
        attempts: How many requests were made.
    """

    def __init__(self, model_id: str, status: int | None, message: str, attempts: int) -> None:
        self.model_id = model_id
        self.status = status
        self.message = message
        self.attempts = attempts
        what = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(
            f"model {model_id!r} failed ({what}) after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}: {message}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model_id, self.status, self.message, self.attempts))


class RateLimitError(ProviderError):
    """The provider kept answering 429 (too many requests) through every retry."""
