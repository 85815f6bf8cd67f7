"""Internals of ``ember.xcs``: nothing here is public API.

The layers, each importing only from those above it:

* **base**: ``locations`` (how a user's line is written: ``app.py:12``, or
  ``In [7], line 3`` in a notebook), ``errors`` (the error tree), ``ir`` (node
  records, run states, specs), ``machine`` (usable cores), ``usercode`` (which code
  is the user's), ``purity`` (what
  is known of a value's type), ``deferred`` (the proxy), ``concrete`` (making values
  concrete);
* **recording**: ``snapshots`` (arguments in, templates out), ``tracer`` (the
  ``Recording``: nodes, edges, syncs, run-state transitions), ``protocol`` (ops and
  composites, ``@op``);
* **running**: ``limits`` (``max_concurrency`` slots), ``pool`` (handing ops to thread
  executors), ``remote`` (to other processes), ``engine`` (ready-queue dataflow);
* **analysis**: ``parallelism`` (groups, critical path, CPU-bound ops), ``stats``,
  ``decisions`` (call structures and the decision for each);
* **rewrite** (compile time): ``rewrite/`` -- a user function to its twin;
* **dispatch** (run time): ``dispatch/`` -- the ``@xcs`` namespace twins call;
* **runtime**: one outermost traced call, entry to exit.

The public modules above them: ``ember.xcs._jit`` (``jit``) and ``ember.xcs._trace``.
"""
