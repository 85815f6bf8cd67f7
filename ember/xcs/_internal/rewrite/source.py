"""A user function's source, checked against the running code, and its rewritten twin.

A *twin* is the same function compiled from a rewritten copy of its own source: same
globals, closure cells, defaults, keyword defaults, name, qualname, module and line
numbers, so tracebacks, ``super()``, ``locals()``, logging and warnings see what they
see in the original. How the source is rewritten is the caller's business
(``rewrite.py``); this module finds, checks and compiles.

Finding the source: the whole file is read through :mod:`linecache` (so notebook
cells, which IPython registers there, work), parsed, and searched for the ``def`` or
``lambda`` whose name and first line match the code object. Its enclosing classes and
functions are rebuilt as never-run *skeletons* around it: a class shell keeps
private-name mangling and the ``__class__`` cell of zero-argument ``super()``; a
function skeleton declares the function's free variables, so the compiled code's
free variables line up with the original closure.

Checking it: the *unchanged* function is compiled the same way and its bytecode must
equal the running bytecode -- a source file edited after import is never used
silently. pytest rewrites ``assert`` statements in test modules, so for a module
pytest rewrote, its rewrite is applied to the tree first (and kept in the twin).

Which code is the user's is ``usercode.py``'s business.
"""

from __future__ import annotations

import ast
import collections
import functools
import linecache
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any, cast

__all__ = ["AST_LOCK", "Rewrite", "Unrewritable", "clone", "make_async_twin", "make_twin"]

Rewrite = Callable[
    [ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda],
    ast.FunctionDef | ast.AsyncFunctionDef | None,
]
"""Transforms a function's AST node in place (its body, for a ``def``); or returns the
node to compile instead (an ``async def`` made of a ``def``)."""


class Unrewritable(Exception):
    """A function cannot be rewritten; ``str()`` says why.

    Attributes:
        expected: Nothing is wrong (generated code has no source; ``async def`` is
            not rewritten): a callee like this runs unrewritten without a warning.
    """

    def __init__(self, reason: str, *, expected: bool = False) -> None:
        super().__init__(reason)
        self.expected = expected


_FUTURE_FLAGS = 0
for _feature in ("annotations", "generator_stop", "barry_as_FLUFL"):
    _FUTURE_FLAGS |= getattr(__import__("__future__"), _feature).compiler_flag

# (filename, hash of its text) -> tree, for the files and notebook cells rewritten
# most recently: every cell run is a new "file", and rewritten code is cached per
# code object (``_codes``), so an older tree is only parsed again if needed again.
TREES_KEPT = 32
_trees: collections.OrderedDict[tuple[str, int], ast.Module] = collections.OrderedDict()
_trees_lock = threading.Lock()


def _remember(trees: collections.OrderedDict[Any, ast.Module], key: Any, tree: ast.Module) -> None:
    """Keep ``tree`` as the newest of at most :data:`TREES_KEPT` (call under the lock)."""
    trees[key] = tree
    trees.move_to_end(key)
    while len(trees) > TREES_KEPT:
        trees.popitem(last=False)


AST_LOCK = threading.Lock()
"""Held by every ``ast.parse`` and ``compile`` of an AST in xcs.

CPython keeps the AST converters' recursion depth in per-interpreter state, not per
thread: two threads parsing or compiling ASTs at once (jitted functions first called
on several threads, nested in ops) can fail with ``SystemError: AST constructor
recursion depth mismatch`` (seen here on 3.11; see python/cpython#106905).
"""


def _parse(filename: str, module_globals: dict[str, Any]) -> tuple[ast.Module, str]:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        raise Unrewritable(
            f"no source found for {filename!r} (define it in a source file or a notebook cell)",
            expected=True,
        )
    text = "".join(lines)
    key = (filename, hash(text))
    with _trees_lock:
        tree = _trees.get(key)
        if tree is not None:
            _trees.move_to_end(key)
    if tree is None:
        try:
            with AST_LOCK:
                tree = ast.parse(text, filename)
        except SyntaxError as exc:
            raise Unrewritable(f"its source does not parse: {exc}") from None
        with _trees_lock:
            _remember(_trees, key, tree)
    return tree, text


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> int:
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([d.lineno for d in decorators] + [node.lineno])


Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda


