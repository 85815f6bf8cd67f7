"""Ember: compound AI systems in plain Python; ``ember.xcs`` runs them in parallel."""

__version__ = "0.1.0"

__all__ = ["__version__"]
