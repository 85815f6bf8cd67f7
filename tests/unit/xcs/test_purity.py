"""What is known of a pending value's type, and which work on it may wait."""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any, Literal, Optional, Union

import pytest

from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.purity import (
    BUILTIN,
    attribute_kind,
    builtin,
    call_kind,
    item_kind,
    observe,
    observe_attribute,
    op_kind,
    pure_method,
    waits_for,
)


class Page:
    title: str

    def __init__(self) -> None:
        self.title = "t"

    def show(self) -> None: ...

    def words(self) -> list[str]:
        return []

    @property
    def loud(self) -> str:
        return self.title.upper()


@dataclasses.dataclass
class Message:
    content: str | None


@dataclasses.dataclass
class Choice:
    message: Message


@dataclasses.dataclass
class Completion:
    choices: list[Choice]


class Tally(dict):  # type: ignore[type-arg]
    def count(self) -> int:  # a Python method: it may have side effects
        return len(self)


def text() -> str: ...
def texts() -> list[str]: ...
def maybe() -> str | None: ...
def maybe_old() -> Optional[str]: ...  # noqa: UP045
def either() -> Union[int, str]: ...  # noqa: UP007
def choice() -> Literal["yes", "no"]: ...
def tagged() -> Annotated[str, "tag"]: ...
def page() -> Page: ...
def anything() -> Any: ...
def unannotated(): ...  # type: ignore[no-untyped-def]
def broken() -> NoSuchName: ...  # type: ignore[name-defined]  # noqa: F821


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (text, str),
        (texts, list[str]),
        (maybe, str | None),
        (maybe_old, Optional[str]),  # noqa: UP045
        (either, Union[int, str]),  # noqa: UP007
        (choice, Literal["yes", "no"]),
        (page, Page),
        (anything, None),
        (unannotated, None),
        (broken, None),  # an annotation that does not evaluate says nothing
        (functools.wraps(text)(lambda: "x"), str),  # through __wrapped__
    ],
)
def test_return_annotations_say_what_an_ops_value_is(fn: Any, kind: Any) -> None:
    assert op_kind(fn, OpSpec("x")) == kind


def test_builtin_kinds() -> None:
    for kind in (str, list[str], str | None, Literal["a"], Annotated[str, "t"], BUILTIN):
        assert builtin(kind), kind
    for kind in (Page, Page | None, None):
        assert not builtin(kind), kind


def test_an_unannotated_op_is_known_by_what_it_returned_before() -> None:
    spec = OpSpec("ask")
    assert op_kind(unannotated, spec) is None
    observe(spec, "first answer")
    assert op_kind(unannotated, spec) is str
    observe(spec, Page())  # it returned something else too: nothing is known
    assert op_kind(unannotated, spec) is None


def test_methods_may_wait_only_when_known_free_of_side_effects() -> None:
    assert pure_method(str, "strip") and pure_method(list[str], "append")  # the value only
    assert pure_method(BUILTIN, "anything") and pure_method(str | None, "strip")
    assert not pure_method(Page, "show") and not pure_method(Page, "words")
    assert pure_method(Tally, "get")  # inherited from dict: not Python code
    assert not pure_method(Tally, "count")
    assert not pure_method(None, "strip") and not pure_method(None, "get")  # unknown


def test_attribute_reads_items_and_operators_wait_unless_python_code_runs() -> None:
    assert waits_for(None, ".text") and waits_for(None, "[]") and waits_for(None, "__add__")
    assert waits_for(Page, ".title") and not waits_for(Page, ".loud")  # a property
    assert waits_for(Tally, "[]") and waits_for(str, "__add__")

    class Custom:
        def __getitem__(self, key: Any) -> Any: ...
        def __add__(self, other: Any) -> Any: ...

    assert not waits_for(Custom, "[]") and not waits_for(Custom, "__add__")


def test_kinds_follow_a_chain_of_annotations() -> None:
    kind: Any = Completion
    kind = attribute_kind(kind, "choices")
    assert kind == list[Choice]
    kind = item_kind(kind)
    assert kind is Choice
    kind = attribute_kind(attribute_kind(kind, "message"), "content")
    assert kind == str | None and pure_method(kind, "strip")
    assert attribute_kind(Page, "title") is str and attribute_kind(Page, "loud") is str
    assert call_kind(Page, "words") == list[str] and call_kind(str, "split") is BUILTIN
    assert item_kind(dict[str, Page]) is Page and item_kind(tuple[int, ...]) is int
    assert item_kind(str) is BUILTIN and attribute_kind(None, "x") is None


def test_attributes_of_unannotated_classes_are_known_by_what_they_held() -> None:
    class Plain:
        def __init__(self) -> None:
            self.text = "t"

    assert attribute_kind(Plain, "text") is None
    observe_attribute(Plain(), "text", "a value")
    assert attribute_kind(Plain, "text") is str
    observe_attribute(Plain(), "text", 3)
    assert attribute_kind(Plain, "text") is None
