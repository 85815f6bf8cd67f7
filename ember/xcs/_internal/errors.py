"""Errors raised by xcs itself, and notes added to the user's own exceptions.

xcs never wraps an exception raised by user code: an op's exception reaches the
caller as the original object, with a note (``BaseException.add_note``) naming the
op, the user's ``file:line`` (a notebook cell's ``In [7], line 3``: places are
written by ``locations``) and the call's arguments, shortened. Only xcs's own
failures use the classes below::

    XCSError                      anything xcs itself cannot do
     +-- ConcretizationError      a concrete value was needed where none can be made
     +-- OpTimeoutError           an op ran longer than ``jit(timeout=...)`` (also a
     |                            TimeoutError)
     +-- PendingValueError        a pending value reached code that needed a real one
                                  (a gap in the rewrite's coverage; the cause says where)

Each message has three parts: what happened, where in user code, and what to do.
Op names in messages and notes are shown with any credential in them redacted (a
name built from a URL may hold a key; see ``ember._redact``); the attributes keep
them as they are.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any, NoReturn

from ember._redact import redact_text, shown_arguments
from ember.xcs._internal.ir import Ref
from ember.xcs._internal.locations import warning_place

__all__ = [
    "ConcretizationError",
    "OpTimeoutError",
    "PendingValueError",
    "XCSError",
    "XCSWarning",
    "add_op_note",
    "reraise",
    "warn_at",
    "warn_caller",
    "warn_ran_late",
    "warn_unrewritable",
]


def _quoted(op_name: str) -> str:
    """An op's name as messages show it: quoted, any credential in it redacted."""
    return repr(redact_text(op_name))


class XCSError(Exception):
    """Base class of every error raised by xcs itself (never for user exceptions)."""


