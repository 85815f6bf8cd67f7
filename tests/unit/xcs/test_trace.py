"""``xcs.trace`` and the ``Trace`` object; ``xcs.barrier``."""

from __future__ import annotations

import re
from typing import Any

import networkx as nx
import pytest

from ember import xcs
from tests.helpers import LOG, combine, echo, slow_echo, upper


def ensemble(question: str) -> str:
    drafts = [echo(f"{question}{i}") for i in range(3)]
    return combine(drafts)


def test_trace_runs_each_op_once_and_returns_the_result() -> None:
    trace = xcs.trace(ensemble, "q")
    assert trace.result == "q0|q1|q2"
    assert sorted(LOG.names()) == ["combine", "echo", "echo", "echo"]


def test_graph_nodes_are_program_ordered_ints_with_flat_attributes() -> None:
    trace = xcs.trace(ensemble, "q")
    graph = trace.graph
    assert isinstance(graph, nx.DiGraph)
    assert list(graph.nodes) == list(range(graph.number_of_nodes()))
    kinds = [a["kind"] for _, a in graph.nodes(data=True)]
    assert kinds == ["input", "op", "op", "op", "op", "sync"]
    for node, attrs in graph.nodes(data=True):
        assert set(attrs) >= {
            "kind",
            "name",
            "location",
            "status",
            "start",
            "end",
            "thread",
            "error",
        }
        if attrs["kind"] == "op":
            assert attrs["status"] == "done" and attrs["end"] >= attrs["start"] >= 0
            assert re.fullmatch(r".*test_trace\.py:\d+", attrs["location"])
            assert attrs["error"] is None
    assert all(u < v for u, v in graph.edges)


def test_parallel_groups_critical_path_and_speedup() -> None:
    def program() -> Any:
        a = [slow_echo(i, 0.05) for i in range(4)]
        return slow_echo(a, 0.05)

    trace = xcs.trace(program)
    assert trace.parallel_groups == [[0, 1, 2, 3], [4]]  # no inputs: ops start at %0
    assert len(trace.critical_path) == 2 and trace.critical_path[-1] == 4
    assert trace.speedup is not None and trace.speedup > 1.5
    assert sorted(trace.op_graph.edges) == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_input_nodes_connect_to_ops_that_use_the_argument() -> None:
    def program(question: str, options: list[str]) -> Any:
        return echo(question), combine(options), upper("unrelated")

    trace = xcs.trace(program, "q", ["a", "b"])
    names = {n: a["name"] for n, a in trace.graph.nodes(data=True)}
    assert names[0] == "question" and names[1] == "options"
    assert sorted(trace.graph.successors(0)) == [2]
    assert sorted(trace.graph.successors(1)) == [3]


def test_str_has_one_line_per_node() -> None:
    trace = xcs.trace(ensemble, "q")
    lines = str(trace).splitlines()
    assert len(lines) == trace.graph.number_of_nodes()
    assert lines[0] == "%0 = input[question]"
    assert re.fullmatch(r"%1 = op\[echo\]\('q0'\) @ test_trace\.py:\d+  \d+\.\d\ds", lines[1])
    assert re.fullmatch(r"%4 = op\[combine\]\(\[%1, %2, %3\]\) @ test_trace\.py:\d+  .*", lines[4])
    assert lines[5].startswith("%5 = sync[exit](waits for 4 nodes)")
    assert "4 ops" in repr(trace)


def test_tracing_a_jitted_function_leaves_its_stats_alone() -> None:
    jitted = xcs.jit(ensemble)
    trace = xcs.trace(jitted, "q")
    assert trace.result == "q0|q1|q2"
    assert jitted.stats()["calls"] == 0


def test_tracing_a_bound_method_of_a_jitted_function() -> None:
    class Holder:
        @xcs.jit
        def run(self, q: str) -> Any:
            return [echo(q), echo(q + "!")]

    trace = xcs.trace(Holder().run, "x")
    assert trace.result == ["x", "x!"]
    assert [a["name"] for _, a in trace.graph.nodes(data=True)][:1] == ["q"]


def test_execute_false_records_without_running() -> None:
    trace = xcs.trace(ensemble, "q", execute=False)
    assert trace.result is None
    assert LOG.names() == []
    statuses = {a["status"] for _, a in trace.graph.nodes(data=True) if a["kind"] == "op"}
    assert statuses == {"pending"}
    assert trace.parallel_groups == [[1, 2, 3], [4]]
    assert trace.executed is False and trace.speedup is None
    assert "recorded, not run (execute=False)" in trace.to_mermaid()
    assert "wall" not in trace.to_mermaid() and "speedup" not in trace.to_mermaid()
    ran = xcs.trace(ensemble, "q")
    assert ran.executed is True and "wall" in ran.to_mermaid()


def test_execute_false_refuses_control_flow_on_results() -> None:
    def branchy(q: str) -> Any:
        if echo(q) == "q":
            return upper(q)
        return None

    with pytest.raises(xcs.ConcretizationError, match=r"execute=True"):
        xcs.trace(branchy, "q", execute=False)
    assert LOG.names() == []


@pytest.mark.parametrize(
    "program",
    [
        lambda qs: list(map(echo, qs)),  # library code calls the op: it would run at once
        lambda qs: combine(iter(qs)),  # the op consumes an iterator as it runs
    ],
)
def test_execute_false_never_runs_an_op_that_must_run_at_once(program: Any) -> None:
    with pytest.raises(xcs.ConcretizationError, match=r"runs no ops.*execute=True"):
        xcs.trace(program, ["a", "b"], execute=False)
    assert LOG.names() == []


def test_exceptions_propagate_unchanged() -> None:
    def broken() -> Any:
        echo("fine")
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        xcs.trace(broken)


def test_trace_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="callable"):
        xcs.trace(42)  # type: ignore[arg-type]


def test_barrier_runs_what_is_pending() -> None:
    seen: list[list[str]] = []

    @xcs.jit
    def program() -> Any:
        a = echo("a")
        seen.append(len(LOG.entries))  # nothing ran yet
        xcs.barrier()
        seen.append(len(LOG.entries))  # the barrier ran it
        return a

    assert program() == "a"
    assert seen == [0, 1]
    xcs.barrier()  # outside a trace: nothing to do
