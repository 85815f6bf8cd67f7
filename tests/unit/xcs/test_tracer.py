"""The recording: nodes, edges, syncs, the thread-local trace context."""

from __future__ import annotations

import argparse
import threading
from typing import Any

import pytest

from ember import xcs
from ember.xcs._internal import tracer
from ember.xcs._internal.engine import Engine
from ember.xcs._internal.ir import Status
from ember.xcs._internal.tracer import Recording
from tests.helpers import LOG, as_list, combine, echo, slow_echo, upper


def line_of(marker: str) -> int:
    """The line number in this file of the line containing ``marker``."""
    with open(__file__) as source:
        for number, text in enumerate(source, 1):
            if marker in text and "line_of(" not in text:
                return number
    raise AssertionError(marker)


def test_an_op_call_becomes_a_node_with_flat_attributes(recording: Recording) -> None:
    d = echo.defer("x")  # MARK-op-call
    attrs = recording.graph.nodes[d._self_node]
    assert attrs["kind"] == "op" and attrs["name"] == "echo"
    assert attrs["status"] == "pending"
    assert attrs["location"] == f"{__file__}:{line_of('MARK-op-call')}"
    for key in ("start", "end", "thread", "cpu", "error"):
        assert attrs[key] is None
    assert recording.nodes[d._self_node].args == ("x",)


def test_data_and_input_edges(recording: Recording) -> None:
    source = ["in"]
    node_in = recording.add_input("source", source)
    a = echo.defer("a")
    joined = combine.defer([a, source])
    graph = recording.graph
    assert graph.has_edge(a._self_node, joined._self_node)
    assert graph.has_edge(node_in, joined._self_node)
    assert not graph.has_edge(node_in, a._self_node)


def test_syncs_record_the_waves(recording: Recording) -> None:
    a, b = echo.defer("a"), echo.defer("b")
    str(a)  # first sync: waits for a and b
    c = upper.defer(a)
    str(c)  # second sync
    syncs = [n.id for n in recording.nodes if n.kind == "sync"]
    assert len(syncs) == 2
    first, second = syncs
    graph = recording.graph
    assert {p for p in graph.pred[first]} == {a._self_node, b._self_node}
    assert graph.has_edge(first, c._self_node)
    assert graph.has_edge(first, second)
    assert recording.state[first]["status"] is Status.DONE
    assert recording.nodes[first].name == f"demand %{a._self_node}"


def test_demanding_a_known_value_runs_nothing(recording: Recording) -> None:
    a = echo.defer("a")
    str(a)
    b = echo.defer("b")
    assert str(a) == "a"
    assert recording.pending == [b._self_node]
    assert LOG.names() == ["echo"]


def test_in_place_changes_wait_for_earlier_readers(recording: Recording) -> None:
    items = as_list.defer(1)
    reader = combine.defer(items)
    writer = items.append(2)
    after = combine.defer(items)
    graph = recording.graph
    assert graph.edges[reader._self_node, writer._self_node]["order"] == "dispatch"
    assert graph.has_edge(writer._self_node, after._self_node)
    assert (str(reader), str(after)) == ("1", "1|2")


def test_the_trace_context_is_per_thread(recording: Recording) -> None:
    seen: list[Any] = []
    worker = threading.Thread(target=lambda: seen.append((tracer.active(), echo.defer("t"))))
    worker.start()
    worker.join()
    assert seen[0][0] is None
    assert seen[0][1] == "t" and type(seen[0][1]) is str  # ran directly
    assert recording.pending == []


def test_a_pending_value_demanded_inside_an_op_of_the_same_trace_raises(
    recording: Recording,
) -> None:
    captured = echo.defer("secret", 0.5)  # still running when the op below reads it

    @xcs.op
    def peeks() -> str:
        return str(captured)  # hidden from xcs: not an argument

    result = peeks.defer()
    with pytest.raises(xcs.ConcretizationError, match="inside an op of the same trace") as info:
        str(result)
    assert info.value.op_name == "echo"


def test_no_execute_raises_when_a_value_is_needed_and_passes_other_syncs() -> None:
    rec = Recording(Engine(), execute=False)
    previous = tracer.enter(rec)
    try:
        d = echo.defer("x")  # MARK-no-execute
        rec.materialize("barrier", need_value=False)  # passes
        with pytest.raises(xcs.ConcretizationError) as info:
            bool(d)
    finally:
        tracer.leave(previous)
    error = info.value
    assert error.op_name == "echo"
    assert error.location == f"{__file__}:{line_of('MARK-no-execute')}"
    assert "execute=True" in str(error)
    assert LOG.names() == []


def test_user_location_skips_xcs_frames() -> None:
    location = tracer.user_location()
    assert location.file == __file__ and location.function == "test_user_location_skips_xcs_frames"


class Message:
    def __init__(self, text: Any) -> None:
        self.text = text


@xcs.op
def send(envelope: Any) -> str:
    return envelope.text.text.strip()  # type: ignore[no-any-return]


def test_pending_values_inside_objects_of_user_classes_are_found() -> None:
    @xcs.jit
    def program() -> Any:  # objects of user classes are looked into, several levels
        return send(Message(Message(slow_echo.defer(" x ", 0.05))))

    assert program() == "x"


@pytest.mark.timeout(30)
def test_a_pending_value_hidden_deep_in_an_object_raises_instead_of_hanging() -> None:
    @xcs.jit
    def program() -> Any:  # a library object inside is not looked into
        hidden = argparse.Namespace()
        hidden.text = slow_echo(" x ", 0.05)
        return send(Message(hidden))

    with pytest.raises(xcs.ConcretizationError, match="Pass the value to the op as an argument"):
        program()
