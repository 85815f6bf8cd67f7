"""``simulated/...``: an offline model whose answers are a function of its inputs.

Randomness is seeded from the model name, the prompt and the parameters, so the same
call always returns the same text -- in any order, on any thread, in any process --
which is what lets tests compare a jitted run with a plain one. ``latency=`` makes
each call sleep (like a network round trip) and ``failure_rate=`` makes attempts fail
with HTTP 500 (seeded by the attempt number too, so retries can recover).

The text follows the prompt's requested format well enough for the operators:

* ``simulated/echo`` answers with the prompt's text.
* A prompt asking for ``Final answer:`` gets ``Reasoning: ...`` and ``Final answer: X``,
  X one of the candidates listed in it (lines ``- x`` or ``1. x``).
* A prompt asking for ``Verdict:`` gets a verdict (mostly 1), an explanation and
  ``Revised answer:`` (the prompt's ``Answer:`` line).
* A prompt asking one of a few known questions (those of ``python -m ember demo``:
  why the sky is blue, what makes bread rise, ...) gets one of three phrasings of a
  correct answer (:data:`KNOWN_ANSWERS`), so a demo's output reads like a real model's.
* Anything else gets one of three short answers picked for that prompt (single
  words, not meant to be right).

Either way the first of the three comes most often, so ensembles mostly agree and
sometimes do not.

The local server (``ember.models.server``) answers with the same text.
"""

from __future__ import annotations

import collections
import hashlib
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from ember.models.parameters import SIMULATED_PARAMETERS
from ember.models.providers.base import Failure, Prompt, Provider, RetryPolicy, prompt_text
from ember.models.response import Response, make_usage

__all__ = ["KNOWN_ANSWERS", "SimulatedProvider", "estimate_tokens", "simulate"]

# Knobs of the simulation itself, and the SDKs' options that are not sent in the request
# body: not sampling parameters, they do not change the text.
CONTROL_PARAMS = frozenset({"latency", "failure_rate", "timeout", "extra_headers", "extra_query"})

_WORDS = (
    "light",
    "scattering",
    "gravity",
    "yeast",
    "carbon",
    "dioxide",
    "vibration",
    "friction",
    "pressure",
    "evaporation",
    "magnetism",
    "photosynthesis",
    "erosion",
    "convection",
    "diffusion",
    "resonance",
    "oxidation",
    "buoyancy",
    "inertia",
    "refraction",
    "entropy",
    "fermentation",
    "condensation",
    "electricity",
    "tides",
    "orbits",
    "enzymes",
    "proteins",
    "sugar",
    "salt",
    "heat",
    "sound",
)


# Canned answers to the demo's questions (``ember._demo.QUESTIONS``): three phrasings
# each, all correct, the first the most common. A prompt holding the question (any case,
# any punctuation or words around it) gets them.
KNOWN_ANSWERS: dict[str, tuple[str, str, str]] = {
    "why is the sky blue": (
        "Rayleigh scattering: air molecules scatter blue light far more than red.",
        "Sunlight scatters off air molecules, and short blue wavelengths scatter most.",
        "Air scatters short wavelengths most, so blue light reaches us from all over the sky.",
    ),
    "what makes bread rise": (
        "Yeast ferments sugars into carbon dioxide, whose bubbles inflate the dough.",
        "Carbon dioxide from yeast, trapped by the gluten network, expands the dough.",
        "Gas from fermentation, held in by gluten, expands in the dough and in the oven.",
    ),
    "why do cats purr": (
        "Laryngeal muscles twitch 25-150 times a second, vibrating the vocal folds.",
        "Rapid twitches of the voice box muscles as they breathe, often to signal contentment.",
        "To signal contentment or soothe themselves; the larynx makes the vibration.",
    ),
    "what causes the tides": (
        "The Moon's gravity, with the Sun's, pulls the oceans into bulges as Earth turns.",
        "The Moon's pull differs across the Earth, raising bulges of sea that Earth spins under.",
        "Gravity of the Moon and the Sun; the Earth rotates through the bulges twice a day.",
    ),
    "why does ice float": (
        "Ice is less dense than water: freezing locks molecules into an open lattice.",
        "Hydrogen bonds hold ice in an open crystal, about 9% less dense than liquid water.",
        "Water expands as it freezes, so ice weighs less than the water it displaces.",
    ),
}


def _known_answers(text: str) -> tuple[str, str, str] | None:
    """The canned answers of the known question ``text`` asks, if it asks one."""
    words = " ".join(re.sub(r"[^a-z0-9']+", " ", text.lower()).split())
    for question, answers in KNOWN_ANSWERS.items():
        if question in words:
            return answers
    return None


def _line_items(head: str, *, min_space: int, flags: int = 0) -> re.Pattern[str]:
    r"""``^\s*HEAD\s*(.+?)\s*$`` (``\s+`` when ``min_space`` is 1) under re.MULTILINE.

    Those regexes are quadratic in blank lines (at each line start ``\s*`` runs over
    all that follow before the rest fails) and in runs of spaces (``(.+?)\s*$`` scans
    the run again at each space): a prompt of 58 KB of newlines held the local
    server for 88 s. This pattern finds the same captures, on every input (the tests
    check it against those regexes), in linear time:

    * ``^[^\S\n]*+`` stays on its line. A match the regex starts at a blank line is
      the one (same capture, same end) that starts on the next line that is not
      blank, which no earlier match has taken.
    * the capture is the next line that is not blank, from its first to its last
      non-space character (``\s`` after ``HEAD`` runs over newlines).
    * when only spaces are left, the regex gives them back from the end until
      ``(.+?)`` takes one that is no newline: the second group.
    * the match ends after the capture, not at the last newline that ``\s*$``
      reaches; what lies between is blank lines, where no match starts.

    ``head`` must start with a non-space character and match in one way only.
    :func:`_findall` joins the two groups.
    """
    return re.compile(
        rf"^[^\S\n]*+(?:{head})"
        rf"(?:\s{{{min_space},}}+(\S(?:[^\n]*\S)?)|\s{{{min_space}}}\s*([^\S\n])\n*+\Z)",
        re.MULTILINE | flags,
    )


