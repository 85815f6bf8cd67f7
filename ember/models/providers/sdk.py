"""What the SDK-backed providers share: a client made on first use, errors as ``Failure``.

The ``openai`` and ``anthropic`` SDKs have the same shape: a client class taking
``api_key``, ``base_url``, ``timeout`` and ``max_retries``, and the same error classes
(``APIStatusError`` with ``status_code`` and ``response``; ``APIConnectionError``, of
which ``APITimeoutError`` is a kind). The SDK is imported on first use, so
``import ember`` stays light; its own retries are off, since
``Provider.invoke`` retries with jitter and honours ``Retry-After`` once for every
provider.

A failed request becomes a ``Failure`` that says where it went (the request's URL,
credentials redacted) and, when no answer came, why: the connection refused (no
server there), the host name unknown, the provider's ``timeout`` passed, or the
connection lost -- the root cause the SDK's ``Connection error.`` hides.
"""

from __future__ import annotations

import abc
import importlib
import socket
import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from ember.models.providers.base import Failure, Provider, shown_url

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
            raise Failure(error.status_code, error.message, retry_after, _url(error)) from error
        except sdk.APITimeoutError as error:
            raise Failure(
                None,
                f"no answer within the timeout ({_root_cause(error)}): the provider's "
                f"timeout is {self.timeout:g} s (a call's timeout= overrides it); pass a "
                "larger timeout= if the model needs longer",
                url=_url(error),
            ) from error
        except sdk.APIConnectionError as error:
            raise Failure(None, _connection_problem(error), url=_url(error)) from error

    @abc.abstractmethod
    def complete(self, model: str, prompt: Any, **params: Any) -> Any:
        """One request through ``request``."""


def _url(error: BaseException) -> str | None:
    """The URL of the request an SDK error is about, credentials redacted."""
    url = getattr(getattr(error, "request", None), "url", None)
    return None if url is None else shown_url(str(url))


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it, outermost first (``__cause__``, else ``__context__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _root_cause(error: BaseException) -> str:
    """The innermost cause of an SDK error, as ``Type: message``."""
    root = _causes(error)[-1]
    return f"{type(root).__name__}: {root}" if str(root) else type(root).__name__


def _connection_problem(error: BaseException) -> str:
    """What went wrong when no answer came, from the root cause the SDK wraps."""
    chain = _causes(error)
    cause = _root_cause(error)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"connection refused ({cause}): is a server listening there? Check base_url"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"the host name did not resolve ({cause}): check base_url"
    return f"the connection failed ({cause})"
