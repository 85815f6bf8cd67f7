"""The response cache with the simulated provider: keys, the reproducible rule, counts,
switching on and off, arguments, errors, and identical calls in flight at once.

Every test here uses a file under ``tmp_path`` (or memory) and runs with
``EMBER_CACHE_DIR`` pointing into ``tmp_path``: the user's real cache is never touched.
The HTTP side (what the server sees) is in ``tests/integration/models``.
"""

from __future__ import annotations

import pathlib
import pickle
import sqlite3
import threading
from typing import Any

import pydantic
import pytest

from ember import models
from ember.models import CacheError, CacheInfo, Response, response_cache
from ember.models.cache_store import FORMAT, SQLiteStore, default_path
from ember.models.providers import OpenAIProvider, SimulatedProvider
from ember.models.registry import ModelRegistry
from ember.models.response_cache import reproducible, request_key

pytestmark = pytest.mark.usefixtures("no_response_cache")


@pytest.fixture
def registry() -> ModelRegistry:
    fresh = ModelRegistry()
    fresh.register_provider("simulated", SimulatedProvider)
    return fresh


SIM = SimulatedProvider()
SIM_AT = SimulatedProvider(base_url="http://127.0.0.1:1/v1")
OPENAI = OpenAIProvider(base_url="http://127.0.0.1:1/v1")


def _key(
    prompt: Any,
    params: dict[str, Any] | None = None,
    provider: Any = SIM,
    model_id: str = "simulated/chat",
) -> str:
    keyed = request_key(provider, model_id, prompt, params or {})
    assert keyed is not None
    return keyed[0]


# --- keys ---------------------------------------------------------------------------


def test_a_key_is_the_same_for_the_same_request_written_differently():
    params = {"temperature": 0, "max_tokens": 5, "metadata": {"a": 1, "b": [1, 2]}}
    reordered = {"metadata": {"b": [1, 2], "a": 1}, "max_tokens": 5, "temperature": 0}
    assert _key("hi", params) == _key("hi", reordered)
    assert _key("hi", {"stop": ("a", "b")}) == _key("hi", {"stop": ["a", "b"]})
    message = [{"role": "user", "content": "hi"}]
    assert _key(message) == _key([{"content": "hi", "role": "user"}])
    assert _key(message) == _key(({"role": "user", "content": "hi"},))  # a tuple of messages
    # A response as the prompt is its text: the chained call is the same request.
    assert _key(Response("hi", {"prompt_tokens": 1}, "simulated/x")) == _key("hi")


@pytest.mark.parametrize(
    ("changed", "kwargs"),
    [
        ("prompt text", {"prompt": "hi!"}),
        ("prompt as messages", {"prompt": [{"role": "user", "content": "hi"}]}),
        ("a parameter", {"params": {"temperature": 0, "max_tokens": 6}}),
        ("a parameter's value type", {"params": {"temperature": 0.0, "max_tokens": 5.0}}),
        ("one more parameter", {"params": {"temperature": 0, "max_tokens": 5, "top_p": 1}}),
        ("the model", {"model_id": "simulated/judge"}),
        ("the endpoint", {"provider": SIM_AT}),
        ("the provider class", {"provider": OPENAI}),
    ],
)
def test_a_key_changes_with_anything_that_decides_the_answer(changed, kwargs):
    base = {"prompt": "hi", "params": {"temperature": 0, "max_tokens": 5}}
    assert _key(**{**base, **kwargs}) != _key(**base), changed


def test_a_key_is_a_sha256_and_the_stored_text_shows_the_whole_request():
    keyed = request_key(SIM_AT, "simulated/chat", "hi", {"temperature": 0})
    assert keyed is not None
    digest, text = keyed
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert text == (
        f'{{"endpoint":"http://127.0.0.1:1/v1","format":{FORMAT},"model":"simulated/chat",'
        '"params":{"temperature":0},"prompt":"hi",'
        '"provider":"ember.models.providers.simulated.SimulatedProvider"}'
    )


class Answer(pydantic.BaseModel):
    text: str


@pytest.mark.parametrize(
    "params",
    [
        {"response_format": Answer},  # a class: no JSON value
        {"temperature": float("nan")},
        {"temperature": float("inf")},
        {"metadata": {"when": object()}},
        {"metadata": {1: "a", "1": "b"}},  # two keys that read the same in JSON
    ],
    ids=["class", "nan", "inf", "object", "clashing-keys"],
)
def test_a_call_whose_parameters_are_not_plain_json_gets_no_key(params):
    assert request_key(SIM, "simulated/chat", "hi", params) is None


