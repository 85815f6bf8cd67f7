"""Records a traced call as a graph: the thread's trace context and the recording.

A :class:`Recording` belongs to one outermost traced call. Op calls made on the
tracing thread become ``op`` nodes and return :class:`~.deferred.Deferred` values;
operations on pending values become ``glue`` nodes; the call's arguments are
``input`` nodes; every point where the program needed values and waited is a
``sync`` node. Node ids are ints in program order, so every edge points forward.

Edges (all in one ``networkx.DiGraph``):

* data: a node uses the value of an earlier node (found through its arguments);
* input: an op's arguments hold an argument of the traced call (by identity);
* order: glue that may change a pending value in place (a method call, ``+=``)
  waits for the previous such glue on the same object and for every node that read
  the object since; those reader edges carry ``order="dispatch"`` because a reader
  only has to have *taken its arguments* (the engine copies them for it), not
  finished, before the change may run;
* sync: from every node a sync waited for, and to every node recorded after it
  (up to the next sync), so the graph shows the program's waves without
  quadratic edges.

The trace context is a ``threading.local``, never a ContextVar: contextvars are
copied into pool workers, and an op running on a worker must not record into its
caller's graph. This module records; it never runs anything itself -- materializing
is delegated to the ``materializer`` the jit layer installs (the engine).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import os
import sys
import threading
import time
import types
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import networkx as nx

from ember._redact import shown_text
from ember.xcs._internal.concrete import concretize
from ember.xcs._internal.deferred import OUTSIDE, Deferred, Effect, value_of
from ember.xcs._internal.errors import (
    ConcretizationError,
    XCSError,
    add_op_note,
    reraise,
    warn_unrewritable,
)
from ember.xcs._internal.ir import (
    FINISHED,
    UNKNOWN_LOCATION,
    Holding,
    Location,
    Node,
    NodeKind,
    NodeState,
    OpSpec,
    Status,
)
from ember.xcs._internal.purity import (
    Kind,
    attribute_kind,
    call_kind,
    item_kind,
    op_kind,
    pure_method,
    result_kind,
    waits_for,
)
from ember.xcs._internal.snapshots import Scans, Snapshot, resolve, snapshot
from ember.xcs._internal.usercode import any_quietly_unrewritten, quietly_unrewritten

__all__ = [
    "Materializer",
    "Recording",
    "active",
    "allow_deferral",
    "enter",
    "leave",
    "take_deferral",
    "user_location",
]

Materializer = Callable[["Recording", list[int]], None]
"""Runs the given pending nodes of a recording; raises the earliest failure."""


class _Context(threading.local):
    recording: Recording | None = None  # the trace recording this thread's op calls
    running: Recording | None = None  # the trace whose op this thread is executing
    deferral: bool = False  # the dispatcher is calling an op-like object (call_op defers)
    hold_before: int = 0  # inside a clear try/with body begun at this node (see hold_failures)
    why: str | None = None  # what the next demand on this thread is for (waiting_for)


_context = _Context()

lenders = 0
"""How many recordings (on any thread) lend objects to pending nodes right now.

Zero almost always: then the dispatcher skips looking up this thread's recording
before library calls and stores (a cheap module read instead of a thread-local one).
"""
_lenders_lock = threading.Lock()


def _count_lender(delta: int) -> None:
    global lenders
    with _lenders_lock:
        lenders += delta


effects = 0
"""How many recordings (on any thread) have effects waiting to run (see
``dispatch/effects.py``): zero almost always, so library calls check one module global."""


def _count_effects(delta: int) -> None:
    global effects
    with _lenders_lock:
        effects += delta


def active() -> Recording | None:
    """The recording that op calls on this thread go into, if any."""
    return _context.recording


def enter(recording: Recording | None) -> Recording | None:
    """Make ``recording`` this thread's trace; returns the previous one for :func:`leave`."""
    previous = _context.recording
    _context.recording = recording
    if recording is not None:
        tracing[threading.get_ident()] = recording
    return previous


def leave(previous: Recording | None) -> None:
    """Restore the trace that was active before :func:`enter`."""
    _context.recording = previous
    if previous is None:
        tracing.pop(threading.get_ident(), None)
    else:
        tracing[threading.get_ident()] = previous


tracing: dict[int, Recording] = {}
"""The trace active on each thread that has one (thread id -> recording)."""


def waiting_for(why: str | None) -> None:
    """Say what the next demand on this thread is for (a branch, a library call).

    Set by dispatcher helpers just before they need a pending value; the sync that
    demand makes carries it (``waits.py`` reports it). Cleared by that demand.
    """
    _context.why = why


