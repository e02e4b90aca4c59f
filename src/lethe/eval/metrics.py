"""The metric registry: every evaluation metric of lethe is looked up here by name.

A metric is a plain function (its signature depends on what it measures: texts, per-token
log-probabilities, per-item losses, AUCs). `@register_metric("name")` records it;
`get_metric("name")` returns it; `list_metrics()` names them all. Importing `lethe.eval`
imports every metric module, so the registry is complete once that package is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lethe.errors import InputError, Where

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_metric(name: str) -> Callable[[F], F]:
    """Return a decorator that records a function in the registry under `name`.

    Registering a second, different function under a taken name is a programming error
    (ValueError); registering the same function again (a module reload) is allowed.
    """
    if not name or name != name.strip():
        raise ValueError(f"invalid metric name {name!r}")

    def decorate(fn: F) -> F:
        known = _REGISTRY.get(name)
        if known is not None and _identity(known) != _identity(fn):
            raise ValueError(f"metric {name!r} is already registered by {_identity(known)}")
        _REGISTRY[name] = fn
        return fn

    return decorate


def get_metric(name: str) -> Callable[..., Any]:
    """Return the metric function registered as `name`; InputError naming the known ones if none."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise InputError(f"unknown metric {name!r}; known metrics: {known}", Where(field="metric")) from None


def list_metrics() -> list[str]:
    """The names of all registered metrics, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def _identity(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _load_all() -> None:
    # Importing the package imports every metric module (and so registers them); this makes
    # `from lethe.eval.metrics import get_metric` work without importing the package first.
    import lethe.eval  # noqa: F401
