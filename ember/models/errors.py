"""Errors of ``ember.models``: each says what failed, for which model, and what to do.

::

    ModelError                     anything a model call cannot do
     +-- ModelNotFoundError        an id no provider serves
     +-- MissingAPIKeyError        the provider's key is not in the environment
     +-- SecretParameterError      a key passed as a call parameter or binding default
     |                             (also a TypeError)
     +-- ProviderError             the provider answered with an error (after retries)
          +-- RateLimitError       429: too many requests (after retries)

``ProviderError`` keeps the HTTP status (None for timeouts and connection failures)
and chains the SDK's own exception as ``__cause__``; what the provider said is kept
with any credential in it redacted. No message here shows a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ember._redact import is_secret_name, redact_text

__all__ = [
    "MissingAPIKeyError",
    "ModelError",
    "ModelNotFoundError",
    "ProviderError",
    "RateLimitError",
    "SecretParameterError",
    "refuse_secret_parameters",
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


class SecretParameterError(ModelError, TypeError):
    """A credential was passed as a parameter (``api_key=``) of a call or a binding.

    Parameters go into the request body, and are shown in traces: a key is taken only
    from an environment variable, sent only in the request's authentication header.

    Attributes:
        model_id: The model it was passed to.
        parameter: The parameter's name (the value is kept nowhere).
        variable: The provider's own key variable (``OPENAI_API_KEY``), if it has one.
    """

    def __init__(self, model_id: str, parameter: str, variable: str | None) -> None:
        self.model_id = model_id
        self.parameter = parameter
        self.variable = variable
        own = f" (or set {variable} for the provider's own endpoint)" if variable else ""
        super().__init__(
            f"model {model_id!r} was given a credential as the parameter {parameter!r}, but "
            "parameters go into the request body and into traces, so keys are read from the "
            "environment only. Put the key in an environment variable and name it: "
            f"models.instance({model_id!r}, api_key_env='MY_KEY_VARIABLE'){own}."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model_id, self.parameter, self.variable))


def refuse_secret_parameters(
    model_id: str, params: Mapping[str, Any], variable: str | None = None
) -> None:
    """Raise if a parameter's name says it holds a credential (``api_key``, ``token``).

    Args:
        model_id: The model the parameters are for.
        params: A call's parameters or a binding's defaults.
        variable: The provider's own key variable, named in the message.

    Raises:
        SecretParameterError: For the first such parameter.
    """
    for name in params:
        if is_secret_name(name):
            raise SecretParameterError(model_id, name, variable)


class ProviderError(ModelError):
    """The provider answered with an error (or none), after any retries.

    Attributes:
        model_id: The model that was called.
        status: HTTP status, or None for timeouts and connection failures.
        message: What the provider said (a key in it redacted: a server may echo one).
        attempts: How many requests were made.
    """

    def __init__(self, model_id: str, status: int | None, message: str, attempts: int) -> None:
        message = redact_text(message)
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