def _candidates(
    node: ast.AST, chain: tuple[Scope, ...]
) -> Iterator[tuple[tuple[Scope, ...], ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda]]:
    """Every def and lambda in the tree with the chain of classes and defs around it."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield chain, child
            yield from _candidates(child, (*chain, child))
        elif isinstance(child, ast.ClassDef):
            yield from _candidates(child, (*chain, child))
        else:
            yield from _candidates(child, chain)


def _module_imports(tree: ast.Module) -> list[ast.stmt]:
    """The module-level imports (anywhere outside defs and classes), futures excepted.

    The compiler treats a method call on an imported name differently (no
    ``LOAD_METHOD``), so the skeleton must know which module names are imports.
    """
    found: list[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import) or (
                isinstance(child, ast.ImportFrom) and child.module != "__future__"
            ):
                found.append(child)
            elif not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child)

    visit(tree)
    return found


def _shell(name: str, body: list[ast.stmt]) -> ast.FunctionDef:
    """A never-run ``def name(): body`` of the skeleton."""
    no_arguments = ast.arguments(
        posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    return ast.FunctionDef(name=name, args=no_arguments, body=body, decorator_list=[], returns=None)


def _declare(names: list[str], made: list[ast.stmt | ast.expr]) -> ast.stmt:
    """``a = b = None``: makes the names local to a shell, so they close over as cells."""
    targets: list[ast.expr] = [ast.Name(id=n, ctx=ast.Store()) for n in names]
    value = ast.Constant(None)
    declaration = ast.Assign(targets=targets, value=value)
    made.extend([declaration, *targets, value])
    return declaration


Located = tuple[tuple[Scope, ...], ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda]
_indexes: weakref.WeakKeyDictionary[
    ast.Module, tuple[list[ast.stmt], dict[tuple[str, int], list[Located]]]
] = weakref.WeakKeyDictionary()


def _index(
    tree: ast.Module,
) -> tuple[list[ast.stmt], dict[tuple[str, int], list[Located]]]:
    """A tree's module-level imports, and its defs and lambdas by (name, first line)."""
    with _trees_lock:
        found = _indexes.get(tree)
    if found is None:
        index: dict[tuple[str, int], list[Located]] = {}
        for chain, node in _candidates(tree, ()):
            name = "<lambda>" if isinstance(node, ast.Lambda) else node.name
            index.setdefault((name, _first_line(node)), []).append((chain, node))
        found = (_module_imports(tree), index)
        with _trees_lock:
            _indexes[tree] = found
    return found


def _skeleton(
    chain: tuple[Scope, ...],
    target: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
    freevars: tuple[str, ...],
    imports: list[ast.stmt],
) -> ast.Module:
    """A never-run module around ``target`` that compiles it as it was compiled.

    Only the nodes made here are new (and placed at the target's line); the target
    and the imports are shared with the tree they come from, unchanged.
    """
    made: list[ast.stmt | ast.expr] = []
    inner: ast.stmt = target if not isinstance(target, ast.Lambda) else ast.Expr(value=target)
    if inner is not target:
        made.append(inner)
    body: list[ast.stmt] = [inner]
    names = [n for n in freevars if n != "__class__"]  # __class__ comes from a class shell
    for scope in reversed(chain):
        if isinstance(scope, ast.ClassDef):
            shell: ast.stmt = ast.ClassDef(
                name=scope.name, bases=[], keywords=[], body=body, decorator_list=[]
            )
            made.append(shell)
            body = [shell]
            continue
        if names:  # the innermost enclosing function declares the free variables
            body = [_declare(names, made), *body]
            names = []
        shell = _shell(getattr(scope, "name", "@xcs_lambda"), body)
        made.append(shell)
        body = [shell]
    if names:  # a closure with no enclosing def in this file (made by exec, say)
        shell = _shell("@xcs_skeleton", [_declare(names, made), *body])
        made.append(shell)
        body = [shell]
    for node in made:
        node.lineno = node.end_lineno = target.lineno
        node.col_offset = node.end_col_offset = 0
    return ast.Module(body=[*imports, *body], type_ignores=[])


def _find_code(code: types.CodeType, name: str, first_line: int) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_name == name and const.co_firstlineno == first_line:
                return const
            found = _find_code(const, name, first_line)
            if found is not None:
                return found
    return None


def clone(node: Any) -> Any:
    """A deep copy of an AST (several times faster than ``copy.deepcopy``)."""
    if isinstance(node, ast.AST):
        cls = type(node)
        new = cls.__new__(cls)
        for name in node._fields:
            if hasattr(node, name):
                setattr(new, name, clone(getattr(node, name)))
        for name in node._attributes:
            if hasattr(node, name):
                setattr(new, name, getattr(node, name))
        return new
    if type(node) is list:
        return [clone(item) for item in node]
    return node  # str, int, None, constants: immutable


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    if (a.co_code, a.co_names, a.co_varnames, a.co_freevars, a.co_cellvars) != (
        b.co_code,
        b.co_names,
        b.co_varnames,
        b.co_freevars,
        b.co_cellvars,
    ):
        return False
    if len(a.co_consts) != len(b.co_consts):
        return False
    for x, y in zip(a.co_consts, b.co_consts, strict=True):
        if isinstance(x, types.CodeType) and isinstance(y, types.CodeType):
            if not _same_code(x, y):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _compile(
    module: ast.Module, filename: str, flags: int, name: str, first_line: int
) -> types.CodeType:
    try:
        with AST_LOCK:
            code = compile(module, filename, "exec", flags=flags, dont_inherit=True)
    except (TypeError, ValueError):  # a node made without a location (slower, but right)
        ast.fix_missing_locations(module)
        with AST_LOCK:
            code = compile(module, filename, "exec", flags=flags, dont_inherit=True)
    found = _find_code(code, name, first_line)
    if found is None:
        raise Unrewritable("its compiled code could not be found (please report this)")
    return found


