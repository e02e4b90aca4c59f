"""What `lethe tune` searches for each method: one search space per method, by name.

A space is a function of an Optuna trial that returns `UnlearnConfig` settings. Every space
searches the schedule (learning rate, epochs) and the forget/retain mix (retain examples per
forget batch) and the sharpness-aware radius (`sam_rho`, 0 for plain steps); each adds the weights its method's loss reads (`alpha` for the retain term,
`beta` for NPO's temperature, ...). With LoRA among the fixed settings the rank is searched
too.

The ranges follow open-unlearning's sweeps, moved to lethe's models. Those sweeps unlearn at
1 to 30 times the fine-tuning rate (1e-5 to 3e-4 after fine-tuning at 1e-5) with the retain
weight in 1 to 5 and NPO's beta near 0.1; lethe's tiny from-scratch models train at 2e-3, and
the first tuned benchmark showed that below 5e-5 nothing is forgotten within ten epochs and
above 5e-3 utility collapses, so the rate is searched in [5e-5, 5e-3] (log), which also
covers LoRA on a real base (1e-4 to 1e-3). Epochs scale the steps with the request: one epoch
is one pass over the forget set, whatever its size.

The SAM radius is searched because the tuner's finalists must survive the relearning and
quantisation probes, and every tuned row of the benchmarks failed there: the forgetting that
matched the exact model's scores was shallow. Fan et al. (ICML 2025) find unlearning in a
flat basin resists relearning; a SAM step costs a second forward and backward pass, so the
time ceiling decides whether a trial can afford it. The choices are few and include 0, so
TPE can compare plain and sharpness-aware steps directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lethe.errors import InputError, Where
from lethe.registry import Registry

Space = Callable[[Any, dict[str, Any]], dict[str, Any]]
SPACES: Registry[Space] = Registry("search space", plural="search spaces", field="method")
LR_RANGE = (5e-5, 5e-3)
EPOCHS_RANGE = (1, 10)
SAM_RHOS = [0.0, 0.01, 0.05, 0.2]


def schedule(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    """Learning rate, epochs, the retain share of each step and the SAM radius: every method's base."""
    params = {
        "lr": trial.suggest_float("lr", LR_RANGE[0], LR_RANGE[1], log=True),
        "epochs": trial.suggest_int("epochs", *EPOCHS_RANGE),
        "retain_batch_size": trial.suggest_categorical("retain_batch_size", [4, 8, 16]),
        "sam_rho": trial.suggest_categorical("sam_rho", SAM_RHOS),
    }
    if fixed.get("lora"):
        params["lora_r"] = trial.suggest_categorical("lora_r", [4, 8, 16, 32])
    return params


def with_retain_weight(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {**schedule(trial, fixed), "alpha": trial.suggest_float("alpha", 0.2, 10.0, log=True)}


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


@SPACES.register("whp")
def whp_space(trial: Any, fixed: dict[str, Any]) -> dict[str, Any]:
    return {
        **with_retain_weight(trial, fixed),
        "whp_variants": trial.suggest_categorical("whp_variants", [1, 2, 4, 8]),
        "whp_boost": trial.suggest_float("whp_boost", 0.0, 8.0),
    }


def start_point(settings: dict[str, Any]) -> dict[str, Any]:
    """The schedule part of `settings` (an untuned run's lr, epochs, retain batch) that lies in
    the search space: the first trial a benchmark enqueues."""
    start = {}
    if "lr" in settings and LR_RANGE[0] <= float(settings["lr"]) <= LR_RANGE[1]:
        start["lr"] = float(settings["lr"])
    if "epochs" in settings and EPOCHS_RANGE[0] <= int(settings["epochs"]) <= EPOCHS_RANGE[1]:
        start["epochs"] = int(settings["epochs"])
    if settings.get("retain_batch_size") in (4, 8, 16):
        start["retain_batch_size"] = settings["retain_batch_size"]
    if float(settings.get("sam_rho", 0.0)) in SAM_RHOS:
        start["sam_rho"] = float(settings.get("sam_rho", 0.0))
    return start


class _Recorder:
    """A stand-in for an Optuna trial that writes down what a space asks for."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self.asked.append(("float", name, low, high, log))
        return low

    def suggest_int(self, name: str, low: int, high: int) -> int:
        self.asked.append(("int", name, low, high))
        return low

    def suggest_categorical(self, name: str, choices: list) -> Any:
        self.asked.append(("categorical", name, list(choices)))
        return choices[0]


def space_signature(method: str, fixed: dict[str, Any] | None = None) -> list[tuple]:
    """What `method`'s space searches (kind, name, range of every parameter): a study is
    resumed only on the same space, so a widened space starts a new one."""
    recorder = _Recorder()
    space_for(method)(recorder, fixed or {})
    return recorder.asked


def space_for(method: str) -> Space:
    """The search space of `method`; an `InputError` naming the tunable methods otherwise."""
    if method not in SPACES:
        raise InputError(
            f"method {method!r} has no search space; tunable methods: {', '.join(SPACES.names())}",
            Where(field="method"),
        )
    return SPACES.get(method)
