"""A local LLM server on loopback, speaking the OpenAI and Anthropic HTTP APIs.

For tests, benchmarks and offline demos: real HTTP, real SDKs, no network. Answers
are the simulated provider's (``simulate``),
so they are deterministic. Each request waits ``latency`` seconds (like a model
generating), and faults can be queued: an HTTP error (429 with ``Retry-After``,
500, ...) or a stall longer than the client's timeout. Every request is logged with
its start and end, so tests can see on the server side that calls overlapped.

Endpoints: ``POST /v1/chat/completions`` (OpenAI), ``POST /v1/messages``
(Anthropic), ``GET /v1/models``. Streaming is not supported (HTTP 400).

From Python::

    with LocalLLMServer(latency=0.2) as server:
        fast = models.instance("openai/echo", base_url=server.openai_base_url)

From the command line: ``python -m ember serve --port 8000 --latency 0.2``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ember.models.providers.simulated import estimate_tokens, simulate

__all__ = ["Fault", "LocalLLMServer", "RequestRecord"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


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
        prompt: The prompt's text (messages joined).
        status: The HTTP status answered (499 when the client had gone).
        start: ``time.perf_counter()`` when the request arrived.
        end: ``time.perf_counter()`` when the answer was sent.
        api_key: Whether the request carried an API key (the key itself is not kept).
    """

    path: str
    model: str
    prompt: str
    status: int
    start: float
    end: float
    api_key: bool


class LocalLLMServer:
    """An OpenAI- and Anthropic-compatible server on a free loopback port.

    Args:
        host: Interface to listen on (loopback by default).
        port: Port, or 0 for a free one.
        latency: Seconds each answer takes.
        api_key: When set, requests without this key get HTTP 401.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        self.latency = latency
        self.api_key = api_key
        self._lock = threading.Lock()
        self._faults: collections.deque[Fault] = collections.deque()
        self._records: list[RequestRecord] = []
        self._in_flight = 0
        self._peak = 0
        self._httpd = _Server((host, port), _Handler)
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
                target=self._httpd.serve_forever, name="ember-llm-server", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until ``stop`` (or Ctrl-C)."""
        self._httpd.serve_forever()

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
        """Every request answered so far, in the order they finished."""
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

    def _end(self, record: RequestRecord) -> int:
        with self._lock:
            self._in_flight -= 1
            self._records.append(record)
            return len(self._records) - 1

    def _lost(self, index: int, record: RequestRecord) -> None:
        """The answer logged at ``index`` never reached the client: status 499."""
        with self._lock:
            if index < len(self._records) and self._records[index] is record:  # not reset
                self._records[index] = dataclasses.replace(
                    record, status=499, end=time.perf_counter()
                )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once under @jit
    owner: LocalLLMServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout, a closed pool) is routine: no traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End open keep-alive connections, so nothing is served after a stop."""
        with self._connections_lock:
            open_now = list(self._connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _prompt_of(body: dict[str, Any]) -> str:
    parts = []
    system = body.get("system")
    if isinstance(system, str) and system:
        parts.append(system)
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        content = message.get("content", "")
        if isinstance(content, list):  # content blocks
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        parts.append(str(content))
    return "\n".join(parts)


_NOT_SAMPLING = frozenset({"model", "messages", "system", "stream"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDKs reuse connections
    # Headers and body go out in two writes; with Nagle's algorithm the second waits
    # for the client's delayed ACK (~40 ms a request on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server keeps its own log (``requests``)."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/models":
            self._send(404, self._error_body(path, 404, f"no route {self.path}"))
            return
        names = ["echo", "chat", "judge"]
        entries = [{"id": m, "object": "model", "created": 0, "owned_by": "ember"} for m in names]
        self._send(200, {"object": "list", "data": entries})

    def do_POST(self) -> None:
        owner = self.server.owner
        start = time.perf_counter()
        owner._begin()
        path = self.path.split("?", 1)[0].rstrip("/")
        model, prompt = "", ""
        headers: dict[str, str] = {}
        body, problem = self._read_body()
        if body is None:
            status, answer = 400, self._error_body(path, 400, problem)
            self.close_connection = True  # what is left of the body is unreadable
        else:
            model = str(body.get("model") or "")
            prompt = _prompt_of(body)
            try:
                status, answer, headers = self._answer(owner, path, body, model, prompt)
            except Exception as error:  # a bug here must still answer, not drop the line
                status, answer = 500, self._error_body(path, 500, f"server error: {error!r}")
        # Logged before the answer leaves, so a client that has its answer finds it logged.
        key = bool(self.headers.get("Authorization") or self.headers.get("x-api-key"))
        record = RequestRecord(path, model, prompt, status, start, time.perf_counter(), key)
        index = owner._end(record)
        try:
            self._send(status, answer, headers)
        except (BrokenPipeError, ConnectionResetError):
            owner._lost(index, record)  # the client gave up (a stall past its timeout)

    def _read_body(self) -> tuple[dict[str, Any] | None, str]:
        """The JSON object sent, or None and what is wrong with the request."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None, "chunked request bodies are not supported; send Content-Length"
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None, "Content-Length is not a number"
        if length < 0:
            return None, "Content-Length is negative"
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, "the body is not JSON"
        if not isinstance(body, dict):
            return None, "the body is not a JSON object"
        return body, ""

    def _answer(
        self,
        owner: LocalLLMServer,
        path: str,
        body: dict[str, Any],
        model: str,
        prompt: str,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if path not in ("/v1/chat/completions", "/v1/messages"):
            return 404, self._error_body(path, 404, f"no route {self.path}"), {}
        if owner.api_key is not None and owner.api_key not in self._keys():
            return 401, self._error_body(path, 401, "invalid API key"), {}
        messages = body.get("messages")
        if not model or not messages or not isinstance(messages, list):
            return 400, self._error_body(path, 400, "'model' and 'messages' are required"), {}
        if not all(isinstance(m, dict) for m in messages):
            return 400, self._error_body(path, 400, "each message is a JSON object"), {}
        fault = owner._fault_for(prompt)  # only requests that would be answered take one
        if fault is not None:
            if fault.stall:
                time.sleep(fault.stall)
            if fault.status is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                message = f"injected fault: HTTP {fault.status}"
                return fault.status, self._error_body(path, fault.status, message), headers
        if body.get("stream"):
            return 400, self._error_body(path, 400, "streaming is not supported"), {}
        if owner.latency:
            time.sleep(owner.latency)
        params = {k: v for k, v in body.items() if k not in _NOT_SAMPLING}
        text = simulate(model, prompt, params)
        tokens_in, tokens_out = estimate_tokens(prompt), estimate_tokens(text)
        if path == "/v1/messages":
            return 200, _anthropic_message(model, text, tokens_in, tokens_out), {}
        return 200, _openai_completion(model, text, tokens_in, tokens_out), {}

    def _keys(self) -> set[str]:
        bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        return {bearer, (self.headers.get("x-api-key") or "").strip()}

    @staticmethod
    def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error")
        if path == "/v1/messages":
            return {"type": "error", "error": {"type": kind, "message": message}}
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


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
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
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
