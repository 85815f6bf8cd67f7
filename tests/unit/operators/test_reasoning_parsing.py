"""Replies are parsed in linear time, into what the old regexes found.

``parse_judgement`` and ``parse_verdict`` read replies that come from models and the
network; their label search used to be quadratic in blank lines (16k newlines: 1.9 and
2.8 s, 4x per doubling). They now take linear time and return what they did.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.operators import Judgement, Verdict
from ember.operators.reasoning import _labelled, parse_judgement, parse_verdict
from tests.helpers import best_seconds


def old_labelled(text: str, label: str) -> str | None:
    """The quadratic version this module used to run, kept as the reference."""
    found = None
    pattern = re.compile(rf"^\s*{label}\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
    for match in pattern.finditer(text):
        found = match
    if found is None:
        return None
    rest = text[found.end() :]
    following = re.search(r"^\s*[A-Z][A-Za-z ]{0,30}:", rest, re.MULTILINE)
    tail = rest[: following.start()] if following else rest
    return (found.group(1) + tail).strip()


LABELS = ["Final answer", "Reasoning", "Verdict", "Explanation", "Revised answer"]
PIECES = [
    *[" ", "\t", "\r", "\u00a0", "\u2028", "\n", "\n\n", ":", "x", "b c", "1", "é"],
    *["Verdict", "verdict:", "FINAL ANSWER", "Final answer:", "Explanation:", "Reasoning"],
    *["Revised answer :", "Note:", "A" * 31 + ":", "Ab cd:"],
]
replies = st.lists(st.sampled_from(PIECES), max_size=16).map("".join)


@settings(max_examples=1500, deadline=None)
@given(replies, st.sampled_from(LABELS))
def test_labelled_text_is_what_the_old_regexes_found_on_any_reply(reply, label):
    assert _labelled(reply, label) == old_labelled(reply, label)


HOSTILE = {
    "blank lines": lambda n: "Reasoning: why\n" + "\n" * n + "Final answer: heat",
    "blank lines, no labels": lambda n: "\n" * n,
    "a label, then blank lines": lambda n: "Verdict" + "\n" * n,
    "spaces": lambda n: "Final answer:" + " " * n + "heat",
    "verdict repeated": lambda n: "Verdict:\n" * (n // 9),
    "verdict repeated on a line": lambda n: "Verdict:" * (n // 8),
}


PARSERS = {
    "parse_judgement": lambda text: parse_judgement(text),
    "parse_verdict": lambda text: parse_verdict(text, "a"),
}


@pytest.mark.timeout(60)  # the quadratic parser took minutes here
@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_replies_cost_time_linear_in_their_length(kind, parser):
    parse, reply = PARSERS[parser], HOSTILE[kind]
    small, large = reply(25_000), reply(100_000)
    small_s = best_seconds(lambda: parse(small))
    large_s = best_seconds(lambda: parse(large))
    # Linear: 4x the text, ~4x the time (quadratic was 16x).
    assert large_s < 8 * small_s + 0.002, (kind, small_s, large_s)


def test_hostile_replies_are_parsed_right():
    blank = "\n" * 50_000
    assert parse_judgement(f"Reasoning: why{blank}Final answer: heat") == Judgement("heat", "why")
    assert parse_judgement(f"Final answer:{blank}  heat  ") == Judgement("heat", "")
    assert parse_judgement(blank) == Judgement("", "")
    spaced = "Final answer:" + " " * 50_000 + "heat" + " " * 50_000
    assert parse_judgement(spaced) == Judgement("heat", "")
    repeated = "Verdict:\n" * 10_000 + "Verdict: 1\nExplanation: fine\nRevised answer: salt"
    assert parse_verdict(repeated, "a") == Verdict(1, "fine", "salt")
    assert parse_verdict("Verdict:" * 10_000, "a") == Verdict(0, "Verdict:" * 10_000, "a")
    verdict = parse_verdict(f"Verdict: 0{blank}Explanation: no{blank}Revised answer: x", "a")
    assert verdict == Verdict(0, "no", "x")
