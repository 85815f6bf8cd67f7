"""``ModelBinding``: one model with default parameters, callable as an xcs op.

``models.instance("openai/gpt-4o", temperature=0.2)`` returns one. Calling it sends
the prompt with the defaults (a call's own parameters win) and returns a
``Response``. It is an op: inside ``@jit`` a call
records a node and returns a deferred response, so independent calls overlap,
each provider's calls bounded by that provider's ``max_concurrency``.

Parameters are checked where they are given, before any request
(``ember.models.parameters``): a name the provider does not take raises
``UnknownParameterError`` (``did you mean temperature?``), and a key is never a
parameter: one named like a credential (``api_key``, ``token``...) raises
``SecretParameterError``; keys come from environment variables (``api_key_env=``).
``base_url=`` and ``api_key_env=`` given to a call send that call to another endpoint
(the same model and defaults, bound there). The repr shows defaults as every display
does (``ember._redact``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from ember._redact import shown, shown_arguments
from ember.models import response_cache
from ember.models.errors import ProviderError
from ember.models.parameters import CLIENT_OPTIONS, check_parameters
from ember.models.providers.base import RETRY_LISTENER, Failure
from ember.models.response import Response
from ember.xcs import OpSpec, call_op, served_from_cache
from ember.xcs._internal.protocol import acall_op, op_position

if TYPE_CHECKING:
    from ember.models.providers.base import Prompt, Provider
    from ember.models.registry import ModelRegistry

__all__ = ["ModelBinding"]


class ModelBinding:
    """A model and its default parameters; call it with a prompt.

    Attributes:
        model_id: ``provider/model``.
        defaults: Parameters sent with every call unless the call overrides them.
        provider: The provider serving it.
    """

    __xcs_op__: OpSpec

    def __init__(
        self,
        registry: ModelRegistry,
        model_id: str,
        provider: Provider,
        model: str,
        defaults: Mapping[str, Any],
        spec: OpSpec,
    ) -> None:
        check_parameters(model_id, provider, defaults)
        self.model_id = model_id
        self.provider = provider
        self.defaults = dict(defaults)
        self.__xcs_op__ = spec
        self._registry = registry
        self._model = model
        self._last_cached: _Cached | None = None

    def __call__(self, prompt: Prompt, **params: Any) -> Response:
        """Send ``prompt`` (a string or chat messages) and return the response.

        Args:
            prompt: The prompt.
            **params: Parameters for this call (``temperature``, ``max_tokens``, ...);
                they override the binding's defaults. ``base_url=`` and
                ``api_key_env=`` send this call to another endpoint.

        Raises:
            ProviderError: The provider failed after its retries (``RateLimitError``
                for 429s).
            MissingAPIKeyError: The provider's key is not in the environment.
            SecretParameterError: A parameter is a credential (``api_key=``); raised
                here, before the call is made or recorded.
            UnknownParameterError: The provider takes no parameter of that name;
                raised here, before the call is made or recorded.
        """
        if params and not CLIENT_OPTIONS.isdisjoint(params):
            return self._elsewhere(params)(prompt, **params)
        run, merged = self._prepared(params)
        return call_op(self.__xcs_op__, run, (prompt,), merged)  # type: ignore[no-any-return]

    def _prepared(self, params: dict[str, Any]) -> tuple[Callable[..., Response], dict[str, Any]]:
        """What a call runs and its parameters: checked, merged with the defaults.

        It runs through the response cache on where the call is made, as plain Python
        would decide (under ``@jit`` it runs later).
        """
        if params:
            check_parameters(self.model_id, self.provider, params)
        merged = {**self.defaults, **params} if params else dict(self.defaults)
        cache = response_cache.active()
        run = self._complete if cache is None else self._through(cache)
        return run, merged

    @property
    def acall(self) -> _AsyncCall:
        """``await binding.acall(prompt, **params)``: the call, from async code.

        The request runs on a thread, so the event loop goes on; in an ``async def``
        under ``@jit`` it is an op like any other (recorded, overlapped with the others).
        """
        return _AsyncCall(self)

    def _through(self, cache: response_cache.ResponseCache) -> _Cached:
        """What a call made while ``cache`` is on runs (one per binding and cache)."""
        last = self._last_cached
        if last is None or last.cache is not cache:
            last = self._last_cached = _Cached(self, cache)
        return last

    def _elsewhere(self, params: dict[str, Any]) -> ModelBinding:
        """This binding at the endpoint ``params`` names (taking ``base_url``, ``api_key_env``)."""
        base_url = params.pop("base_url", self.provider.base_url)
        api_key_env = params.pop("api_key_env", self.provider.api_key_env)
        return self._registry.instance(
            self.model_id, base_url=base_url, api_key_env=api_key_env, **self.defaults
        )

    def _complete(self, prompt: Prompt, **params: Any) -> Response:
        """What runs (on a worker thread under ``@jit``): the request, with retries."""
        return self._answer(prompt, params, None)

    def _answer(
        self, prompt: Prompt, params: dict[str, Any], cache: response_cache.ResponseCache | None
    ) -> Response:
        """The response to one call: sent (with retries), or from ``cache`` when it has it."""
        start = time.perf_counter()
        registry = self._registry
        # Retries are told to the listeners (none: nothing to tell, nothing set up; a call
        # made inside another provider's call must not tell that call's listener).
        retries = _Retries(registry, self.model_id) if registry._listeners else None
        token = None
        if retries is not None or RETRY_LISTENER.get() is not None:
            token = RETRY_LISTENER.set(retries)
        cached = False
        try:
            if cache is None:
                response = self.provider.invoke(self.model_id, self._model, prompt, params)
            else:
                response, cached = cache.answer(
                    self.provider,
                    self.model_id,
                    prompt,
                    params,
                    lambda: self.provider.invoke(self.model_id, self._model, prompt, params),
                    op_position(),
                )
        except Exception as error:
            if isinstance(error, ProviderError):
                attempts = error.attempts
            else:
                attempts = 1 if retries is None else retries.attempt
            registry.finished(self.model_id, None, error, time.perf_counter() - start, attempts)
            raise
        finally:
            if token is not None:
                RETRY_LISTENER.reset(token)
        response = registry.stamp(self.model_id, response)
        seconds = time.perf_counter() - start
        if cached:
            served_from_cache()
        registry.finished(self.model_id, response, None, seconds, response.attempts, cached)
        return response

    def with_defaults(self, **params: Any) -> ModelBinding:
        """The same model and provider, with ``params`` added to the defaults.

        ``base_url=`` and ``api_key_env=`` among them bind it to that endpoint instead.
        """
        if not CLIENT_OPTIONS.isdisjoint(params):
            return self._elsewhere(params).with_defaults(**params)
        merged = {**self.defaults, **params}
        return ModelBinding(
            self._registry, self.model_id, self.provider, self._model, merged, self.__xcs_op__
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Other processes (a process pool, Dask) rebuild it from the default registry.
        from ember.models.registry import rebuild_binding

        provider = self.provider
        return (
            rebuild_binding,
            (self.model_id, provider.base_url, provider.api_key_env, self.defaults),
        )

    def __repr__(self) -> str:
        defaults = f", {shown_arguments((), self.defaults)}" if self.defaults else ""
        return f"models.instance({shown(self.model_id)}{defaults})"


class _AsyncCall:
    """A binding's async call (``binding.acall``): op-like, so traced async code defers it."""

    __slots__ = ("__xcs_op__", "binding")

    def __init__(self, binding: ModelBinding) -> None:
        self.binding = binding
        self.__xcs_op__ = binding.__xcs_op__

    def __call__(self, prompt: Prompt, **params: Any) -> Awaitable[Response]:
        binding = self.binding
        if params and not CLIENT_OPTIONS.isdisjoint(params):
            return binding._elsewhere(params).acall(prompt, **params)
        run, merged = binding._prepared(params)
        return acall_op(binding.__xcs_op__, _OnAThread(run), (prompt,), merged)  # type: ignore[no-any-return]


