"""The public surface of ``ember.xcs`` is pinned: changing it is a deliberate act."""

from __future__ import annotations

import inspect
import subprocess
import sys

from ember import xcs


def test_all_is_sorted_and_exact() -> None:
    assert xcs.__all__ == sorted(xcs.__all__)
    assert xcs.__all__ == [
        "ConcretizationError",
        "OpSpec",
        "OpTimeoutError",
        "Trace",
        "XCSError",
        "XCSWarning",
        "barrier",
        "call_op",
        "composite",
        "get_jit_stats",
        "jit",
        "map",
        "op",
        "pure",
        "register_op",
        "reset_jit_stats",
        "trace",
        "unregister_op",
        "vmap",
    ]
    for name in xcs.__all__:
        assert getattr(xcs, name) is not None


def test_jit_signature_is_pinned() -> None:
    assert str(inspect.signature(xcs.jit)) == (
        "(fn: 'Callable[..., Any] | None' = None, /, *, max_workers: 'int | None' = None, "
        "executor: 'Executor | None' = None, timeout: 'float | None' = None, "
        "cache: 'bool' = True) -> 'Any'"
    )


def test_op_and_trace_signatures_are_pinned() -> None:
    assert str(inspect.signature(xcs.op)) == (
        "(fn: 'Callable[..., Any] | None' = None, /, *, name: 'str | None' = None, "
        "max_concurrency: 'int | None' = None) -> 'Op | Callable[[Callable[..., Any]], Op]'"
    )
    assert str(inspect.signature(xcs.trace)) == (
        "(fn: 'Callable[..., Any]', *args: 'Any', execute: 'bool' = True, **kwargs: 'Any') "
        "-> 'Trace'"
    )


def test_import_ember_is_light() -> None:
    code = (
        "import sys, ember.xcs; "
        "heavy = {'graphviz', 'matplotlib', 'openai', 'anthropic', 'dask', 'httpx', 'numpy'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
