"""Internals of ``ember.xcs``: nothing here is public API.

Data flows one way through these modules (each imports only those before it):

``errors``/``ir`` -> ``deferred`` -> ``ir_builder`` -> ``tracer`` -> ``protocol`` ->
``parallelism`` -> ``engine`` -> ``runtime``.
"""
