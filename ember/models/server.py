"""A local LLM server on loopback, speaking the OpenAI and Anthropic HTTP APIs.

For tests, benchmarks and offline demos: real HTTP, real SDKs, no network. Answers
are the simulated provider's (``simulate``),
so they are deterministic. Each request waits ``latency`` seconds (like a model
generating), and faults can be queued: an HTTP error (429 with ``Retry-After``,
500, ...) or a stall longer than the client's timeout. Every request is logged with
its start and end, so tests can see on the server side that calls overlapped.

Endpoints:

* ``POST /v1/chat/completions`` (OpenAI chat), also with ``"stream": true``: the answer
  then comes as server-sent ``chat.completion.chunk`` events, word by word, ending with
  ``data: [DONE]``; the ``latency`` is spread over the words.
* ``POST /v1/responses`` (OpenAI Responses API): ``input`` a string or message items,
  ``instructions`` optional; the same answer as chat gives for that prompt.
* ``POST /v1/completions`` (OpenAI legacy completions): one choice per prompt.
* ``POST /v1/embeddings`` (OpenAI): one deterministic unit vector per input, from a
  hash of the model and the text (8 numbers, or ``dimensions``); ``encoding_format``
  ``"float"`` or ``"base64"`` (the SDK's default).
* ``POST /v1/messages`` (Anthropic).
* ``GET /v1/models``.

Only chat completions stream: ``"stream": true`` anywhere else (Anthropic messages
included) gets HTTP 400. Errors come in the API's own shape (OpenAI's, or Anthropic's
on ``/v1/messages``), so the SDKs raise their usual exceptions. A fault's ``prompt``
matches the text a request is about: the system prompt (or ``instructions``) and the
messages (or ``input``) joined by newlines; for completions and embeddings, the
prompts (or inputs) joined by newlines. That text is also what ``requests`` logs.

Limits, so that no client can hold the server or fill its memory (``ember.models._http``
holds the HTTP side of them):

* ``max_connections`` (1000) connections are served at once, each on a thread of its
  own; a connection past that is answered 503 with ``Retry-After: 1`` and closed.
* ``request_timeout`` (30 s): a connection waits that long for a request to start, and a
  request has that long from its first byte to arrive whole; past it, 408 and the
  connection is closed (a kept-alive connection that started no new request is closed
  without an answer).
* ``max_body_bytes`` (16 MiB): a larger body is answered 413 before it is read.
* The log keeps the last ``log_size`` (10,000) requests, and of each prompt (and path
  and model name) its first ``log_prompt_chars`` (2,000) characters;
  ``RequestRecord.prompt_chars`` is the whole prompt's length. Faults match, and
  answers are made from, the whole prompt.

Every request gets an HTTP answer: one that cannot be parsed gets 400 (or 408, 413,
414, 431, 501, 505), in JSON. POST requests are logged with their status, except those
answered before their headers were whole (a malformed request line, a timeout, a
connection past the cap).

From Python::

    with LocalLLMServer(latency=0.2) as server:
        fast = models.instance("openai/echo", base_url=server.openai_base_url)

From the command line: ``python -m ember serve --port 8000 --latency 0.2``.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from ember.models._http import GuardedHandler, GuardedServer, Rejected
from ember.models.providers.simulated import estimate_tokens, simulate

__all__ = ["Fault", "LocalLLMServer", "RequestRecord"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    414: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    500: "api_error",
    503: "overloaded_error",
}

_CHAT = "/v1/chat/completions"
_RESPONSES = "/v1/responses"
_COMPLETIONS = "/v1/completions"
_EMBEDDINGS = "/v1/embeddings"
_MESSAGES = "/v1/messages"

_ROUTES = frozenset({_CHAT, _RESPONSES, _COMPLETIONS, _EMBEDDINGS, _MESSAGES})

# Request fields that are not sampling parameters, by route: they do not seed the answer.
_NOT_SAMPLING = {
    _CHAT: frozenset({"model", "messages", "system", "stream", "stream_options"}),
    _MESSAGES: frozenset({"model", "messages", "system", "stream"}),
    _RESPONSES: frozenset({"model", "input", "instructions", "stream", "stream_options"}),
    _COMPLETIONS: frozenset({"model", "prompt", "stream", "stream_options"}),
}

_EMBEDDING_DIMENSIONS = 8  # numbers in an embedding unless the request asks for ``dimensions``
_MAX_EMBEDDING_DIMENSIONS = 4096
# Seconds between the serving loop's checks for a stop (and refused connections to close).
_POLL = 0.05
_PIECES = re.compile(r"\S+\s*|\s+")  # a streamed answer's pieces: words with their spaces


@dataclasses.dataclass(frozen=True)
class Fault:
    """What the server does to one request instead of answering it.

    Attributes:
        status: HTTP status to answer with (429, 500, ...); None for a stall.
        retry_after: ``Retry-After`` seconds to send with the error, or None.
        stall: Seconds to wait before answering (longer than the client's timeout
            makes the client give up); 0 for an immediate error.
        prompt: Only requests whose prompt contains this text get the fault; None
            for any request.
    """

    status: int | None = 500
    retry_after: float | None = None
    stall: float = 0.0
    prompt: str | None = None


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request the server handled.

    Attributes:
        path: The URL path.
        model: The requested model ("" when none).
        prompt: The prompt's text (messages joined). The log keeps the first
            ``log_prompt_chars`` characters of it (2,000 unless the server was given
            another number), and of ``path`` and ``model``.
        status: The HTTP status answered (499 when the client had gone).
        start: ``time.perf_counter()`` when the request arrived.
        end: ``time.perf_counter()`` when the answer was sent.
        api_key: Whether the request carried an API key (the key itself is not kept).
        prompt_chars: The length of the whole prompt (more than ``len(prompt)`` when
            the log kept only its start).
    """

    path: str
    model: str
    prompt: str
    status: int
    start: float
    end: float
    api_key: bool
    prompt_chars: int


