"""How rewritten code reaches the dispatcher: the ``@xcs`` name and calls of its helpers.

Rewritten code finds the dispatcher (``dispatch/``) under the global name
:data:`HELPERS`, which no Python code can write or shadow, and calls its helpers by
attribute: ``@xcs.callee(f)``, ``@xcs.store(v)``. Both visitors (``expressions.py``,
``statements.py``) build those calls here; the names they use are exactly
``dispatch.__all__`` (a test checks it over the rewritten output of the rewrite's test
corpus). Every node made here takes the position of the node it stands in for.
"""

from __future__ import annotations

import ast

__all__ = ["HELPERS", "helper", "helper_call", "helper_name", "helper_named", "is_helper_call"]

HELPERS = "@xcs"
"""The global name under which rewritten code finds the dispatcher."""


def helper(name: str, like: ast.AST) -> ast.Attribute:
    """``@xcs.<name>``, the helper itself, placed where ``like`` is."""
    module = ast.copy_location(ast.Name(id=HELPERS, ctx=ast.Load()), like)
    return ast.copy_location(ast.Attribute(value=module, attr=name, ctx=ast.Load()), like)


def helper_call(
    name: str, args: list[ast.expr], like: ast.AST, keywords: list[ast.keyword] | None = None
) -> ast.Call:
    """``@xcs.<name>(*args, **keywords)``, placed where ``like`` is."""
    func = helper(name, like)
    return ast.copy_location(ast.Call(func=func, args=args, keywords=keywords or []), like)


def helper_named(node: ast.expr) -> str | None:
    """``name`` when ``node`` is the helper ``@xcs.<name>`` itself (not a call of it)."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == HELPERS
    ):
        return node.attr
    return None


def helper_name(node: ast.expr) -> str | None:
    """``name`` when ``node`` is a call of the helper ``@xcs.<name>`` the rewrite made."""
    return helper_named(node.func) if isinstance(node, ast.Call) else None


def is_helper_call(node: ast.expr, name: str) -> bool:
    """Whether ``node`` is a call of the helper ``@xcs.<name>`` the rewrite made."""
    return helper_name(node) == name
