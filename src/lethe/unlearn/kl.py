"""Ascent on the forget set + KL to the frozen original model on the retain set.

loss = gamma · (−NLL_forget) + kl_weight · KL(original ‖ model), the KL taken per position
over every real token of the retain batch (prompts included: the whole distribution is kept).
"""

from __future__ import annotations

import torch

from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.grad_diff import GradDiff
from lethe.unlearn.losses import logits_of, masked_kl


@register_method("kl")
class KLRetain(GradDiff):
    needs_reference = True

    @property
    def retain_weight(self) -> float:
        return self.config.kl_weight

    def retain_loss(self, model: torch.nn.Module, retain: Batch) -> torch.Tensor:
        with torch.no_grad():
            original = logits_of(self.reference, retain)
        return masked_kl(logits_of(model, retain), original, retain["attention_mask"].bool())