def test_secrets_in_parameters_are_redacted_in_the_stored_text():
    secret = "sk-proj-Zq8Wm2Lx5Tv9Rb3Nc7Kd1Fg4"
    params = {"extra_headers": {"Authorization": f"Bearer {secret}", "X-Trace": "t1"}}
    keyed = request_key(OPENAI, "openai/chat", "hi", params)
    assert keyed is not None
    digest, text = keyed
    assert secret not in text and '"X-Trace":"t1"' in text and "<redacted>" in text
    # The key still tells two secrets apart (an answer may depend on who asks).
    other = {"extra_headers": {"Authorization": "Bearer sk-proj-Other0000000000000000"}}
    assert _key("hi", other, OPENAI, "openai/chat") != digest


def test_a_secret_named_value_of_any_shape_is_redacted():
    params = {"extra_body": {"credentials": {"user": "ada", "pin": "4711-lovelace"}}}
    keyed = request_key(OPENAI, "openai/chat", "hi", params)
    assert keyed is not None
    assert "4711-lovelace" not in keyed[1] and '"credentials":<redacted>}' in keyed[1]


def test_a_key_shaped_value_under_an_innocent_name_is_redacted_too():
    secret = "sk-ant-api03-Hk2Jd8Lq4Wz7Xc1Vb5Nm9Pr3Ts6Yf0Ga"
    keyed = request_key(OPENAI, "openai/chat", "hi", {"extra_headers": {"X-Custom": secret}})
    assert keyed is not None and secret not in keyed[1]


def test_a_password_in_the_endpoint_is_not_in_the_stored_text():
    provider = OpenAIProvider(base_url="http://me:hunter2hunter2@127.0.0.1:1/v1")
    keyed = request_key(provider, "openai/chat", "hi", {})
    assert keyed is not None
    assert "hunter2" not in keyed[1] and "http://me:***@127.0.0.1:1/v1" in keyed[1]
    # ... and the key still tells endpoints with other passwords apart
    other = OpenAIProvider(base_url="http://me:other@127.0.0.1:1/v1")
    assert _key("hi", {}, other, "openai/chat") != keyed[0]


@pytest.mark.parametrize("prompt", [123, ["a", "b"], None])
def test_a_prompt_that_is_no_prompt_raises_the_same_error_with_the_cache_on(prompt, tmp_path):
    chat = models.instance("simulated/chat")
    with pytest.raises(TypeError) as plain:
        chat(prompt)
    with models.cache(tmp_path / "c.sqlite3") as cache, pytest.raises(TypeError) as cached:
        chat(prompt)
    assert str(cached.value) == str(plain.value)
    assert "a prompt is a string" in str(plain.value)
    assert cache.info().stores == 0


# --- the reproducible rule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "params", "expected"),
    [
        (OPENAI, {}, False),
        (OPENAI, {"temperature": 0.7}, False),
        (OPENAI, {"temperature": 0}, True),
        (OPENAI, {"temperature": 0.0}, True),
        (OPENAI, {"temperature": 1e-9}, False),
        (OPENAI, {"temperature": False}, False),  # a bool is not a temperature
        (OPENAI, {"temperature": "0"}, False),
        (OPENAI, {"temperature": None}, False),
        (OPENAI, {"seed": 0}, True),
        (OPENAI, {"seed": 7, "temperature": 1.3}, True),
        (OPENAI, {"seed": None}, False),
        (SIM, {}, True),  # answers are a function of the request
        (SIM, {"temperature": 0.9}, True),
    ],
)
def test_reproducible(provider, params, expected):
    assert reproducible(provider, params) is expected


# --- what calls do, and the counts ------------------------------------------------------


