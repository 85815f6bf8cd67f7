"""Ember: compound AI systems in plain Python; ``ember.xcs`` runs them in parallel."""

import logging
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["__version__"]

# The library's loggers are "ember" and its children ("ember.models", "ember.xcs"; see
# docs/observing.md). As a library, it sets no level and adds no handler but this one,
# which keeps Python's last-resort handler from printing its records to stderr.
logging.getLogger("ember").addHandler(logging.NullHandler())

if TYPE_CHECKING:  # the callable module, typed (see ember/models/_typed.py)
    from ember.models._typed import models as models
