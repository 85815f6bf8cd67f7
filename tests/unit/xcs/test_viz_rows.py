"""Timeline rows (``_viz/rows.py``): natural order, names, and lane packing."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from ember.xcs._viz.rows import CALLER, Span, pack_lanes, thread_label, thread_order, thread_rows

THREADS = [
    "xcs-worker_10",
    "xcs-overflow",
    "xcs-worker_2",
    "Thread-12 (run)",
    "xcs-map_1",
    "xcs-worker_0",
    "MainThread",
    "Thread-3 (run)",
    "xcs-worker_1",
    CALLER,
]


def test_threads_sort_caller_first_then_workers_in_natural_order() -> None:
    ordered = sorted(random.Random(7).sample(THREADS, len(THREADS)), key=thread_order)
    assert ordered == [
        CALLER,
        "MainThread",
        "Thread-3 (run)",
        "Thread-12 (run)",
        "xcs-worker_0",
        "xcs-worker_1",
        "xcs-worker_2",
        "xcs-worker_10",
        "xcs-map_1",
        "xcs-overflow",
    ]


def test_rows_are_named_as_users_know_the_threads() -> None:
    assert [thread_label(t) for t in ["xcs-worker_10", "xcs-map_3", "xcs-overflow"]] == [
        "worker 10",
        "map worker 3",
        "overflow",
    ]
    assert thread_label("MainThread") == "MainThread"
    assert thread_label("Thread-3 (run)") == "Thread-3 (run)"
    assert thread_label(None) == CALLER
    assert thread_label("xcs-worker_odd") == "xcs-worker_odd"  # not one of ours: as it is


def test_threads_that_ran_one_after_another_share_a_lane() -> None:
    # Two chains of three ops, each op on a thread of its own: two lanes, not six rows.
    spans = [
        Span(chain * 3 + step, f"xcs-worker_{chain * 3 + step}", step, step + 1.0)
        for chain in range(2)
        for step in range(3)
    ]
    lanes = pack_lanes(spans)
    assert [lane.label for lane in lanes] == ["workers 0, 1, 2", "workers 3, 4, 5"]
    more = [Span(9, "MainThread", 4.0, 5.0), Span(10, "xcs-worker_12", 5.0, 6.0)]
    assert [lane.label for lane in pack_lanes(spans + more)] == [
        "MainThread, worker 0, worker 1 +2",
        "workers 3, 4, 5",
    ]
    assert len(thread_rows(spans)) == 6


def test_a_thread_keeps_its_lane_and_the_caller_comes_first() -> None:
    spans = [
        Span(1, "xcs-worker_10", 0.0, 1.0),
        Span(2, "xcs-worker_2", 0.0, 1.0),
        Span(3, "xcs-worker_2", 1.0, 2.0),
        Span(4, "xcs-worker_10", 1.5, 2.5),
        Span(5, "MainThread", 0.5, 0.7),
    ]
    lanes = pack_lanes(spans)
    assert [lane.label for lane in lanes] == ["MainThread", "worker 2", "worker 10"]
    assert [[s.node for s in lane.spans] for lane in lanes] == [[5], [2, 3], [1, 4]]
    assert [lane.label for lane in thread_rows(spans)] == ["MainThread", "worker 2", "worker 10"]


def _max_overlap(spans: list[Span]) -> int:
    events = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])
    best = running = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best


@given(
    st.lists(
        st.tuples(
            st.integers(0, 50), st.integers(1, 20), st.sampled_from(["MainThread", *THREADS[:4]])
        ),
        max_size=60,
    )
)
def test_lanes_are_as_few_as_ops_ever_ran_at_once(raw: list[tuple[int, int, str]]) -> None:
    spans = [
        Span(i, thread, start, start + length) for i, (start, length, thread) in enumerate(raw)
    ]
    lanes = pack_lanes(spans)
    assert sorted(s.node for lane in lanes for s in lane.spans) == list(range(len(spans)))
    for lane in lanes:
        assert all(a.end <= b.start for a, b in zip(lane.spans, lane.spans[1:]))  # no overlap
    assert len(lanes) == _max_overlap(spans)