class LocalLLMServer:
    """An OpenAI- and Anthropic-compatible server on a free loopback port.

    Args:
        host: Interface to listen on (loopback by default).
        port: Port, or 0 for a free one.
        latency: Seconds each answer takes.
        api_key: When set, requests without this key get HTTP 401.
        max_connections: Connections served at once (a thread each); more get 503.
        request_timeout: Seconds a connection waits for a request to start, and a
            request has to arrive whole; past it, 408.
        max_body_bytes: The largest request body; a larger one gets 413.
        log_size: Requests kept in the log (``requests``): the last ones.
        log_prompt_chars: Characters kept in the log of each prompt, path and model.

    Raises:
        ValueError: A number out of its range (latency < 0, a limit < 1).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        api_key: str | None = None,
        max_connections: int = 1000,
        request_timeout: float = 30.0,
        max_body_bytes: int = 16 * 2**20,
        log_size: int = 10_000,
        log_prompt_chars: int = 2_000,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        limits = {
            "max_connections": max_connections,
            "request_timeout": request_timeout,
            "max_body_bytes": max_body_bytes,
            "log_size": log_size,
            "log_prompt_chars": log_prompt_chars,
        }
        for name, value in limits.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.latency = latency
        self.api_key = api_key
        self.log_prompt_chars = log_prompt_chars
        self._lock = threading.Lock()
        self._faults: collections.deque[Fault] = collections.deque()
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=log_size)
        self._in_flight = 0
        self._peak = 0
        self._httpd = _Server(
            (host, port),
            _Handler,
            max_connections=max_connections,
            request_timeout=request_timeout,
            max_body_bytes=max_body_bytes,
        )
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port``: the Anthropic SDK's ``base_url``."""
        host, port = self._httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    @property
    def openai_base_url(self) -> str:
        """``http://host:port/v1``: the OpenAI SDK's ``base_url``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``http://host:port``: the Anthropic SDK's ``base_url``."""
        return self.url

    def start(self) -> LocalLLMServer:
        """Serve on a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": _POLL},
                name="ember-llm-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until ``stop`` (or Ctrl-C)."""
        self._httpd.serve_forever(poll_interval=_POLL)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        self._httpd.close_connections()

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults and the log ---------------------------------------------------------

    def inject(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: float | None = None,
        prompt: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (429, 500, 503, ...).

        Args:
            status: The error status.
            count: How many requests get it.
            retry_after: ``Retry-After`` seconds to send along, if any.
            prompt: Only requests whose prompt contains this text (None: any).
        """
        if not 400 <= status <= 599:
            raise ValueError(f"inject needs an HTTP error status (400-599), got {status!r}")
        self._queue(Fault(status, retry_after, 0.0, prompt), count)

    def inject_stall(self, seconds: float, count: int = 1, *, prompt: str | None = None) -> None:
        """Hold the next ``count`` requests ``seconds`` before answering (client timeouts)."""
        if seconds <= 0:
            raise ValueError(f"a stall lasts > 0 seconds, got {seconds!r}")
        self._queue(Fault(None, None, seconds, prompt), count)

    def _queue(self, fault: Fault, count: int) -> None:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        with self._lock:
            self._faults.extend([fault] * count)

    @property
    def requests(self) -> list[RequestRecord]:
        """The requests answered so far (the last ``log_size``), in the order they finished."""
        with self._lock:
            return list(self._records)

    @property
    def peak_concurrency(self) -> int:
        """Most requests in flight at one moment so far."""
        with self._lock:
            return self._peak

    def reset(self) -> None:
        """Forget the log, the peak and any fault not yet used."""
        with self._lock:
            self._records.clear()
            self._faults.clear()
            self._peak = 0

    # --- used by the handler --------------------------------------------------------

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def _fault_for(self, prompt: str) -> Fault | None:
        """The first queued fault for this prompt, taken off the queue."""
        with self._lock:
            for fault in self._faults:
                if fault.prompt is None or fault.prompt in prompt:
                    self._faults.remove(fault)
                    return fault
            return None

    def _end(self, record: RequestRecord) -> None:
        """Log ``record``; its request is no longer in flight."""
        with self._lock:
            self._in_flight -= 1
            self._records.append(record)

    def _lost(self, record: RequestRecord) -> None:
        """The answer logged as ``record`` never reached the client: status 499."""
        with self._lock:
            for back in range(1, len(self._records) + 1):  # it is among the last few
                if self._records[-back] is record:  # (not when the log was reset since)
                    self._records[-back] = dataclasses.replace(
                        record, status=499, end=time.perf_counter()
                    )
                    return


class _Server(GuardedServer):
    owner: LocalLLMServer


def _prompt_of(path: str, body: dict[str, Any]) -> str:
    """The text a request is about: what faults match, what is logged and answered.

    Args:
        path: The URL path (the API the body speaks).
        body: The request's JSON object.

    Returns:
        The system prompt (``instructions`` for the Responses API) and each message's
        text, joined by newlines; for completions and embeddings, the prompts (inputs)
        joined by newlines.
    """
    if path in (_COMPLETIONS, _EMBEDDINGS):
        return "\n".join(_strings(body.get("prompt" if path == _COMPLETIONS else "input")))
    responses = path == _RESPONSES
    parts = []
    system = body.get("instructions" if responses else "system")
    if isinstance(system, str) and system:
        parts.append(system)
    messages = body.get("input" if responses else "messages")
    if isinstance(messages, str):  # the Responses API's plain-text input
        messages = [{"role": "user", "content": messages}]
    for message in messages if isinstance(messages, list) else []:
        # Responses API items other than messages (tool calls, ...) carry no prompt text.
        if not isinstance(message, dict) or message.get("type", "message") != "message":
            continue
        parts.append(_text_of(message.get("content")))
    return "\n".join(parts)


def _text_of(content: Any) -> str:
    """A message's text: a string, or the ``text`` of its content blocks (parts) joined."""
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return "" if content is None else str(content)


def _strings(value: Any) -> list[str]:
    """A string as a one-item list, the strings of a list, or [] for anything else."""
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _problem_with(path: str, body: dict[str, Any]) -> str:
    """What makes ``body`` no request for the route ``path`` ("" when nothing does)."""
    model = body.get("model")
    if path in (_CHAT, _MESSAGES):
        messages = body.get("messages")
        if not model or not messages or not isinstance(messages, list):
            return "'model' and 'messages' are required"
        if not all(isinstance(m, dict) for m in messages):
            return "each message is a JSON object"
        return ""
    field = "prompt" if path == _COMPLETIONS else "input"
    value = body.get(field)
    if not model or value is None:
        return f"'model' and '{field}' are required"
    if path == _RESPONSES:
        items = isinstance(value, list) and value and all(isinstance(i, dict) for i in value)
        if not isinstance(value, str) and not items:
            return "'input' is a string or a non-empty list of items (JSON objects)"
        if not isinstance(body.get("instructions") or "", str):
            return "'instructions' is a string"
        return ""
    strings = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    if not isinstance(value, str) and not strings:
        return f"'{field}' is a string or a non-empty list of strings"
    if path == _EMBEDDINGS:
        if (body.get("encoding_format") or "float") not in ("float", "base64"):
            return "'encoding_format' is 'float' or 'base64'"
        dimensions = body.get("dimensions")
        if dimensions is not None and (
            type(dimensions) is not int or not 1 <= dimensions <= _MAX_EMBEDDING_DIMENSIONS
        ):
            return f"'dimensions' is a whole number from 1 to {_MAX_EMBEDDING_DIMENSIONS}"
    return ""


@dataclasses.dataclass(frozen=True)
class _EventStream:
    """An answer sent as server-sent events rather than one JSON body.

    Attributes:
        events: Each event's JSON object, after a pause in seconds (the latency spread
            over the answer's pieces); ``data: [DONE]`` follows the last.
    """

    events: list[tuple[float, dict[str, Any]]]


class _Handler(GuardedHandler):
    """Answers the APIs' requests; limits, deadlines and bad requests are the base's."""

    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/models":
            self.send_json(404, self.error_body(path, 404, f"no route {self.path}"))
            return
        names = ["echo", "chat", "judge"]
        entries = [{"id": m, "object": "model", "created": 0, "owned_by": "ember"} for m in names]
        self.send_json(200, {"object": "list", "data": entries})

    def do_POST(self) -> None:
        """Answer a POST, logged exactly once: it then leaves the in-flight count."""
        owner = self.server.owner
        start = time.perf_counter()
        owner._begin()
        self._logged = False
        try:
            self._post(owner, start)
        finally:
            if not self._logged:  # something escaped: the client hung up mid-body, ...
                self._log(self._record("", "", 499, start))

    def _post(self, owner: LocalLLMServer, start: float) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        model, prompt = "", ""
        headers: dict[str, str] = {}
        answer: dict[str, Any] | _EventStream
        try:
            body = self._json_body()
        except Rejected as rejection:
            status = rejection.status
            answer = self.error_body(path, status, rejection.message)
            headers = {"Connection": "close"}  # what is left of the body is unread
        else:
            model = str(body.get("model") or "")
            try:
                prompt = _prompt_of(path, body)
                status, answer, headers = self._answer(owner, path, body, model, prompt)
            except Exception as error:  # a bug here must still answer, not drop the line
                status, answer = 500, self.error_body(path, 500, f"server error: {error!r}")
        # Logged before the answer leaves, so a client that has its answer finds it logged.
        record = self._record(model, prompt, status, start)
        if isinstance(answer, _EventStream):
            self._send_events(owner, answer, record)
            return
        self._log(record)
        try:
            self.send_json(status, answer, headers)
        except OSError:  # the client gave up (a stall past its timeout) or stopped reading
            owner._lost(record)
            self.close_connection = True

    def _record(self, model: str, prompt: str, status: int, start: float) -> RequestRecord:
        """What the log keeps of this request, ending now: the start of each text."""
        chars = self.server.owner.log_prompt_chars
        path = self.path.split("?", 1)[0].rstrip("/")[:chars]
        key = bool(self.headers.get("Authorization") or self.headers.get("x-api-key"))
        end = time.perf_counter()
        return RequestRecord(
            path, model[:chars], prompt[:chars], status, start, end, key, len(prompt)
        )

    def _log(self, record: RequestRecord) -> None:
        """Log ``record``: the request is no longer in flight (once per request)."""
        self._logged = True
        self.server.owner._end(record)

    def _json_body(self) -> dict[str, Any]:
        """The JSON object sent.

        Raises:
            Rejected: The body is too large, late, cut short or not a JSON object.
        """
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except RecursionError:
            raise Rejected(
                400, "the body is not JSON: it nests too deeply; send a JSON object"
            ) from None
        except ValueError as error:  # not JSON, not UTF-8, a number too long to read
            raise Rejected(400, f"the body is not JSON ({error}); send a JSON object") from None
        if not isinstance(body, dict):
            raise Rejected(400, "the body is not a JSON object")
        return body

    def _answer(
        self,
        owner: LocalLLMServer,
        path: str,
        body: dict[str, Any],
        model: str,
        prompt: str,
    ) -> tuple[int, dict[str, Any] | _EventStream, dict[str, str]]:
        if path not in _ROUTES:
            return 404, self.error_body(path, 404, f"no route {self.path}"), {}
        if owner.api_key is not None and owner.api_key not in self._keys():
            return 401, self.error_body(path, 401, "invalid API key"), {}
        problem = _problem_with(path, body)
        if problem:
            return 400, self.error_body(path, 400, problem), {}
        fault = owner._fault_for(prompt)  # only requests that would be answered take one
        if fault is not None:
            if fault.stall:
                time.sleep(fault.stall)
            if fault.status is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                message = f"injected fault: HTTP {fault.status}"
                return fault.status, self.error_body(path, fault.status, message), headers
        stream = bool(body.get("stream"))
        if stream and path != _CHAT:
            message = f"streaming is not supported on {path}; only {_CHAT} streams"
            return 400, self.error_body(path, 400, message), {}
        if owner.latency and not stream:  # a stream spreads it over its pieces
            time.sleep(owner.latency)
        if path == _EMBEDDINGS:
            return 200, _openai_embeddings(model, _strings(body["input"]), body), {}
        params = {k: v for k, v in body.items() if k not in _NOT_SAMPLING[path]}
        if path == _COMPLETIONS:
            prompts = _strings(body["prompt"])
            texts = [simulate(model, p, params) for p in prompts]
            return 200, _openai_text_completion(model, prompts, texts), {}
        text = simulate(model, prompt, params)
        tokens_in, tokens_out = estimate_tokens(prompt), estimate_tokens(text)
        if path == _MESSAGES:
            return 200, _anthropic_message(model, text, tokens_in, tokens_out), {}
        if path == _RESPONSES:
            return 200, _openai_response(model, body, text, tokens_in, tokens_out), {}
        if stream:
            options = body.get("stream_options")
            usage = isinstance(options, dict) and bool(options.get("include_usage"))
            chunks = _openai_chunks(model, text, tokens_in, tokens_out, owner.latency, usage)
            return 200, chunks, {}
        return 200, _openai_completion(model, text, tokens_in, tokens_out), {}

    def _keys(self) -> set[str]:
        bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        return {bearer, (self.headers.get("x-api-key") or "").strip()}

    @staticmethod
    def error_body(path: str, status: int, message: str) -> dict[str, Any]:
        """An error in the API's own shape: Anthropic's on ``/v1/messages``, else OpenAI's."""
        kind = _ERROR_TYPES.get(status, "api_error")
        if path == _MESSAGES:
            return {"type": "error", "error": {"type": kind, "message": message}}
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}

    def _send_events(
        self, owner: LocalLLMServer, stream: _EventStream, record: RequestRecord
    ) -> None:
        """Send ``stream`` (HTTP 200, chunked) and log ``record``, ended when it is sent.

        The log entry is made before ``data: [DONE]`` goes out, so a client that has
        read the whole stream finds it logged; a client that hangs up midway is logged
        with status 499.
        """
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for pause, event in stream.events:
                if pause:
                    time.sleep(pause)
                self._send_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        except OSError:  # the client gave up midway
            self._log(dataclasses.replace(record, status=499, end=time.perf_counter()))
            self.close_connection = True
            return
        record = dataclasses.replace(record, end=time.perf_counter())
        self._log(record)
        try:
            self._send_chunk(b"data: [DONE]\n\n")
            self._send_chunk(b"")  # the end of the chunked body
        except OSError:
            owner._lost(record)
            self.close_connection = True

    def _send_chunk(self, data: bytes) -> None:
        """Write ``data`` as one chunk of a chunked body (empty: the body's end)."""
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))