def test_a_second_identical_call_is_a_hit_with_the_same_answer(registry, tmp_path):
    chat = registry.instance("simulated/chat", temperature=0.7)  # simulated: deterministic
    path = tmp_path / "c.sqlite3"
    with models.cache(path) as cache:
        first = chat("Why is the sky blue?")
        second = chat("Why is the sky blue?")
        info = cache.info()
    assert second.text == first.text and second.model_id == first.model_id == "simulated/chat"
    assert (first.cached, first.usage["cached"], first.attempts) == (False, False, 1)
    assert (second.cached, second.usage["cached"], second.attempts) == (True, True, 0)
    assert second.usage["cost"] == 0.0
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert second.usage[name] == first.usage[name]
    assert info == CacheInfo(
        path=str(path),
        active=True,
        entries=1,
        bytes=info.bytes,
        max_bytes=1 << 30,
        always=False,
        hits=1,
        misses=1,
        skipped=0,
        stores=1,
    )
    assert 100 < info.bytes < 2000
    usage = registry.usage()
    assert (usage["calls"], usage["cached_calls"]) == (1, 1)
    assert usage["total_tokens"] == first.usage["total_tokens"]  # the hit used none
    assert not cache.info().active  # off after the block


class _PricedProvider(SimulatedProvider):
    """A provider of the user's own that prices its answers itself."""

    def complete(self, model: str, prompt: Any, **params: Any) -> Response:
        answer = super().complete(model, prompt, **params)
        return Response(answer.text, {**answer.usage, "cost": 0.25}, answer.model_id)


def test_a_hit_costs_nothing_even_when_the_provider_priced_the_answer(tmp_path):
    registry = ModelRegistry()
    registry.register_provider("priced", _PricedProvider)
    chat = registry.instance("priced/chat")
    with models.cache(tmp_path / "c.sqlite3"):
        paid, free = chat("q"), chat("q")
    assert (paid.usage["cost"], free.usage["cost"]) == (0.25, 0.0)
    assert registry.usage()["cost"] == 0.25 and registry.usage()["cached_calls"] == 1


def test_counts_of_skipped_calls_and_of_every_kind(tmp_path):
    registry = ModelRegistry()
    registry.register_provider("simulated", SimulatedProvider)
    chat = registry.instance("simulated/chat")
    with models.cache(tmp_path / "c.sqlite3") as cache:
        chat("a")
        chat("a")
        chat("b")
        chat("a", response_format=Answer)  # not JSON: not looked up
        chat("a", metadata={"x": float("nan")})
        info = cache.info()
    assert (info.hits, info.misses, info.skipped, info.stores, info.entries) == (1, 2, 2, 2, 2)
    assert (info.evictions, info.errors) == (0, 0)


def test_a_call_decides_to_use_the_cache_where_it_is_made(registry, tmp_path):
    chat = registry.instance("simulated/chat")
    cache = models.cache(memory=True)
    try:
        chat("q")
        with models.no_cache():
            off = chat("q")  # not looked up, not counted
        on = chat("q")
    finally:
        cache.close()
    assert (off.cached, on.cached) == (False, True)
    assert cache.info().hits == 1 and cache.info().misses == 1
    assert models.cache_info().active is False  # (the default file, nothing on)


# --- on and off -----------------------------------------------------------------------


def test_cache_as_a_statement_stays_on_until_no_cache(tmp_path):
    cache = models.cache(tmp_path / "c.sqlite3")
    assert response_cache.active() is cache and models.cache_info().active
    assert repr(cache).endswith(", on>") and str(tmp_path) in repr(cache)
    models.no_cache()
    assert response_cache.active() is None
    assert not cache.info().active and ", on>" not in repr(cache)
    cache.store.close()


def test_with_blocks_nest_and_each_restores_what_was_on(tmp_path):
    outer = models.cache(tmp_path / "outer.sqlite3")
    try:
        with models.cache(memory=True) as inner:
            assert response_cache.active() is inner
            with models.no_cache():
                assert response_cache.active() is None
                with models.cache(tmp_path / "third.sqlite3", always=True) as third:
                    assert response_cache.active() is third and third.info().always
                assert response_cache.active() is None
            assert response_cache.active() is inner
        assert response_cache.active() is outer
        with pytest.raises(RuntimeError), models.cache(memory=True):  # restored on errors too
            raise RuntimeError("boom")
        assert response_cache.active() is outer
    finally:
        outer.close()
    assert response_cache.active() is None


def test_close_turns_the_cache_off(tmp_path):
    cache = models.cache(tmp_path / "c.sqlite3")
    cache.close()
    assert response_cache.active() is None


# --- arguments, paths and errors ------------------------------------------------------


@pytest.mark.parametrize("max_bytes", [0, -1, True, 1.5, "1"])
def test_max_bytes_must_be_a_positive_int(max_bytes, tmp_path):
    with pytest.raises(ValueError, match="max_bytes"):
        models.cache(tmp_path / "c.sqlite3", max_bytes=max_bytes)
    assert response_cache.active() is None
    assert not (tmp_path / "c.sqlite3").exists()


