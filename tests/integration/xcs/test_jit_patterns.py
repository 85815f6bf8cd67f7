"""The differential test: for every pattern, ``jit(f)`` does exactly what ``f`` does.

Each program runs plainly and under ``@jit`` on the same inputs -- on the first call
and on later calls with new arguments -- and must give the same value (same nested
types, no proxy left), or the same exception, and the same op calls with the same
arguments.
"""

from __future__ import annotations

from collections import UserList, deque, namedtuple
from typing import Any

import pytest

from ember import xcs
from tests.helpers import (
    LOG,
    Box,
    as_list,
    assert_same_as_plain,
    combine,
    echo,
    fail,
    fail_if,
    increment,
    info,
    length,
    make_box,
    slow_echo,
    upper,
)

Pair = namedtuple("Pair", "left right")


# --- comprehensions -------------------------------------------------------------


def list_comprehension(xs: list[int]) -> list[str]:
    return [echo(x) for x in xs]


def nested_comprehension(xs: list[int]) -> list[list[str]]:
    return [[echo(f"{x}.{y}") for y in range(2)] for x in xs]


def conditional_comprehension(xs: list[int]) -> list[str]:
    return [upper(x) for x in xs if x % 2 == 0]


def comprehension_filtered_on_results(xs: list[int]) -> list[Any]:
    results = [echo(x) for x in xs]
    return [r for r in results if r.endswith("1") or r.endswith("3")]


def generator_into_list(xs: list[int]) -> list[str]:
    return list(echo(x) for x in xs)


def generator_into_tuple(xs: list[int]) -> tuple[str, ...]:
    return tuple(upper(x) for x in xs)


def generator_summed(xs: list[int]) -> Any:
    return sum(length(str(x) * 3) for x in xs)


def dict_comprehension(xs: list[int]) -> dict[int, str]:
    return {x: echo(x) for x in xs}


def dict_comprehension_keyed_by_results(xs: list[int]) -> dict[str, int]:
    return {echo(x): x for x in xs}


def set_comprehension(xs: list[int]) -> set[str]:
    return {echo(x % 3) for x in xs}


def comprehension_of_chains(xs: list[int]) -> list[str]:
    return [upper(echo(x)) for x in xs]


# --- loops ------------------------------------------------------------------------


def loop_with_append(xs: list[int]) -> list[str]:
    out = []
    for x in xs:
        out.append(echo(x))
    return out


def loop_several_ops_per_iteration(xs: list[int]) -> list[tuple[str, str, int]]:
    out = []
    for x in xs:
        a = echo(x)
        b = upper(f"v{x}")
        n = length(str(x))
        out.append((a, b, n))
    return out


def loop_with_break_on_input(xs: list[int]) -> list[str]:
    out = []
    for x in xs:
        if x >= 3:
            break
        out.append(echo(x))
    return out


def loop_with_break_on_result(xs: list[int]) -> list[str]:
    out = []
    for x in xs:
        r = echo(x)
        if r == "2":
            break
        out.append(r)
    return out


def loop_with_continue(xs: list[int]) -> list[str]:
    out = []
    for x in xs:
        if x % 2:
            continue
        out.append(upper(x))
    return out


def nested_loops(xs: list[int]) -> list[str]:
    out = []
    for x in xs:
        for y in ("a", "b"):
            out.append(echo(f"{x}{y}"))
    return out


def while_loop_on_results(xs: list[int]) -> Any:
    n = increment(len(xs))
    steps = 0
    while n < 10:
        n = increment(n)
        steps += 1
    return n, steps


def loop_accumulating_glue(xs: list[int]) -> Any:
    total = 0
    for x in xs:
        total = total + length(str(x) * (x + 1))
    return total


# --- chains, fan-out, fan-in --------------------------------------------------------


def chain(xs: list[int]) -> str:
    return upper(echo(combine(xs)))


def independent_ops(xs: list[int]) -> tuple[str, str, int]:
    a = echo(xs[0] if xs else "none")
    b = upper("independent")
    c = length(xs)
    return a, b, c


