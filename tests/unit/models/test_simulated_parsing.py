"""The simulated model reads prompts in linear time and as its old regexes did.

A prompt comes from the network (the local server answers with ``simulate``), so the
candidate and ``Answer:`` lines are found in time linear in its length; the answers
stay those of the quadratic regexes they replace, on every input.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.models.providers.simulated import _ANSWER_LINE, _CANDIDATE, _findall, simulate
from tests.helpers import best_seconds

# What the simulated model used to run (quadratic in blank lines and runs of spaces).
OLD_CANDIDATE = re.compile(r"^\s*(?:[-*]|\d+[.)])\s+(.+?)\s*$", re.MULTILINE)
OLD_ANSWER_LINE = re.compile(r"^\s*Answer:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)

# Pieces that meet every branch: bullets, numbers, blank lines, spaces of several
# kinds (\r, \v, no-break space and U+2028 are spaces but end no line), the labels.
PIECES = [
    *[" ", "  ", "\t", "\r", "\x0b", "\u00a0", "\u2028", "\n", "\n\n"],
    *["-", "*", "- ", "1", "12", "٣", ".", ")", ":", "x", "b c", "Answer:", "aNsWeR:"],
]
texts = st.lists(st.sampled_from(PIECES), max_size=16).map("".join)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_the_lines_found_are_the_old_regexes_matches_on_any_text(text):
    assert _findall(_CANDIDATE, text) == OLD_CANDIDATE.findall(text)
    assert _findall(_ANSWER_LINE, text) == OLD_ANSWER_LINE.findall(text)


@pytest.mark.parametrize(
    ("text", "candidates"),
    [
        (
            "Pick:\n- heat\n* light \n3. sound\n4) salt\t\nFinal answer:",
            ["heat", "light", "sound", "salt"],
        ),
        ("- \n- b", ["- b"]),  # an empty item takes the next line, as the regex did
        ("-\n\n\n   x  y  \n", ["x  y"]),
        ("x - a\n-a\n1.5 b", []),  # not at a line's start; no space after the bullet
        ("- a\n-   ", ["a", " "]),  # only spaces left: the regex kept the last one
    ],
)
def test_candidates_in_examples(text, candidates):
    assert _findall(_CANDIDATE, text) == candidates == OLD_CANDIDATE.findall(text)


HOSTILE = {
    "blank lines": lambda n: "Pick one.\n- heat\n" + "\n" * n + "Final answer:",
    "spaces in a line": lambda n: "Final answer:\n- heat" + " " * n + "x",
    "indented blank lines": lambda n: "Final answer:\n- heat\n" + " \n" * n,
    "verdict and blank lines": lambda n: "Answer: heat\nVerdict:" + "\n" * n,
    "verdict and spaces": lambda n: "Verdict:\nAnswer: heat" + " " * n + "x",
    "many candidates": lambda n: "Final answer:\n" + "- heat\n" * (n // 7),
}


@pytest.mark.timeout(60)  # the quadratic parser took minutes here
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_prompts_cost_time_linear_in_their_length(kind):
    prompt = HOSTILE[kind]
    small, large = prompt(25_000), prompt(100_000)
    small_s = best_seconds(lambda: simulate("chat", small, {}))
    large_s = best_seconds(lambda: simulate("chat", large, {}))
    # Linear: 4x the text, ~4x the time (quadratic was 16x: 2.8 s at 16k newlines).
    assert large_s < 8 * small_s + 0.002, (kind, small_s, large_s)


def test_hostile_prompts_get_the_right_answers():
    judged = simulate("chat", HOSTILE["blank lines"](50_000), {})
    assert judged.endswith("Final answer: heat") and "1 of 1 candidates" in judged
    wide = simulate("chat", HOSTILE["spaces in a line"](50_000), {})
    assert wide.endswith("Final answer: heat" + " " * 50_000 + "x")  # inner spaces kept
    many = simulate("chat", HOSTILE["many candidates"](70_000), {})
    assert "10000 of 10000 candidates say heat" in many
    checked = simulate("chat", HOSTILE["verdict and blank lines"](50_000), {})
    assert checked.endswith("Revised answer: heat")
