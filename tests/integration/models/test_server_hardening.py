"""The local server against hostile clients: real sockets on loopback, a real server.

Every request gets an HTTP answer (413, 400, 408, 503), nothing a client sends can
hold the server, fill its memory or leave its in-flight count wrong, and it keeps
answering ordinary requests meanwhile.
"""

from __future__ import annotations

import http.client
import json
import resource
import select
import socket
import struct
import time
import tracemalloc
from collections.abc import Iterator

import openai
import pytest

from ember.models.server import LocalLLMServer

GOOD = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer(request_timeout=0.5) as running:
        yield running


def _connect(server: LocalLLMServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _post_head(length: int | str, path: str = "/v1/chat/completions") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def _answer(connection: socket.socket) -> tuple[int, dict[str, str], dict]:
    """The status, headers and JSON body of the next answer on ``connection``."""
    reply = http.client.HTTPResponse(connection, method="POST")
    reply.begin()
    body = reply.read()
    return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(body)


def _exchange(server: LocalLLMServer, data: bytes) -> tuple[int, dict[str, str], dict]:
    """Send ``data`` on a new connection and read the answer."""
    with _connect(server) as connection:
        connection.sendall(data)
        return _answer(connection)


def _closed(connection: socket.socket) -> bool:
    """Whether the server closed ``connection`` (it reads an end, or a reset)."""
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


def _nothing_left_in_flight(server: LocalLLMServer) -> None:
    """One more request, alone, must find the server with nothing else in flight."""
    server.reset()
    assert _exchange(server, _post_head(len(GOOD)) + GOOD)[0] == 200
    assert server.peak_concurrency == 1, "a request before left the in-flight count raised"


# --- bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [10**12, 10**20, 10**30])
def test_a_huge_content_length_is_answered_413_without_reading_or_allocating(server, length):
    tracemalloc.start()  # the server runs in this process: its allocations count too
    try:
        with _connect(server) as connection:
            connection.sendall(_post_head(length) + b'{"model": "echo"')
            status, headers, body = _answer(connection)
            assert _closed(connection)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 413 and headers["connection"] == "close"
    assert "over this server's limit of 16777216 bytes" in body["error"]["message"]
    assert peak < 2**20  # was: bytearray(10**12) -> MemoryError, and the line dropped
    assert [r.status for r in server.requests] == [413]
    _nothing_left_in_flight(server)


def test_a_body_over_the_limit_is_answered_413_and_one_at_it_is_served():
    with LocalLLMServer(max_body_bytes=len(GOOD)) as server:
        assert _exchange(server, _post_head(len(GOOD)) + GOOD)[0] == 200
        big = json.dumps({"model": "echo", "messages": [{"content": "x" * 2**20}]}).encode()
        request = _post_head(len(big)) + big
        tracemalloc.start()
        try:
            status, _, body = _exchange(server, request)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert status == 413 and "(max_body_bytes)" in body["error"]["message"]
        assert peak < len(big) / 4  # the body was drained, never held
        _nothing_left_in_flight(server)


# --- malformed requests ----------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000
LONG_NUMBER = b'{"model": "echo", "n": ' + b"9" * 5000 + b"}"
MALFORMED = {
    "not JSON": (_post_head(8) + b"not json", 400),
    "not a JSON object": (_post_head(2) + b"[]", 400),
    "missing fields": (_post_head(17) + b'{"model": "echo"}', 400),
    "JSON nested too deeply": (_post_head(len(DEEP)) + DEEP, 400),
    "a number too long to read": (_post_head(len(LONG_NUMBER)) + LONG_NUMBER, 400),
    "not UTF-8": (_post_head(14) + b'{"model": "\xff"}', 400),
    "Content-Length not a number": (_post_head("abc") + b"{}", 400),
    "Content-Length negative": (_post_head(-1) + b"{}", 400),
    "Content-Length with a sign": (_post_head("+2") + b"{}", 400),
    "two Content-Lengths": (
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\n{}",
        400,
    ),
    "a chunked body": (
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "non-HTTP bytes": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 400),
    "a request line without a version": (b"POST /v1/chat/completions\r\n\r\n", 400),
    "a version from the future": (b"GET /v1/models HTTP/2.0\r\n\r\n", 505),
    "an unknown method": (b"BREW /v1/models HTTP/1.1\r\n\r\n", 501),
    "a request line too long": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    "a header too long": (b"GET /v1/models HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_request_gets_a_json_4xx_not_a_dropped_line(server, case):
    data, expected = MALFORMED[case]
    with _connect(server) as connection:
        connection.sendall(data)
        status, headers, body = _answer(connection)
        assert status == expected, body
        assert body["error"]["message"] and headers["content-type"] == "application/json"
        if expected == 400 and data.startswith(b"POST /v1/chat/completions HTTP/1.1"):
            # Parsed far enough to be logged, and the connection is not reused.
            assert [r.status for r in server.requests] == [400]
            assert headers.get("connection") == "close" or case == "missing fields"
    _nothing_left_in_flight(server)


def test_a_request_whose_body_never_comes_gets_408_at_the_deadline(server):
    with _connect(server) as connection:
        connection.sendall(_post_head(100))  # the headers, then silence
        start = time.perf_counter()
        status, _, body = _answer(connection)
        waited = time.perf_counter() - start
        assert _closed(connection)
    assert status == 408 and "did not arrive within 0.5 s" in body["error"]["message"]
    assert 0.4 < waited < 4 * 0.5  # the request_timeout, not forever
    assert [r.status for r in server.requests] == [408]
    _nothing_left_in_flight(server)


def test_a_client_that_hangs_up_mid_body_is_logged_499_and_counted_out(server):
    connection = _connect(server)
    connection.sendall(_post_head(1000) + b'{"model": ')
    time.sleep(0.1)  # the server is reading the body
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()  # a reset
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.status for r in server.requests] == [499]
    _nothing_left_in_flight(server)


# --- slow and idle clients -------------------------------------------------------------


def test_slowloris_headers_get_408_at_the_deadline_however_they_trickle(server):
    with _connect(server) as connection:
        connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
        start = time.perf_counter()
        while not select.select([connection], [], [], 0.05)[0]:  # a byte every 50 ms
            assert time.perf_counter() - start < 4 * 0.5, "the trickle kept the request open"
            connection.sendall(b"X")
        waited = time.perf_counter() - start
        status, _, body = _answer(connection)
        assert _closed(connection)
    assert status == 408 and waited > 0.4
    assert not server.requests  # answered before its headers were whole: not logged


def test_an_idle_new_connection_gets_408_then_is_closed(server):
    with _connect(server) as connection:
        start = time.perf_counter()
        status, _, _ = _answer(connection)
        assert _closed(connection)
    assert status == 408 and 0.4 < time.perf_counter() - start < 4 * 0.5


def test_an_idle_kept_alive_connection_is_closed_without_an_answer(server):
    with _connect(server) as connection:
        connection.sendall(_post_head(len(GOOD)) + GOOD)
        assert _answer(connection)[0] == 200
        start = time.perf_counter()
        # An answer now could be read as the answer to a request sent at this moment.
        assert _closed(connection)
        assert 0.4 < time.perf_counter() - start < 4 * 0.5


# --- many connections ------------------------------------------------------------------


def test_connections_past_the_cap_get_503_and_the_server_recovers():
    with LocalLLMServer(max_connections=4, request_timeout=10) as server:
        held = [_connect(server) for _ in range(4)]
        for connection in held:  # each admitted: served on its kept-alive connection
            connection.sendall(_post_head(len(GOOD)) + GOOD)
            assert _answer(connection)[0] == 200
        with _connect(server) as extra:
            status, headers, body = _answer(extra)
            assert _closed(extra)
        assert status == 503 and headers["retry-after"] == "1"
        assert "(max_connections)" in body["error"]["message"]
        held.pop().close()  # a connection ends: its place is free again
        deadline = time.monotonic() + 5
        while True:
            with _connect(server) as again:
                again.sendall(_post_head(len(GOOD)) + GOOD)
                if _answer(again)[0] == 200 or time.monotonic() > deadline:
                    break
        for connection in held:
            connection.close()
        assert [r.status for r in server.requests][-1] == 200


def test_500_idle_connections_leave_the_server_answering_at_once():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # both ends of each connection are in this process
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    try:
        with LocalLLMServer(request_timeout=30) as server:  # the default cap: 1000
            idle = [_connect(server) for _ in range(500)]
            try:
                start = time.perf_counter()
                with openai.OpenAI(
                    base_url=server.openai_base_url, api_key="x", max_retries=0, timeout=10
                ) as client:
                    reply = client.chat.completions.create(
                        model="echo", messages=[{"role": "user", "content": "still here?"}]
                    )
                took = time.perf_counter() - start
                assert reply.choices[0].message.content == "still here?"
                # Long before any idle connection times out (30 s): nothing waited for one.
                assert took < 2, took
                for connection in (idle[0], idle[-1]):  # admitted, not refused: served
                    connection.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert _answer(connection)[0] == 200
            finally:
                for connection in idle:
                    connection.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- hostile prompts ------------------------------------------------------------------


def test_a_prompt_of_blank_lines_costs_time_linear_in_its_length():
    with LocalLLMServer() as server:

        def seconds(size: int) -> float:
            """The best of three: the least disturbed by the machine."""
            prompt = "\n" * size + "Final answer:"  # 58 KB of this once took 11 s and more
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                assert _chat(server, prompt) == 200
                best = min(best, time.perf_counter() - start)
            return best

        small, large = seconds(60_000), seconds(240_000)
        assert large < 8 * small + 0.01, (small, large)  # linear: ~4x (quadratic: 16x)


# --- memory ----------------------------------------------------------------------------


def _chat(server: LocalLLMServer, prompt: str) -> int:
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": prompt}]})
    return _exchange(server, _post_head(len(body.encode())) + body.encode())[0]


def test_the_log_keeps_bounded_text_of_large_prompts():
    prompts = [f"{i:02d} " + "x" * 500_000 for i in range(20)]  # 20 x 0.5 MB
    with LocalLLMServer() as server:
        for prompt in prompts:
            assert _chat(server, prompt) == 200
        kept = sum(len(r.prompt) for r in server.requests)
        assert kept == 20 * 2_000  # was: every whole body, 10 MB here (250 MB at 10 MB each)
        assert [r.prompt for r in server.requests] == [p[:2_000] for p in prompts]
        assert {r.prompt_chars for r in server.requests} == {len(prompts[0])}
    with LocalLLMServer(log_size=5, log_prompt_chars=10) as server:
        for prompt in prompts:
            assert _chat(server, prompt) == 200
        assert [r.prompt for r in server.requests] == [p[:10] for p in prompts[-5:]]


def test_faults_still_match_the_whole_prompt_when_the_log_keeps_its_start():
    with LocalLLMServer(log_prompt_chars=10) as server:
        server.inject(500, prompt="needle")
        assert _chat(server, "x" * 1000) == 200
        assert _chat(server, "x" * 1000 + "needle") == 500
        assert [r.status for r in server.requests] == [200, 500]


@pytest.mark.parametrize(
    "options",
    [
        {"max_connections": 0},
        {"request_timeout": 0},
        {"max_body_bytes": -1},
        {"log_size": 0},
        {"log_prompt_chars": 0},
    ],
)
def test_limits_out_of_range_are_refused(options):
    with pytest.raises(ValueError, match=f"{next(iter(options))} must be > 0"):
        LocalLLMServer(**options)
