"""Rows of a run: which thread is which, in what order, and ops packed into lanes.

The timeline (``plots.py``) and the Perfetto export (``chrome.py``) show the same
rows in the same order, named the same way:

* **Order:** the caller first (the track of the syncs, then ``MainThread``), then
  threads xcs did not make (the user's own threads and executors), then the shared
  pool's workers, ``xcs.map``'s workers and the overflow thread. Within each, names
  sort naturally: ``worker 2`` before ``worker 10``.
* **Names:** as a user recognizes them: ``xcs-worker_10`` is ``worker 10``,
  ``xcs-map_3`` is ``map worker 3``, every other thread keeps its Python name. A
  lane is named by its threads: ``worker 3``, ``workers 3, 17, 20 +4``.
* **Lanes:** :func:`pack_lanes` puts ops in the fewest rows in which no two bars
  overlap (interval partitioning, greedy by start time, which is optimal), keeping
  a thread's ops in its own lane where it can. Threads that ran one op each, one
  after another, share a lane instead of a row each.

Pure functions over names and times: no matplotlib, no trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = ["CALLER", "Lane", "Span", "pack_lanes", "thread_label", "thread_order", "thread_rows"]

CALLER = "caller"
"""The row of what the calling thread did that no op records a thread for (syncs)."""

# Thread name prefixes of the threads xcs makes, their rank among rows, and their label.
_POOLS = (
    ("xcs-worker_", 3, "worker "),
    ("xcs-map_", 4, "map worker "),
    ("xcs-overflow", 5, "overflow"),
)


class Span(NamedTuple):
    """An op as a bar: its node, thread, start and end (seconds)."""

    node: int
    thread: str
    start: float
    end: float


class Lane(NamedTuple):
    """A timeline row: its label and the ops drawn on it."""

    label: str
    spans: tuple[Span, ...]


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key reading runs of digits as numbers: ``w2`` < ``w10``."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", text)
        if part
    )


def thread_order(thread: str | None) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    """Sort key of a thread's row: the caller first, pool workers last, natural order."""
    if thread is None or thread == CALLER:
        return (0, ())
    if thread == "MainThread":
        return (1, ())
    for prefix, rank, _ in _POOLS:
        if thread.startswith(prefix):
            return (rank, _natural(thread[len(prefix) :]))
    return (2, _natural(thread))


def thread_label(thread: str | None) -> str:
    """The name a row shows for ``thread`` (``xcs-worker_10`` is ``worker 10``)."""
    if thread is None:
        return CALLER
    for prefix, _, label in _POOLS:
        if thread.startswith(prefix):
            rest = thread[len(prefix) :]
            return f"{label}{rest}".strip() if rest.isdigit() or not rest else thread
    return thread


def _lane_label(threads: Sequence[str]) -> str:
    """``worker 3``, ``workers 3, 17, 20 +4``, or ``MainThread, worker 3``."""
    names = [thread_label(t) for t in sorted(threads, key=thread_order)]
    more = f" +{len(names) - 3}" if len(names) > 3 else ""
    if len(names) > 1 and all(re.fullmatch(r"worker \d+", name) for name in names):
        return f"workers {', '.join(name.split()[1] for name in names[:3])}{more}"
    return f"{', '.join(names[:3])}{more}"


def pack_lanes(spans: Iterable[Span]) -> list[Lane]:
    """The ops in the fewest lanes in which no two overlap, caller's lanes first.

    An op goes to a free lane (its last op ended by this op's start), preferring one
    that already holds its thread's ops, else the topmost; it opens a
    new lane only when every lane is busy. Taken in order of start time, that opens
    exactly as many lanes as ops ever ran at once. Lanes are then sorted by their
    first thread in :func:`thread_order`.
    """
    lanes: list[list[Span]] = []
    threads: list[set[str]] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end, s.node)):
        free = [i for i, lane in enumerate(lanes) if lane[-1].end <= span.start]
        own = [i for i in free if span.thread in threads[i]]
        if own or free:
            index = (own or free)[0]
            lanes[index].append(span)
            threads[index].add(span.thread)
        else:
            lanes.append([span])
            threads.append({span.thread})
    order = sorted(
        range(len(lanes)),
        key=lambda i: (min(thread_order(t) for t in threads[i]), lanes[i][0].start),
    )
    return [Lane(_lane_label(sorted(threads[i])), tuple(lanes[i])) for i in order]


def thread_rows(spans: Iterable[Span]) -> list[Lane]:
    """One lane per thread, in :func:`thread_order`."""
    by_thread: dict[str, list[Span]] = {}
    for span in sorted(spans, key=lambda s: (s.start, s.node)):
        by_thread.setdefault(span.thread, []).append(span)
    return [
        Lane(thread_label(thread), tuple(by_thread[thread]))
        for thread in sorted(by_thread, key=thread_order)
    ]
