"""print and logging of pending values: plain Python's text, stream and order, no waiting.

Each program runs plainly and under ``@jit`` with stdout and stderr pointing at one
buffer (so the order across streams is checked too) and a logging handler that
writes every field a formatter can show.
"""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ember import xcs
from tests.helpers import LOG, OpError, logged, waves

log = logging.getLogger("tests.effects")
QUESTIONS = ["alpha", "beta", "gamma"]
FIELDS = (
    "%(levelname)s|%(name)s|%(message)s|%(pathname)s:%(lineno)d|%(funcName)s|"
    "%(threadName)s|%(module)s"
)


@logged()
def ask(question: str) -> str:
    return question.upper()


@logged()
def broken(question: str) -> str:
    raise OpError(f"no answer for {question}")


class Loud:
    def __str__(self) -> str:
        raise AssertionError("formatted, though the level is disabled")


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """stdout, stderr and the test logger, all into one buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(FIELDS))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out
    finally:
        log.removeHandler(handler)


def run(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    LOG.clear()
    with captured() as out:
        try:
            result: Any = ("value", fn(*args))
        except Exception as error:  # noqa: BLE001 - compared below
            result = ("raised", type(error), str(error))
    return out.getvalue(), (result, LOG.calls())


def print_each(qs: list[str]) -> Any:
    out = []
    for q in qs:
        reply = ask(q)
        print("got", reply, [reply, 1], sep=" / ", end=";\n")
        out.append(reply)
    print("done", len(out))
    return out


def both_streams(qs: list[str]) -> Any:
    for q in qs:
        reply = ask(q)
        print(reply)
        print("warn:", reply.lower(), file=sys.stderr)
        print("plain line")
    return len(qs)


def mixed_with_write(qs: list[str]) -> Any:
    for q in qs:
        print("asked", ask(q))
        sys.stdout.write(f"[{q}]\n")  # library code writing: what waits goes first
    return None


def log_each(qs: list[str]) -> Any:
    out = []
    for i, q in enumerate(qs):
        reply = ask(q)
        log.info("reply %d: %s", i, reply)
        log.debug("never shown %s", Loud())  # disabled: formats nothing
        log.debug("nor this %s", reply)
        log.warning("%(q)s -> %(reply)s", {"q": q, "reply": reply})
        out.append(reply)
    log.log(logging.ERROR, "all %s done", len(out))
    return out


def _report(reply: Any) -> None:
    log.info("helper saw %s", reply, stacklevel=2)  # names the helper's caller


def log_details(qs: list[str]) -> Any:
    for q in qs:
        reply = ask(q)
        _report(reply)
        log.info("with extra %s", reply, extra={"user": "ada"})
        try:
            raise ValueError(q)
        except ValueError:
            log.exception("caught %s", reply)
    return qs


def log_the_stack(qs: list[str]) -> Any:
    for q in qs:
        log.info("where %s", ask(q), stack_info=True)
    return qs


def print_then_fail(qs: list[str]) -> Any:
    first = ask(qs[0])
    print("first:", first)
    bad = broken(qs[1])
    print("never:", bad)
    print("nor this line")
    return first


def print_then_a_failing_parse(qs: list[str]) -> Any:
    for q in qs:
        reply = ask(q)
        print("parsed", int(reply))  # plain stops at the first ValueError
    return None


# Op calls per parallel group of each program (the ideal: one wave).
PROGRAMS: dict[Any, list[int] | None] = {
    print_each: [3],
    both_streams: [3],
    mixed_with_write: [1, 1, 1],  # sys.stdout.write flushes: each call waits
    log_each: [3],
    log_details: [3],
    print_then_fail: None,
    print_then_a_failing_parse: None,
}


@pytest.mark.parametrize("program", list(PROGRAMS), ids=lambda p: p.__name__)
def test_output_and_its_order_are_plain_pythons(program: Any) -> None:
    plain_text, plain = run(program, QUESTIONS)
    jit_text, got = run(xcs.jit(program), QUESTIONS)
    assert jit_text == plain_text
    if PROGRAMS[program] is not None:
        assert got == plain
    else:  # calls recorded after the failure may have run (DESIGN.md §5.6)
        assert got[0] == plain[0] and not plain[1] - got[1]


@pytest.mark.parametrize("program", [p for p, w in PROGRAMS.items() if w], ids=lambda p: p.__name__)
def test_printing_and_logging_do_not_wait(program: Any) -> None:
    with captured():
        trace = xcs.trace(program, QUESTIONS)
    assert waves(trace) == PROGRAMS[program]


def test_the_record_says_what_plain_pythons_says() -> None:
    records: dict[str, list[logging.LogRecord]] = {}
    runs = [("plain", log_details), ("jit", xcs.jit(log_details))]
    runs += [("plain", log_the_stack), ("jit", xcs.jit(log_the_stack))]
    for label, fn in runs:

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.setdefault(label, []).append(record)

        keep = Keep()
        log.addHandler(keep)
        try:
            with captured():
                fn(QUESTIONS)
        finally:
            log.removeHandler(keep)
    fields = ("msg", "args", "lineno", "funcName", "pathname", "levelno", "threadName")
    for plain, jitted in zip(records["plain"], records["jit"], strict=True):
        assert [getattr(jitted, f) for f in fields] == [getattr(plain, f) for f in fields]
        assert getattr(jitted, "user", None) == getattr(plain, "user", None)
        assert (jitted.exc_info is None) == (plain.exc_info is None)
        assert jitted.getMessage() == plain.getMessage()
        if plain.stack_info is not None:  # the user's frames end both stacks
            assert jitted.stack_info is not None
            assert jitted.stack_info.splitlines()[-2:] == plain.stack_info.splitlines()[-2:]
        else:
            assert jitted.stack_info is None


def test_module_level_logging_sets_up_the_root_logger_as_plain_python_does(
    tmp_path: Any,
) -> None:
    script = textwrap.dedent(
        """
        import logging, sys
        from ember import xcs

        @xcs.op
        def ask(q: str) -> str:
            return q * 2

        def main(qs):
            for q in qs:
                logging.warning("asked %s, got %s", q, ask(q))
                logging.info("not shown %s", ask(q))
            return qs

        fn = xcs.jit(main) if sys.argv[1] == "jit" else main
        fn(["a", "b"])
        """
    )
    path = tmp_path / "module_logging.py"
    path.write_text(script)
    outputs = [
        subprocess.run([sys.executable, str(path), how], capture_output=True, text=True, timeout=60)
        for how in ("plain", "jit")
    ]
    assert outputs[0].returncode == outputs[1].returncode == 0, outputs[1].stderr
    assert (
        outputs[1].stderr
        == outputs[0].stderr
        == "WARNING:root:asked a, got aa\n" + ("WARNING:root:asked b, got bb\n")
    )


def test_no_effect_is_left_waiting_after_a_call_ends() -> None:
    from ember.xcs._internal import tracer

    def interrupted(qs: list[str]) -> None:
        print(ask(qs[0]))
        raise KeyboardInterrupt

    with captured():
        xcs.trace(print_each, QUESTIONS, execute=False)  # recorded, never written
        with pytest.raises(KeyboardInterrupt):
            xcs.jit(interrupted)(QUESTIONS)  # cancelled, never written
    assert tracer.effects == 0  # library calls elsewhere do not look for effects to flush
