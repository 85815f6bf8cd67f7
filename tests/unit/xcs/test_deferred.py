"""Deferred values: what is recorded as glue, what demands the value."""

from __future__ import annotations

import copy
import pickle

import pytest

from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.ir import Status
from ember.xcs._internal.tracer import Recording
from tests.helpers import LOG, OpError, as_list, echo, fail, info, make_box


def is_pending(value: object) -> bool:
    return type(value) is Deferred and not value._self_owner.is_known(value._self_node)


def test_an_op_call_in_a_trace_returns_a_pending_deferred(recording: Recording) -> None:
    d = echo.defer("x")
    assert type(d) is Deferred
    assert is_pending(d)
    assert LOG.names() == []  # nothing ran


@pytest.mark.parametrize(
    "operation",
    [
        lambda d: d.upper,
        lambda d: d.upper(),
        lambda d: d[0],
        lambda d: d + "!",
        lambda d: "!" + d,
        lambda d: d * 2,
        lambda d: d == "x",
        lambda d: d != "x",
        lambda d: d < "y",
        lambda d: d >= "a",
        lambda d: d % (),
    ],
    ids=["attr", "method", "item", "add", "radd", "mul", "eq", "ne", "lt", "ge", "mod"],
)
def test_glue_on_a_pending_value_is_recorded_not_run(recording: Recording, operation) -> None:
    d = echo.defer("x")
    result = operation(d)
    assert is_pending(result)
    assert LOG.names() == []
    assert recording.nodes[-1].kind == "glue"


def test_arithmetic_and_unary_glue_give_the_plain_results(recording: Recording) -> None:
    from tests.helpers import length

    n = length.defer("abcd")
    results = [n + 1, 1 + n, n - 1, 10 - n, n * 3, n / 2, n // 3, n % 3, n**2, -n, +n, abs(-n), ~n]
    assert all(is_pending(r) for r in results)
    assert [int(r) for r in results] == [5, 5, 3, 6, 12, 2, 1, 1, 16, -4, 4, 4, -5]
    assert LOG.names() == ["length"]
    assert pow(n, 3, 5) == 4 and 2**n == 16


@pytest.mark.parametrize(
    ("demand", "expected"),
    [
        (bool, True),
        (len, 1),
        (str, "x"),
        (repr, "'x'"),
        (hash, hash("x")),
        (lambda d: list(iter(d)), ["x"]),
        (lambda d: "x" in d, True),
        (lambda d: isinstance(d, str), True),
        (lambda d: f"{d:>3}", "  x"),
        (lambda d: pickle.loads(pickle.dumps(d)), "x"),
        (copy.copy, "x"),
        (copy.deepcopy, "x"),
    ],
    ids=[
        "bool",
        "len",
        "str",
        "repr",
        "hash",
        "iter",
        "in",
        "isinstance",
        "format",
        "pickle",
        "copy",
        "deepcopy",
    ],
)
def test_demanding_operations_materialize_and_see_the_value(
    recording: Recording, demand, expected
) -> None:
    d = echo.defer("x")
    assert demand(d) == expected
    assert LOG.names() == ["echo"]
    assert recording.state[d._self_node].status is Status.DONE


def test_numeric_demands(recording: Recording) -> None:
    from tests.helpers import length

    n = length.defer("abc")
    assert int(n) == 3 and float(n) == 3.0 and [0, 1, 2, 3][n] == 3 and round(n) == 3


def test_operations_on_a_known_value_act_on_it_and_return_plain_values(
    recording: Recording,
) -> None:
    d = echo.defer("x")
    str(d)  # now known
    for result in (d.upper(), d + "y", d == "x", d[0], d * 2):
        assert type(result) is not Deferred


def test_a_method_call_with_a_mutable_argument_demands(recording: Recording) -> None:
    items = as_list.defer(1)
    extra = [2]
    items.extend(extra)  # demands: a later change of ``extra`` must not leak in
    extra.append(3)
    assert LOG.names() == ["as_list"]
    assert list(items) == [1, 2]


def test_private_and_dunder_names_demand(recording: Recording) -> None:
    box = make_box.defer("b")
    assert box.__class__.__name__ == "Box"
    assert LOG.names() == ["make_box"]


def test_setting_items_and_attributes_demands_then_acts_on_the_value(recording: Recording) -> None:
    d = info.defer(1)
    d["new"] = 2
    assert LOG.names() == ["info"]
    assert d["new"] == 2
    box = make_box.defer("b")
    box.label = "changed"
    assert box.label == "changed"


def test_a_pending_value_called_that_is_not_an_attribute_demands(recording: Recording) -> None:
    from tests.helpers import slow_echo

    fn = slow_echo.defer(str.upper, 0.0)
    assert fn("abc") == "ABC"


def test_a_failed_value_reraises_the_original_exception_every_time(recording: Recording) -> None:
    d = fail.defer("boom")
    with pytest.raises(OpError) as first:
        bool(d)
    with pytest.raises(OpError) as second:
        str(d)
    assert first.value is second.value
    assert LOG.names() == ["fail"]


def test_in_place_operators_keep_list_identity(recording: Recording) -> None:
    items = as_list.defer(1)
    alias_source = items
    items += (2,)  # an immutable operand: stays lazy
    assert is_pending(items)
    assert list(items) == [1, 2]
    assert alias_source.__wrapped__ is items.__wrapped__


def test_glue_with_an_operand_that_could_change_runs_now(recording: Recording) -> None:
    """Plain Python stores the operand itself; a later change must show, as there."""
    box = make_box.defer("b")
    str(box)
    pending_list = as_list.defer()
    pending_list.append(box.__wrapped__)  # a mutable operand: demands
    assert not is_pending(pending_list)
    inner = ["c"]
    out2 = as_list.defer() + [inner]
    inner.append("d")
    assert out2 == [["c", "d"]] and out2[0] is inner
    assert pending_list[0] is box.__wrapped__