def test_a_path_with_memory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="memory=True"):
        models.cache(tmp_path / "c.sqlite3", memory=True)
    assert response_cache.active() is None and not (tmp_path / "c.sqlite3").exists()


def test_memory_cache_has_no_path(tmp_path):
    with models.cache(memory=True, max_bytes=10_000) as cache:
        models.instance("simulated/chat")("x")
        info = models.cache_info()
    assert info.path is None and info.entries == 1 and info.max_bytes == 10_000
    assert "in memory" in repr(cache)
    assert list(tmp_path.iterdir()) == []  # not even the default folder


def test_the_default_path_honours_ember_cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "elsewhere"
    monkeypatch.setenv("EMBER_CACHE_DIR", str(folder))
    assert default_path() == folder / "responses.sqlite3"
    with models.cache() as cache:
        models.instance("simulated/chat")("x")
    assert cache.path == str(folder / "responses.sqlite3")
    assert (folder / "responses.sqlite3").is_file()
    assert models.cache_info().entries == 1  # no cache on: the default file


def test_the_default_path_without_ember_cache_dir_is_the_user_cache_dir(monkeypatch):
    import platformdirs

    monkeypatch.delenv("EMBER_CACHE_DIR")
    expected = pathlib.Path(platformdirs.user_cache_dir("ember", appauthor=False))
    assert default_path() == expected / "responses.sqlite3"  # only computed, never opened


def test_info_and_clear_of_a_file_when_no_cache_is_on(tmp_path):
    path = tmp_path / "c.sqlite3"
    with models.cache(path):
        chat = models.instance("simulated/chat")
        chat("a")
        chat("b")
    info = models.cache_info(path)
    assert (info.path, info.active, info.entries, info.hits, info.misses) == (
        str(path),
        False,
        2,
        0,  # counts are of this process's cache object: a fresh one here
        0,
    )
    assert info.bytes > 0
    models.cache_clear(path)
    assert models.cache_info(path).entries == 0 and models.cache_info(path).bytes == 0
    assert response_cache.active() is None


def test_info_and_clear_of_a_missing_file_make_no_file(tmp_path):
    path = tmp_path / "folder" / "none.sqlite3"
    info = models.cache_info(path)
    assert (info.path, info.active, info.entries, info.bytes) == (str(path), False, 0, 0)
    models.cache_clear(path)
    assert not (tmp_path / "folder").exists()


def test_info_of_the_file_in_use_is_the_cache_in_use(tmp_path):
    path = tmp_path / "c.sqlite3"
    with models.cache(path) as cache:
        models.instance("simulated/chat")("a")
        models.instance("simulated/chat")("a")
        assert models.cache_info(path) == cache.info()
        assert models.cache_info(path).active and models.cache_info(path).hits == 1
        models.cache_clear(path)
        assert cache.info().entries == 0


def test_cache_clear_clears_the_cache_that_is_on(tmp_path):
    with models.cache(tmp_path / "c.sqlite3") as cache:
        models.instance("simulated/chat")("a")
        assert cache.info().entries == 1
        models.cache_clear()
        assert models.cache_info().entries == 0
        assert not models.instance("simulated/chat")("a").cached


def test_cache_error_pickles_with_its_message_and_path(tmp_path):
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"not a database at all " * 100)
    with pytest.raises(CacheError) as info:
        models.cache(path)
    error = info.value
    assert isinstance(error, models.ModelError) and error.path == str(path)
    assert str(path) in str(error) and "cannot be used" in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is CacheError
    assert (str(again), again.path) == (str(error), error.path)
    assert response_cache.active() is None


def test_a_file_of_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "c.sqlite3"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE ember_cache SET value = ? WHERE name = 'format'", ("99",))
    connection.close()
    with pytest.raises(CacheError, match="format 99"):
        models.cache(path)
    assert response_cache.active() is None


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "theirs.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
        connection.execute("INSERT INTO people VALUES ('ada')")
    connection.close()
    with pytest.raises(CacheError, match="another program .*people"):
        models.cache(path)
    with sqlite3.connect(path) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        rows = connection.execute("SELECT name FROM people").fetchall()
    connection.close()
    assert tables == {"people"} and rows == [("ada",)]


