"""The ``%%xcs`` cell magic in a real IPython shell: a cell's top-level code, jitted.

Its names land in the namespace as running the cell plainly leaves them, its last
expression is its output, its calls overlap, and what a function body cannot hold is
refused with a ``SyntaxError``. (The notebooks run it on a real kernel too.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ember import xcs
from tests.helpers import LOG, logged

IPython = pytest.importorskip("IPython")


@logged("ask")
def ask(prompt: str) -> str:
    time.sleep(0.1)
    return prompt.upper()


@pytest.fixture
def shell() -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "ember.xcs")
    ip.user_ns.update({"ask": ask, "xcs": xcs})
    yield ip
    InteractiveShell.clear_instance()


CELL = '''\
answers = [ask(f"q{i}") for i in range(4)]
count = count + 1
note = """two
   lines"""
if answers[0]:
    verdict = ask("judge " + answers[-1])
import json as js
def twice(x):
    return x * 2
answers[0] + note'''


def _run(ip: Any, cell: str, line: str = "") -> Any:
    result = ip.run_cell(f"%%xcs {line}\n{cell}".rstrip(" "))
    if result.error_in_exec is not None:
        raise result.error_in_exec
    if result.error_before_exec is not None:
        raise result.error_before_exec
    return result.result


def test_a_cell_leaves_its_names_as_plain_python_does_and_overlaps(shell: Any) -> None:
    plain: dict[str, Any] = {"ask": ask, "count": 1}
    exec(CELL, plain)
    shell.user_ns["count"] = 1
    LOG.clear()
    out = _run(shell, CELL, "--trace cell_trace")
    ns = shell.user_ns
    for name in ("answers", "count", "note", "verdict"):
        assert ns[name] == plain[name], name
    assert ns["js"].__name__ == "json" and ns["twice"](3) == 6
    assert out == plain["answers"][0] + plain["note"]  # the last expression: Out
    assert LOG.max_overlap() == 4  # the four questions at once
    assert isinstance(ns["cell_trace"], xcs.Trace)
    assert [len(g) for g in ns["cell_trace"].parallel_groups] == [4, 1]


def test_ipython_syntax_inside_the_cell_still_works(shell: Any) -> None:
    import os

    _run(shell, 'x = ask("a")\nhere = %pwd\nz = x + here')
    assert shell.user_ns["z"] == "A" + os.getcwd()


def test_exceptions_are_the_plain_ones(shell: Any) -> None:
    with pytest.raises(ZeroDivisionError):
        _run(shell, 'a = ask("x")\nb = len(a) / 0')
    assert shell.user_ns["a"] == "X"  # bound before the failing line, as plainly


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("from json import *", "import \\*"),
        ("return 3", "'return' outside function"),
        ("await thing()", "await"),
    ],
)
def test_what_a_function_cannot_hold_is_refused(shell: Any, cell: str, words: str) -> None:
    with pytest.raises(SyntaxError, match=words):
        _run(shell, cell)


def test_bad_magic_arguments_say_what_is_accepted(shell: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--trace NAME"):
        shell.run_cell_magic("xcs", "--fast", "x = 1")


@pytest.mark.parametrize(
    ("cell", "output", "names"),
    [
        ("x = 1\nx;", None, {"x": 1}),  # a trailing ';' hides the output, as in IPython
        ("results: list[str] = []\nn: int\nresults.append('é')\nresults", ["é"], {}),
        ("import asyncio\nasync def f():\n    await asyncio.sleep(0)\n'defined'", "defined", {}),
        ("s = 'héllo'; s", "héllo", {"s": "héllo"}),  # columns count characters
        ("t = 'a\x0cb'\nt", "a\x0cb", {}),  # lines end at newlines only
        ("y = (1 +\n 2)  # c\ny  # comment", 3, {"y": 3}),
    ],
)
def test_cells_that_run_plainly_run_under_the_magic(
    shell: Any, cell: str, output: Any, names: dict[str, Any]
) -> None:
    plain: dict[str, Any] = {}
    exec(cell.rsplit("\n", 1)[0] if output is not None else cell, plain)
    assert _run(shell, cell) == output
    for name, value in names.items():
        assert shell.user_ns[name] == value


def test_a_future_import_is_refused_with_what_to_do(shell: Any) -> None:
    with pytest.raises(SyntaxError, match="cell of its own"):
        _run(shell, "from __future__ import annotations\nx = 1")


@pytest.mark.parametrize("blank", ["", "\n", "\n  \n"], ids=["none", "one", "two"])
def test_places_in_a_cell_read_as_the_notebook_numbers_its_lines(shell: Any, blank: str) -> None:
    # The %%xcs line is line 1; blank lines IPython drops still count.
    result = shell.run_cell(f"%%xcs --trace t\n{blank}a = ask('a')\nb = ask(a)", store_history=True)
    assert result.success, result.error_in_exec
    count, first = result.execution_count, 2 + blank.count("\n")
    ops = [a for _, a in shell.user_ns["t"].graph.nodes(data=True) if a["kind"] == "op"]
    assert [a["location"] for a in ops] == [
        f"In [{count}], line {first}",
        f"In [{count}], line {first + 1}",
    ]