_pytest_trees: collections.OrderedDict[tuple[str, int], ast.Module] = collections.OrderedDict()


def _pytest_rewrite(tree: ast.Module, text: str, filename: str) -> ast.Module:
    """Apply pytest's assertion rewriting, as pytest did to the running module."""
    key = (filename, hash(text))
    with _trees_lock:
        rewritten = _pytest_trees.get(key)
    if rewritten is not None:
        return rewritten
    try:
        from _pytest.assertion.rewrite import rewrite_asserts
    except ImportError:  # pragma: no cover - pytest rewrote it, so it is importable
        raise Unrewritable("pytest rewrote its module, and pytest is not importable") from None
    rewritten = cast(ast.Module, clone(tree))
    rewrite_asserts(rewritten, text.encode(), filename)
    with _trees_lock:
        _remember(_pytest_trees, key, rewritten)
    return rewritten


def _locate(
    fn: types.FunctionType,
) -> tuple[ast.Module, tuple[Scope, ...], ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, int]:
    """The module tree (pytest-rewritten if the module was), the chain, the target, flags."""
    code = fn.__code__
    tree, text = _parse(code.co_filename, fn.__globals__)
    flags = code.co_flags & _FUTURE_FLAGS
    if "@py_builtins" in fn.__globals__:
        trees = [_pytest_rewrite(tree, text, code.co_filename), tree]
    else:
        trees = [tree]
    for candidate_tree in trees:
        imports, index = _index(candidate_tree)
        for chain, node in index.get((code.co_name, code.co_firstlineno), ()):
            name = code.co_name
            skeleton = _skeleton(chain, node, code.co_freevars, imports)  # node unchanged
            compiled = _compile(skeleton, code.co_filename, flags, name, code.co_firstlineno)
            if _same_code(compiled, code):
                return candidate_tree, chain, node, flags
    raise Unrewritable(
        f"its source in {code.co_filename} does not match the running code (was the file "
        "edited after it was imported? re-import it, or restart the interpreter)"
    )


# --- twins -----------------------------------------------------------------------------

# The rewritten code of each user code object, and the twin of each function without
# a closure. A closure's twin shares its cells, and a cell can hold the closure itself
# (a recursive local def): kept in a cache, the twin would keep its own key alive, so
# closures get a fresh twin around the cached code each time (a microsecond).
# By identity: equal code objects (same bytecode, names and lines) may come from
# different files, or from a file edited since.
_codes: dict[int, tuple[weakref.ref[types.CodeType], types.CodeType]] = {}
_twins: weakref.WeakKeyDictionary[types.FunctionType, tuple[types.CodeType, types.FunctionType]]
_twins = weakref.WeakKeyDictionary()
_twins_lock = threading.RLock()


def make_twin(fn: types.FunctionType, rewrite: Rewrite) -> types.FunctionType:
    """The rewritten twin of a user function (built once per function and code).

    Args:
        fn: A plain Python function of user code.
        rewrite: Transforms a copy of the function's AST node in place, leaving
            every node with a location (``ast.fix_missing_locations``).

    Returns:
        A function like ``fn`` in every observable way but compiled from the rewrite.

    Raises:
        Unrewritable: No source, a source that does not match the running code, or
            a kind of function that cannot be rewritten (``async def``).
    """
    code = fn.__code__
    with _twins_lock:
        cached = _twins.get(fn)
        if cached is not None and cached[0] is code:
            return cached[1]
        known = _codes.get(id(code))
    new_code = known[1] if known is not None and known[0]() is code else None
    if new_code is None:
        new_code = _rewrite_code(fn, rewrite)
        with _twins_lock:
            key = id(code)
            _codes[key] = (weakref.ref(code, functools.partial(_forget, _codes, key)), new_code)
            _note_origin(new_code, code)
    twin = _rebuild(fn, new_code)
    if fn.__closure__ is None:
        with _twins_lock:
            _twins[fn] = (code, twin)
    return twin


