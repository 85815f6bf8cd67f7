"""The run of a trace in the Trace Event format (Perfetto, ``chrome://tracing``).

One complete event (``ph: "X"``) per op that ran, on a track per thread; syncs as
instant events on the caller's track; a flow arrow (``s``/``f`` pair) along every
edge of the op-level graph, from the end of an op to the start of each op that
used its value. Tracks are ordered and named as the timeline's rows (``rows.py``:
the caller first, then ``worker 0``, ``worker 1``, ..., ``worker 10``), by their tid
and a ``thread_sort_index``. Times are microseconds from the start of the call. Names, locations
and error messages are shown as every display shows user text (``ember._redact``):
secrets redacted, control characters escaped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember._redact import shown_text
from ember.xcs._viz.rows import CALLER, thread_label, thread_order

if TYPE_CHECKING:
    from ember.xcs._trace import Trace

__all__ = ["chrome_trace"]

_PID = 1


def chrome_trace(trace: Trace) -> dict[str, Any]:
    """The trace as a Trace Event Format dict (``{"traceEvents": [...], ...}``)."""
    nodes = trace.graph.nodes
    ran = [n for n in sorted(trace.graph.nodes) if nodes[n].get("start") is not None]
    origin = min((nodes[n]["start"] for n in ran), default=0.0)
    group = {op: index for index, ops in enumerate(trace.parallel_groups) for op in ops}
    critical = set(trace.critical_path)
    # Track ids in the order the timeline shows its rows: the caller, then workers in
    # natural order (Perfetto sorts tracks by ``thread_sort_index``, then by tid).
    names = {str(nodes[n].get("thread") or CALLER) for n in ran}
    threads = {name: number for number, name in enumerate(sorted(names, key=thread_order), 1)}

    def tid(node: int) -> int:
        return threads[str(nodes[node].get("thread") or CALLER)]

    def micros(seconds: float) -> float:
        return round((seconds - origin) * 1e6, 3)

    events: list[dict[str, Any]] = []
    for node in ran:
        attrs = nodes[node]
        if attrs["kind"] == "op" and attrs.get("end") is not None:
            args = {
                "node": node,
                "location": shown_text(str(attrs.get("location"))),
                "status": attrs["status"],
                "parallel_group": group.get(node),
                "critical_path": node in critical,
                "ran_at_once": bool(attrs.get("immediate")),
                "cached": bool(attrs.get("cached")),
            }
            if attrs.get("error") is not None:
                args["error"] = shown_text(f"{type(attrs['error']).__name__}: {attrs['error']}")
            events.append(
                {
                    "name": shown_text(str(attrs["name"])),
                    "cat": "op",
                    "ph": "X",
                    "ts": micros(attrs["start"]),
                    "dur": round((attrs["end"] - attrs["start"]) * 1e6, 3),
                    "pid": _PID,
                    "tid": tid(node),
                    "args": args,
                }
            )
        elif attrs["kind"] == "sync":
            events.append(
                {
                    "name": shown_text(f"sync: {attrs['name']}"),
                    "cat": "sync",
                    "ph": "i",
                    "s": "t",
                    "ts": micros(attrs["start"]),
                    "pid": _PID,
                    "tid": tid(node),
                }
            )
    events += _flows(trace, micros, tid)
    for name, number in threads.items():
        events.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": _PID,
                "tid": number,
                "args": {"name": shown_text(thread_label(name))},
            }
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": _PID,
                "tid": number,
                "args": {"sort_index": number},
            }
        )
    events.append(
        {"name": "process_name", "ph": "M", "pid": _PID, "tid": 0, "args": {"name": "xcs trace"}}
    )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def _flows(trace: Trace, micros: Any, tid: Any) -> list[dict[str, Any]]:
    """An arrow from the end of each op to the start of each op that used its value."""
    nodes = trace.graph.nodes
    flows: list[dict[str, Any]] = []
    for number, (source, target) in enumerate(sorted(trace.op_graph.edges), start=1):
        a, b = nodes[source], nodes[target]
        if a["kind"] != "op" or b["kind"] != "op":
            continue  # a sync joining two wide waves: no value passes through it
        if None in (a.get("start"), a.get("end"), b.get("start")):
            continue  # one of them never ran
        end = micros(a["end"])
        start = max(micros(a["start"]), end - 0.001)  # inside the source's slice
        common = {"name": "uses", "cat": "dependency", "id": number, "pid": _PID}
        flows.append({**common, "ph": "s", "ts": start, "tid": tid(source)})
        flows.append({**common, "ph": "f", "bp": "e", "ts": micros(b["start"]), "tid": tid(target)})
    return flows
