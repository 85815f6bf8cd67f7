"""The ``%%xcs`` cell magic: a notebook cell's top-level code, jitted as it stands.

``%load_ext ember.xcs`` registers it. A cell starting with ``%%xcs`` runs as the
body of a function that ``xcs.trace`` rewrites and runs -- its independent calls in
parallel, values, calls and exceptions as plain Python's -- with every name the
cell binds declared ``global``, so the names land in the notebook's namespace as
running the cell plainly would leave them (pending values made concrete first). A
last expression is the cell's output, as usual. ``%%xcs --trace NAME`` also stores
the cell's :class:`~ember.xcs.Trace` under ``NAME``, to draw or print.

The cell's code is compiled under the file name ``<xcs cell N>``, its line numbers
the cell body's plus 2 (the function's ``def`` and ``global`` lines come first). In
a notebook its places are shown as the cell's, ``In [7], line 3``, the ``%%xcs``
line being line 1 (``locations.name_cell``).

What a function body cannot hold, a ``%%xcs`` cell cannot either: ``from m import
*``, a top-level ``return``, ``yield`` or ``await``, ``nonlocal``. Those raise a
``SyntaxError`` saying so.
"""

from __future__ import annotations

import ast
import io
import itertools
import linecache
import symtable
import sys
import tokenize
import types
from typing import Any

from ember.xcs._internal.locations import name_cell

__all__ = ["load_ipython_extension", "run_cell"]

_FUNCTION = "__xcs_cell__"
_counter = itertools.count(1)


def _bound_names(source: str, filename: str) -> list[str]:
    """Names the cell binds at its top level (assigned, imported, defined)."""
    table = symtable.symtable(source, filename, "exec")
    return sorted(
        s.get_name()
        for s in table.get_symbols()
        if s.is_assigned() or s.is_imported() or s.is_namespace()
    )


def _refuse(tree: ast.Module, filename: str) -> None:
    """Raise ``SyntaxError`` for what a cell may hold but a function body may not."""
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            what = "a 'from __future__' import (put it in a cell of its own)"
        elif isinstance(statement, ast.ImportFrom) and any(a.name == "*" for a in statement.names):
            what = "'from ... import *'"
        elif any(isinstance(n, _ASYNC) for n in _top_level(statement)):
            what = "top-level 'await' (xcs does not run async code yet)"
        else:
            what = ""
        if what:
            raise SyntaxError(
                f"%%xcs cannot run a cell with {what}: its code becomes a function body",
                (filename, statement.lineno, 0, ""),
            )
        for node in _top_level(statement):
            if isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom, ast.Nonlocal)):
                raise SyntaxError(
                    f"'{type(node).__name__.lower()}' outside function (in a %%xcs cell)",
                    (filename, node.lineno, 0, ""),
                )


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_ASYNC = (ast.Await, ast.AsyncFor, ast.AsyncWith)


def _column(line: str, offset: int) -> int:
    """The character index of the UTF-8 byte ``offset`` of ``line`` (ast's columns)."""
    return len(line.encode()[:offset].decode(errors="replace"))


def _without_annotations(tree: ast.Module, body: list[str]) -> None:
    """Top-level ``x: T = v`` as ``x = v`` (a global cannot be annotated in a function).

    The annotation goes to the namespace's ``__annotations__`` only in plain Python; it
    has no other effect there. ``x: T`` alone becomes ``pass``.
    """
    for statement in tree.body:
        if not isinstance(statement, ast.AnnAssign) or not statement.simple:
            continue
        first = statement.lineno - 1
        if statement.value is None:
            line = body[first]
            body[first] = line[: _column(line, statement.col_offset)] + "pass"
            continue
        target, value = statement.target, statement.value
        if target.end_lineno != statement.lineno or value.lineno != statement.lineno:
            raise SyntaxError(
                "%%xcs cannot run an annotated assignment spread over lines: "
                "write it on one line, or without the annotation",
                ("<xcs cell>", statement.lineno, 0, ""),
            )
        line = body[first]
        end = _column(line, target.end_col_offset or 0)
        body[first] = line[:end] + " = " + line[_column(line, value.col_offset) :]


def _top_level(node: ast.AST) -> list[ast.AST]:
    """``node`` and what it holds, not entering function or class bodies."""
    if isinstance(node, _SCOPES):
        return []
    found = [node]
    for child in ast.iter_child_nodes(node):
        found.extend(_top_level(child))
    return found


def _indented(source: str) -> str:
    """``source`` indented one level, except lines inside a multi-line string.

    Those lines are part of the string's value; indentation only matters where a
    line starts outside one.
    """
    inside: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source + "\n").readline):
        (first, _), (last, _) = token.start, token.end
        if last > first and token.type != tokenize.NL and token.type != tokenize.NEWLINE:
            inside.update(range(first + 1, last + 1))
    return "\n".join(
        line if number in inside else "    " + line
        for number, line in enumerate(source.split("\n"), 1)
    )