def _openai_usage(tokens_in: int, tokens_out: int) -> dict[str, int]:
    return {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }


def _openai_completion(model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_usage(tokens_in, tokens_out),
    }


def _openai_chunks(
    model: str, text: str, tokens_in: int, tokens_out: int, latency: float, usage: bool
) -> _EventStream:
    """``text`` as ``chat.completion.chunk`` events, a word (with its spaces) each.

    Args:
        model: The requested model.
        text: The whole answer; the pieces join to it.
        tokens_in: Prompt tokens, for the usage chunk.
        tokens_out: Answer tokens, for the usage chunk.
        latency: Seconds the stream takes, spread evenly over the pieces.
        usage: Whether to end with a usage chunk (``stream_options.include_usage``).

    Returns:
        A first chunk with the assistant's role, one chunk per piece, a last chunk with
        ``finish_reason`` "stop", then the usage chunk if asked for.
    """
    pieces = _PIECES.findall(text)
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "choices": [choice]}

    pause = latency / len(pieces) if pieces else 0.0
    events = [(0.0, chunk({"role": "assistant", "content": ""}))]
    events += [(pause, chunk({"content": piece})) for piece in pieces]
    events.append((0.0 if pieces else latency, chunk({}, "stop")))
    if usage:
        events.append((0.0, {**head, "choices": [], "usage": _openai_usage(tokens_in, tokens_out)}))
    return _EventStream(events)


