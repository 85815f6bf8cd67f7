"""Twins: a user function recompiled from its own source, indistinguishable from it."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import linecache
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pytest

from ember.xcs._internal.rewrite import Unrewritable, make_twin
from ember.xcs._internal.usercode import (
    Unrewritten,
    first_warning,
    is_user_code,
    note_quietly_unrewritten,
    quietly_unrewritten,
)


def identity(node: Any) -> None:
    """A rewrite that changes nothing."""


def add_one_to_returns(node: Any) -> None:
    """A visible rewrite: every ``return x`` becomes ``return x + 1``."""
    for child in ast.walk(node):
        if isinstance(child, ast.Return) and child.value is not None:
            child.value = ast.BinOp(left=child.value, op=ast.Add(), right=ast.Constant(1))
    ast.fix_missing_locations(node)


def plain(a: int, b: int = 2, *, c: int = 3) -> int:
    """Doc."""
    return a + b + c


def test_a_twin_looks_like_the_original_and_runs_the_rewrite() -> None:
    twin = make_twin(plain, add_one_to_returns)
    assert twin(1) == plain(1) + 1 and twin(1, 1, c=1) == 4
    for attr in (
        "__name__",
        "__qualname__",
        "__module__",
        "__doc__",
        "__defaults__",
        "__kwdefaults__",
    ):
        assert getattr(twin, attr) == getattr(plain, attr)
    assert twin.__globals__ is plain.__globals__
    assert twin.__code__.co_firstlineno == plain.__code__.co_firstlineno
    assert make_twin(plain, add_one_to_returns) is twin  # built once


def raises_on_line() -> None:
    x = 1
    raise ValueError(x)  # MARK-raise


def test_line_numbers_and_file_are_kept() -> None:
    twin = make_twin(raises_on_line, identity)
    with pytest.raises(ValueError) as info:
        twin()
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    line = next(
        i for i, t in enumerate(open(__file__), 1) if "MARK-raise" in t and "next(" not in t
    )
    assert (frame.filename, frame.lineno, frame.name) == (__file__, line, "raises_on_line")


def make_counter() -> Any:
    count = 0

    def bump(step: int = 1) -> int:
        nonlocal count
        count += step
        return count

    return bump


def test_closures_share_the_original_cells() -> None:
    bump = make_counter()
    twin = make_twin(bump, identity)
    assert bump() == 1 and twin() == 2 and bump(5) == 7


class Base:
    def describe(self) -> str:
        return "base"


class Child(Base):
    __secret = "mangled"

    def describe(self) -> str:
        return f"child of {super().describe()} with {self.__secret}"


def test_zero_argument_super_and_private_names_work() -> None:
    twin = make_twin(Child.describe, identity)
    assert twin(Child()) == "child of base with mangled"


def shows_locals(a: int) -> dict[str, Any]:
    b = a * 2
    return dict(locals())


def test_locals_are_unchanged() -> None:
    assert make_twin(shows_locals, identity)(3) == {"a": 3, "b": 6}


def test_lambdas_and_nested_defs() -> None:
    square = lambda x: x * x  # noqa: E731
    assert make_twin(square, identity)(4) == 16

    def outer(n: int) -> Any:
        def inner(m: int) -> int:
            return n + m

        return inner

    inner = outer(10)
    assert make_twin(inner, add_one_to_returns)(1) == 12


def test_functions_in_this_pytest_rewritten_module_can_be_twinned() -> None:
    def checks(x: int) -> int:
        assert x > 0, "positive"
        return x

    assert "@py_builtins" in globals()  # pytest rewrote this module's asserts
    twin = make_twin(checks, identity)
    assert twin(2) == 2
    with pytest.raises(AssertionError, match="positive"):
        twin(0)


def test_a_notebook_cell_registered_in_linecache(tmp_path: Path) -> None:
    source = "def cell_fn(x):\n    return x * 3\n"
    filename = "<ipython-input-7-abcdef>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)
    assert make_twin(namespace["cell_fn"], add_one_to_returns)(2) == 7


def test_no_source_is_unrewritable() -> None:
    namespace: dict[str, Any] = {}
    exec(compile("def nowhere(x):\n    return x\n", "<nowhere-xcs>", "exec"), namespace)
    with pytest.raises(Unrewritable, match="no source"):
        make_twin(namespace["nowhere"], identity)


def test_a_source_file_edited_after_import_is_refused(tmp_path: Path) -> None:
    module = tmp_path / "edited_module.py"
    module.write_text("def f(x):\n    return x + 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        imported = importlib.import_module("edited_module")
        assert make_twin(imported.f, identity)(1) == 2
        module.write_text("def f(x):\n    return x + 100\n")
        linecache.checkcache(str(module))
        fresh = importlib.import_module("edited_module")
        with pytest.raises(Unrewritable, match="edited"):
            make_twin(type(fresh.f)(fresh.f.__code__.replace(), fresh.f.__globals__), identity)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("edited_module", None)


def test_async_generators_are_unrewritable_and_async_functions_are_not() -> None:
    async def coroutine() -> None:
        return None

    async def agen() -> Any:
        yield 1

    with pytest.raises(Unrewritable, match="async generator"):
        make_twin(agen, identity)
    twin = make_twin(coroutine, identity)
    assert twin is not coroutine and inspect.iscoroutinefunction(twin)


def test_user_code_is_what_lies_outside_the_library() -> None:
    assert is_user_code(plain.__code__)
    assert not is_user_code(json.dumps.__code__)
    assert not is_user_code(make_twin.__code__)  # ember.xcs is library code
    exec_code = compile(textwrap.dedent("def g():\n    pass\n"), "<string>", "exec")
    assert is_user_code(exec_code)


def uses_an_imported_module(x: Any) -> str:
    return json.dumps(x)


def test_calls_on_imported_modules_compile_as_they_did() -> None:
    assert make_twin(uses_an_imported_module, identity)([1]) == "[1]"


def _exec(source: str, name: str, filename: str = "<quiet>") -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def test_quietly_unrewritten_code_is_found_from_its_nested_code_once() -> None:
    # Generator expressions: they have code objects of their own on every Python
    # (list comprehensions are inlined since 3.12, PEP 709).
    outer = _exec(
        "def outer(xs):\n    return list(x for x in xs), (lambda: list(y for y in xs))\n",
        "outer",
    )
    comprehension = next(c for c in outer.__code__.co_consts if hasattr(c, "co_code"))
    lam = next(c for c in outer.__code__.co_consts if getattr(c, "co_name", "") == "<lambda>")
    inner = next(c for c in lam.co_consts if hasattr(c, "co_code"))
    assert quietly_unrewritten(outer.__code__) is None  # nothing noted yet
    note_quietly_unrewritten(outer, "why")
    assert quietly_unrewritten(inner) == Unrewritten("outer", "<quiet>", 1, "why")  # 2 levels
    for code in (outer.__code__, comprehension, lam, inner):
        assert quietly_unrewritten(code) is None  # said once, for all of it
    note_quietly_unrewritten(outer, "why")  # a new closure of the same code: said already
    assert quietly_unrewritten(outer.__code__) is None


def test_equal_code_of_two_functions_is_told_apart() -> None:
    # Typed at the prompt, two functions share a file name and first line: equal code.
    first = _exec("def f(xs):\n    return [x for x in xs]\n", "f", "<stdin>")
    second = _exec("def f(xs):\n    return [x for x in xs]\n", "f", "<stdin>")
    assert first.__code__ == second.__code__ and first.__code__ is not second.__code__
    note_quietly_unrewritten(second, "second")
    assert quietly_unrewritten(first.__code__) is None
    note_quietly_unrewritten(first, "first")
    assert quietly_unrewritten(first.__code__).reason == "first"
    assert quietly_unrewritten(second.__code__).reason == "second"


def test_noted_code_is_not_kept_alive() -> None:
    import gc
    import weakref

    fn = _exec("def gone(xs):\n    return [x for x in xs]\n", "gone")
    code = weakref.ref(fn.__code__)
    note_quietly_unrewritten(fn, "why")
    assert first_warning(fn.__code__)
    del fn
    gc.collect()
    assert code() is None  # the registries hold it weakly and forget it
    from ember.xcs._internal import usercode as source

    assert all(entry[0]() is not None for entry in source._quiet.values())
    assert all(entry[0]() is not None for entry in source._warned.values())


def test_first_warning_is_true_once_per_code() -> None:
    fn = _exec("def f():\n    pass\n", "f")
    assert first_warning(fn.__code__)
    assert not first_warning(fn.__code__)
