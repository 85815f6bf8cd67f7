"""The response cache over real HTTP: the local server's log shows which calls were sent.

Both SDK providers (``openai``, ``anthropic``) talk to ``LocalLLMServer`` on loopback;
a call the cache answers never reaches the server, so every hit and miss here is
counted on the server's side. Cache files live in ``tmp_path`` (``EMBER_CACHE_DIR``
too): the user's real cache is never touched, and no test leaves a cache on.
"""

from __future__ import annotations

import json
import logging
import pathlib
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ember import models, xcs
from ember.models import CacheError, response_cache
from ember.models.providers import AnthropicProvider, OpenAIProvider, RetryPolicy
from ember.models.registry import ModelRegistry, default_registry
from ember.models.server import LocalLLMServer

LATENCY = 0.01  # quick; the test of overlapping calls has a slower server
FAST_RETRY = RetryPolicy(attempts=3, base=0.01, cap=0.05)
PROVIDERS = ["openai", "anthropic"]


pytestmark = pytest.mark.usefixtures("no_response_cache")


@pytest.fixture
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer(latency=LATENCY) as running:
        yield running


def _registry(server: LocalLLMServer, **options: Any) -> ModelRegistry:
    fresh = ModelRegistry()
    options = {"retry": FAST_RETRY, "timeout": 5, **options}
    fresh.register_provider("openai", OpenAIProvider(base_url=server.openai_base_url, **options))
    fresh.register_provider(
        "anthropic", AnthropicProvider(base_url=server.anthropic_base_url, **options)
    )
    return fresh


@pytest.fixture
def registry(server: LocalLLMServer) -> ModelRegistry:
    """Providers named after their SDK, pointed at the local server, with quick retries."""
    return _registry(server)


def _sent(server: LocalLLMServer) -> int:
    """Requests the server answered (any status)."""
    return len(server.requests)


def _files(path: pathlib.Path) -> list[pathlib.Path]:
    """The cache file and its WAL and shared-memory files, those that exist."""
    names = (path.name, f"{path.name}-wal", f"{path.name}-shm")
    return [path.with_name(n) for n in names if path.with_name(n).exists()]


# --- hits, and what a hit looks like --------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_second_identical_run_sends_no_request(registry, server, tmp_path, provider):
    model_id = f"{provider}/chat"
    registry.set_price(model_id, prompt=3.0, completion=15.0)
    chat = registry.instance(model_id, temperature=0)
    events: list[models.CallEvent] = []
    registry.on_call(events.append)
    prompts: list[Any] = [
        "Why is the sky blue?",
        "What is a tide?",
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    ]

    def run() -> list[models.Response]:
        return [chat(p) for p in prompts]

    path = tmp_path / "run.sqlite3"
    with models.cache(path) as cache:
        first = run()
        assert _sent(server) == 3
        assert cache.info().stores == 3
    cache.close()
    with models.cache(path) as again:  # a re-run: the file opened afresh
        second = run()
        info = again.info()
    again.close()
    assert _sent(server) == 3  # nothing sent the second time
    assert [r.text for r in second] == [r.text for r in first]
    assert [r.model_id for r in second] == [model_id] * 3
    assert [(r.cached, r.usage["cached"], r.attempts) for r in first] == [(False, False, 1)] * 3
    assert [(r.cached, r.usage["cached"], r.attempts) for r in second] == [(True, True, 0)] * 3
    assert all(r.usage["cost"] > 0 for r in first)  # priced ...
    assert [r.usage["cost"] for r in second] == [0.0] * 3  # ... hits are free
    assert [r.usage["total_tokens"] for r in second] == [r.usage["total_tokens"] for r in first]
    assert (info.hits, info.misses, info.stores, info.entries, info.errors) == (3, 0, 0, 3, 0)

    usage = registry.usage()
    assert (usage["calls"], usage["cached_calls"]) == (3, 3)
    assert usage["total_tokens"] == sum(r.usage["total_tokens"] for r in first)
    assert usage["cost"] == pytest.approx(sum(r.usage["cost"] for r in first))
    assert registry.usage(model_id)["cached_calls"] == 3

    calls = [e for e in events if e.kind == "call"]
    assert [(e.cached, e.attempt, e.error) for e in calls] == [(False, 1, None)] * 3 + [
        (True, 0, None)
    ] * 3
    assert all(e.response is not None and e.response.cached for e in calls[3:])


