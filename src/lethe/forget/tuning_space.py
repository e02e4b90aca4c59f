"""What `lethe tune` searches for each method: one search space per method, by name.

A space is a function of an Optuna trial that returns `UnlearnConfig` settings. Every space
searches the schedule (learning rate, epochs) and the forget/retain mix (retain examples per
forget batch); each adds the weights its method's loss reads (`alpha` for the retain term,
`beta` for NPO's temperature, ...). With LoRA among the fixed settings the rank is searched
too. Ranges are those open-unlearning's sweeps use, widened for the tiny from-scratch models
(trained at 2e-3, so unlearning rates reach 1e-2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lethe.errors import InputError, Where
from lethe.registry import Registry

Space = Callable[[Any, dict[str, Any]], dict[str, Any]]
SPACES: Registry[Space] = Registry("search space", plural="search spaces", field="method")


def schedule(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    """Learning rate, epochs and the retain share of each step: every method's base."""
    params = {
        "lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True),
        "epochs": trial.suggest_int("epochs", 1, 10),
        "retain_batch_size": trial.suggest_categorical("retain_batch_size", [4, 8, 16]),
    }
    if fixed.get("lora"):
        params["lora_r"] = trial.suggest_categorical("lora_r", [4, 8, 16, 32])
    return params


def with_retain_weight(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {**schedule(trial, fixed), "alpha": trial.suggest_float("alpha", 0.1, 10.0, log=True)}


@SPACES.register("grad_ascent")
def grad_ascent_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return schedule(trial, fixed)


for _name in ("grad_diff", "idk", "impact_ga", "retain_ft"):
    SPACES.register(_name)(with_retain_weight)


def preference_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    """NPO and DPO-idk: a retain weight and the preference temperature beta."""
    return {**with_retain_weight(trial, fixed), "beta": trial.suggest_float("beta", 0.02, 1.0, log=True)}


for _name in ("npo", "dpo_idk"):
    SPACES.register(_name)(preference_space)


@SPACES.register("simnpo")
def simnpo_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {
        **with_retain_weight(trial, fixed),
        "beta": trial.suggest_float("beta", 0.5, 5.0, log=True),
        "delta": trial.suggest_float("delta", 0.0, 2.0),
    }


@SPACES.register("kl")
def kl_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {**schedule(trial, fixed), "kl_weight": trial.suggest_float("kl_weight", 0.1, 10.0, log=True)}


@SPACES.register("l2sp")
def l2sp_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {**schedule(trial, fixed), "l2_weight": trial.suggest_float("l2_weight", 0.01, 10.0, log=True)}


@SPACES.register("rmu")
def rmu_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {
        **with_retain_weight(trial, fixed),
        "steering_coeff": trial.suggest_float("steering_coeff", 1.0, 20.0, log=True),
    }


@SPACES.register("undial")
def undial_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {
        **with_retain_weight(trial, fixed),
        "undial_strength": trial.suggest_float("undial_strength", 1.0, 30.0, log=True),
    }


def space_for(method: str) -> Space:
    """The search space of `method`; an `InputError` naming the tunable methods otherwise."""
    if method not in SPACES:
        raise InputError(
            f"method {method!r} has no search space; tunable methods: {', '.join(SPACES.names())}",
            Where(field="method"),
        )
    return SPACES.get(method)