def op_outside_trace() -> None:
    """An op ran with no trace on this thread: count it if the program is being traced.

    A thread the traced function started itself (its own ``ThreadPoolExecutor``) has
    no trace; when one trace is active in the process, it is the one whose function
    started the thread, and it counts the op (``stats()`` says so).
    """
    if len(tracing) == 1 and _context.running is None:
        for recording in list(tracing.values()):
            recording.own_thread_ops += 1


def hold_failures(before: int) -> int:
    """Failures of nodes recorded before ``before`` are held, not raised (0: none are).

    Set while this thread runs a *clear* try or with body (``dispatch/clear.py``): a
    failure from before the block must not reach its handlers, so a materialization
    inside it (a flush of effects, a clock read) holds such a failure, and the next
    one outside raises it. Returns the previous setting, for restoring.
    """
    previous = _context.hold_before
    _context.hold_before = before
    return previous


def allow_deferral() -> None:
    """The next ``call_op`` on this thread comes through the dispatcher: it may defer."""
    _context.deferral = True


def take_deferral() -> bool:
    """Whether the current ``call_op`` may defer (and forget it for the next one)."""
    allowed = _context.deferral
    _context.deferral = False
    return allowed


def begin_op(recording: Recording) -> tuple[Recording | None, Recording | None]:
    """Mark this thread as running an op of ``recording`` (no trace records meanwhile)."""
    saved = (_context.recording, _context.running)
    _context.recording = None
    _context.running = recording
    return saved


def end_op(saved: tuple[Recording | None, Recording | None]) -> None:
    """Undo :func:`begin_op`."""
    _context.recording, _context.running = saved


# Frames inside xcs, ember.models and ember.operators are never "the user's line": an
# op's location is where the user's code called the model or the operator.
_EMBER = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SKIP = tuple(os.path.join(_EMBER, part, "") for part in ("xcs", "models", "operators"))


def user_location(skip: int = 1) -> Location:
    """The innermost frame of the caller's stack outside xcs, models and operators.

    Args:
        skip: Frames known to be inside xcs, counted from this function's caller.
    """
    frame = _user_frame(sys._getframe(skip))
    if frame is None:
        return UNKNOWN_LOCATION
    code = frame.f_code
    key = (code.co_filename, frame.f_lineno, code.co_name)
    location = _locations.get(key)
    if location is None:
        if len(_locations) >= LOCATIONS_KEPT:
            _locations.clear()  # many notebook cells or generated files: start again
        location = _locations[key] = Location(*key)
    return location


# One Location per user line, shared by every node recorded there: a trace of 100k
# calls from one line holds one object, not 100k (less memory, less for the GC).
LOCATIONS_KEPT = 10_000
_locations: dict[tuple[str, int, str], Location] = {}


def _user_frame(frame: types.FrameType | None) -> types.FrameType | None:
    """``frame`` or the nearest frame up the stack outside xcs, models and operators."""
    while frame is not None and frame.f_code.co_filename.startswith(_SKIP):
        frame = frame.f_back
    return frame


_KIND_NAMES = {kind: kind.value for kind in NodeKind}

# Why an op runs at once (the sync's name) -> the reason, for messages.
_AT_ONCE = {
    "runs now": "the op was called by library code (or code xcs could not rewrite), "
    "which needs its value at once",
    "consumes an iterator": "the op was given an iterator, which it consumes as it runs",
    "reads a large object": "the op was given an object too large to look through for "
    "pending values",
}


_INFERRED: Any = object()  # record_glue: the result's kind follows from the receiver's