def test_the_default_registry_counts_hits_apart_and_prices_only_requests(server, tmp_path):
    model_id = "openai/cache-accounting"  # a name no other test prices
    models.reset_usage()
    models.set_price(model_id, prompt=1000.0, completion=2000.0)
    try:
        chat = models.instance(model_id, base_url=server.openai_base_url, temperature=0)
        with models.cache(tmp_path / "c.sqlite3"):
            paid = chat("Why is the sky blue?")
            free = [
                chat("Why is the sky blue?"),
                models(
                    model_id, "Why is the sky blue?", base_url=server.openai_base_url, temperature=0
                ),
            ]
        usage = models.usage(model_id)
    finally:
        default_registry._prices.pop(model_id, None)  # no API unsets a price
        models.reset_usage()
    assert _sent(server) == 1
    assert paid.usage["cost"] > 0 and [r.usage["cost"] for r in free] == [0.0, 0.0]
    assert [r.cached for r in free] == [True, True]
    assert (usage["calls"], usage["cached_calls"]) == (1, 2)
    assert usage["total_tokens"] == paid.usage["total_tokens"]
    assert usage["cost"] == pytest.approx(paid.usage["cost"])


def test_the_same_request_written_another_way_is_a_hit(registry, server, tmp_path):
    """Parameters in another order, as defaults or per call: the same request."""
    with models.cache(tmp_path / "c.sqlite3"):
        one = registry.instance("openai/chat", temperature=0, max_tokens=40, top_p=0.5)
        first = one("q", stop=["x", "y"], metadata={"a": "1", "b": "2"})
        other = registry.instance("openai/chat", top_p=0.5, metadata={"b": "2", "a": "1"})
        second = other("q", stop=("x", "y"), max_tokens=40, temperature=0)
        third = registry.instance("openai/chat")(
            "q",
            metadata={"a": "1", "b": "2"},
            top_p=0.5,
            temperature=0,
            max_tokens=40,
            stop=["x", "y"],
        )
    assert _sent(server) == 1
    assert (first.cached, second.cached, third.cached) == (False, True, True)
    assert first.text == second.text == third.text


# --- what makes a key ------------------------------------------------------------------

BASE_PROMPT = [
    {"role": "user", "content": "Tell me about tides."},
    {"role": "assistant", "content": "Gladly."},
    {"role": "user", "content": "Go on."},
]
BASE_PARAMS = {"temperature": 0, "max_tokens": 64}


def _with(message: int, **fields: str) -> list[dict[str, str]]:
    return [dict(m, **fields) if i == message else m for i, m in enumerate(BASE_PROMPT)]


# (what changes, the prompt, the parameters, the model), for either provider
_CHANGES = {
    "prompt text": (_with(2, content="Go on!"), BASE_PARAMS, "chat"),
    "a message's role": (_with(1, role="user"), BASE_PARAMS, "chat"),
    "a system message": (
        [{"role": "system", "content": "Be brief."}, *BASE_PROMPT],
        BASE_PARAMS,
        "chat",
    ),
    "the model": (BASE_PROMPT, BASE_PARAMS, "judge"),
    "temperature": (BASE_PROMPT, {**BASE_PARAMS, "temperature": 0.3}, "chat"),
    "max_tokens": (BASE_PROMPT, {**BASE_PARAMS, "max_tokens": 65}, "chat"),
    "top_p": (BASE_PROMPT, {**BASE_PARAMS, "top_p": 0.9}, "chat"),
    "extra_body": (BASE_PROMPT, {**BASE_PARAMS, "extra_body": {"x": 1}}, "chat"),
    "extra_headers": (BASE_PROMPT, {**BASE_PARAMS, "extra_headers": {"X-Run": "2"}}, "chat"),
}
_OPENAI_CHANGES = {
    "seed": (BASE_PROMPT, {**BASE_PARAMS, "seed": 7}, "chat"),
    "stop": (BASE_PROMPT, {**BASE_PARAMS, "stop": ["\n"]}, "chat"),
    "presence_penalty": (BASE_PROMPT, {**BASE_PARAMS, "presence_penalty": 0.5}, "chat"),
}
_ANTHROPIC_CHANGES = {
    "system": (BASE_PROMPT, {**BASE_PARAMS, "system": "Be brief."}, "chat"),
    "top_k": (BASE_PROMPT, {**BASE_PARAMS, "top_k": 5}, "chat"),
    "stop_sequences": (BASE_PROMPT, {**BASE_PARAMS, "stop_sequences": ["\n"]}, "chat"),
}
KEY_CASES = [
    pytest.param(provider, change, *case, id=f"{provider}-{change}")
    for provider, extra in (("openai", _OPENAI_CHANGES), ("anthropic", _ANTHROPIC_CHANGES))
    for change, case in {**_CHANGES, **extra}.items()
]


