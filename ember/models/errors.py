"""Errors of ``ember.models``: each says what failed, for which model, and what to do.

::

    ModelError                     anything a model call cannot do
     +-- ModelNotFoundError        an id no provider serves
     +-- MissingAPIKeyError        the provider's key is not in the environment
     +-- SecretParameterError      a key passed as a call parameter or binding default
     |                             (also a TypeError)
     +-- UnknownParameterError     a parameter the provider does not take (a typo)
     |                             (also a TypeError)
     +-- ProviderError             the provider answered with an error (after retries)
          +-- RateLimitError       429: too many requests (after retries)

``ProviderError`` keeps the HTTP status (None for timeouts and connection failures),
the endpoint's URL and why the retries stopped, and chains the SDK's own exception as
``__cause__``; what the provider said is kept with any credential in it redacted. No
message here shows a key.
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
    "UnknownParameterError",
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


# Names that are no request parameter, and what to do instead.
_NOT_PARAMETERS = {
    "base_url": "the endpoint is chosen with the model, not sent in the request: "
    "models({model_id!r}, prompt, base_url=...) or models.instance({model_id!r}, base_url=...)",
    "api_key_env": "the key's variable is chosen with the model, not sent in the request: "
    "models({model_id!r}, prompt, api_key_env=...) or "
    "models.instance({model_id!r}, api_key_env=...)",
    "model": "the model comes from the id ({model_id!r})",
    "messages": "the messages are the prompt: pass them as models({model_id!r}, messages)",
    "prompt": "the prompt is the argument after the id: models({model_id!r}, prompt)",
    "stream": "ember.models returns whole responses; to stream, call the SDK's client "
    "directly (client.chat.completions.create(..., stream=True))",
}
_NOT_PARAMETERS["stream_options"] = _NOT_PARAMETERS["stream"]


class UnknownParameterError(ModelError, TypeError):
    """A call or a binding was given a parameter its provider does not take.

    Raised where the parameter is given (``models(...)``, ``models.instance(...)``, a
    binding's call), before any request, the same way for every built-in provider.

    Attributes:
        model_id: The model it was passed to.
        parameter: The parameter's name.
        suggestion: The known parameter closest to it (``temperature`` for
            ``temprature``), or None.
    """

    def __init__(self, model_id: str, parameter: str, suggestion: str | None = None) -> None:
        self.model_id = model_id
        self.parameter = parameter
        self.suggestion = suggestion
        instead = _NOT_PARAMETERS.get(parameter)
        if instead is not None:
            why = instead.format(model_id=model_id)
            message = f"model {model_id!r} takes no parameter {parameter!r}: {why}."
        else:
            check = f": did you mean {suggestion}?" if suggestion else ". Check the name."
            message = (
                f"model {model_id!r} has no parameter {parameter!r}{check} A field of the "
                "provider's API that ember does not list goes into the request as it is with "
                f"extra_body={{{parameter!r}: ...}} (the names each provider takes: "
                "ember.models.parameters)."
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model_id, self.parameter, self.suggestion))


class ProviderError(ModelError):
    """The provider answered with an error (or none), after any retries.

    Attributes:
        model_id: The model that was called.
        status: HTTP status, or None for timeouts and connection failures.
        message: What the provider said (a key in it redacted: a server may echo one),
            or, without an answer, what went wrong (connection refused, timed out).
        attempts: How many requests were made.
        url: The URL of the last request (without credentials), when known.
        reason: Why no further attempt was made (attempts used up, a status not worth
            retrying, a ``Retry-After`` over the limit, the deadline), when known.
    """

    def __init__(
        self,
        model_id: str,
        status: int | None,
        message: str,
        attempts: int,
        url: str | None = None,
        reason: str | None = None,
    ) -> None:
        message = redact_text(message)
        self.model_id = model_id
        self.status = status
        self.message = message
        self.attempts = attempts
        self.url = url
        self.reason = reason
        what = f"HTTP {status}" if status is not None else "no answer"
        where = f" at {url}" if url else ""
        text = (
            f"model {model_id!r} failed ({what}) after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}{where}: {message.rstrip()}"
        )
        if reason:
            text += f"{'' if text.endswith('.') else '.'} {reason}"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        fields = (self.model_id, self.status, self.message, self.attempts, self.url, self.reason)
        return (type(self), fields)


class RateLimitError(ProviderError):
    """The provider kept answering 429 (too many requests) through every retry."""
