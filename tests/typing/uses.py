"""Uses of the public API for the typing test (``tests/integration/test_typing.py``).

This file is type-checked, not run. A line whose comment is ``E:`` and error codes must
draw exactly those mypy errors; a ``reveal_type`` line whose comment is ``R:`` and a
type must reveal that type. Every other line must check cleanly. It imports ``ember``
the way a user's project does.
"""

from typing import reveal_type

from ember import models, operators, xcs
from ember.api import models as api_models


@xcs.op
def ask(question: str) -> str:
    return question.upper()


async def aask(question: str) -> str:
    return question.upper()


@xcs.op(name="score", max_concurrency=4)
def score(answer: str, *, weight: float = 1.0) -> float:
    return len(answer) * weight


@xcs.jit
def answers(questions: list[str]) -> list[str]:
    return [ask(q) for q in questions]


@xcs.jit(max_workers=4, timeout=30.0)
def best(question: str, n: int = 3) -> tuple[str, float]:
    drafts = [ask(f"{question} {i}") for i in range(n)]
    scores = [score(d, weight=0.5) for d in drafts]
    return max(zip(drafts, scores, strict=True), key=lambda pair: pair[1])


class Pipeline:
    @xcs.jit
    def run(self, question: str) -> str:
        return ask(question)

    @xcs.op
    def lookup(self, key: int) -> bytes:
        return bytes(key)

    @xcs.jit
    @staticmethod
    def helper(x: int) -> int:
        return x + 1


# Correct uses: signatures and results come through the decorators.
reveal_type(answers(["a", "b"]))  # R: list[str]
reveal_type(best("q"))  # R: tuple[str, float]
reveal_type(best("q", n=5)[1])  # R: float
reveal_type(ask("x"))  # R: str
reveal_type(score("x", weight=2.0))  # R: float
reveal_type(Pipeline().run("q"))  # R: str
reveal_type(Pipeline().lookup(3))  # R: bytes
reveal_type(Pipeline.helper(1))  # R: int
reveal_type(answers.stats())  # R: dict[str, Any]
reveal_type(xcs.map(ask, ["a", "b"]))  # R: list[str]
reveal_type(xcs.map(len, [[1], [2, 3]], max_workers=2))  # R: list[int]
reveal_type(xcs.map(ask, ["a"], return_exceptions=True))  # R: list[str | BaseException]
reveal_type(xcs.jit(ask))  # R: ember.xcs._jit.JitFunction[[question: str], str]
reveal_type(xcs.trace(answers, ["a"]))  # R: ember.xcs._trace.Trace


async def mapped() -> None:  # xcs.map of an async def is awaited
    reveal_type(await xcs.map(aask, ["a"]))  # R: list[str]
    reveal_type(await xcs.map(aask, ["a"], return_exceptions=True))  # R: list[str | BaseException]


# The callable models module.
reveal_type(models("simulated/chat", "hi"))  # R: ember.models.response.Response
reveal_type(models("simulated/chat", "hi", temperature=0.0).text)  # R: str
reveal_type(api_models("simulated/chat", "hi"))  # R: ember.models.response.Response
reveal_type(models.instance("simulated/chat"))  # R: ember.models.binding.ModelBinding
reveal_type(models.usage())  # R: dict[str, Any]


def first(response: models.Response) -> str:
    return response.text


try:
    models("simulated/chat", "hi")
except models.ModelError as error:
    reveal_type(error)  # R: ember.models.errors.ModelError

judge = operators.JudgeSynthesis(model=models.instance("simulated/chat"))

# Incorrect uses: each draws its error.
answers(123)  # E: arg-type
answers(["a"], extra=1)  # E: call-arg
best(1)  # E: arg-type
ask(1, 2)  # E: call-arg, arg-type
score("x", weight="heavy")  # E: arg-type
Pipeline().run(7)  # E: arg-type
Pipeline().lookup("k")  # E: arg-type
print(xcs.map(ask, [1, 2]))  # E: arg-type
n: int = answers(["a"])  # E: assignment
models("simulated/chat")  # E: call-arg
models(42, "hi")  # E: arg-type
models.no_such_function()  # E: attr-defined
s: str = models("simulated/chat", "hi")  # E: assignment
