"""SimNPO (Fan et al. 2024): NPO without a reference model, length-normalised.

forget loss = −2/β · logsigmoid(−β · mean_t log p_θ(y_t|x, y<t) − δ), the mean over each
answer's tokens; + alpha · NLL_retain. δ is the paper's margin γ, added outside β as in the
paper (open-unlearning subtracts it inside, i.e. scales it by β).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.grad_diff import GradDiff
from lethe.unlearn.losses import logits_of, sequence_logprob


@register_method("simnpo")
class SimNPO(GradDiff):
    def forget_loss(self, model: torch.nn.Module, forget: Batch) -> torch.Tensor:
        logp, tokens = sequence_logprob(logits_of(model, forget), forget["labels"])
        mean_logp = logp / tokens.clamp(min=1)
        beta = self.config.beta
        return (-2.0 / beta * F.logsigmoid(-beta * mean_logp - self.config.delta)).mean()
