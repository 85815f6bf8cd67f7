"""A real ASGI app under a real ASGI server (uvicorn, on loopback) calling jitted code.

While one request is inside a jitted call, the server's other requests keep flowing:
a jitted ``async def`` awaits its waits, and a jitted sync function is awaited with
``fn.acall``. The same sync call made directly in the handler blocks the loop, and
the other requests wait -- which the test shows too, so it can fail.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ember import xcs

uvicorn = pytest.importorskip("uvicorn")

LATENCY = 0.15


@xcs.op
async def llm(prompt: str) -> str:
    await asyncio.sleep(LATENCY)
    return prompt.upper()


@xcs.op
def sync_llm(prompt: str) -> str:
    time.sleep(LATENCY)
    return prompt.upper()


async def pipeline(question: str) -> str:
    drafts = [await llm(f"{question} {i}") for i in range(4)]
    return await llm(" | ".join(drafts))


def sync_pipeline(question: str) -> str:
    drafts = [sync_llm(f"{question} {i}") for i in range(4)]
    return sync_llm(" | ".join(drafts))


jitted = xcs.jit(pipeline)
sync_jitted = xcs.jit(sync_pipeline)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI app: ``/answer`` (async, jitted), ``/answer-sync`` (``acall``),
    ``/blocking`` (a jitted sync call made on the loop), anything else: ``pong``."""
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/answer":
        body = await jitted("q")
    elif path == "/answer-sync":
        body = await sync_jitted.acall("q")
    elif path == "/blocking":
        body = sync_jitted("q")  # what acall avoids: the loop waits for the whole call
    else:
        body = "pong"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def _while_answering(base_url: str, path: str) -> tuple[str, float, float]:
    """The answer of ``path``, its time, and the slowest ping made while it ran."""
    answer: list[str] = []
    start = time.perf_counter()
    worker = threading.Thread(target=lambda: answer.append(_get(base_url + path)))
    worker.start()
    time.sleep(0.05)  # the request is inside its jitted call now
    pings = []
    while worker.is_alive():
        ping_start = time.perf_counter()
        assert _get(base_url + "/ping") == "pong"
        pings.append(time.perf_counter() - ping_start)
    took = time.perf_counter() - start
    worker.join()
    return answer[0], took, max(pings, default=0.0)


def test_other_requests_flow_while_one_is_in_a_jitted_async_call(base_url: str) -> None:
    answer, took, slowest = _while_answering(base_url, "/answer")
    assert answer == asyncio.run(pipeline("q"))
    assert took < 5 * LATENCY  # 2 waves of calls, not 5 in a row
    assert slowest < LATENCY / 2


def test_acall_keeps_requests_flowing_and_a_blocking_call_does_not(base_url: str) -> None:
    answer, _, slowest = _while_answering(base_url, "/answer-sync")
    assert answer == sync_pipeline("q") and slowest < LATENCY / 2
    answer, _, slowest = _while_answering(base_url, "/blocking")
    assert answer == sync_pipeline("q") and slowest > LATENCY  # the loop was blocked
