"""Ensembles and voting: ``Ensemble``, ``UniformEnsemble``, ``MostCommon``.

An ensemble asks several models (or one model several times) the same prompt; under
``@xcs.jit`` the calls run at the same time. ``MostCommon`` takes the majority answer;
its counting is an op of its own, so it waits for the answers without holding up
the rest of the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember import models
from ember.models import ModelBinding
from ember.operators.base import Operator, as_model
from ember.xcs import op

__all__ = ["Ensemble", "MostCommon", "UniformEnsemble", "most_common"]


class Ensemble(Operator):
    """Every member answers the prompt; returns their texts in member order.

    Args:
        members: Model ids or bindings (``models.instance(...)``).
        seed: When set, member ``i`` is called with ``seed=seed + i`` (OpenAI-style
            APIs and the simulated provider use it), so repeated members differ.
        **params: Parameters for every member's calls.

    Raises:
        TypeError: A member is neither a model id nor a binding.
        ValueError: There are no members.
    """

    def __init__(
        self, members: Sequence[str | ModelBinding], *, seed: int | None = None, **params: Any
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = [as_model(member, params) for member in members]
        self.seed = seed

    def forward(self, prompt: models.Prompt, **params: Any) -> list[str]:
        """The members' answers to ``prompt``.

        A ``seed`` among ``params`` replaces the ensemble's for this call.
        """
        seed = params.pop("seed", self.seed)
        if seed is None:
            return [member(prompt, **params).text for member in self.members]
        return [
            member(prompt, seed=seed + i, **params).text for i, member in enumerate(self.members)
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.members)} members)"


class UniformEnsemble(Ensemble):
    """``num_units`` calls of one model (Ember's classic ensemble).

    Args:
        num_units: How many answers.
        model: A model id or binding.
        seed: See ``Ensemble``.
        **params: Parameters for every call (``temperature=0.8``, ...).
    """

    def __init__(
        self, num_units: int, model: str | ModelBinding, *, seed: int | None = None, **params: Any
    ) -> None:
        if not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f"num_units must be an int >= 1, got {num_units!r}")
        super().__init__([model] * num_units, seed=seed, **params)


@op(name="most_common")
def most_common(answers: Sequence[Any]) -> Any:
    """The most frequent answer; among equally frequent ones, the first to appear.

    Raises:
        ValueError: ``answers`` is empty.
    """
    if not answers:
        raise ValueError("MostCommon needs at least one answer, got none")
    counts: dict[Any, int] = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    return max(counts, key=counts.__getitem__)  # max keeps the first of equal counts


class MostCommon(Operator):
    """Majority vote over answers; ties go to the answer that appeared first."""

    def forward(self, answers: Sequence[Any]) -> Any:
        """The most common of ``answers``."""
        return most_common(answers)