class Recording:
    """The graph and values of one outermost traced call.

    While tracing, the graph is kept as plain adjacency dicts (``succ``/``pred``,
    edge kind None or ``"dispatch"``): recording and running an op must cost a few
    microseconds. :attr:`graph` builds the ``networkx.DiGraph`` from them on demand.

    Attributes:
        nodes: The frozen records, indexed by id.
        state: Flat attributes of each node, indexed by id: copies of the node
            record (``kind``, ``name``, ``location``) plus run-time state
            (``status``, ``start``, ``end``, ``thread``, ``cpu``, ``error``).
            ``location`` is a :class:`~.ir.Location` here and its text in
            :attr:`graph` (``file:line``; ``In [7], line 3`` in a notebook cell).
        succ: For each node, its successors and the kind of each edge.
        pred: For each node, its predecessors and the kind of each edge.
        values: Values of finished nodes by id.
        pending: Ids of nodes recorded but not yet run, in program order.
        lock: Held while recording and while materializing.
        t0: ``time.perf_counter()`` at the start; node times are relative to it.
        execute: False records without running any op (``trace(execute=False)``).
        materializer: Runs pending nodes (installed by the jit layer).
        ancestors: Recordings whose ops (transitively) started this one.
    """

    def __init__(self, materializer: Materializer, *, execute: bool = True) -> None:
        self.nodes: list[Node] = []
        self.state: list[NodeState] = []
        self.succ: list[dict[int, str | None]] = []
        self.pred: list[dict[int, str | None]] = []
        self.depth: list[int] = []  # ops on the longest path ending at each node
        self.ops: list[int] = []  # op node ids, in program order
        self.values: dict[int, Any] = {}
        self.pending: list[int] = []
        self.lock = threading.RLock()
        self.t0 = time.perf_counter()
        self.execute = execute
        self.materializer = materializer
        self.pid = os.getpid()
        parent = _context.running
        self.ancestors: frozenset[int] = (
            frozenset() if parent is None else parent.ancestors | {id(parent)}
        )
        self._input_ids: dict[int, int] = {}
        self._input_objects: list[Any] = []  # keeps ids in _input_ids valid
        self._last_sync: int | None = None
        self._root: dict[int, int] = {}  # node -> node whose object it is part of
        self._last_write: dict[int, int] = {}  # root -> last glue that may change it
        self._readers: dict[int, list[tuple[int, bool]]] = {}  # root -> (reader, held) since
        self.remembered: dict[int, Any] = {}  # id -> object to make concrete at exit
        self.remembered_globals: dict[tuple[int, str], dict[str, Any]] = {}  # (id, name) -> ns
        self.lent: dict[int, Any] = {}  # id -> object a pending node reads by reference
        self._held: dict[int, list[Holding]] = {}  # lent id -> markers passing it directly
        self._nested: set[int] = set()  # lent ids reached inside other objects
        self._scans: Scans = {}  # objects looked through since anything pending last ran
        self._last_context: contextvars.Context | None = None  # the last op's (record_op)
        self._kinds: dict[int, Kind] = {}  # node -> what is known of its value's type
        self._pure: set[int] = set()  # pending attributes whose call is pure (see purity.py)
        self._methods: dict[int, tuple[Kind, str]] = {}  # attribute node -> (owner kind, name)
        self.effects_waiting = False  # an effect (print, logging) is recorded, not yet run
        self._effects_from = -1  # the last effect: the next one waits for it and later nodes
        self.held: BaseException | None = None  # a failure held inside a clear block
        self.stopped: BaseException | None = None  # set by stop(): start nothing more
        self.parts: dict[int, list[Recording | None]] = {}  # op -> its items' recordings
        # An async traced call's (awaiting.py): its event loop, the loop's thread, and
        # whether a wait is blocking that loop now (its async ops then run elsewhere).
        self.loop: Any = None
        self.loop_thread: int | None = None
        self.loop_blocked = False
        self.interrupted: BaseException | None = None  # the awaiting task was cancelled
        self.wake: Callable[[], None] | None = None  # wakes the materialization running now
        self.syncs: list[int] = []  # sync node ids, in program order
        self.opaque: set[str] = set()  # callees xcs could not see through (lru_cache)
        self.own_thread_ops = 0  # ops run on threads the traced function started

    # --- the Owner protocol of deferred values ------------------------------------

    def is_known(self, node: int) -> bool:
        """Whether ``node`` has finished (done, failed or cancelled)."""
        return self.state[node].status in FINISHED

    def demand(self, node: int) -> Any:
        """Return the value of ``node``, running everything pending if it is unknown.

        Raises:
            BaseException: The node's original exception if it failed (or the
                earliest failure in program order among the nodes run now).
            ConcretizationError: The value cannot be made here (no-execute trace,
                or demanded from inside an op of this same trace).
        """
        state = self.state[node]
        why = _context.why
        if why is not None:
            _context.why = None
        if state.status not in FINISHED:
            self._refuse_inside_own_op(node)
            self._refuse_after_fork(node)
            with self.lock:
                if state.status not in FINISHED:
                    self.materialize(f"demand %{node}", demanded=node, why=why)
        status = state.status
        if status is Status.DONE:
            return self.values[node]
        if status in FINISHED:
            assert state.error is not None
            reraise(state.error)
        raise XCSError(f"internal: %{node} is still {status} after materializing")

    def record_glue(
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        receiver: int,
        effect: Effect,
        method: str | None = None,
        *,
        kind: Kind = _INFERRED,
    ) -> Deferred:
        """Record ``fn(*args, **kwargs)`` on the pending value of ``receiver``.

        ``kind``: what is known of the result's type (a pure call's table entry says);
        by default it is inferred from the receiver's (see ``purity.py``).
        """
        self._refuse_inside_own_op(receiver)
        with self.lock:
            args_t, kwargs_t, found = snapshot(args, kwargs, self, {})
            node = self._add(NodeKind.GLUE, name, fn, args_t, kwargs_t, found)
            root = self._root.get(receiver, receiver)
            if effect != "new":
                self._root[node] = root  # the result is (part of) the receiver's object
            if effect == "write":
                self._order_write(node, root)
            if kind is _INFERRED:
                self._know(node, name, fn, receiver, method)
            elif kind is not None:
                self._kinds[node] = kind
            return Deferred(self, node, method)

    def record_effect(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Record ``fn(*args)``, an effect (``print``, logging), in program order.

        It runs after every node recorded before it has finished (the previous
        effect included): if one of them fails, it never runs, as plain Python would
        never have reached it. Until it has run, library calls flush it first (see
        ``dispatch/effects.py``).
        """
        with self.lock:
            args_t, kwargs_t, found = snapshot(args, {}, self, {})
            node = self._add(NodeKind.GLUE, name, fn, args_t, kwargs_t, found)
            pending, since = self.pending, self._effects_from
            index = len(pending) - 2  # the last one is this effect
            while index >= 0 and pending[index] >= since:
                self._edge(pending[index], node)
                index -= 1
            self._effects_from = node
            self.depth[node] = self._depth_of(node)
            if not self.effects_waiting:
                self.effects_waiting = True
                _count_effects(1)

    def _end_effects(self) -> None:
        """No effect waits any more (they run now, or never will)."""
        if self.effects_waiting:
            self.effects_waiting = False
            _count_effects(-1)

    def _know(
        self, node: int, name: str, fn: Callable[..., Any], receiver: int, method: str | None
    ) -> None:
        """What is known of a glue node's value, from its receiver's (see ``purity.py``)."""
        kind = self._kinds.get(receiver)
        if method is not None and fn is getattr:  # an attribute read, perhaps a method
            made = attribute_kind(kind, method)
            self._methods[node] = (kind, method)
            if pure_method(kind, method):
                self._pure.add(node)
        elif name == "[]":
            made = item_kind(kind)
        elif receiver in self._methods and name.endswith("()"):
            made = call_kind(*self._methods[receiver])
        else:
            made = result_kind(kind, name)
        if made is not None:
            self._kinds[node] = made

    def may_wait(self, node: int, access: str) -> bool:
        """Whether ``access`` on the pending value of ``node`` may be glue (``purity.py``)."""
        return waits_for(self._kinds.get(node), access)

    def pure_call(self, node: int) -> bool:
        """Whether calling the pending attribute ``node`` may wait (see ``purity.py``)."""
        return node in self._pure

    # --- run state: the transitions of each node's NodeState ----------------------

    def start(self, node: int, at: float | None = None) -> None:
        """``node`` begins running (``at``: its ``perf_counter()`` start, if known now)."""
        state = self.state[node]
        state.status = Status.RUNNING
        if at is not None:
            state.start = at - self.t0

    def record_times(
        self, node: int, start: float, end: float, thread: str | None, cpu: float | None
    ) -> None:
        """When ``node`` ran (``perf_counter()`` times), where, and its CPU seconds."""
        state = self.state[node]
        state.start, state.end = start - self.t0, end - self.t0
        state.thread, state.cpu = thread, cpu

    def finish(
        self,
        node: int,
        ok: bool,
        value: Any,
        start: float,
        end: float,
        thread: str | None,
        cpu: float | None,
    ) -> None:
        """``node`` ran: done with ``value``, or failed with it (an exception)."""
        self.record_times(node, start, end, thread, cpu)
        state = self.state[node]
        if ok:
            self.values[node] = value
            state.status = Status.DONE
        else:
            state.status, state.error = Status.FAILED, value

    def fail(self, node: int, error: BaseException, start: float | None = None) -> None:
        """``node`` failed without reporting back (it timed out, say)."""
        self.start(node, start)
        state = self.state[node]
        state.status, state.error = Status.FAILED, error

    def cancel(self, node: int, error: BaseException) -> None:
        """``node`` never runs, or its result is dropped, because of ``error``.

        A node that failed itself stays failed (with its own error).
        """
        state = self.state[node]
        if state.status is not Status.FAILED:
            state.status, state.error = Status.CANCELLED, error

    def cancel_pending(self, error: BaseException, nodes: list[int] | None = None) -> None:
        """Nodes not finished (``nodes``, or all pending ones) will never run."""
        with self.lock:
            for node in self.pending if nodes is None else nodes:
                state = self.state[node]
                if state.status not in FINISHED:
                    state.status, state.error = Status.CANCELLED, error
            if nodes is None:
                self.pending.clear()
                self.end_loans()
                self._end_effects()

    def keep_parts(self, parts: list[Recording | None]) -> None:
        """Keep the recordings of the last op's items (``xcs.map``), filled as it runs."""
        if self.ops:
            self.parts[self.ops[-1]] = parts

    def stop(self, error: BaseException) -> None:
        """Start no more ops: each one not started fails with ``error`` (``xcs.map``).

        Another thread may call it; the materializing thread sees it the next time it
        hands ops out. Ops already running finish.
        """
        self.stopped = error

    def failed_with(self, error: BaseException) -> bool:
        """Whether ``error`` is a node's own failure (an op's, not code around it)."""
        return any(state.error is error for state in self.state)

    # --- recording ---------------------------------------------------------------

    def before_change(self, *objects: Any, attribute_store: bool = False) -> None:
        """User code is about to change these objects (or hand them to library code).

        A pending node that got one of them by reference reads it when it runs, so it
        must see the object as it was when called: everything pending runs first.
        Except for a plain attribute store (``attribute_store``: no code of the class
        runs) into an object of your class that every pending reader got directly as
        an argument: they get a shallow copy made now instead (the attributes are what
        changes; what they hold stays lent).
        """
        lent = self.lent
        for obj in objects:
            if obj is None or lent.get(id(obj)) is not obj:
                continue
            if attribute_store and self._copy_for_readers(obj):
                continue
            self.materialize("a change to an object a pending call reads", need_value=False)
            return

    def _copy_for_readers(self, obj: Any) -> bool:
        """Hand the pending readers of ``obj`` a copy of it (see ``before_change``)."""
        holdings = self._held.get(id(obj))
        if not holdings or id(obj) in self._nested:
            return False
        try:
            twin = copy.copy(obj)
        except Exception:
            return False
        for holding in holdings:
            holding.obj = twin
            holding.slots = [(twin if h is obj else h, a, w) for h, a, w in holding.slots]
        del self.lent[id(obj)], self._held[id(obj)]
        return True

    def end_loans(self) -> None:
        """Forget the lent objects: no pending node reads them any more."""
        with self.lock:
            self._held.clear()
            self._nested.clear()
            self._scans.clear()
            if self.lent:
                self.lent.clear()
                _count_lender(-1)

    def remember(self, container: Any) -> None:
        """Note a container that received pending values: made concrete at exit."""
        with self.lock:
            self.remembered.setdefault(id(container), container)  # held: its id stays its own

    def remember_globals(self, namespace: dict[str, Any], names: tuple[str, ...]) -> None:
        """Note globals assigned pending values: made concrete at exit (only those names)."""
        with self.lock:
            for name in names:
                self.remembered_globals[(id(namespace), name)] = namespace

    def run_now(
        self,
        spec: OpSpec,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        why: str | None = None,
    ) -> Any:
        """Run an op called outside the dispatcher at once, as a node of the graph.

        Everything recorded before it runs first (it comes later in program order);
        it runs on this thread with concrete arguments; its exception propagates as
        the original object with a note.
        """
        if any_quietly_unrewritten():  # called by user code xcs left alone? say so once
            caller = _user_frame(sys._getframe(1))
            if caller is not None and (unrewritten := quietly_unrewritten(caller.f_code)):
                warn_unrewritable(**dataclasses.asdict(unrewritten))
        with self.lock:
            args_t, kwargs_t, found = snapshot(args, kwargs, self, self._input_ids, self._scans)
        OUTSIDE.depth += 1  # library code called the op: what it did before is done
        try:
            return self._run_at_once(spec, fn, args_t, kwargs_t, found, "runs now", why)
        finally:
            OUTSIDE.depth -= 1

    def _run_at_once(
        self,
        spec: OpSpec,
        fn: Callable[..., Any],
        args_t: tuple[Any, ...],
        kwargs_t: Mapping[str, Any],
        found: Snapshot,
        why: str,
        waited_for: str | None = None,
    ) -> Any:
        """Run everything pending, then this op on this thread; record it as a node."""
        self.materialize(f"{spec.name} {why}", demanded=None, why=waited_for)
        node, call_args, call_kwargs = self._start_at_once(spec, fn, args_t, kwargs_t, found, why)
        saved = begin_op(self)
        thread = threading.current_thread().name
        cpu0, start = time.thread_time(), time.perf_counter()
        try:
            value = fn(*call_args, **call_kwargs)
        except BaseException as exc:
            end_op(saved)
            self._end_at_once(node, False, exc, start, thread, time.thread_time() - cpu0)
            raise
        end_op(saved)
        self._end_at_once(node, True, value, start, thread, time.thread_time() - cpu0)
        return value

    async def arun_now(
        self,
        spec: OpSpec,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        why: str | None = None,
    ) -> Any:
        """:meth:`run_now` of an ``async def`` called by async traced code: awaited.

        What is pending runs first (awaited: the loop goes on), then ``fn`` is awaited
        with concrete arguments, recorded as one node.
        """
        from ember.xcs._internal.awaiting import wait

        if self.pending:
            await wait(self, f"{spec.name} runs now", None, True, why, _context.hold_before)
        with self.lock:
            args_t, kwargs_t, found = snapshot(args, kwargs, self, self._input_ids, self._scans)
        node, call_args, call_kwargs = self._start_at_once(
            spec, fn, args_t, kwargs_t, found, "runs now"
        )
        thread = threading.current_thread().name
        start = time.perf_counter()
        try:
            value = await fn(*call_args, **call_kwargs)
        except BaseException as exc:
            self._end_at_once(node, False, exc, start, thread, 0.0)
            raise
        self._end_at_once(node, True, value, start, thread, 0.0)
        return value

    def _start_at_once(
        self,
        spec: OpSpec,
        fn: Callable[..., Any],
        args_t: tuple[Any, ...],
        kwargs_t: Mapping[str, Any],
        found: Snapshot,
        why: str,
    ) -> tuple[int, tuple[Any, ...], dict[str, Any]]:
        """The node of an op run at once (nothing is pending) and its concrete arguments."""
        if self.stopped is not None:  # xcs.map stopped this item: start nothing more
            raise self.stopped
        with self.lock:
            node = self._add(
                NodeKind.OP,
                spec.name,
                fn,
                args_t,
                kwargs_t,
                found,
                spec=spec,
                status=Status.RUNNING if self.execute else Status.CANCELLED,
                immediate=True,
            )
        if not self.execute:
            raise self._concretization_error(
                node,
                f"{_AT_ONCE[why]}, and xcs.trace(..., execute=False) runs no ops",
                "Trace with execute=True to run the ops.",
            )
        call_args = tuple(resolve(a, self.values) for a in args_t)
        call_kwargs = {k: resolve(v, self.values) for k, v in kwargs_t.items()}
        for inner in (*found.inner_iterators, *found.exhausted):  # values inside, as values
            concretize(inner, value_of)
        return node, call_args, call_kwargs

    def _end_at_once(
        self, node: int, ok: bool, value: Any, start: float, thread: str, cpu: float
    ) -> None:
        """Finish the node of an op run at once; a failure gets its note."""
        self.finish(node, ok, value, start, time.perf_counter(), thread, cpu)
        if not ok:
            add_op_note(value, node, self.nodes[node].name, str(self.nodes[node].location))

    def add_input(self, name: str, value: Any) -> int:
        """Record an argument of the traced call as an ``input`` node."""
        with self.lock:
            node = self._add(NodeKind.INPUT, name, None, (), {}, Snapshot(), status=Status.DONE)
            self.values[node] = value
            self._input_ids[id(value)] = node
            self._input_objects.append(value)
            return node

    def record_op(
        self,
        spec: OpSpec,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        op: Callable[..., Any] | None = None,
        kind: Kind = None,
    ) -> Any:
        """Record a call of an op and return the deferred value of its result.

        An op given an iterator consumes it as it runs, as in plain Python (how far,
        and when, is the op's business), so it cannot wait: it runs at once, after
        everything recorded before it, and its value is returned.

        Args:
            spec: The op's spec.
            fn: What runs on a thread of this process.
            args: Positional arguments as passed.
            kwargs: Keyword arguments as passed.
            op: What to send to another process instead (picklable), if not ``fn``.
            kind: What is known of the result's type, if more than ``fn``'s annotation
                says (a registered SDK method's).
        """
        context = contextvars.copy_context()
        if context == self._last_context:  # nothing set since the last op: share its copy
            context = self._last_context  # (each run enters a copy: see pool.Task)
        else:
            self._last_context = context
        with self.lock:
            args_t, kwargs_t, found = snapshot(args, kwargs, self, self._input_ids, self._scans)
            if not found.iterators and not found.exhausted:
                node = self._add(
                    NodeKind.OP, spec.name, fn, args_t, kwargs_t, found,
                    spec=spec, context=context, op=op,
                )  # fmt: skip
                if kind is None:
                    kind = op_kind(fn, spec)
                if kind is not None:
                    self._kinds[node] = kind
                return Deferred(self, node)
        why = "consumes an iterator" if found.iterators else "reads a large object"
        return self._run_at_once(spec, fn, args_t, kwargs_t, found, why)

    def _add(
        self,
        kind: NodeKind,
        name: str,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        found: Snapshot,
        *,
        spec: OpSpec | None = None,
        context: contextvars.Context | None = None,
        status: Status = Status.PENDING,
        op: Callable[..., Any] | None = None,
        immediate: bool = False,
        where: Location | None = None,
    ) -> int:
        node_id = len(self.nodes)
        # (a start of 3: frames inside xcs are skipped anyway)
        location = where if where is not None else user_location(3)
        record = Node(
            node_id,
            kind,
            name,
            fn,
            args,
            kwargs,
            location,
            tuple(found.deps),
            spec,
            context,
            found.markers,
            op,
        )
        self.nodes.append(record)
        self.state.append(NodeState(_KIND_NAMES[kind], name, location, status, immediate=immediate))
        self.succ.append({})
        self.pred.append({})
        for dep in found.deps:
            self._edge(dep, node_id)
            if self.state[dep].status not in FINISHED:
                self._order_read(node_id, self._root.get(dep, dep), dep in found.held)
        for source in found.inputs:
            self._edge(source, node_id)
        if self._last_sync is not None:
            self._edge(self._last_sync, node_id)
        self.depth.append(self._depth_of(node_id))
        if kind is NodeKind.OP:
            self.ops.append(node_id)
        if status is Status.PENDING:
            self.pending.append(node_id)
            if found.lent:  # read when it runs: changes to them wait for it
                if not self.lent:
                    _count_lender(1)
                roots = {id(h.obj) for h in found.holdings}
                for obj in found.lent:
                    self.lent[id(obj)] = obj
                    if id(obj) not in roots:
                        self._nested.add(id(obj))  # reached inside another object
                for holding in found.holdings:
                    self._held.setdefault(id(holding.obj), []).append(holding)
        return node_id

    def _depth_of(self, node: int) -> int:
        """Ops on the longest path to ``node`` (its in-edges are all known by now)."""
        pred = self.pred[node]
        if pred:
            depth = self.depth
            best = max([depth[p] for p, kind in pred.items() if kind is None], default=0)
        else:
            best = 0
        return best + 1 if self.nodes[node].kind is NodeKind.OP else best

    def _edge(self, source: int, target: int, kind: str | None = None) -> None:
        """Add an edge; a plain edge is stronger than a ``dispatch`` one for a pair."""
        out = self.succ[source]
        if target in out and (out[target] is None or kind is not None):
            return
        out[target] = kind
        self.pred[target][source] = kind

    def _order_read(self, node: int, root: int, held: bool = False) -> None:
        """``node`` reads the object of ``root`` (a later change is ordered after it).

        ``held``: read inside an object the node got by reference, where no copy
        shields it, so a change must wait until the node finished, not just started.
        """
        writer = self._last_write.get(root)
        if writer is not None and writer != node:
            self._edge(writer, node)
        self._readers.setdefault(root, []).append((node, held))

    def _order_write(self, node: int, root: int) -> None:
        for reader, held in self._readers.pop(root, ()):
            if reader != node:
                self._edge(reader, node, None if held else "dispatch")
        self._last_write[root] = node

    # --- views ---------------------------------------------------------------------

    @property
    def graph(self) -> nx.DiGraph:
        """The recording as a ``networkx.DiGraph`` (a snapshot, built on each access).

        Nodes are ids in program order with the flat attributes of :attr:`state`;
        edges that only order a change after a reader started carry
        ``order="dispatch"``.
        """
        graph = nx.DiGraph()
        graph.add_nodes_from((node, state.attributes()) for node, state in enumerate(self.state))
        for node, parts in self.parts.items():  # an xcs.map's items, each a graph
            graph.nodes[node]["items"] = [None if p is None else p.graph for p in parts]
        graph.add_edges_from(
            (source, target, {"order": kind} if kind else {})
            for source, targets in enumerate(self.succ)
            for target, kind in targets.items()
        )
        return graph

    # --- materializing -------------------------------------------------------------

    def materialize(
        self,
        reason: str,
        *,
        demanded: int | None = None,
        need_value: bool = True,
        why: str | None = None,
    ) -> None:
        """Run everything pending and wait for it, recorded as one ``sync`` node.

        Args:
            reason: Why the program waits (``demand %3``, ``exit``, ``barrier``).
            demanded: The node whose value is needed, if one is.
            need_value: False for syncs that only order effects (exit, barrier);
                those pass without running anything when the trace does not execute.
            why: What the program needed the value for (see ``waits.py``), if known.

        Raises:
            BaseException: The earliest failure in program order among the nodes run.
            ConcretizationError: A value is needed and the trace does not execute.
        """
        if self.pending:
            self._refuse_after_fork(self.pending[0])
            if self.loop is not None and threading.get_ident() == self.loop_thread:
                # Async code: wait with an await when the rewrite made this an await point
                # (raises Suspend), else block the loop for it (said once per line).
                from ember.xcs._internal import awaiting

                awaiting.suspend_or_block(self, reason, demanded, need_value, why)
                self.loop_blocked = True
                try:
                    self._materialize(reason, demanded, need_value, why)
                finally:
                    self.loop_blocked = False
                return
        self._materialize(reason, demanded, need_value, why)

    def _materialize(
        self,
        reason: str,
        demanded: int | None,
        need_value: bool,
        why: str | None,
        where: Location | None = None,
    ) -> None:
        if where is None and self.pending:  # the user's line (before any frame of ours)
            where = user_location()
        hold = _context.hold_before
        with self.lock, self._syncing(reason, demanded, need_value, why, where, hold) as batch:
            if batch:
                self.materializer(self, batch)

    async def amaterialize(
        self,
        reason: str,
        demanded: int | None,
        need_value: bool,
        why: str | None,
        where: Location,
        hold: int,
        run: Callable[[Recording, list[int]], Awaitable[None]],
    ) -> None:
        """:meth:`materialize` on an async body's loop thread, awaited.

        ``run`` is the engine's coroutine (``Engine.arun``): the loop goes on meanwhile.
        ``hold`` is the body's :func:`hold_failures` mark at the awaiting line.
        """
        with self.lock, self._syncing(reason, demanded, need_value, why, where, hold) as batch:
            if batch:
                await run(self, batch)

    @contextlib.contextmanager
    def _syncing(
        self,
        reason: str,
        demanded: int | None,
        need_value: bool,
        why: str | None,
        where: Location | None,
        hold: int,
    ) -> Iterator[list[int]]:
        """Take what is pending as one ``sync`` node's batch (empty: nothing to run).

        The caller runs the batch inside; a failure of it is recorded on the sync, and
        held rather than raised when it comes from before a clear try/with body
        (:func:`hold_failures`; ``hold`` is that mark, 0 for none). Hold the lock around it.
        """
        if self.held is not None and not hold:  # earlier than anything pending
            error, self.held = self.held, None
            reraise(error)
        if not self.pending:
            yield []
            return
        if not self.execute:
            if need_value:
                raise self._concretization_error(
                    demanded if demanded is not None else self.pending[-1],
                    "xcs.trace(..., execute=False) runs no ops, and the program "
                    f"needed this value at {user_location()}",
                    "Trace with execute=True to run the ops.",
                )
            self._end_effects()  # recorded, never written: no values exist
            yield []
            return
        batch, self.pending = self.pending, []
        self.end_loans()  # every node that reads them runs now
        self._end_effects()  # and every effect
        sync = self._add_sync(batch, reason, where)
        state = self.state[sync]
        state.waited_for = why
        state.status = Status.RUNNING
        state.start = time.perf_counter() - self.t0
        try:
            yield batch
        except Exception as exc:
            state.error = exc
            if hold and self._failed_before(exc, batch, hold):
                self.held = self.held or exc  # raised by the next sync outside
                return
            raise
        except BaseException as exc:
            state.error = exc
            raise
        finally:
            state.status = Status.DONE
            state.end = time.perf_counter() - self.t0

    def _failed_before(self, error: BaseException, batch: list[int], mark: int) -> bool:
        """Whether ``error`` is the failure of a node of ``batch`` recorded before ``mark``."""
        state = self.state
        return any(state[n].error is error for n in batch if n < mark)

    def _add_sync(self, batch: list[int], reason: str, where: Location | None = None) -> int:
        sync = self._add(
            NodeKind.SYNC, reason, None, (), {}, Snapshot(), status=Status.DONE, where=where
        )
        for node in batch:
            self._edge(node, sync)
        self.depth[sync] = self._depth_of(sync)
        self._last_sync = sync
        self.syncs.append(sync)
        return sync

    def _refuse_inside_own_op(self, node: int) -> None:
        """Raise instead of hanging when an op of this trace uses one of its values.

        Code running inside an op of this trace (or of a trace that op started)
        that waited for a pending value of this trace would wait for itself.
        """
        running = _context.running
        if running is not None and (running is self or id(self) in running.ancestors):
            raise self._concretization_error(
                node,
                "it was used inside an op of the same trace (hidden deep in an object "
                "the op received, or captured by it), and the op would wait for itself",
                "Pass the value to the op as an argument, directly, in a list, tuple, "
                "dict or dataclass, or as an attribute of an object the op receives, so "
                "xcs sees the dependency.",
            )

    def _refuse_after_fork(self, node: int) -> None:
        if os.getpid() != self.pid:
            record = self.nodes[self._producing_op(node)]
            raise XCSError(
                f"%{node} (op {shown_text(repr(record.name))} called at {record.location}) was "
                "still pending "
                f"when this process was forked from process {self.pid}; its ops can only run "
                "in the parent. Call xcs.barrier() before os.fork(), or fork before tracing."
            )

    def _concretization_error(self, node: int, reason: str, fix: str) -> ConcretizationError:
        op = self._producing_op(node)
        record = self.nodes[op]
        return ConcretizationError(node, record.name, str(record.location), reason, fix)

    def _producing_op(self, node: int) -> int:
        """The op a (glue) node's value comes from: the latest op among its ancestors."""
        seen, todo, best = {node}, [node], -1
        while todo:
            current = todo.pop()
            if self.nodes[current].kind is NodeKind.OP:
                best = max(best, current)
                if current == node:
                    return node
                continue  # the nearest ops are enough
            for pred in self.pred[current]:
                if pred not in seen:
                    seen.add(pred)
                    todo.append(pred)
        return best if best >= 0 else node
