"""The dispatcher (run time): the namespace rewritten code calls, as ``@xcs``.

Every helper the rewrite emits (``rewrite/emit.py``) is here, and nothing else is in
``__all__`` (a test checks it against the rewritten output of the rewrite's test
corpus). They are split as the rewrite is:

* ``calls.py``: the call protocol (``callee``, ``call0``, ``args``, ``args_last``,
  ``kwargs``), with ``callees.py`` (what a callee is and what to call instead),
  ``constructors.py``, ``clocks.py``, ``effects.py`` (``print`` and logging as
  ordered effects) and ``twins.py`` behind it;
* ``expressions.py`` and ``formatting.py``: values where a proxy would be wrong, and
  formatting of pending values as glue; ``pure.py``: known-pure calls (and ``in``)
  on pending values as glue; ``unpacking.py``: a pending value unpacked into targets;
* ``statements.py``: exception scopes and stores, with ``clear.py`` (whether a
  ``try``/``with`` body can touch anything pending);
* ``frames.py``: per-thread state, and which frames may defer ops (``entered``);
* ``registry.py``: library functions that are ops without marking (``register_op``),
  with ``sdks.py``, the official SDKs' request methods.

The rest of xcs uses ``callees.entry_point``/``register``, ``frames.enter_next`` and
``statements.forget_stores`` from their modules.
"""

from ember.xcs._internal.dispatch.awaits import asynced, awaited, ready
from ember.xcs._internal.dispatch.calls import args, args_last, call0, callee, kwargs
from ember.xcs._internal.dispatch.expressions import (
    binary,
    both,
    deep,
    dict_of,
    either,
    index,
    item,
    key,
    raised,
    set_of,
    truth,
    value,
)
from ember.xcs._internal.dispatch.formatting import fstring, mod
from ember.xcs._internal.dispatch.frames import entered
from ember.xcs._internal.dispatch.pure import contains
from ember.xcs._internal.dispatch.statements import (
    augmented,
    changing,
    each_now,
    enter,
    holder,
    iadd,
    ior,
    kept,
    kept_globals,
    leave,
    now,
    scope_end,
    scope_sync,
    settle,
    store,
    store_global,
    sync,
)
from ember.xcs._internal.dispatch.unpacking import unpack, unpack_each

# The official SDKs' request methods are ops (registered by name: imports no SDK).
from ember.xcs._internal.dispatch import sdks as _sdks  # noqa: F401  # isort: skip

__all__ = [
    "args",
    "args_last",
    "asynced",
    "augmented",
    "awaited",
    "binary",
    "both",
    "call0",
    "callee",
    "changing",
    "contains",
    "deep",
    "dict_of",
    "each_now",
    "either",
    "enter",
    "entered",
    "fstring",
    "holder",
    "iadd",
    "index",
    "ior",
    "item",
    "kept",
    "kept_globals",
    "key",
    "kwargs",
    "leave",
    "mod",
    "now",
    "raised",
    "ready",
    "scope_end",
    "scope_sync",
    "set_of",
    "settle",
    "store",
    "store_global",
    "sync",
    "truth",
    "unpack",
    "unpack_each",
    "value",
]
