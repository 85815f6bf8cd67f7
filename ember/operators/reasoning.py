"""Model calls that reason about answers: ``JudgeSynthesis`` and ``Verifier``.

Each sends one prompt asking for a fixed reply format and parses the reply into a
small record. Parsing is an op too, so under ``@xcs.jit`` nothing waits for a reply
until a value is really needed. Parsing is lenient: a reply without the expected
labels still yields a record (the whole reply as the answer). It takes time linear in
the reply's length, whatever the reply holds.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from ember.models import ModelBinding, Response
from ember.operators.base import Operator, as_model
from ember.xcs import op

__all__ = ["JudgeSynthesis", "Judgement", "Verdict", "Verifier", "parse_judgement", "parse_verdict"]


@dataclasses.dataclass(frozen=True)
class Judgement:
    """A judge's decision.

    Attributes:
        final_answer: The synthesized answer.
        reasoning: Why, in the judge's words ("" when it gave none).
    """

    final_answer: str
    reasoning: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A verifier's check of one answer.

    Attributes:
        verdict: 1 when the answer was judged correct, 0 otherwise.
        explanation: Why.
        revised_answer: The corrected answer (the original when it was correct).
    """

    verdict: int
    explanation: str
    revised_answer: str


# The next ``Label:`` line after a labelled text: where that text ends.
_NEXT_LABEL = re.compile(r"^[^\S\n]*+[A-Z][A-Za-z ]{0,30}:", re.MULTILINE)


def _labelled(text: str, label: str) -> str | None:
    r"""The text after the last ``label:`` line, up to the next ``Label:`` line.

    Finds what these regexes (under ``re.MULTILINE``) find, in time linear in the
    reply: the last match of ``^\s*{label}\s*:\s*(.*)$`` (``re.IGNORECASE``), then
    the first match after it of ``^\s*[A-Z][A-Za-z ]{0,30}:``. They are quadratic in
    blank lines (at each line start ``\s*`` runs over all the blank lines after it),
    and replies come from models and the network. Here ``^[^\S\n]*+`` stays on its
    line, which finds the same lines: a match those regexes start at a blank line is
    the one that starts on the next line that is not blank. The ``\s`` around the
    colon still runs over newlines, as there.
    """
    pattern = re.compile(
        rf"^[^\S\n]*+{re.escape(label)}\s*+:\s*+([^\n]*)", re.IGNORECASE | re.MULTILINE
    )
    matches = list(pattern.finditer(text))
    if not matches:
        return None
    found = matches[-1]
    following = _NEXT_LABEL.search(text, found.end())
    return text[found.start(1) : following.start() if following else len(text)].strip()


@op(name="parse_judgement")
def parse_judgement(text: str) -> Judgement:
    """A ``Judgement`` from a reply with ``Reasoning:`` and ``Final answer:`` lines."""
    answer = _labelled(text, "Final answer")
    reasoning = _labelled(text, "Reasoning")
    return Judgement(text.strip() if answer is None else answer, reasoning or "")


@op(name="parse_verdict")
def parse_verdict(text: str, answer: str) -> Verdict:
    """A ``Verdict`` from a reply with ``Verdict:``, ``Explanation:``, ``Revised answer:``."""
    said = (_labelled(text, "Verdict") or "").lower()
    verdict = 1 if said.startswith(("1", "yes", "true", "correct")) else 0
    revised = _labelled(text, "Revised answer")
    explanation = _labelled(text, "Explanation")
    return Verdict(verdict, explanation or text.strip(), revised or answer)


class _Prompted(Operator):
    """An operator that asks one model, with a prompt template of its own."""

    PROMPT: str

    def __init__(self, model: str | ModelBinding, **params: Any) -> None:
        self.model = as_model(model, params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model.model_id!r})"


class JudgeSynthesis(_Prompted):
    """A model weighs candidate answers and synthesizes one.

    Args:
        model: A model id or binding.
        **params: Parameters for its calls.
    """

    PROMPT = (
        "Question: {question}\n\n"
        "Candidate answers:\n{candidates}\n\n"
        "Weigh the candidates and give the best answer. Reply in two lines:\n"
        "Reasoning: <why>\n"
        "Final answer: <the answer>"
    )

    def forward(self, question: str, answers: Sequence[str | Response]) -> Judgement:
        """The judge's ``Judgement`` of ``answers`` to ``question``.

        Args:
            question: The question.
            answers: The candidate answers: strings or model responses.

        Raises:
            TypeError: ``answers`` is one string rather than a list of answers.
        """
        if type(answers) is str:
            raise TypeError(
                "JudgeSynthesis needs a list of candidate answers, got one string; "
                "pass [answer] to judge a single answer"
            )
        candidates = "\n".join([f"- {answer}" for answer in answers])
        reply = self.model(self.PROMPT.format(question=question, candidates=candidates))
        judgement: Judgement = parse_judgement(reply.text)
        return judgement


class Verifier(_Prompted):
    """A model checks an answer: verdict, explanation and a revised answer.

    Args:
        model: A model id or binding.
        **params: Parameters for its calls.
    """

    PROMPT = (
        "Question: {question}\n"
        "Answer: {answer}\n\n"
        "Check the answer. Reply in three lines:\n"
        "Verdict: <1 if it is correct, 0 if not>\n"
        "Explanation: <why>\n"
        "Revised answer: <the corrected answer, or the same one>"
    )

    def forward(self, question: str, answer: str) -> Verdict:
        """The ``Verdict`` on ``answer``."""
        reply = self.model(self.PROMPT.format(question=question, answer=answer))
        verdict: Verdict = parse_verdict(reply.text, answer)
        return verdict
