"""``python -m ember demo``: an ensemble -> judge pipeline, run plainly and under ``@jit``.

For each question an ensemble of model calls drafts answers and a judge call
synthesizes one. The pipeline is plain sequential Python built from
``ember.operators``; the demo runs it as is, then under ``@xcs.jit``, and prints both
wall times, the speedup, the answers, the trace of one question, and writes the
drawing of that trace.

By default the model is ``simulated/chat`` (offline, deterministic, each call
sleeping ``--latency`` seconds), so the two runs must agree exactly. With
``--model`` it calls a real model (``gpt-4o-mini``: key from ``OPENAI_API_KEY``), and
with ``--base-url`` any OpenAI-compatible endpoint (its key from the variable
``--api-key-env`` names); a sampling model may then answer differently in the two runs.
A missing key or SDK is reported before anything runs.

With ``--cache [PATH]`` the model's answers are kept in a response cache
(``models.cache``: the SQLite file PATH, by default ``responses.sqlite3`` in the user
cache folder), so running the demo again is fast: the cache then answers its calls.
The @jit pipeline then runs a second time, answered from the cache. The cache keeps
only calls meant to be reproducible: the simulated model's, and a real model's called
with a ``seed`` (the ensemble's drafts) or ``temperature=0``; a real model's judge
samples, so it is asked again each time.

Progress bars go to stderr, only when it is a terminal (and not with ``--quiet``);
``--json`` prints one JSON document on stdout instead of the report (:func:`main`).

This file is rewritten by ``@jit`` like user code (see ``source._EMBER_USER``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import sys
import textwrap
import threading
import time
from typing import Any

from ember import models, operators, xcs

QUESTIONS = [
    "Why is the sky blue?",
    "What makes bread rise?",
    "Why do cats purr?",
    "What causes the tides?",
    "Why does ice float?",
]
DEFAULT_OUT = "ember-demo.svg"


class AnswerQuestion(operators.Operator):
    """Drafts from an ensemble, then a judge's final answer."""

    def __init__(self, ensemble: operators.Ensemble, judge: operators.JudgeSynthesis) -> None:
        self.ensemble = ensemble
        self.judge = judge

    def forward(self, question: str) -> str:
        """The judge's final answer to ``question``."""
        drafts = self.ensemble(question)
        answer: str = self.judge(question, drafts).final_answer
        return answer


def answer_all(pipeline: AnswerQuestion, questions: list[str]) -> list[str]:
    """Answer every question, one after another (as plain Python reads)."""
    return [pipeline(question) for question in questions]


def build(
    width: int,
    latency: float,
    model: str | None,
    base_url: str | None,
    api_key_env: str | None = None,
) -> tuple[AnswerQuestion, str]:
    """The pipeline and a description of the model it calls."""
    if model is None and base_url is None:
        binding = models.instance("simulated/chat", latency=latency)
        where = f"simulated model, {latency * 1000:.0f} ms a call"
    else:
        name = model or "chat"
        if base_url is not None and "/" not in name:
            name = f"openai/{name}"
        binding = models.instance(name, base_url=base_url, api_key_env=api_key_env)
        where = f"{binding.model_id}" + (f" at {base_url}" if base_url else "")
        _ready(binding)
    # Seeds make repeated members differ (OpenAI-style APIs and the simulation use them).
    seed = None if binding.provider.name == "anthropic" else 0
    ensemble = operators.UniformEnsemble(width, binding, seed=seed)
    return AnswerQuestion(ensemble, operators.JudgeSynthesis(binding)), where


def _ready(binding: models.ModelBinding) -> None:
    """Raise now what the first call would: a missing key or SDK.

    Raises:
        MissingAPIKeyError: The endpoint needs a key and its variable is unset.
        ImportError: The provider's SDK is not installed (with the pip command).
    """
    provider = binding.provider
    provider.api_key()
    client = getattr(provider, "client", None)
    if callable(client):
        client()  # SDK providers: imports the SDK and makes the client


def _timed(label: str, run: Any, calls: int, show: bool) -> tuple[list[str], float]:
    """Run ``run()``, with a progress bar of model calls when ``show``; its result and seconds."""
    if not show:
        start = time.perf_counter()
        result = run()
        return result, time.perf_counter() - start
    from tqdm import tqdm

    # A terminal of size 0x0 (a pseudo-terminal nobody sized, as under `script` in CI)
    # would hide the bar: tqdm takes it for 0 columns and 0 rows.
    try:
        columns, rows = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        columns = rows = 0
    size = {"ncols": None if columns else 80, "nrows": None if rows else 24}
    lock = threading.Lock()
    bar = tqdm(total=calls, desc=label, unit="call", leave=False, file=sys.stderr, **size)
    with bar:

        def tick(event: models.CallEvent) -> None:
            if event.kind != "call":  # a retry: the call is still going
                return
            with lock:
                bar.update(1)

        remove = models.on_call(tick)
        try:
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
        finally:
            remove()
    return result, seconds


