"""The ``%%xcs`` cell magic: a notebook cell's top-level code, jitted as it stands.

``%load_ext ember.xcs`` registers it. A cell starting with ``%%xcs`` runs as the
body of a function that ``xcs.trace`` rewrites and runs -- its independent calls in
parallel, values, calls and exceptions as plain Python's -- with every name the
cell binds declared ``global``, so the names land in the notebook's namespace as
running the cell plainly would leave them (pending values made concrete first). A
last expression is the cell's output, as usual. ``%%xcs --trace NAME`` also stores
the cell's :class:`~ember.xcs.Trace` under ``NAME``, to draw or print.

Line numbers in the cell's trace are the cell's own plus 2 (the function's ``def``
and ``global`` lines come first); the file is named ``<xcs cell N>``.

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
import tokenize
from typing import Any

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
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            what = "'from ... import *'"
        elif isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            what = "top-level 'await' (xcs does not run async code yet)"
        else:
            continue
        raise SyntaxError(
            f"%%xcs cannot run a cell with {what}: its code becomes a function body",
            (filename, getattr(node, "lineno", 1), 0, ""),
        )
    for statement in tree.body:
        for node in _top_level(statement):
            if isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom, ast.Nonlocal)):
                raise SyntaxError(
                    f"'{type(node).__name__.lower()}' outside function (in a %%xcs cell)",
                    (filename, node.lineno, 0, ""),
                )


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


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
        for number, line in enumerate(source.splitlines(), 1)
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
    body = source.splitlines() or ["pass"]
    if tree.body and isinstance(tree.body[-1], ast.Expr):  # the cell's output
        last = tree.body[-1]
        start, end = last.lineno - 1, (last.end_lineno or last.lineno) - 1
        body[start] = body[start][: last.col_offset] + "return (" + body[start][last.col_offset :]
        body[end] = body[end] + "\n)"
    header = [f"def {_FUNCTION}():", f"    global {', '.join(names)}" if names else "    pass"]
    text = "\n".join([*header, _indented("\n".join(body)), "    pass"]) + "\n"
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    code = compile(text, filename, "exec")
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)
    return scope[_FUNCTION]


def run_cell(source: str, namespace: dict[str, Any], trace_name: str | None = None) -> Any:
    """Run a cell's code traced; return its last expression's value (None if none).

    Args:
        source: The cell's Python code.
        namespace: The namespace it runs in (and binds its names in).
        trace_name: If given, the cell's trace is stored in ``namespace`` under it.
    """
    from ember.xcs._trace import trace

    fn = cell_function(source, namespace)
    traced = trace(fn)
    if trace_name:
        namespace[trace_name] = traced
    return traced.result


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
        return run_cell(source, ipython.user_ns, trace_name)

    ipython.register_magic_function(xcs, magic_kind="cell", magic_name="xcs")
