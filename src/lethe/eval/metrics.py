"""The metric registry: every evaluation metric of lethe is looked up here by name.

A metric is a plain function (its signature depends on what it measures: texts, per-token
log-probabilities, per-item losses, AUCs). `@register_metric("name")` records it;
`get_metric("name")` returns it; `list_metrics()` names them all. The registry is a
`lethe.registry.Registry` scanning `lethe.eval`: a new metric is a decorated function in any
module of the package, nothing else edited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lethe.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

METRICS: Registry[Callable[..., Any]] = Registry("metric", package="lethe.eval", field="metric")
"""Every metric by name; the first lookup imports every module of `lethe.eval`."""


def register_metric(name: str) -> Callable[[F], F]:
    """Return a decorator that records a function in `METRICS` under `name`.

    A name registered twice is a programming error (ValueError), as in every registry.
    """
    if not name or name != name.strip():
        raise ValueError(f"invalid metric name {name!r}")
    return METRICS.register(name)


def get_metric(name: str) -> Callable[..., Any]:
    """Return the metric function registered as `name`; InputError naming the known ones if none."""
    return METRICS.get(name)


def list_metrics() -> list[str]:
    """The names of all registered metrics, sorted."""
    return METRICS.names()
