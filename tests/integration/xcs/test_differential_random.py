"""Hypothesis writes random programs; ``jit(program)`` must do what ``program`` does.

A program is a sequence of statements over string and list variables: op calls
(independent, chained, fan-in), glue (``+``, methods, slices, comparisons), branches
and loops on results (which force values), ops that fail on some inputs, ``try``
scopes that catch them, callbacks library code calls (``map``, ``sorted(key=)``),
formatting and containers of pending values, and a user function the program calls. Each
program runs plainly and under ``@jit`` on two inputs; values, exceptions and op
call logs must match. The async version of each program (``async def``, its op calls
awaited, some left sync: :mod:`tests.asyncify`) must match ``asyncio.run`` of itself.
"""

from __future__ import annotations

import linecache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember import xcs
from tests import helpers
from tests.asyncify import asyncify, compile_async
from tests.helpers import ASYNC_TWINS, assert_same_as_plain


@st.composite
def programs(draw: st.DrawFn) -> str:
    strings = ["s0"]  # variables holding str values
    lists = ["xs"]  # variables holding lists of str
    lines = ["def program(xs, s0):"]

    def text() -> str:
        return draw(st.sampled_from(strings))

    def a_list() -> str:
        return draw(st.sampled_from(lists))

    def name() -> str:
        return f"v{len(strings) + len(lists)}"

    for _ in range(draw(st.integers(1, 9))):
        kind = draw(st.sampled_from(KINDS))
        target = name()
        produces = lists if kind in ("fan_out", "loop", "callback") else strings
        if kind == "echo":
            lines.append(f"    {target} = echo({text()})")
        elif kind == "upper":
            lines.append(f"    {target} = upper({text()} + {text()})")
        elif kind == "chain":
            lines.append(f"    {target} = upper(echo({text()}))")
        elif kind == "glue":
            lines.append(f"    {target} = {text()} + '-' + {text()}")
        elif kind == "method":
            method = draw(st.sampled_from(["strip()", "lower()", "replace('a', 'b')", "upper()"]))
            lines.append(f"    {target} = {text()}.{method}")
        elif kind == "slice":
            lines.append(f"    {target} = {text()}[:{draw(st.integers(0, 3))}]")
        elif kind == "fan_out":
            lines.append(f"    {target} = [echo(x + {text()}) for x in {a_list()}]")
        elif kind == "fan_in":
            lines.append(f"    {target} = combine({a_list()})")
        elif kind == "branch":
            condition = f"len({text()}) > {draw(st.integers(0, 6))}"
            lines += [
                f"    if {condition}:",
                f"        {target} = echo({text()})",
                "    else:",
                f"        {target} = upper({text()})",
            ]
        elif kind == "loop":
            source, skip = a_list(), text()
            lines += [
                f"    {target} = []",
                f"    for x in {source}:",
                f"        if x == {skip}:",
                "            continue",
                f"        {target}.append(upper(x))",
            ]
        elif kind == "fail_if":
            lines.append(f"    {target} = fail_if({text()}, 'ab')")
        elif kind == "compare_join":
            a, b, c, d = text(), text(), text(), text()
            lines.append(f"    {target} = 'same' if {a} == {b} else combine([{c}, {d}])")
        elif kind == "try_call":  # an exception scope: the failure is caught, as in plain
            lines += [
                "    try:",
                f"        {target} = fail_if({text()}, 'ab')",
                "    except OpError as error:",
                f"        {target} = 'caught ' + str(error)",
            ]
        elif kind == "try_block":  # several calls in one scope, the later one may not run
            a, b = text(), text()
            lines += [
                "    try:",
                f"        {target} = fail_if(echo({a}), 'a')",
                f"        {target} = upper({target} + {b})",
                "    except OpError:",
                f"        {target} = echo({b})",
            ]
        elif kind == "callback":  # library code calls the op: it runs at once
            call = draw(st.sampled_from(["list(map(upper, {}))", "sorted({}, key=echo)"]))
            lines.append(f"    {target} = {call.format(a_list())}")
        elif kind == "formatting":
            a, b = text(), text()
            form = draw(
                st.sampled_from(
                    [
                        f"f'{{{a}}}:{{echo({b})}}'",
                        f"'{{}}|{{x}}'.format(echo({a}), x={b})",
                        f"'%s/%s' % (upper({a}), {b})",
                        f"', '.join([echo({a}), {b}])",
                    ]
                )
            )
            lines.append(f"    {target} = {form}")
        elif kind == "container":
            a, b = text(), text()
            lines.append(f"    {target} = {{'k': echo({a}), 'j': [{b}]}}['k'] + {b}")
        elif kind == "helper":  # a user function the program calls: rewritten too
            lines.append(f"    {target} = helper({text()}, {a_list()})")
        elif kind == "while":
            start, limit = text(), draw(st.integers(0, 5))
            lines += [
                f"    {target} = {start}",
                f"    while len({target}) < {limit}:",
                f"        {target} = echo({target} + 'w')",
            ]
        produces.append(target)
    returned = draw(st.lists(st.sampled_from(strings + lists), min_size=1, max_size=4))
    lines.append(f"    return ({', '.join(returned)},)")
    return HELPER + "\n".join(lines) + "\n"


