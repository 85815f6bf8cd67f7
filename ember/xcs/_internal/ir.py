"""The records a trace is made of: node kinds, run states, op specs and node records.

What a node *is* (its kind, function, argument templates, location) is a frozen
:class:`Node`. What happens to it at run time (status, start, end, thread, error) is
a :class:`NodeState`, written only through the recording's transitions and shown as
flat attributes on the graph node.
Argument templates are copies of the user's arguments in which every deferred value
is replaced by a :class:`Ref` to the node that produces it.

This module holds data only; it imports nothing from the rest of xcs but how a
place is written (``locations``).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from contextvars import Context
from types import MappingProxyType
from typing import Any, NamedTuple

from ember.xcs._internal.locations import describe_location

__all__ = [
    "Describe",
    "Holding",
    "Location",
    "Node",
    "NodeKind",
    "NodeState",
    "OpSpec",
    "Ref",
    "Slot",
    "Status",
    "Stream",
]


class NodeKind(enum.StrEnum):
    """The closed set of node kinds in a trace graph."""

    INPUT = "input"  # an argument of the outermost traced call
    OP = "op"  # a call of an xcs op (runs on a worker)
    GLUE = "glue"  # an operation on a pending value (runs inline, in program order)
    SYNC = "sync"  # a point where the program needed values and waited for them


class Status(enum.StrEnum):
    """Run state of a node; see the engine's module docstring for the transitions."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED})


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """Where in user code something happened.

    Shown as ``file:line``, or ``In [7], line 3`` for a line of a notebook cell
    (``locations.describe_location``: written when shown).
    """

    file: str
    line: int
    function: str = "?"

    def __str__(self) -> str:
        return describe_location(self.file, self.line)

    @property
    def short(self) -> str:
        """``basename:line`` (or the notebook cell), for compact displays."""
        return describe_location(self.file, self.line, short=True)


UNKNOWN_LOCATION = Location("<unknown>", 0)

Describe = Callable[
    [tuple[Any, ...], Mapping[str, Any], Any, BaseException | None], tuple[str, dict[str, Any]]
]
"""``OpSpec.describe``: a call's arguments, value and error -> its span's name and attributes."""
_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class OpSpec:
    """How an op is named and limited; shared by every call of that op.

    Compared by identity: two ops of the same name are still two ops, each with its
    own ``max_concurrency`` slots.

    Attributes:
        name: Display name in graphs, stats and error notes.
        max_concurrency: Upper bound on concurrent runs of this op across all
            traces, or None for no bound.
        shares_limit_with: Another spec whose slots this one uses, so several ops
            share one bound -- that spec's ``max_concurrency`` (every model of one
            provider, say); None (or a spec without a bound) for its own.
        describe: How tracing tools (OpenTelemetry) show a call of this op:
            ``describe(args, kwargs, value, error)`` returns the span's name and
            attributes (``str``/``bool``/``int``/``float`` values; never a secret).
            ``args`` and ``kwargs`` are as recorded (another op's value is a ``Ref``);
            ``value`` is None when the call failed with ``error``. None: the span is
            named after the op and has only xcs's own attributes.
    """

    name: str
    max_concurrency: int | None = None
    shares_limit_with: OpSpec | None = None
    describe: Describe | None = None

    def __post_init__(self) -> None:
        limit = self.max_concurrency
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(
                f"max_concurrency of op {self.name!r} must be a positive int or None, got {limit!r}"
            )


class Node(NamedTuple):
    """One recorded step of a traced program (an immutable record).

    Attributes:
        id: Position in program order; also the graph node id.
        kind: What sort of step this is.
        name: Op name, glue operation (``.strip``, ``+``), input name or sync reason.
        fn: What runs: the op's function or the glue operation (None for input/sync).
        args: Positional argument templates.
        kwargs: Keyword argument templates.
        location: Where the user's code made this step.
        deps: Ids of the nodes whose values the templates refer to.
        spec: The op's spec (ops only).
        context: contextvars captured at the call (ops only; shared by consecutive ops
            when nothing changed between them): the op runs in a copy of it.
        markers: Whether the templates hold markers (refs to nodes pending when
            this one was recorded, drained iterators) to resolve before it runs.
        op: The op as the user called it (ops only), sent instead of ``fn`` to
            executors in other processes: it pickles by reference.
    """

    id: int
    kind: NodeKind
    name: str
    fn: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = _NO_KWARGS
    location: Location = UNKNOWN_LOCATION
    deps: tuple[int, ...] = ()
    spec: OpSpec | None = None
    context: Context | None = None
    markers: bool = False
    op: Callable[..., Any] | None = None


