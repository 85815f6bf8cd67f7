"""The rewrite of ``async def`` bodies: waits become awaits (run time: ``dispatch/awaits.py``).

After the rewrite every function gets (``expressions.py``, ``statements.py``), an
``async def``'s own code -- not the sync functions, lambdas, classes or generator
expressions nested in it -- changes twice more:

* every helper call that may wait for values, ``@xcs.h(a, b)``, becomes
  ``await @xcs.asynced(@xcs.h, a, b)``, and a call through the call protocol,
  ``@xcs.callee(f)(*@xcs.args_last(a))``, becomes
  ``await @xcs.asynced(@xcs.callee(f), *...)``: the arguments are evaluated once, by
  the user's frame, and the helper can be called again after the wait;
* every ``await E`` becomes ``await @xcs.awaited(E)``: an async op's call is recorded
  there, and a pending value awaits nothing;
* every value the interpreter tests for truth in the user's frame (the test of ``if``,
  ``while``, ``assert`` and ``a if t else b``, a comprehension's ``if``, the operand of
  ``not``, each tested operand of ``and``/``or``) and a ``match`` subject is made
  known first, ``await @xcs.asynced(@xcs.ready, t)``, unless the common rewrite already
  sent it through ``@xcs.truth`` (which ``asynced`` makes known): otherwise its
  ``__bool__`` would wait with the loop blocked.
"""

from __future__ import annotations

import ast

from ember.xcs._internal.rewrite.emit import helper, helper_call, helper_name, helper_named

__all__ = ["rewrite_awaits"]

# Helpers that never wait, or must run in the user's own frame: left as they are.
_AS_IS = frozenset({"entered", "callee", "enter", "leave", "asynced", "awaited"})


def _awaited(call: ast.Call, like: ast.AST) -> ast.Await:
    return ast.copy_location(ast.Await(value=call), like)


def _known(test: ast.expr) -> bool:
    """Whether ``test`` is ``await @xcs.asynced(@xcs.truth or @xcs.ready, ...)``: known."""
    if not (isinstance(test, ast.Await) and isinstance(test.value, ast.Call)):
        return False
    waited = test.value
    return (
        helper_name(waited) == "asynced"
        and bool(waited.args)
        and helper_named(waited.args[0]) in ("truth", "ready")
    )


class _AsyncWaits(ast.NodeTransformer):
    """Rewrites the helper calls and awaits of one async scope (see the module docstring)."""

    def __init__(self) -> None:
        self.inside = False  # in an async function's own code

    def _sync_scope(self, node: ast.AST) -> ast.AST:
        saved, self.inside = self.inside, False
        try:
            self.generic_visit(node)
        finally:
            self.inside = saved
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        for part in (*node.decorator_list, *node.args.defaults, *node.args.kw_defaults):
            if part is not None:
                self.visit(part)  # evaluated in the enclosing scope (results unused here)
        saved, self.inside = self.inside, False
        try:
            node.body = [self.visit(statement) for statement in node.body]
        finally:
            self.inside = saved
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        saved, self.inside = self.inside, True
        try:
            node.body = [self.visit(statement) for statement in node.body]
        finally:
            self.inside = saved
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return self._sync_scope(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return self._sync_scope(node)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.AST:
        return self._sync_scope(node)  # an await inside would make it an async generator

    def _ready(self, value: ast.expr) -> ast.expr:
        """``await @xcs.asynced(@xcs.ready, value)``: a value used at once, known first."""
        return _awaited(helper_call("asynced", [helper("ready", value), value], value), value)

    def _tested(self, test: ast.expr) -> ast.expr:
        """A test made known before the interpreter calls its ``__bool__``."""
        if _known(test):
            return test
        return self._ready(test)

    def visit_If(self, node: ast.If | ast.While | ast.IfExp | ast.Assert) -> ast.AST:
        self.generic_visit(node)
        if self.inside:
            node.test = self._tested(node.test)
        return node

    visit_While = visit_IfExp = visit_Assert = visit_If

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self.inside:  # the last operand is returned, not tested
            node.values = [*map(self._tested, node.values[:-1]), node.values[-1]]
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if self.inside and isinstance(node.op, ast.Not):
            node.operand = self._tested(node.operand)
        return node

    def visit_Match(self, node: ast.Match) -> ast.AST:
        self.generic_visit(node)
        if self.inside:
            node.subject = self._ready(node.subject)
        return node

    def visit_For(self, node: ast.For | ast.AsyncFor) -> ast.AST:
        self.generic_visit(node)
        if self.inside:
            node.iter = self._ready(node.iter)
        return node

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> ast.AST:
        self.generic_visit(node)
        if self.inside:
            for item in node.items:
                item.context_expr = self._ready(item.context_expr)
        return node

    visit_AsyncWith = visit_With

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.DictComp) -> ast.AST:
        self.generic_visit(node)
        if self.inside:
            for generator in node.generators:
                generator.iter = self._ready(generator.iter)
                generator.ifs = [self._tested(test) for test in generator.ifs]
        return node

    visit_SetComp = visit_ListComp
    visit_DictComp = visit_ListComp

    def visit_Await(self, node: ast.Await) -> ast.AST:
        self.generic_visit(node)
        if not self.inside:
            return node
        node.value = helper_call("awaited", [node.value], node.value)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if not self.inside:
            self.generic_visit(node)
            return node
        protocol = helper_name(node.func)
        if protocol is not None:  # @xcs.callee(f)(...) or @xcs.call0(m)()
            callee = node.func
            assert isinstance(callee, ast.Call)
            callee.args = [self.visit(a) for a in callee.args]
            callee.keywords = [self.visit(k) for k in callee.keywords]
            node.args = [self.visit(a) for a in node.args]
            node.keywords = [self.visit(k) for k in node.keywords]
            if protocol == "call0":  # the method to call: waiting for it is call0's part
                waited = helper_call("asynced", [callee.func, *callee.args], callee)
                callee = _awaited(waited, callee)
            return _awaited(helper_call("asynced", [callee, *node.args], node, node.keywords), node)
        name = helper_name(node)
        self.generic_visit(node)
        if name is None or name in _AS_IS:
            return node
        assert isinstance(node.func, ast.Attribute)
        return _awaited(helper_call("asynced", [node.func, *node.args], node, node.keywords), node)


def rewrite_awaits(node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Rewrite the ``async def`` code in a function in place (after the common rewrite).

    The function itself, if it is an ``async def``, and any nested in it.
    """
    waits = _AsyncWaits()
    waits.inside = isinstance(node, ast.AsyncFunctionDef)
    node.body = [waits.visit(statement) for statement in node.body]
