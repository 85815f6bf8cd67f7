"""The local server's HTTP layer: ``http.server`` made to hold against any client.

Alone, ``http.server`` has no timeouts, no body limit and one thread per connection
with no cap: an idle client holds a thread forever, a ``Content-Length`` of 10**12 is
read into memory, and a request it fails on may get no answer. :class:`GuardedServer`
and :class:`GuardedHandler` add, for the handler built on them:

* **A cap on connections** (``max_connections``). Each open connection has a thread.
  Past the cap a new connection is answered 503 with ``Retry-After`` on the accepting
  thread, without a thread of its own, and closed a second later.
* **A deadline for each request** (``request_timeout`` seconds). A connection waits that long
  for a request to start, and a request has that long from its first byte to arrive
  whole, headers and body (a client sending a byte a second does not keep it).
  Past it, 408 and the connection is closed -- or only closed, on a kept-alive
  connection where no new request had started: an answer there could be taken for
  the answer to a request the client sends at that moment. A write that cannot go
  out within ``request_timeout`` ends the connection too.
* **A body limit** (``max_body_bytes``): a larger ``Content-Length`` is answered 413
  before any of the body is read.
* **An answer to every request.** What cannot be parsed is answered 400, 408, 413,
  414, 431, 501 or 505 in JSON (:meth:`GuardedHandler.error_body`), with a status
  line even for a request line too short to name its HTTP version. After an error
  answer the connection is closed gently: the client's unread input is drained for
  up to a second, so it reads its answer rather than a reset.

It stays a thread per connection, as ``http.server`` has it: simple to reason about,
and a thousand threads blocked on idle sockets cost little (500 idle connections leave
a request answered in ~2 ms). The cap and the deadlines are what bound it.

What the requests mean, the shape of answers and the request log belong to
:mod:`ember.models.server`; this module knows nothing about LLM APIs.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import io
import json
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["GuardedHandler", "GuardedServer", "Rejected"]

_LINGER = 1.0  # seconds a closed connection's unread input is drained (or a refusal kept)


class Rejected(Exception):
    """A request answered with an error status before it is handled.

    Attributes:
        status: The HTTP status to answer with (400, 408, 413).
        message: What is wrong, for the client.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class _RequestTimeout(Exception):
    """The deadline of the request being read passed.

    Not a ``TimeoutError``: ``http.server`` drops the connection on one of those.
    """


