"""OpenTelemetry spans of traced calls: a span per call, a child span per op.

Owns turning a finished traced call into spans, live at the end of every traced
``@jit`` call (:func:`export_call`) or after the fact (``Trace.to_otel``, through
:func:`emit`). Does not own what a model call's span says -- the op's spec does
(``OpSpec.describe``: ``ember.models`` gives model calls the GenAI semantic
conventions) -- nor how OpenTelemetry is set up: that is the user's tracer provider.

Spans are made after the call, from its recording, with the times it recorded (an
op's start and end are ``perf_counter`` offsets from the call's start, made epoch
nanoseconds with one anchor): nothing is added to the path that runs an op. The
call's span is a child of the span current on the calling thread (a web request's,
say); each op's span a child of the call's. Attributes of every op span:
``ember.op``, ``ember.node``, ``ember.location`` (the user's line), ``ember.status``
(``done``, ``failed``, ``cancelled``), ``ember.parallel_group``, ``ember.thread``
(and ``ember.ran_at_once`` when it did), then the spec's own. A failed op has ERROR
status, ``error.type`` and an ``exception`` event; a cancelled one (never run, or its
result dropped after another failure) keeps UNSET status, ``ember.status`` says so.
Exception messages and stack traces go through ``ember._redact``.

Cost when unused: nothing here imports OpenTelemetry. :func:`live_tracer` looks for
``opentelemetry.trace`` in ``sys.modules`` -- imported by the user (or a library the
user imported) or absent -- then at the global provider, remembering per provider
object whether it is the default (proxy or no-op) one, so a provider set later is seen
at the next call: ~0.15 us a call when OpenTelemetry is absent or not configured.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ember._redact import redact_text, shown_text
from ember.xcs._internal.ir import FINISHED, Node, NodeKind, Status
from ember.xcs._internal.parallelism import NodeAttributes

if TYPE_CHECKING:
    from ember.xcs._internal.tracer import Recording

__all__ = ["Run", "emit", "epoch_of", "export_call", "live_tracer"]

SCOPE = "ember.xcs"
"""The instrumentation scope (tracer name) of every span made here."""

_log = logging.getLogger("ember.xcs")

# The provider last seen and the tracer to use with it (None: not configured).
_decided: tuple[object, Any] = (None, None)
_UNKNOWN = object()
_PROVIDER_FROM_ENVIRONMENT = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def live_tracer() -> Any | None:
    """The tracer of the user's configured provider, or None (not imported, or not set)."""
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return None
    # What set_tracer_provider sets (None before). Reading it skips the os.environ lookup
    # get_tracer_provider makes each time (~2.5 us, more than the rest of this check);
    # with a provider named by environment variable, or an OpenTelemetry without this
    # global, the public function decides.
    provider = getattr(api, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None and not _PROVIDER_FROM_ENVIRONMENT:
        return None
    if provider is None or provider is _UNKNOWN:
        provider = api.get_tracer_provider()
    seen, tracer = _decided
    if provider is seen:
        return tracer
    return _decide(api, provider)


def _decide(api: Any, provider: object) -> Any | None:
    """Remember whether ``provider`` is one the user set (not the default proxy or no-op)."""
    global _decided
    default = (api.ProxyTracerProvider, api.NoOpTracerProvider)
    tracer = None if isinstance(provider, default) else tracer_of(provider)
    _decided = (provider, tracer)
    return tracer


def tracer_of(provider: Any) -> Any:
    """``provider``'s tracer for xcs's spans (scope ``ember.xcs``, the library's version)."""
    from ember import __version__

    return provider.get_tracer(SCOPE, __version__)


def epoch_of(t0: float) -> int:
    """``t0``, a ``perf_counter()`` reading, in nanoseconds since the epoch."""
    return time.time_ns() - round((time.perf_counter() - t0) * 1e9)


@dataclasses.dataclass(frozen=True)
class Run:
    """What the spans of one traced call are made from.

    Attributes:
        name: The call span's name (``ember.xcs.jit qualname``).
        nodes: The node records, by id.
        states: Each node's run-time attributes (a recording's states, or a graph's
            node attributes), by id; times in seconds from the call's start.
        values: Values of the ops that finished, by id.
        groups: The parallel group of each op, by id.
        epoch_ns: The call's start, in nanoseconds since the epoch.
        seconds: How long the call took.
        error: What the call raised, or None.
    """

    name: str
    nodes: Sequence[Node]
    states: Sequence[NodeAttributes] | Mapping[int, NodeAttributes]
    values: Mapping[int, Any]
    groups: Mapping[int, int]
    epoch_ns: int
    seconds: float
    error: BaseException | None = None


def export_call(qualname: str, recording: Recording, completed: bool) -> None:
    """Send the spans of a traced ``@jit`` call that just ended, if OpenTelemetry is set up.

    Called from the wrapper's ``finally``: when the call raised (``completed`` is
    False), the exception in flight is the call's error. Never raises: a failure to
    export is logged (``ember.xcs``, WARNING) and the call's outcome stands.
    """
    tracer = live_tracer()
    if tracer is None:
        return
    error = None if completed else sys.exc_info()[1]
    try:
        seconds = time.perf_counter() - recording.t0
        depth = recording.depth
        groups = {op: depth[op] - 1 for op in recording.ops}
        run = Run(
            f"ember.xcs.jit {qualname}",
            recording.nodes,
            recording.state,
            recording.values,
            groups,
            epoch_of(recording.t0),
            seconds,
            error,
        )
        emit(tracer, run)
    except Exception:
        _log.warning("could not export the OpenTelemetry spans of %s", qualname, exc_info=True)


def emit(tracer: Any, run: Run) -> None:
    """Start and end the spans of ``run`` through ``tracer``, with their recorded times."""
    from opentelemetry import trace as api

    end_ns = run.epoch_ns + round(run.seconds * 1e9)
    ops = [node for node in run.nodes if node.kind is NodeKind.OP]
    attributes = {"ember.ops": len(ops), "ember.parallel_groups": len(set(run.groups.values()))}
    call = tracer.start_span(run.name, start_time=run.epoch_ns, attributes=attributes)
    if run.error is not None:
        _failed(call, run.error, end_ns)
    parent = api.set_span_in_context(call)
    for node in ops:
        _op_span(tracer, api, parent, run, node, end_ns)
    call.end(end_time=end_ns)


def _op_span(tracer: Any, api: Any, parent: Any, run: Run, node: Node, end_ns: int) -> None:
    """The span of one op, a child of the call's span (``parent``, a context)."""
    state = run.states[node.id]
    status = Status(state["status"])
    error = state.get("error") if status is Status.FAILED else None  # its own failure
    name, attributes = shown_text(node.name), _op_attributes(run, node, state)
    describe = node.spec.describe if node.spec is not None else None
    if describe is not None:
        own_name, own = describe(node.args, node.kwargs, run.values.get(node.id), error)
        name = shown_text(own_name)
        attributes.update(own)
    start, end = state.get("start"), state.get("end")
    # An op that never started (cancelled) or never reported back (timed out, still
    # running): shown from what is known to the end of the call.
    start_ns = end_ns if start is None else run.epoch_ns + round(start * 1e9)
    stop_ns = end_ns if end is None or status not in FINISHED else run.epoch_ns + round(end * 1e9)
    kind = api.SpanKind.CLIENT if "gen_ai.operation.name" in attributes else api.SpanKind.INTERNAL
    span = tracer.start_span(
        name, context=parent, kind=kind, start_time=start_ns, attributes=attributes
    )
    if error is not None:
        span.set_attribute("error.type", _type_name(error))
        _failed(span, error, stop_ns)
    span.end(end_time=max(stop_ns, start_ns))


def _op_attributes(run: Run, node: Node, state: NodeAttributes) -> dict[str, Any]:
    """The attributes every op's span has (the spec's own come on top)."""
    attributes: dict[str, Any] = {
        "ember.op": shown_text(node.spec.name if node.spec is not None else node.name),
        "ember.node": node.id,
        "ember.location": shown_text(str(node.location)),
        "ember.status": str(state["status"]),
    }
    group = run.groups.get(node.id)
    if group is not None:
        attributes["ember.parallel_group"] = group
    thread = state.get("thread")
    if thread is not None:
        attributes["ember.thread"] = shown_text(str(thread))
    if state.get("immediate"):
        attributes["ember.ran_at_once"] = True
    cause = state.get("error")
    if state["status"] == Status.CANCELLED and cause is not None:
        attributes["ember.cancelled_by"] = _type_name(cause)  # another op's failure, say
    return attributes


def _failed(span: Any, error: BaseException, at_ns: int) -> None:
    """ERROR status and an ``exception`` event, its message and stack trace redacted."""
    from opentelemetry.trace import Status as SpanStatus
    from opentelemetry.trace import StatusCode

    message = redact_text(str(error))
    span.set_status(SpanStatus(StatusCode.ERROR, f"{_type_name(error)}: {message}"))
    stack = redact_text("".join(traceback.format_exception(error)))
    span.record_exception(
        error,
        attributes={"exception.message": message, "exception.stacktrace": stack},
        timestamp=at_ns,
    )


def _type_name(error: BaseException) -> str:
    """``module.Class`` of an exception (``Class`` for a builtin), as OpenTelemetry writes it."""
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module in (None, "builtins") else f"{module}.{kind.__qualname__}"
