"""``ember.models``: call LLMs by id; every call is an xcs op.

::

    from ember import models

    r = models("simulated/chat", "Why is the sky blue?")     # a Response
    print(r.text, r.usage["total_tokens"])
    fast = models.instance("openai/gpt-4o-mini", temperature=0.2)
    fast("Name a colour.", max_tokens=5)                   # per-call overrides

The module itself is callable: ``models(model_id, prompt, **params)``. Inside
``@xcs.jit`` each call returns a deferred response at once, so independent calls
run at the same time (at most ``max_concurrency`` per provider).

Providers: ``simulated/...`` (offline, deterministic; ``latency=``, ``failure_rate=``),
``openai/...`` (any OpenAI-compatible endpoint via ``base_url=``, given to
``models(...)`` or ``models.instance(...)``), ``anthropic/...``.
Keys come from ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` (or the variable
``api_key_env=`` names) only: a parameter such as ``api_key=`` raises
``SecretParameterError``. Parameters are checked before any request, the same way
for every provider: a name the provider does not take raises
``UnknownParameterError`` (``did you mean temperature?``). Failed requests are
retried on 429, 5xx, timeouts and lost connections, with exponential backoff and
jitter; a ``ProviderError`` names the endpoint and why the retries stopped. Retries and
give-ups are logged on the ``ember.models`` logger, and listeners (``on_call``) hear them.
``ember.models.server`` is a local server speaking both HTTP APIs.
"""

from __future__ import annotations

import builtins
import os
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any

from ember.models import response_cache
from ember.models.binding import ModelBinding
from ember.models.errors import (
    MissingAPIKeyError,
    ModelError,
    ModelNotFoundError,
    ProviderError,
    RateLimitError,
    SecretParameterError,
    UnknownParameterError,
)
from ember.models.providers.base import Prompt, Provider, RetryPolicy
from ember.models.registry import CallEvent, default_registry
from ember.models.response import Response
from ember.models.response_cache import CacheError, CacheInfo, ResponseCache
from ember.xcs import OpSpec

__all__ = [
    "CacheError",
    "CacheInfo",
    "CallEvent",
    "MissingAPIKeyError",
    "ModelBinding",
    "ModelError",
    "ModelNotFoundError",
    "Prompt",
    "Provider",
    "ProviderError",
    "RateLimitError",
    "Response",
    "ResponseCache",
    "RetryPolicy",
    "SecretParameterError",
    "UnknownParameterError",
    "acall",
    "cache",
    "cache_clear",
    "cache_info",
    "instance",
    "list",
    "no_cache",
    "on_call",
    "providers",
    "register_provider",
    "reset_usage",
    "set_price",
    "usage",
    "usage_by_model",
]

_registry = default_registry


def instance(
    model_id: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    **defaults: Any,
) -> ModelBinding:
    """A model with default parameters, called like ``models`` but without the id.

    Args:
        model_id: ``provider/model`` (``openai/gpt-4o``, ``simulated/echo``), or a bare
            ``gpt-...``/``claude-...`` id.
        base_url: Another endpoint speaking the provider's API (vLLM, Ollama, the
            local server), e.g. ``http://localhost:8000/v1`` for ``openai/...``.
        api_key_env: The environment variable with the key for ``base_url``. Without
            it no key is sent there (``OPENAI_API_KEY`` and ``ANTHROPIC_API_KEY`` go
            only to OpenAI's and Anthropic's own endpoints).
        **defaults: Parameters for every call; a call's own parameters win.

    Raises:
        ModelNotFoundError: No registered provider serves ``model_id``.
        SecretParameterError: A default is a credential (``api_key=``): name its
            environment variable with ``api_key_env=`` instead.
        UnknownParameterError: The provider takes no parameter of a default's name.
    """
    return _registry.instance(model_id, base_url=base_url, api_key_env=api_key_env, **defaults)


def list() -> builtins.list[str]:
    """Known model ids (``provider/model``) of every registered provider."""
    return _registry.list()


def providers() -> builtins.list[str]:
    """Registered provider names."""
    return _registry.providers()


def register_provider(name: str, provider: type[Provider] | Provider) -> None:
    """Serve ``name/...`` model ids with a ``Provider`` subclass or instance."""
    _registry.register_provider(name, provider)


def set_price(model_id: str, *, prompt: float, completion: float) -> None:
    """Price a model in US dollars per million prompt / completion tokens (for ``cost``).

    Inside ``@jit`` it first waits for pending calls, which plain Python made before
    the price was set.
    """
    _settled()
    _registry.set_price(model_id, prompt=prompt, completion=completion)


def _settled() -> None:
    from ember.xcs import barrier

    barrier()  # inside @jit: finish pending calls so the totals include them


def usage(model_id: str | None = None) -> dict[str, Any]:
    """Totals of successful calls (``calls``, tokens, ``cost``): one model's, or all.

    Calls the response cache answered are counted apart, in ``cached_calls`` (they
    sent no request, used no tokens and cost nothing).

    Inside ``@jit`` it first waits for pending calls (``xcs.barrier()``).
    """
    _settled()
    return _registry.usage(model_id)


