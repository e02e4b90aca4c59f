"""Ascent on the forget set + an L2 pull toward the original weights (L2-SP), dropout on.

loss = gamma · (−NLL_forget) + l2_weight · ‖θ − θ₀‖², θ₀ the trainable weights before the
first step (the adapter's initial weights under LoRA). Attention dropout is set to
`config.dropout` for the run, so ascent cannot lean on a few exact activations.
"""

from __future__ import annotations

from typing import Any

import torch

from lethe.unlearn.base import Losses, register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.grad_ascent import GradAscent


@register_method("l2sp")
class L2SP(GradAscent):
    def setup(self, model: torch.nn.Module) -> None:
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.anchor = [p.detach().clone() for p in self.parameters]
        self.saved_dropout = {}
        for module in model.modules():
            if isinstance(getattr(module, "attention_dropout", None), float):
                self.saved_dropout[module] = module.attention_dropout
                module.attention_dropout = self.config.dropout

    def teardown(self, model: torch.nn.Module) -> None:
        for module, rate in self.saved_dropout.items():
            module.attention_dropout = rate

    def loss(self, model: torch.nn.Module, forget: Any, retain: Batch | None) -> Losses:
        losses = super().loss(model, forget, retain)
        distance = sum(((p - p0) ** 2).sum() for p, p0 in zip(self.parameters, self.anchor))
        losses["loss"] = losses["loss"] + self.config.l2_weight * distance
        losses["l2"] = distance.detach()
        return losses
