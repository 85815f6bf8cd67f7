"""Both SDK providers against the local server, over real HTTP on loopback, under @jit."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from ember import models, xcs
from ember.models.providers import AnthropicProvider, OpenAIProvider, RetryPolicy
from ember.models.registry import ModelRegistry
from ember.models.server import LocalLLMServer

LATENCY = 0.1
FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05)


@pytest.fixture
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer(latency=LATENCY) as running:
        yield running


@pytest.fixture
def registry(server) -> ModelRegistry:
    """Providers named after their SDK, pointed at the local server, with quick retries."""
    fresh = ModelRegistry()
    fresh.register_provider(
        "openai", OpenAIProvider(base_url=server.openai_base_url, retry=FAST_RETRY, timeout=5)
    )
    fresh.register_provider(
        "anthropic",
        AnthropicProvider(base_url=server.anthropic_base_url, retry=FAST_RETRY, timeout=5),
    )
    return fresh


def _overlapping(records) -> int:
    """Most requests the server was working on at one moment, from its log."""
    edges = sorted([(r.start, 1) for r in records] + [(r.end, -1) for r in records])
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def _span(records) -> float:
    """From the first request's start to the last one's end, as the server saw them."""
    return max(r.end for r in records) - min(r.start for r in records)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_each_sdk_overlaps_its_calls_under_jit(registry, server, provider):
    chat = registry.instance(f"{provider}/chat")

    def ensemble(question):
        drafts = [chat(f"{question} (draft {i})").text for i in range(8)]
        return drafts, chat(f"Pick one:\n- {drafts[0]}\n- {drafts[1]}\nFinal answer:").text

    plain = ensemble("Why is the sky blue?")
    plain_s = _span(server.requests)
    server.reset()
    fast = xcs.jit(ensemble)("Why is the sky blue?")
    assert fast == plain
    records = server.requests
    assert len(records) == 9 and all(r.status == 200 for r in records)
    # Seen by the server. (On a loaded machine the waiting thread may run a queued call
    # itself before the pool's threads start, so one of the eight can start late.)
    assert _overlapping(records) == server.peak_concurrency >= 7
    # Two waves, not nine calls: from the server's first request to its last, so the
    # first call's own cost (rewriting, tracing) is not counted.
    assert _span(records) < 0.6 * plain_s


def test_both_providers_in_one_graph(registry, server):
    gpt, claude = registry.instance("openai/chat"), registry.instance("anthropic/chat")

    def both(q):
        return gpt(q).text, claude(q).text, gpt(q + "?").usage["total_tokens"]

    assert xcs.jit(both)("hi") == both("hi")
    assert {r.path for r in server.requests} == {"/v1/chat/completions", "/v1/messages"}


def test_chat_messages_and_system_prompts_reach_the_server(registry, server):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert registry.instance("openai/echo")(chat).text == "Be brief.\nhi"
    assert registry.instance("anthropic/echo")(chat).text == "Be brief.\nhi"
    response = registry.instance("openai/echo")("abcdefgh", temperature=0.0)
    assert response.usage["prompt_tokens"] == 2 and response.model_id == "openai/echo"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_retries_recover_from_injected_429s_with_nothing_lost(registry, server, provider):
    chat = registry.instance(f"{provider}/chat")
    prompts = [f"question {i}" for i in range(8)]

    def ask_all():
        return [chat(p).text for p in prompts]

    expected = ask_all()
    server.reset()
    for prompt in prompts[:6]:  # one 429 each (a shared queue could hit one prompt 4 times)
        server.inject(429, 1, retry_after=0.05, prompt=prompt)
    events = []
    remove = registry.on_call(events.append)
    try:
        assert xcs.jit(ask_all)() == expected
    finally:
        remove()
    statuses = [r.status for r in server.requests]
    assert statuses.count(429) == 6 and statuses.count(200) == 8  # each prompt answered once
    assert sorted(r.prompt for r in server.requests if r.status == 200) == sorted(prompts)
    calls = [e for e in events if e.kind == "call"]
    assert len(calls) == 8 and all(e.error is None for e in calls)
    # each 429 heard as a retry, with the server's Retry-After as the backoff
    retries = [e for e in events if e.kind == "retry"]
    assert [(e.status, e.attempt, e.backoff) for e in retries] == [(429, 1, 0.05)] * 6


def test_rate_limits_that_outlast_the_retries_raise_rate_limit_error_as_plain_python(
    registry, server
):
    chat = registry.instance("openai/chat")

    def ask():
        first = chat("a")
        return chat("b").text, first.text

    outcomes = []
    for run in (ask, xcs.jit(ask)):
        server.reset()
        server.inject(429, 4, retry_after=0, prompt="a")
        with pytest.raises(models.RateLimitError) as info:
            run()
        outcomes.append((type(info.value), info.value.attempts, info.value.status))
        assert type(info.value.__cause__).__name__ == "RateLimitError"  # the SDK's, chained
    assert outcomes[0] == outcomes[1] == (models.RateLimitError, 4, 429)


def test_server_errors_are_retried_then_raised(registry, server):
    chat = registry.instance("anthropic/chat")
    server.inject(500, 2)
    assert chat("x").text == models.instance("simulated/chat")("x", max_tokens=1024).text
    server.inject(503, 4)
    with pytest.raises(models.ProviderError) as info:
        chat("x")
    assert info.value.status == 503 and info.value.attempts == 4


def test_a_stalled_request_times_out_and_is_retried(server):
    registry = ModelRegistry()
    registry.register_provider(
        "openai", OpenAIProvider(base_url=server.openai_base_url, retry=FAST_RETRY, timeout=0.5)
    )
    server.latency = 0.0
    stall = 10.0  # twenty times the client's timeout
    server.inject_stall(stall)
    start = time.perf_counter()
    assert registry.instance("openai/echo")("hello").text == "hello"
    assert time.perf_counter() - start < stall / 2  # gave up on the stall, retried
    assert [r.status for r in server.requests] == [200]  # the retry; the stalled one is still held


def test_the_provider_limit_bounds_requests_across_models(server):
    registry = ModelRegistry()
    registry.register_provider(
        "limited", OpenAIProvider(base_url=server.openai_base_url, max_concurrency=3)
    )
    a, b = registry.instance("limited/a"), registry.instance("limited/b")

    def fan_out():
        return [(a if i % 2 else b)(f"q{i}").text for i in range(9)]

    assert xcs.jit(fan_out)() == fan_out()
    assert server.peak_concurrency == 3


def test_keys_come_from_the_environment_and_are_never_shown(monkeypatch):
    secret = "sk-test-do-not-print-0123456789"
    with LocalLLMServer(api_key=secret) as server:
        monkeypatch.setenv("EMBER_LOCAL_KEY", secret)
        for kind, url in (
            (OpenAIProvider, server.openai_base_url),
            (AnthropicProvider, server.anthropic_base_url),
        ):
            provider = kind(base_url=url, api_key_env="EMBER_LOCAL_KEY")
            assert provider.invoke("x/echo", "echo", "hi", {}).text == "hi"
            assert secret not in repr(provider)
        monkeypatch.setenv("EMBER_LOCAL_KEY", "sk-wrong")
        with pytest.raises(models.ProviderError) as info:
            OpenAIProvider(base_url=server.openai_base_url, api_key_env="EMBER_LOCAL_KEY").invoke(
                "openai/echo", "echo", "hi", {}
            )
        assert info.value.status == 401 and info.value.attempts == 1  # not retried
        assert "sk-wrong" not in str(info.value)
        monkeypatch.delenv("EMBER_LOCAL_KEY")
        with pytest.raises(models.MissingAPIKeyError, match="EMBER_LOCAL_KEY"):
            OpenAIProvider(base_url=server.openai_base_url, api_key_env="EMBER_LOCAL_KEY").invoke(
                "openai/echo", "echo", "hi", {}
            )


def test_the_providers_own_key_never_goes_to_another_endpoint(monkeypatch):
    secret = "sk-real-openai-key"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    with LocalLLMServer(api_key=secret) as server:  # accepts only the real key
        for model_id, url in (
            ("openai/echo", server.openai_base_url),
            ("anthropic/echo", server.anthropic_base_url),
        ):
            with pytest.raises(models.ProviderError) as info:
                models.instance(model_id, base_url=url)("hi")
            assert info.value.status == 401  # "EMPTY" was sent, not the real key
        named = models.instance(
            "openai/echo", base_url=server.openai_base_url, api_key_env="OPENAI_API_KEY"
        )
        assert named("hi").text == "hi"  # named explicitly: sent


def test_the_default_endpoints_need_a_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    registry = ModelRegistry()
    registry.register_provider("openai", OpenAIProvider)
    registry.register_provider("anthropic", AnthropicProvider)
    with pytest.raises(models.MissingAPIKeyError, match="OPENAI_API_KEY"):
        registry.instance("gpt-4o")("hi")  # raised before any request is made
    with pytest.raises(models.MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        registry.instance("claude-sonnet-4-5")("hi")


def _raw(server, method, path, body=None):
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(server.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_server_speaks_plain_http(server):
    server.latency = 0.0
    status, listing = _raw(server, "GET", "/v1/models")
    assert status == 200 and "echo" in [m["id"] for m in listing["data"]]
    status, reply = _raw(server, "POST", "/v1/chat/completions", {"model": "echo"})
    assert status == 400 and "required" in reply["error"]["message"]
    status, reply = _raw(server, "POST", "/v1/messages", b"not json")
    assert status == 400 and reply["type"] == "error"
    status, reply = _raw(
        server,
        "POST",
        "/v1/messages",
        {"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    assert status == 400 and "streaming" in reply["error"]["message"]  # anthropic: not yet
    assert _raw(server, "POST", "/v2/else", {})[0] == 404
    assert _raw(server, "GET", "/nothing")[0] == 404
    with pytest.raises(ValueError):
        server.inject(200)
    with pytest.raises(ValueError):
        server.inject_stall(0)


def test_the_server_command_line_serves(tmp_path):
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "ember", "serve", "--port", "0", "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "OpenAI base URL: http://127.0.0.1:" in line, line
        base_url = line.split("OpenAI base URL: ", 1)[1].split()[0]
        registry = ModelRegistry()
        registry.register_provider("openai", OpenAIProvider(base_url=base_url))
        assert registry.instance("openai/echo")("over the command line").text == (
            "over the command line"
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def _post(server, headers, body=b""):
    import http.client

    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/v1/chat/completions")
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body)
    reply = connection.getresponse()
    return reply.status, json.loads(reply.read())


def test_malformed_requests_get_an_answer_not_a_dropped_line(server):
    server.latency = 0.0
    assert _post(server, {"Content-Length": "abc"})[0] == 400
    assert _post(server, {"Content-Length": "-1"})[0] == 400
    assert _post(server, {"Transfer-Encoding": "chunked"}, b"0\r\n\r\n")[0] == 400
    body = json.dumps({"model": "echo", "messages": ["hi"]}).encode()
    status, reply = _post(server, {"Content-Length": str(len(body))}, body)
    assert status == 400 and "JSON object" in reply["error"]["message"]


def test_faults_wait_for_a_request_that_would_be_answered(server):
    server.latency = 0.0
    server.inject(500)
    assert _post(server, {"Content-Length": "2"}, b"{}")[0] == 400  # did not take the fault
    good = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}]}).encode()
    assert _post(server, {"Content-Length": str(len(good))}, good)[0] == 500
    assert _post(server, {"Content-Length": str(len(good))}, good)[0] == 200


def test_stop_ends_open_keep_alive_connections():
    import http.client

    server = LocalLLMServer().start()
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    good = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}]})
    connection.request("POST", "/v1/chat/completions", body=good)
    assert connection.getresponse().read()
    server.stop()
    with pytest.raises(OSError):  # the kept-alive connection was closed, not served
        connection.request("POST", "/v1/chat/completions", body=good)
        connection.getresponse()
    assert len(server.requests) == 1


def test_a_client_that_hangs_up_is_no_error(server, capfd):
    import socket
    import struct

    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(3):  # connect, start a request, then reset the connection
        client = socket.create_connection((host, int(port)), timeout=5)
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    assert _raw(server, "GET", "/v1/models")[0] == 200  # still serving
    deadline = time.monotonic() + 10
    while server._httpd._connections and time.monotonic() < deadline:
        time.sleep(0.01)  # until every handler thread has met its reset and closed
    assert not server._httpd._connections
    assert "Traceback" not in capfd.readouterr().err


def test_sampling_parameters_reach_the_server_through_either_sdk(registry, server):
    # anthropic 2.x no longer names temperature/top_p in messages.create: they go as JSON.
    server.latency = 0.0

    def answers(provider):
        chat = registry.instance(f"{provider}/chat", max_tokens=1024, top_p=0.9)
        return [chat("q", temperature=t / 5).text for t in range(6)]

    by_anthropic = answers("anthropic")
    assert by_anthropic == answers("openai")  # the server saw the same parameters
    assert len(set(by_anthropic)) > 1  # and the temperature reached it
