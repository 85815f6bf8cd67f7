"""The official SDKs' request methods, registered as ops (see ``registry.py``).

``client.chat.completions.create(...)`` (and ``.parse(...)``, structured outputs),
``client.responses.create(...)``,
``client.completions.create(...)``, ``client.embeddings.create(...)`` (openai) and
``client.messages.create(...)`` (anthropic), called from jitted code, are ops: named
by method and model, bounded per endpoint (the client's base URL: 32 requests in
flight for openai, 16 for anthropic, as ``ember.models`` does), typed by the response
class so ``resp.choices[0].message.content`` waits too, and raising the SDK's own
exceptions. ``stream=True`` calls run at once: a stream is read as it arrives.

Entries are registered by name: no SDK is imported until the user's code imports it.
Change a bound with ``xcs.register_op(<target>, max_concurrency=n)``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ember.xcs._internal.dispatch.registry import register_op

__all__ = ["ANTHROPIC_MAX_CONCURRENCY", "OPENAI_MAX_CONCURRENCY", "SDK_OPS"]

OPENAI_MAX_CONCURRENCY = 32
ANTHROPIC_MAX_CONCURRENCY = 16


def _base_url(resource: Any) -> Hashable:
    """The endpoint of an SDK resource (``client.chat.completions``): its base URL."""
    return str(resource._client.base_url)


def _model(*args: Any, model: Any = None, **kwargs: Any) -> str | None:
    """The ``model`` argument, when it is a plain string (not a pending value)."""
    return model if type(model) is str else None


def _streams(*args: Any, stream: Any = False, **kwargs: Any) -> bool:
    """Whether the request streams (``stream=True``): then it runs at once."""
    return stream is True


SDK_OPS: dict[str, tuple[str, str, int]] = {
    # target: (node name, response type, default bound per endpoint)
    "openai.resources.chat:Completions.create": (
        "chat.completions.create",
        "openai.types.chat:ChatCompletion",
        OPENAI_MAX_CONCURRENCY,
    ),
    "openai.resources.chat:Completions.parse": (
        "chat.completions.parse",
        "openai.types.chat:ParsedChatCompletion",
        OPENAI_MAX_CONCURRENCY,
    ),
    "openai.resources.responses:Responses.create": (
        "responses.create",
        "openai.types.responses:Response",
        OPENAI_MAX_CONCURRENCY,
    ),
    "openai.resources.completions:Completions.create": (
        "completions.create",
        "openai.types:Completion",
        OPENAI_MAX_CONCURRENCY,
    ),
    "openai.resources.embeddings:Embeddings.create": (
        "embeddings.create",
        "openai.types:CreateEmbeddingResponse",
        OPENAI_MAX_CONCURRENCY,
    ),
    "anthropic.resources.messages:Messages.create": (
        "messages.create",
        "anthropic.types:Message",
        ANTHROPIC_MAX_CONCURRENCY,
    ),
}
# The async clients' methods (AsyncOpenAI, AsyncAnthropic): the same ops, awaited.
SDK_OPS.update({target.replace(":", ":Async", 1): entry for target, entry in list(SDK_OPS.items())})
"""The built-in entries, documented in ``docs/existing-code.md``."""


for _target, (_name, _returns, _bound) in SDK_OPS.items():
    register_op(
        _target,
        name=_name,
        max_concurrency=_bound,
        endpoint=_base_url,
        label=_model,
        run_now=_streams,
        returns=_returns,
    )
