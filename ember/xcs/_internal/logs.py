"""What ``@jit`` logs, on the ``ember.xcs`` logger (see ``docs/observing.md``).

* **Fallbacks** (WARNING, ``ember_event="fallback"``): a function that cannot be
  rewritten runs as plain Python from now on (``ember_scope="function"``); a pending
  value reached code that needed a real one, so calls with arguments of that structure
  (``"structure"``; with ``cache=False`` every call, ``"function"``) run as plain Python
  from now on. Each is logged once, when it is decided.
* **Decisions** (DEBUG, ``ember_event="decision"``): what a traced call found -- its ops,
  the largest group that ran at once -- and how later calls with arguments of the same
  structure run: ``parallel`` (traced too), ``direct`` (plain Python, traced again after
  1, 2, 4, ... of them), or, for a call that raised, nothing decided.

Every record names the function (``ember_function``, its qualified name, and
``ember_module``). The wrapper guards the decision record with ``isEnabledFor``: a
traced call pays one level check when DEBUG is off.
"""

from __future__ import annotations

import logging

from ember._redact import shown_text
from ember.xcs._internal.parallelism import Summary

__all__ = ["DEBUG", "LOG", "cannot_rewrite", "decided", "gap"]

LOG = logging.getLogger("ember.xcs")
DEBUG = logging.DEBUG


def cannot_rewrite(module: str, qualname: str, reason: str) -> None:
    """A WARNING: the function cannot be rewritten, so it runs plainly for good.

    Args:
        module: The function's module.
        qualname: Its qualified name.
        reason: Why the rewrite cannot handle it.
    """
    message = (
        "xcs.jit cannot rewrite %s: %s. It runs as plain Python from now on: correct, but "
        "its calls do not run in parallel"
    )
    _fallback(message, module, qualname, reason, "function")


def gap(module: str, qualname: str, reason: str, every_call: bool) -> None:
    """A WARNING: a pending value reached code that needed a real one.

    Args:
        module: The function's module.
        qualname: Its qualified name.
        reason: Where the value was used.
        every_call: Whether every later call runs plainly (no argument structure to
            mark: ``cache=False``), not only those with this call's structure.
    """
    if every_call:
        message = "xcs.jit %s: %s; every later call runs as plain Python"
    else:
        message = "xcs.jit %s: %s; later calls with arguments of this structure run as plain Python"
    _fallback(message, module, qualname, reason, "function" if every_call else "structure")


def _fallback(message: str, module: str, qualname: str, reason: str, scope: str) -> None:
    shown = shown_text(reason, 500)
    LOG.warning(
        message,
        qualname,
        shown,
        extra={
            "ember_event": "fallback",
            "ember_function": qualname,
            "ember_module": module,
            "ember_reason": shown,
            "ember_scope": scope,
        },
    )


def decided(
    module: str,
    qualname: str,
    summary: Summary,
    decision: str | None,
    cached: bool,
    advice: str | None,
) -> None:
    """The DEBUG record of one traced call: what it found, and how later calls run.

    Args:
        module: The function's module.
        qualname: Its qualified name.
        summary: The call's ops (``ops``, ``max_parallelism``).
        decision: ``"parallel"`` or ``"direct"``; None when the call raised.
        cached: Whether the decision is kept for the call's argument structure (False
            with ``jit(cache=False)`` or arguments without a structure key).
        advice: The stats' hint about what cost parallelism, if any.
    """
    if decision is None:
        later = "it raised, so nothing is decided"
    elif not cached:
        later = f"{decision}; every call is traced (no decision is kept)"
    elif decision == "parallel":
        later = "parallel; later calls with arguments of this structure are traced too"
    else:
        later = (
            "direct; later calls with arguments of this structure run as plain Python "
            "(traced again after 1, 2, 4, ... of them)"
        )
    hint = shown_text(advice, 300) if advice else None
    LOG.debug(
        "xcs.jit %s: traced a call: %d op%s, at most %d at once: %s%s",
        qualname,
        summary.ops,
        "" if summary.ops == 1 else "s",
        summary.max_parallelism,
        later,
        f". {hint}" if hint else "",
        extra={
            "ember_event": "decision",
            "ember_function": qualname,
            "ember_module": module,
            "ember_decision": decision,
            "ember_ops": summary.ops,
            "ember_parallelism": summary.max_parallelism,
            "ember_hint": hint,
        },
    )
