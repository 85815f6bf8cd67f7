"""``Router``: send an input to one of several operators, chosen by a function or a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ember.models import Response
from ember.operators.base import Operator

__all__ = ["Router"]


class Router(Operator):
    """Pick a route for the input, then run it.

    The choice is a value the program branches on, so under ``@xcs.jit`` the router's
    own call finishes before the chosen route starts (what comes before and beside it
    still runs in parallel).

    Args:
        routes: Route names to operators (or any callables taking the same input).
        router: Called with the input; returns a route name (a string, or a model
            response whose text is one; surrounding spaces are ignored).
        default: The route name to use for a name not in ``routes``; None to raise.

    Raises:
        TypeError: A route or the router is not callable.
        ValueError: No routes, or ``default`` is not one of them.
    """

    def __init__(
        self,
        routes: Mapping[str, Callable[..., Any]],
        router: Callable[..., Any],
        *,
        default: str | None = None,
    ) -> None:
        if not routes:
            raise ValueError("Router needs at least one route")
        for name, route in routes.items():
            if not callable(route):
                raise TypeError(f"route {name!r} is not callable: {route!r}")
        if not callable(router):
            raise TypeError(f"the router is not callable: {router!r}")
        if default is not None and default not in routes:
            raise ValueError(f"default route {default!r} is not one of {sorted(routes)}")
        self.routes = dict(routes)
        self.router = router
        self.default = default

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Choose a route for the input and return what it returns.

        Raises:
            KeyError: The router chose an unknown route and there is no default.
        """
        choice = self.router(*args, **kwargs)
        name = (choice.text if isinstance(choice, Response) else str(choice)).strip()
        if name not in self.routes:
            if self.default is None:
                raise KeyError(
                    f"Router: the router chose {name!r}, which is not a route "
                    f"({', '.join(sorted(self.routes))}); add it or pass default="
                )
            name = self.default
        return self.routes[name](*args, **kwargs)

    def __repr__(self) -> str:
        return f"Router({sorted(self.routes)})"
