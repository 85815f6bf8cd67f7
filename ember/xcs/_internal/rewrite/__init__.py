"""The call-site rewrite (compile time): a user function becomes its rewritten *twin*.

``source.py`` finds a function's source, checks it against the running code and
compiles the twin; ``expressions.py`` rewrites calls and the expressions a proxy cannot
get right; ``statements.py`` makes exception scopes sync points and tracks stores;
``emit.py`` is how both reach the dispatcher (``dispatch/``, the run-time half) under
the name ``@xcs``. Nothing here imports the rest of xcs but ``usercode``.
"""

from ember.xcs._internal.rewrite.emit import HELPERS, helper_call, is_helper_call
from ember.xcs._internal.rewrite.expressions import (
    FRAME_BUILTINS,
    rewrite_async_variant,
    rewrite_function,
)
from ember.xcs._internal.rewrite.source import (
    Rewrite,
    Unrewritable,
    clone,
    make_async_twin,
    make_twin,
)

__all__ = [
    "FRAME_BUILTINS",
    "HELPERS",
    "Rewrite",
    "Unrewritable",
    "clone",
    "helper_call",
    "is_helper_call",
    "make_async_twin",
    "make_twin",
    "rewrite_async_variant",
    "rewrite_function",
]
