"""The provider contract, and the retry loop every provider shares.

A ``Provider`` turns ``complete(model, prompt, **params)`` into a
``Response``. When the service fails it raises
``Failure`` (the HTTP status, the service's message, the ``Retry-After`` it
sent) chained to the SDK's own exception; ``Provider.invoke`` retries the
failures a ``RetryPolicy`` calls transient -- 429, 5xx, timeouts, lost
connections -- with exponential backoff and full jitter (or the server's
``Retry-After``), and turns what is left into ``ProviderError``
or ``RateLimitError``. Every way the retries stop is said in the error (its
``reason``): the attempts used up, a status not worth retrying, a ``Retry-After``
longer than the policy waits, the policy's deadline, or nobody waiting any more: an op
the engine stopped (Ctrl-C, ``jit(timeout=)``, an earlier failure; ``ember._stop``)
sends no further attempt and cuts its backoff short (:data:`STOPPED`).

Each retry is logged (``ember.models``, WARNING: the status or the exception, the attempt,
the backoff, the ``Retry-After``, the model and the endpoint), and each give-up (ERROR,
with the reason); listeners of the registry hear the retries too (:data:`RETRY_LISTENER`).

Keys come only from the environment (``api_key``), and go only where the SDK puts
keys (the authentication header): ``invoke`` checks the parameters first
(``ember.models.parameters``: a credential such as ``api_key=`` raises
``SecretParameterError``, a name the provider does not take ``UnknownParameterError``),
so a key never lands in a request body and a typo never reaches an SDK.

Providers hold no per-call state: one instance serves every thread at once.
"""

from __future__ import annotations

import abc
import contextvars
import dataclasses
import logging
import math
import os
import random
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeAlias, cast

from ember import _stop
from ember._redact import REDACTED_TEXT, redact_text, shown_text
from ember.models.errors import MissingAPIKeyError, ProviderError, RateLimitError
from ember.models.parameters import check_parameters
from ember.models.response import Response

__all__ = [
    "RETRY_LISTENER",
    "Failure",
    "Message",
    "Prompt",
    "Provider",
    "RetryPolicy",
    "shown_url",
    "to_messages",
]

_log = logging.getLogger("ember.models")

Message: TypeAlias = Mapping[str, Any]
Prompt: TypeAlias = str | Sequence[Message] | Response
"""A prompt: a string (one user message), chat messages (``{"role", "content"}``), or
another model's response (its text), so models chain."""

STOPPED = (
    "Stopped: the run this call belongs to no longer waits for it (Ctrl-C, jit(timeout=) or "
    "an earlier op's failure ended it), so no further attempt was sent."
)
"""The ``reason`` of the error a call stopped between attempts ends with (``ember._stop``)."""