def _findall(pattern: re.Pattern[str], text: str) -> list[str]:
    """The captures of a :func:`_line_items` pattern in ``text``, in order."""
    return [line or last_space for line, last_space in pattern.findall(text)]


# Candidates: lines ``- x``, ``* x``, ``1. x``, ``1) x``; the answer checked: ``Answer: x``.
_CANDIDATE = _line_items(r"[-*]|\d++[.)]", min_space=1)
_ANSWER_LINE = _line_items("Answer:", min_space=0, flags=re.IGNORECASE)


def _unit(*parts: object) -> float:
    """A number in [0, 1) determined by ``parts``."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _sampling(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The parameters that seed the text, as the local server would receive them."""
    sampling = {k: v for k, v in params.items() if k not in CONTROL_PARAMS}
    extra = sampling.pop("extra_body", None)
    if isinstance(extra, Mapping):  # the SDKs merge extra_body's fields into the body
        sampling.update(extra)
    elif extra is not None:
        sampling["extra_body"] = extra
    return tuple(sorted((k, repr(v)) for k, v in sampling.items()))


def simulate(model: str, text: str, params: Mapping[str, Any]) -> str:
    """The simulated answer of ``model`` to a prompt's ``text`` (see the module docstring)."""
    if model == "echo":
        return text
    sampling = _sampling(params)
    if "Final answer:" in text:
        candidates = _findall(_CANDIDATE, text) or [_WORDS[int(_unit(model, text) * len(_WORDS))]]
        counts = collections.Counter(candidates)  # in first-seen order, like a dict
        # Usually the majority (as a judge would say), sometimes another candidate.
        if _unit("judge", model, text, sampling) < 0.8:
            pick = max(counts, key=lambda c: counts[c])
        else:
            pick = candidates[int(_unit("pick", model, text, sampling) * len(candidates))]
        return (
            f"Reasoning: {counts[pick]} of {len(candidates)} candidates say {pick}, "
            f"and it answers the question.\nFinal answer: {pick}"
        )
    if "Verdict:" in text:
        found = _findall(_ANSWER_LINE, text)
        answer = found[-1] if found else ""
        verdict = 1 if _unit("verdict", model, text, sampling) < 0.8 else 0
        why = "The answer is consistent." if verdict else "The answer misses the point."
        return f"Verdict: {verdict}\nExplanation: {why}\nRevised answer: {answer}"
    known = _known_answers(text)
    if known is None:
        first = int(_unit("options", model, text) * len(_WORDS))
        options = [_WORDS[(first + step * 7) % len(_WORDS)] for step in range(3)]
    else:
        options = list(known)
    roll = _unit("answer", model, text, sampling)
    return options[0] if roll < 0.6 else options[1] if roll < 0.85 else options[2]


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``, estimated as one per four characters (at least one)."""
    return max(1, math.ceil(len(text) / 4))


class SimulatedProvider(Provider):
    """Deterministic offline answers; no key, no network, no concurrency limit.

    It takes every parameter the OpenAI and Anthropic providers take (a program moves
    between them unchanged; the sampling ones seed the answer) and two of its own:
    ``latency`` (seconds each call sleeps, default 0) and ``failure_rate`` (chance in
    [0, 1] that an attempt fails with HTTP 500, default 0).
    """

    name = "simulated"
    default_retry = RetryPolicy(attempts=5, base=0.01, cap=0.1)
    parameters = SIMULATED_PARAMETERS
    deterministic = True  # answers are seeded from the model, prompt and parameters

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._local = threading.local()

    def list_models(self) -> list[str]:
        """A few names; any name works."""
        return ["echo", "chat", "judge"]

    def invoke(
        self, model_id: str, model: str, prompt: Prompt, params: Mapping[str, Any]
    ) -> Response:
        """Complete with retries; attempts are numbered so failures can be seeded by them."""
        self._local.attempt = 0
        return super().invoke(model_id, model, prompt, params)

    def complete(self, model: str, prompt: Prompt, **params: Any) -> Response:
        """Sleep ``latency``, maybe fail, then answer deterministically."""
        latency = float(params.get("latency", 0.0))
        failure_rate = float(params.get("failure_rate", 0.0))
        if latency < 0 or not 0.0 <= failure_rate <= 1.0:
            raise ValueError(
                f"simulated model {model!r}: latency must be >= 0 and failure_rate in [0, 1], "
                f"got latency={latency!r}, failure_rate={failure_rate!r}"
            )
        attempt = getattr(self._local, "attempt", 0) + 1
        self._local.attempt = attempt
        text = prompt_text(prompt)
        if latency:
            time.sleep(latency)
        if failure_rate and _unit("fail", model, text, _sampling(params), attempt) < failure_rate:
            raise Failure(500, f"simulated failure (failure_rate={failure_rate})")
        answer = simulate(model, text, params)
        usage = make_usage(estimate_tokens(text), estimate_tokens(answer))
        return Response(answer, usage, f"{self.name}/{model}")
