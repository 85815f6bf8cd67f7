"""The work done on each answer right after its call stays lazy (DESIGN.md §4).

Programs in the shape real LLM code has -- a loop that calls the model and at once
parses, checks, looks up or formats the answer -- must be exact (the differential
check) and reach the ideal structure: every call of the loop in one parallel group.
"""

from __future__ import annotations

import ast
import json
import re
import string
import textwrap
import time
from typing import Any

import pytest

from ember import xcs
from tests.helpers import LOG, OpError, assert_same_as_plain, logged, run_logged, waves

broken_op = logged()

QUESTIONS = ["alpha", "beta", "gamma", "delta"]


@logged()
def ask(question: str) -> str:
    """A model: a number, a verdict and some JSON, in a reply with blanks around it."""
    n = len(question)
    verdict = "YES" if n % 2 else "no"
    return f"  {n}  " if question.startswith("#") else f' {{"score": {n}, "verdict": "{verdict}"}} '


@logged()
def ask_number(question: str) -> str:
    return f" {len(question)}\n"


@logged()
def ask_pair(question: str) -> tuple[str, int]:
    return question.upper(), len(question)


@xcs.pure
def parse_score(reply: str) -> int:
    """A helper of the user's own, declared pure."""
    return int(json.loads(reply)["score"])


SCORE = re.compile(r'"score": (\d+)')
TEMPLATE = string.Template("Rate $answer")


def parse_each_number(qs: list[str]) -> Any:
    return [int(ask_number(q).strip()) for q in qs]


def parse_each_number_in_a_loop(qs: list[str]) -> Any:
    scores = []
    for q in qs:
        reply = ask_number(q)
        scores.append(float(str(reply)))
    return sum(scores), scores


def load_each_json(qs: list[str]) -> Any:
    out = {}
    for q in qs:
        data = json.loads(ask(q))
        out[q] = data["score"] * 2
    return out


def search_each_reply(qs: list[str]) -> Any:
    found = []
    for q in qs:
        m = re.search(r'"verdict": "(\w+)"', ask(q))
        found.append(m.group(1))
    return found


def methods_of_what_re_finds(qs: list[str]) -> Any:
    found = [re.search(r'"verdict": "(\w+)"', ask(q)).group(1).strip().lower() for q in qs]
    first = [re.findall(r"\d+", ask(q))[0].zfill(3) for q in qs]
    return found, first, [SCORE.search(ask(q))[1].upper() for q in qs]


def compiled_pattern_and_sub(qs: list[str]) -> Any:
    out = []
    for q in qs:
        reply = ask(q)
        out.append((SCORE.search(reply).group(1), re.sub(r"\s+", " ", reply), SCORE.split(reply)))
    return out


def membership_in_each_reply(qs: list[str]) -> Any:
    yes = ["yes" in ask(q).lower() for q in qs]
    no = [ask(q) not in ("x", "y") for q in qs]
    valid = {" 5\n", " 4\n"}
    known = [ask_number(q) in valid for q in qs]
    return yes, no, known


def lookup_by_reply(qs: list[str]) -> Any:
    table = {" 5\n": "five", " 4\n": "four"}
    names = [table[ask_number(q)] for q in qs]
    return names, [["zero", "one"][len(ask_number(q).strip()) - 1] for q in qs]


def literal_eval_and_str_methods(qs: list[str]) -> Any:
    out = []
    for q in qs:
        reply = ask_number(q)
        out.append((ast.literal_eval(str.strip(reply)), str.upper(reply), len(reply)))
    return out


def text_helpers(qs: list[str]) -> Any:
    out = []
    for q in qs:
        reply = ask(q)
        prompt = "Judge: {answer} ({q})".format_map({"answer": reply, "q": q})
        out.append(
            (
                textwrap.shorten(reply, 20),
                textwrap.indent(textwrap.dedent(reply), "> "),
                TEMPLATE.substitute(answer=reply),
                "[{}]".replace("{}", reply),
                prompt,
            )
        )
    return out


def own_pure_helper(qs: list[str]) -> Any:
    return [parse_score(ask(q)) + 1 for q in qs]


def truth_as_a_value(qs: list[str]) -> Any:
    return [bool(ask(q).strip()) for q in qs], [repr(ask(q)) for q in qs]


def structure_questions(qs: list[str]) -> Any:
    answers = [ask(q) for q in qs]
    if type(answers) is str or answers is None or not isinstance(answers, list):
        raise TypeError("answers must be a list")  # the check JudgeSynthesis makes
    assert len(answers) == len(qs) and answers and callable(answers.append)
    by_id = {id(answers): "answers"}
    more = [ask(q + "?") for q in qs]  # recorded before anything waits
    return answers, more, by_id[id(answers)], answers is not more


def callback_runs_now(qs: list[str]) -> Any:
    # A function as the replacement: library code calling yours -- it runs now.
    return [re.sub(r"\d", lambda m: m.group(0) * 2, ask(q)) for q in qs]