@pytest.mark.parametrize(("provider", "change", "prompt", "params", "model"), KEY_CASES)
def test_changing_any_one_thing_is_a_miss(
    registry, server, tmp_path, provider, change, prompt, params, model
):
    # always=True: a temperature of 0.3 is still looked up, so a miss is the key's doing
    with models.cache(tmp_path / "k.sqlite3", always=True) as cache:
        base = registry.instance(f"{provider}/chat")(BASE_PROMPT, **BASE_PARAMS)
        assert registry.instance(f"{provider}/chat")(BASE_PROMPT, **BASE_PARAMS).cached
        assert _sent(server) == 1
        changed = registry.instance(f"{provider}/{model}")(prompt, **params)
        assert _sent(server) == 2, f"changing {change} was answered from the cache"
        assert not changed.cached and not base.cached
        assert registry.instance(f"{provider}/{model}")(prompt, **params).cached  # kept too
        info = cache.info()
    assert _sent(server) == 2
    assert (info.misses, info.hits, info.skipped, info.entries) == (2, 2, 0, 2)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_another_endpoint_is_a_miss(server, tmp_path, provider):
    with LocalLLMServer(latency=LATENCY) as elsewhere:
        here, there = _registry(server), _registry(elsewhere)
        with models.cache(tmp_path / "c.sqlite3"):
            a = here.instance(f"{provider}/chat", temperature=0)("q")
            b = there.instance(f"{provider}/chat", temperature=0)("q")
            c = there.instance(f"{provider}/chat", temperature=0)("q")
        assert (_sent(server), _sent(elsewhere)) == (1, 1)
    assert (a.cached, b.cached, c.cached) == (False, False, True)
    assert a.text == b.text  # the same answer: only the endpoint told them apart


# --- which calls are cached -----------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sampling_calls_are_not_cached_unless_always(registry, server, tmp_path, provider):
    chat = registry.instance(f"{provider}/chat")
    path = tmp_path / "c.sqlite3"
    with models.cache(path) as cache:
        sampled = [chat("q", temperature=0.7) for _ in range(2)]
        assert _sent(server) == 2 and not any(r.cached for r in sampled)
        default = [chat("q") for _ in range(2)]  # the API's default temperature samples
        assert _sent(server) == 4 and not any(r.cached for r in default)
        assert cache.info().skipped == 4 and cache.info().entries == 0
        greedy = [chat("q", temperature=0) for _ in range(2)]
        assert _sent(server) == 5 and [r.cached for r in greedy] == [False, True]
    cache.close()
    with models.cache(path, always=True) as always:
        kept = [chat("q", temperature=0.7) for _ in range(2)]
        assert [r.cached for r in kept] == [False, True] and kept[0].text == kept[1].text
        assert (always.info().skipped, always.info().entries) == (0, 2)
    always.close()
    assert _sent(server) == 6


def test_a_seed_makes_a_sampling_call_cached(registry, server, tmp_path):
    chat = registry.instance("openai/chat", temperature=0.9)
    with models.cache(tmp_path / "c.sqlite3") as cache:
        seeded = [chat("q", seed=11) for _ in range(2)]
        other = chat("q", seed=12)
        info = cache.info()
    assert _sent(server) == 2
    assert [r.cached for r in (*seeded, other)] == [False, True, False]
    assert (info.hits, info.misses, info.skipped) == (1, 2, 0)


# --- failures --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("status", "count"), [(400, 1), (500, 3)], ids=["400", "500-x3"])
def test_a_failed_call_is_not_stored(registry, server, tmp_path, provider, status, count):
    chat = registry.instance(f"{provider}/chat", temperature=0)
    with models.cache(tmp_path / "c.sqlite3") as cache:
        server.inject(status, count, prompt="fails once")
        with pytest.raises(models.ProviderError) as info:
            chat("fails once")
        assert info.value.status == status and info.value.attempts == count
        assert _sent(server) == count
        assert (cache.info().entries, cache.info().stores) == (0, 0)
        answered = chat("fails once")  # sent again, and stored now
        assert _sent(server) == count + 1 and not answered.cached
        assert chat("fails once").cached
        assert _sent(server) == count + 1
        assert [r.status for r in server.requests] == [status] * count + [200]


