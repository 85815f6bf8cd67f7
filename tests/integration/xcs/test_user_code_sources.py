"""Where user code comes from: notebook cells, edited files, and what a frame shows.

The rewrite recompiles user functions from their source. A notebook cell's source
lives in ``linecache``; a file edited after import no longer matches the running
code and must never be used (the function runs as it is, with a warning). Inside
rewritten code, everything that looks at the frame (``locals()``, logging's
``funcName``/``lineno``, warning locations) sees what plain Python shows.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import linecache
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ember import xcs
from tests.helpers import LOG, assert_same_as_plain, echo

# --- notebook cells ------------------------------------------------------------------------

CELL_1 = """\
from tests.helpers import slow_echo

def ask_all(qs):
    return [slow_echo(q, 0.1) for q in qs]
"""
CELL_2 = """\
def summarize(qs):
    answers = ask_all(qs)
    return " / ".join(answers), len(answers)
"""


def run_cell(source: str, number: int, namespace: dict[str, Any]) -> None:
    """Run ``source`` as IPython does: compiled under a name whose text is in linecache."""
    filename = f"<ipython-input-{number}-0123abcd>"
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    exec(compile(source, filename, "exec"), namespace)


def test_functions_defined_in_notebook_cells_are_rewritten() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    run_cell(CELL_1, 1, namespace)
    run_cell(CELL_2, 2, namespace)
    summarize = namespace["summarize"]
    jitted = xcs.jit(summarize)
    with warnings.catch_warnings():
        warnings.simplefilter("error", xcs.XCSWarning)  # no fallback
        assert_same_as_plain(summarize, jitted, ["a", "b", "c", "d"])
    assert LOG.span() < 0.5 * LOG.busy_seconds()  # the calls of the other cell overlapped
    stats = jitted.stats()
    assert (stats["decision"], stats["fallback_reason"]) == ("parallel", None)


# --- stale sources ---------------------------------------------------------------------------

ORIGINAL = """\
from tests.helpers import echo, upper

def helper(xs):
    return [upper(x) for x in xs]

def program(xs):
    return [echo(x) for x in xs]
"""
EDITED = """\
from tests.helpers import echo, upper

# an edit moved everything down and changed what the functions do


def helper(xs):
    return [upper(x) + "?" for x in xs]

def program(xs):
    return [echo(x) + "?" for x in xs]
