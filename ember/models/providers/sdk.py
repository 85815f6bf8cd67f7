"""What the SDK-backed providers share: a client made on first use, errors as ``Failure``.

The ``openai`` and ``anthropic`` SDKs have the same shape: a client class taking
``api_key``, ``base_url``, ``timeout`` and ``max_retries``, and the same error classes
(``APIStatusError`` with ``status_code`` and ``response``; ``APIConnectionError``, of
which ``APITimeoutError`` is a kind). The SDK is imported on first use, so
``import ember`` stays light; its own retries are off, since
``Provider.invoke`` retries with jitter and honours ``Retry-After`` once for every
provider.
"""

from __future__ import annotations

import abc
import importlib
import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from ember.models.providers.base import Failure, Provider

__all__ = ["SDKProvider", "retry_after_seconds"]

T = TypeVar("T")


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header, when it holds a number."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: rare for APIs; fall back to backoff
        if seconds >= 0:
            return seconds
    return None


class SDKProvider(Provider):
    """A provider that sends requests through an official SDK's client.

    Subclasses set ``sdk`` (the module to import) and ``client_class`` (its
    client's name), and implement ``complete`` with ``request`` around the call.
    """

    sdk: ClassVar[str]
    client_class: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._client: Any = None
        self._client_lock = threading.Lock()

    def client(self) -> Any:
        """The SDK client, made on first use (importing an SDK takes a while).

        Raises:
            ImportError: The SDK is not installed (with the command that installs it).
            MissingAPIKeyError: The endpoint needs a key and its variable is unset.
        """
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    try:
                        module = importlib.import_module(self.sdk)
                    except ImportError as error:
                        raise ImportError(
                            f"the {self.name} provider needs the {self.sdk} SDK: "
                            "pip install 'ember-xcs[models]'"
                        ) from error
                    key = self.api_key() or "EMPTY"  # local servers need none
                    self._client = getattr(module, self.client_class)(
                        api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0
                    )
        return self._client

    def request(self, send: Callable[[Any], T]) -> T:
        """``send(client)``, with the SDK's errors turned into ``Failure``."""
        client = self.client()  # first: it explains a missing SDK or key
        sdk = importlib.import_module(self.sdk)
        try:
            return send(client)
        except sdk.APIStatusError as error:
            retry_after = retry_after_seconds(getattr(error.response, "headers", None))
            raise Failure(error.status_code, error.message, retry_after) from error
        except sdk.APIConnectionError as error:  # includes APITimeoutError
            raise Failure(None, f"{type(error).__name__}: {error}") from error

    @abc.abstractmethod
    def complete(self, model: str, prompt: Any, **params: Any) -> Any:
        """One request through ``request``."""