def a_parse_that_fails(qs: list[str]) -> Any:
    return [int(ask(q)) for q in qs]  # the JSON reply is not a number: ValueError


def a_lookup_that_fails(qs: list[str]) -> Any:
    table = {" 5\n": "five"}
    return [table[ask_number(q)] for q in qs]  # "beta" has 4 letters: KeyError


@logged()
def ask_many(question: str, n: int) -> list[str]:
    return [question] * n


def unpack_each_pair(qs: list[str]) -> Any:
    out = []
    for q in qs:
        answer, n = ask_pair(q)
        out.append(f"{answer}:{n}")
    return out


def loop_over_pending_pairs(qs: list[str]) -> Any:
    pairs = [ask_pair(q) for q in qs]
    total = [n * 2 for _, n in pairs]
    named = []
    for i, (answer, n) in enumerate(pairs):
        named.append((answer.lower(), i, n))
    first, second = ask_many(qs[0], 2)
    return total, named, first + second


def unpack_then_more_calls(qs: list[str]) -> Any:
    out = []
    for q in qs:
        a, b = ask_many(q, 2)
        out.append(ask(f"# {a} and {b}"))
    return out


def starred_and_swaps(qs: list[str]) -> Any:
    first, *rest = ask_many(qs[0], 3)  # a starred target waits for the value
    a, b = rest[0], first
    a, b = b, a
    return a, b, rest


def unpack_of_the_wrong_length(qs: list[str]) -> Any:
    return (
        [ask_many(q, 3) for q in qs][0:1]
        and [tuple(ask_many(q, 3)) for q in qs]
        and [x for q in qs for x, y in [ask_many(q, 3)]]
    )


def unpack_too_few(qs: list[str]) -> Any:
    a, b = ask_many(qs[0], 1)
    return a, b


def unpack_a_number(qs: list[str]) -> Any:
    (a, b), c = ask_pair(qs[0])
    return a, b, c


PROMPT = "Rate {answer} for {topic}"


def try_before_each_call(qs: list[str]) -> Any:
    out = []
    for q in qs:
        fields = {"answer": q} if len(q) > 4 else {"topic": q}
        try:
            prompt = PROMPT.format(**fields)  # touches nothing pending: no wait
        except KeyError as missing:
            prompt = f"{q} (missing {missing})"
        out.append(ask(prompt))
    return out


def with_before_each_call(qs: list[str], path: str) -> Any:
    out = []
    for q in qs:
        with open(path) as f:  # reads a file, calls no op: no wait
            header = f.readline().strip()
        out.append(ask(f"{header} {q}"))
    return out


def try_around_a_pending_parse(qs: list[str]) -> Any:
    out = []
    for q in qs:
        try:
            out.append(int(ask_number(q)))  # a pending value in the body: it waits
        except ValueError:
            out.append(-1)
    return out


# Op calls per parallel group of each program on QUESTIONS (the ideal: one wave).
PROGRAMS = {
    parse_each_number: [4],
    parse_each_number_in_a_loop: [4],
    load_each_json: [4],
    search_each_reply: [4],
    compiled_pattern_and_sub: [4],
    methods_of_what_re_finds: [12],
    membership_in_each_reply: [12],
    lookup_by_reply: [8],
    literal_eval_and_str_methods: [4],
    text_helpers: [4],
    own_pure_helper: [4],
    truth_as_a_value: [8],
    structure_questions: [8],
    callback_runs_now: [1, 1, 1, 1],  # your function runs in program order
    unpack_each_pair: [4],
    loop_over_pending_pairs: [5],
    unpack_then_more_calls: [4, 4],
    starred_and_swaps: [1],
    try_before_each_call: [4],
    try_around_a_pending_parse: [1, 1, 1, 1],  # the documented cost: one at a time
    a_parse_that_fails: None,
    unpack_of_the_wrong_length: None,
    unpack_too_few: None,
    unpack_a_number: None,
    a_lookup_that_fails: None,
}


@pytest.mark.parametrize("program", list(PROGRAMS), ids=lambda p: p.__name__)
def test_jit_does_what_plain_python_does(program: Any) -> None:
    if PROGRAMS[program] is not None:
        assert_same_as_plain(program, xcs.jit(program), QUESTIONS)
        return
    # A failing parse is glue that fails: the calls recorded after it may have run
    # before its error surfaced (DESIGN.md §5.6), so jit's calls include plain's.
    plain, got = run_logged(program, QUESTIONS), run_logged(xcs.jit(program), QUESTIONS)
    assert plain.error is not None and got.error is not None
    assert type(got.error) is type(plain.error) and str(got.error) == str(plain.error)
    assert not plain.calls - got.calls