# --- identical calls at once, under @jit ------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_jit_gives_the_plain_python_results_flags_and_request_count(tmp_path, provider):
    with LocalLLMServer(latency=0.1) as server:  # calls long enough to see them overlap
        _same_under_jit(_registry(server), server, tmp_path, provider)


def _same_under_jit(
    registry: ModelRegistry, server: LocalLLMServer, tmp_path: pathlib.Path, provider: str
) -> None:
    chat = registry.instance(f"{provider}/chat", temperature=0)

    def pipeline(topic: str) -> list[tuple[str, bool]]:
        # one wave of six calls: three prompts, each twice
        drafts = [chat(f"{topic}, take {i % 3}") for i in range(6)]
        best = chat("Pick one: " + " | ".join(d.text for d in drafts))
        return [(r.text, r.cached) for r in (*drafts, best)]

    with models.cache(tmp_path / "plain.sqlite3"):
        plain = pipeline("tides")
    plain_sent = _sent(server)
    assert plain_sent == 4
    assert [cached for _, cached in plain] == [False] * 3 + [True] * 3 + [False]

    server.reset()
    fast = xcs.jit(pipeline)
    with models.cache(tmp_path / "jit.sqlite3") as cache:
        assert fast("tides") == plain
    assert _sent(server) == plain_sent
    assert server.peak_concurrency >= 2  # the three first takes still overlap
    assert fast.stats()["cached_ops"] == 3
    assert (cache.info().hits, cache.info().misses) == (3, 4)

    server.reset()  # warm: every op answered from the cache, marked in the trace
    with models.cache(tmp_path / "jit.sqlite3"):
        traced = xcs.trace(pipeline, "tides")
    assert _sent(server) == 0
    assert traced.result == [(text, True) for text, _ in plain]
    ops = [n for n, a in traced.graph.nodes(data=True) if a["kind"] == "op"]
    assert len(ops) == 7 and all(traced.graph.nodes[n]["cached"] == 1 for n in ops)
    assert str(traced).count("[cached]") == 7


def test_the_trace_marks_exactly_the_ops_the_cache_answered(registry, server, tmp_path):
    chat = registry.instance("openai/chat", temperature=0)

    def pipeline() -> list[bool]:
        return [chat(p).cached for p in ("a", "b", "a", "c", "b")]

    with models.cache(tmp_path / "c.sqlite3"):
        traced = xcs.trace(pipeline)
    assert traced.result == [False, False, True, False, True]
    assert _sent(server) == 3
    ops = sorted(n for n, a in traced.graph.nodes(data=True) if a["kind"] == "op")
    assert [traced.graph.nodes[n]["cached"] for n in ops] == [0, 0, 1, 0, 1]
    lines = [line for line in str(traced).splitlines() if "op[openai/chat]" in line]
    assert ["[cached]" in line for line in lines] == [False, False, True, False, True]
    # the drawings say it too
    assert traced.to_mermaid().count('<br/>cached")') == 2
    events = [e for e in traced.to_chrome_trace()["traceEvents"] if e.get("ph") == "X"]
    assert sorted(e["args"]["cached"] for e in events if "cached" in e.get("args", {})) == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_under_jit_the_call_first_in_program_order_counts_as_the_request(tmp_path):
    """The later call starts first (the earlier one waits for its prompt) and makes the
    request; the earlier one joins it in flight. The earlier still counts as the request
    made and the later as the hit, as in plain Python.

    ``jit(timeout=)`` keeps the waiting thread free to run the glue that makes the
    earlier call's prompt. Without it the waiting thread may run the later call itself
    and the glue only after it: the two are then not in flight at once, the earlier
    call finds the answer stored and is the hit (an order plain Python never runs in).
    """
    with LocalLLMServer(latency=0.05) as server:
        chat = _registry(server).instance("openai/chat", temperature=0)

        def pipeline() -> tuple[bool, bool]:
            first = chat("warm up")
            early = chat("same" + first.text[:0])  # starts once "warm up" is answered
            late = chat("same")  # starts at once
            return early.cached, late.cached

        fast = xcs.jit(timeout=30)(pipeline)
        results = []
        for run in (pipeline, fast):
            server.reset()
            server.inject_stall(0.5, prompt="same")  # "same" is in flight a while
            with models.cache(tmp_path / f"{len(results)}.sqlite3") as cache:
                results.append(run())
            assert [r.prompt for r in server.requests] == ["warm up", "same"]
            assert (cache.info().misses, cache.info().hits) == (2, 1)
        server.reset()
        server.inject_stall(0.5, prompt="same")
        with models.cache(tmp_path / "traced.sqlite3"):
            traced = xcs.trace(fast)
        # Under @jit the late call made the request: it started before "warm up" ended ...
        (same_start,) = [r.start for r in server.requests if r.prompt == "same"]
        (warm_end,) = [r.end for r in server.requests if r.prompt == "warm up"]
        assert same_start < warm_end
    # ... and yet the flags are plain Python's, and so is the mark in the trace.
    assert results == [(False, True), (False, True)] and traced.result == (False, True)
    ops = sorted(n for n, a in traced.graph.nodes(data=True) if a["kind"] == "op")
    assert [traced.graph.nodes[n]["cached"] for n in ops] == [0, 0, 1]


