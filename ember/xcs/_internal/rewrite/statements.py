"""The statement part of the rewrite: exception scopes and stores that outlive a call.

Exception scopes are sync points, so an op's failure is raised where plain Python
raises it (DESIGN.md, section 5, item 2):

* Before a ``try`` statement and before a ``with`` statement's context expression,
  everything pending is materialized: a failure from before never reaches the
  block's handlers or ``__exit__``.
* Inside a ``try`` body, each statement materializes before it binds or stores a
  value (``y = ask(q)`` leaves ``y`` untouched when ``ask`` fails), and after each
  expression statement. The same holds for stores made by code the body calls: a
  per-thread depth tells rewritten code it runs inside a ``try`` body.
* At the end of a ``with`` body, and before ``return``/``break``/``continue`` that
  leave it, everything pending is materialized, so ``__exit__`` sees an op's failure.
* When an exception leaves a ``try`` or ``with`` body, what is pending is
  materialized first, and an op that failed earlier in program order wins.

So a ``try`` body runs its statements one after another; ops within one statement
still run together (``a, b = ask(x), ask(y)``, a comprehension).

Stores: assignments to attributes and subscripts route the assigned value through
``@xcs.store`` and the target object through ``@xcs.holder``, keeping Python's
evaluation order (value first, then the target); an object that receives a pending
value is remembered and made concrete at exit. Assignments to names declared
``global`` are remembered the same way. Augmented assignments (``obj.n += v``) may
make a pending value from a pending target even when ``v`` is concrete, so their
target object (or the module's globals) is remembered whenever a trace is active.

A ``yield`` inside a ``try`` or ``with`` body hands a value out of the block, so it
is a store too: what is pending runs first and the value yielded is concrete.
``del obj.name`` and ``del obj[k]`` change ``obj``: calls still pending that read
``obj`` (they got it by reference) run first.

Generated statements reuse the position of the statement they guard.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from ember.xcs._internal.rewrite.emit import HELPERS, helper_call, is_helper_call

__all__ = ["rewrite_statements"]

Helper = Callable[[str, list[ast.expr], ast.AST], ast.Call]
"""Builds ``@xcs.<name>(*args)`` where a node is (``emit.helper_call``)."""


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


class _Scopes(ast.NodeTransformer):
    def __init__(self, helper: Helper, global_names: set[str]) -> None:
        self.helper = helper
        self.global_names = global_names

    def generic_visit(self, node: ast.AST) -> ast.AST:
        """Visit statement blocks only: expressions hold no statements to rewrite."""
        for field in _BLOCKS:
            block = getattr(node, field, None)
            if type(block) is list:  # a lambda's or an if-expression's body is not a block
                setattr(node, field, [s for item in block for s in _as_list(self.visit(item))])
        return node

    # --- building blocks -----------------------------------------------------------

    def _sync(self, like: ast.AST) -> ast.stmt:
        return ast.copy_location(ast.Expr(value=self.helper("sync", [], like)), like)

    def _guard(self, body: list[ast.stmt], like: ast.AST, *, scope: bool) -> list[ast.stmt]:
        """``try: body except BaseException: settle(); raise`` (and the try depth)."""
        settle = ast.copy_location(ast.Expr(value=self.helper("settle", [], like)), like)
        handler = ast.ExceptHandler(
            type=ast.copy_location(ast.Name(id="BaseException", ctx=ast.Load()), like),
            name=None,
            body=[settle, ast.copy_location(ast.Raise(exc=None, cause=None), like)],
        )
        kind: list[ast.expr] = [ast.copy_location(ast.Constant(scope), like)]
        body = [ast.copy_location(ast.Expr(value=self.helper("enter", kind, like)), like), *body]
        final: list[ast.stmt] = [
            ast.copy_location(ast.Expr(value=self.helper("leave", kind, like)), like)
        ]
        guarded = ast.Try(
            body=body, handlers=[ast.copy_location(handler, like)], orelse=[], finalbody=final
        )
        return [ast.copy_location(guarded, like)]

    def _scope_sync(self, node: ast.Try | ast.TryStar | ast.With) -> ast.stmt:
        """``@xcs.scope_sync(names)``: a sync before the statement, unless its body is clear."""
        names = _reads(node)
        # At the statement's first line (``try:``): a node spanning the whole statement
        # would put the call's line at its end (3.11+ places an attribute's load there).
        head = ast.Pass(
            lineno=node.lineno,
            col_offset=node.col_offset,
            end_lineno=node.lineno,
            end_col_offset=node.col_offset,
        )
        constant = ast.copy_location(ast.Constant(names), head)  # type: ignore[arg-type]
        return ast.copy_location(ast.Expr(value=self.helper("scope_sync", [constant], head)), head)

    # --- exception scopes --------------------------------------------------------------

    def _scope_end(self, node: ast.Try | ast.TryStar | ast.With) -> ast.stmt:
        """``@xcs.scope_end()``: after a clear block, a failure held inside it is raised."""
        return ast.copy_location(ast.Expr(value=self.helper("scope_end", [], node)), node)

    def visit_Try(self, node: ast.Try) -> list[ast.stmt]:
        self.generic_visit(node)
        before = self._scope_sync(node)
        _YieldsStore(self.helper).visit_block(node.body)
        node.body = self._guard(_each_statement(node.body, self), node, scope=True)
        return [before, node, self._scope_end(node)]

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_With(self, node: ast.With) -> list[ast.stmt]:
        self.generic_visit(node)
        before = self._scope_sync(node)
        _YieldsStore(self.helper).visit_block(node.body)
        body = _leaving(node.body, self)
        body.append(self._sync(node.body[-1] if node.body else node))
        node.body = self._guard(body, node, scope=False)
        return [before, node, self._scope_end(node)]

    # --- stores ----------------------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> ast.stmt:
        self.generic_visit(node)
        if any(self._outlives(t) for t in node.targets):
            node.value = self._stored(node.value, node.targets)
            node.targets = [self._hold(t) for t in node.targets]
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        self.generic_visit(node)
        if node.value is not None and self._outlives(node.target):
            node.value = self._stored(node.value, [node.target])
            node.target = self._hold(node.target)  # type: ignore[assignment]
        return node

    def _stored(self, value: ast.expr, targets: list[ast.expr]) -> ast.expr:
        """``@xcs.store(value)``, or ``@xcs.store_global(value, names)`` for globals."""
        names = tuple(sorted({n for t in targets for n in self._global_names(t)}))
        if not names:
            return self.helper("store", [value], value)
        constant = ast.copy_location(ast.Constant(names), value)  # type: ignore[arg-type]
        return self.helper("store_global", [value, constant], value)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        """``obj.n += v``: the result may be pending even when ``v`` is not.

        ``name += v`` and ``name |= v`` extend a list or dict in place -- perhaps one
        the caller holds -- so they become ``name = @xcs.iadd(name, v)`` (or ``ior``):
        the same loads, in the same order, and the object extended is remembered
        (unless ``v`` is a constant: ``i += 1`` stays as it is).
        """
        target = node.target
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            # With a value that may be pending, the current value's own operator must
            # not get the proxy: @xcs.augmented hands the operator a concrete one.
            helper = "kept" if _constant(node.value) else "augmented"
            target.value = self.helper(helper, [target.value], target.value)
        elif isinstance(target, ast.Name) and target.id in self.global_names:
            name = ast.copy_location(ast.Constant(target.id), target)
            node.value = self.helper("kept_globals", [node.value, name], node.value)
        elif (
            isinstance(target, ast.Name)
            and isinstance(node.op, (ast.Add, ast.BitOr))
            and not isinstance(node.value, ast.Constant)
        ):
            helper = "iadd" if isinstance(node.op, ast.Add) else "ior"
            current = ast.copy_location(ast.Name(id=target.id, ctx=ast.Load()), target)
            value = self.helper(helper, [current, node.value], node)
            assign = ast.Assign(targets=[target], value=value)
            return ast.copy_location(assign, node)
        return node

    def visit_Delete(self, node: ast.Delete) -> ast.stmt:
        """``del obj.name``, ``del obj[k]``: a change; pending readers of ``obj`` run first."""
        for target in node.targets:
            for part in _parts(target):
                if isinstance(part, (ast.Attribute, ast.Subscript)):
                    part.value = self.helper("changing", [part.value], part.value)
        return node

    def _global_names(self, target: ast.expr) -> list[str]:
        """The names declared ``global`` that ``target`` binds."""
        if isinstance(target, ast.Name):
            return [target.id] if target.id in self.global_names else []
        if isinstance(target, (ast.Tuple, ast.List)):
            return [n for t in target.elts for n in self._global_names(t)]
        return self._global_names(target.value) if isinstance(target, ast.Starred) else []

    def _outlives(self, target: ast.expr) -> bool:
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            return True
        if isinstance(target, ast.Name):
            return target.id in self.global_names
        if isinstance(target, (ast.Tuple, ast.List)):
            return any(self._outlives(t) for t in target.elts)
        if isinstance(target, ast.Starred):
            return self._outlives(target.value)
        return False

    def _hold(self, target: ast.expr) -> ast.expr:
        """The target, with the object it stores into passed through ``@xcs.holder``."""
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            target.value = self.helper("holder", [target.value], target.value)
        elif isinstance(target, ast.Name) and target.id in self.global_names:
            return target  # globals are remembered by store() through the frame's globals
        elif isinstance(target, (ast.Tuple, ast.List)):
            target.elts = [self._hold(t) for t in target.elts]
        elif isinstance(target, ast.Starred):
            target.value = self._hold(target.value)
        return target

    # Nested scopes are rewritten when they are defined: their own globals apply.
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.stmt:
        inner = _Scopes(self.helper, _declared_globals(node))
        node.body = [s for statement in node.body for s in _as_list(inner.visit(statement))]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> ast.expr:
        return node


# --- what a try or with body reads (is it clear? see dispatch/clear.py) ---------------

_NEVER_CLEAR = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.Yield,
    ast.YieldFrom,
    ast.Await,
    ast.Global,
    ast.Nonlocal,
    ast.AsyncFor,
    ast.AsyncWith,
)

# Builtins that reach names or code no list of names can show.
_FRAME_READERS = frozenset(
    {"eval", "exec", "compile", "locals", "globals", "vars", "dir", "__import__", "breakpoint"}
)


class _Reads(ast.NodeVisitor):
    """The names a block reads that may hold a value from before it.

    A name counts as computed inside the block only once a statement at the top level
    of the block has bound it (an assignment, or the block's own ``with ... as``): a
    binding inside an ``if``, a loop, a comprehension or a handler may not happen, so
    the name may still hold what it held before. ``never`` is set by constructs whose
    reach no list of names shows.
    """

    def __init__(self) -> None:
        self.read: dict[str, None] = {}
        self.bound: set[str] = set()
        self.never = False

    def statement(self, node: ast.stmt) -> None:
        """One statement at the top level of the block: reads first, then bindings."""
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self.visit_Name(ast.Name(id=node.target.id, ctx=ast.Load()))  # x += 1 reads x
        self.visit(node)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self.bind(target)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            self.bind(node.target)

    def bind(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.bound.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.bind(element)
        elif isinstance(target, ast.Starred):
            self.bind(target.value)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == HELPERS or not isinstance(node.ctx, ast.Load):
            return
        if node.id in _FRAME_READERS:
            self.never = True
        if node.id not in self.bound:
            self.read[node.id] = None

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, _NEVER_CLEAR):
            self.never = True
            return
        super().generic_visit(node)


def _reads(node: ast.Try | ast.TryStar | ast.With) -> tuple[str, ...] | None:
    """What the body of ``node`` reads from before it (the with items too), or None.

    None: the body can never be clear (see :class:`_Reads`).
    """
    reads = _Reads()
    if isinstance(node, ast.With):
        for item in node.items:
            reads.visit(item.context_expr)
            if item.optional_vars is not None:
                reads.visit(item.optional_vars)  # obj.attr as a target reads obj
                reads.bind(item.optional_vars)
    for statement in node.body:
        reads.statement(statement)
    return None if reads.never else tuple(reads.read)


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant)


def _parts(target: ast.expr) -> list[ast.expr]:
    """The single targets of a (possibly unpacking) target."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return [part for element in target.elts for part in _parts(element)]
    if isinstance(target, ast.Starred):
        return _parts(target.value)
    return [target]


class _YieldsStore(ast.NodeTransformer):
    """In a ``try`` or ``with`` body, ``yield x`` hands out a value: it is a store.

    ``yield x`` becomes ``yield @xcs.now(x)`` and ``yield from g`` becomes
    ``yield from @xcs.each_now(g)``: what is pending runs first, so an op's failure
    is raised inside the block (its ``except`` or ``__exit__`` sees it), not later
    in the consumer. Nested functions and classes are not this body's.
    """

    def __init__(self, helper: Helper) -> None:
        self.helper = helper

    def visit_block(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self.visit(statement)

    def visit_Yield(self, node: ast.Yield) -> ast.AST:
        self.generic_visit(node)
        if node.value is not None and not is_helper_call(node.value, "now"):
            node.value = self.helper("now", [node.value], node.value)
        return node

    def visit_YieldFrom(self, node: ast.YieldFrom) -> ast.AST:
        self.generic_visit(node)
        if not is_helper_call(node.value, "each_now"):
            node.value = self.helper("each_now", [node.value], node.value)
        return node

    def _nested(self, node: ast.AST) -> ast.AST:
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _nested


def _each_statement(body: list[ast.stmt], scopes: _Scopes) -> list[ast.stmt]:
    """The ``try`` body rule: materialize before each bind or store, after each statement."""
    helper = scopes.helper
    out: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            if statement.value is not None:
                statement.value = helper("now", [statement.value], statement.value)
            out.append(statement)
        elif isinstance(statement, ast.Return):
            value = statement.value or ast.copy_location(ast.Constant(None), statement)
            statement.value = helper("now", [value], statement)
            out.append(statement)
        elif isinstance(statement, (ast.Break, ast.Continue)):
            out += [scopes._sync(statement), statement]
        elif isinstance(statement, ast.Expr):
            out += [statement, scopes._sync(statement)]
        elif isinstance(statement, (ast.If, ast.For, ast.While)):
            statement.body = _each_statement(statement.body, scopes)
            statement.orelse = _each_statement(statement.orelse, scopes)
            out.append(statement)
        else:  # defs, nested try/with (guarded themselves), pass, del, global, import...
            out.append(statement)
    return out


def _leaving(body: list[ast.stmt], scopes: _Scopes, loops: int = 0) -> list[ast.stmt]:
    """The ``with`` body rule: materialize before ``return``, ``break`` or ``continue``.

    Only a ``break``/``continue`` that leaves the block counts, not one that stays
    in a loop inside it.
    """
    helper = scopes.helper
    out: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, ast.Return):
            value = statement.value or ast.copy_location(ast.Constant(None), statement)
            statement.value = helper("now", [value], statement)
        elif isinstance(statement, (ast.Break, ast.Continue)) and loops == 0:
            out.append(scopes._sync(statement))
        elif isinstance(statement, (ast.For, ast.While)):
            statement.body = _leaving(statement.body, scopes, loops + 1)
            statement.orelse = _leaving(statement.orelse, scopes, loops)
        elif isinstance(statement, ast.If):
            statement.body = _leaving(statement.body, scopes, loops)
            statement.orelse = _leaving(statement.orelse, scopes, loops)
        out.append(statement)
    return out


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _declared_globals(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function declares ``global`` (statements only: nested scopes excluded)."""
    names: set[str] = set()
    pending: list[ast.AST] = list(node.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, ast.Global):
            names.update(statement.names)
        elif not isinstance(statement, _NESTED):
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                block = getattr(statement, field, None)
                if block:
                    for child in block:  # handlers and match cases hold statements too
                        pending.extend(child.body if hasattr(child, "pattern") else [child])
    return names


def rewrite_statements(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
    """Add exception-scope syncs and store tracking to a function, in place."""
    if isinstance(node, ast.Lambda):
        return  # a lambda body is one expression: no statements
    scopes = _Scopes(helper_call, _declared_globals(node))
    node.body = [s for statement in node.body for s in _as_list(scopes.visit(statement))]


def _as_list(result: ast.AST | list[ast.stmt] | None) -> list[ast.stmt]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]  # type: ignore[list-item]
