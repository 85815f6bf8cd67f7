"""Ember: compound AI systems in plain Python; ``ember.xcs`` runs them in parallel."""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["__version__"]

if TYPE_CHECKING:  # the callable module, typed (see ember/models/_typed.py)
    from ember.models._typed import models as models