def fan_in(xs: list[int]) -> str:
    return combine([echo(x) for x in xs])


def fan_in_by_keyword(xs: list[int]) -> str:
    return combine(parts=[upper(x) for x in xs], sep="+")


def mixed(xs: list[int]) -> dict[str, Any]:
    drafts = [echo(x) for x in xs]
    joined = combine(drafts)
    shout = upper(joined)
    sizes = [length(d) for d in drafts]
    verdict = "long" if length(joined) > 5 else "short"
    return {"shout": shout, "sizes": sizes, "verdict": verdict}


def branch_on_result(xs: list[int]) -> str:
    first = echo(xs[0] if xs else 0)
    if first == "1":
        return upper("one")
    return combine([upper(x) for x in xs])


# --- glue on results ----------------------------------------------------------------


def arithmetic_glue(xs: list[int]) -> Any:
    a = length(str(xs))
    b = length("ab" * len(xs))
    return (a + b) * 2 - 1, a // 2, -a, b % 3, a > b, a == b


def attribute_and_item_glue(xs: list[int]) -> Any:
    d = info(xs[0] if xs else 0)
    box = make_box("b", xs)
    return d["text"], d["items"][1], box.label, box.value


def method_call_glue(xs: list[int]) -> Any:
    words = [echo(f" w{x} ") for x in xs]
    return [w.strip().upper() for w in words]


def in_place_change_of_a_result(xs: list[int]) -> Any:
    items = as_list(*xs)
    items.append(99)
    items += [100]
    first = length(items)
    items.append(101)
    return items, first, length(items)


def reader_then_writer(xs: list[int]) -> Any:
    items = as_list(*xs)
    seen = combine(items)  # must not see the append below
    items.append("late")
    return seen, items


def glue_operands_changed_later(xs: list[int]) -> Any:
    out = as_list(*xs)
    box = Box("a")
    out.append(box)  # plain Python stores the object itself ...
    box.value = 5  # ... so this change shows in ``out``
    pair = ("b", [])
    out.append(pair)
    pair[1].append("x")
    inner = ["c"]
    out += [inner]
    inner.append("d")
    return out, out[len(xs)] is box


def slices_with_pending_bounds(xs: list[int]) -> Any:
    items = as_list(*xs)
    n = length(xs[:2])
    return items[n:], items[:n], items[::n] if xs else None


def known_value_stored_then_changed(xs: list[int]) -> Any:
    inner = as_list("inner")
    len(inner)  # now known
    outer = as_list(*xs)
    outer.append(inner)  # stores the object itself
    outer.append((inner, 1))
    inner.append("changed")
    return outer


class Report:
    def __init__(self, answers: Any) -> None:
        self.answers = answers
        self.pair = (answers[:1], {"n": len(answers)})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Report) and vars(self) == vars(other)


def result_objects_holding_results(xs: list[int]) -> Any:
    answers = [echo(x) for x in xs]
    return Report(answers), deque(answers), UserList(answers)


# --- arguments ----------------------------------------------------------------------


def mutation_after_call(xs: list[int]) -> Any:
    batch = list(xs)
    r = combine(batch)
    batch.clear()
    batch.append("changed")
    return r, batch


def views_and_bytearrays_changed_after_the_call(xs: list[int]) -> Any:
    table = {str(x): x for x in xs}
    buffer = bytearray(b"abc")
    results = combine(table.keys()), combine(table.values()), combine(table.items()), length(buffer)
    table.clear()
    buffer.clear()
    return results


def iterator_argument(xs: list[int]) -> Any:
    return combine(iter(xs)), combine(str(x) for x in xs)


def deferred_inside_containers(xs: list[int]) -> Any:
    nested = {"a": [echo(x) for x in xs], "b": (upper("t"), {"c": echo("d")})}
    return combine([nested["a"], nested["b"]]), nested


def results_in_structures(xs: list[int]) -> Any:
    return (
        Pair(echo("l"), upper("r")),
        Box("box", [echo(x) for x in xs]),
        frozenset({"k"}),
        {"tuple": (echo(1), (echo(2),))},
    )


