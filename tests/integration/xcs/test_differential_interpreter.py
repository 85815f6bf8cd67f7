"""Hypothesis writes programs as data; one fixed interpreter runs them plainly and jitted.

The interpreter below is ordinary user code: it stores into an environment dict,
branches on op results, wraps steps in ``try``/``except`` around failing ops and in
``with`` blocks whose ``__exit__`` logs what it saw, fans out, builds comprehensions,
hands ops to library code (``map``), joins and formats strings, and stores into an
outer container. Ops also get the arguments real applications pass: a ``Counter``, a
custom mapping keeping its data in another object, an iterator they consume partly (a
cursor), an infinite one; answers become dict keys in the outer container. ``@jit``
rewrites it (and the recursion into nested blocks), so every construct meets the
call-site rewrite, the exception scopes and the dispatcher. Values, exceptions, the
final environment, the outer container and the op call log must all match plain
Python. The interpreter's async version (:mod:`tests.asyncify`: ``async def``, awaited
op calls, ``async with`` a scope, ``async for`` its loops, ``asyncio.gather`` for its
fan-outs) must match ``asyncio.run`` of itself on the same programs.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
from collections.abc import Iterator, MutableMapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember import xcs
from tests import helpers
from tests.asyncify import asyncify, compile_async
from tests.helpers import (
    ASYNC_TWINS,
    OpError,
    assert_same_as_plain,
    echo,
    fail_when,
    logged,
    upper,
)

NAMES = ["a", "b", "c", "d"]


class Scope:
    """A context manager that logs, into the outer container, what its ``__exit__`` saw."""

    def __init__(self, outer: dict[str, Any], label: str) -> None:
        self.events = outer.setdefault("scopes", [])
        self.label = label

    def __enter__(self) -> Scope:
        self.events.append(f"enter {self.label}")
        return self

    def __exit__(self, kind: Any, error: Any, tb: Any) -> bool:
        self.events.append(f"exit {self.label}: {kind.__name__ if kind else 'ok'}")
        return False


class Fields(MutableMapping):  # type: ignore[type-arg]
    """A mapping over another object's dict (request headers, say)."""

    def __init__(self) -> None:
        self._inner = {"data": {}}

    def __getitem__(self, key: str) -> Any:
        return self._inner["data"][key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._inner["data"][key] = value

    def __delitem__(self, key: str) -> None:
        del self._inner["data"][key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner["data"])

    def __len__(self) -> int:
        return len(self._inner["data"])

    def __repr__(self) -> str:
        return f"Fields({self._inner['data']!r})"


@logged()
def pairs(mapping: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in mapping.items())


@logged()
def take(items: Any, n: int) -> str:
    return "|".join(str(item) for item in itertools.islice(items, n))


def interpret(steps: list[tuple[Any, ...]], env: dict[str, Any], outer: dict[str, Any]) -> None:
    """Run the steps of a program on ``env`` (recursing into nested blocks)."""
    for step in steps:
        kind = step[0]
        if kind == "echo":
            env[step[1]] = echo(env[step[2]])
        elif kind == "upper":
            env[step[1]] = upper(env[step[2]])
        elif kind == "fail_when":
            env[step[1]] = fail_when(env[step[2]], step[3])
        elif kind == "glue":
            env[step[1]] = env[step[2]] + "-" + env[step[3]]
        elif kind == "format":
            env[step[1]] = f"{env[step[2]]}:{env[step[3]]}"
        elif kind == "fanout":
            env[step[1]] = "|".join(echo(env[step[2]] + str(i)) for i in range(step[3]))
        elif kind == "set":
            env[step[1]] = ",".join(sorted({echo(env[n]) for n in step[2]}))
        elif kind == "branch":
            if len(env[step[1]]) > step[2]:
                interpret(step[3], env, outer)
            else:
                interpret(step[4], env, outer)
        elif kind == "try":
            try:
                interpret(step[1], env, outer)
            except OpError as exc:
                env[step[2]] = f"caught {exc}"
        elif kind == "store":
            outer[step[1]] = env[step[2]]
        elif kind == "map":  # library code calls the op: each call runs at once
            env[step[1]] = "|".join(map(upper, [env[n] for n in step[2]]))
        elif kind == "with":
            with Scope(outer, step[2]):
                interpret(step[1], env, outer)
        elif kind == "loop":
            for _ in range(step[1]):
                interpret(step[2], env, outer)
        elif kind == "counter":
            env[step[1]] = echo(collections.Counter(env[step[2]]))
        elif kind == "fields":
            fields = Fields()
            for n in step[2]:
                fields[n] = env[n]
            env[step[1]] = pairs(fields)
            fields["late"] = "added after the call"  # the op saw the fields without it
        elif kind == "cursor":
            rows = iter([env[n] for n in step[2]])
            env[step[1]] = take(rows, step[3])  # takes some rows; the rest stay
            outer["rest"] = ",".join(rows)
        elif kind == "cycle":
            env[step[1]] = take(itertools.cycle([env[n] for n in step[2]]), step[3])
        elif kind == "keyed":
            outer.setdefault("by_answer", {})[env[step[1]]] = step[1]
            outer.setdefault("groups", collections.defaultdict(list))[env[step[1]][:2]].append(
                step[1]
            )


def program(steps: list[tuple[Any, ...]], seed: str) -> Any:
    env = {name: f"{seed}{name}" for name in NAMES}
    outer: dict[str, Any] = {}
    interpret(steps, env, outer)
    return env, outer


jitted_program = xcs.jit(program)


class AScope(Scope):
    """:class:`Scope` as an async context manager (it lets the loop run on entry)."""

    async def __aenter__(self) -> AScope:
        await asyncio.sleep(0)
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: Any, tb: Any) -> bool:
        return self.__exit__(kind, error, tb)


