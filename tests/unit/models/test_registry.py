"""Model ids, bindings, the callable module, usage totals, listeners and pickling."""

from __future__ import annotations

import pickle
import threading

import pytest

from ember import models, xcs
from ember.models import ModelBinding, ModelNotFoundError, Response
from ember.models.providers import OpenAIProvider, Provider, SimulatedProvider
from ember.models.registry import ModelRegistry


@pytest.fixture
def registry() -> ModelRegistry:
    fresh = ModelRegistry()
    fresh.register_provider("simulated", SimulatedProvider)
    fresh.register_provider("openai", OpenAIProvider)
    return fresh


@pytest.fixture(autouse=True)
def _no_usage():
    models.reset_usage()
    yield
    models.reset_usage()


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("simulated/echo", ("simulated", "echo")),
        ("openai/llama3:8b", ("openai", "llama3:8b")),
        ("gpt-4o", ("openai", "gpt-4o")),
        ("o3-mini", ("openai", "o3-mini")),
        ("o1", ("openai", "o1")),
        ("chatgpt-4o-latest", ("openai", "chatgpt-4o-latest")),
    ],
)
def test_model_ids(registry, model_id, expected):
    assert registry.split(model_id) == expected


def test_claude_ids_go_to_anthropic():
    assert models.instance("claude-sonnet-4-5").model_id == "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        ("mistral-large", "names no provider: write 'provider/model'"),
        ("nowhere/x", "no provider named 'nowhere'"),
        ("simulated/", "names no model"),
        ("ollama3", "e.g. 'simulated/ollama3'"),
    ],
)
def test_unknown_ids_say_what_to_write(registry, model_id, message):
    with pytest.raises(ModelNotFoundError, match=message) as info:
        registry.split(model_id)
    assert isinstance(info.value, LookupError)


def test_a_model_id_is_a_string(registry):
    with pytest.raises(TypeError, match="a model id is a string"):
        registry.split(3)


def test_defaults_and_per_call_overrides():
    binding = models.instance("simulated/chat", seed=1)
    assert binding.defaults == {"seed": 1}
    assert binding("q") == models("simulated/chat", "q", seed=1)
    assert binding("q", seed=2) == models("simulated/chat", "q", seed=2)
    assert binding.defaults == {"seed": 1}  # a call's parameters do not stick
    assert repr(binding) == "models.instance('simulated/chat', seed=1)"


def test_list_and_providers():
    assert {"simulated", "openai", "anthropic"} <= set(models.providers())
    listed = models.list()
    assert "simulated/echo" in listed and "openai/gpt-4o" in listed
    assert listed == sorted(listed)


def test_register_provider_checks_its_input(registry):
    with pytest.raises(TypeError, match="Provider subclass or instance"):
        registry.register_provider("x", object)
    with pytest.raises(ValueError, match="no '/'"):
        registry.register_provider("a/b", SimulatedProvider)


def test_a_registered_provider_serves_its_ids(registry):
    class Shouty(Provider):
        name = "shouty"

        def complete(self, model, prompt, **params):
            return Response(str(prompt).upper())

    registry.register_provider("shouty", Shouty)
    assert registry.instance("shouty/any")("hi").text == "HI"
    assert registry.instance("shouty/any")("hi").model_id == "shouty/any"
    assert "shouty" in registry.providers()


def test_an_instance_provider_is_used_as_is(registry):
    provider = SimulatedProvider(max_concurrency=2)
    registry.register_provider("limited", provider)
    binding = registry.instance("limited/chat")
    assert binding.provider is provider
    assert binding.__xcs_op__.max_concurrency == 2
    with pytest.raises(ValueError, match="register another name"):
        registry.instance("limited/chat", base_url="http://elsewhere/v1")


def test_models_of_one_provider_share_its_limit(registry):
    registry.register_provider("limited", SimulatedProvider(max_concurrency=3))
    a, b = registry.instance("limited/a"), registry.instance("limited/b")
    assert a.__xcs_op__ is not b.__xcs_op__
    assert a.__xcs_op__.shares_limit_with is b.__xcs_op__.shares_limit_with
    assert registry.instance("limited/a").__xcs_op__ is a.__xcs_op__  # one spec per model


def test_usage_totals_and_prices():
    first = models("simulated/priced", "abcdefgh")
    models.set_price("simulated/priced", prompt=1_000_000, completion=2_000_000)
    priced = models("simulated/priced", "abcd")
    tokens = priced.usage
    assert tokens["cost"] == tokens["prompt_tokens"] + 2 * tokens["completion_tokens"]
    assert first.usage["cost"] == 0.0  # priced after it ran
    assert models.usage("simulated/priced") == {
        "calls": 2,
        "prompt_tokens": first.usage["prompt_tokens"] + tokens["prompt_tokens"],
        "completion_tokens": first.usage["completion_tokens"] + tokens["completion_tokens"],
        "total_tokens": first.usage["total_tokens"] + tokens["total_tokens"],
        "cost": tokens["cost"],
        "cached_calls": 0,
    }
    assert models.usage()["calls"] == 2
    assert list(models.usage_by_model()) == ["simulated/priced"]
    models.reset_usage()
    assert models.usage()["calls"] == 0
    with pytest.raises(ValueError):
        models.set_price("simulated/priced", prompt=-1, completion=0)