def test_under_jit_the_cache_is_chosen_where_each_call_is_made(registry, server, tmp_path):
    chat = registry.instance("openai/chat", temperature=0)

    def mixed(q: str) -> tuple[bool, bool, bool]:
        a = chat(q)
        with models.no_cache():
            b = chat(q)  # sent, whatever is stored
        c = chat(q)
        return a.cached, b.cached, c.cached

    with models.cache(tmp_path / "plain.sqlite3"):
        plain = mixed("q")
    plain_sent = _sent(server)
    server.reset()
    with models.cache(tmp_path / "jit.sqlite3"):
        jitted = xcs.jit(mixed)("q")
    assert plain == jitted == (False, False, True)
    assert _sent(server) == plain_sent == 2


def test_a_failed_request_in_flight_leaves_the_waiting_call_to_make_its_own(
    registry, server, tmp_path
):
    chat = registry.instance("openai/chat", temperature=0)
    expected = chat("shaky").text
    server.reset()
    server.inject(503, 3, prompt="shaky")  # every attempt of the first request fails
    outcomes: list[Any] = []

    def call() -> None:
        try:
            outcomes.append(chat("shaky"))
        except models.ProviderError as error:
            outcomes.append(error)

    with models.cache(tmp_path / "c.sqlite3") as cache:
        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        info = cache.info()
    statuses = [r.status for r in server.requests]
    # One made the request (three attempts, all failed); the other waited, then made its own.
    assert statuses == [503, 503, 503, 200]
    (error,) = [o for o in outcomes if isinstance(o, models.ProviderError)]
    (answer,) = [o for o in outcomes if isinstance(o, models.Response)]
    assert error.status == 503 and error.attempts == 3
    assert answer.text == expected and not answer.cached
    assert (info.misses, info.hits, info.stores, info.entries) == (2, 0, 1, 1)


