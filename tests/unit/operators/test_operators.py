"""Each operator on its own: what it computes, what it refuses."""

from __future__ import annotations

import pytest

from ember import models, operators
from ember.operators import (
    Chain,
    Ensemble,
    Judgement,
    JudgeSynthesis,
    MostCommon,
    Operator,
    Router,
    Sequential,
    UniformEnsemble,
    Verdict,
    Verifier,
)
from ember.operators.reasoning import parse_judgement, parse_verdict


class Upper(Operator):
    def forward(self, text):
        return text.upper()


class Exclaim(Operator):
    def forward(self, text):
        return text + "!"


def test_an_operator_is_called_through_forward_and_chains():
    assert Upper()("hi") == "HI"
    chain = Upper() >> Exclaim() >> str.strip
    assert isinstance(chain, Chain) and len(chain.steps) == 3  # flattened
    assert chain(" hi ") == "HI !"
    assert Sequential is Chain
    assert Chain(Upper(), Chain(Exclaim(), Exclaim()))("a") == "A!!"


def test_an_operator_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="Nothing must define forward"):
        type("Nothing", (Operator,), {})()("x")


def test_chain_refuses_bad_steps():
    with pytest.raises(TypeError, match="at least one step"):
        Chain()
    with pytest.raises(TypeError, match="step 1 is not callable"):
        Chain(Upper(), 3)


def test_an_ensemble_answers_in_member_order():
    members = ["simulated/echo", models.instance("simulated/echo")]
    assert Ensemble(members)("q") == ["q", "q"]
    seeded = Ensemble(["simulated/chat"] * 3, seed=10)("q")
    assert seeded == [models("simulated/chat", "q", seed=10 + i).text for i in range(3)]
    warm = UniformEnsemble(2, "simulated/chat", temperature=0.9)
    assert warm("q") == [models("simulated/chat", "q", temperature=0.9).text] * 2
    assert warm.members[0].defaults == {"temperature": 0.9}
    assert repr(warm) == "UniformEnsemble(2 members)"


def test_ensemble_parameters_extend_a_bindings_defaults():
    base = models.instance("simulated/chat", seed=5)
    ensemble = Ensemble([base], temperature=0.1)
    assert ensemble.members[0].defaults == {"seed": 5, "temperature": 0.1}
    assert base.defaults == {"seed": 5}


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Ensemble([]), ValueError, "at least one member"),
        (lambda: Ensemble([3]), TypeError, "model id or a models.instance"),
        (lambda: UniformEnsemble(0, "simulated/chat"), ValueError, "num_units"),
        (lambda: Ensemble(["nowhere/x"]), models.ModelNotFoundError, "nowhere"),
        (lambda: JudgeSynthesis(3), TypeError, "model id or a models.instance"),
    ],
)
def test_bad_configurations_are_refused(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["a", "b", "a"], "a"),
        (["b", "a", "a", "b"], "b"),  # a tie: the first to appear
        (["x"], "x"),
        ([1, 2, 2], 2),
    ],
)
def test_most_common(answers, expected):
    assert MostCommon()(answers) == expected


def test_most_common_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one answer"):
        MostCommon()([])


def test_the_judge_sees_every_candidate_and_answers_with_one():
    judge = JudgeSynthesis("simulated/chat")
    judgement = judge("Why?", ["heat", "light", "heat"])
    assert isinstance(judgement, Judgement)
    assert judgement.final_answer in ("heat", "light") and judgement.reasoning
    sent = []
    remove = models.on_call(lambda event: sent.append(event.response.text))
    try:
        JudgeSynthesis("simulated/echo")("Why?", ["heat", "light", "heat"])
    finally:
        remove()
    assert sent == [
        JudgeSynthesis.PROMPT.format(question="Why?", candidates="- heat\n- light\n- heat")
    ]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Reasoning: most say so.\nFinal answer: heat", Judgement("heat", "most say so.")),
        (
            "reasoning: two lines\nof thought\nFINAL ANSWER:  heat ",
            Judgement("heat", "two lines\nof thought"),
        ),
        ("just heat", Judgement("just heat", "")),
        ("Final answer: a\nFinal answer: b", Judgement("b", "")),
    ],
)
def test_parse_judgement(reply, expected):
    assert parse_judgement(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Verdict: 1\nExplanation: fine\nRevised answer: heat", Verdict(1, "fine", "heat")),
        ("Verdict: 0\nExplanation: wrong\nRevised answer: light", Verdict(0, "wrong", "light")),
        ("Verdict: yes\nExplanation: ok", Verdict(1, "ok", "orig")),
        ("no idea", Verdict(0, "no idea", "orig")),
    ],
)
def test_parse_verdict(reply, expected):
    assert parse_verdict(reply, "orig") == expected


def test_the_verifier_checks_an_answer():
    verdict = Verifier("simulated/chat")("Why is ice slippery?", "pressure")
    assert verdict.verdict in (0, 1) and verdict.revised_answer == "pressure"
    assert verdict.explanation


def test_a_router_picks_a_route_by_function_or_model():
    router = Router(
        {"shout": Upper(), "excite": Exclaim()},
        lambda text: "shout" if text.startswith("!") else " excite ",
    )
    assert router("!hi") == "!HI" and router("hi") == "hi!"
    by_model = Router({"q": Upper()}, models.instance("simulated/echo"))
    assert by_model("q") == "Q"  # a response's text names the route
    fallback = Router({"a": Upper(), "b": Exclaim()}, lambda _: "zzz", default="b")
    assert fallback("x") == "x!"
    with pytest.raises(KeyError, match="not a route"):
        Router({"a": Upper()}, lambda _: "b")("x")


def test_a_router_refuses_bad_configurations():
    with pytest.raises(ValueError, match="at least one route"):
        Router({}, str)
    with pytest.raises(TypeError, match="route 'a' is not callable"):
        Router({"a": 1}, str)
    with pytest.raises(TypeError, match="router is not callable"):
        Router({"a": str}, 1)
    with pytest.raises(ValueError, match="default route 'z'"):
        Router({"a": str}, str, default="z")


def test_the_public_names():
    assert set(operators.__all__) == {
        "Chain",
        "Ensemble",
        "JudgeSynthesis",
        "Judgement",
        "MostCommon",
        "Operator",
        "Router",
        "Sequential",
        "UniformEnsemble",
        "Verdict",
        "Verifier",
    }


def test_judge_and_verifier_keep_their_parameters():
    chat = models.instance("simulated/chat", seed=1)
    assert JudgeSynthesis(chat, temperature=0.0).model.defaults == {"seed": 1, "temperature": 0.0}
    assert Verifier("simulated/chat", temperature=0.5).model.defaults == {"temperature": 0.5}
    assert JudgeSynthesis(chat).model is chat


def test_models_chain_and_a_calls_seed_replaces_the_ensembles():
    echo = models.instance("simulated/echo")
    assert Chain(echo, echo)("hi").text == "hi"  # a response is a prompt (its text)
    seeded = UniformEnsemble(2, "simulated/chat", seed=0)
    assert seeded("q", seed=5) == [models("simulated/chat", "q", seed=s).text for s in (5, 6)]


def test_the_judge_takes_responses_and_refuses_one_string():
    chat = models.instance("simulated/chat")
    judge = JudgeSynthesis("simulated/chat")
    by_text = judge("q", [chat("a").text, chat("b").text])
    assert judge("q", [chat("a"), chat("b")]) == by_text  # responses are candidates too
    with pytest.raises(TypeError, match="list of candidate answers"):
        judge("q", "one answer")
