"""Ordered effects: ``print`` and logging of pending values, without waiting.

``print(reply)`` or ``log.info("got %s", reply)`` right after each call would make
every iteration wait for its answer. Instead, such a call from user code is recorded
as an *effect*: a glue node that writes exactly what plain Python writes, to the
stream plain Python writes to, once its values are known. Effects keep their order:
each one runs only after every node recorded before it (ops, glue, the previous
effect) has finished -- so a failure earlier in program order means it never runs,
as plain Python would never have reached it. What is decided at the call, plain
Python decides at the call: the stream (``sys.stdout`` is looked up then), whether a
logger is enabled for the level, the caller's file, line and function, the time,
thread and ``exc_info`` of a log record.

While effects wait, anything that could observe or interleave with their output
runs them first (``Recording.flush``): a library call not known pure (including
``sys.stdout.write``, ``input()``, handlers being changed), a sync point, the end of
the call. A later ``print`` or log call with only plain values is recorded behind
them, so the order holds without waiting.

A call runs now, as plain Python runs it, when nothing is pending and no effect is
waiting, when a logger is not enabled for the level (it formats nothing: its
arguments are never looked at), or when an argument is something whose text could
change before the effect runs (an object of your class, a large container; see
``pure.py``) -- after the waiting effects.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Mapping
from typing import Any

from ember.xcs._internal import tracer
from ember.xcs._internal.concrete import ATOMIC_IDS, concrete_argument
from ember.xcs._internal.dispatch.expressions import runs_no_code_of_yours
from ember.xcs._internal.dispatch.formatting import first_pending
from ember.xcs._internal.dispatch.pure import recordable
from ember.xcs._internal.usercode import is_user_class

__all__ = ["EFFECTS", "flush_effects", "print_effect"]


def flush_effects() -> None:
    """Run the waiting effects of this thread's recording (a library call follows)."""
    recording = tracer.active()
    if recording is not None and recording.effects_waiting:
        recording.materialize("flush output", need_value=False)


def _plain(values: tuple[Any, ...]) -> bool:
    return all(id(type(v)) in ATOMIC_IDS for v in values)


def print_effect(*values: Any, **options: Any) -> None:
    """``print(...)`` from user code: an effect while a value is pending or effects wait."""
    recording = tracer.active()
    waiting = recording is not None and recording.effects_waiting
    if not waiting and _plain(values) and _plain(tuple(options.values())):
        print(*values, **options)  # the usual case: nothing pending
        return
    if recording is None or set(options) - {"sep", "end", "file", "flush"}:
        print(*values, **options)  # print's own TypeError
        return
    sep, end = options.get("sep"), options.get("end")
    file = options.get("file")
    if file is None:
        file = sys.stdout  # looked up at the call, as print does
        if file is None:  # pythonw: print writes nothing
            return
    pending = first_pending((*values, sep, end)) is not None
    if (
        (pending or waiting)
        and recordable(values)
        and recordable((sep, end))
        and runs_no_code_of_yours(values)  # your __str__ runs in program order
        and not is_user_class(type(file))  # your file's write: your code reads it too
    ):
        write = functools.partial(_print, file, bool(options.get("flush")))
        recording.record_effect("print()", write, (sep, end, *values))
        return
    flush_effects()
    print(*[concrete_argument(v) for v in values], **options)


def _print(file: Any, flush: bool, sep: Any, end: Any, *values: Any) -> None:
    print(*values, sep=sep, end=end, file=file, flush=flush)


