"""What is known of a pending value's type, and which method calls on it may wait."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Optional, Union

import pytest

from ember.xcs._internal.purity import BUILTIN, pure_method, result_kind, returns


class Page:
    def show(self) -> None: ...


def text() -> str: ...
def texts() -> list[str]: ...
def maybe() -> str | None: ...
def maybe_old() -> Optional[str]: ...  # noqa: UP045
def either() -> Union[int, str]: ...  # noqa: UP007
def choice() -> Literal["yes", "no"]: ...
def tagged() -> Annotated[str, "tag"]: ...
def page() -> Page: ...
def page_or_none() -> Page | None: ...
def anything() -> Any: ...
def unannotated(): ...  # type: ignore[no-untyped-def]
def broken() -> NoSuchName: ...  # type: ignore[name-defined]  # noqa: F821


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (text, str),
        (texts, list),
        (maybe, BUILTIN),
        (maybe_old, BUILTIN),
        (either, BUILTIN),
        (choice, BUILTIN),
        (tagged, str),
        (page, Page),
        (page_or_none, None),
        (anything, None),
        (unannotated, None),
        (broken, None),  # an annotation that does not evaluate says nothing
        (functools.wraps(text)(lambda: "x"), str),  # through __wrapped__
    ],
)
def test_return_annotations_say_what_a_value_is(fn: Any, kind: Any) -> None:
    assert returns(fn) is kind


def test_methods_of_builtin_values_may_wait_others_run_in_order() -> None:
    assert pure_method(str, "strip") and pure_method(list, "append")  # changes the value only
    assert pure_method(BUILTIN, "anything")
    assert not pure_method(Page, "show") and not pure_method(Page, "strip")
    # Unknown type: the read-only methods of the built-in types, by name.
    assert pure_method(None, "strip") and pure_method(None, "get") and pure_method(None, "split")
    assert not pure_method(None, "show") and not pure_method(None, "append")
    assert not pure_method(None, "update") and not pure_method(None, "json")


def test_what_glue_makes_from_a_builtin_scalar_is_builtin() -> None:
    assert result_kind(str) is BUILTIN and result_kind(BUILTIN) is BUILTIN
    assert result_kind(list) is None  # its items may be anything
    assert result_kind(Page) is None and result_kind(None) is None