@dataclasses.dataclass(slots=True)
class NodeState:
    """What happens to a node at run time; the flat attributes of its graph node.

    Written only through the transitions of ``tracer.Recording`` (``start``,
    ``finish``, ``cancel``, ``cancel_pending``); see the engine's module docstring for
    the states. Times are ``perf_counter()`` seconds from the trace's start.

    Attributes:
        kind: The node's kind (a copy of the record's, as a plain string).
        name: The node's name (a copy of the record's).
        location: Where the user's code made the step.
        status: Run state.
        start: When it started running.
        end: When it finished.
        thread: The thread that ran it.
        cpu: The CPU seconds its thread spent running it.
        error: Its exception (its own, or the failure it was cancelled for).
        immediate: It ran at once, not deferred (called by library or unrewritten code).
        waited_for: For a sync, what the program needed the values for, if known (a
            branch, a library call; see ``waits.py``).
        cached: For an op, how many calls inside it a cache answered (0: none;
            ``xcs.served_from_cache``).
    """

    kind: str
    name: str
    location: Location
    status: Status = Status.PENDING
    start: float | None = None
    end: float | None = None
    thread: str | None = None
    cpu: float | None = None
    error: BaseException | None = None
    immediate: bool = False
    waited_for: str | None = None
    cached: int = 0

    def __getitem__(self, name: str) -> Any:
        """Reads like the graph node's attribute mapping (the analysis takes either)."""
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        """``state.get("cpu")``, as on the graph node's attribute mapping."""
        return getattr(self, name, default)

    def attributes(self) -> dict[str, Any]:
        """The graph node's attributes (``location`` as ``file:line`` or ``In [7], line 3``)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "location": str(self.location),
            "status": self.status,
            "start": self.start,
            "end": self.end,
            "thread": self.thread,
            "cpu": self.cpu,
            "error": self.error,
            "immediate": self.immediate,
            "waited_for": self.waited_for,
            "cached": self.cached,
        }


class Ref:
    """Marks, inside an argument template, the value of node ``node``."""

    __slots__ = ("node",)

    def __init__(self, node: int) -> None:
        self.node = node

    def __repr__(self) -> str:
        return f"%{self.node}"

    def __eq__(self, other: object) -> bool:
        return type(other) is Ref and other.node == self.node

    def __hash__(self) -> int:
        return hash((Ref, self.node))


class Stream:
    """Marks an iterator argument: the op consumes it as it runs, as in plain Python.

    An op given an iterator runs at once (see the tracer). Iterators xcs can see
    through -- generators and the builtin iterators over containers -- reach it as a
    generator that makes each item concrete as it is taken; any other iterator (a
    csv reader, a database cursor, a file) reaches it as itself.
    """

    __slots__ = ("source",)

    def __init__(self, source: Any) -> None:
        self.source = source

    def __repr__(self) -> str:
        return f"stream({type(self.source).__name__})"


Slot = tuple[Any, bool, Any]
"""Where a value sits inside an object: (holder, is an attribute, name or key)."""


class Holding:
    """Marks an object passed by reference that holds deferred values inside.

    ``slots`` name the attributes and container items (of the object, or of
    containers and objects inside it) that held a deferred value -- or a tuple of
    them -- when the call was recorded. Before the op runs, those places get their
    values, in place: the op sees the object itself, as in plain Python, with real
    values where the proxies were.
    """

    __slots__ = ("obj", "owner", "slots")

    def __init__(self, obj: Any, slots: list[Slot], owner: Any) -> None:
        self.obj = obj
        self.slots = slots
        self.owner = owner  # the trace whose deferred values these are

    def __repr__(self) -> str:
        return f"holding({type(self.obj).__name__}, {len(self.slots)} deferred)"


OpSpec.__module__ = "ember.xcs"  # public there (the extension surface): shown and pickled so