def usage_by_model() -> dict[str, dict[str, Any]]:
    """Totals per model id (after ``xcs.barrier()`` inside ``@jit``)."""
    _settled()
    return _registry.usage_by_model()


def reset_usage() -> None:
    """Forget every usage total."""
    _settled()
    _registry.reset_usage()


def cache(
    path: str | os.PathLike[str] | None = None,
    *,
    memory: bool = False,
    max_bytes: int = response_cache.DEFAULT_MAX_BYTES,
    always: bool = False,
) -> ResponseCache:
    """Turn the response cache on: answers are kept, and identical calls reuse them.

    Called as a statement it stays on for the process (until ``no_cache()``); as
    ``with models.cache(...):`` it is on for the block, then whatever was on before is
    again. Whether a call uses the cache is decided where the call is made (inside
    ``@jit`` too), as plain Python decides it.

    Args:
        path: The SQLite file (shared by threads and processes); None for
            ``responses.sqlite3`` in the user cache directory (or ``$EMBER_CACHE_DIR``).
        memory: Keep answers in this process's memory instead (gone at exit).
        max_bytes: Stored bytes past which the least recently used answers go (1 GiB).
        always: Also answer calls that sample (no ``temperature=0``, no ``seed``) from
            the cache: each prompt then gets its first answer again.

    Returns:
        The cache (``.info()``, ``.clear()``, ``.close()``).

    Raises:
        CacheError: The file is not an Ember cache (another program's database, a
            damaged file, a newer format) or cannot be created.
    """
    return response_cache.turn_on(
        ResponseCache(path, memory=memory, max_bytes=max_bytes, always=always)
    )


def no_cache() -> response_cache.CachingOff:
    """Turn the response cache off: for the process, or for a ``with`` block."""
    return response_cache.CachingOff()


def cache_info(path: str | os.PathLike[str] | None = None) -> CacheInfo:
    """What the cache that is on holds and did (hits, misses, entries, bytes).

    With no cache on, or with ``path``: the cache file at ``path`` (default: the
    default file) as it is; a file that does not exist is an empty cache (not created).
    """
    return response_cache.info(path)


def cache_clear(path: str | os.PathLike[str] | None = None) -> None:
    """Forget every stored answer: of the cache that is on.

    With no cache on, or with ``path``: of the cache file at ``path`` (default: the
    default file), if it exists.
    """
    response_cache.clear(path)


def on_call(listener: Callable[[CallEvent], None]) -> Callable[[], None]:
    """Call ``listener(event)`` after every model call, and before every retry.

    ``event.kind`` says which: ``"call"`` for a finished call (one per call: what
    progress bars count), ``"retry"`` for a failed attempt about to be tried again
    (its ``attempt``, ``status``, ``backoff``, ``retry_after``; see ``CallEvent``).
    Listeners run on the thread that made the call; what they raise, the call raises.
    Inside ``@jit``, adding and removing a listener first wait for pending calls, so
    it hears exactly the calls plain Python would make while it is there.

    Returns:
        A function that removes the listener.
    """
    _settled()
    remove = _registry.on_call(listener)

    def remove_after_pending() -> None:
        _settled()
        remove()

    return remove_after_pending


_ANY_MODEL = OpSpec("models")


class _AsyncModels:
    """``models.acall``: op-like (``__xcs_op__``), so ``@jit`` defers its calls."""

    __xcs_op__ = _ANY_MODEL

    def __call__(self, model_id: str, prompt: Prompt, /, **params: Any) -> Awaitable[Response]:
        """``await models.acall(model_id, prompt, **params)``: a model call from async code.

        The request runs on a thread, so the event loop goes on; in an ``async def``
        under ``@jit`` it is an op like any other. ``base_url=``/``api_key_env=`` as
        for ``models(...)``.
        """
        base_url = params.pop("base_url", None)
        api_key_env = params.pop("api_key_env", None)
        return _registry.binding(model_id, base_url, api_key_env).acall(prompt, **params)

    def __repr__(self) -> str:
        return "<ember.models.acall>"


acall = _AsyncModels()


class _ModelsModule(types.ModuleType):
    """The module's type: calling the module calls a model."""

    @property
    def __xcs_op__(self) -> OpSpec:
        # Marks the module as op-like, so @jit defers ``models(id, prompt)`` calls; each
        # call is then recorded under its model's own spec.
        return _ANY_MODEL

    def __call__(self, model_id: str, prompt: Prompt, /, **params: Any) -> Response:
        """``models(model_id, prompt, **params)``: one call of one model.

        ``base_url=`` and ``api_key_env=`` among ``params`` choose the endpoint, as
        ``models.instance`` takes them; the rest are checked and sent.
        """
        return _registry.call(model_id, prompt, params)


sys.modules[__name__].__class__ = _ModelsModule
