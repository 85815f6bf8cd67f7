"""Every entry of the known-pure table really is free of side effects.

A pure call with a pending argument runs later, in another thread: that is only
invisible if the call touches nothing but its arguments. Each built-in entry is
called on sample arguments and must raise no audit event (no file, process, socket,
import or environment access), write no output, leave its arguments unchanged, and
give equal results on equal inputs.
"""

from __future__ import annotations

import copy
import re
import string
import sys
import warnings
from typing import Any

import pytest

from ember import xcs
from ember.xcs._internal.dispatch.pure import BUILT_IN as SHIPPED
from ember.xcs._internal.dispatch.pure import PURE

BUILT_IN = {fn: PURE[fn] for fn in SHIPPED}  # not what test modules register

TEXT = '  Hello {name}, "score": 42 -- $who\tdone  '
PATTERN = re.compile(r"(\w+)")
CANDIDATES: list[tuple[Any, ...]] = [
    (TEXT,),
    (r"\w+", TEXT),
    (r"\w+", "-", TEXT),
    (PATTERN, TEXT),
    (PATTERN, "-", TEXT),
    (TEXT, "o"),
    (TEXT, "o", "0"),
    (TEXT, 30),
    (TEXT, 30, "*"),
    (TEXT, "> "),
    (TEXT, {"name": "Ada"}),
    (TEXT, {ord("o"): "0"}),
    ("abc", "xyz"),
    ('{"score": [1, 2.5, "x"]}',),
    ("[1, (2, 'x'), {'k': None}]",),
    (-2.75,),
    (b"42",),
    (string.Template("Hi $who"), {"who": "Ada"}),
]

_watching: list[str] | None = None
_ALLOWED = {"compile", "re.compile", "object.__getattr__", "sys._getframe"}


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _watching is not None and event not in _ALLOWED:
        _watching.append(event)


sys.addaudithook(_hook)


def _state(args: tuple[Any, ...]) -> str:
    """The arguments' contents (an object's attributes, not its address)."""
    return repr([vars(a) if hasattr(a, "__dict__") else a for a in args])


def _result(value: Any) -> str:
    """A result's contents (an exception's arguments, not their addresses)."""
    if isinstance(value, BaseException):
        return f"{type(value).__name__}{_state(value.args)}"
    return repr(value)


def _call(fn: Any, args: tuple[Any, ...]) -> tuple[Any, list[str]]:
    global _watching
    _watching = []
    try:
        return fn(*args), _watching
    finally:
        _watching = None


@pytest.mark.parametrize("fn", list(BUILT_IN), ids=lambda f: BUILT_IN[f][0])
def test_each_entry_is_free_of_side_effects(fn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    exercised = 0
    for candidate in CANDIDATES:
        before = copy.deepcopy(candidate)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)  # arguments it frowns on
                first, events = _call(fn, candidate)
        except (TypeError, ValueError, SyntaxError, LookupError, OverflowError, AttributeError):
            continue
        except DeprecationWarning:
            continue
        assert not events, f"{BUILT_IN[fn][0]} raised audit events {events}"
        assert _state(candidate) == _state(before)  # its arguments are unchanged
        second, _ = _call(fn, copy.deepcopy(before))
        assert _result(first) == _result(second)  # equal inputs, equal results
        exercised += 1
    assert exercised, f"no sample arguments exercise {BUILT_IN[fn][0]}: add some"
    assert capsys.readouterr() == ("", "")


def test_the_table_covers_the_documented_calls() -> None:
    import ast
    import json
    import textwrap

    for fn in (int, float, str, repr, bool, json.loads, ast.literal_eval, re.search, re.match):
        assert fn in BUILT_IN
    for fn in (re.fullmatch, re.findall, re.sub, re.split, textwrap.dedent, textwrap.indent):
        assert fn in BUILT_IN
    for fn in (textwrap.shorten, string.Template.substitute, string.Template.safe_substitute):
        assert fn in BUILT_IN
    assert str.strip in BUILT_IN and str.format_map in BUILT_IN and re.Pattern.search in BUILT_IN
    assert str.join not in BUILT_IN  # formatting, with its own glue


def test_pure_registers_and_returns_the_function() -> None:
    def shout(text: str) -> str:
        return text.upper()

    assert xcs.pure(shout, name="shout") is shout
    assert PURE[shout][0] == "shout"
    del PURE[shout]