def test_an_unwritable_place_is_a_cache_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CacheError) as info:
        models.cache(blocker / "sub" / "c.sqlite3")
    assert str(blocker) in str(info.value)


# --- eviction -------------------------------------------------------------------------


def _age(path: pathlib.Path, seconds: float = 60.0) -> None:
    """Make every answer in the file look stored and used ``seconds`` earlier."""
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE responses SET used = used - ?, created = created - ?", (seconds, seconds)
        )
    connection.close()


@pytest.mark.parametrize("memory", [False, True], ids=["sqlite", "memory"])
def test_eviction_keeps_the_most_recently_used(memory, tmp_path):
    chat = models.instance("simulated/chat")
    prompts = ["alpha", "bravo", "charlie", "delta"]
    sizes = {}
    with models.cache(memory=True) as probe:  # each entry's size, as stored
        for prompt in prompts:
            before = probe.info().bytes
            chat(prompt)
            sizes[prompt] = probe.info().bytes - before
    a, b, c, d = (sizes[p] for p in prompts)
    limit = max(a + b + c, a + c + d)  # three fit; after "delta", "bravo" has to go
    where: dict[str, Any] = {"memory": True} if memory else {"path": tmp_path / "c.sqlite3"}
    with models.cache(**where, max_bytes=limit) as cache:
        for prompt in prompts[:3]:
            chat(prompt)
        if not memory:
            _age(tmp_path / "c.sqlite3")  # (a file marks a use only after a while)
        assert chat("alpha").cached  # alpha is now more recent than bravo
        chat("delta")
        info = cache.info()
        assert (info.entries, info.bytes, info.evictions, info.stores) == (3, a + c + d, 1, 4)
        assert [chat(p).cached for p in ("alpha", "charlie", "delta")] == [True] * 3
        assert not chat("bravo").cached  # evicted, asked again


# --- identical calls in flight at once ------------------------------------------------


def test_identical_calls_in_flight_at_once_share_one_request(registry, tmp_path):
    chat = registry.instance("simulated/chat", latency=0.3)
    events = []
    registry.on_call(events.append)
    results: list[Response] = []
    with models.cache(tmp_path / "c.sqlite3") as cache:
        threads = [threading.Thread(target=lambda: results.append(chat("same"))) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        info = cache.info()
    assert len({r.text for r in results}) == 1
    assert sorted(r.cached for r in results) == [False] + [True] * 5
    assert (info.misses, info.hits, info.stores) == (1, 5, 1)
    assert sorted((e.cached, e.attempt) for e in events) == [(False, 1)] + [(True, 0)] * 5
    assert registry.usage()["calls"] == 1 and registry.usage()["cached_calls"] == 5


class _PausedRead(SQLiteStore):
    """The real store; a read made on the thread named ``slow`` returns only once ``go`` is set."""

    read = threading.Event()
    go = threading.Event()

    def get(self, key: str) -> tuple[str, str] | None:
        found = super().get(key)
        if threading.current_thread().name == "slow":
            self.read.set()
            self.go.wait(10)
        return found


def test_an_identical_call_during_a_slow_lookup_sends_no_second_request(registry, tmp_path):
    """A call whose lookup is slow (held, as a busy thread may be) still owns the key.

    An identical call made meanwhile waits for that lookup and its request, instead of
    looking up and sending on its own: one request, one miss, one hit.
    """
    chat = registry.instance("simulated/chat")
    with models.cache(tmp_path / "c.sqlite3") as cache:
        cache.store.close()
        cache.store = _PausedRead(tmp_path / "c.sqlite3")
        _PausedRead.read.clear()
        _PausedRead.go.clear()
        slow: list[Response] = []
        thread = threading.Thread(target=lambda: slow.append(chat("q")), name="slow")
        thread.start()
        assert _PausedRead.read.wait(10)  # the slow call is looking up
        other: list[Response] = []
        second = threading.Thread(target=lambda: other.append(chat("q")), name="other")
        second.start()
        second.join(0.2)
        assert second.is_alive()  # waiting for the slow call, not sending its own request
        _PausedRead.go.set()
        thread.join(10)
        second.join(10)
        info = cache.info()
    assert slow and other and slow[0].text == other[0].text
    assert (slow[0].cached, other[0].cached) == (False, True)
    assert (info.misses, info.hits, info.stores) == (1, 1, 1)
    assert registry.usage()["calls"] == 1