class ConcretizationError(XCSError):
    """A deferred value was needed as a concrete value where it cannot be computed.

    Raised when ``xcs.trace(..., execute=False)`` meets control flow that needs an
    op's result, and when a pending value reaches code running inside an op of the
    same trace (which would otherwise wait for itself).

    Attributes:
        node: Id of the graph node whose value was needed.
        op_name: Name of the op that produces it.
        location: ``file:line`` of the user's call of that op.
        reason: Why no value can be made here.
        fix: One concrete thing to do about it.
    """

    def __init__(self, node: int, op_name: str, location: str, reason: str, fix: str) -> None:
        self.node = node
        self.op_name = op_name
        self.location = location
        self.reason = reason
        self.fix = fix
        super().__init__(
            f"The value of %{node} (op {_quoted(op_name)} called at {location}) was needed, "
            f"but {reason}. {fix}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.node, self.op_name, self.location, self.reason, self.fix))


class OpTimeoutError(XCSError, TimeoutError):
    """An op ran, or waited for a ``max_concurrency`` slot, longer than ``jit(timeout=...)``.

    A thread cannot be stopped: an op that timed out while running keeps running in
    the background and its result is dropped. At interpreter exit Python waits for
    it (the pool's worker threads are joined), so bound slow calls inside the op too
    (an HTTP timeout).

    Attributes:
        node: Id of the op's node.
        op_name: Name of the op.
        location: ``file:line`` of the user's call of the op.
        timeout: The limit, in seconds.
        waiting_for: What the op waited for when it never started (a slot of its
            ``max_concurrency`` limit), or None when it ran too long.
    """

    def __init__(
        self,
        node: int,
        op_name: str,
        location: str,
        timeout: float,
        waiting_for: str | None = None,
    ) -> None:
        self.node = node
        self.op_name = op_name
        self.location = location
        self.timeout = timeout
        self.waiting_for = waiting_for
        where = f"op {_quoted(op_name)} (node %{node}, called at {location})"
        if waiting_for is None:
            message = (
                f"{where} ran longer than jit(timeout={timeout:g}) seconds; it goes on in the "
                "background and its result will be dropped. Raise the timeout, or bound the "
                "slow call inside the op (e.g. an HTTP client timeout)."
            )
        else:
            message = (
                f"{where} never started: it waited jit(timeout={timeout:g}) seconds for "
                f"{waiting_for}. Raise the timeout, or bound the slow call inside the op "
                "(e.g. an HTTP client timeout)."
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.node, self.op_name, self.location, self.timeout, self.waiting_for)
        return (type(self), args)


class PendingValueError(XCSError):
    """A pending value reached a callee that needed a real one, which raised ``TypeError``.

    The rewrite makes every value concrete before library code sees it, so this
    means a gap in its coverage (code it could not rewrite handed the value on).
    The call's ops have run and are not run again; the ``TypeError`` is the
    ``__cause__``, and later calls with the same argument structure run plainly.

    Attributes:
        location: ``file:line`` in user code where the value was used.
    """

    def __init__(self, location: str, error: TypeError) -> None:
        self.location = location
        super().__init__(
            f"A value still being computed by an op reached code that needs the real value, "
            f"at {location}, which raised TypeError: {error}. Its ops have run and are not "
            "repeated; later calls with arguments of the same structure run as plain Python. "
            "To keep the parallelism, hand that code a real value (convert it first, e.g. "
            "with str(...), in a function jit rewrites), and please report the case: the "
            "rewrite should have done it."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        cause = self.__cause__ if isinstance(self.__cause__, TypeError) else TypeError("")
        return (type(self), (self.location, cause))


class XCSWarning(UserWarning):
    """Something xcs does differently than asked, though correctly.

    For example a jitted function that runs as plain Python because it cannot be
    rewritten. Reported at the user's line.
    """


for _public in (XCSError, ConcretizationError, OpTimeoutError, XCSWarning):
    _public.__module__ = "ember.xcs"  # shown and pickled under their public name


def warn_at(message: str, filename: str, line: int, scope: dict[str, Any] | None = None) -> None:
    """Warn with :class:`XCSWarning` at a line of user code.

    A line of a notebook cell is shown as the cell's (``In [7]:3: XCSWarning: ...``),
    not at the kernel's temporary file (``locations.warning_place``).

    Args:
        message: The warning's text.
        filename: The file of the user's code.
        line: The line in it.
        scope: The globals of the code warned about, when it is a running frame's: as
            ``warnings.warn`` does, its ``__warningregistry__`` shows a warning once
            per line (else each warning is shown).
    """
    shown_file, shown_line = warning_place(filename, line)
    if scope is None:  # (an explicit module=None would make warnings drop the warning)
        warnings.warn_explicit(message, XCSWarning, shown_file, shown_line)
        return
    warnings.warn_explicit(
        message,
        XCSWarning,
        shown_file,
        shown_line,
        module=scope.get("__name__", "<string>"),
        registry=scope.setdefault("__warningregistry__", {}),
        # Where the source of a line comes from: a file's loader (a zip import, say).
        # Not for a cell (its lines are not under its name) nor for code with no file
        # (``python -c``: the loader of ``__main__`` there raises ImportError).
        module_globals=scope if shown_file == filename and filename[:1] != "<" else None,
    )


def warn_caller(message: str, stacklevel: int = 1) -> None:
    """``warnings.warn(message, XCSWarning, stacklevel)``, a notebook cell shown as such.

    Args:
        message: The warning's text.
        stacklevel: As for ``warnings.warn``: 1 is the line that called this
            function, 2 the line that called that function, and so on.
    """
    frame = sys._getframe(stacklevel)
    warn_at(message, frame.f_code.co_filename, frame.f_lineno, frame.f_globals)


def warn_unrewritable(qualname: str, filename: str, line: int, reason: str) -> None:
    """Say, at a function's own line, that it runs unrewritten (and why)."""
    warn_at(
        f"xcs cannot rewrite {qualname!r}: {reason}. It runs as it is: correct, but the "
        "ops it calls run one at a time.",
        filename,
        line,
    )


def warn_ran_late(method: str, location: str, filename: str, line: int) -> None:
    """Say that a method xcs took to have no side effects is Python code that ran late."""
    warn_at(
        f"xcs took {method}() at {location} to have no side effects -- from the op's "
        "return annotation, or what the op returned before -- and ran it when its value "
        "was needed, but this call's value is of another type and that method is Python "
        "code: its side effects came later than in plain Python. Annotate the op with "
        "the type it returns.",
        filename,
        line,
    )


def add_op_note(
    exc: BaseException,
    node: int,
    op_name: str,
    location: str,
    *,
    glue: bool = False,
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    values: Mapping[int, Any] | None = None,
) -> None:
    """Note on a user exception which op raised it, with what, and where the user called it.

    ``[ember.xcs] raised by op 'ask' (node %7) called at app.py:12 with ('Summarize:
    the report on ...')``: each argument's repr cut to :data:`NOTE_ARG_TEXT` characters,
    credentials redacted (``ember._redact``), so the note says *which* call failed.
    The exception keeps its type, message and traceback; the note is added once even
    when the same object is raised again by later demands.

    Args:
        exc: The exception the op raised.
        node: Id of the op's node in the trace graph.
        op_name: Name of the op.
        location: ``file:line`` of the user's call of the op.
        glue: The node is glue (work on pending values: ``.strip()``, ``+``, a
            ``str.join``), run later than its line, not an op.
        args: The op's positional argument templates (none shown when empty).
        kwargs: Its keyword argument templates.
        values: Values of finished nodes: an argument that is another op's result
            (a ``Ref``) is shown as that value.
    """
    name = _quoted(op_name)
    if glue:
        note = f"[ember.xcs] raised by {name} on pending values (node %{node}) at {location}"
    else:
        note = f"[ember.xcs] raised by op {name} (node %{node}) called at {location}"
        if args or kwargs:
            note += f" with ({_shown_call(args, kwargs or {}, values or {})})"
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)


NOTE_ARG_TEXT = 40
"""Characters of each argument's repr an op's note shows."""
_NOTE_CALL_TEXT = 160  # and of all of them together


def _shown_call(args: tuple[Any, ...], kwargs: Mapping[str, Any], values: Mapping[int, Any]) -> str:
    """An op call's arguments for its note; another op's result shown as its value."""

    def value(template: Any) -> Any:
        return values.get(template.node, template) if type(template) is Ref else template

    shown = shown_arguments(
        tuple(value(a) for a in args), {k: value(v) for k, v in kwargs.items()}, NOTE_ARG_TEXT
    )
    return shown if len(shown) <= _NOTE_CALL_TEXT else shown[: _NOTE_CALL_TEXT - 3] + "..."


def reraise(exc: BaseException, *, ran_elsewhere: bool = False, detach: bool = False) -> NoReturn:
    """Raise an exception object again, keeping the chain it was first raised with.

    Raising an exception while another is being handled overwrites its
    ``__context__``: an op's exception raised again in a caller that is inside an
    ``except`` block would lose its own context (``raise ValueError`` in an op's
    ``except KeyError``). The context it had is kept; with none of its own it takes
    the caller's, as in plain Python.

    Args:
        exc: The exception to raise.
        ran_elsewhere: ``exc`` was raised on another thread (an op on a worker). In
            plain Python the op would have run here, so the exception the caller is
            handling goes at the bottom of the chain, where a plain call puts it.
        detach: ``exc`` replaces the exception being handled (an earlier op's failure
            wins over a later user exception): it keeps its own context, even none.
    """
    handled = sys.exc_info()[1]
    context = exc.__context__
    if ran_elsewhere and handled is not None and context is not None:
        bottom, seen = context, {id(exc)}
        while bottom.__context__ is not None and id(bottom) not in seen:
            seen.add(id(bottom))
            bottom = bottom.__context__
        if bottom is not handled and id(bottom) not in seen:
            bottom.__context__ = handled
    try:
        raise exc
    finally:
        if context is not None or detach:
            exc.__context__ = context
