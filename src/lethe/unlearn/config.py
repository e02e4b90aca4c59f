"""The hyperparameters of one unlearning run: one `UnlearnConfig`, recorded with the run.

Fields that only some methods read say which. `to_dict` is what the ledger records.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from lethe.errors import InputError, Where

DEFAULT_IDK_ANSWERS: tuple[str, ...] = (
    "I don't know.",
    "I'm not sure.",
    "I have no idea about that.",
    "I don't have that information.",
    "Sorry, I can't answer that.",
    "I'm afraid I don't know the answer.",
    "That's something I don't know.",
    "I have no information on that.",
    "I can't say.",
    "I don't remember anything about that.",
)
"""Refusals the `idk` and `dpo_idk` methods train on, drawn at random per example and step."""

IDK_SOURCES = ("auto", "templates", "perturbed")


@dataclass
class UnlearnConfig:
    """How one forget request is unlearned. Every field is recorded."""

    # ------------------------------------------------------------------ schedule
    steps: int | None = None
    """Optimizer steps to run; `None` means `epochs` passes over the method's main set (the
    forget set, or the retain set for methods that never see forget data)."""
    epochs: int = 5
    """Passes over the main set when `steps` is `None`."""
    lr: float = 1e-4
    """Learning rate of AdamW, constant after warm-up."""
    warmup_steps: int = 0
    """Steps of linear warm-up from zero to `lr`."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    forget_batch_size: int = 8
    """Forget examples per step."""
    retain_batch_size: int = 8
    """Retain examples per step (drawn alongside every forget batch)."""
    seed: int = 0
    """Seeds torch (dropout, fresh students, adapters) and the generator that draws batches."""
    bf16: bool = False
    """Run the losses under bfloat16 autocast on the training device (weights stay fp32)."""

    # ------------------------------------------------------------------ loss weights
    gamma: float = 1.0
    """Weight of the forget term (every method that has one)."""
    alpha: float = 1.0
    """Weight of the retain NLL term (`grad_diff`, `npo`, `simnpo`, `idk`, `dpo_idk`,
    `impact_ga`); 0 turns the retain term off and no retain batch is drawn."""
    beta: float = 0.1
    """Inverse temperature of `npo` and `dpo_idk` (0.1 is usual) and of `simnpo` (the
    SimNPO paper uses 2.5–4.5)."""
    delta: float = 0.0
    """Margin of `simnpo`: -2/β · logsigmoid(-β · mean log p - δ)."""
    kl_weight: float = 1.0
    """Weight of the KL to the original model on retain data (`kl`)."""
    l2_weight: float = 1.0
    """Weight of the squared L2 distance to the original weights (`l2sp`)."""
    dropout: float = 0.1
    """Attention dropout switched on while `l2sp` trains (the model's own is restored after)."""

    # ------------------------------------------------------------------ method specifics
    idk_answers: tuple[str, ...] = DEFAULT_IDK_ANSWERS
    """Refusal answers for `idk` and `dpo_idk`."""
    idk_source: str = "auto"
    """What `idk` trains on: `templates` (the refusals), `perturbed` (the examples'
    `perturbed_answers`) or `auto` (perturbed answers where an example has them)."""
    student_preset: str | None = None
    """`distill`: model preset of the student; `None` is the teacher's own architecture."""
    distill_temperature: float = 1.0
    """`distill`: softmax temperature of the teacher and student distributions."""

    rmu_layer: int | None = None
    """`rmu`: index of the decoder layer whose hidden states are misdirected; `None` is the
    middle layer."""
    steering_coeff: float = 5.0
    """`rmu`: norm of the random direction forget-set hidden states are pulled to (the WMDP
    paper uses 6.5 on 7B models, open-unlearning 2 on TOFU)."""
    undial_strength: float = 10.0
    """`undial`: how much the answer token's logit is lowered in the distillation target."""
    whp_variants: int = 4
    """`whp`: invented names per subject; each step shows the original one of them, drawn."""
    whp_boost: float = 0.0
    """`whp`: how much of what further training on the forget set boosts is taken off the
    target, α in z_swapped − α·ReLU(z_reinforced − z_original) (0: the name swap only)."""
    whp_reinforce_steps: int = 10
    """`whp` with a boost: steps of further fine-tuning on the forget set (the reinforced model)."""
    whp_reinforce_lr: float = 3e-4
    """`whp` with a boost: learning rate of the reinforced model's fine-tuning."""
    sam_rho: float = 0.0
    """Sharpness-aware minimisation radius for any loss-based method (`unlearn/sam.py`): each
    step's loss is taken at the weights moved ρ uphill; 0 turns it off (0.01–0.1 usual)."""

    # ------------------------------------------------------------------ LoRA
    lora: bool = False
    """Train a LoRA adapter instead of all weights, merged into the model at the end."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: float = 16.0
    """LoRA scale numerator (the update is scaled by `lora_alpha / lora_r`)."""
    lora_dropout: float = 0.0
    """Dropout on the adapter input."""

    # ------------------------------------------------------------------ monitoring
    eval_every: int = 10
    """Compute quick forget/retain metrics every this many steps (and at the last step);
    0 turns them off."""
    eval_max_examples: int = 64
    """At most this many forget and this many retain examples in the quick metrics."""
    forget_loss_target: float | None = None
    """Stop early once the forget NLL per answer token reaches at least this."""
    forget_accuracy_target: float | None = None
    """Stop early once the forget teacher-forced token accuracy falls to at most this."""
    retain_accuracy_floor: float | None = None
    """Stop early (a utility floor) once the retain token accuracy falls below this."""

    def __post_init__(self) -> None:
        self.idk_answers = tuple(self.idk_answers)
        checks = [
            (self.steps is None or self.steps >= 1, "steps", "must be at least 1 (or None)"),
            (self.epochs >= 1, "epochs", "must be at least 1"),
            (self.lr > 0, "lr", "must be positive"),
            (self.warmup_steps >= 0, "warmup_steps", "must be >= 0"),
            (self.grad_clip >= 0, "grad_clip", "must be >= 0"),
            (self.forget_batch_size >= 1, "forget_batch_size", "must be at least 1"),
            (self.retain_batch_size >= 1, "retain_batch_size", "must be at least 1"),
            (self.alpha >= 0 and self.gamma >= 0, "alpha", "alpha and gamma must be >= 0"),
            (self.beta > 0, "beta", "must be positive"),
            (0 <= self.dropout < 1, "dropout", "must be in [0, 1)"),
            (len(self.idk_answers) > 0, "idk_answers", "needs at least one answer"),
            (
                self.idk_source in IDK_SOURCES,
                "idk_source",
                f"must be one of {', '.join(IDK_SOURCES)}",
            ),
            (self.distill_temperature > 0, "distill_temperature", "must be positive"),
            (self.rmu_layer is None or self.rmu_layer >= 0, "rmu_layer", "must be >= 0 (or None)"),
            (self.steering_coeff > 0, "steering_coeff", "must be positive"),
            (self.undial_strength >= 0, "undial_strength", "must be >= 0"),
            (self.whp_variants >= 1, "whp_variants", "must be at least 1"),
            (self.whp_boost >= 0, "whp_boost", "must be >= 0"),
            (self.whp_reinforce_steps >= 1, "whp_reinforce_steps", "must be at least 1"),
            (self.whp_reinforce_lr > 0, "whp_reinforce_lr", "must be positive"),
            (self.sam_rho >= 0, "sam_rho", "must be >= 0"),
            (self.lora_r >= 1, "lora_r", "must be at least 1"),
            (self.eval_every >= 0, "eval_every", "must be >= 0"),
            (self.eval_max_examples >= 1, "eval_max_examples", "must be at least 1"),
            (
                self.eval_every > 0 or not self.has_early_stop,
                "eval_every",
                "must be positive when an early-stop target is set (targets are checked on the quick metrics)",
            ),
        ]
        for ok, name, message in checks:
            if not ok:
                raise InputError(f"{name}={getattr(self, name)!r} {message}", Where(field=name))

    @property
    def has_early_stop(self) -> bool:
        return any(
            value is not None
            for value in (
                self.forget_loss_target,
                self.forget_accuracy_target,
                self.retain_accuracy_floor,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """The recorded settings, JSON-ready."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["idk_answers"] = list(self.idk_answers)
        return values

    @classmethod
    def setting_names(cls) -> list[str]:
        """The names `from_dict` accepts, sorted."""
        return sorted(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, also: Iterable[str] = ()) -> UnlearnConfig:
        """A config from user settings or a recorded dict, parsed strictly.

        An unknown key is an `InputError` naming it (with the closest valid name) and
        listing the valid ones; `also` names extra keys a caller handles itself (e.g. the
        `retokenize` of an exact replay), which are accepted and left out of the config.
        """
        check_setting_names(values, cls.setting_names(), also)
        known = set(cls.setting_names())
        return cls(**{k: v for k, v in values.items() if k in known})


def check_setting_names(values: Iterable[str], valid: Iterable[str], also: Iterable[str] = ()) -> None:
    """Raise an `InputError` for the first name of `values` that is neither `valid` nor `also`."""
    allowed = sorted({*valid, *also})
    for name in values:
        if name in allowed:
            continue
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"unknown unlearning setting {name!r}{hint}; valid settings: {', '.join(allowed)}",
            Where(field=str(name)),
        )
