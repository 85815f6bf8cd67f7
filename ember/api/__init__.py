"""Earlier Ember's import path: ``from ember.api import models, operators, xcs``.

Code written for earlier Ember generations imported everything from ``ember.api``;
it keeps working. The three names are the packages themselves (``ember.models``,
``ember.operators``, ``ember.xcs``), also importable as ``ember.api.models`` and so
on. What changed from earlier Ember is on the migration page (``docs/migration.md``).
"""

import sys

from ember import models, operators, xcs

__all__ = ["models", "operators", "xcs"]

for _name in __all__:
    sys.modules.setdefault(f"{__name__}.{_name}", sys.modules[f"ember.{_name}"])