_TRANSIENT = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class Failure(Exception):
    """A request that failed; raised by ``Provider.complete``, handled by the retry loop.

    Attributes:
        status: HTTP status, or None when no answer came (timeout, lost connection).
        message: What the service said, without credentials; without an answer, what
            went wrong (connection refused, timed out) and what to check.
        retry_after: Seconds the service asked to wait, when it said.
        url: The URL the request went to (shown as :func:`shown_url` shows it), when known.
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        retry_after: float | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(status, message, retry_after, url)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.url = url

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
        deadline: Seconds from the first attempt after which no attempt starts (a wait
            that would end past it ends the retries); None for no deadline.
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = _TRANSIENT
    deadline: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be an int >= 1, got {self.attempts!r}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("RetryPolicy.base and .cap must be >= 0 seconds")
        if self.deadline is not None and self.deadline < 0:
            raise ValueError(f"RetryPolicy.deadline must be >= 0 seconds, got {self.deadline!r}")

    def retryable(self, failure: Failure) -> bool:
        """Whether ``failure`` is transient (worth another attempt)."""
        return failure.status is None or failure.status in self.statuses

    def delay(self, attempt: int, failure: Failure, rng: random.Random) -> float | None:
        """Seconds to wait after failed attempt ``attempt`` (1-based); None to give up."""
        return self.decide(attempt, failure, rng)[0]

    def decide(
        self, attempt: int, failure: Failure, rng: random.Random, elapsed: float = 0.0
    ) -> tuple[float | None, str]:
        """What to do after failed attempt ``attempt`` (1-based), ``elapsed`` s after the first.

        Returns:
            ``(seconds to wait, "")`` to try again, or ``(None, why)`` to give up: one
            sentence saying why the retries stop and what would change it.
        """
        if not self.retryable(failure):
            return None, (
                f"Not retried: HTTP {failure.status} is not a transient failure (retried: "
                f"{', '.join(map(str, sorted(self.statuses)))}, timeouts and lost connections); "
                "check the model name, the parameters and the key."
            )
        if attempt >= self.attempts:
            if self.attempts == 1:
                only = "Not retried: the retry policy allows 1 attempt (RetryPolicy.attempts)."
                return None, only
            return None, (
                f"Gave up: all {self.attempts} attempts the retry policy allows failed "
                "(RetryPolicy.attempts)."
            )
        if failure.retry_after is not None:
            wait = failure.retry_after
            if wait > self.max_retry_after:
                return None, (
                    f"Gave up: the server asked to wait {wait:g} s (Retry-After), longer than "
                    f"the retry policy's limit of {self.max_retry_after:g} s; to wait that long, "
                    "give the provider RetryPolicy(max_retry_after="
                    f"{math.ceil(wait)})."
                )
        else:
            # Full jitter: spreads clients that failed together (AWS architecture blog).
            wait = rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if self.deadline is not None and elapsed + wait > self.deadline:
            return None, (
                f"Gave up: the next attempt, {wait:.3g} s from now, would start past the retry "
                f"policy's deadline of {self.deadline:g} s from the first (RetryPolicy.deadline)."
            )
        return wait, ""


RetryListener: TypeAlias = Callable[[int, Failure, float, float], None]
"""Told of each retry: ``(failed attempt, its failure, seconds to wait, seconds since the
first attempt started)``, before the wait."""

RETRY_LISTENER: contextvars.ContextVar[RetryListener | None] = contextvars.ContextVar(
    "ember.models.retry_listener", default=None
)
"""What :meth:`Provider.invoke` tells of each retry, on the calling thread: a model binding
sets it around ``invoke``, so the registry's listeners hear retries (``CallEvent.kind``)."""


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
    ``models.register_provider(name, cls)``. Setting ``parameters`` (the names calls
    may pass) makes calls check them as the built-in providers' calls are checked.

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
    parameters: ClassVar[frozenset[str] | None] = None
    """Parameter names calls may pass; None takes any (``ember.models.parameters``)."""
    deterministic: ClassVar[bool] = False
    """Whether an answer is a function of the request (a simulation), so the response
    cache may serve any call of this provider, whatever its sampling parameters."""

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

        Returns:
            The response, its ``attempts`` the requests made (1 without retries).

        Raises:
            RateLimitError: The service answered 429 to the last attempt.
            ProviderError: Any other failure, after the retries it deserved; its
                ``reason`` says why the retries stopped. Each retry is logged (WARNING on
                ``ember.models``) and told to :data:`RETRY_LISTENER`; a give-up is logged
                once (ERROR), with the reason.
            SecretParameterError: A parameter is a credential (``api_key=``); no
                request is made.
            UnknownParameterError: A parameter this provider does not take; no request
                is made.
        """
        check_parameters(model_id, self, params)
        start = time.monotonic()
        attempt = 0
        last: Failure | None = None  # the failure before, when this attempt is a retry
        while True:
            if last is not None and _stop.stopped():  # stopped during the backoff
                kind = RateLimitError if last.status == 429 else ProviderError
                error = kind(model_id, last.status, last.message, attempt, last.url, STOPPED)
                if _log.isEnabledFor(logging.INFO):  # the run ended for another reason first
                    self._log_give_up(model_id, attempt, last, STOPPED, logging.INFO)
                raise error from (last.__cause__ or last)
            attempt += 1
            try:
                response = self.complete(model, prompt, **params)
                if attempt == 1:
                    return response
                return dataclasses.replace(response, attempts=attempt)  # what it took
            except Failure as failure:
                elapsed = time.monotonic() - start
                wait, reason = self.retry.decide(attempt, failure, self._rng, elapsed)
                if wait is None:
                    kind = RateLimitError if failure.status == 429 else ProviderError
                    error = kind(
                        model_id, failure.status, failure.message, attempt, failure.url, reason
                    )
                    if _log.isEnabledFor(logging.ERROR):
                        self._log_give_up(model_id, attempt, failure, reason)
                    raise error from (failure.__cause__ or failure)
                if _log.isEnabledFor(logging.WARNING):
                    self._log_retry(model_id, attempt, failure, wait)
                listener = RETRY_LISTENER.get()
                if listener is not None:
                    listener(attempt, failure, wait, elapsed)
                last = failure
            _pause(wait)

    def _log_retry(self, model_id: str, attempt: int, failure: Failure, wait: float) -> None:
        """A WARNING on ``ember.models``: this attempt failed, the next one comes in ``wait`` s."""
        url = self._shown_url(failure)
        asked = "" if failure.retry_after is None else f" (Retry-After: {failure.retry_after:g} s)"
        _log.warning(
            "%s: attempt %d of %d failed with %s%s; retrying in %.3g s%s. %s",
            model_id,
            attempt,
            self.retry.attempts,
            _what(failure),
            f" at {url}" if url else "",
            wait,
            asked,
            shown_text(failure.message, 300),
            extra={
                "ember_event": "retry",
                "ember_model": model_id,
                "ember_attempt": attempt,
                "ember_attempts": self.retry.attempts,
                "ember_status": failure.status,
                "ember_error": _error_name(failure),
                "ember_backoff": wait,
                "ember_retry_after": failure.retry_after,
                "ember_url": url,
            },
        )

    def _log_give_up(
        self, model_id: str, attempt: int, failure: Failure, reason: str, level: int = logging.ERROR
    ) -> None:
        """An ERROR on ``ember.models``: no more attempts, and why (once per call)."""
        url = self._shown_url(failure)
        _log.log(
            level,
            "%s failed with %s after %d attempt%s%s. %s Last error: %s",
            model_id,
            _what(failure),
            attempt,
            "" if attempt == 1 else "s",
            f" at {url}" if url else "",
            reason,
            shown_text(failure.message, 300),
            extra={
                "ember_event": "give_up",
                "ember_model": model_id,
                "ember_attempt": attempt,
                "ember_attempts": self.retry.attempts,
                "ember_status": failure.status,
                "ember_error": _error_name(failure),
                "ember_reason": reason,
                "ember_retry_after": failure.retry_after,
                "ember_url": url,
            },
        )

    def _shown_url(self, failure: Failure) -> str | None:
        """Where the failed request went, as logs show it (credentials redacted), if known."""
        url = failure.url or self.base_url
        return shown_url(url) if url else None

    def __repr__(self) -> str:
        where = f" at {shown_url(self.base_url)}" if self.base_url else ""
        return f"<{type(self).__name__} {self.name!r}{where}>"


def _error_name(failure: Failure) -> str:
    """The class of the exception behind ``failure`` (the SDK's, e.g. ``APITimeoutError``)."""
    return type(failure.__cause__ or failure).__name__


def _what(failure: Failure) -> str:
    """``HTTP 429``, or ``no answer (APITimeoutError)``."""
    if failure.status is not None:
        return f"HTTP {failure.status}"
    return f"no answer ({_error_name(failure)})"


def _pause(seconds: float) -> None:
    """Sleep ``seconds`` of backoff, cut short when the op making the call is stopped."""
    signal = _stop.current()
    if signal is None:
        time.sleep(seconds)
    else:
        signal.sleep(seconds)


def shown_url(url: str) -> str:
    """``url`` as errors and reprs show it: a password in it, and keys in its query, redacted."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL (a bad port): shown as text, redacted
        return redact_text(url)
    if password:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:{REDACTED_TEXT}@{host}")
    return redact_text(urllib.parse.urlunsplit(parts))