def cell_function(source: str, namespace: dict[str, Any]) -> Any:
    """The cell as a function whose globals are ``namespace`` (and whose source is known).

    Args:
        source: The cell's Python code (IPython syntax already transformed).
        namespace: The notebook's namespace: the function's globals.

    Raises:
        SyntaxError: The cell does not parse, or holds what a function body cannot.
    """
    filename = f"<xcs cell {next(_counter)}>"
    tree = ast.parse(source, filename)
    _refuse(tree, filename)
    names = _bound_names(source, filename)
    body = source.split("\n")  # as the tokenizer splits lines (not at \x0c or \u2028)
    _without_annotations(tree, body)
    if tree.body and isinstance(tree.body[-1], ast.Expr):  # the cell's output
        last = tree.body[-1]
        start, end = last.lineno - 1, (last.end_lineno or last.lineno) - 1
        close = _column(body[end], last.end_col_offset or 0)
        if not body[end][close:].lstrip().startswith(";"):  # a trailing ';' hides it
            body[end] = body[end][:close] + ")" + body[end][close:]
            col = _column(body[start], last.col_offset)
            body[start] = body[start][:col] + "return (" + body[start][col:]
    header = [f"def {_FUNCTION}():", f"    global {', '.join(names)}" if names else "    pass"]
    text = "\n".join([*header, _indented("\n".join(body)), "    pass"]) + "\n"
    lines = [line + "\n" for line in text.split("\n")[:-1]]
    linecache.cache[filename] = (len(text), None, lines, filename)
    code = compile(text, filename, "exec")
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)
    return scope[_FUNCTION]


def run_cell(
    source: str,
    namespace: dict[str, Any],
    trace_name: str | None = None,
    count: int | None = None,
    first_line: int = 2,
) -> Any:
    """Run a cell's code traced; return its last expression's value (None if none).

    Args:
        source: The cell's Python code.
        namespace: The namespace it runs in (and binds its names in).
        trace_name: If given, the cell's trace is stored in ``namespace`` under it.
        count: The notebook cell's execution count, to show its places as the
            cell's (``In [7], line 3``); None outside a notebook.
        first_line: The cell's line number of the first line of ``source``.
    """
    from ember.xcs._trace import trace

    fn = cell_function(source, namespace)
    if count is not None:  # the code's line 3 is the source's line 1
        name_cell(fn.__code__.co_filename, count, first_line - 3)
    traced = trace(fn)
    if trace_name:
        namespace[trace_name] = traced
    return traced.result


def _blank_lines(text: str) -> int:
    """How many lines at the start of ``text`` hold only whitespace."""
    lines = text.split("\n")
    return next((i for i, line in enumerate(lines) if line.strip()), len(lines))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ember.xcs``: register the ``%%xcs`` cell magic."""

    def xcs(line: str, cell: str) -> Any:
        """Run this cell's code with @jit: independent calls at the same time.

        Usage: ``%%xcs`` or ``%%xcs --trace NAME`` (keeps the cell's trace in NAME).
        """
        words = line.split()
        trace_name = None
        if words[:1] == ["--trace"] and len(words) == 2 and words[1].isidentifier():
            trace_name = words[1]
        elif words:
            from IPython.core.error import UsageError

            raise UsageError(f"%%xcs takes no arguments but '--trace NAME', got {line!r}")
        source = ipython.transform_cell(cell)
        # The %%xcs line is the cell's line 1; IPython drops the body's leading blank
        # lines (they shift the rest down).
        skipped = _blank_lines(cell) - _blank_lines(source)
        count = _running_count(ipython)
        return run_cell(source, ipython.user_ns, trace_name, count, 2 + skipped)

    ipython.register_magic_function(xcs, magic_kind="cell", magic_name="xcs")


def _running_count(ipython: Any) -> int:
    """The execution count of the cell running the magic, as its ``In [N]`` shows it.

    The cell's own code, up the stack, was compiled under a file name the shell maps
    to its count. ``execution_count`` is not it in every version: IPython 8 counts
    the running cell there, IPython 9 the next one.
    """
    names = getattr(getattr(ipython, "compile", None), "_filename_map", None)
    frame: types.FrameType | None = sys._getframe(1)
    while isinstance(names, dict) and frame is not None:
        count = names.get(frame.f_code.co_filename)
        if isinstance(count, int):
            return count
        frame = frame.f_back
    count = ipython.execution_count
    return int(count) if isinstance(count, int) else 0