def test_failed_calls_are_not_counted_but_are_heard():
    events = []
    remove = models.on_call(events.append)
    try:
        models("simulated/chat", "ok")
        with pytest.raises(models.ProviderError):
            models("simulated/chat", "bad", failure_rate=1.0)
    finally:
        remove()
    models("simulated/chat", "after removal")
    calls = [e for e in events if e.kind == "call"]
    assert [e.error is None for e in calls] == [True, False]
    assert isinstance(calls[1].error, models.ProviderError) and calls[1].response is None
    assert (calls[0].attempt, calls[1].attempt, calls[1].status) == (1, 5, 500)
    # the four failed attempts before the last were heard as retries, before the call
    retries = [e for e in events if e.kind == "retry"]
    assert [e.attempt for e in retries] == [1, 2, 3, 4] and events[-1] is calls[1]
    assert all(e.status == 500 and e.response is None and e.backoff >= 0 for e in retries)
    assert models.usage()["calls"] == 2  # "ok" and "after removal"
    with pytest.raises(TypeError):
        models.on_call(3)


def test_usage_inside_jit_waits_for_pending_calls(tmp_path):
    chat = models.instance("simulated/chat", latency=0.05)

    def run():
        for i in range(4):
            chat(f"q{i}")
        return models.usage()["calls"]

    assert xcs.jit(run)() == 4 == run() - 4


def test_every_call_is_an_op_even_through_the_module():
    def run():
        first = models("simulated/chat", "a", latency=0.05)
        second = models.instance("simulated/judge")("b", latency=0.05)
        return first.text, second.text

    trace = xcs.trace(run)
    names = [data["name"] for _, data in trace.graph.nodes(data=True) if data["kind"] == "op"]
    assert names == ["simulated/chat", "simulated/judge"]
    assert len(trace.parallel_groups[0]) == 2
    assert trace.result == run()


def test_a_bad_id_under_jit_raises_the_same_error_and_leaves_nothing_deferred():
    def run():
        try:
            models("nowhere/x", "a")
        except ModelNotFoundError:
            pass
        return [models.instance("simulated/chat")(p) for p in "ab"]

    assert xcs.jit(run)() == run()


def test_bindings_and_errors_pickle():
    binding = models.instance("simulated/chat", seed=3)
    copy = pickle.loads(pickle.dumps(binding))
    assert isinstance(copy, ModelBinding) and copy("q") == binding("q")
    for error in (
        models.MissingAPIKeyError("openai", "OPENAI_API_KEY"),
        models.ProviderError("openai/x", 500, "boom", 3),
        models.RateLimitError("openai/x", 429, "slow", 5),
        models.SecretParameterError("openai/x", "api_key", "OPENAI_API_KEY"),
    ):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)


def test_bindings_are_safe_from_many_threads():
    chat = models.instance("simulated/chat")
    results: list[str] = []
    lock = threading.Lock()

    def work(i):
        text = chat(f"q{i % 5}").text
        with lock:
            results.append(text)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(chat(f"q{i % 5}").text for i in range(40))
    assert models.usage()["calls"] == 80


def test_a_call_failing_before_it_is_recorded_leaves_no_deferral_behind(tmp_path, monkeypatch):
    # Regression: models(p) (the prompt missing) raised before call_op took the flag
    # the dispatcher set, so the next op called by library code deferred by mistake.
    import importlib
    import sys

    from ember.xcs._internal import tracer, usercode

    helper = tmp_path / "fake_library.py"
    helper.write_text(
        "def safe_text(model, prompt):\n"
        "    try:\n"
        "        return model(prompt).text\n"
        "    except Exception as error:\n"
        "        return 'fallback: ' + type(error).__name__\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    library = importlib.import_module("fake_library")
    monkeypatch.setitem(usercode._user_files, library.__file__, False)  # not rewritten
    monkeypatch.setitem(sys.modules, "fake_library", library)
    broken = models.instance("simulated/chat", failure_rate=1.0)

    def slip_then_library(p):
        try:
            models(p)  # a TypeError: the prompt is missing
        except TypeError:
            pass
        return library.safe_text(broken, p)

    assert slip_then_library("q") == "fallback: ProviderError"
    assert xcs.jit(slip_then_library)("q") == "fallback: ProviderError"
    assert tracer._context.deferral is False


def test_a_replaced_provider_gets_its_own_limit(registry):
    for size in (2, 3, 2, 3):  # replaced providers are freed; their ids get reused
        registry.register_provider("limited", SimulatedProvider(max_concurrency=size))
        spec = registry.instance("limited/chat").__xcs_op__
        assert spec.max_concurrency == size == spec.shares_limit_with.max_concurrency


def test_bare_ids_follow_a_replaced_provider(registry):
    class Other(OpenAIProvider):
        pass

    first = registry.binding("gpt-4o")
    registry.register_provider("openai", Other)
    assert type(registry.binding("gpt-4o").provider) is Other
    assert registry.binding("gpt-4o") is not first


@pytest.fixture
def keyed_local():
    """A provider registered as an instance with its own endpoint and key variable."""
    from ember.models.registry import default_registry

    provider = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key_env="LOCAL_TEST_KEY")
    models.register_provider("keyed-local", provider)
    yield provider
    with default_registry._lock:  # unregister: no public API (none is needed by users)
        del default_registry._kinds["keyed-local"]
        for key in [k for k in default_registry._providers if k[0] == "keyed-local"]:
            del default_registry._providers[key]


