"""Internals of ``ember.xcs``: nothing here is public API.

Data flows one way through these modules (each imports only those before it):

``errors``/``ir``/``purity`` -> ``deferred`` -> ``concrete`` -> ``ir_builder`` ->
``tracer`` -> ``protocol`` -> ``parallelism`` -> ``limits`` -> ``pool`` -> ``remote`` ->
``engine`` -> ``runtime`` (plus ``cache`` and ``stats`` for the jit wrapper). ``tracer``
sits above ``ir_builder`` because recording a call snapshots its arguments.
"""
