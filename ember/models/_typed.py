"""What type checkers see as ``ember.models``: a module that can be called.

At run time ``ember.models`` is a module whose class makes it callable:
``models("simulated/chat", "hi")`` is one model call. Type checkers have no notion of a
callable module (mypy reads that call as "Module not callable"), so under
``TYPE_CHECKING`` the ``ember`` package declares ``models`` as the class below instead:
a class whose ``__new__`` has the signature of the call and returns a ``Response``,
and whose attributes are the module's public names, each the module's own object.
``models.Response`` stays usable as a type, ``models.instance(...)`` keeps its
signature, and a name the module does not have is an error, as with a module.

mypy 2.0 or later and pyright read a ``__new__`` that returns another type this way;
``tests/typing`` proves it, and a test keeps this class's names equal to the
module's ``__all__``. Nothing imports this module at run time except that test.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import ember.models as _models


class models:  # named as users write it: errors read "for models"
    """``ember.models`` as type checkers see it: call it, or use its names."""

    CacheError: TypeAlias = _models.CacheError
    CacheInfo: TypeAlias = _models.CacheInfo
    CallEvent: TypeAlias = _models.CallEvent
    MissingAPIKeyError: TypeAlias = _models.MissingAPIKeyError
    ModelBinding: TypeAlias = _models.ModelBinding
    ModelError: TypeAlias = _models.ModelError
    ModelNotFoundError: TypeAlias = _models.ModelNotFoundError
    Prompt: TypeAlias = _models.Prompt
    Provider: TypeAlias = _models.Provider
    ProviderError: TypeAlias = _models.ProviderError
    RateLimitError: TypeAlias = _models.RateLimitError
    Response: TypeAlias = _models.Response
    ResponseCache: TypeAlias = _models.ResponseCache
    RetryPolicy: TypeAlias = _models.RetryPolicy
    SecretParameterError: TypeAlias = _models.SecretParameterError
    UnknownParameterError: TypeAlias = _models.UnknownParameterError

    acall = staticmethod(_models.acall)
    cache = staticmethod(_models.cache)
    cache_clear = staticmethod(_models.cache_clear)
    cache_info = staticmethod(_models.cache_info)
    instance = staticmethod(_models.instance)
    list = staticmethod(_models.list)
    no_cache = staticmethod(_models.no_cache)
    on_call = staticmethod(_models.on_call)
    providers = staticmethod(_models.providers)
    register_provider = staticmethod(_models.register_provider)
    reset_usage = staticmethod(_models.reset_usage)
    set_price = staticmethod(_models.set_price)
    usage = staticmethod(_models.usage)
    usage_by_model = staticmethod(_models.usage_by_model)

    def __new__(  # type: ignore[misc]  # the call returns a Response, not a models
        cls, model_id: str, prompt: _models.Prompt, /, **params: Any
    ) -> _models.Response:
        """``models(model_id, prompt, **params)``: one call of one model."""
        return _models._registry.call(model_id, prompt, params)
