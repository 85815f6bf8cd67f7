"""Rewrite benchmark: what the call-site rewrite costs, once per function and per call.

Run by hand (not part of the test suite)::

    python benchmarks/rewrite.py
    python benchmarks/rewrite.py --repeat 9

Sections:

1. One-time cost of rewriting a function (its *twin*), on first use: for the first
   function of a freshly imported module (its source is read and parsed once, then
   the function is compiled) and for a further function of the same module (the
   parsed module is reused), at three sizes: 5, 30 and 150 statements.
2. Cost per call site: a loop of calls run by the rewritten function against the
   original, outside any trace, so the figure is the dispatcher's own work (what the
   rewrite adds to a call that is not an op). Kinds: a builtin with plain arguments
   (``abs(i)``), a user function (called as its twin), a list method that stores
   (``out.append(i)``), a call with keyword arguments, and a call with none.

Medians over ``--repeat`` runs, with the min-max range.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ember.xcs._internal.dispatch.callees import entry_point


def show(label: str, times: list[float], scale: float, unit: str) -> float:
    med = statistics.median(times) * scale
    print(f"  {label:<48} {med:9.2f} {unit}  ({min(times) * scale:.2f}-{max(times) * scale:.2f})")
    return med


# --- 1. one-time cost ----------------------------------------------------------------


def function_source(name: str, statements: int) -> str:
    """A function of ``statements`` statements of the kinds LLM pipelines are made of."""
    body = []
    for i in range(statements):
        kind = i % 5
        if kind == 0:
            body.append(f"drafts_{i} = [ask(f'{{q}} #{i}') for q in questions]")
        elif kind == 1:
            body.append(f"text_{i} = '\\n'.join(str(d).strip() for d in drafts_{i - 1})")
        elif kind == 2:
            body.append(f"if text_{i - 1} is None or len(text_{i - 1}) > 10_000:")
            body.append(f"    raise ValueError('too long: %s' % len(text_{i - 1}))")
        elif kind == 3:
            body.append(f"scores_{i} = {{k: v for k, v in enumerate(drafts_{i - 3})}}")
        else:
            body.append(f"results.append(max(scores_{i - 1}.values(), default=None))")
    lines = "\n".join("    " + line for line in body)
    return f"def {name}(questions):\n    results = []\n{lines}\n    return results\n"


def module_source(statements: int) -> str:
    return (
        "def ask(prompt):\n    return prompt\n\n\n"
        + function_source("first", statements)
        + "\n\n"
        + function_source("second", statements)
    )


def one_time_cost(repeat: int) -> None:
    print("1. one-time cost of rewriting a function (first use)")
    with tempfile.TemporaryDirectory() as folder:
        sys.path.insert(0, folder)
        try:
            for statements in (5, 30, 150):
                first: list[float] = []
                second: list[float] = []
                for run in range(repeat):
                    name = f"xcs_bench_{statements}_{run}"
                    Path(folder, f"{name}.py").write_text(module_source(statements))
                    module = importlib.import_module(name)
                    start = time.perf_counter()
                    entry_point(module.first)
                    first.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    entry_point(module.second)
                    second.append(time.perf_counter() - start)
                lines = len(function_source("f", statements).splitlines())
                show(
                    f"{statements:>3} statements ({lines} lines), first in module", first, 1e3, "ms"
                )
                show(f"{statements:>3} statements, another in the same module", second, 1e3, "ms")
        finally:
            sys.path.remove(folder)


# --- 2. cost per call site -------------------------------------------------------------

CALLS = 100_000


def helper(i: int) -> int:
    return i


def builtin_calls(n: int) -> int:
    total = 0
    for i in range(n):
        total += abs(i)
    return total


def user_calls(n: int) -> int:
    total = 0
    for i in range(n):
        total += helper(i)
    return total


def storing_calls(n: int) -> list[int]:
    out: list[int] = []
    for i in range(n):
        out.append(i)
    return out


def keyword_calls(n: int) -> int:
    total = 0
    for i in range(n):
        total += int(str(i), base=10)
    return total


def empty_calls(n: int) -> int:
    total = 0
    for _ in range(n):
        total += len(())
    return total


def per_call(fn: Callable[[int], Any], repeat: int) -> None:
    twin = entry_point(fn)
    plain_times: list[float] = []
    twin_times: list[float] = []
    for _ in range(repeat):
        for target, times in ((fn, plain_times), (twin, twin_times)):
            start = time.perf_counter()
            target(CALLS)
            times.append((time.perf_counter() - start) / CALLS)
    plain = statistics.median(plain_times)
    extra = [t - plain for t in twin_times]
    show(f"{fn.__name__}: plain call", plain_times, 1e6, "us")
    show(f"{fn.__name__}: added by the rewrite", extra, 1e6, "us")


def call_site_cost(repeat: int) -> None:
    print(f"2. cost per call site (loops of {CALLS:,} calls, outside a trace)")
    for fn in (builtin_calls, user_calls, storing_calls, keyword_calls, empty_calls):
        per_call(fn, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median shown)")
    args = parser.parse_args()
    one_time_cost(args.repeat)
    call_site_cost(args.repeat)


if __name__ == "__main__":
    main()
