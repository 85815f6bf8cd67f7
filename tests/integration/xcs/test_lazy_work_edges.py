"""Where lazy work on answers must not be lazy: found by review, kept as differential cases.

Each program runs plainly and under ``@jit``; the value (or exception) and everything
written to stdout and to a logger must be the same.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import pytest

from ember import xcs
from tests.helpers import logged


@logged()
def ask(q: str) -> str:
    if q.startswith("bad"):
        raise ValueError("op failed: " + q)
    return q


def rebound_on_one_path(q: str, flag: bool) -> Any:
    s = ask(q)
    out = []
    try:  # reads s from before: the binding in the if may not happen
        if flag:
            s = "1"
        out.append(int(s))
    except ValueError:
        out.append(-1)
    return out


def rebound_in_a_comprehension(q: str) -> Any:
    s = ask(q)
    out = []
    try:
        _ = [s for s in range(0)]  # the comprehension's own s
        out.append(int(s))
    except ValueError:
        out.append(-1)
    return out


def failure_before_a_try_that_reads_it(q: str, flag: bool) -> Any:
    s = ask(q)  # fails
    try:
        if flag:
            s = "1"
        n = s + "x"
    except ValueError:
        n = "caught"
        print("handler ran")  # plain Python never gets here
    return n


def print_then_exit(q: str) -> Any:
    print("result:", ask(q))
    raise SystemExit(0)


collected: list[str] = []


class ListHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        collected.append(record.getMessage())


class ContextLogger(logging.Logger):
    def _log(self, level: int, msg: object, args: Any, **kwargs: Any) -> None:
        super()._log(level, "[ctx] " + str(msg), args, **kwargs)


mine = logging.getLogger("tests.edges.mine")
mine.propagate = False
mine.setLevel(logging.INFO)
mine.addHandler(ListHandler())
subclassed = ContextLogger("tests.edges.subclassed")
subclassed.propagate = False
subclassed.setLevel(logging.INFO)
subclassed.addHandler(ListHandler())


def handler_of_yours_read_at_once(q: str) -> Any:
    collected.clear()
    mine.info("got %s", ask(q))
    return len(collected), list(collected)


def logger_class_of_yours(q: str) -> Any:
    collected.clear()
    subclassed.info("a=%s", ask(q))
    return list(collected)


class Collect:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


def file_of_yours(q: str) -> Any:
    out = Collect()
    print(ask(q), file=out)
    out.lines.append("direct")
    return out.lines


class Loud:
    def __str__(self) -> str:
        print("__str__ ran")
        return "loud"

    def __iter__(self) -> Any:
        print("__iter__ ran")
        yield 1
        yield 2


@xcs.op
def make() -> Loud:
    return Loud()


def dunders_of_yours() -> Any:
    s = str(make())
    print("after str()")
    a, b = make()
    print("after unpack")
    return s, a, b


class Box:
    def __init__(self) -> None:
        self.v = "old"

    def __repr__(self) -> str:
        return f"Box({self.v})"


@xcs.op
def box() -> Box:
    return Box()


def known_object_changed_after_print() -> Any:
    b = box()
    if b.v:  # b is known now
        pass
    print(ask("z"), b)  # waits for ask("z")
    b.v = "new"


PAIR = (1, 2)


def identity_of_a_lookup(q: str) -> Any:
    return {"a": PAIR}[ask(q)] is PAIR


CASES = [
    (rebound_on_one_path, ("x", False)),
    (rebound_in_a_comprehension, ("x",)),
    (failure_before_a_try_that_reads_it, ("bad", False)),
    (print_then_exit, ("a",)),
    (handler_of_yours_read_at_once, ("a",)),
    (logger_class_of_yours, ("a",)),
    (file_of_yours, ("a",)),
    (dunders_of_yours, ()),
    (known_object_changed_after_print, ()),
    (identity_of_a_lookup, ("a",)),
]


def _run(fn: Any, args: tuple[Any, ...]) -> tuple[Any, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            result: Any = ("value", fn(*args))
        except BaseException as error:  # noqa: BLE001 - SystemExit included, compared
            result = ("raised", type(error), str(error))
    return result, out.getvalue()


@pytest.mark.parametrize(("program", "args"), CASES, ids=[c[0].__name__ for c in CASES])
def test_jit_does_what_plain_python_does(program: Any, args: tuple[Any, ...]) -> None:
    assert _run(xcs.jit(program), args) == _run(program, args)
