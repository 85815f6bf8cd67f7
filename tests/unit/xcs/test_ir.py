"""The records: node kinds and states, locations, op specs, node records, markers."""

from __future__ import annotations

import dataclasses

import pytest

from ember.xcs._internal.ir import (
    FINISHED,
    Location,
    Node,
    NodeKind,
    OpSpec,
    Ref,
    Status,
    Stream,
)


def test_kinds_and_states_are_plain_strings_in_graph_attributes() -> None:
    assert [k.value for k in NodeKind] == ["input", "op", "glue", "sync"]
    assert Status.DONE == "done" and str(Status.CANCELLED) == "cancelled"
    assert FINISHED == {Status.DONE, Status.FAILED, Status.CANCELLED}


def test_locations_print_as_file_and_line() -> None:
    where = Location("/src/app.py", 12, "answer")
    assert str(where) == "/src/app.py:12" and where.short == "app.py:12"


def test_op_specs_validate_their_limit() -> None:
    assert OpSpec("ask", 4).max_concurrency == 4
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="max_concurrency of op 'ask'"):
            OpSpec("ask", bad)  # type: ignore[arg-type]


def test_node_records_are_immutable() -> None:
    node = Node(3, NodeKind.OP, "ask", print, ("q",))
    with pytest.raises(AttributeError):
        node.name = "other"  # type: ignore[misc]
    assert node.kwargs == {} and node.deps == () and not node.markers
    with pytest.raises(TypeError):
        node.kwargs["x"] = 1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Location("a", 1).line = 2  # type: ignore[misc]


def test_markers() -> None:
    assert Ref(3) == Ref(3) and Ref(3) != Ref(4) and hash(Ref(3)) == hash(Ref(3))
    assert repr(Ref(3)) == "%3"
    assert repr(Stream(iter([1, 2]))) == "stream(list_iterator)"
