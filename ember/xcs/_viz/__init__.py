"""Drawing traces: one view of the graph, several renderers.

* ``view.py`` decides what is drawn and labels it (boxes, ranks, critical path),
  with ``fold.py`` deciding which nodes get a box and which calls share one;
* ``dot.py`` renders it with graphviz, ``plots.py`` with matplotlib (the fallback
  without the ``dot`` binary, and the timeline), ``mermaid.py`` as mermaid text;
* ``chrome.py`` exports the run for Perfetto / chrome://tracing;
* ``rows.py`` orders and names the threads (the timeline's rows, Perfetto's tracks)
  and packs ops into lanes;
* ``output.py`` picks the renderer, writes files and makes what notebooks display.

Nothing here is imported by ``import ember``: ``Trace`` loads it on first use, and
graphviz and matplotlib (the ``viz`` extra) only when a renderer needs them.
"""

# The words every rendering (and the text summary, ``Trace.__str__``) puts on an op
# that ran when it was called instead of being deferred.
RAN_AT_ONCE = "ran at once, not deferred"
CACHED = "cached"  # an op a cache answered (xcs.served_from_cache)
