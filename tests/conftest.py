"""Test-suite wide fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def no_response_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No response cache on before or after a test; the default cache folder in ``tmp_path``."""
    from ember.models import response_cache

    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "default-dir"))
    before = response_cache._switch(None)
    assert before is None, "an earlier test left a response cache on"
    try:
        yield
    finally:
        left = response_cache._switch(None)
        if left is not None:
            left.store.close()


def require(available: bool, what: str, how: str) -> None:
    """Skip a test whose tool is missing here, but fail in CI (``EMBER_XCS_CI=1``).

    ``.ci/run`` installs every tool the suite uses (graphviz, the mermaid parser),
    so there a missing tool is a broken setup, never a silent skip.
    """
    if available:
        return
    message = f"{what} is not installed: {how}"
    if os.environ.get("EMBER_XCS_CI"):
        pytest.fail(f"{message} (.ci/run installs it)")
    pytest.skip(message)


def require_dot() -> None:
    """The test needs graphviz's ``dot`` program."""
    require(shutil.which("dot") is not None, "graphviz's dot", "apt install graphviz")