# --- several processes -----------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from ember import models
    from ember.models.providers import OpenAIProvider, RetryPolicy
    from ember.models.registry import ModelRegistry

    url, path, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    registry = ModelRegistry()
    provider = OpenAIProvider(base_url=url, retry=RetryPolicy(attempts=1), timeout=10)
    registry.register_provider("openai", provider)
    chat = registry.instance("openai/chat", temperature=0)
    with models.cache(path) as cache:
        answers = [[r.text, r.cached] for r in (chat(p) for p in prompts)]
        info = cache.info()
    print(json.dumps({"answers": answers, "hits": info.hits, "errors": info.errors}))
    """
)


def _children(
    tmp_path: pathlib.Path, server: LocalLLMServer, path: pathlib.Path, *batches: list[str]
) -> list[dict[str, Any]]:
    """Run the child script once per batch of prompts, all at the same time."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    running = [
        subprocess.Popen(
            [sys.executable, str(script), server.openai_base_url, str(path), json.dumps(b)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for b in batches
    ]
    results = []
    for child in running:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_a_second_process_gets_the_first_ones_answers(registry, server, tmp_path):
    path = tmp_path / "shared.sqlite3"
    chat = registry.instance("openai/chat", temperature=0)
    prompts = [f"question {i}" for i in range(5)]
    with models.cache(path) as cache:
        here = [chat(p).text for p in prompts]
    cache.close()
    assert _sent(server) == 5
    (child,) = _children(tmp_path, server, path, prompts)
    assert _sent(server) == 5  # the other process sent nothing
    assert child["answers"] == [[text, True] for text in here]
    assert (child["hits"], child["errors"]) == (5, 0)


def test_processes_writing_one_file_at_once_leave_it_whole(registry, server, tmp_path):
    path = tmp_path / "shared.sqlite3"
    first = [f"first {i}" for i in range(12)] + [f"both {i}" for i in range(6)]
    second = [f"second {i}" for i in range(12)] + [f"both {i}" for i in range(6)]
    a, b = _children(tmp_path, server, path, first, second)
    assert (a["errors"], b["errors"]) == (0, 0)
    assert [t for t, _ in a["answers"][12:]] == [t for t, _ in b["answers"][12:]]
    sent = _sent(server)
    assert 30 <= sent <= 36  # each process asks what it did not find (shared ones maybe twice)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    # A third process (this one) finds every answer.
    chat = registry.instance("openai/chat", temperature=0)
    with models.cache(path) as cache:
        assert cache.info().entries == 30
        answers = [chat(p) for p in first + second[:12]]
    cache.close()
    assert _sent(server) == sent
    assert all(r.cached for r in answers)
    expected = dict(zip(first, (t for t, _ in a["answers"]), strict=True))
    expected.update(zip(second, (t for t, _ in b["answers"]), strict=True))
    assert [r.text for r in answers] == [expected[p] for p in first + second[:12]]


# --- damaged, foreign and locked files ---------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"\x00\xffgarbage" * 512, b"SQLite format 3\x00" + bytes(range(256)) * 16],
    ids=["garbage", "damaged-sqlite-header"],
)
def test_a_file_that_is_no_database_raises_cache_error_naming_it(tmp_path, content):
    path = tmp_path / "broken.sqlite3"
    path.write_bytes(content)
    with pytest.raises(CacheError) as info:
        models.cache(path)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert response_cache.active() is None
    assert path.read_bytes() == content  # left as it was


def test_another_programs_database_raises_cache_error(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    connection.close()
    with pytest.raises(CacheError, match="another program") as info:
        models.cache(path)
    assert str(path) in str(info.value) and "orders" in str(info.value)
    assert response_cache.active() is None


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")  # in WAL mode: no one else writes
    print("locked", flush=True)
    sys.stdin.readline()
    connection.execute("ROLLBACK")
    """
)


class _Locker:
    """Another process holding the write lock of a cache file until ``release``."""

    def __init__(self, tmp_path: pathlib.Path, path: pathlib.Path) -> None:
        script = tmp_path / "locker.py"
        script.write_text(LOCKER)
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.wait(30) == 0


def test_a_file_another_process_holds_locked_costs_no_wrong_answer_and_no_long_wait(
    registry, server, tmp_path, caplog
):
    path = tmp_path / "c.sqlite3"
    chat = registry.instance("openai/chat", temperature=0)
    with models.cache(path):
        stored = chat("stored").text
    locker = _Locker(tmp_path, path)
    try:
        caplog.set_level(logging.DEBUG, logger="ember.models")
        start = time.perf_counter()
        with models.cache(path) as cache:  # opening it waits for no lock
            hit = chat("stored")  # reading is not blocked (WAL)
            fresh = [chat("new"), chat("new")]  # each sent: its answer cannot be stored
            info = cache.info()
        seconds = time.perf_counter() - start
    finally:
        locker.release()
    assert hit.cached and hit.text == stored
    assert [r.cached for r in fresh] == [False, False]
    assert (
        fresh[0].text
        == fresh[1].text
        == registry.instance("openai/chat")("new", temperature=0).text
    )
    assert (info.hits, info.misses, info.stores, info.errors, info.entries) == (1, 2, 0, 2, 1)
    assert seconds < 5  # each blocked write gives up after about 0.2 s
    warnings = [
        r for r in caplog.records if r.name == "ember.models" and "could not" in r.getMessage()
    ]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]  # said once
    assert str(path) in warnings[0].getMessage()
    # Once the lock is gone, the answer is stored again.
    with models.cache(path) as cache:
        assert not chat("new").cached and chat("new").cached
        assert cache.info().errors == 0
    cache.close()


def test_a_cache_on_before_the_lock_goes_on_answering(registry, server, tmp_path):
    path = tmp_path / "c.sqlite3"
    chat = registry.instance("anthropic/chat", temperature=0)
    with models.cache(path) as cache:
        first = chat("one")
        locker = _Locker(tmp_path, path)
        try:
            again = chat("one")
            other = chat("two")
        finally:
            locker.release()
        stored = chat("two")
        info = cache.info()
    cache.close()
    assert again.cached and again.text == first.text
    assert not other.cached and not stored.cached and other.text == stored.text
    assert (info.errors, info.stores, info.entries) == (1, 2, 2)
    assert _sent(server) == 3


EXCLUSIVE_LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")  # kept after the write: no readers
    connection.execute("BEGIN EXCLUSIVE")
    connection.execute("UPDATE ember_cache SET value = value WHERE name = 'format'")
    connection.execute("COMMIT")
    print("locked", flush=True)
    sys.stdin.readline()
    connection.close()
    """
)


