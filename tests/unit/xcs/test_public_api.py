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
        "last_failed_trace",
        "map",
        "op",
        "pure",
        "register_op",
        "reset_jit_stats",
        "served_from_cache",
        "trace",
        "trace_of",
        "unregister_op",
        "vmap",
    ]
    for name in xcs.__all__:
        assert getattr(xcs, name) is not None


def test_models_errors_are_public_and_pinned() -> None:
    # Every error class ember.models raises is importable from ember.models.
    from ember import models
    from ember.models import errors

    assert models.__all__ == sorted(models.__all__)
    raised = sorted(
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), Exception)
    )
    assert raised == [
        "MissingAPIKeyError",
        "ModelError",
        "ModelNotFoundError",
        "ProviderError",
        "RateLimitError",
        "SecretParameterError",
        "UnknownParameterError",
    ]
    assert all(getattr(models, name) is getattr(errors, name) for name in raised)


def test_jit_signature_is_pinned() -> None:
    assert str(inspect.signature(xcs.jit)) == (
        "(fn: 'Callable[..., Any] | staticmethod[..., Any] | classmethod[Any, ..., Any] | None'"
        " = None, /, *, max_workers: 'int | None' = None, "
        "executor: 'Executor | None' = None, timeout: 'float | None' = None, "
        "cache: 'bool' = True) -> 'Any'"
    )


def test_op_and_trace_signatures_are_pinned() -> None:
    assert str(inspect.signature(xcs.op)) == (
        "(fn: 'Callable[..., Any] | None' = None, /, *, name: 'str | None' = None, "
        "max_concurrency: 'int | None' = None) "
        "-> 'Op[..., Any] | Callable[[Callable[..., Any]], Op[..., Any]]'"
    )
    assert str(inspect.signature(xcs.trace)) == (
        "(fn: 'Callable[..., Any]', *args: 'Any', execute: 'bool' = True, **kwargs: 'Any') "
        "-> 'Trace | Coroutine[Any, Any, Trace]'"
    )


def test_drawing_signatures_are_pinned() -> None:
    assert str(inspect.signature(xcs.Trace.draw)) == (
        "(self, path: 'str | os.PathLike[str] | None' = None, format: 'str | None' = None, "
        "*, glue: 'bool' = False, fold: 'bool' = True) -> 'Any'"
    )
    assert str(inspect.signature(xcs.Trace.to_mermaid)) == (
        "(self, *, glue: 'bool' = False, fold: 'bool' = True) -> 'str'"
    )


def test_import_ember_is_light() -> None:
    code = (
        "import sys, ember.xcs; "
        "heavy = {'graphviz', 'matplotlib', 'openai', 'anthropic', 'dask', 'httpx', 'numpy'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
