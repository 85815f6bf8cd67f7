"""Errors under ``@jit`` are the errors of the plain function: same object, same type."""

from __future__ import annotations

import time
import traceback
from typing import Any

import pytest

from ember import xcs
from tests import helpers
from tests.helpers import LOG, OpError, combine, echo, fail, fail_if, slow_echo, upper


def test_the_original_exception_object_reaches_the_caller() -> None:
    raised: list[BaseException] = []

    @xcs.op
    def explode() -> Any:
        error = OpError("original")
        raised.append(error)
        raise error

    @xcs.jit
    def program() -> Any:
        return upper(explode())

    with pytest.raises(OpError) as info:
        program()
    assert info.value is raised[0]
    assert not isinstance(info.value, xcs.XCSError)


def test_the_note_names_the_op_and_the_users_line() -> None:
    @xcs.jit
    def program() -> Any:
        return fail("boom")  # MARK-fail-line

    with pytest.raises(OpError) as info:
        program()
    (note,) = info.value.__notes__
    line = next(i for i, text in enumerate(open(__file__), 1) if "MARK-fail-line" in text)
    assert note == (
        f"[ember.xcs] raised by op 'fail' (node %0) called at {__file__}:{line} with ('boom')"
    )
    # the traceback still shows where the op raised it
    assert "raise OpError(message)" in "".join(traceback.format_exception(info.value))


def test_callers_except_clauses_still_catch_it() -> None:
    @xcs.jit
    def program() -> Any:
        return combine([fail_if(x, 2) for x in range(4)])

    try:
        program()
    except ValueError as exc:  # OpError is a ValueError: a wrapper would break this
        assert "bad value 2" in str(exc)
    else:
        pytest.fail("no exception")


def test_several_failures_raise_the_first_in_program_order_every_time() -> None:
    @xcs.jit
    def program() -> Any:
        return [fail(f"#{i}", delay=0.05 * (5 - i)) for i in range(5)]

    for _ in range(4):
        with pytest.raises(OpError, match="#0"):
            program()


def test_a_failure_caught_in_the_program_lets_it_go_on() -> None:
    @xcs.jit
    def program() -> Any:
        try:
            str(fail("first"))
        except OpError:
            pass
        return [echo(i) for i in range(3)]

    assert program() == ["0", "1", "2"]


def test_a_failure_recorded_before_a_try_is_not_caught_by_it() -> None:
    def program() -> Any:
        bad = fail("before")
        try:
            return str(bad)
        except OpError:
            return "caught"

    with pytest.raises(OpError, match="before"):
        program()  # plain Python: the call raises, outside the try
    with pytest.raises(OpError, match="before"):
        xcs.jit(program)()


def test_ops_after_a_failure_do_not_start_when_they_have_not_yet() -> None:
    @xcs.jit(max_workers=2)
    def program() -> Any:
        first = slow_echo("slow", 0.1)
        bad = fail("bad")
        late = [echo(i) for i in range(10)]
        return first, bad, late

    with pytest.raises(OpError):
        program()
    assert "echo" not in LOG.names()  # the failure was seen before a slot freed up


def test_unstarted_ops_after_a_failure_never_start() -> None:
    from concurrent.futures import ThreadPoolExecutor

    @xcs.op
    def step(i: int) -> int:
        now = time.perf_counter()
        LOG.add(helpers.Call("step", repr(i), "", now, now, ""))
        if i == 0:
            time.sleep(0.3)
        if i == 1:
            raise OpError("step 1")
        time.sleep(0.05)
        return i

    with ThreadPoolExecutor(2) as pool:

        @xcs.jit(executor=pool)
        def program() -> Any:
            return [step(i) for i in range(10)]

        with pytest.raises(OpError, match="step 1"):
            program()
    assert sorted(c.args for c in LOG.entries) == ["0", "1"]


def op_raising_from_an_except_block() -> Any:
    return fail_inside_except("k")


@xcs.op
def fail_inside_except(key: str) -> Any:
    try:
        return {}[key]
    except KeyError:
        raise ValueError("no such key")  # noqa: B904 - the implicit chain is the point


def chain(exc: BaseException | None) -> list[str]:
    out = []
    while exc is not None and len(out) < 10:
        out.append(type(exc).__name__)
        exc = exc.__context__
    return out


@pytest.mark.parametrize("in_handler", [False, True])
def test_the_exception_chain_is_that_of_plain_python(in_handler: bool) -> None:
    def call(fn: Any) -> BaseException:
        try:
            if in_handler:
                try:
                    raise RuntimeError("caller's own")
                except RuntimeError:
                    fn()
            else:
                fn()
        except ValueError as exc:
            return exc
        raise AssertionError("no exception")

    plain = call(op_raising_from_an_except_block)
    jitted = call(xcs.jit(op_raising_from_an_except_block))
    assert chain(jitted) == chain(plain)
    assert chain(plain)[:2] == ["ValueError", "KeyError"]


# --- a pending value reaching code the rewrite does not cover ----------------------------


class Prompt:
    """Its ``__str__`` returns an answer held one level deeper than xcs fills before
    formatting (the documented limit): the interpreter gets the proxy and refuses it."""

    def __init__(self, text: Any) -> None:
        self.parts = [text]

    def __str__(self) -> str:
        return self.parts[0]  # type: ignore[no-any-return]


def test_a_pending_value_in_code_the_rewrite_misses_raises_pending_value_error() -> None:
    @xcs.jit
    def program(x: Any) -> Any:
        return f"<{Prompt(echo(x))}>"  # MARK-gap-line

    with pytest.raises(xcs.XCSError) as info:
        program(1)
    line = next(i for i, text in enumerate(open(__file__), 1) if "MARK-gap-line" in text)
    assert f"{__file__}:{line}" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)
    assert "Deferred" in str(info.value.__cause__)
    assert LOG.names() == ["echo"]  # the op ran once, and is not run again

    # later calls of that structure run plainly, and are right
    LOG.clear()
    assert program(2) == "<2>" == f"<{Prompt('2')}>"
    stats = program.stats()
    assert stats["decision"] == "fallback"
    assert f"{__file__}:{line}" in stats["fallback_reason"]
    assert (stats["traced_calls"], stats["direct_calls"]) == (1, 1)
    # another structure is traced afresh (and meets the same gap)
    with pytest.raises(xcs.XCSError):
        program("text")


def test_without_a_cache_key_the_whole_function_falls_back() -> None:
    @xcs.jit(cache=False)
    def program(x: Any) -> Any:
        return f"<{Prompt(echo(x))}>"

    with pytest.raises(xcs.XCSError):
        program(1)
    assert program(2) == "<2>"
    assert program("text") == "<text>"
    assert program.stats()["direct_calls"] == 2


def test_other_type_errors_propagate_unchanged() -> None:
    @xcs.op
    def refuses(x: Any) -> Any:
        raise TypeError(f"Deferred is a word an op may use too: {x}")

    @xcs.jit
    def op_error(x: Any) -> Any:
        return refuses(echo(x))

    @xcs.jit
    def user_error(x: Any) -> Any:
        return [echo(x)] + "not a list"  # type: ignore[operator]

    with pytest.raises(TypeError) as info:
        op_error(1)
    assert not isinstance(info.value, xcs.XCSError)
    with pytest.raises(TypeError) as info:
        user_error(1)
    assert not isinstance(info.value, xcs.XCSError)
    assert str(info.value) == 'can only concatenate list (not "str") to list'
    assert op_error.stats()["decision"] == user_error.stats()["decision"] == "untraced"