def test_a_file_locked_even_for_readers_is_refused_at_once_and_not_called_damaged(
    registry, server, tmp_path
):
    """Another program holding the file in exclusive locking mode blocks reads too: the
    cache cannot be opened (a CacheError after the short busy wait, not a hang), and the
    error does not call for deleting a file that is only locked."""
    path = tmp_path / "c.sqlite3"
    chat = registry.instance("openai/chat", temperature=0)
    with models.cache(path) as cache:
        chat("q")
    cache.close()  # (exclusive locking mode needs every other connection closed)
    script = tmp_path / "exclusive.py"
    script.write_text(EXCLUSIVE_LOCKER)
    locker = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        start = time.perf_counter()
        with pytest.raises(CacheError) as info:
            models.cache(path)
        seconds = time.perf_counter() - start
    finally:
        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.flush()
        assert locker.wait(30) == 0
    assert seconds < 5 and response_cache.active() is None
    message = str(info.value)
    assert str(path) in message and "locked" in message and "Delete" not in message
    with models.cache(path) as cache:  # released: usable, with its answer
        assert chat("q").cached
    cache.close()
    assert _sent(server) == 1


def _age(path: pathlib.Path, seconds: float = 60.0) -> None:
    """Make every answer in the file look stored and used ``seconds`` earlier."""
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE responses SET used = used - ?, created = created - ?", (seconds, seconds)
        )
    connection.close()


