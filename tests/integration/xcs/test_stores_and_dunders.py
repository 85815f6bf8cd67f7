"""Code the interpreter runs on its own -- setters, ``__setattr__``, ``__setitem__``,
operators, metaclasses -- and the walk that settles stores at exit.

Found by adversarial hunts: the interpreter hands such code a pending value as it is
(your code, unrewritten; a library's, which must never see one), and settling stores
at exit must not run your containers' own code (or call ops again). Each program runs
plainly and under ``@jit`` (the differential harness), and nothing it leaves behind
holds a proxy.
"""

from __future__ import annotations

import json
import shelve
import weakref
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pydantic
import pytest

from ember import xcs
from tests.helpers import assert_same_as_plain, contains_proxy, run_logged, slow_echo, upper

AUDIT: list[Any] = []


class Doc:
    def __init__(self) -> None:
        self._title = ""

    @property
    def title(self) -> str:
        return self._title

    @title.setter
    def title(self, value: Any) -> None:
        if value is None:
            raise ValueError("a title is required")
        AUDIT.append(value)  # outside the object
        self._title = value


class Encoded:
    """A descriptor that encodes what is stored (library code on the value)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = "_" + name

    def __get__(self, obj: Any, owner: type) -> Any:
        return json.loads(getattr(obj, self.name))

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.name, json.dumps(value))


class Record:
    payload = Encoded()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "kind" and type(value) is not str:
            raise TypeError("kind must be a str")
        super().__setattr__(name, value)


class Label:
    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return type(other) is str and other == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class Tags:
    def __init__(self) -> None:
        self.items: list[str] = []

    def __iadd__(self, other: Any) -> Tags:
        self.items.append(json.dumps(other))  # library code on the value
        return self


class Strict(pydantic.BaseModel, validate_assignment=True):
    text: str = ""


class WriteOnce(dict):  # type: ignore[type-arg]
    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self:
            raise KeyError(f"{key!r} already set")
        super().__setitem__(key, value)


class Compact(list):  # type: ignore[type-arg]
    """Hides its None placeholders when iterated."""

    def __iter__(self) -> Iterator[Any]:
        return (x for x in super().__iter__() if x is not None)


class Lazy(MutableMapping):  # type: ignore[type-arg]
    """Each value is computed by an op when it is read."""

    def __init__(self) -> None:
        self._keys: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return upper(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._keys.append(key)

    def __delitem__(self, key: str) -> None:
        self._keys.remove(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


class Session:
    def __init__(self, name: Any) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Session({self.name!r})"


def setters(q: str) -> Any:
    doc = Doc()
    doc.title = upper(q)
    record = Record()
    record.payload = {"q": upper(q)}
    record.kind = upper(q)
    return doc.title, record.payload, record.kind


def a_setter_refusing_none(q: str) -> Any:
    doc = Doc()
    doc.title = slow_echo(None if q == "none" else q)
    return doc.title


def operators_written_in_python(q: str) -> Any:
    label = Label("A")
    tags = Tags()
    tags += upper(q)
    return label == upper(q), label != upper(q), tags.items


def pydantic_assignment(q: str) -> Any:
    model = Strict()
    model.text = upper(q)
    return model.text


def stores_into_library_and_subclass_containers(qs: list[str]) -> Any:
    once = WriteOnce()
    compact = Compact([None])
    compact += [upper(q) for q in qs]
    for q in qs:
        once[q] = upper(q)
    live: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
    sessions = [slow_echo(Session(q)) for q in qs]  # ops returning objects: pending
    for q, session in zip(qs, sessions, strict=True):
        live[q] = session  # a weak reference to the proxy would die with it
    return dict(once), list(list.__iter__(compact)), sorted(live), len(sessions)


def a_mapping_computing_values_with_ops(qs: list[str]) -> Any:
    lazy = Lazy()
    for q in qs:
        lazy[q] = upper(q)  # its __setitem__ ignores the value
    return lazy


def returned_functions_and_classes(q: str) -> Any:
    r = upper(q)

    def handler(x: Any = r) -> Any:
        return x

    handler.last = r  # type: ignore[attr-defined]

    class Answer:
        value = r

        def get(self) -> Any:
            return r

    return handler, Answer, Answer()


def returned_iterators(qs: list[str]) -> Any:
    replies = [upper(q) for q in qs]
    table = dict(zip(qs, replies, strict=True))
    return zip(qs, replies), enumerate(replies), reversed(replies), iter(replies), table.get


def dunder_spreads(q: str) -> Any:
    reply = slow_echo([q])  # a list where the code expects a mapping
    return {**reply}


def failed_attribute_glue(q: str) -> Any:
    reply = slow_echo([q])
    return list(reply.keys())


def metaclass_keywords(q: str) -> Any:
    class Meta(type):
        def __new__(mcs, name: str, bases: Any, ns: dict[str, Any], label: Any = None) -> Any:
            ns["label_kind"] = type(label).__name__
            return super().__new__(mcs, name, bases, ns)

    class Tagged(metaclass=Meta, label=upper(q)):
        pass

    return Tagged.label_kind  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (setters, ("a",)),
        (a_setter_refusing_none, ("none",)),
        (a_setter_refusing_none, ("x",)),
        (operators_written_in_python, ("a",)),
        (pydantic_assignment, ("a",)),
        (stores_into_library_and_subclass_containers, (["a", "b"],)),
        (dunder_spreads, ("a",)),
        (failed_attribute_glue, ("a",)),
        (metaclass_keywords, ("a",)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_code_the_interpreter_runs_gets_what_plain_python_gives(
    fn: Any, args: tuple[Any, ...]
) -> None:
    AUDIT.clear()
    assert_same_as_plain(fn, xcs.jit(fn), *args)
    assert not contains_proxy(AUDIT)


def test_settling_stores_runs_none_of_the_containers_own_code() -> None:
    got = run_logged(xcs.jit(a_mapping_computing_values_with_ops), ["a", "b"])
    assert got.calls == run_logged(a_mapping_computing_values_with_ops, ["a", "b"]).calls
    assert sorted(got.value) == ["a", "b"]


def test_a_closed_store_in_the_result_is_left_alone(tmp_path: Path) -> None:
    def program(q: str) -> Any:
        shelf = shelve.open(str(tmp_path / "db"))
        shelf["k"] = upper(q)
        shelf.close()
        return [upper(q), shelf]

    value = xcs.jit(program)("a")
    assert value[0] == "A" and type(value[0]) is str


def test_returned_functions_classes_and_iterators_hold_values() -> None:
    handler, answer_class, answer = xcs.jit(returned_functions_and_classes)("a")
    assert type(handler()) is str and type(handler.last) is str
    assert type(answer_class.value) is str and type(answer.get()) is str
    pairs, numbered, backwards, items, get = xcs.jit(returned_iterators)(["a", "b"])
    assert list(pairs) == [("a", "A"), ("b", "B")] and not contains_proxy(list(numbered))
    assert list(backwards) == ["B", "A"] and list(items) == ["A", "B"]
    assert type(get("a")) is str


def test_stores_before_an_exception_hold_values() -> None:
    out: list[Any] = []
    meta: dict[str, Any] = {}

    def program(qs: list[str]) -> None:
        for q in qs:
            out.append(upper(q))
        meta["last"] = upper(qs[-1])
        raise ValueError("gave up")

    with pytest.raises(ValueError, match="gave up"):
        xcs.jit(program)(["a", "b"])
    assert out == ["A", "B"] and meta == {"last": "B"}
    assert not contains_proxy(out) and not contains_proxy(meta)
    assert json.dumps(out) == '["A", "B"]'


def test_a_tuple_stored_in_two_places_stays_one_object() -> None:
    first: list[Any] = []
    second: list[Any] = []

    def program(q: str) -> Any:
        pair = (q, upper(q))
        first.append(pair)
        second.append(pair)
        return pair

    result = xcs.jit(program)("a")
    assert result is first[0] is second[0] and result == ("a", "A")
