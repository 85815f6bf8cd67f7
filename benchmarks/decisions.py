"""Cache benchmark: what a call of a jitted function pays before anything runs.

Run by hand (not part of the test suite)::

    python benchmarks/decisions.py
    python benchmarks/decisions.py --repeat 9

Sections:

1. Key computation plus decision lookup for 1, 2 and 3 scalar arguments (the goal
   is under 1 us).
2. A call of a jitted function decided ``direct`` (no parallelism) against the plain
   function (the goal is at most 5 us more).
3. Keys of big arguments: a list of 1,000 prompts, a list of 1,000 chat messages
   (dicts), a dict of 1,000 entries.

Medians over ``--repeat`` runs of many calls each, with the min-max range.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from ember import xcs
from ember.xcs._internal.decisions import Decision, Decisions, call_key


def per_call(
    stmt: str | Callable[[], object], number: int, repeat: int, **names: Any
) -> list[float]:
    """Seconds per execution of ``stmt`` (a statement is timed without a call around it)."""
    times = timeit.repeat(stmt, number=number, repeat=repeat, globals=names)
    return [t / number for t in times]


def show(label: str, times: list[float]) -> float:
    med = statistics.median(times) * 1e6
    print(f"  {label:<52} {med:8.3f} us  ({min(times) * 1e6:.3f}-{max(times) * 1e6:.3f})")
    return med


def key_and_lookup(repeat: int) -> None:
    print("1. key + decision lookup")
    decisions = Decisions()
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("1 scalar argument(s)", (1,), {}),
        ("2 scalar argument(s)", ("prompt", 0.5), {}),
        ("3 scalar argument(s)", ("prompt", 3, True), {}),
        ("1 scalar and 1 keyword argument", ("prompt",), {"temperature": 0.5}),
    ]
    for label, args, kwargs in cases:
        decisions.set(call_key(args, kwargs), Decision.PARALLEL)
        show(
            label,
            per_call(
                "get(call_key(args, kwargs))",
                200_000,
                repeat,
                get=decisions.get,
                call_key=call_key,
                args=args,
                kwargs=kwargs,
            ),
        )


def add(a: int, b: int) -> int:
    return a + b


jitted_add = xcs.jit(add)


def direct_overhead(repeat: int) -> None:
    print("2. a call of a function decided `direct` (no ops) vs the plain function")
    jitted_add(1, 2)  # traced once: no parallelism, so `direct` from now on
    assert jitted_add.stats()["decision"] == "direct"
    plain = show("plain add(1, 2)", per_call("add(1, 2)", 200_000, repeat, add=add))
    jitted = show("jitted add(1, 2)", per_call("add(1, 2)", 200_000, repeat, add=jitted_add))
    print(f"  -> overhead {jitted - plain:.3f} us per call (goal <= 5 us)")


def big_keys(repeat: int) -> None:
    print("3. keys of big arguments")
    prompts = [f"question {i}" for i in range(1000)]
    messages = [{"role": "user", "content": p} for p in prompts]
    table = {p: i for i, p in enumerate(prompts)}
    for label, value in (
        ("1,000 prompts (list of str)", prompts),
        ("1,000 chat messages (list of dicts)", messages),
        ("a dict of 1,000 entries", table),
    ):
        show(label, per_call("call_key(args, {})", 1_000, repeat, call_key=call_key, args=(value,)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (median shown)")
    args = parser.parse_args()
    key_and_lookup(args.repeat)
    direct_overhead(args.repeat)
    big_keys(args.repeat)


if __name__ == "__main__":
    main()
