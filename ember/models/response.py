"""``Response``: what a model call returns.

``str(response)`` is the text, so responses drop into f-strings (format specs apply to
the text) and prompts; ``str.join`` needs strings: join ``r.text``. Responses hash by
model and text, so they can be counted and used as keys. ``usage``
is a plain dict with ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` and
``cost`` (US dollars, 0.0 when the price is unknown or the model is simulated) and
``cached`` (True when the response cache answered: then no request was sent and the
cost is 0.0; see ``models.cache``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Response", "make_usage"]


def make_usage(prompt_tokens: int, completion_tokens: int, cost: float = 0.0) -> dict[str, Any]:
    """A usage dict from token counts and a cost."""
    return {
        "prompt_tokens": int(prompt_tokens),
        "completion_tokens": int(completion_tokens),
        "total_tokens": int(prompt_tokens) + int(completion_tokens),
        "cost": float(cost),
        "cached": False,
    }


@dataclasses.dataclass(frozen=True)
class Response:
    """A model's answer.

    Attributes:
        text: The generated text.
        usage: Token counts and cost (see the module docstring).
        model_id: The model that answered, as ``provider/model``.
        attempts: Requests made for it (1 when the first succeeded; more after retries;
            0 when the response cache answered). Not part of equality: the same answer
            is the same response.
    """

    text: str
    usage: dict[str, Any] = dataclasses.field(default_factory=lambda: make_usage(0, 0))
    model_id: str = ""
    attempts: int = dataclasses.field(default=1, compare=False, repr=False)

    @property
    def cached(self) -> bool:
        """Whether the response cache answered this call (no request was sent)."""
        return bool(self.usage.get("cached", False))

    def __str__(self) -> str:
        return self.text

    def __format__(self, spec: str) -> str:
        return format(self.text, spec)

    def __hash__(self) -> int:  # equal responses have equal texts and models
        return hash((self.model_id, self.text))
