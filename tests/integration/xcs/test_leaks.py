"""Nothing jit touches is kept alive longer than plain Python keeps it.

Leaks are checked by weak references (an object plain Python frees must be freed
under jit too) and by the size of what xcs caches (bounded however many notebook
cells or files it rewrites).
"""

from __future__ import annotations

import gc
import linecache
import weakref
from collections.abc import Callable
from typing import Any

from ember import xcs
from ember.xcs._internal.rewrite import source


@xcs.op
def double(n: int) -> int:
    return 2 * n


def _recursive_closure() -> Callable[[int], int]:
    payload = bytearray(1 << 20)  # 1 MiB that must be freed with the closure

    def countdown(n: int) -> int:
        if n <= 0:
            return len(payload) - len(payload)
        return double(n) + countdown(n - 1)  # refers to itself through its cell

    return countdown


def test_a_self_referencing_closure_jitted_repeatedly_is_freed() -> None:
    refs: list[weakref.ref[Any]] = []
    for _ in range(30):
        fn = _recursive_closure()
        refs.append(weakref.ref(fn))
        assert xcs.jit(fn)(3) == fn(3) == 12
        del fn
    gc.collect()
    assert sum(ref() is not None for ref in refs) == 0


def test_a_closure_called_repeatedly_still_reuses_its_rewritten_code() -> None:
    fn = _recursive_closure()
    jitted = xcs.jit(fn)
    jitted(2)
    compiled = len(source._codes)
    for n in range(5):
        assert jitted(n) == fn(n)
    assert len(source._codes) == compiled  # nothing rewritten again


def test_parsed_trees_of_many_notebook_cells_are_not_all_kept() -> None:
    # Each cell run is a new "file" (IPython and %%xcs register its text in linecache).
    for number in range(3 * source.TREES_KEPT):
        filename = f"<ember-test-cell {number}>"
        text = f"def cell(n):\n    return [double(n + i) for i in range({number % 4 + 1})]\n"
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        scope: dict[str, Any] = {"double": double}
        exec(compile(text, filename, "exec"), scope)
        assert xcs.jit(scope["cell"])(1) == [2 * (1 + i) for i in range(number % 4 + 1)]
        del linecache.cache[filename]
    assert len(source._trees) <= source.TREES_KEPT
    gc.collect()  # the cells' functions are gone: so is their rewritten code
    assert all(ref() is not None for ref, _ in source._codes.values())