def check_out(out: str | None) -> str | None:
    """Why the drawing cannot be written to ``out``, or None when it looks writable.

    Checked before anything runs, so a typo costs no model calls.
    """
    from ember.xcs._viz.output import FORMATS

    path = pathlib.Path(out or DEFAULT_OUT)
    if path.is_dir():
        return f"--out {out}: that is a folder; name a file in it (e.g. --out {path / DEFAULT_OUT})"
    suffixes = ", ".join(f".{f}" for f in FORMATS[:-1]) + f" or .{FORMATS[-1]}"
    example = f"e.g. --out {path.with_suffix('.svg')}"
    if not path.suffix:
        return f"--out {out}: the file name needs an extension: {suffixes} ({example})"
    if path.suffix.lstrip(".").lower() not in FORMATS:
        return f"--out {out}: cannot draw a {path.suffix} file; use {suffixes} ({example})"
    folder = path.parent
    if not folder.is_dir():
        return f"--out {out}: there is no folder {folder}; create it or choose another path"
    if not os.access(folder, os.W_OK):
        return f"--out {out}: the folder {folder} is not writable; choose another path"
    return None


def check_cache(cache: bool | str) -> str | None:
    """Why ``--cache`` cannot name ``cache``, or None (checked before anything runs)."""
    if isinstance(cache, str) and pathlib.Path(cache).is_dir():
        example = pathlib.Path(cache) / "responses.sqlite3"
        return f"--cache {cache}: that is a folder; name a file in it (e.g. --cache {example})"
    return None


def _cache_counts(cache: models.ResponseCache | None) -> tuple[int, int]:
    """``(hits, skipped)`` of ``cache`` so far: calls it answered, calls it did not keep."""
    if cache is None:
        return 0, 0
    info = cache.info()
    return info.hits, info.skipped


def _draw(trace: xcs.Trace, out: str | None) -> tuple[str | None, str | None, int]:
    """Write the drawing: ``(path written, why it was skipped, exit status)``.

    A failure to write is printed (once) on stderr.
    """
    path = pathlib.Path(out or DEFAULT_OUT)
    try:
        written = trace.draw(path)
    except ImportError as error:
        return None, str(error), 0
    except OSError as error:
        print(f"error: {error.strerror or error}", file=sys.stderr)
        return None, None, 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return None, None, 1
    return str(written), None, 0


