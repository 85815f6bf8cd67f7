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

Expressions a proxy cannot get right (each operand still evaluated once, in order):

* ``a is b`` (and ``is not``, ``in`` in chains): operands as values; ``a in b`` and
  ``a not in b``: :func:`~.dispatch.contains` -- glue while a side is pending;
* ``a % b``: :func:`~.dispatch.mod` -- pending values formatted as glue;
* f-strings: :func:`~.dispatch.fstring` -- the same, so prompts stay lazy;
* ``raise e from c``: the exception and its cause as values;
* ``match s``: the subject concrete all the way down (patterns test types);
* dict keys and set members as values; set and dict comprehensions collect first
  and make keys values once, so the calls in them still overlap;
* tested values (``if``, ``while``, ``and``/``or``/``not``, conditional expressions,
  comprehension filters, ``assert``): an object whose own ``__bool__``/``__len__`` is
  Python code is made concrete first (the interpreter calls those directly and
  rejects a stand-in);
* subscripts ``d[k]``: a concrete container gets the index as a value (it may keep
  it as a key); ``raise e``: the exception holds no pending values;
* unpacking (``a, b = x``, ``for a, b in xs``, comprehensions): the value, or each
  item, goes through ``@xcs.unpack``/``@xcs.unpack_each`` with the target's shape, so
  a pending pair unpacks into pending items (not for a tuple display on the right,
  ``a, b = b, a``, nor a starred target).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from ember.xcs._internal.rewrite.awaits import rewrite_awaits
from ember.xcs._internal.rewrite.emit import helper_call, is_helper_call
from ember.xcs._internal.rewrite.source import Unrewritable
from ember.xcs._internal.rewrite.statements import rewrite_statements

__all__ = ["FRAME_BUILTINS", "rewrite_function"]


FRAME_BUILTINS = frozenset(
    {"super", "locals", "vars", "globals", "dir", "eval", "exec", "breakpoint"}
)
"""Builtins that read or change the calling frame: their calls are never rewritten."""


def _call(
    helper: str, args: list[ast.expr], keywords: list[ast.keyword], like: ast.AST
) -> ast.Call:
    return helper_call(helper, args, like, keywords)


_VISITORS: dict[type, Callable[[_Rewriter, Any], ast.AST]] = {}