def _async_program(keep_sync: tuple[str, ...] = ()) -> Any:
    source = inspect.getsource(interpret) + "\n\n" + inspect.getsource(program)
    namespace = dict(globals(), AScope=AScope)
    namespace.update({twin: getattr(helpers, twin) for twin in ASYNC_TWINS.values()})
    async_source = asyncify(
        source, ASYNC_TWINS, async_managers={"Scope": "AScope"}, keep_sync=keep_sync
    )
    return compile_async(async_source, namespace)["program"]


async_program = _async_program()
jitted_async_program = xcs.jit(async_program)
# Only the entry point ported: the interpreter stays a sync function of the user's,
# called from async code; under @jit its waits are awaits all the same.
half_async_program = _async_program(keep_sync=("interpret",))
jitted_half_async_program = xcs.jit(half_async_program)

name = st.sampled_from(NAMES)
failing = st.tuples(st.just("fail_when"), name, name, st.sampled_from(["a", "b", "x", "y", "-"]))
simple_steps = st.one_of(
    st.tuples(st.just("echo"), name, name),
    st.tuples(st.just("upper"), name, name),
    failing,
    st.tuples(st.just("glue"), name, name, name),
    st.tuples(st.just("format"), name, name, name),
    st.tuples(st.just("fanout"), name, name, st.integers(0, 3)),
    st.tuples(st.just("set"), name, st.lists(name, min_size=1, max_size=3)),
    st.tuples(st.just("store"), name, name),
    st.tuples(st.just("map"), name, st.lists(name, min_size=1, max_size=3)),
    st.tuples(st.just("counter"), name, name),
    st.tuples(st.just("fields"), name, st.lists(name, min_size=1, max_size=3, unique=True)),
    st.tuples(st.just("cursor"), name, st.lists(name, max_size=3), st.integers(0, 2)),
    st.tuples(st.just("cycle"), name, st.lists(name, min_size=1, max_size=2), st.integers(0, 3)),
    st.tuples(st.just("keyed"), name),
)


def blocks(inner: st.SearchStrategy[list[tuple[Any, ...]]]) -> st.SearchStrategy[tuple[Any, ...]]:
    # A try block always holds a failing op among its steps, so its handler matters.
    guarded = st.tuples(inner, failing, inner).map(lambda t: [*t[0], t[1], *t[2]])
    return st.one_of(
        st.tuples(st.just("branch"), name, st.integers(0, 6), inner, inner),
        st.tuples(st.just("try"), guarded, name),
        st.tuples(st.just("try"), guarded, name),
        st.tuples(st.just("loop"), st.integers(0, 2), inner),
        st.tuples(st.just("with"), inner, name),
        st.tuples(st.just("with"), guarded, name),  # __exit__ sees the failure
    )


# Two levels of blocks, each level a mix of simple steps and blocks (try blocks, the
# subtle part, come up often; so do failing ops, which the letters make likely).
level_one = st.lists(
    st.one_of(simple_steps, blocks(st.lists(simple_steps, max_size=4))), max_size=4
)
steps = st.lists(st.one_of(simple_steps, blocks(level_one)), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program_steps=steps, seed=st.sampled_from(["x", "y"]))
def test_interpreted_programs_match_plain_python(program_steps: list[Any], seed: str) -> None:
    assert_same_as_plain(program, jitted_program, program_steps, seed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program_steps=steps, seed=st.sampled_from(["x", "y"]))
def test_async_interpreted_programs_match_asyncio_run(program_steps: list[Any], seed: str) -> None:
    assert_same_as_plain(async_program, jitted_async_program, program_steps, seed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program_steps=steps, seed=st.sampled_from(["x", "y"]))
def test_sync_interpreter_called_from_async_code_matches_asyncio_run(
    program_steps: list[Any], seed: str
) -> None:
    assert_same_as_plain(half_async_program, jitted_half_async_program, program_steps, seed)