def _rows(path: pathlib.Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT key, request, answer FROM responses").fetchall()
    connection.close()
    return rows


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE responses SET answer = substr(answer, 1, 20)",  # cut short: no JSON
        "UPDATE responses SET answer = '[1, 2]'",  # JSON, not an answer
        """UPDATE responses SET answer = '{"text": 5, "usage": {}}'""",
        """UPDATE responses SET answer = '{"text": "x", "usage": {"cost": "free"}}'""",
        "UPDATE responses SET request = replace(request, 'tides', 'tidez')",
    ],
    ids=["cut", "list", "text-not-str", "cost-not-number", "request"],
)
def test_a_damaged_row_is_a_miss_and_is_replaced(registry, server, tmp_path, damage):
    path = tmp_path / "c.sqlite3"
    chat = registry.instance("openai/chat", temperature=0)
    with models.cache(path) as cache:
        right = chat("tides")
    cache.close()
    (before,) = _rows(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute(damage).rowcount == 1
    connection.close()
    assert _rows(path) != [before]
    with models.cache(path) as cache:
        served = chat("tides")
        assert chat("tides").cached
        info = cache.info()
    cache.close()
    assert not served.cached and served.text == right.text  # asked the server again
    assert _sent(server) == 2
    assert (info.errors, info.misses, info.hits, info.stores) == (1, 1, 1, 1)
    assert _rows(path) == [before]  # the row as it was stored first


# --- keys never reach the file ----------------------------------------------------------

KEY = "sk-ant-api03-Qm4Tz8Wc2Rv6Yb0Np5Lk9Hd3Xs7Jf1Ge"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_api_key_is_written_to_the_cache_file(tmp_path, monkeypatch, provider):
    monkeypatch.setenv("EMBER_TEST_CACHE_KEY", KEY)
    header = {"openai": "Authorization", "anthropic": "x-api-key"}[provider]
    value = f"Bearer {KEY}" if provider == "openai" else KEY
    path = tmp_path / "c.sqlite3"
    with LocalLLMServer(api_key=KEY) as server:
        registry = _registry(server, api_key_env="EMBER_TEST_CACHE_KEY")
        chat = registry.instance(f"{provider}/chat", temperature=0)
        with models.cache(path) as cache:
            answers = [
                chat("a question about keys"),
                chat("a question about keys"),
                chat("sent with a header", extra_headers={header: value}),
                chat("a header of a name", extra_headers={"X-Forwarded-Key": KEY}),
                chat(f"a prompt that holds the key {KEY}"),  # (the answer does not echo it)
            ]
            assert cache.info().entries == 4
            on_disk = {p.name: p.read_bytes() for p in _files(path)}  # while open: WAL
        cache.close()
        on_disk.update({f"{p.name} (closed)": p.read_bytes() for p in _files(path)})
    assert [r.cached for r in answers] == [False, True, False, False, False]
    assert all(r.text for r in answers)
    assert f"{path.name}-wal" in on_disk and len(on_disk[f"{path.name}-wal"]) > 0
    assert any(b"a question about keys" in data for data in on_disk.values())  # the right bytes
    for name, data in on_disk.items():
        for secret in (KEY, KEY[14:34]):
            assert secret.encode() not in data, f"the key is in {name}"
    requests = [request for _, request, _ in _rows(path)]
    assert sum("<redacted>" in r for r in requests) == 3


# --- eviction, memory, on and off ---------------------------------------------------------


def test_a_small_cache_keeps_the_most_recently_used_answers(registry, server, tmp_path):
    chat = registry.instance("openai/chat", temperature=0)
    prompts = ["alpha", "bravo", "charlie", "delta"]
    sizes = {}
    with models.cache(memory=True) as probe:  # each entry's size as it is stored
        for prompt in prompts:
            before = probe.info().bytes
            chat(prompt)
            sizes[prompt] = probe.info().bytes - before
    server.reset()
    a, b, c, d = (sizes[p] for p in prompts)
    with models.cache(tmp_path / "c.sqlite3", max_bytes=max(a + b + c, a + c + d)) as cache:
        for prompt in prompts[:3]:
            chat(prompt)
        _age(tmp_path / "c.sqlite3")  # a minute later (a file marks a use only after a while)
        assert chat("alpha").cached  # used: now newer than bravo
        chat("delta")  # four do not fit: the least recently used (bravo) goes
        info = cache.info()
        assert (info.entries, info.bytes, info.evictions, info.stores) == (3, a + c + d, 1, 4)
        assert _sent(server) == 4
        assert [chat(p).cached for p in ("alpha", "charlie", "delta", "bravo")] == [
            True,
            True,
            True,
            False,
        ]
        assert _sent(server) == 5
    cache.close()


def test_memory_cache_answers_and_writes_nothing(registry, server, tmp_path):
    chat = registry.instance("anthropic/chat", temperature=0)
    with models.cache(memory=True) as cache:
        texts = [chat("q").text, chat("q").text]
        assert models.cache_info().path is None and models.cache_info().entries == 1
    assert _sent(server) == 1 and texts[0] == texts[1]
    assert (cache.info().hits, cache.info().active) == (1, False)
    assert list(tmp_path.iterdir()) == []  # no file, not even the default folder
    with models.cache(memory=True):
        assert not chat("q").cached  # a new memory cache starts empty
    assert _sent(server) == 2


def test_cache_and_no_cache_as_statements_and_blocks(registry, server, tmp_path):
    chat = registry.instance("openai/chat", temperature=0)
    outer = models.cache(tmp_path / "outer.sqlite3")
    try:
        chat("q")
        with models.cache(memory=True):
            assert not chat("q").cached  # the inner cache is in use, empty
            assert chat("q").cached
        assert chat("q").cached  # the outer one again
        with models.no_cache():
            assert not chat("q").cached
        assert chat("q").cached
        models.no_cache()
        assert not chat("q").cached
        assert response_cache.active() is None
    finally:
        outer.close()
    assert _sent(server) == 4
    assert (outer.info().hits, outer.info().misses) == (2, 1)