def keyword_arguments(xs: list[int]) -> Any:
    return [slow_echo(x=x, delay=0.001) for x in xs]


@xcs.jit
def _inner_helper(x: Any) -> Any:
    return upper(echo(x))


def calls_jitted_helper(xs: list[int]) -> Any:
    return [_inner_helper(x) for x in xs]


# --- errors -------------------------------------------------------------------------


def op_failure(xs: list[int]) -> Any:
    results = [fail_if(x, 2) for x in xs]
    return combine(results)


def earliest_failure_wins(xs: list[int]) -> Any:
    a = fail("first", delay=0.05)
    b = fail("second")
    return a, b


def user_raise_after_ops(xs: list[int]) -> Any:
    _ = [echo(x) for x in xs]
    raise KeyError("user")


def op_failure_before_user_raise(xs: list[int]) -> Any:
    _ = fail("op first")
    raise KeyError("user")


def failure_caught_by_user(xs: list[int]) -> Any:
    try:
        if fail("boom"):
            return "unreachable"
    except ValueError as exc:
        return f"caught {exc}"
    return None


PROGRAMS = [
    list_comprehension,
    nested_comprehension,
    conditional_comprehension,
    comprehension_filtered_on_results,
    generator_into_list,
    generator_into_tuple,
    generator_summed,
    dict_comprehension,
    dict_comprehension_keyed_by_results,
    set_comprehension,
    comprehension_of_chains,
    loop_with_append,
    loop_several_ops_per_iteration,
    loop_with_break_on_input,
    loop_with_break_on_result,
    loop_with_continue,
    nested_loops,
    while_loop_on_results,
    loop_accumulating_glue,
    chain,
    independent_ops,
    fan_in,
    fan_in_by_keyword,
    mixed,
    branch_on_result,
    arithmetic_glue,
    attribute_and_item_glue,
    method_call_glue,
    in_place_change_of_a_result,
    reader_then_writer,
    glue_operands_changed_later,
    slices_with_pending_bounds,
    known_value_stored_then_changed,
    result_objects_holding_results,
    views_and_bytearrays_changed_after_the_call,
    mutation_after_call,
    iterator_argument,
    deferred_inside_containers,
    results_in_structures,
    keyword_arguments,
    calls_jitted_helper,
    op_failure,
    earliest_failure_wins,
    user_raise_after_ops,
    op_failure_before_user_raise,
    failure_caught_by_user,
]

INPUTS = [[1, 2, 3, 4], [0, 5], [3], [], [1, 2, 3, 4, 5, 6, 7]]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_jit_matches_plain_python(program: Any) -> None:
    jitted = xcs.jit(program)
    for xs in INPUTS:  # first call, then later calls with new arguments
        assert_same_as_plain(program, jitted, xs)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_trace_matches_plain_python(program: Any) -> None:
    def traced(xs: list[int]) -> Any:
        return xcs.trace(program, xs).result

    assert_same_as_plain(program, traced, [2, 1, 4])


def test_earliest_failure_in_program_order_wins_although_it_finishes_last() -> None:
    jitted = xcs.jit(earliest_failure_wins)
    for _ in range(5):
        with pytest.raises(ValueError, match="first"):
            jitted([])


def test_op_failure_keeps_its_type_and_gains_a_note() -> None:
    jitted = xcs.jit(op_failure)
    with pytest.raises(ValueError) as info_:
        jitted([1, 2, 3])
    assert type(info_.value).__name__ == "OpError"
    notes = getattr(info_.value, "__notes__", [])
    assert any("fail_if" in n and "test_jit_patterns.py" in n for n in notes), notes


def test_repeated_calls_never_return_stale_results() -> None:
    jitted = xcs.jit(mixed)
    for xs in ([1, 2], [3, 4, 5], [1, 2], [9]):
        assert jitted(xs) == mixed(xs)


def test_each_op_runs_once_per_call() -> None:
    jitted = xcs.jit(list_comprehension)
    LOG.clear()
    jitted([1, 2, 3])
    assert sorted(LOG.names()) == ["echo", "echo", "echo"]
