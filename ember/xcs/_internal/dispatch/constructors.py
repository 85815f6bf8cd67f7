"""Making an instance of a user class, decided by the code that actually runs.

``cls(...)`` runs the metaclass's ``__call__``, then ``__new__`` and ``__init__`` (and a
dataclass's ``__post_init__``). Each is user code (called as its twin: pending values
are fine), code that only stores its arguments (``object``'s, builtin exceptions', a
named tuple's or a dataclass's generated methods), or library code -- pydantic's
``BaseModel.__init__``, attrs' generated ``__init__``, an ``Enum``'s metaclass: then,
as for any library call, the arguments are made concrete first. Where the class was
defined does not matter.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import Any

from ember.xcs._internal.dispatch.frames import stack
from ember.xcs._internal.dispatch.twins import twin_of
from ember.xcs._internal.purity import class_attribute

__all__ = ["constructor"]


# Builtin exceptions whose __new__ and __init__ only store their arguments (in ``args``).
_STORING_EXCEPTIONS = frozenset(
    {
        BaseException,
        Exception,
        ValueError,
        TypeError,
        RuntimeError,
        LookupError,
        KeyError,
        IndexError,
        ArithmeticError,
        ZeroDivisionError,
        AssertionError,
        NotImplementedError,
        Warning,
        UserWarning,
    }
)


def constructor(cls: type) -> tuple[Any, bool]:
    """What to call to make an instance of a user class, and whether it takes pending values.

    ``cls(...)`` runs the metaclass's ``__call__``, then ``__new__`` and ``__init__``
    (and a dataclass's ``__post_init__``). Each is user code (called as its twin:
    pending values are fine), code that only stores its arguments (``object``'s,
    builtin exceptions', a named tuple's or a dataclass's generated methods), or
    library code -- pydantic's ``BaseModel.__init__``, attrs' generated ``__init__``,
    an ``Enum``'s metaclass: then, as for any library call, the arguments are made
    concrete first. Where the class was defined does not matter.
    """
    if type(cls).__call__ is not type.__call__:
        return cls, False
    new: Any = cls.__new__
    new_twin = None
    if not _storing_new(cls, new):
        new_twin = twin_of(new) if type(new) is types.FunctionType else None
        if new_twin is None:
            return cls, False
    init = class_attribute(cls, "__init__")
    init_twin = post_twin = None
    if _generated(init, "__init__") and dataclasses.is_dataclass(cls):
        post = getattr(cls, "__post_init__", None)
        if post is not None:
            # The generated __init__ calls self.__post_init__: an instance attribute
            # can send that call to the twin (not on classes without a __dict__).
            post_twin = twin_of(post) if type(post) is types.FunctionType else None
            if post_twin is None or not _instances_have_dict(cls):
                return cls, False
    elif not _storing_init(init):
        init_twin = twin_of(init) if type(init) is types.FunctionType else None
        if init_twin is None:
            return cls, False
    if new_twin is None and init_twin is None and post_twin is None:
        return cls, True  # only storing code runs: the class itself takes pending values
    return functools.partial(_construct, cls, new_twin, init_twin, post_twin), True


def _storing_new(cls: type, new: Any) -> bool:
    if new is object.__new__:
        return True
    if type(new) is types.BuiltinFunctionType:
        return new.__self__ in _STORING_EXCEPTIONS
    return _generated(new, "__new__") and issubclass(cls, tuple) and hasattr(cls, "_fields")


def _storing_init(init: Any) -> bool:
    if init is None or init is object.__init__:
        return True
    return type(init) is types.WrapperDescriptorType and init.__objclass__ in _STORING_EXCEPTIONS


def _generated(fn: Any, name: str) -> bool:
    """Whether ``fn`` is a method generated from a string (dataclasses, namedtuple)."""
    return (
        type(fn) is types.FunctionType
        and fn.__code__.co_filename == "<string>"
        and fn.__name__ == name
    )


def _instances_have_dict(cls: type) -> bool:
    return cls.__dictoffset__ != 0


def _construct(
    cls: type,
    new: types.FunctionType | None,
    init: types.FunctionType | None,
    post_init: types.FunctionType | None,
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``cls(*args, **kwargs)``, with the user code of its constructor rewritten."""
    if new is None:
        make: Any = cls.__new__
        plain = make is object.__new__  # it refuses arguments when __init__ takes them
        instance: Any = make(cls) if plain else make(cls, *args, **kwargs)
    else:
        stack.next = new.__code__  # entered through the dispatcher: its ops may defer
        instance = new(cls, *args, **kwargs)
    if not isinstance(instance, cls):
        return instance  # as type.__call__: __init__ runs only on an instance of cls
    if init is not None:
        stack.next = init.__code__
        returned = init(instance, *args, **kwargs)
        if returned is not None:
            raise TypeError(f"__init__() should return None, not '{type(returned).__name__}'")
    elif post_init is not None:
        _construct_dataclass(instance, post_init, args, kwargs)
    else:
        type(instance).__init__(instance, *args, **kwargs)
    return instance


def _construct_dataclass(
    instance: Any, post_init: types.FunctionType, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Run a dataclass's generated ``__init__``, its ``__post_init__`` call sent to the twin."""

    def enter_post_init(*post_args: Any) -> Any:
        remove()  # gone before your code runs: vars(self) shows only your attributes
        stack.next = post_init.__code__
        return post_init(instance, *post_args)

    def remove() -> None:
        if attributes.get("__post_init__") is enter_post_init:
            del attributes["__post_init__"]

    attributes = object.__getattribute__(instance, "__dict__")
    attributes["__post_init__"] = enter_post_init  # found before the class's method
    try:
        type(instance).__init__(instance, *args, **kwargs)
    finally:
        remove()