class _Rewriter(ast.NodeTransformer):
    def __init__(self, function: ast.AST) -> None:
        self.function = function
        self.local_names: set[str] | None = None  # names bound in it (found when needed)

    # NodeTransformer's own walk, made lean: every visitor here returns one node, so
    # lists are updated in place, and visitors are looked up once per node type.
    def visit(self, node: ast.AST) -> Any:
        visitor = _VISITORS.get(type(node))
        if visitor is None:
            found = getattr(type(self), f"visit_{type(node).__name__}", _Rewriter.generic_visit)
            visitor = _VISITORS[type(node)] = found
        return visitor(self, node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field in node._fields:
            old = getattr(node, field, None)
            if type(old) is list:
                for index, item in enumerate(old):
                    if isinstance(item, ast.AST):
                        old[index] = self.visit(item)
            elif isinstance(old, ast.AST):
                new = self.visit(old)
                if new is not old:
                    setattr(node, field, new)
        return node

    def _shadowed(self, name: str) -> bool:
        """Whether the function binds ``name`` itself (``locals = ...``), hiding the builtin."""
        if self.local_names is None:
            self.local_names = _assigned_names(self.function)
        return name in self.local_names

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id in FRAME_BUILTINS and not self._shadowed(func.id):
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
            for keyword in node.keywords:
                if keyword.arg is None:  # f(**spread): unpacked from a value
                    keyword.value = _call("value", [keyword.value], [], keyword.value)
            packed = _call("kwargs", [], node.keywords, node)
            node.keywords = [ast.copy_location(ast.keyword(arg=None, value=packed), node)]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        returns, node.returns = node.returns, None  # annotations are left as written
        self.generic_visit(node)
        node.returns = returns
        _mark_entry(node)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        """Annotations are left as written.

        ``from __future__ import annotations`` keeps their source text, which
        ``typing.get_type_hints`` and dataclasses evaluate later.
        """
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        node.target = self.visit(node.target)
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self.generic_visit(node)
        _mark_entry(node)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        """``x is None``, ``x in "lit"``: operands of identity and containment as values.

        Each operand is still evaluated once, and chains keep their short-circuit.
        """
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        if (
            len(node.ops) == 1
            and type(node.ops[0]) in _ORDERING
            and not _constant(node.left)
            and not _constant(node.comparators[0])
        ):  # a == b: as for binary operators (see visit_BinOp)
            symbol = ast.copy_location(ast.Constant(type(node.ops[0]).__name__), node)
            return _call("binary", [node.left, node.comparators[0], symbol], [], node)
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            # "yes" in reply: glue while a side is pending (dispatch/pure.py)
            negated = ast.copy_location(ast.Constant(isinstance(node.ops[0], ast.NotIn)), node)
            return _call("contains", [node.left, node.comparators[0], negated], [], node)
        if len(node.ops) > 1 and any(isinstance(op, _ORDERING) for op in node.ops):
            # a < b < c: no helper can see a pair without evaluating twice, so the
            # operands are values (the result is a bool, wanted at once anyway).
            operands = [
                o if _constant(o) or _is_value_call(o) else _call("value", [o], [], o)
                for o in operands
            ]
        for index, op in enumerate(node.ops):
            if isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)):
                for side in (index, index + 1):
                    if not _is_value_call(operands[side]):
                        # A member looked up may be hashed: ``key`` (see visit_Subscript).
                        member = side == index and isinstance(op, (ast.In, ast.NotIn))
                        helper = "key" if member else "value"
                        operands[side] = _call(helper, [operands[side]], [], operands[side])
        node.left, node.comparators = operands[0], operands[1:]
        return node

    # --- values the interpreter hands to an object's own dunders -------------------------
    # ``if obj:`` calls ``type(obj).__bool__`` (or ``__len__``), ``d[obj]`` its
    # ``__hash__``, ``xs[obj]`` its ``__index__`` -- the original methods, which may
    # return an attribute an op has not filled yet, and the interpreter rejects a
    # stand-in. Such objects get their own attributes' answers first (plain values pass
    # untouched).

    def _tested(self, test: ast.expr) -> ast.expr:
        if is_helper_call(test, "binary") and _is_comparison(test):  # a bool, or glue
            return test
        if isinstance(test, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)):
            return _call("truth", [test], [], test)
        return test

    def visit_If(self, node: ast.If | ast.While | ast.IfExp | ast.Assert) -> ast.AST:
        """The test of ``if``, ``while``, ``a if t else b`` and ``assert``."""
        self.generic_visit(node)
        node.test = self._tested(node.test)
        return node

    visit_While = visit_IfExp = visit_Assert = visit_If

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        """``a or b`` returns an operand; each may be tested (by it, or by an ``if``).

        ``a or <literal>`` (``reply or ""``) is ``@xcs.either(a, literal)`` (``and``:
        ``both``): glue on a pending ``a``, since evaluating a literal early changes
        nothing.
        """
        literal = len(node.values) == 2 and _literal(node.values[1])  # before its rewrite
        self.generic_visit(node)
        if literal:
            helper = "either" if isinstance(node.op, ast.Or) else "both"
            return _call(helper, list(node.values), [], node)
        node.values = [self._tested(v) for v in node.values]
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            node.operand = self._tested(node.operand)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.ifs = [self._tested(test) for test in node.ifs]
        if not node.is_async:
            node.iter = _unpacked_each(node.target, node.iter)
        return node

    # --- unpacking: ``a, b = x`` and ``for a, b in xs`` (see dispatch/unpacking.py) -----

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        self.generic_visit(node)
        shape = _shape(node.targets[0]) if len(node.targets) == 1 else None
        if shape is not None and not isinstance(node.value, (ast.Tuple, ast.List)):
            node.value = _call("unpack", [node.value, _constant_of(shape, node)], [], node.value)
        return node

    def visit_For(self, node: ast.For) -> ast.AST:
        self.generic_visit(node)
        node.iter = _unpacked_each(node.target, node.iter)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        """``d[k]``: a concrete container gets ``k`` as a value (it may keep it as a key).

        In an expression the container and index go to ``@xcs.item``; stored to or
        deleted, the index goes through ``@xcs.index``. Constant indexes and slices
        are left alone.
        """
        self.generic_visit(node)
        index = node.slice
        if _constant(index) or _has_slice(index):
            return node
        if isinstance(node.ctx, ast.Load):
            return _call("item", [node.value, index], [], node)
        node.slice = _call("index", [index], [], index)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        """``"%s-%s" % pair``: formatting of pending values is recorded, not forced.

        ``a + b`` between two non-constants goes through ``@xcs.binary``: if one side
        is an object whose class implements the operator in Python, the interpreter
        would hand that code the other side as it is (a pending value).
        """
        self.generic_visit(node)
        if isinstance(node.op, ast.Mod):
            return _call("mod", [node.left, node.right], [], node)
        if _constant(node.left) or _constant(node.right):
            return node
        symbol = ast.copy_location(ast.Constant(type(node.op).__name__), node)
        return _call("binary", [node.left, node.right, symbol], [], node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        """f-strings: ``@xcs.fstring(("lit",), (value, conversion, spec), ...)``."""
        self.generic_visit(node)
        parts: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = value.format_spec or ast.copy_location(ast.Constant(None), value)
                conversion = ast.copy_location(ast.Constant(value.conversion), value)
                part = ast.Tuple(elts=[value.value, conversion, spec], ctx=ast.Load())
            else:
                part = ast.Tuple(elts=[value], ctx=ast.Load())
            parts.append(ast.copy_location(part, value))
        return _call("fstring", parts, [], node)

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        """The exception and its cause as values, holding no pending values."""
        self.generic_visit(node)
        if node.exc is not None:
            node.exc = _call("raised", [node.exc], [], node.exc)
        if node.cause is not None:
            node.cause = _call("raised", [node.cause], [], node.cause)
        return node

    def visit_Match(self, node: ast.Match) -> ast.AST:
        """``match`` patterns test types, identity and structure: a concrete subject."""
        self.generic_visit(node)
        node.subject = _call("deep", [node.subject], [], node.subject)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        """Dict keys are stored as values; a ``**spread`` is unpacked from a value."""
        self.generic_visit(node)
        node.values = [
            _call("value", [v], [], v) if k is None else v
            for k, v in zip(node.keys, node.values, strict=True)
        ]
        node.keys = [k if k is None else _call("key", [k], [], k) for k in node.keys]
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        """A class statement hands its bases and keywords to the metaclass: as values."""
        self.generic_visit(node)
        node.bases = [
            b if isinstance(b, ast.Starred) else _call("value", [b], [], b) for b in node.bases
        ]
        for keyword in node.keywords:
            keyword.value = _call("value", [keyword.value], [], keyword.value)
        return node

    def visit_Set(self, node: ast.Set) -> ast.AST:
        self.generic_visit(node)
        node.elts = [
            e if isinstance(e, ast.Starred) else _call("key", [e], [], e) for e in node.elts
        ]
        return node

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        """``{ask(q) for q in qs}``: collect first, hash once, so the calls overlap."""
        self.generic_visit(node)
        listed = ast.copy_location(ast.ListComp(elt=node.elt, generators=node.generators), node)
        return _call("set_of", [listed], [], node)

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        """``{ask(q): q for q in qs}``: collect the pairs, then make the keys values."""
        self.generic_visit(node)
        pair = ast.copy_location(ast.Tuple(elts=[node.key, node.value], ctx=ast.Load()), node)
        listed = ast.copy_location(ast.ListComp(elt=pair, generators=node.generators), node)
        return _call("dict_of", [listed], [], node)


def _mark_entry(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
    """Make ``@xcs.entered()`` the first thing the function does (after its docstring).

    It records whether this call came through the dispatcher, which decides whether
    the ops it calls may defer (``dispatch.frames.may_defer``).
    """
    mark = _call("entered", [], [], node)
    if isinstance(node, ast.Lambda):  # (mark, body)[1]: one expression, same result
        pair = ast.copy_location(ast.Tuple(elts=[mark, node.body], ctx=ast.Load()), node.body)
        second = ast.copy_location(ast.Constant(1), node.body)
        node.body = ast.copy_location(
            ast.Subscript(value=pair, slice=second, ctx=ast.Load()), node.body
        )
        return
    first = node.body[0] if node.body else node
    statement = ast.copy_location(ast.Expr(value=mark), first)
    docstring = (
        node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    )
    node.body.insert(1 if docstring else 0, statement)


_ORDERING = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _constant(node: ast.expr) -> bool:
    """``3``, ``"k"``, ``-1``: an index that holds no value to look at."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant)


def _has_slice(node: ast.expr) -> bool:
    """``a[i:j]``, ``a[i:j, k]``: slices are syntax, not values a call could take."""
    if isinstance(node, ast.Tuple):
        return any(isinstance(e, ast.Slice) for e in node.elts)
    return isinstance(node, ast.Slice)


def _is_value_call(node: ast.expr) -> bool:
    return is_helper_call(node, "value") or is_helper_call(node, "key")


def _is_comparison(call: ast.expr) -> bool:
    symbol = call.args[2] if isinstance(call, ast.Call) else None
    return isinstance(symbol, ast.Constant) and symbol.value in {op.__name__ for op in _ORDERING}


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


def _shape(target: ast.expr) -> tuple[Any, ...] | None:
    """The shape of an unpacking target (``(a, b), c`` -> ``((None, None), None)``).

    None for a target that is not unpacking, or that holds a starred target.
    """
    if not isinstance(target, (ast.Tuple, ast.List)):
        return None
    shape: list[Any] = []
    for element in target.elts:
        if isinstance(element, ast.Starred):
            return None
        if isinstance(element, (ast.Tuple, ast.List)):
            inner = _shape(element)
            if inner is None:
                return None
            shape.append(inner)
        else:
            shape.append(None)
    return tuple(shape)


def _literal(node: ast.expr) -> bool:
    """Whether evaluating ``node`` does nothing but make a value (``""``, ``[]``, ``{}``)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.Set):  # members hashed: constants only
        return all(isinstance(e, ast.Constant) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(isinstance(k, ast.Constant) for k in node.keys) and all(
            _literal(v) for v in node.values
        )
    return False


def _constant_of(value: Any, like: ast.AST) -> ast.expr:
    return ast.copy_location(ast.Constant(value), like)


def _unpacked_each(target: ast.expr, iterable: ast.expr) -> ast.expr:
    """The iterable of a loop whose target unpacks, with its items through ``unpack``."""
    shape = _shape(target)
    if shape is None:
        return iterable
    return _call("unpack_each", [iterable, _constant_of(shape, iterable)], [], iterable)


def rewrite_function(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
    """Rewrite a function's body in place (its decorators and defaults are left alone)."""
    rewriter = _Rewriter(node)
    if isinstance(node, ast.Lambda):
        node.body = rewriter.visit(node.body)
    else:
        node.body = [rewriter.visit(statement) for statement in node.body]
    rewrite_statements(node)
    _mark_entry(node)  # every node made here has a location: no fix_missing_locations
    if not isinstance(node, ast.Lambda):
        rewrite_awaits(node)  # async def code waits by awaiting


def rewrite_async_variant(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
) -> ast.AsyncFunctionDef:
    """A ``def`` rewritten as an ``async def``: its twin for calls from async traced code.

    Its waits become awaits (``awaits.py``), so a helper of yours that branches on an
    answer, called from an ``async def``, waits without blocking the loop.

    Raises:
        Unrewritable: ``node`` is not a plain ``def`` (a lambda, an ``async def``).
    """
    if not isinstance(node, ast.FunctionDef):
        raise Unrewritable("only a def has an async variant", expected=True)
    made = ast.AsyncFunctionDef(**{field: getattr(node, field) for field in node._fields})
    ast.copy_location(made, node)
    rewrite_function(made)
    return made
