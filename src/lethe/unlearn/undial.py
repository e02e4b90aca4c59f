"""UNDIAL (Dong et al. 2024): self-distillation towards the original model with the answer's
own token made less likely.

For every answer position the frozen original model's logits have the label token's logit
lowered by `undial_strength`; the softmax of that is the soft target the model is trained
towards (cross-entropy), so it keeps everything the original predicts except the memorised
token, and the push stops once it matches the adjusted target, unlike ascent:

    forget loss = CE(p_θ, softmax(z_ref − strength · onehot(y)))  over answer tokens,
    + alpha · NLL_retain.

Follows open-unlearning's UNDIAL (its default strength 10), averaged over answer tokens only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.grad_diff import GradDiff
from lethe.unlearn.losses import logits_of, shifted


def adjusted_targets(reference_logits: torch.Tensor, targets: torch.Tensor, strength: float) -> torch.Tensor:
    """softmax of the reference logits with each position's target logit lowered by `strength`."""
    lowered = reference_logits.scatter_add(
        -1, targets.unsqueeze(-1), torch.full_like(targets, -strength, dtype=reference_logits.dtype).unsqueeze(-1)
    )
    return F.softmax(lowered, dim=-1)


@register_method("undial")
class UNDIAL(GradDiff):
    needs_reference = True

    def forget_loss(self, model: torch.nn.Module, forget: Batch) -> torch.Tensor:
        logits, targets, mask = shifted(logits_of(model, forget), forget["labels"])
        with torch.no_grad():
            reference, _, _ = shifted(logits_of(self.reference, forget), forget["labels"])
            soft = adjusted_targets(reference, targets, self.config.undial_strength)
        per_token = -(soft * F.log_softmax(logits, dim=-1)).sum(-1)
        mask = mask.to(per_token.dtype)
        return (per_token * mask).sum() / mask.sum().clamp(min=1)