def _openai_response(
    model: str, body: dict[str, Any], text: str, tokens_in: int, tokens_out: int
) -> dict[str, Any]:
    """A completed Responses API object with one assistant message: ``text``."""
    now = int(time.time())
    message = {
        "type": "message",
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    return {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": [message],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": False,  # answers are not kept: nothing to fetch by id later
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": tokens_in,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": tokens_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens_in + tokens_out,
        },
        "user": None,
    }


def _openai_text_completion(model: str, prompts: list[str], texts: list[str]) -> dict[str, Any]:
    """A legacy ``text_completion``: one choice per prompt, ``texts[i]`` answering it."""
    tokens_in = sum(estimate_tokens(p) for p in prompts)
    tokens_out = sum(estimate_tokens(t) for t in texts)
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "text": text, "logprobs": None, "finish_reason": "stop"}
            for i, text in enumerate(texts)
        ],
        "usage": _openai_usage(tokens_in, tokens_out),
    }


def _embedding(model: str, text: str, dimensions: int) -> list[float]:
    """A unit vector of float32 numbers that is a function of ``model`` and ``text``."""
    digest = b""
    while len(digest) < dimensions:  # 32 numbers per hash block
        block = len(digest) // 32
        seed = f"{block}\0{model}\0{text}".encode("utf-8", "surrogatepass")  # JSON allows "\\ud800"
        digest += hashlib.sha256(seed).digest()
    values = [byte - 127.5 for byte in digest[:dimensions]]  # never all zero
    norm = math.sqrt(sum(v * v for v in values))
    # Rounded to float32, so the "float" and "base64" encodings give the same numbers.
    return list(struct.unpack(f"<{dimensions}f", _pack_float32([v / norm for v in values])))


def _pack_float32(values: Sequence[float]) -> bytes:
    """``values`` as little-endian float32s: the bytes of a base64 embedding."""
    return struct.pack(f"<{len(values)}f", *values)


def _openai_embeddings(model: str, texts: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """One embedding per text, as floats or base64 (``encoding_format``)."""
    dimensions = body.get("dimensions") or _EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = _embedding(model, text, dimensions)
        encoded = base64.b64encode(_pack_float32(vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(estimate_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _anthropic_message(model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }
