"""The model registry: providers by name, model ids, bindings, usage totals, listeners.

A model id is ``provider/model`` (``openai/gpt-4o``, ``simulated/echo``); a bare
``gpt-...``, ``o1``/``o3``/``o4`` or ``chatgpt-...`` id means ``openai/...`` and a bare
``claude-...`` id means ``anthropic/...``. One ``ModelRegistry`` (the default)
backs the ``ember.models`` module functions.
"""

from __future__ import annotations

import dataclasses
import difflib
import fractions
import logging
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any, Literal

from ember._redact import redact_text
from ember.models._spans import ModelCallSpan
from ember.models.binding import ModelBinding
from ember.models.errors import ModelNotFoundError
from ember.models.providers.anthropic_provider import AnthropicProvider
from ember.models.providers.base import Failure, Prompt, Provider
from ember.models.providers.openai_provider import OpenAIProvider
from ember.models.providers.simulated import SimulatedProvider
from ember.models.response import Response
from ember.xcs import OpSpec

__all__ = ["CallEvent", "ModelRegistry", "default_registry", "rebuild_binding"]

_BARE = (
    (re.compile(r"^(gpt-|chatgpt-|o\d(?:$|-))"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
)
_COUNTERS = ("calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost")
# Calls the response cache answered are counted apart: no request, no tokens, no cost.
_CACHED = "cached_calls"
_log = logging.getLogger("ember.models")


@dataclasses.dataclass(frozen=True)
class CallEvent:
    """A finished model call, or a failed attempt of one about to be retried.

    ``kind`` says which: ``"call"`` (one event per call, when it has finished) or
    ``"retry"`` (one per failed attempt that is tried again, before the wait). A
    listener that counts calls counts the ``"call"`` events.

    Attributes:
        model_id: The model called.
        response: Its response; None when it failed, and for a retry.
        error: The exception the call raised (None when it succeeded); for a retry, the
            attempt's :class:`~ember.models.providers.Failure` (its ``status``,
            ``message``, ``retry_after``, ``url``; the SDK's exception is its ``__cause__``).
        seconds: Wall time of the call, retries included; for a retry, the time since
            the call's first attempt started.
        kind: ``"call"`` or ``"retry"``.
        attempt: The attempts the call made (1 without retries); for a retry, the number
            of the attempt that failed (1 for the first).
        status: The HTTP status of the failed attempt (a retry) or of the error the call
            raised (a ``ProviderError``'s); None without one (a timeout, a lost connection,
            a success).
        backoff: Seconds waited before the next attempt (a retry); None for a call.
        retry_after: The ``Retry-After`` seconds the server sent with the failure, if any.
        cached: The response cache answered the call: no request was sent
            (``attempt`` is 0; see ``models.cache``).
    """

    model_id: str
    response: Response | None
    error: BaseException | None
    seconds: float
    _: dataclasses.KW_ONLY
    kind: Literal["call", "retry"] = "call"
    attempt: int = 1
    status: int | None = None
    backoff: float | None = None
    retry_after: float | None = None
    cached: bool = False


Listener = Callable[[CallEvent], None]


def _zero() -> dict[str, Any]:
    # The cost is summed exactly (a Fraction of each call's float cost) and shown as a
    # float, so the total does not depend on the order concurrent calls finish in.
    return {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": fractions.Fraction(0),
        _CACHED: 0,
    }


def _shown(counters: dict[str, Any]) -> dict[str, Any]:
    return {**counters, "cost": float(counters["cost"])}


class ModelRegistry:
    """Providers, bindings and usage; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._kinds: dict[str, type[Provider] | Provider] = {}
        self._providers: dict[tuple[str, str | None, str | None], Provider] = {}
        # Per provider object (never by id(): a replaced provider's id is reused): its
        # shared limit spec, and one op spec per model.
        self._specs: weakref.WeakKeyDictionary[Provider, tuple[OpSpec | None, dict[str, OpSpec]]]
        self._specs = weakref.WeakKeyDictionary()
        self._bindings: dict[tuple[str, str | None, str | None], ModelBinding] = {}
        self._usage: dict[str, dict[str, Any]] = {}
        self._prices: dict[str, tuple[float, float]] = {}
        self._listeners: list[Listener] = []

    # --- providers ------------------------------------------------------------------

    def register_provider(self, name: str, provider: type[Provider] | Provider) -> None:
        """Serve ``name/...`` ids with ``provider`` (a class, or an instance to use as is).

        Registering a name again replaces it (calls already made keep their provider).

        Raises:
            TypeError: ``provider`` is not a Provider subclass or instance.
            ValueError: ``name`` is empty or contains ``/``.
        """
        ok = isinstance(provider, Provider) or (
            isinstance(provider, type) and issubclass(provider, Provider)
        )
        if not ok:
            raise TypeError(
                f"register_provider({name!r}, ...) needs a Provider subclass or instance "
                f"(ember.models.providers.Provider), got {provider!r}"
            )
        if not name or "/" in name:
            raise ValueError(f"a provider name is non-empty and has no '/', got {name!r}")
        with self._lock:
            self._kinds[name] = provider
            for key in [k for k in self._providers if k[0] == name]:
                del self._providers[key]
            self._bindings.clear()  # bare ids ("gpt-4o") may have meant this provider

    def providers(self) -> list[str]:
        """Registered provider names, sorted."""
        with self._lock:
            return sorted(self._kinds)

    def provider(
        self, name: str, base_url: str | None = None, api_key_env: str | None = None
    ) -> Provider:
        """The provider instance for ``name`` at ``base_url`` (one per combination).

        Raises:
            ModelNotFoundError: No provider has that name.
        """
        with self._lock:
            found = self._providers.get((name, base_url, api_key_env))
            if found is not None:
                return found
            kind = self._kinds.get(name)
            if kind is None:
                raise ModelNotFoundError(
                    f"no provider named {name!r}; registered: {', '.join(self.providers())} "
                    "(add one with models.register_provider)"
                )
            if isinstance(kind, Provider):
                own = ((None, None), (kind.base_url, None), (kind.base_url, kind.api_key_env))
                if (base_url, api_key_env) not in own:
                    endpoint = redact_text(kind.base_url or "its default endpoint")
                    key = kind.api_key_env or "its default variable"
                    raise ValueError(
                        f"provider {name!r} was registered as an instance (at {endpoint}, key "
                        f"from {key}), so base_url={redact_text(repr(base_url))}, "
                        f"api_key_env={api_key_env!r} "
                        "cannot change it; register another name for another endpoint or key"
                    )
                found = kind
            else:
                # Only what is set: a provider class of the user's may not take both.
                where: dict[str, Any] = {"base_url": base_url, "api_key_env": api_key_env}
                found = kind(**{k: v for k, v in where.items() if v is not None})
            self._providers[(name, base_url, api_key_env)] = found
            return found

    def split(self, model_id: str) -> tuple[str, str]:
        """``(provider name, model name)`` of a model id.

        Raises:
            ModelNotFoundError: The id names no registered provider.
            TypeError: ``model_id`` is not a string.
        """
        if not isinstance(model_id, str):
            raise TypeError(f"a model id is a string such as 'openai/gpt-4o', got {model_id!r}")
        name, slash, model = model_id.partition("/")
        if slash:
            if not model:
                raise ModelNotFoundError(f"model id {model_id!r} names no model after the '/'")
            with self._lock:
                if name in self._kinds:
                    return name, model
            close = _did_you_mean(name, self.providers())
            guess = f" (did you mean {close}?)" if close else ""
            raise ModelNotFoundError(
                f"model id {model_id!r}: no provider named {name!r}{guess}; registered: "
                f"{', '.join(self.providers())} (add one with models.register_provider)"
            )
        for pattern, provider in _BARE:
            if pattern.match(model_id):
                return provider, model_id
        close = _did_you_mean(model_id, self._spellings())
        if close:
            raise ModelNotFoundError(
                f"model id {model_id!r} names no provider: did you mean {close}? (Or write "
                f"'provider/model'; providers: {', '.join(self.providers())}.)"
            )
        raise ModelNotFoundError(
            f"model id {model_id!r} names no provider: write 'provider/model' "
            f"(providers: {', '.join(self.providers())}), e.g. 'simulated/{model_id}'"
        )

    def _spellings(self) -> dict[str, str]:
        """Known model ids, as written to call them, by each spelling that names them.

        ``openai/gpt-4o-mini`` is written ``gpt-4o-mini`` (a bare id that resolves to
        it) and spelled either way; ``simulated/chat`` is written in full and spelled
        ``simulated/chat`` or ``chat``.
        """
        known: dict[str, str] = {}
        with self._lock:
            names = sorted(self._kinds)
        for name in names:
            try:
                models = self.provider(name).list_models()
            except Exception:  # a provider that cannot list: no suggestions from it
                continue
            for model in models:
                full = f"{name}/{model}"
                bare = any(p.match(model) and n == name for p, n in _BARE)
                written = model if bare else full
                known.setdefault(full, written)
                known.setdefault(model, written)
        return known

    # --- bindings -------------------------------------------------------------------

    def instance(
        self,
        model_id: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        **defaults: Any,
    ) -> ModelBinding:
        """A binding of ``model_id`` with default parameters.

        Args:
            model_id: ``provider/model``, or a bare ``gpt-...``/``claude-...`` id.
            base_url: Send this model's requests to another endpoint of the same
                API (a vLLM or Ollama server, the local test server).
            api_key_env: The environment variable holding the key for ``base_url``
                (by default none is sent there: the provider's own key, such as
                ``OPENAI_API_KEY``, goes only to the provider's own endpoint).
            **defaults: Parameters for every call (``temperature``, ``max_tokens``,
                ``latency`` for simulated models, ...).

        Raises:
            ModelNotFoundError: No registered provider serves ``model_id``.
            SecretParameterError: A default is a credential (``api_key=``).
        """
        name, model = self.split(model_id)
        provider = self.provider(name, base_url, api_key_env)
        spec = self._spec(provider, name, model)
        return ModelBinding(self, f"{name}/{model}", provider, model, defaults, spec)

    def _spec(self, provider: Provider, name: str, model: str) -> OpSpec:
        """One op spec per (provider object, model); all share the provider's limit."""
        with self._lock:
            entry = self._specs.get(provider)
            if entry is None:
                limit = provider.max_concurrency
                shared = None if limit is None else OpSpec(f"provider {name}", limit)
                entry = self._specs[provider] = (shared, {})
            shared, by_model = entry
            spec = by_model.get(model)
            if spec is None:
                limit = None if shared is None else shared.max_concurrency
                describe = ModelCallSpan(name, model, provider.base_url)  # for OpenTelemetry
                spec = by_model[model] = OpSpec(f"{name}/{model}", limit, shared, describe)
            return spec

    def binding(
        self, model_id: str, base_url: str | None = None, api_key_env: str | None = None
    ) -> ModelBinding:
        """The shared binding of ``model_id`` at an endpoint, without defaults.

        What ``models(id, prompt, ...)`` calls.
        """
        key = (model_id, base_url, api_key_env)
        found = self._bindings.get(key)
        if found is None:
            with self._lock:
                found = self._bindings.get(key)
                if found is None:
                    found = self.instance(model_id, base_url=base_url, api_key_env=api_key_env)
                    self._bindings[key] = found
        return found

    def call(self, model_id: str, prompt: Prompt, params: dict[str, Any]) -> Response:
        """``models(model_id, prompt, **params)``.

        ``base_url=`` and ``api_key_env=`` among ``params`` choose the endpoint, as
        ``instance`` takes them.
        """
        base_url = params.pop("base_url", None)
        api_key_env = params.pop("api_key_env", None)
        return self.binding(model_id, base_url, api_key_env)(prompt, **params)

    def list(self) -> list[str]:
        """Known model ids of every provider (``provider/model``), sorted."""
        with self._lock:
            names = sorted(self._kinds)
        return sorted(f"{n}/{m}" for n in names for m in self.provider(n).list_models())

    # --- usage ----------------------------------------------------------------------

    def set_price(self, model_id: str, *, prompt: float, completion: float) -> None:
        """Price ``model_id`` in US dollars per million prompt / completion tokens.

        Costs are 0.0 for models without a price: prices change, so none are built in.
        """
        if prompt < 0 or completion < 0:
            raise ValueError("prices are >= 0 dollars per million tokens")
        name, model = self.split(model_id)
        with self._lock:
            self._prices[f"{name}/{model}"] = (float(prompt), float(completion))

    def stamp(self, model_id: str, response: Response) -> Response:
        """A provider's response as callers get it: under ``model_id``, priced if it has a price."""
        price = self._prices.get(model_id)
        usage = response.usage
        if price is not None and not usage.get("cost") and not usage.get("cached"):
            cost = (usage["prompt_tokens"] * price[0] + usage["completion_tokens"] * price[1]) / 1e6
            usage = {**usage, "cost": cost}
        if usage is response.usage and response.model_id == model_id:
            return response
        return dataclasses.replace(response, usage=usage, model_id=model_id)

    def finished(
        self,
        model_id: str,
        response: Response | None,
        error: BaseException | None,
        seconds: float,
        attempt: int = 1,
        cached: bool = False,
    ) -> None:
        """Count a finished call and tell the listeners (on the calling thread).

        A call the response cache answered (``cached``) counts under ``cached_calls``
        only. Logged at DEBUG on ``ember.models`` (the model, the time, the attempts;
        the tokens, or the error's class).
        """
        if response is not None:
            usage = response.usage
            with self._lock:
                totals = self._usage.setdefault(model_id, _zero())
                if cached:
                    totals[_CACHED] += 1
                else:
                    totals["calls"] += 1
                    for key in _COUNTERS[1:-1]:
                        totals[key] += usage.get(key, 0)
                    totals["cost"] += fractions.Fraction(usage.get("cost", 0.0))
        if _log.isEnabledFor(logging.DEBUG):
            _log_call(model_id, response, error, seconds, attempt, _status(error), cached)
        if self._listeners:
            status = _status(error)
            event = CallEvent(
                model_id, response, error, seconds, attempt=attempt, status=status, cached=cached
            )
            for listener in list(self._listeners):
                listener(event)

    def retried(
        self, model_id: str, failure: Failure, attempt: int, backoff: float, seconds: float
    ) -> None:
        """Tell the listeners that attempt ``attempt`` failed; the next comes in ``backoff`` s."""
        if not self._listeners:
            return
        event = CallEvent(
            model_id,
            None,
            failure,
            seconds,
            kind="retry",
            attempt=attempt,
            status=failure.status,
            backoff=backoff,
            retry_after=failure.retry_after,
        )
        for listener in list(self._listeners):
            listener(event)

    def usage(self, model_id: str | None = None) -> dict[str, Any]:
        """Totals of successful calls: of one model, or of all when ``model_id`` is None."""
        with self._lock:
            if model_id is not None:
                name, model = self.split(model_id)
                return _shown(self._usage.get(f"{name}/{model}") or _zero())
            total = _zero()
            for counters in self._usage.values():
                for key in (*_COUNTERS, _CACHED):
                    total[key] += counters[key]
            return _shown(total)

    def usage_by_model(self) -> dict[str, dict[str, Any]]:
        """Totals per model id."""
        with self._lock:
            return {m: _shown(c) for m, c in sorted(self._usage.items())}

    def reset_usage(self) -> None:
        """Forget every total."""
        with self._lock:
            self._usage.clear()

    def on_call(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` after every model call and before every retry.

        Each event's ``kind`` says which (``"call"`` or ``"retry"``, see ``CallEvent``).
        Listeners run on the thread that made the call (a worker thread under
        ``@jit``), so they must be thread-safe; what they raise, the call raises (from a
        retry event: without trying again). Returns a function removing the listener.
        """
        if not callable(listener):
            raise TypeError(f"on_call needs a callable, got {listener!r}")
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove


def _status(error: BaseException | None) -> int | None:
    """The HTTP status an error carries (a ``ProviderError``'s), if any."""
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def _log_call(
    model_id: str,
    response: Response | None,
    error: BaseException | None,
    seconds: float,
    attempt: int,
    status: int | None,
    cached: bool = False,
) -> None:
    """The DEBUG record of one finished call."""
    attempts = "from the cache" if cached else f"{attempt} attempt{'' if attempt == 1 else 's'}"
    if response is not None:
        tokens = response.usage.get("total_tokens", 0)
        _log.debug(
            "%s answered in %.3f s (%s, %d tokens)",
            model_id,
            seconds,
            attempts,
            tokens,
            extra={
                "ember_event": "call",
                "ember_model": model_id,
                "ember_seconds": seconds,
                "ember_attempt": attempt,
                "ember_tokens": tokens,
                "ember_status": None,
                "ember_error": None,
                "ember_cached": cached,
            },
        )
        return
    name = type(error).__name__
    _log.debug(
        "%s failed in %.3f s (%s): %s",
        model_id,
        seconds,
        attempts,
        name,
        extra={
            "ember_event": "call",
            "ember_model": model_id,
            "ember_seconds": seconds,
            "ember_attempt": attempt,
            "ember_tokens": None,
            "ember_status": status,
            "ember_error": name,
        },
    )


def _did_you_mean(typed: str, known: dict[str, str] | list[str]) -> str:
    """``"'a' or 'b'"``: the ids close to ``typed`` (``""`` when none is close).

    ``known`` maps each spelling to the id to suggest for it (a list: themselves).
    Matches well below the best one are left out (``gpt4o-mini`` suggests ``gpt-4o-mini``
    and ``gpt-4.1-mini``, not ``o3-mini``).
    """
    spellings = dict(known) if isinstance(known, dict) else {k: k for k in known}
    scored = sorted(
        ((difflib.SequenceMatcher(None, typed, s).ratio(), s) for s in spellings),
        key=lambda pair: -pair[0],
    )
    if not scored or scored[0][0] < 0.6:
        return ""
    floor = max(0.6, scored[0][0] - 0.15)
    ids = list(dict.fromkeys(spellings[s] for r, s in scored if r >= floor))[:3]
    shown = [repr(i) for i in ids]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return listed


default_registry = ModelRegistry()
default_registry.register_provider("simulated", SimulatedProvider)
default_registry.register_provider("openai", OpenAIProvider)
default_registry.register_provider("anthropic", AnthropicProvider)


def rebuild_binding(
    model_id: str, base_url: str | None, api_key_env: str | None, defaults: dict[str, Any]
) -> ModelBinding:
    """A binding made again in another process, from the default registry."""
    return default_registry.instance(
        model_id, base_url=base_url, api_key_env=api_key_env, **defaults
    )
