"""``xcs.trace(fn, *args)``: run a function once and keep what happened as a ``Trace``.

A ``Trace`` is the recorded graph of one call plus its result: what ``@jit``
found (nodes, edges, parallel groups) and what actually happened (status, start,
end and thread of every node). It shows itself as text (``str``), a drawing
(``draw``), mermaid, a timeline and a Perfetto trace; the renderers live in
``ember.xcs._viz`` and are loaded on first use.

A call that raises keeps its partial trace on the exception (:func:`failed_call`,
used by ``@jit``, ``xcs.trace`` and ``xcs.map``; read back with :func:`trace_of` and
:func:`last_failed_trace`). A call that returns builds no ``Trace`` unless it was
``xcs.trace``'d.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, overload

import networkx as nx

from ember._redact import shown, shown_arguments, shown_text
from ember.xcs._internal import parallelism, runtime, tracer, waits
from ember.xcs._internal.dispatch.callees import entry_point
from ember.xcs._internal.errors import NOTE_ARG_TEXT, warn_caller
from ember.xcs._internal.ir import Node, NodeKind
from ember.xcs._internal.rewrite import Unrewritable
from ember.xcs._internal.tracer import Recording
from ember.xcs._jit import split_jitted
from ember.xcs._otel import epoch_of
from ember.xcs._viz import CACHED, RAN_AT_ONCE

__all__ = [
    "Trace",
    "barrier",
    "failed_call",
    "keep_as_last_failed",
    "last_failed_trace",
    "trace",
    "trace_of",
]

_MAX_ARG_TEXT = 24


class Trace:
    """The graph and outcome of one traced call.

    Attributes:
        result: What the function returned (None when it was not executed).
        graph: ``networkx.DiGraph``; node ids are ints in program order with flat
            attributes ``kind`` (input/op/glue/sync), ``name``, ``location``
            (``file:line``; ``In [7], line 3`` for a line of a notebook cell),
            ``status``, ``start``, ``end``, ``thread``, ``cpu``, ``error``,
            ``immediate`` (an op called by library code -- a callback -- or by code
            xcs could not rewrite, so it ran at once, not deferred), ``cached`` (on an
            op: how many calls in it a cache answered, see ``served_from_cache``), ``waited_for``
            (on a sync: what the program needed the values for), ``items`` (on an
            ``xcs.map`` op: each item's graph, None for an item that never started).
        wall_seconds: Time the traced call took.
        executed: False for ``xcs.trace(..., execute=False)``: the graph was recorded
            and no op ran (no times, no ``speedup``).
        waits: The syncs that cost parallelism (waited for ops, with more ops after
            them), in program order: ``line``, ``waited_for``, ``seconds``. ``print``
            ends with them, grouped by line.
        error: The exception the call raised, None when it returned. A failed call's
            trace is partial: what ran, what failed, what was cancelled (see
            :func:`trace_of`).
    """

    def __init__(
        self,
        recording: Recording,
        result: Any,
        wall_seconds: float,
        error: BaseException | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.result = result
        self.error = error
        self._name = name  # the traced function's qualname, for to_otel
        self._epoch_ns = epoch_of(recording.t0)  # the call's start, for to_otel
        values = recording.values
        self._values = {op: values[op] for op in recording.ops if op in values}
        self.graph: nx.DiGraph = recording.graph
        self.wall_seconds = wall_seconds
        self.executed = recording.execute
        self._nodes: list[Node] = list(recording.nodes)
        self.waits = waits.waits_of(recording)
        self._waits = waits.describe(self.waits)

    @functools.cached_property
    def _shape(self) -> list[tuple[int, bool, list[int]]]:
        return parallelism.shape_of(self.graph)

    @functools.cached_property
    def parallel_groups(self) -> list[list[int]]:
        """Generations of the op-level graph: lists of op ids that could run together."""
        return parallelism.parallel_groups(self._shape)

    @functools.cached_property
    def critical_path(self) -> list[int]:
        """The chain of ops with the largest total run time (op ids in order)."""
        return parallelism.critical_path(self._shape, self.graph.nodes)

    @property
    def op_graph(self) -> nx.DiGraph:
        """The ops: A -> B when a path through glue, sync or input nodes joins them.

        A sync (or glue) joining two wide waves of ops stays as a node, where
        expanding it would make an edge for every pair (N x M): the graph stays
        linear in the size of the trace. Such nodes have ``kind`` ``"sync"`` or
        ``"glue"``; the ops have ``kind`` ``"op"``.
        """
        return parallelism.op_graph(self.graph)

    @functools.cached_property
    def speedup(self) -> float | None:
        """Estimated sequential time of the ops over the wall time of the call.

        None when no op ran (``execute=False``, or a call without ops).
        """
        summary = parallelism.summarize(self._shape, self.graph.nodes)
        if not self.executed or self.wall_seconds <= 0 or summary.ops == 0:
            return None
        return summary.sequential_seconds / self.wall_seconds

    def __str__(self) -> str:
        lines = [self._line(node) for node in self._nodes]
        return "\n".join(lines + [shown_text(line) for line in self._waits])

    # --- pictures -----------------------------------------------------------------------

    def draw(
        self,
        path: str | os.PathLike[str] | None = None,
        format: str | None = None,
        *,
        glue: bool = False,
        fold: bool = True,
    ) -> Any:
        """Draw the graph: ops ranked by parallel group, failures in red.

        Uses graphviz when its ``dot`` program is installed, matplotlib otherwise;
        graphviz drawings are at most 9 inches (648 pt) wide, to fit a notebook cell.
        By default it shows the ops, the arguments that reach them and the syncs that
        held calls back (with your line and what it waited for); glue that works on
        one op's result is part of that op's box (``then .text``), other glue folds
        into the edges. More than 8 calls of one op from one line in one parallel
        group are drawn as one box (``ask x40``).

        Args:
            path: Where to write the drawing; None to return it for display.
            format: ``svg``, ``png``, ``pdf`` or ``dot``; by default the suffix of
                ``path`` (svg without a path).
            glue: Also draw every glue step and every sync as a box of its own.
            fold: False draws every call as its own box (with ``glue=True``: every
                node of the graph).

        Returns:
            ``path`` (as a ``pathlib.Path``) when given; otherwise a drawing that
            notebooks display (``.data`` holds the SVG text or image bytes).

        Raises:
            ImportError: Neither graphviz nor matplotlib is installed (``ember-xcs[viz]``).
            ValueError: An unknown format.
            OSError: ``path`` cannot be written.
        """
        from ember.xcs._viz import output

        fmt = output.format_for(path, format)
        drawing = output.draw_view(self._view(glue=glue, fold=fold), fmt)
        return drawing if path is None else drawing.save(path)

    def to_mermaid(self, *, glue: bool = False, fold: bool = True) -> str:
        """The graph as a mermaid ``flowchart`` (GitHub, JupyterLab and Markdown draw it).

        It shows what :meth:`draw` shows, with the same ``glue`` and ``fold`` options.
        """
        from ember.xcs._viz.mermaid import to_mermaid

        return to_mermaid(self._view(glue=glue, fold=fold))

    def timeline(self, rows: str = "lanes") -> Any:
        """The run as a matplotlib ``Figure`` (needs ``ember-xcs[viz]``).

        One bar per op from its start to its end, coloured by parallel group; the
        critical path outlined, failed ops hatched. Rows: the caller's thread first,
        then pool workers in natural order (``worker 2`` before ``worker 10``).

        Args:
            rows: ``lanes`` packs the ops in the fewest rows in which no bars
                overlap (threads that ran one after another share a row, named by
                its threads); ``threads`` draws one row per thread.

        Raises:
            ValueError: ``rows`` is neither.
        """
        from ember.xcs._viz.output import INSTALL_HINT

        try:
            from ember.xcs._viz.plots import timeline_figure
        except ImportError as missing:  # pragma: no cover - matplotlib is in the viz extra
            raise ImportError(INSTALL_HINT) from missing
        return timeline_figure(self, rows)

    def to_chrome_trace(self, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The run in the Trace Event format, for https://ui.perfetto.dev or chrome://tracing.

        Args:
            path: Also write it there as JSON.

        Returns:
            The ``{"traceEvents": [...]}`` dict: an event per op on a track per
            thread, sync instants, and flow arrows along the op-level edges.
        """
        from ember.xcs._viz import output
        from ember.xcs._viz.chrome import chrome_trace

        document = chrome_trace(self)
        if path is not None:
            output.to_json_file(path, document)
        return document

    def to_otel(self, tracer: Any = None) -> None:
        """Send the run to OpenTelemetry: a span for the call, a child span per op.

        The spans have the times the run recorded (it may be long over), the call's
        span a child of the span current now. What they hold: see ``docs/observing.md``
        (model calls follow the GenAI semantic conventions; no prompt, answer or
        secret is in them). A jitted call sends these spans itself when a tracer
        provider is configured; this is for a trace you kept.

        Args:
            tracer: An OpenTelemetry ``Tracer``; by default the global provider's
                (``opentelemetry.trace.get_tracer_provider()``), scope ``ember.xcs``.

        Raises:
            ImportError: OpenTelemetry is not installed (``pip install 'ember-xcs[otel]'``).
        """
        from ember.xcs import _otel

        if tracer is None:
            try:
                from opentelemetry import trace as api
            except ImportError as missing:
                raise ImportError(
                    "Trace.to_otel needs OpenTelemetry: pip install 'ember-xcs[otel]'"
                ) from missing
            tracer = _otel.tracer_of(api.get_tracer_provider())
        groups = {op: index for index, ops in enumerate(self.parallel_groups) for op in ops}
        name = "ember.xcs.trace" if self._name is None else f"ember.xcs.trace {self._name}"
        nodes = self.graph.nodes
        run = _otel.Run(
            name, self._nodes, nodes, self._values, groups, self._epoch_ns, self.wall_seconds,
            self.error,
        )  # fmt: skip
        _otel.emit(tracer, run)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """What a notebook shows: the drawing (SVG), mermaid, and the text summary."""
        bundle: dict[str, Any] = {"text/plain": repr(self), "text/vnd.mermaid": self.to_mermaid()}
        with contextlib.suppress(ImportError):  # a bare install: text and mermaid only
            bundle["image/svg+xml"] = self.draw().data
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle

    @functools.cached_property
    def _views(self) -> dict[tuple[bool, bool], Any]:
        return {}  # (glue, fold) -> the view drawn with those options

    def _view(self, *, glue: bool, fold: bool) -> Any:
        from ember.xcs._viz.view import build_view

        if (glue, fold) not in self._views:
            self._views[glue, fold] = build_view(self, glue=glue, fold=fold)
        return self._views[glue, fold]

    def __repr__(self) -> str:
        ops = sum(1 for n in self._nodes if n.kind is NodeKind.OP)
        failed = "" if self.error is None else f", raised {type(self.error).__name__}"
        return (
            f"<Trace: {ops} ops in {len(self.parallel_groups)} parallel groups, "
            f"{len(self._nodes)} nodes, {self.wall_seconds:.3f}s{failed}>"
        )

    def _line(self, node: Node) -> str:
        attrs = self.graph.nodes[node.id]
        if node.kind is NodeKind.SYNC:
            waited = sorted(p for p in self.graph.pred[node.id] if p != node.id)
            inputs = f"waits for {len(waited)} node{'s' if len(waited) != 1 else ''}"
        elif node.fn is getattr:  # attribute glue: the name is in the node's name
            inputs = shown(node.args[0], _MAX_ARG_TEXT)
        else:  # a failed op's arguments say which call it was: more of them shown
            limit = NOTE_ARG_TEXT if attrs["status"] == "failed" else _MAX_ARG_TEXT
            inputs = shown_arguments(node.args, node.kwargs, limit)
        # One line per node, whatever the names hold: secrets redacted, control
        # characters (newlines, terminal escapes) written as escapes.
        name = shown_text(node.name)
        if node.kind is NodeKind.INPUT:
            text = f"%{node.id} = input[{name}]"
        else:
            text = f"%{node.id} = {node.kind}[{name}]({inputs})"
            text += f" @ {shown_text(node.location.short)}"
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None:
            text += f"  {end - start:.2f}s"
        if attrs["status"] == "failed" and attrs.get("error") is not None:
            text += f"  [failed: {shown_text(type(attrs['error']).__name__)}]"
        elif attrs["status"] not in ("done", "pending"):
            text += f"  [{attrs['status']}]"
        if attrs.get("immediate"):
            text += f"  [{RAN_AT_ONCE}]"
        if attrs.get("cached"):
            text += f"  [{CACHED}]"
        return text


@overload
def trace(  # an async def: an awaitable of the trace
    fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, execute: bool = True, **kwargs: Any
) -> Coroutine[Any, Any, Trace]: ...
@overload
def trace(fn: Callable[..., Any], *args: Any, execute: bool = True, **kwargs: Any) -> Trace: ...


def trace(
    fn: Callable[..., Any], *args: Any, execute: bool = True, **kwargs: Any
) -> Trace | Coroutine[Any, Any, Trace]:
    """Run ``fn(*args, **kwargs)`` once under the tracer and return its ``Trace``.

    Every op runs exactly once. A jitted ``fn`` is traced with its own options,
    without changing its decisions or stats.

    Args:
        fn: A plain function, a jitted function, or a bound method of either.
        *args: Positional arguments for ``fn``.
        execute: False records the graph without running any op; a value needed by
            control flow then raises ``ConcretizationError``.
        **kwargs: Keyword arguments for ``fn`` (``execute`` is reserved).

    Returns:
        The trace; ``.result`` is what ``fn`` returned (None when not executed). For
        an ``async def``, an awaitable of the trace: ``trace = await xcs.trace(fn, x)``.

    Raises:
        BaseException: Whatever ``fn`` raises, as with a plain call, with the trace
            of what ran until then attached: ``xcs.trace_of(error)``.
    """
    if not callable(fn):
        raise TypeError(f"xcs.trace expects a function or callable, got {fn!r}")
    fn, engine = split_jitted(fn)
    try:
        target = entry_point(fn)
    except Unrewritable as reason:
        warn_caller(
            f"xcs.trace cannot rewrite {getattr(fn, '__qualname__', fn)!r}: {reason}; its ops "
            "run one at a time, as plain Python runs them.",
            stacklevel=2,
        )
        target = fn
    recording = Recording(engine, execute=execute)
    if inspect.iscoroutinefunction(inspect.unwrap(fn)):
        return _atrace(recording, fn, args, kwargs, target)
    try:
        result = runtime.run(recording, fn, args, kwargs, target)
    except BaseException as error:
        failed_call(recording, error)
        raise
    name = getattr(fn, "__qualname__", None)
    return Trace(recording, result, time.perf_counter() - recording.t0, name=name)


async def _atrace(
    recording: Recording,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    target: Callable[..., Any],
) -> Trace:
    """``xcs.trace`` of an ``async def``: awaited on the caller's loop (``trace = await ...``)."""
    try:
        result = await runtime.arun(recording, fn, args, kwargs, target)
    except BaseException as error:
        failed_call(recording, error)
        raise
    name = getattr(fn, "__qualname__", None)
    return Trace(recording, result, time.perf_counter() - recording.t0, name=name)


# --- the trace of a call that raised --------------------------------------------------

_ATTRIBUTE = "_ember_xcs_trace"  # on the exception (exceptions take no weak references)
_last_failed: Trace | None = None


class _Attached:
    """Holds a failed call's trace on its exception.

    Pickling or copying the exception (a process pool sending it back, ``copy``)
    drops the trace: the copy has None in its place.
    """

    __slots__ = ("trace",)

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __reduce__(self) -> tuple[Any, ...]:
        return (_dropped, ())

    def __repr__(self) -> str:
        return "<the ember.xcs trace of the call that raised this: xcs.trace_of(error)>"


def _dropped() -> None:
    return None


def failed_call(recording: Recording, error: BaseException, *, last: bool = True) -> Trace | None:
    """Keep the trace of a traced call that raised ``error``, on ``error`` itself.

    Called by every outermost traced call when it raises (``@jit``, ``xcs.trace``,
    each item of ``xcs.map``) -- never when it returns, so a call that succeeds builds
    no ``Trace``. An outer call attaches after the calls inside it (it raises later),
    so the trace left on an exception is that of the outermost traced call it left.
    The exception keeps its type, message, arguments and traceback.

    Args:
        recording: The recording of the call that raised.
        error: The exception it raised (the original object).
        last: Also make it :func:`last_failed_trace` (``xcs.map`` does that for the
            item it raises, not for every item that failed).

    Returns:
        The trace, or None when it could not be built (``error`` is raised anyway).
    """
    global _last_failed
    try:
        trace = Trace(recording, None, time.perf_counter() - recording.t0, error)
    except Exception:  # never let showing a failure replace it
        return None
    with contextlib.suppress(AttributeError, TypeError):  # one that takes no attributes
        object.__setattr__(error, _ATTRIBUTE, _Attached(trace))
    if last:
        _last_failed = trace
    return trace


def trace_of(error: BaseException) -> Trace | None:
    """The trace of the traced call that raised ``error``: what ran, what failed.

    ``error`` is the exception a jitted call, ``xcs.trace(...)`` or an item of
    ``xcs.map`` raised (the original object, as ``except`` catches it). When traced
    calls were nested -- a jitted function called by another, or inside an op -- it is
    the trace of the outermost one (nested jitted calls are part of its graph). Draw
    it or print it like any trace: failed ops are marked, with the arguments of their
    call.

    Args:
        error: The exception.

    Returns:
        The trace, or None when ``error`` did not come out of a traced call (or is a
        copy of one, made by pickling).
    """
    attached = getattr(error, _ATTRIBUTE, None)
    return attached.trace if isinstance(attached, _Attached) else None


def last_failed_trace() -> Trace | None:
    """The trace of the most recent traced call in this process that raised.

    For notebooks: a cell's jitted call failed, the next cell draws
    ``xcs.last_failed_trace()``. Only the last one is kept (with the exception, its
    traceback and the arguments of its calls); None before any call raised.
    """
    return _last_failed


def keep_as_last_failed(error: BaseException) -> None:
    """Make the trace attached to ``error`` the :func:`last_failed_trace` (``xcs.map``)."""
    global _last_failed
    trace = trace_of(error)
    if trace is not None:
        _last_failed = trace


def barrier() -> None:
    """Run everything the current trace has pending, and wait for it.

    Use it before eager code that observes an op's side effects (a file it wrote,
    a global it set). Outside a trace it does nothing.

    Raises:
        BaseException: The earliest failure among the ops it ran.
    """
    recording = tracer.active()
    if recording is not None:
        recording.materialize("barrier", need_value=False)