@pytest.mark.parametrize("program", [p for p, w in PROGRAMS.items() if w], ids=lambda p: p.__name__)
def test_each_program_gets_its_ideal_waves(program: Any) -> None:
    trace = xcs.trace(program, QUESTIONS)
    assert waves(trace) == PROGRAMS[program]


def test_a_failing_parse_raises_the_original_exception_in_program_order() -> None:
    LOG.clear()
    with pytest.raises(ValueError, match="invalid literal for int") as caught:
        xcs.jit(a_parse_that_fails)(QUESTIONS)
    assert "int()" in "\n".join(getattr(caught.value, "__notes__", []))
    with pytest.raises(KeyError) as missing:
        xcs.jit(a_lookup_that_fails)(QUESTIONS)
    assert missing.value.args == (" 4\n",)  # beta's, the first miss in program order


def test_a_with_that_calls_no_op_does_not_wait(tmp_path: Any) -> None:
    path = tmp_path / "header.txt"
    path.write_text("Question:\nrest\n")
    assert_same_as_plain(
        with_before_each_call, xcs.jit(with_before_each_call), QUESTIONS, str(path)
    )
    trace = xcs.trace(with_before_each_call, QUESTIONS, str(path))
    assert waves(trace) == [4]


@broken_op
def broken(question: str) -> str:
    raise OpError(f"no answer to {question}")


def failure_before_a_clear_try(qs: list[str], caught: list[str]) -> Any:
    first = broken(qs[0])
    print("got", first)  # an effect waits: the library call below flushes it
    try:
        order = sorted(qs)  # flushes: broken fails there, inside the block
        order.append(int("not a number"))
    except (OpError, ValueError) as error:
        caught.append(type(error).__name__)  # only int()'s ValueError may land here
        order = []
    caught.append("after the block")  # the held failure is raised before this line
    return order, ask(qs[1])


def test_a_failure_from_before_a_clear_block_never_reaches_its_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain_caught: list[str] = []
    with pytest.raises(OpError) as plain:
        failure_before_a_clear_try(QUESTIONS, plain_caught)
    jit_caught: list[str] = []
    with pytest.raises(OpError) as jitted:
        xcs.jit(failure_before_a_clear_try)(QUESTIONS, jit_caught)
    assert str(jitted.value) == str(plain.value)
    assert plain_caught == [] and jit_caught == ["ValueError"]  # int()'s, not broken's
    assert capsys.readouterr().out == ""  # "got" never printed: broken failed first


def test_pure_refuses_what_is_not_a_function() -> None:
    with pytest.raises(TypeError, match="takes a function"):
        xcs.pure(str)
    with pytest.raises(TypeError, match="is an op"):
        xcs.pure(ask)
    with pytest.raises(TypeError, match="takes a function"):
        xcs.pure("json.loads")  # type: ignore[arg-type]


def test_aggregates_of_each_items_answers_stay_lazy_and_drain_generators() -> None:
    @logged("score")
    def score(q: str) -> int:
        time.sleep(0.02)
        return len(q)

    def per_item_means(items: list[list[str]]) -> list[float]:
        means = []
        for samples in items:
            scores = [score(s) for s in samples]
            means.append(sum(scores) / len(scores))  # right after the calls, per item
        return means

    def generator_max(qs: list[str]) -> int:
        return max(score(q) for q in qs) + min([score(q) for q in qs])

    items = [["a", "bb"], ["ccc", "d"], ["ee", "fff"]]
    trace = xcs.trace(per_item_means, items)
    assert trace.result == per_item_means(items)
    assert waves(trace) == [6]
    LOG.clear()
    assert xcs.jit(generator_max)(["a", "bbb", "cc"]) == generator_max(["a", "bbb", "cc"])
    assert waves(xcs.trace(generator_max, ["a", "bbb", "cc"])) == [6]  # drained, not waited


@logged("maybe")
def maybe(q: str) -> str | None:
    """An answer that may be missing (``message.content`` is ``str | None``)."""
    time.sleep(0.02)
    return None if "none" in q else ("" if "empty" in q else q.upper())


def defaults_each_answer(qs: list[str]) -> list[Any]:
    out = []
    for q in qs:
        text = maybe(q) or ""  # the usual guard for an Optional answer
        flag = maybe(q) and "answered"
        items = maybe(q) or []
        out.append((text.strip(), flag, items, maybe(q) or {"missing": True}))
    return out


def test_a_default_for_each_answer_stays_lazy() -> None:
    qs = ["a", "b none", "c empty", "d"]
    assert_same_as_plain(defaults_each_answer, xcs.jit(defaults_each_answer), qs)
    assert waves(xcs.trace(defaults_each_answer, qs)) == [16]


def test_or_with_a_call_on_the_right_still_branches_exactly() -> None:
    def fallback(qs: list[str]) -> list[str]:
        return [maybe(q) or maybe(q + " retry") for q in qs]  # the retry only if needed

    qs = ["a", "b none", "c"]
    assert_same_as_plain(fallback, xcs.jit(fallback), qs)