class _LogCall:
    """A logging method (``Logger.info``) or function (``logging.info``) from user code.

    Attributes:
        method: The real method, or the module-level function.
        level: Its level (None for ``log``, which takes the level first).
        exception: Whether ``exc_info`` defaults to true (``exception``).
        module: A module-level function (``logging.info``: the root logger, set up
            by ``basicConfig`` first if it has no handlers).
    """

    __slots__ = ("exception", "level", "method", "module")

    def __init__(self, method: Any, level: int | None, exception: bool, module: bool) -> None:
        self.method = method
        self.level = level
        self.exception = exception
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.module:
            logger = logging.root
            call_args = args
        else:
            logger, call_args = args[0], args[1:]
        level = self.level
        if level is None:
            if not call_args:
                return self._now(args, kwargs)  # log()'s own TypeError
            level = call_args[0]
            call_args = call_args[1:]
        recording = tracer.active()
        if (
            recording is None
            or type(level) is not int
            or not call_args
            or set(kwargs) - {"exc_info", "stack_info", "stacklevel", "extra"}
        ):
            return self._now(args, kwargs)
        if self.module and not logger.handlers:
            logging.basicConfig()  # what logging.info() does first
        if not logger.isEnabledFor(level):
            # Never formatted: its arguments are not looked at, nothing waits.
            return self.method(*args, **_frames_up(kwargs, 1))
        waiting = recording.effects_waiting
        extra = kwargs.get("extra")
        pending = first_pending(call_args) is not None
        if (
            (pending or waiting)
            and recordable(call_args)
            and runs_no_code_of_yours(call_args)
            and (extra is None or (type(extra) is dict and first_pending((extra,)) is None))
            and _plain_logging(logger)
        ):
            record = self._record(logger, level, extra, kwargs)
            emit = functools.partial(_emit, logger, record)
            recording.record_effect(
                f"{logger.name}.{logging.getLevelName(level).lower()}()", emit, call_args
            )
            return None
        return self._now(args, kwargs)

    def _now(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        flush_effects()
        args = tuple([concrete_argument(a) for a in args])
        return self.method(*args, **_frames_up(kwargs, 2))

    def _record(
        self, logger: logging.Logger, level: int, extra: Any, kwargs: dict[str, Any]
    ) -> logging.LogRecord:
        """The record plain Python makes now (``Logger._log``), its message filled later."""
        stacklevel = kwargs.get("stacklevel", 1)
        # Called from __call__, called from the user's frame: one frame more.
        where = logger.findCaller(bool(kwargs.get("stack_info")), stacklevel + 2)
        exc_info = kwargs.get("exc_info", True if self.exception else None)
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
        filename, line, function, stack = where
        return logger.makeRecord(
            logger.name, level, filename, line, "", (), exc_info, function, extra, stack
        )


_LOGGER_STEPS = ("_log", "makeRecord", "findCaller", "handle", "callHandlers")


def _plain_logging(logger: logging.Logger) -> bool:
    """Whether a record for ``logger`` goes through logging's own code only.

    A logger class of yours that changes how records are made or handled, or a
    handler or filter of yours on the way (your code may read what it collected), makes
    the call run now.
    """
    cls = type(logger)
    if any(getattr(cls, step) is not getattr(logging.Logger, step) for step in _LOGGER_STEPS):
        return False
    current: logging.Logger | None = logger
    while current is not None:
        if any(is_user_class(type(f)) for f in current.filters):
            return False
        for handler in current.handlers:
            if is_user_class(type(handler)) or any(is_user_class(type(f)) for f in handler.filters):
                return False
        current = current.parent if current.propagate else None
    return True


def _frames_up(kwargs: dict[str, Any], frames: int) -> dict[str, Any]:
    """``kwargs`` with ``stacklevel`` raised past ``frames`` of ours, to the user's frame."""
    level = kwargs.get("stacklevel", 1)
    return {**kwargs, "stacklevel": level + frames} if type(level) is int else kwargs


def _emit(logger: logging.Logger, record: logging.LogRecord, msg: Any, *args: Any) -> None:
    """Hand the record, with its message and arguments now known, to the logger."""
    if args and len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        record.args = args[0]  # as LogRecord does with a single mapping
    else:
        record.args = args
    record.msg = msg
    logger.handle(record)


def _methods() -> dict[Any, Any]:
    levels = {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "exception": logging.ERROR,
        "critical": logging.CRITICAL,
        "fatal": logging.CRITICAL,
        "log": None,
    }
    table: dict[Any, Any] = {}
    for name, level in levels.items():
        exception = name == "exception"
        method = getattr(logging.Logger, name)
        table[method] = _LogCall(method, level, exception, module=False)
        function = getattr(logging, name)
        table[function] = _LogCall(function, level, exception, module=True)
    return table


EFFECTS: dict[Any, Any] = {print: print_effect, **_methods()}
"""Callees recorded as ordered effects -> what a call site calls instead."""
