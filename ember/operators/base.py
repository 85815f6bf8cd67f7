"""``Operator``: a composable step of a pipeline, and ``Chain`` to run steps in order.

An operator is a callable object whose ``Operator.forward`` says what it does.
Under ``@xcs.jit`` operators are traced *through*: ``forward`` runs on the tracing
thread, so the model calls inside it become ops of the same graph and independent
ones -- across operators too -- run at the same time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ember import models
from ember.models import ModelBinding

__all__ = ["Chain", "Operator", "Sequential", "as_model"]


def as_model(model: str | ModelBinding, params: dict[str, Any]) -> ModelBinding:
    """A binding for an operator's model: an id or a binding, with extra defaults.

    Raises:
        TypeError: ``model`` is neither a model id nor a ``models.instance(...)``.
        ModelNotFoundError: No provider serves the id.
    """
    if isinstance(model, str):
        return models.instance(model, **params)
    if isinstance(model, ModelBinding):
        return model.with_defaults(**params) if params else model
    raise TypeError(f"expected a model id or a models.instance(...), got {model!r}")


class Operator:
    """Base class of pipeline steps: subclass it and define ``forward``.

    Calling an operator calls ``forward``; ``a >> b`` chains two steps. Operators
    should keep their configuration in attributes set in ``__init__`` and not change
    them in ``forward`` (calls may be traced and run concurrently).
    """

    __xcs_composite__ = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """What the operator computes; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(...)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` with the same arguments."""
        return self.forward(*args, **kwargs)

    def __rshift__(self, other: Callable[..., Any]) -> Chain:
        return Chain(self, other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Chain(Operator):
    """Steps run one after another, each given the previous one's result.

    Args:
        *steps: Operators, models or functions of one argument.

    Raises:
        TypeError: A step is not callable, or there is none.
    """

    def __init__(self, *steps: Callable[..., Any]) -> None:
        if not steps:
            raise TypeError("Chain needs at least one step")
        for position, step in enumerate(steps):
            if not callable(step):
                raise TypeError(f"Chain step {position} is not callable: {step!r}")
        self.steps: tuple[Callable[..., Any], ...] = tuple(
            part for step in steps for part in (step.steps if type(step) is Chain else (step,))
        )

    def forward(self, value: Any, /) -> Any:
        """Pass ``value`` through every step."""
        for step in self.steps:
            value = step(value)
        return value

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.steps))})"


Sequential = Chain
"""Ember's other name for ``Chain``."""