def _forget(
    table: dict[int, Any],
    key: int,
    ref: weakref.ref[types.CodeType],
    finalizing: Callable[[], bool] = sys.is_finalizing,
) -> None:
    """A code object was freed: drop its entry of ``table`` (unless its id is reused)."""
    if finalizing():
        return  # (the module's globals may be gone already)
    with _twins_lock:
        known = table.get(key)
        if known is not None and known[0] is ref:
            del table[key]


# By the id of a twin code, while it lives: the user code it was made from (for its
# nested defs too), and the code of its async variant once made (None: it has none).
_origins: dict[int, tuple[weakref.ref[types.CodeType], weakref.ref[types.CodeType], list[Any]]] = {}


def _note_origin(made: types.CodeType, code: types.CodeType) -> None:
    """``made`` was compiled from the source of ``code``; so were its nested defs."""
    key = id(made)
    _origins[key] = (
        weakref.ref(made, functools.partial(_forget, _origins, key)),
        weakref.ref(code),
        [_MISSING_CODE],
    )
    originals = {
        (c.co_name, c.co_firstlineno): c for c in code.co_consts if isinstance(c, types.CodeType)
    }
    for const in made.co_consts:
        if isinstance(const, types.CodeType) and not const.co_name.startswith("<"):
            original = originals.get((const.co_name, const.co_firstlineno))
            if original is not None:
                _note_origin(const, original)


_NOT_ASYNC = 0x20 | 0x80 | 0x100 | 0x200  # generators and coroutines, sync or async


def make_async_twin(twin: types.FunctionType, rewrite: Rewrite) -> types.FunctionType | None:
    """The ``async def`` variant of a twin, for calls from async traced code; or None.

    Compiled from the same source by ``rewrite`` (which turns the ``def`` into an
    ``async def``), made once per code, and bound like the twin: its globals, closure
    cells, defaults and names. A def nested in a twin has one too (made from its own
    source). None for a generator or a coroutine function, a lambda, or a function
    ``rewrite`` refuses.
    """
    code = twin.__code__
    key = id(code)
    with _twins_lock:
        known = _variants.get(twin)
        if known is not None and known[0] is code:
            return known[1]
        origin = _origins.get(key)
        user_code = origin[1]() if origin is not None and origin[0]() is code else None
        if origin is None or user_code is None:
            return None
        variant_code = origin[2]
        made = variant_code[0]
    if made is _MISSING_CODE:
        made = None
        if not code.co_flags & _NOT_ASYNC:
            cells = tuple(types.CellType() for _ in user_code.co_freevars)  # (never run)
            user = types.FunctionType(user_code, twin.__globals__, closure=cells)
            try:
                made = _rewrite_code(user, rewrite)
            except Unrewritable:
                made = None
        with _twins_lock:
            variant_code[0] = made
            if made is not None:
                _note_origin(made, user_code)  # its nested defs have variants too
    if made is None:
        return None
    assert isinstance(made, types.CodeType)
    variant = _rebuild(twin, made)
    if twin.__closure__ is None:  # (a closure's twin is new each time: see _codes)
        with _twins_lock:
            _variants[twin] = (code, variant)
    return variant


_MISSING_CODE: Any = object()
_variants: weakref.WeakKeyDictionary[
    types.FunctionType, tuple[types.CodeType, types.FunctionType]
] = weakref.WeakKeyDictionary()


def _rewrite_code(fn: types.FunctionType, rewrite: Rewrite) -> types.CodeType:
    """The code of ``fn``'s twin: its source found, rewritten and compiled."""
    code = fn.__code__
    if code.co_flags & (0x100 | 0x200):  # iterable coroutine, async generator
        raise Unrewritable(
            "it is an async generator (jit rewrites functions and async functions: return "
            "a list instead of yielding, or jit the function that consumes it)",
            expected=True,
        )
    tree, chain, node, flags = _locate(fn)
    target = clone(node)
    target = rewrite(target) or target
    skeleton = _skeleton(chain, target, code.co_freevars, _index(tree)[0])
    name = "<lambda>" if isinstance(target, ast.Lambda) else target.name
    return _compile(skeleton, code.co_filename, flags, name, code.co_firstlineno)


def _rebuild(fn: types.FunctionType, code: types.CodeType) -> types.FunctionType:
    closure = None
    if code.co_freevars:
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
        try:
            closure = tuple(cells[name] for name in code.co_freevars)
        except KeyError as missing:
            raise Unrewritable(f"the rewrite needs a variable it lacks: {missing}") from None
    twin = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    twin.__kwdefaults__ = fn.__kwdefaults__
    twin.__dict__.update(fn.__dict__)
    twin.__qualname__ = fn.__qualname__
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    twin.__annotations__ = fn.__annotations__
    return twin
