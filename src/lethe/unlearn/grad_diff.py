"""Gradient difference: ascent on the forget set, descent on the retain set.

loss = gamma · (−NLL_forget) + alpha · NLL_retain. The base of most methods here, which
override only `forget_loss` (what to do with the forget batch) or `retain_loss`.
"""

from __future__ import annotations

from typing import Any

import torch

from lethe.unlearn.base import Losses, UnlearnMethod, register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.losses import logits_of, mean_nll


@register_method("grad_diff")
class GradDiff(UnlearnMethod):
    @property
    def retain_weight(self) -> float:
        return self.config.alpha

    @property
    def uses_retain(self) -> bool:  # a zero weight means no retain batch is drawn at all
        return self.retain_weight > 0

    def loss(self, model: torch.nn.Module, forget: Any, retain: Batch | None) -> Losses:
        forget_loss = self.forget_loss(model, forget)
        total = self.config.gamma * forget_loss
        losses = {"forget": forget_loss.detach()}
        if retain is not None:
            retain_loss = self.retain_loss(model, retain)
            total = total + self.retain_weight * retain_loss
            losses["retain"] = retain_loss.detach()
        return {"loss": total, **losses}

    def forget_loss(self, model: torch.nn.Module, forget: Any) -> torch.Tensor:
        return -mean_nll(logits_of(model, forget), forget["labels"])

    def retain_loss(self, model: torch.nn.Module, retain: Batch) -> torch.Tensor:
        return mean_nll(logits_of(model, retain), retain["labels"])
