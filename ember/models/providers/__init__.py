"""Providers: what turns a model call into a response (a simulation, or an HTTP API).

The SDK-backed providers import their SDK on first use, so ``import ember.models``
stays light.
"""

from ember.models.providers.anthropic_provider import AnthropicProvider
from ember.models.providers.base import Failure, Prompt, Provider, RetryPolicy
from ember.models.providers.openai_provider import OpenAIProvider
from ember.models.providers.sdk import SDKProvider
from ember.models.providers.simulated import SimulatedProvider

__all__ = [
    "AnthropicProvider",
    "Failure",
    "OpenAIProvider",
    "Prompt",
    "Provider",
    "RetryPolicy",
    "SDKProvider",
    "SimulatedProvider",
]
