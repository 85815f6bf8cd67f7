"""Property: recording an op call changes nothing, and the op sees what plain Python passes.

Hypothesis draws nested arguments -- the built-in containers, named tuples and
dataclasses, subclasses of list and dict, custom mapping and sequence classes that keep
their data in another object, iterators and generators -- some of whose leaves are
answers of earlier ops (pending when the call is recorded). One user function builds
the arguments and calls an op that describes everything it received (consuming the
iterators, as ops do). Plainly and under ``@jit``: the op's description must be equal,
and every argument object the caller holds must still equal a deep copy taken before
the call (iterators: the items the op left in them).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator, MutableMapping, MutableSequence
from typing import Any, NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember import xcs
from ember.xcs._internal.deferred import Deferred
from tests.helpers import echo


class Pair(NamedTuple):
    left: Any
    right: Any


@dataclasses.dataclass
class Note:
    text: Any
    tags: list[Any] = dataclasses.field(default_factory=list)


class Store(MutableMapping):  # type: ignore[type-arg]
    """A mapping over another object's dict (as requests' CaseInsensitiveDict is)."""

    def __init__(self, items: dict[Any, Any]) -> None:
        self._backing = {"data": dict(items)}

    def __getitem__(self, k: Any) -> Any:
        return self._backing["data"][k]

    def __setitem__(self, k: Any, v: Any) -> None:
        self._backing["data"][k] = v

    def __delitem__(self, k: Any) -> None:
        del self._backing["data"][k]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._backing["data"])

    def __len__(self) -> int:
        return len(self._backing["data"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and dict(self.items()) == dict(other.items())


class Log(MutableSequence):  # type: ignore[type-arg]
    """A sequence over another object's list (a chat history)."""

    def __init__(self, items: list[Any]) -> None:
        self._backing = [list(items)]

    def __getitem__(self, i: Any) -> Any:
        return self._backing[0][i]

    def __setitem__(self, i: Any, v: Any) -> None:
        self._backing[0][i] = v

    def __delitem__(self, i: Any) -> None:
        del self._backing[0][i]

    def __len__(self) -> int:
        return len(self._backing[0])

    def insert(self, i: int, v: Any) -> None:
        self._backing[0].insert(i, v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Log) and list(self) == list(other)


class Listing(list):  # type: ignore[type-arg]
    pass


class Table(dict):  # type: ignore[type-arg]
    pass


# A spec is a tree of (kind, children) drawn by Hypothesis; build() makes the objects.
LEAVES = st.one_of(
    st.tuples(st.just("int"), st.integers(-3, 3)),
    st.tuples(st.just("str"), st.sampled_from(["a", "b", "aab", ""])),
    st.tuples(st.just("none"), st.none()),
    st.tuples(st.just("answer"), st.sampled_from(["x", "y", "zz"])),
)
KEYED = ("dict", "ordered", "default", "store", "table")
SEQUENCES = ("list", "tuple", "deque", "pair", "note", "log", "listing", "iter", "gen")


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["k", "j", "i"])
    return st.one_of(
        st.tuples(st.sampled_from(SEQUENCES), st.lists(children, max_size=3)),
        st.tuples(st.sampled_from(KEYED), st.dictionaries(keys, children, max_size=3)),
        st.tuples(st.sampled_from(["counter"]), st.sampled_from(["aab", "", "abc"])),
        st.tuples(st.sampled_from(["set", "frozenset"]), st.lists(st.integers(0, 5), max_size=3)),
    )


SPECS = st.recursive(LEAVES, containers, max_leaves=8)


def build(spec: Any, answer: Any) -> Any:
    """The object a spec describes; ``answer(text)`` makes the answer leaves."""
    kind, content = spec
    if kind in ("int", "str", "none"):
        return content
    if kind == "answer":
        return answer(content)
    if kind == "counter":
        return collections.Counter(content)
    if kind == "set":
        return set(content)
    if kind == "frozenset":
        return frozenset(content)
    if kind in KEYED:
        items = {k: build(v, answer) for k, v in content.items()}
        if kind == "ordered":
            return collections.OrderedDict(items)
        if kind == "default":
            return collections.defaultdict(list, items)
        if kind == "store":
            return Store(items)
        if kind == "table":
            return Table(items)
        return items
    items = [build(v, answer) for v in content]
    if kind == "tuple":
        return tuple(items)
    if kind == "deque":
        return collections.deque(items, maxlen=5)
    if kind == "pair":
        return Pair(items[0] if items else None, items[1:])
    if kind == "note":
        return Note(items[0] if items else None, items[1:])
    if kind == "log":
        return Log(items)
    if kind == "listing":
        return Listing(items)
    if kind == "iter":
        return iter(items)
    if kind == "gen":
        return (item for item in items)
    return items


def describe(value: Any, consume: bool = True) -> Any:
    """Everything about ``value`` an op can see (iterators consumed, unless told not to)."""
    if type(value) is Deferred:
        return "PROXY"  # never: an op sees values
    if isinstance(value, (int, str, type(None))):
        return (type(value).__name__, value)
    if isinstance(value, Iterator):
        return ("iterator", [describe(item) for item in value] if consume else None)
    if isinstance(value, (Store, dict)):
        extra = getattr(value, "default_factory", None)
        pairs = [(k, describe(v, consume)) for k, v in value.items()]
        return (type(value).__name__, extra, pairs)
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(value))
    if isinstance(value, Note):
        return ("Note", describe(value.text, consume), describe(value.tags, consume))
    if isinstance(value, (Log, list, tuple, collections.deque)):
        return (type(value).__name__, [describe(item, consume) for item in value])
    raise AssertionError(f"unexpected {type(value)}")


def static(value: Any) -> Any:
    """What ``value`` holds now, as a fresh tree (iterators: left alone)."""
    return describe(value, consume=False)


@xcs.op
def look(*args: Any) -> Any:
    return describe(args)


def call_with(specs: list[Any], answer: Any, keep: bool = True) -> Any:
    """Build the arguments (answers from ``answer``) and call the op; keep the objects."""
    args = [build(spec, answer) for spec in specs]
    before = [static(a) for a in args] if keep else None
    seen = look(*args)
    return seen, args, before


jitted_call_with = xcs.jit(call_with)


def plain_answer(text: str) -> str:
    return text.upper()


def op_answer(text: str) -> Any:
    return echo(text.upper())


@xcs.jit
def jitted_answers(specs: list[Any]) -> Any:
    return call_with(specs, op_answer, keep=False)  # the answers are pending at the call


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(SPECS, min_size=1, max_size=3))
def test_recording_changes_nothing_and_the_op_sees_what_plain_python_passes(
    specs: list[Any],
) -> None:
    plain_seen, _, _ = call_with(specs, plain_answer)
    seen, args, before = jitted_call_with(specs, plain_answer)
    assert seen == plain_seen
    assert [static(a) for a in args] == before

    seen, args, _ = jitted_answers(specs)  # leaves pending when the op is recorded
    assert seen == plain_seen
    assert "PROXY" not in repr(seen)
