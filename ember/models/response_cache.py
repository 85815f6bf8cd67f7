"""The response cache: model answers kept on disk, so a re-run does not pay again.

::

    from ember import models

    models.cache()                    # on for this process (SQLite in the user cache dir)
    with models.cache("run.sqlite3"): # or for a block: this file, then as before
        ...
    models.cache_info()               # entries, bytes, hits and misses
    models.cache_clear()

**What is a hit.** A call is looked up by a key made of everything that decides its
answer (:func:`request_key`): the provider (its registered name and class), the
endpoint, the model, the whole prompt or message list, and every parameter. Never the
API key: keys are not parameters (``SecretParameterError``), and whatever looks like a
credential in the stored request text (a header, a URL's password) is redacted there.
A call whose parameters are not plain JSON values (a pydantic class as
``response_format``, say) is not cached at all: there is no key that surely tells such
calls apart.

**Only reproducible calls, unless you say so.** By default a call is served from the
cache only when its answer is meant to be reproducible: ``temperature=0``, or an
explicit ``seed``, or a provider whose answers are a function of the request (the
simulated models). ``models.cache(always=True)`` caches every call, which makes a
sampling call return its first answer again, like ``functools.lru_cache`` on a random
function: the user's choice. Failed calls are never stored.

**What a hit looks like.** The response's ``usage`` has ``cached: True`` and cost 0,
``attempts`` is 0 (no request was sent), ``models.usage()`` counts it under
``cached_calls`` instead of ``calls``, listeners hear a ``CallEvent`` with
``cached=True``, and in a trace the op is marked cached (``xcs.served_from_cache``).

**Identical calls at once.** While a call is in flight, an identical call in the same
process (under ``@jit``: the same prompt twice in one wave) waits for it instead of
sending the request again, and gets its answer as a hit. Which of them counts as the
request made follows program order in one traced call, as plain Python would have made
the earlier one first. If the request fails, each waiting call makes its own. (Calls
that do not overlap are not reordered: a later call that runs before an earlier
identical one's prompt is known sends the request, and the earlier one is the hit.)

**The store** (:class:`SQLiteStore`): one SQLite file, safe for many threads and for
several processes at once (WAL journal, a short busy timeout, each write one
transaction), with least-recently-used eviction past ``max_bytes``. A locked file (a
long write in another process) makes a call a miss, logged, never a wait; a file that is
not an Ember cache raises :class:`~ember.models.CacheError` when the cache is opened; a
stored entry whose request is not the call's (a damaged row) is a miss, and removed.
``memory=True`` keeps entries in this process only (:class:`MemoryStore`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import pathlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ember import _stop
from ember._redact import redact, redact_text
from ember.models.cache_store import (
    FORMAT,
    CacheError,
    MemoryStore,
    SQLiteStore,
    Store,
    default_path,
)
from ember.models.errors import ProviderError
from ember.models.providers.base import STOPPED
from ember.models.response import Response

if TYPE_CHECKING:
    from ember.models.providers.base import Prompt, Provider

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT",
    "CacheError",
    "CacheInfo",
    "MemoryStore",
    "ResponseCache",
    "SQLiteStore",
    "active",
    "default_path",
    "request_key",
]

DEFAULT_MAX_BYTES = 1 << 30
"""Stored bytes (requests and answers) past which the least recently used entries go: 1 GiB."""

_log = logging.getLogger("ember.models")


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """What a response cache holds, and what it did in this process.

    Attributes:
        path: The SQLite file, or None for a cache in memory.
        active: Whether calls use this cache now.
        entries: Answers stored.
        bytes: Their size (requests and answers, as stored).
        max_bytes: The size past which the least recently used answers go.
        always: Whether every call is cached, reproducible or not.
        hits: Calls answered from the cache (shared answers of identical calls
            in flight included).
        misses: Calls looked up and not found (each sent its request).
        skipped: Calls not looked up: not reproducible (and ``always`` off), or with
            parameters that are not plain JSON values.
        stores: Answers written.
        evictions: Answers removed to stay under ``max_bytes``.
        errors: Lookups or writes that failed (a locked or damaged file): misses.
    """

    path: str | None
    active: bool
    entries: int
    bytes: int
    max_bytes: int
    always: bool
    hits: int = 0
    misses: int = 0
    skipped: int = 0
    stores: int = 0
    evictions: int = 0
    errors: int = 0


# --- keys ---------------------------------------------------------------------------


def request_key(
    provider: Provider, model_id: str, prompt: Prompt, params: Mapping[str, Any]
) -> tuple[str, str] | None:
    """The key of a call, and the request text stored with its answer.

    Args:
        provider: The provider serving the call (its class and endpoint are in the key).
        model_id: ``provider/model`` as registered.
        prompt: The prompt: a string, chat messages, or a Response (its text).
        params: Every parameter the call sends (defaults merged in).

    Returns:
        ``(sha256 hex digest, request text)``, or None when a parameter or the prompt
        is not a plain JSON value (such a call is not cached). The digest covers the
        request exactly; the text is the same request with credentials redacted.
    """
    if isinstance(prompt, Response):
        prompt = prompt.text
    if not isinstance(prompt, str) and not (
        isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt)
    ):
        return None  # no prompt: not cached, and the provider says what is wrong with it
    kind = type(provider)
    request = {
        "format": FORMAT,
        "provider": f"{kind.__module__}.{kind.__qualname__}",
        "endpoint": provider.base_url,
        "model": model_id,
        "prompt": prompt if isinstance(prompt, str) else [dict(m) for m in prompt],
        "params": dict(params),
    }
    try:
        exact = _canonical(request)
    except (TypeError, ValueError):  # not JSON (an object, NaN): no safe key
        return None
    digest = hashlib.sha256(exact.encode("utf-8", "surrogatepass")).hexdigest()
    shown = dict(request, params=redact(request["params"]), prompt=redact(request["prompt"]))
    if provider.base_url:
        shown["endpoint"] = _without_password(provider.base_url)
    # ``redact`` puts a marker (not JSON) under secret names; the text redacts key-shaped
    # values under any name (a header, a URL's query).
    return digest, redact_text(_canonical(shown, default=str))


def _canonical(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """One text per JSON value: sorted keys, no spaces, no NaN, tuples as lists."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=default
    )


