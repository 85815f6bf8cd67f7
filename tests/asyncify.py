"""Turn a sync test program into the async program a user would write.

The differential harnesses write sync programs; the async contract says the same
programs, written with ``async def`` and ``await``, must behave under ``@jit`` as they
do under plain ``asyncio.run``. :func:`asyncify` makes that async version of a source
text, mechanically, as a user porting the code would:

* the program's own functions become ``async def``, and calls of them are awaited;
* a call of an op becomes an awaited call of its async twin (``echo(x)`` becomes
  ``await aecho(x)``), except every ``sync_every``-th call, which stays a sync op
  called from async code (the contract covers both);
* an op handed to library code by name (``map(upper, xs)``, ``sorted(key=echo)``)
  stays sync: library code cannot await;
* a generator expression of op calls becomes ``await asyncio.gather(...)`` of the
  calls (the form users already write), any other generator expression holding an
  await a list comprehension (an async generator cannot be joined); with
  ``gather_lists``, a list comprehension of op calls is gathered too;
* ``with`` over a context manager named in ``async_managers`` becomes ``async with``
  over its async twin, and ``for`` over ``range(...)`` becomes ``async for`` over
  :func:`arange`;
* the functions named in ``keep_sync`` stay as they are: sync helpers called from
  async code, their op calls sync (a user ports the entry point, not every helper).

The output is source text: compile it with a ``linecache`` entry so ``@jit`` can read
it, as :func:`compile_async` does.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import linecache
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

_counter = itertools.count()


async def arange(n: int) -> AsyncIterator[int]:
    """``range(n)`` as an async iterator that lets the loop run between items."""
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def _gathered(node: ast.GeneratorExp | ast.ListComp) -> ast.Await | None:
    """``await asyncio.gather(*[call for ...])`` for ``(await call for ...)``, if that is it."""
    if not isinstance(node.elt, ast.Await) or any(
        isinstance(n, ast.Await) for g in node.generators for n in ast.walk(g)
    ):
        return None
    calls = ast.ListComp(elt=node.elt.value, generators=node.generators)
    gather = ast.Call(
        func=ast.Attribute(value=ast.Name("asyncio", ast.Load()), attr="gather"),
        args=[ast.Starred(value=calls, ctx=ast.Load())],
        keywords=[],
    )
    return ast.Await(value=gather)


class _Asyncify(ast.NodeTransformer):
    def __init__(
        self,
        ops: Mapping[str, str],
        functions: set[str],
        async_managers: Mapping[str, str],
        sync_every: int,
        gather_lists: bool,
    ) -> None:
        self.sync = False  # inside a function kept sync: nothing changes
        self.ops = ops
        self.functions = functions
        self.async_managers = async_managers
        self.sync_every = sync_every
        self.gather_lists = gather_lists
        self.op_calls = 0

    def visit(self, node: ast.AST) -> Any:
        if self.sync and not isinstance(node, ast.FunctionDef):
            return node
        return super().visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        saved, self.sync = self.sync, node.name not in self.functions
        try:
            self.generic_visit(node)
        finally:
            self.sync = saved
        if node.name not in self.functions:
            return node
        fields = {field: getattr(node, field) for field in node._fields}
        return ast.copy_location(ast.AsyncFunctionDef(**fields), node)

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        return node  # no await in a lambda: its calls stay sync

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        if not isinstance(node.func, ast.Name):
            return node
        name = node.func.id
        if name in self.functions:
            return ast.Await(value=node)
        if name in self.ops:
            self.op_calls += 1
            if self.sync_every and self.op_calls % self.sync_every == 0:
                return node  # a sync op called from async code
            node.func = ast.Name(id=self.ops[name], ctx=ast.Load())
            return ast.Await(value=node)
        return node

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> Any:
        self.generic_visit(node)
        if not any(isinstance(n, ast.Await) for n in ast.walk(node)):
            return node
        return _gathered(node) or ast.ListComp(elt=node.elt, generators=node.generators)

    def visit_ListComp(self, node: ast.ListComp) -> Any:
        self.generic_visit(node)
        return (self.gather_lists and _gathered(node)) or node

    def visit_With(self, node: ast.With) -> Any:
        self.generic_visit(node)
        managers = [item.context_expr for item in node.items]
        if not all(
            isinstance(m, ast.Call)
            and isinstance(m.func, ast.Name)
            and m.func.id in self.async_managers
            for m in managers
        ):
            return node
        for m in managers:
            assert isinstance(m, ast.Call) and isinstance(m.func, ast.Name)
            m.func.id = self.async_managers[m.func.id]
        return ast.copy_location(ast.AsyncWith(items=node.items, body=node.body), node)

    def visit_For(self, node: ast.For) -> Any:
        self.generic_visit(node)
        loop = node.iter
        if not (isinstance(loop, ast.Call) and isinstance(loop.func, ast.Name)):
            return node
        if loop.func.id != "range" or len(loop.args) != 1:
            return node
        loop.func.id = "arange"
        return ast.copy_location(
            ast.AsyncFor(target=node.target, iter=loop, body=node.body, orelse=node.orelse),
            node,
        )


def asyncify(
    source: str,
    ops: Mapping[str, str],
    *,
    async_managers: Mapping[str, str] | None = None,
    sync_every: int = 0,
    gather_lists: bool = False,
    keep_sync: Collection[str] = (),
) -> str:
    """The async version of ``source`` (see the module docstring for the rules).

    Args:
        source: Module-level function definitions.
        ops: The sync op names called in ``source`` and the names of their async twins.
        async_managers: Context manager names and their async twins.
        sync_every: Keep every ``sync_every``-th op call sync (0: await them all).
        gather_lists: Also make a list comprehension of awaited op calls one
            ``asyncio.gather`` of the calls (results in the same order).
        keep_sync: Functions of ``source`` that stay sync (and are called unawaited).

    Returns:
        The transformed source text.
    """
    tree = ast.parse(source)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} - set(keep_sync)
    tree = _Asyncify(ops, functions, async_managers or {}, sync_every, gather_lists).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def compile_async(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute ``source`` in ``namespace`` under a ``linecache`` name ``@jit`` can read."""
    filename = f"<xcs-async-{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace.setdefault("asyncio", asyncio)
    namespace.setdefault("arange", arange)
    exec(compile(source, filename, "exec"), namespace)
    return namespace
