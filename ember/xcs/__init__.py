"""Ember XCS: plain sequential Python that calls LLMs becomes parallel with ``@jit``.

Mark leaf operations with ``@xcs.op``, decorate the function that calls them with
``@xcs.jit``, and independent calls run at the same time -- with exactly the results,
call counts and exceptions of the plain function. ``xcs.trace(fn, *args)`` shows the
graph it found.

Extending xcs (a model provider, a client, a composite of your own): ``OpSpec`` and
``call_op`` make objects op-like, ``composite`` marks a class traced through,
``served_from_cache`` marks an op's run a cache answered (see
``docs/developer/extending.md``); nothing else is needed from the internals.
"""

from ember.xcs._internal.dispatch.pure import pure
from ember.xcs._internal.dispatch.registry import register_op, unregister_op
from ember.xcs._internal.errors import (
    ConcretizationError,
    OpTimeoutError,
    XCSError,
    XCSWarning,
)
from ember.xcs._internal.ir import OpSpec
from ember.xcs._internal.protocol import call_op, composite, op, served_from_cache
from ember.xcs._jit import get_jit_stats, jit, reset_jit_stats
from ember.xcs._map import map, vmap
from ember.xcs._trace import Trace, barrier, last_failed_trace, trace, trace_of


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext ember.xcs`` in IPython or Jupyter: adds the ``%%xcs`` cell magic."""
    from ember.xcs._cell import load_ipython_extension as load

    load(ipython)


__all__ = [
    "ConcretizationError",
    "OpSpec",
    "OpTimeoutError",
    "Trace",
    "XCSError",
    "XCSWarning",
    "barrier",
    "call_op",
    "composite",
    "get_jit_stats",
    "jit",
    "last_failed_trace",
    "map",
    "op",
    "pure",
    "register_op",
    "reset_jit_stats",
    "served_from_cache",
    "trace",
    "trace_of",
    "unregister_op",
    "vmap",
]