HELPER = """\
def helper(s, xs):
    parts = [upper(x + s) for x in xs]
    return echo(s) + combine(parts)


"""


KINDS = [
    "echo",
    "upper",
    "chain",
    "glue",
    "method",
    "slice",
    "fan_out",
    "fan_in",
    "branch",
    "loop",
    "fail_if",
    "compare_join",
    "while",
    "try_call",
    "try_block",
    "callback",
    "formatting",
    "container",
    "helper",
]


_counter = iter(range(10**9))


def compile_program(source: str) -> Any:
    filename = f"<xcs-random-{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {
        name: getattr(helpers, name) for name in ("echo", "upper", "combine", "fail_if", "OpError")
    }
    exec(compile(source, filename, "exec"), namespace)
    return namespace["program"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=programs(),
    inputs=st.lists(
        st.tuples(
            st.lists(st.sampled_from(["a", "b", "ab", " c "]), max_size=4),
            st.sampled_from(["a", "ab", "q"]),
        ),
        min_size=1,
        max_size=2,
    ),
)
def test_random_programs_match_plain_python(
    source: str, inputs: list[tuple[list[str], str]]
) -> None:
    program = compile_program(source)
    jitted = xcs.jit(program)
    for xs, s0 in inputs:
        assert_same_as_plain(program, jitted, list(xs), s0)


def compile_async_program(
    source: str, sync_every: int, gather_lists: bool = False, sync_helper: bool = False
) -> Any:
    namespace: dict[str, Any] = {
        name: getattr(helpers, name) for name in (*ASYNC_TWINS, *ASYNC_TWINS.values(), "OpError")
    }
    async_source = asyncify(
        source,
        ASYNC_TWINS,
        sync_every=sync_every,
        gather_lists=gather_lists,
        keep_sync=("helper",) if sync_helper else (),
    )
    return compile_async(async_source, namespace)["program"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=programs(),
    sync_every=st.sampled_from([0, 2, 3]),
    gather_lists=st.booleans(),
    sync_helper=st.booleans(),
    inputs=st.tuples(
        st.lists(st.sampled_from(["a", "b", "ab", " c "]), max_size=4),
        st.sampled_from(["a", "ab", "q"]),
    ),
)
def test_async_versions_of_random_programs_match_asyncio_run(
    source: str,
    sync_every: int,
    gather_lists: bool,
    sync_helper: bool,
    inputs: tuple[list[str], str],
) -> None:
    program = compile_async_program(source, sync_every, gather_lists, sync_helper)
    xs, s0 = inputs
    assert_same_as_plain(program, xcs.jit(program), list(xs), s0)
