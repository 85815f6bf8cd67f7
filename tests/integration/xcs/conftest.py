"""Real SDK clients of the local server each SDK test module starts (its ``server``)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def oai(server: Any) -> Any:
    """An ``openai.OpenAI`` client of the module's local server, without retries."""
    import openai

    return openai.OpenAI(base_url=server.openai_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def claude(server: Any) -> Any:
    """An ``anthropic.Anthropic`` client of the module's local server, without retries."""
    import anthropic

    return anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key="test-key", max_retries=0
    )
