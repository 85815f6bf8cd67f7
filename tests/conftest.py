"""Test-suite wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ember.xcs._internal import tracer
from tests.helpers import LOG


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Each test starts with an empty call log and no trace active on this thread."""
    LOG.clear()
    yield
    assert tracer.active() is None, "a test left a trace active on the main thread"


@pytest.fixture
def recording() -> Iterator[tracer.Recording]:
    """A recording active on this thread, run by the default engine."""
    from ember.xcs._internal.engine import Engine

    rec = tracer.Recording(Engine())
    previous = tracer.enter(rec)
    try:
        yield rec
    finally:
        tracer.leave(previous)