class _DeadlineReader(io.RawIOBase):
    """A connection's input, read under the deadline of the request being read."""

    def __init__(self, connection: socket.socket, timeout: float) -> None:
        super().__init__()
        self._connection = connection
        self._timeout = timeout
        self._deadline: float | None = None

    @property
    def started(self) -> bool:
        """Whether a byte of the current request has arrived."""
        return self._deadline is not None

    def next_request(self) -> None:
        """Wait up to ``timeout`` for a request to start; then it has ``timeout`` to arrive."""
        self._deadline = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Read what has arrived into ``buffer``, waiting no later than the deadline.

        Raises:
            _RequestTimeout: Nothing came before the deadline.
        """
        wait = self._timeout if self._deadline is None else self._deadline - time.monotonic()
        if wait <= 0:
            raise _RequestTimeout
        self._connection.settimeout(wait)
        try:
            count = self._connection.recv_into(buffer)
        except TimeoutError:
            raise _RequestTimeout from None
        finally:
            self._connection.settimeout(self._timeout)  # for the writes
        if count and self._deadline is None:  # the request's first bytes
            self._deadline = time.monotonic() + self._timeout
        return count


class GuardedHandler(BaseHTTPRequestHandler):
    """A request handler with deadlines, a body limit and JSON answers to every error.

    Subclasses implement ``do_GET``/``do_POST`` with :meth:`read_body` and
    :meth:`send_json`, and may give errors their API's shape (:meth:`error_body`).
    """

    protocol_version = "HTTP/1.1"  # keep-alive: the SDKs reuse connections
    # A request line without a version is taken as HTTP/1.0, not 0.9: its answer (an
    # error) then has a status line and headers.
    default_request_version = "HTTP/1.0"
    # Headers and body go out in two writes; with Nagle's algorithm the second waits
    # for the client's delayed ACK (~40 ms a request on Linux).
    disable_nagle_algorithm = True
    server: GuardedServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's plain reader, replaced by one with deadlines
        self._reader = _DeadlineReader(self.connection, self.server.request_timeout)
        self.rfile = io.BufferedReader(self._reader)
        self._answered = False  # whether anything was answered on this connection
        self._status = 0  # the status of the last answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: servers built on this keep their own logs."""

    @staticmethod
    def error_body(path: str, status: int, message: str) -> dict[str, Any]:
        """The JSON object answered with an error ``status`` for a request to ``path``."""
        return {"error": {"message": message, "type": "error", "param": None, "code": status}}

    def handle_one_request(self) -> None:
        """Handle one request, answering 408 when it does not arrive in time."""
        self._reader.next_request()
        # What an error answer needs when the request line never came.
        self.command, self.path, self.requestline = "", "", ""
        self.request_version = self.default_request_version
        try:
            super().handle_one_request()
        except _RequestTimeout:
            self.close_connection = True
            if self._reader.started or not self._answered:
                seconds = self.server.request_timeout
                message = f"no whole request arrived within {seconds:g} s (request_timeout)"
                self.send_error(408, f"{message}; send each request at once")

    def read_body(self) -> bytes:
        """The request's body (``Content-Length`` bytes), read under its deadline.

        Raises:
            Rejected: 400 for a chunked body, a ``Content-Length`` that is not a
                number of bytes, or a body cut short; 413 for one over
                ``max_body_bytes``; 408 when it does not arrive in time.
        """
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise Rejected(400, "chunked request bodies are not supported; send Content-Length")
        lengths = self.headers.get_all("Content-Length") or ["0"]
        declared = lengths[0].strip()
        shown = _clip(", ".join(lengths))
        if len(set(lengths)) > 1 or not (declared.isascii() and declared.isdigit()):
            message = f"Content-Length is not one number of bytes: {shown}"
            raise Rejected(400, f"{message}; send the body's length in bytes")
        limit = self.server.max_body_bytes
        if len(declared.lstrip("0")) > 20 or int(declared) > limit:
            message = f"the body ({shown} bytes) is over this server's limit of {limit} bytes"
            raise Rejected(413, f"{message} (max_body_bytes); send a smaller body")
        length = int(declared)
        try:
            body = self.rfile.read(length) if length else b""
        except _RequestTimeout:
            seconds = self.server.request_timeout
            message = f"the body did not arrive within {seconds:g} s (request_timeout)"
            raise Rejected(408, f"{message}; send it with the headers") from None
        if len(body) < length:
            message = f"the body ended after {len(body)} of its {length} bytes"
            raise Rejected(400, f"{message}; send the whole body, or its real length")
        return body

    def send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``status`` with ``body`` as JSON, and ``headers``."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer ``code`` with :meth:`error_body` (not an HTML page) and close.

        ``explain``, http.server's longer text, is not sent: ``message`` says it.
        """
        text = _clip(message or HTTPStatus(code).phrase, 300)  # it may quote a long line
        path = self.path.split("?", 1)[0].rstrip("/")
        with contextlib.suppress(OSError):  # the client may be gone
            self.send_json(code, self.error_body(path, code, text), {"Connection": "close"})

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._answered, self._status = True, code
        super().send_response_only(code, message)

    def finish(self) -> None:
        """Flush; after an error answer that ends the connection, drain what is unread."""
        super().finish()
        if self.close_connection and self._status >= 400:
            _drain(self.connection)


def _clip(text: str, size: int = 40) -> str:
    """``text``, cut to ``size`` characters: what a client sent, quoted in an answer."""
    return text if len(text) <= size else f"{text[: size - 3]}..."


def _drain(connection: socket.socket) -> None:
    """Read and drop what the client still sends until it closes, for up to ``_LINGER``.

    Closing a socket with unread input resets the connection, and a reset can destroy
    the answer before the client has read it.
    """
    deadline = time.monotonic() + _LINGER
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)  # the answer is complete: the client sees it end
        while (left := deadline - time.monotonic()) > 0:
            connection.settimeout(left)
            if not connection.recv(65536):
                return


class GuardedServer(ThreadingHTTPServer):
    """A threading HTTP server with a cap on connections, for a :class:`GuardedHandler`.

    Args:
        address: Host and port to listen on.
        handler: The handler class.
        max_connections: Connections served at once; more are answered 503.
        request_timeout: Seconds a connection waits for a request to start, and a
            request has to arrive whole.
        max_body_bytes: The largest request body accepted.
    """

    daemon_threads = True
    request_queue_size = 1024  # connections waiting to be accepted: a burst as large as the cap

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[GuardedHandler],
        *,
        max_connections: int,
        request_timeout: float,
        max_body_bytes: int,
    ) -> None:
        super().__init__(address, handler)
        self.handler_class = handler
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.max_body_bytes = max_body_bytes
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Refused connections, answered and waiting to be closed: (when, connection).
        self._refused: collections.deque[tuple[float, socket.socket]] = collections.deque()

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                # Out of file descriptors: the listener stays ready, so without a pause
                # the accepting loop would spin until some connection closes.
                time.sleep(0.05)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve ``request`` on a thread of its own, or refuse it past the cap."""
        with self._connections_lock:
            admitted = len(self._connections) < self.max_connections
            if admitted:
                self._connections.add(request)
        if admitted:
            super().process_request(request, client_address)
        else:
            self._refuse(request)

    def _refuse(self, connection: socket.socket) -> None:
        """Answer 503 on the accepting thread (a short write that cannot block)."""
        message = (
            f"the server is serving {self.max_connections} connections, its limit "
            "(max_connections); retry later"
        )
        data = json.dumps(self.handler_class.error_body("", 503, message)).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            connection.setblocking(False)
            connection.send(head.encode() + data)
            connection.shutdown(socket.SHUT_WR)
        self._refused.append((time.monotonic() + _LINGER, connection))
        if len(self._refused) > self.max_connections:  # a flood: keep file descriptors bounded
            self._close_refused(self._refused.popleft()[1])

    def service_actions(self) -> None:
        """Close refused connections whose client had a second to read the answer."""
        now = time.monotonic()
        while self._refused and self._refused[0][0] <= now:
            self._close_refused(self._refused.popleft()[1])

    @staticmethod
    def _close_refused(connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            for _ in range(16):  # non-blocking: read what arrived, so as not to reset
                if not connection.recv(65536):
                    break
        connection.close()

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
        """End open connections, so nothing is served after a stop."""
        with self._connections_lock:
            open_now = list(self._connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        while self._refused:
            self._close_refused(self._refused.popleft()[1])