def _without_password(url: str) -> str:
    user, at, host = url.partition("@")
    if not at or "://" not in user:
        return url
    scheme, _, credentials = user.partition("://")
    name = credentials.partition(":")[0]
    return f"{scheme}://{name}:***@{host}"


def reproducible(provider: Provider, params: Mapping[str, Any]) -> bool:
    """Whether a call's answer is meant to be the same every time it is made.

    ``temperature`` 0, an explicit ``seed``, or a provider that says its answers are a
    function of the request (``Provider.deterministic``).
    """
    if provider.deterministic:
        return True
    temperature = params.get("temperature")
    number = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
    if number and temperature == 0:
        return True
    return params.get("seed") is not None


# --- the cache ----------------------------------------------------------------------


class _Flight:
    """A request in flight; identical calls made meanwhile wait for its answer."""

    __slots__ = ("answer", "done", "first", "positions")

    def __init__(self, position: tuple[int, int] | None, token: object) -> None:
        self.done = threading.Event()
        self.answer: Response | None = None  # None after it failed
        self.positions: list[tuple[tuple[int, int] | None, object]] = [(position, token)]
        self.first: object = token  # the call that counts as the request made


class ResponseCache:
    """A response cache: where answers are kept, and when calls use them.

    Made by ``models.cache(...)``, which also turns it on; usable as a context manager
    (on for the block, then whatever was on before).

    Args:
        path: The SQLite file; None for the default (:func:`default_path`).
        memory: Keep answers in this process's memory instead of a file.
        max_bytes: Stored bytes past which the least recently used answers go.
        always: Cache every call, not only reproducible ones (see the module docstring).

    Raises:
        CacheError: The file cannot be used as a cache.
        ValueError: ``max_bytes`` is not a positive int, or ``path`` is given with
            ``memory=True``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        memory: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        always: bool = False,
    ) -> None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1:
            raise ValueError(f"max_bytes is a positive number of bytes, got {max_bytes!r}")
        if memory and path is not None:
            raise ValueError("a cache is either in memory (memory=True) or in a file (path=)")
        self.store: Store = MemoryStore() if memory else SQLiteStore.open(path or default_path())
        self.max_bytes = max_bytes
        self.always = bool(always)
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._counts = collections.Counter[str]()
        self._warned = False
        self._previous: list[ResponseCache | None] = []  # what was on before each turn_on
        self._fresh = False  # turned on by models.cache() and not entered since

    @property
    def path(self) -> str | None:
        """The SQLite file, or None in memory."""
        return self.store.path

    # --- on and off ---

    def __enter__(self) -> ResponseCache:
        # ``with models.cache(...):`` -- turned on when made: the block ends that. A cache
        # entered again (``with cache:`` later) is turned on here, for the block.
        if self._fresh:
            self._fresh = False
        else:
            self._previous.append(_switch(self))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _switch(self._previous.pop() if self._previous else None)

    def close(self) -> None:
        """Stop using this cache (if it is on) and close its file."""
        if active() is self:
            _switch(None)
        self.store.close()

    # --- what calls do ---

    def answer(
        self,
        provider: Provider,
        model_id: str,
        prompt: Prompt,
        params: Mapping[str, Any],
        send: Callable[[], Response],
        position: tuple[int, int] | None,
    ) -> tuple[Response, bool]:
        """The call's response: from the cache, from an identical call in flight, or sent.

        Args:
            provider: The provider serving the call.
            model_id: ``provider/model``.
            prompt: The prompt.
            params: Every parameter sent.
            send: Makes the request (with its retries) and returns the response.
            position: The call's place in program order (recording, node), under ``@jit``.

        Returns:
            ``(response, cached)``: ``cached`` when no request was sent for this call.
        """
        if not (self.always or reproducible(provider, params)):
            self._count("skipped")
            return send(), False
        keyed = request_key(provider, model_id, prompt, params)
        if keyed is None:
            self._count("skipped")
            _log.debug("%s: not cached (a parameter is not a plain JSON value)", model_id)
            return send(), False
        key, request = keyed
        while True:
            token = object()
            with self._lock:  # one lookup per key at a time: identical calls wait for it
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight(position, token)
                    owner = True
                else:
                    flight.positions.append((position, token))
                    owner = False
            if owner:
                found = self._lookup(key, request)
                if found is None:
                    return self._send(key, request, flight, token, send)
                with self._lock:
                    del self._flights[key]
                    flight.answer = found
                flight.done.set()
                self._count("hits")
                return found, True
            if not _wait(flight.done):
                raise ProviderError(
                    model_id,
                    None,
                    "stopped while an identical call was in flight (no request was sent)",
                    0,
                    provider.base_url,
                    STOPPED,
                )
            if flight.answer is not None:  # its answer; else the request failed: our own
                if flight.first is token:
                    self._count("misses")
                    return flight.answer, False
                self._count("hits")
                return _hit(flight.answer), True

    def _send(
        self,
        key: str,
        request: str,
        flight: _Flight,
        token: object,
        send: Callable[[], Response],
    ) -> tuple[Response, bool]:
        """Make the request of a flight this call owns, store and share its answer."""
        self._count("misses")
        try:
            response = send()
        except BaseException:
            with self._lock:
                del self._flights[key]
            flight.done.set()  # waiters make their own requests
            raise
        self._store(key, request, response)
        with self._lock:
            del self._flights[key]
            flight.answer = response
            flight.first = _first(flight.positions)
        flight.done.set()
        if flight.first is token:
            return response, False
        self._count("misses", -1)
        self._count("hits")
        return _hit(response), True

    def _lookup(self, key: str, request: str) -> Response | None:
        try:
            found = self.store.get(key)
        except sqlite3.Error as error:
            self._trouble("read", error)
            return None
        if found is None:
            return None
        stored_request, answer = found
        try:
            if stored_request != request:
                raise ValueError("the stored request is not this call's")
            return _loaded(answer)
        except (ValueError, TypeError, KeyError) as error:  # a damaged row: never served
            self._trouble("read", error)
            with contextlib.suppress(sqlite3.Error):
                self.store.drop(key)
            return None

    def _store(self, key: str, request: str, response: Response) -> None:
        try:
            evicted = self.store.put(key, request, _dumped(response), self.max_bytes)
        except sqlite3.Error as error:
            self._trouble("write", error)
            return
        self._count("stores")
        if evicted:
            self._count("evictions", evicted)

    def _trouble(self, what: str, error: BaseException) -> None:
        """A failed read or write: counted, the call goes on as a miss; logged once at WARNING."""
        self._count("errors")
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        outcome = "the call is sent instead" if what == "read" else "it is not kept"
        _log.log(
            level,
            "response cache %s: could not %s an answer (%s: %s); %s%s",
            self.path or "in memory",
            what,
            type(error).__name__,
            error,
            outcome,
            "" if level == logging.DEBUG else " (further such errors are logged at DEBUG)",
            extra={"ember_event": "cache_error", "ember_cache": self.path},
        )

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    # --- reading and clearing ---

    def info(self) -> CacheInfo:
        """What the cache holds, and what it did in this process."""
        try:
            entries, size = self.store.size()
        except sqlite3.Error:
            entries = size = 0
        with self._lock:
            counts = dict(self._counts)
        return CacheInfo(
            path=self.path,
            active=active() is self,
            entries=entries,
            bytes=size,
            max_bytes=self.max_bytes,
            always=self.always,
            **{k: counts.get(k, 0) for k in _COUNTED},
        )

    def clear(self) -> None:
        """Forget every stored answer (in every process sharing the file)."""
        self.store.clear()

    def __repr__(self) -> str:
        where = "in memory" if self.path is None else self.path
        on = ", on" if active() is self else ""
        return f"<ResponseCache {where}{', always' if self.always else ''}{on}>"


_COUNTED = ("hits", "misses", "skipped", "stores", "evictions", "errors")


def _first(positions: list[tuple[tuple[int, int] | None, object]]) -> object:
    """The participant that counts as making the request, as plain Python would have.

    The earliest in program order among those of the owner's traced call; otherwise
    (outside a trace, or calls of other traced calls) the owner.
    """
    owner_position, first = positions[0]
    if owner_position is None:
        return first
    best = owner_position[1]
    for position, token in positions[1:]:
        if position is not None and position[0] == owner_position[0] and position[1] < best:
            best, first = position[1], token
    return first


def _wait(done: threading.Event) -> bool:
    """Wait for an identical call in flight; False if this op was stopped first."""
    signal = _stop.current()
    if signal is None:
        return done.wait()
    while not done.wait(0.05):
        if signal.is_set():
            return False
    return True


def _dumped(response: Response) -> str:
    usage = {k: v for k, v in response.usage.items() if k != "cached"}
    return _canonical({"text": response.text, "usage": usage, "model_id": response.model_id})


def _loaded(answer: str) -> Response:
    data = json.loads(answer)
    text, usage = data["text"], data["usage"]
    if not isinstance(text, str) or not isinstance(usage, dict):
        raise TypeError("a stored answer is a text and a usage mapping")
    cost = usage.get("cost", 0.0)
    if not (isinstance(cost, (int, float)) and math.isfinite(cost)):
        raise ValueError("a stored cost is a number")
    return _hit(Response(text, usage, str(data.get("model_id", ""))))


def _hit(response: Response) -> Response:
    """``response`` as a call answered without a request gets it: cached, free, 0 attempts."""
    usage = {**response.usage, "cost": 0.0, "cached": True}
    return dataclasses.replace(response, usage=usage, attempts=0)


# --- which cache is on ----------------------------------------------------------------

_active: ResponseCache | None = None
_switch_lock = threading.Lock()


def active() -> ResponseCache | None:
    """The cache calls use now, or None."""
    return _active


def _switch(cache: ResponseCache | None) -> ResponseCache | None:
    """Turn ``cache`` on (None: caching off); returns the one that was on."""
    global _active
    with _switch_lock:
        previous, _active = _active, cache
    return previous


def info(path: str | os.PathLike[str] | None = None) -> CacheInfo:
    """``models.cache_info``: the cache that is on, or the file at ``path`` as it is."""
    with _named(path) as cache:
        if cache is None:  # nothing stored: an empty cache, and no file made to say so
            return CacheInfo(str(_file(path)), False, 0, 0, DEFAULT_MAX_BYTES, False)
        return cache.info()


def clear(path: str | os.PathLike[str] | None = None) -> None:
    """``models.cache_clear``: of the cache that is on, or of the file at ``path`` if any."""
    with _named(path) as cache:
        if cache is not None:
            cache.clear()


def _file(path: str | os.PathLike[str] | None) -> pathlib.Path:
    return pathlib.Path(path).expanduser() if path is not None else default_path()


@contextlib.contextmanager
def _named(path: str | os.PathLike[str] | None) -> Iterator[ResponseCache | None]:
    """The cache ``cache_info``/``cache_clear`` mean.

    The one on (with no ``path``, or for that file), else the file's (closed after),
    else None when there is no file.
    """
    found, file = active(), _file(path)
    if found is not None and (path is None or _same_file(found.path, file)):
        yield found
    elif not file.exists():
        yield None
    else:
        cache = ResponseCache(file)
        try:
            yield cache
        finally:
            cache.store.close()


def _same_file(path: str | None, file: pathlib.Path) -> bool:
    return path is not None and os.path.abspath(path) == os.path.abspath(file)


_shared: dict[tuple[str, int, bool], ResponseCache] = {}


def shared(path: str, *, max_bytes: int, always: bool) -> ResponseCache:
    """This process's cache of ``path`` for calls sent from another process (not turned on)."""
    key = (path, max_bytes, always)
    with _switch_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = ResponseCache(path, max_bytes=max_bytes, always=always)
        return found


def turn_on(cache: ResponseCache) -> ResponseCache:
    """Make ``cache`` the one calls use, remembering the one before (for ``with``)."""
    cache._previous.append(_switch(cache))
    cache._fresh = True
    return cache


class CachingOff:
    """``models.no_cache()``: caching off, for good or for a ``with`` block."""

    def __init__(self) -> None:
        self._previous = _switch(None)

    def __enter__(self) -> CachingOff:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _switch(self._previous)