"""


@pytest.fixture
def edited_module(tmp_path: Path) -> Iterator[Any]:
    """A module imported from a file that was then edited (its functions are stale)."""
    path = tmp_path / "xcs_stale_module.py"
    path.write_text(ORIGINAL)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("xcs_stale_module")
        path.write_text(EDITED)
        linecache.checkcache(str(path))
        yield module
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("xcs_stale_module", None)


def xcs_warnings(record: Any) -> list[Any]:
    """The XCSWarnings among the warnings ``pytest.warns`` caught.

    It catches every warning in the process meanwhile: a ``ResourceWarning`` of an
    earlier test's socket, collected in the block, is not this test's business.
    """
    return [w for w in record if issubclass(w.category, xcs.XCSWarning)]


def test_a_stale_jitted_function_falls_back_with_one_warning(edited_module: Any) -> None:
    jitted = xcs.jit(edited_module.program)
    with pytest.warns(xcs.XCSWarning, match="does not match the running code") as record:
        assert jitted(["a", "b"]) == ["a", "b"]  # what the running code computes
    (warning,) = xcs_warnings(record)
    assert warning.filename == edited_module.__file__ and warning.lineno == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error", xcs.XCSWarning)  # said once, not again
        assert_same_as_plain(edited_module.program, jitted, ["c"])
    stats = jitted.stats()
    assert stats["decision"] == "fallback"
    assert "does not match" in stats["fallback_reason"]
    assert (stats["traced_calls"], stats["direct_calls"]) == (0, 2)


def test_a_stale_callee_runs_as_it_is_with_one_warning(edited_module: Any) -> None:
    def caller(xs: list[str]) -> Any:
        return edited_module.helper(xs), [echo(x) for x in xs]

    jitted = xcs.jit(caller)
    with pytest.warns(xcs.XCSWarning, match="cannot rewrite 'helper'") as record:
        assert_same_as_plain(caller, jitted, ["a", "b"])
    (warning,) = xcs_warnings(record)
    assert warning.filename == edited_module.__file__ and warning.lineno == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", xcs.XCSWarning)
        assert_same_as_plain(caller, jitted, ["c"])
    trace = xcs.trace(caller, ["x", "y"])
    ops = sorted(a["name"] for _, a in trace.graph.nodes(data=True) if a["kind"] == "op")
    assert ops == ["echo", "echo", "upper", "upper"]  # its ops ran at once, still nodes


async def echo_all(xs: list[Any]) -> list[Any]:
    return [echo(x) for x in xs]  # rewritten too, run by asyncio.run from sync code


def test_callees_without_source_warn_once_if_they_call_an_op() -> None:
    generated = without_source()  # its ops run at once
    namespace: dict[str, Any] = {}
    exec(compile("def plus_one(x):\n    return x + 1\n", "<quiet>", "exec"), namespace)
    plus_one = namespace["plus_one"]  # no source either, but it calls no op: nothing to say

    def caller(xs: list[Any]) -> Any:
        return [generated(x) for x in xs], plus_one(1), asyncio.run(echo_all(xs))

    jitted = xcs.jit(caller)
    with pytest.warns(xcs.XCSWarning, match="cannot rewrite") as record:
        assert_same_as_plain(caller, jitted, ["a", "b"])
    found = {(w.filename, w.lineno, str(w.message).split(":")[0]) for w in record}
    assert len(record) == 1 and found == {("<generated>", 1, "xcs cannot rewrite 'generated'")}
    with warnings.catch_warnings():
        warnings.simplefilter("error", xcs.XCSWarning)  # said once
        assert_same_as_plain(caller, jitted, ["c"])


def test_closures_of_one_function_without_source_are_named_once() -> None:
    namespace: dict[str, Any] = {"echo": echo}
    source = "def make():\n    def inner(x):\n        return echo(x)\n    return inner\n"
    exec(compile(source, "<factory>", "exec"), namespace)
    make = namespace["make"]

    def caller(xs: list[Any]) -> Any:
        return [make()(x) for x in xs]  # a new closure per call, one code

    jitted = xcs.jit(caller, cache=False)
    with pytest.warns(xcs.XCSWarning, match="cannot rewrite 'make.<locals>.inner'") as record:
        for xs in (["a", "b"], ["c"], ["d", "e"]):
            assert_same_as_plain(caller, jitted, xs)
    assert len(record) == 1


# --- functions jit cannot rewrite run plainly, said once ---------------------------------------


def without_source() -> Any:
    namespace: dict[str, Any] = {"echo": echo}
    exec(
        compile("def generated(x):\n    return [echo(x), echo(x)]\n", "<generated>", "exec"),
        namespace,
    )
    return namespace["generated"]


@functools.lru_cache(maxsize=0)  # a wrapper jit cannot see through (that caches nothing)
def cached(x: Any) -> Any:
    return [echo(x), echo(x)]


@pytest.mark.parametrize(
    ("fn", "reason"),
    [
        (without_source(), "no source found for '<generated>'"),
        (cached, "it is a _lru_cache_wrapper object"),
        (json.dumps, "it is library code"),
    ],
    ids=["no-source", "lru-cache", "library"],
)
def test_functions_jit_cannot_rewrite_fall_back_once(fn: Any, reason: str) -> None:
    jitted = xcs.jit(fn)
    with pytest.warns(xcs.XCSWarning, match=re.escape(reason)):
        assert_same_as_plain(fn, jitted, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", xcs.XCSWarning)  # said once
        assert_same_as_plain(fn, jitted, 2)
    stats = jitted.stats()
    assert stats["decision"] == "fallback" and reason in stats["fallback_reason"]
    assert (stats["traced_calls"], stats["direct_calls"]) == (0, 2)


# --- what frames show ----------------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def logs_and_warns(xs: list[Any]) -> Any:
    logger = logging.getLogger("xcs-test-frames")
    answer = echo(xs[0])
    logger.warning("got %s", answer)  # MARK-log
    warnings.warn(f"about {answer}", UserWarning, stacklevel=1)  # MARK-warn
    nested_warning(answer)  # MARK-nested
    return sorted(locals()), answer


def nested_warning(value: Any) -> None:
    warnings.warn(f"nested {value}", UserWarning, stacklevel=2)


def observe(fn: Any) -> list[tuple[Any, ...]]:
    handler = Collect()
    logger = logging.getLogger("xcs-test-frames")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn([1])
    finally:
        logger.removeHandler(handler)
    seen: list[tuple[Any, ...]] = [result]
    seen += [(r.funcName, r.pathname, r.lineno, r.getMessage()) for r in handler.records]
    seen += [(w.filename, w.lineno, str(w.message)) for w in caught]
    return seen


def test_locals_logging_and_warning_locations_are_unchanged() -> None:
    plain = observe(logs_and_warns)
    assert plain == observe(xcs.jit(logs_and_warns))
    source = Path(__file__).read_text().splitlines()
    lines = {
        mark: next(i for i, text in enumerate(source, 1) if f"# MARK-{mark}" in text)
        for mark in ("log", "warn", "nested")
    }
    assert plain == [
        (["answer", "logger", "xs"], "1"),
        ("logs_and_warns", __file__, lines["log"], "got 1"),
        (__file__, lines["warn"], "about 1"),
        (__file__, lines["nested"], "nested 1"),
    ]


def test_code_given_with_python_c_warns_and_runs() -> None:
    # The loader of __main__ under -c cannot give source: the warning must not ask it.
    import os
    import subprocess

    script = (
        "from ember import xcs\n"
        "ask = xcs.op(lambda x: x)\n"
        "def f(q):\n"
        "    return [ask(q), ask(q)]\n"
        "print(xcs.trace(f, 'a').result, xcs.map(f, ['b']), flush=True)\n"
    )
    root = Path(__file__).resolve().parents[3]
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['a', 'a'] [['b', 'b']]"
    assert "Traceback" not in run.stderr
    if sys.version_info < (3, 13):  # 3.13 keeps -c's source: f is rewritten, no warning
        assert "<string>:5: XCSWarning: xcs.trace cannot rewrite 'f': no source found" in (
            run.stderr
        )
