"""Making values concrete: keys, closures, partials, exceptions; items through map_items."""

from __future__ import annotations

import functools
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Generator
from typing import Any

import pytest

from ember.xcs._internal.concrete import concretize, map_items
from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.tracer import Recording
from tests.helpers import contains_proxy, echo


def known(recording: Recording, text: str) -> Deferred:
    d = echo.defer(text)
    str(d)  # runs it
    return d  # type: ignore[no-any-return]


def value_of(deferred: Deferred) -> Any:
    return deferred.__wrapped__


def test_keys_are_rebuilt_in_order_with_item_assignment(recording: Recording) -> None:
    a, b = known(recording, "a"), known(recording, "b")
    votes: Counter[Any] = Counter()
    votes["first"] += 1
    votes[a] += 2  # the proxy is the key the Counter keeps
    votes[(b, 1)] += 3
    ordered = OrderedDict([("x", 1), (a, 2)])
    groups: defaultdict[Any, list[int]] = defaultdict(list)
    groups[b].append(1)
    concretize([votes, ordered, groups], value_of)
    assert list(votes.items()) == [("first", 1), ("a", 2), (("b", 1), 3)]  # counts, not pairs
    assert list(ordered) == ["x", "a"] and list(groups) == ["b"]
    assert not contains_proxy([list(votes), list(ordered), list(groups)])


def test_closures_partials_and_bound_methods_get_values(recording: Recording) -> None:
    a = known(recording, "a")
    answers, index = [a], {"k": a}

    def search() -> Any:
        return answers, index

    class Holder:
        def __init__(self) -> None:
            self.kept = [a]

        def get(self) -> Any:
            return self.kept

    partial = functools.partial(print, a, sep=a)
    method = Holder().get
    concretize((search, partial, method), value_of)
    assert not contains_proxy(search()) and search() == (["a"], {"k": "a"})
    assert partial.args == ("a",) and partial.keywords == {"sep": "a"}
    assert type(partial.args[0]) is str and method() == ["a"] and type(method()[0]) is str


def test_exceptions_args_attributes_and_causes_get_values(recording: Recording) -> None:
    a, b = known(recording, "a"), known(recording, "b")
    cause = KeyError(b)
    error = ValueError(a, [a])
    error.reply = a  # type: ignore[attr-defined]
    error.__cause__ = cause
    concretize(error, value_of)
    assert error.args == ("a", ["a"]) and type(error.args[0]) is str
    assert type(error.reply) is str  # type: ignore[attr-defined]
    assert type(cause.args[0]) is str


def test_a_demand_that_returns_the_deferred_leaves_it(recording: Recording) -> None:
    a = known(recording, "a")
    items = [a]
    concretize(items, lambda d: d)
    assert items[0] is a


def numbers() -> Generator[int, Any, str]:
    got = []
    try:
        sent = yield 1
        got.append(sent)
        sent = yield 2
        got.append(sent)
    except KeyError:
        yield -1
    finally:
        got.append("closed")
        numbers.log = got  # type: ignore[attr-defined]
    return "done"


def test_map_items_delegates_send_throw_close_and_return_like_yield_from() -> None:
    mapped = map_items(numbers(), lambda x: x * 10)
    assert next(mapped) == 10 and mapped.send("s") == 20
    with pytest.raises(StopIteration) as stop:
        mapped.send("t")
    assert stop.value.value == "done" and numbers.log == ["s", "t", "closed"]  # type: ignore[attr-defined]

    mapped = map_items(numbers(), lambda x: x * 10, owned=True)
    next(mapped)
    assert mapped.throw(KeyError("k")) == -10  # handled inside the source
    mapped.close()  # owned: closes the source, as yield from does
    assert numbers.log == ["closed"]  # type: ignore[attr-defined]

    mapped = map_items(iter([1, 2]), lambda x: x)  # no send/throw/close: next() is used
    assert list(mapped) == [1, 2]


def test_map_items_leaves_a_source_it_does_not_own_to_the_caller() -> None:
    source = numbers()
    mapped = map_items(source, lambda x: x)
    assert next(mapped) == 1
    del mapped  # a consumer that stopped early (next, islice) dropped it
    assert next(source) == 2  # the rest is still the caller's


def test_map_items_closes_the_source_when_the_function_raises() -> None:
    def refuse(x: int) -> int:
        raise ValueError(x)

    source = numbers()
    with pytest.raises(ValueError):
        next(map_items(source, refuse))
    assert numbers.log == ["closed"]  # type: ignore[attr-defined]