def test_an_instance_provider_with_its_own_key_variable_binds_and_pickles(keyed_local):
    chat = models.instance("keyed-local/llama3", temperature=0.2)
    assert chat.provider is keyed_local
    again = pickle.loads(pickle.dumps(chat))
    assert again.provider is keyed_local and again.defaults == {"temperature": 0.2}
    with pytest.raises(ValueError, match="api_key_env='OTHER'"):
        models.instance("keyed-local/llama3", api_key_env="OTHER")


def test_operators_add_parameters_to_a_binding_without_rebuilding_it(keyed_local, registry):
    from ember import operators

    chat = models.instance("keyed-local/llama3")
    ensemble = operators.UniformEnsemble(3, chat, temperature=0.7)
    member = ensemble.members[0]
    assert member.provider is keyed_local and member.defaults["temperature"] == 0.7
    own = registry.instance("simulated/chat", latency=0.0)  # a registry of its own
    judged = operators.JudgeSynthesis(own, temperature=0.1)
    assert judged.model._registry is registry and judged.model.defaults["temperature"] == 0.1


def test_listeners_added_and_removed_inside_jit_hear_what_plain_python_makes():
    def count_calls(questions):
        seen = []
        remove = models.on_call(lambda event: seen.append(event.model_id))
        answers = [models("simulated/chat", q).text for q in questions]
        remove()
        late = models("simulated/chat", "after")  # made after removal: not heard
        return answers, len(seen), late.text

    assert xcs.jit(count_calls)(["a", "b", "c"]) == count_calls(["a", "b", "c"])
    assert count_calls(["a"])[1] == 1


def test_a_price_set_inside_jit_does_not_price_calls_made_before_it():
    def priced(model_id):
        before = models(model_id, "hello")
        models.set_price(model_id, prompt=1.0, completion=1.0)
        return before.usage["cost"], models(model_id, "hello").usage["cost"] > 0

    assert priced("simulated/price-plain") == xcs.jit(priced)("simulated/price-jit") == (0.0, True)


def test_responses_format_hash_and_count_like_their_text():
    from ember import operators

    chat = models.instance("simulated/chat")
    a, b = chat("q"), chat("q")
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert f"{a:>40}" == f"{a.text:>40}"
    assert operators.MostCommon()([a, chat("other"), b]) == a


def test_the_cost_total_does_not_depend_on_the_order_calls_finish(registry):
    from ember.models.response import make_usage

    costs = [0.1, 0.2, 0.3]  # 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1 in floats, added in order
    # (not with sum(): since Python 3.12 it compensates, and both orders give 0.6)
    assert (costs[0] + costs[1]) + costs[2] != (costs[2] + costs[1]) + costs[0]
    totals = []
    for order in (costs, costs[::-1]):
        registry.reset_usage()
        for cost in order:
            registry.finished("simulated/x", Response("a", make_usage(1, 1, cost)), None, 0.0)
        totals.append(registry.usage()["cost"])
    assert totals[0] == totals[1] == 0.6 and type(totals[0]) is float
    assert type(registry.usage_by_model()["simulated/x"]["cost"]) is float


def test_the_cost_total_of_jitted_calls_is_plain_pythons():
    models.set_price("simulated/order", prompt=0.1, completion=0.7)
    chat = models.instance("simulated/order")

    def run():  # later calls finish first under jit
        return [chat(f"question {i} " * (i % 13 + 1), latency=(40 - i) * 0.002) for i in range(40)]

    totals = []
    for fn in (run, xcs.jit(run)):
        models.reset_usage()
        fn()
        totals.append(models.usage()["cost"])
    assert totals[0] > 0 and totals[0] == totals[1]