class _OnAThread:
    """A model call made on a thread, as a coroutine: the loop goes on meanwhile.

    It wraps what it runs (``__wrapped__``), so xcs reads the same return annotation.
    """

    __slots__ = ("__wrapped__",)

    def __init__(self, run: Callable[..., Response]) -> None:
        self.__wrapped__ = run

    def __call__(self, prompt: Prompt, **params: Any) -> Coroutine[Any, Any, Response]:
        return asyncio.to_thread(self.__wrapped__, prompt, **params)


class _Cached:
    """A binding's call made while a response cache was on: answered through it.

    It wraps the binding's ``_complete`` (``__wrapped__``), so xcs reads the same return
    annotation (a ``Response``) from it: a traced program has the same graph either way.
    """

    __slots__ = ("__weakref__", "__wrapped__", "binding", "cache")

    def __init__(self, binding: ModelBinding, cache: response_cache.ResponseCache) -> None:
        self.binding = binding
        self.cache = cache
        self.__wrapped__ = binding._complete

    def __call__(self, prompt: Prompt, **params: Any) -> Response:
        return self.binding._answer(prompt, params, self.cache)

    def __reduce__(self) -> tuple[Any, ...]:
        # Run in another process (a process pool, Dask): there, the same file's cache
        # (one per process); a cache in memory is this process's only, so none there.
        cache = self.cache
        if cache.path is None:
            return (getattr, (self.binding, "_complete"))
        return (_reopened, (self.binding, cache.path, cache.max_bytes, cache.always))


def _reopened(binding: ModelBinding, path: str, max_bytes: int, always: bool) -> _Cached:
    """A cached call rebuilt in another process, with that process's cache of ``path``."""
    return _Cached(binding, response_cache.shared(path, max_bytes=max_bytes, always=always))


class _Retries:
    """A call's retries, told to the registry's listeners; counts the attempts made."""

    __slots__ = ("attempt", "model_id", "registry")

    def __init__(self, registry: ModelRegistry, model_id: str) -> None:
        self.registry = registry
        self.model_id = model_id
        self.attempt = 1  # the attempt being made

    def __call__(self, attempt: int, failure: Failure, backoff: float, seconds: float) -> None:
        self.registry.retried(self.model_id, failure, attempt, backoff, seconds)
        self.attempt = attempt + 1  # (not when a listener raised: no attempt follows)
