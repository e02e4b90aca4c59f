"""The `Strategy` interface and the registry that finds one for a request's method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lethe.registry import Registry

if TYPE_CHECKING:
    from lethe.ledger.schema import ForgetRequest, ModelVersion
    from lethe.workspace import Workspace

RECORDED_KEYS = ("holdout", "mentions", "name_guard")
"""What `create_request` records in a request's config beside the method's settings."""


@dataclass(frozen=True, kw_only=True)
class StrategyContext:
    """What a strategy works from: the request, the version it unlearns from, its run."""

    workspace: Workspace
    request: ForgetRequest
    base: ModelVersion
    trained_ids: list[int]
    """The request's documents that the base version trained on."""
    run_id: int
    """The request's own run (kind `unlearn`), where exposures are recorded."""
    callback: Callable[[Any], None] | None = None
    cancel: Any = None

    @property
    def settings(self) -> dict[str, Any]:
        """The request's method settings (without the audit's holdout choice and the mention
        decisions, which the request keeps beside them)."""
        return {k: v for k, v in (self.request.config or {}).items() if k not in RECORDED_KEYS}


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """What a strategy produced: the candidate version (the last one, for a replay of several
    slices) and the progress history of the run that made it."""

    version: ModelVersion
    directory: Path
    history: list[dict[str, Any]]


class Strategy:
    """One way of forgetting. Subclasses set the class flags and implement `unlearn`."""

    name: ClassVar[str] = ""
    exact: ClassVar[bool] = False
    """The candidate is the exact answer (never trained on the documents): audits use it as
    the reference for approximate requests on the same documents."""
    tunable: ClassVar[bool] = True
    """Takes the approximate methods' training settings (steps, lr, batch sizes, ...)."""

    def check(self, settings: dict[str, Any]) -> None:
        """Refuse settings this strategy cannot honour, before the request is recorded."""

    def unlearn(self, context: StrategyContext) -> Candidate:
        raise NotImplementedError


STRATEGIES: Registry[Callable[[], Strategy]] = Registry(
    "forget strategy", plural="forget strategies", package="lethe.forget.strategies", field="method"
)
"""Strategies by name; a name not here is an approximate unlearning method."""


def strategy_for(method: str) -> Strategy:
    """The strategy that runs a request with `method` (an `InputError` for an unknown one)."""
    from lethe.errors import InputError, Where
    from lethe.forget.strategies.approximate import ApproximateUnlearning
    from lethe.unlearn.base import METHODS

    if method in STRATEGIES:
        return STRATEGIES.get(method)()
    if method not in METHODS:
        raise InputError(
            f"unknown method {method!r}; known methods: {', '.join(list_strategies())}", Where(field="method")
        )
    return ApproximateUnlearning(method)


def is_exact(method: str | None) -> bool:
    """Whether a request with `method` yields the exact answer (False for an unknown name)."""
    from lethe.errors import InputError

    try:
        return method is not None and strategy_for(method).exact
    except InputError:
        return False


def list_strategies() -> list[str]:
    """Every method a forget request can name: the strategies and the unlearning methods."""
    from lethe.unlearn import list_methods

    return sorted({*STRATEGIES.names(), *list_methods()})
