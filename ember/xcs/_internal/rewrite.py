"""The call-site rewrite: what changes in a user function's source, and why.

Applied to a copy of the function's AST by ``source.make_twin``; every node keeps its
line and column, so tracebacks and warnings point at the user's code. Helpers are
reached through the global name ``@xcs`` (the dispatcher module), which no user code
can write or shadow; the rewrite adds no local variables, so ``locals()`` shows what
it showed.

Calls: ``f(a, *b, k=c, **d)`` becomes
``@xcs.callee(f)(*@xcs.args(a, *b), **@xcs.kwargs(k=c, **d))`` -- evaluated in the
same order, called from the same frame (see ``dispatch.py``). ``f()`` becomes
``@xcs.call0(f)()``. Calls of builtins that read the calling frame (``super()``,
``locals()``, ``vars()``, ``globals()``, ``dir()``, ``eval``, ``exec``) are left alone.
"""

from __future__ import annotations

import ast

__all__ = ["FRAME_BUILTINS", "HELPERS", "rewrite_function"]

HELPERS = "@xcs"
"""The global name under which rewritten code finds the dispatcher."""

FRAME_BUILTINS = frozenset(
    {"super", "locals", "vars", "globals", "dir", "eval", "exec", "breakpoint"}
)
"""Builtins that read or change the calling frame: their calls are never rewritten."""


def _helper(name: str, like: ast.AST) -> ast.Attribute:
    node = ast.Attribute(value=ast.Name(id=HELPERS, ctx=ast.Load()), attr=name, ctx=ast.Load())
    return ast.copy_location(node, like)


def _call(
    helper: str, args: list[ast.expr], keywords: list[ast.keyword], like: ast.AST
) -> ast.Call:
    call = ast.Call(func=_helper(helper, like), args=args, keywords=keywords)
    return ast.copy_location(call, like)


class _Rewriter(ast.NodeTransformer):
    def __init__(self, local_names: set[str]) -> None:
        self.local_names = local_names  # names that shadow builtins in this function

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Name)
            and func.id in FRAME_BUILTINS
            and func.id not in self.local_names
        ):
            return node
        if not node.args and not node.keywords:
            node.func = _call("call0", [func], [], func)
            return node
        node.func = _call("callee", [func], [], func)
        if node.args:
            which = "args" if node.keywords else "args_last"
            packed = _call(which, node.args, [], node)
            node.args = [ast.copy_location(ast.Starred(value=packed, ctx=ast.Load()), node)]
        if node.keywords:
            packed = _call("kwargs", [], node.keywords, node)
            node.keywords = [ast.keyword(arg=None, value=packed)]
        return node


def _assigned_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
        elif isinstance(child, ast.arg):
            names.add(child.arg)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(child.name)
    return names


def rewrite_function(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
    """Rewrite a function's body in place (its decorators and defaults are left alone)."""
    rewriter = _Rewriter(_assigned_names(node))
    if isinstance(node, ast.Lambda):
        node.body = rewriter.visit(node.body)
    else:
        node.body = [rewriter.visit(statement) for statement in node.body]
    ast.fix_missing_locations(node)
