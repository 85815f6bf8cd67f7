"""How a model call looks in OpenTelemetry: its span's name and GenAI attributes.

A model binding's op spec carries a :class:`ModelCallSpan` (``OpSpec.describe``);
``ember.xcs`` calls it when it turns a traced call into spans. The names follow the
OpenTelemetry semantic conventions for generative AI where they apply: the span is
``chat {model}``, with ``gen_ai.operation.name``, ``gen_ai.provider.name`` (and the
older ``gen_ai.system``), ``gen_ai.request.model``, the sampling parameters the call
sent (``gen_ai.request.temperature``, ``gen_ai.request.max_tokens``, ...),
``gen_ai.usage.input_tokens``/``output_tokens``, ``server.address``/``server.port``
and ``error.type``; Ember adds ``ember.model_id``, ``ember.cost``, ``ember.retries`` and
``ember.cached`` (the response cache answered: no request was sent).

Never in a span: prompts and answers (the conventions make content opt-in), any
parameter but the numeric sampling ones below (so no credential can pass), and the
endpoint's user, password or query. Nothing here imports OpenTelemetry: it builds
plain dicts.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ember.models.errors import ProviderError
from ember.models.response import Response

__all__ = ["ModelCallSpan"]

# Call parameter -> attribute, for numeric sampling parameters only.
_PARAMETERS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}


@dataclasses.dataclass(frozen=True)
class ModelCallSpan:
    """Describes calls of one model at one endpoint (an ``OpSpec.describe``).

    Attributes:
        provider: The provider's registered name (``openai``, ``simulated``).
        model: The model's name at the provider (``gpt-4o``).
        base_url: The endpoint, if not the provider's default.
    """

    provider: str
    model: str
    base_url: str | None = None

    def _fixed(self) -> dict[str, Any]:
        """The attributes every call of this model has."""
        fixed: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider,
            "gen_ai.system": self.provider,
            "gen_ai.request.model": self.model,
            "ember.model_id": f"{self.provider}/{self.model}",
        }
        fixed.update(_server(self.base_url))
        return fixed

    def __call__(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        value: Any,
        error: BaseException | None,
    ) -> tuple[str, dict[str, Any]]:
        """The span's name and attributes for one call (see the module docstring)."""
        attributes = self._fixed()
        for name, key in _PARAMETERS.items():
            given = kwargs.get(name)
            if isinstance(given, (int, float)) and not isinstance(given, bool):
                attributes[key] = given
        if isinstance(value, Response):
            usage = value.usage
            attributes["gen_ai.usage.input_tokens"] = int(usage.get("prompt_tokens", 0))
            attributes["gen_ai.usage.output_tokens"] = int(usage.get("completion_tokens", 0))
            attributes["ember.cost"] = float(usage.get("cost", 0.0))
            attributes["ember.retries"] = max(value.attempts - 1, 0)
            attributes["ember.cached"] = value.cached
        elif isinstance(error, ProviderError):
            attributes["ember.retries"] = error.attempts - 1
            if error.status is not None:
                attributes["http.response.status_code"] = error.status
        return f"chat {self.model}", attributes


def _server(base_url: str | None) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of an endpoint: the host only, no credentials."""
    if not base_url:
        return {}
    try:
        parts = urllib.parse.urlsplit(base_url)
        host, port = parts.hostname, parts.port
    except ValueError:  # not a URL: say nothing rather than something wrong
        return {}
    found: dict[str, Any] = {}
    if host:
        found["server.address"] = host
    if port is not None:
        found["server.port"] = port
    return found