def main(
    width: int = 8,
    latency: float = 0.1,
    *,
    questions: int = len(QUESTIONS),
    out: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    json_output: bool = False,
    progress: bool = True,
    cache: bool | str = False,
) -> int:
    """Run the demo; returns the process exit status.

    0: done. 1: a model call failed, or the drawing could not be written. 2: nothing
    ran: ``out`` cannot be written, the model is unknown, its key or SDK is missing, or
    the cache file cannot be used (each reported in one line on stderr).

    ``cache``: True for the response cache in its default file, a path for that file
    (see the module docstring). The plain run and the first @jit run then find in the
    cache what was there before: when the plain run found nothing, the @jit run is
    made with caching off (the cache would answer it with what the plain run just
    stored), so the two stay comparable. The @jit pipeline then runs a second time,
    with the cache.

    With ``json_output`` stdout holds only one JSON document: ``model``,
    ``simulated``, ``base_url``, ``questions``, ``width``, ``calls``, ``plain_seconds``,
    ``jit_seconds``, ``speedup``, ``prepare_seconds``, ``same_answers``, ``answers``
    (``question``, ``answer`` under ``@jit``, ``plain_answer``), ``ops`` and
    ``parallel_groups`` of one question's graph, ``drawing`` (the path written, or
    null) and ``drawing_skipped`` (why not, when the viz extra is missing); with
    ``cache`` also ``cache_path``, ``plain_cached_calls`` and ``jit_cached_calls``
    (calls the cache answered in each run), ``jit_cache_off`` (the first @jit run was
    made without it), ``cached_seconds`` and ``cached_calls`` (the second @jit run's),
    and ``same_answers`` covers the second run too. Progress bars go to stderr when
    ``progress`` and stderr is a terminal.
    """
    asked = QUESTIONS[:questions]
    problem = check_out(out) or check_cache(cache)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        pipeline, where = build(width, latency, model, base_url, api_key_env)
    except (models.ModelError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    kept = None
    if cache is not False:
        try:
            kept = models.cache(None if cache is True else cache)
        except models.CacheError as error:
            advice = str(error).replace("another path to models.cache()", "another --cache PATH")
            print(f"error: {advice}", file=sys.stderr)
            return 2
    binding = pipeline.judge.model
    simulated = binding.provider.name == "simulated"
    show = progress and sys.stderr.isatty()
    calls = len(asked) * (width + 1)
    if not json_output:
        print(f"{len(asked)} questions x ({width} drafts + 1 judge) = {calls} calls; {where}")
        if kept is not None:
            print(f"response cache: {kept.path} ({kept.info().entries} answers in it)")
        print()
    again: list[str] | None = None
    again_s = 0.0
    again_hits = again_skipped = 0
    try:
        run = lambda: answer_all(pipeline, asked)  # noqa: E731
        hits, _ = _cache_counts(kept)
        plain, plain_s = _timed("plain Python", run, calls, show)
        plain_hits = _cache_counts(kept)[0] - hits
        # Once per process, jit rewrites the code it runs: done here by a trace that
        # calls no model, so the timing below is the pipeline's, and no call is paid twice.
        start = time.perf_counter()
        xcs.trace(answer_all, pipeline, asked, execute=False)
        prepare_s = time.perf_counter() - start
        jitted = xcs.jit(answer_all)
        # Compared with the plain run, the @jit run finds in the cache what it found:
        # nothing, the cache off (else it would answer with the plain run's answers).
        cache_off = kept is not None and plain_hits == 0
        with contextlib.ExitStack() as stack:
            if cache_off:
                stack.enter_context(models.no_cache())
            hits, _ = _cache_counts(kept)
            fast, jit_s = _timed("@xcs.jit", lambda: jitted(pipeline, asked), calls, show)
            jit_hits = _cache_counts(kept)[0] - hits
        if kept is not None:
            hits, passed = _cache_counts(kept)
            again, again_s = _timed("second run", lambda: jitted(pipeline, asked), calls, show)
            again_hits, again_skipped = _cache_counts(kept)
            again_hits, again_skipped = again_hits - hits, again_skipped - passed
        trace = xcs.trace(answer_all, pipeline, asked[:1])
    except models.ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if kept is not None:  # as a with block ends: the cache on before is on again
            kept.__exit__(None, None, None)
            kept.store.close()
    same_answers = fast == plain and again in (None, plain)
    ops = sum(len(group) for group in trace.parallel_groups)
    groups = len(trace.parallel_groups)
    if json_output:
        drawing, skipped, status = _draw(trace, out)
        document = {
            "model": binding.model_id,
            "simulated": simulated,
            "base_url": base_url,
            "questions": len(asked),
            "width": width,
            "calls": calls,
            "plain_seconds": round(plain_s, 4),
            "jit_seconds": round(jit_s, 4),
            "speedup": round(plain_s / jit_s, 2),
            "prepare_seconds": round(prepare_s, 4),
            "same_answers": same_answers,
            "answers": [
                {"question": q, "answer": a, "plain_answer": p}
                for q, a, p in zip(asked, fast, plain, strict=True)
            ],
            "ops": ops,
            "parallel_groups": groups,
            "drawing": drawing,
            "drawing_skipped": skipped,
        }
        if kept is not None:
            document.update(
                cache_path=kept.path,
                plain_cached_calls=plain_hits,
                jit_cached_calls=jit_hits,
                jit_cache_off=cache_off,
                cached_seconds=round(again_s, 4),
                cached_calls=again_hits,
            )
        print(json.dumps(document, indent=2))
        return status
    same = "same answers" if fast == plain else "answers differ: the model samples"
    plain_note = ""
    jit_note = f"{plain_s / jit_s:.1f}x faster, {same}"
    if kept is not None:
        plain_note = f"   ({plain_hits} of {calls} calls from the cache)"
        if cache_off:
            jit_note += "; cache off, as it had nothing for the plain run"
        else:  # the times are the cache's more than the model's: no speedup to claim
            jit_note = f"{same}; {jit_hits} of {calls} calls from the cache"
    print(f"plain Python: {plain_s:6.2f} s{plain_note}")
    print(f"@xcs.jit:     {jit_s:6.2f} s   ({jit_note})")
    if again is not None:
        same = "same answers" if again == fast else "answers differ: the model samples"
        print(
            f"second run:   {again_s:6.2f} s   (@xcs.jit again: {again_hits} of {calls} "
            f"calls from the cache, {same})"
        )
        if again_skipped:
            print(
                f"  ({again_skipped} of its calls sample, with no seed and temperature not 0:"
                "\n   the cache keeps only calls meant to be reproducible)"
            )
    if kept is not None and not cache_off:
        print("  (the cache answered calls of both runs: a new --cache PATH times the model again)")
    print(f"  (before the first call, once per process: {prepare_s * 1000:.0f} ms to rewrite")
    print("   the pipeline for @jit and trace it without calling the model)\n")
    if simulated:
        print(
            f"Answers from the simulated model {binding.model_id} (offline, canned); "
            "pass --model for a real one:"
        )
    else:
        print(f"Answers from {where}:")
    columns = min(max(shutil.get_terminal_size((100, 24)).columns, 60), 100)
    for question, answer in zip(asked, fast, strict=True):
        print(f"  {question}")
        shown = answer.strip() or "(an empty answer)"
        print(textwrap.fill(shown, columns, initial_indent="    -> ", subsequent_indent=" " * 7))
    print(f"\nThe graph of one question: {ops} ops in {groups} parallel groups")
    print(trace)
    drawing, skipped, status = _draw(trace, out)
    if drawing is not None:
        print(f"\nThe drawing of this graph: {drawing}")
    elif skipped is not None:
        print(f"\nDrawing skipped: {skipped}")
    return status
