"""The dispatcher: its namespace is what the rewrite emits; its helpers one by one."""

from __future__ import annotations

import ast
import collections
import datetime
import functools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from ember.xcs._internal import dispatch
from ember.xcs._internal.dispatch import callees, clocks, formatting, frames
from ember.xcs._internal.dispatch.callees import CONCRETE, DRAIN, FORMAT, PASS, STORE
from ember.xcs._internal.rewrite import HELPERS, rewrite_function
from ember.xcs._internal.tracer import Recording
from tests.helpers import echo

TESTS = Path(__file__).resolve().parents[2]


def emitted_helpers() -> set[str]:
    """The ``@xcs`` helpers in the rewritten form of every function of the test suite."""
    found: set[str] = set()
    for path in sorted(TESTS.rglob("*.py")):
        if "tools" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        # Outermost functions only, rewritten in place: their nested defs are rewritten
        # with them (a copy of every function would be needed otherwise).
        for node in _outermost_functions(tree):
            rewrite_function(node)
        found.update(
            sub.attr
            for sub in ast.walk(tree)
            if isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Name)
            and sub.value.id == HELPERS
        )
    return found


def _outermost_functions(node: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(child)
        else:
            found.extend(_outermost_functions(child))
    return found


def test_the_namespace_is_exactly_what_the_rewrite_emits() -> None:
    assert set(dispatch.__all__) == emitted_helpers()
    assert dispatch.__all__ == sorted(dispatch.__all__)
    assert all(callable(getattr(dispatch, name)) for name in dispatch.__all__)


class Plain:
    pass


@pytest.mark.parametrize(
    ("callee", "kind"),
    [
        (len, PASS),  # structure only; a pending value's length is glue
        (json.loads, PASS),  # known pure: glue if an argument is pending
        (list, PASS),
        ([].append, STORE),
        (sorted, PASS),  # pure: glue on a list of answers; a generator is drained first
        (max, PASS),
        (set, DRAIN),  # exhausts a generator: drained, its ops run together
        (__import__("os").path.join, CONCRETE),  # library code
        (collections.OrderedDict, CONCRETE),
        (functools.partial(__import__("os").path.join, "x"), CONCRETE),
    ],
)
def test_callees_take_their_arguments_as_they_need(callee: Any, kind: int) -> None:
    target, how, _ = callees.lookup(callee)
    assert how == kind
    assert target is callee or kind == PASS


def test_formatting_and_clocks_have_their_own_callees() -> None:
    target, how, _ = callees.lookup(", ".join)
    assert how == FORMAT and isinstance(target, functools.partial)
    for clock in (time.time, time.monotonic, datetime.datetime.now, datetime.date.today):
        assert clocks.as_clock(clock) is not None, clock
    assert clocks.as_clock(time.sleep) is None and clocks.as_clock(len) is None


def test_a_clock_read_runs_what_is_pending(recording: Recording) -> None:
    pending = echo.defer("x")
    read = clocks.as_clock(time.monotonic)
    assert read is not None
    read()
    assert recording.is_known(pending._self_node)
    strftime = clocks.as_clock(time.strftime)
    later = echo.defer("y")
    assert strftime is not None
    strftime("%Y", time.gmtime(0))  # given a time: reads no clock, waits for nothing
    assert not recording.is_known(later._self_node)


def test_user_classes_are_made_by_their_constructor() -> None:
    target, how, _ = callees.lookup(Plain)
    assert how == PASS and target is Plain  # only storing code runs: the class itself


def test_formatting_records_glue_only_with_pending_parts(recording: Recording) -> None:
    assert formatting.fstring(("a",), ("b", -1, None)) == "ab"
    pending = echo.defer("x")
    glued = formatting.fstring(("<",), (pending, -1, None), (">",))
    assert not recording.is_known(glued._self_node)
    assert str(glued) == "<x>"
    assert formatting.mod("%s-%s", ("a", "b")) == "a-b"


def test_frames_entered_through_the_dispatcher_may_defer() -> None:
    def outside() -> Any:
        return frames.may_defer(__import__("sys")._getframe())

    assert not outside()  # called directly, not through the dispatcher
