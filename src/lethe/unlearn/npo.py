"""Negative preference optimisation (Zhang et al. 2024): ascent that saturates.

forget loss = −2/β · logsigmoid(−β · (log p_θ(y|x) − log p_ref(y|x))), summed log-probs of
each forget answer, the reference being the frozen original model; + alpha · NLL_retain.
Unlike plain ascent the push fades once an answer is much less likely than it was.
Matches open-unlearning's NPO (DPO with no preferred answer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.grad_diff import GradDiff
from lethe.unlearn.losses import logits_of, sequence_logprob


@register_method("npo")
class NPO(GradDiff):
    needs_reference = True

    def forget_loss(self, model: torch.nn.Module, forget: Batch) -> torch.Tensor:
        logp, _ = sequence_logprob(logits_of(model, forget), forget["labels"])
        with torch.no_grad():
            reference_logp, _ = sequence_logprob(logits_of(self.reference, forget), forget["labels"])
        beta = self.config.beta
        return (-2.0 / beta * F.logsigmoid(-beta * (logp - reference_logp))).mean()
