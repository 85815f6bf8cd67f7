"""``@jit``'s records on the ``ember.xcs`` logger: decisions (DEBUG) and fallbacks (WARNING)."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from ember import xcs
from ember.xcs._internal import logs
from tests.helpers import echo, kept_records


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The records of ``ember.xcs``, at DEBUG and up."""
    with kept_records("ember.xcs") as kept:
        yield kept


def of(records: list[logging.LogRecord], event: str) -> list[logging.LogRecord]:
    return [r for r in records if getattr(r, "ember_event", None) == event]


def test_a_parallel_call_logs_its_decision_at_debug(records):
    @xcs.jit
    def fan_out(xs: list[str]) -> list[str]:
        return [echo(x) for x in xs]

    assert fan_out(["a", "b", "c"]) == ["a", "b", "c"]
    (record,) = records
    assert (record.name, record.levelno) == ("ember.xcs", logging.DEBUG)
    assert record.ember_event == "decision"
    qualname = fan_out.__qualname__
    assert record.ember_function == qualname and record.ember_module == __name__
    assert (record.ember_decision, record.ember_ops, record.ember_parallelism) == ("parallel", 3, 3)
    assert record.getMessage() == (
        f"xcs.jit {qualname}: traced a call: 3 ops, at most 3 at once: parallel; later calls "
        "with arguments of this structure are traced too"
    )


def test_a_call_without_parallelism_decides_direct_and_its_structure_runs_plainly(records):
    @xcs.jit
    def chain(x: str) -> str:
        return echo(echo(x))

    for text in ("a", "b", "c"):
        assert chain(text) == text
    decisions = of(records, "decision")
    # the first call decides; the next runs plainly, unlogged; the re-check traces again
    assert len(decisions) == chain.stats()["traced_calls"] < 3
    assert {r.ember_decision for r in decisions} == {"direct"}
    message = decisions[0].getMessage()
    assert "run as plain Python (traced again after 1, 2, 4, ... of them)" in message
    assert (decisions[0].ember_ops, decisions[0].ember_parallelism) == (2, 1)


def test_without_a_cache_every_call_is_traced_and_logged(records):
    @xcs.jit(cache=False)
    def chain(x: str) -> str:
        return echo(echo(x))

    for text in ("a", "b", "c"):
        chain(text)
    decisions = of(records, "decision")
    assert len(decisions) == 3
    assert all("every call is traced (no decision is kept)" in r.getMessage() for r in decisions)


def test_a_call_that_raised_decides_nothing(records):
    @xcs.jit
    def broken(x: str) -> str:
        echo(x)
        raise ValueError("no")

    with pytest.raises(ValueError):
        broken("a")
    (record,) = records
    assert record.ember_decision is None
    assert "it raised, so nothing is decided" in record.getMessage()


def test_a_function_that_cannot_be_rewritten_falls_back_once_with_a_warning(records):
    @functools.lru_cache
    def cached(x: str) -> str:
        return echo(x)

    wrapped = xcs.jit(cached)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xcs.XCSWarning)
        for text in ("a", "b", "c"):
            assert wrapped(text) == text
    (record,) = records  # once, when decided; the plain runs after it log nothing
    assert (record.levelno, record.ember_event, record.ember_scope) == (
        logging.WARNING,
        "fallback",
        "function",
    )
    assert record.ember_function == cached.__qualname__
    assert "functools.lru_cache" in record.ember_reason
    assert record.getMessage().startswith(f"xcs.jit cannot rewrite {cached.__qualname__}: it is a ")
    assert record.getMessage().endswith(
        "It runs as plain Python from now on: correct, but its calls do not run in parallel"
    )


class Prompt:
    """Its ``__str__`` returns an answer held one level deeper than xcs fills before
    formatting: the interpreter gets the pending value and refuses it (a gap)."""

    def __init__(self, text: Any) -> None:
        self.parts = [text]

    def __str__(self) -> str:
        return self.parts[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("cache", [True, False])
def test_a_pending_value_reaching_real_code_logs_a_fallback(records, cache):
    @xcs.jit(cache=cache)
    def program(x: Any) -> Any:
        return f"<{Prompt(echo(x))}>"  # MARK-logged-gap

    with pytest.raises(xcs.XCSError):
        program(1)
    line = next(i for i, text in enumerate(open(__file__), 1) if "MARK-logged-gap" in text)
    (record,) = of(records, "fallback")
    assert record.levelno == logging.WARNING
    assert f"{__file__}:{line}" in record.ember_reason
    assert record.ember_scope == ("structure" if cache else "function")
    later = (
        "later calls with arguments of this structure run as plain Python"
        if cache
        else "every later call runs as plain Python"
    )
    assert record.getMessage() == f"xcs.jit {program.__qualname__}: {record.ember_reason}; {later}"
    assert program(2) == "<2>"  # plainly, and not logged again
    assert len(of(records, "fallback")) == 1


def test_decisions_are_not_built_when_debug_is_off(monkeypatch):
    # the record of a traced call is guarded: at INFO it is never built
    logger = logging.getLogger("ember.xcs")
    level = logger.level
    logger.setLevel(logging.INFO)

    def built(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a decision record was built with DEBUG off")

    monkeypatch.setattr(logs, "decided", built)
    try:

        @xcs.jit
        def fan_out(xs: list[str]) -> list[str]:
            return [echo(x) for x in xs]

        assert fan_out(["a", "b"]) == ["a", "b"]
    finally:
        logger.setLevel(level)
