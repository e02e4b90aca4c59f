"""DPO with a refusal preferred and the true answer rejected, against the original model.

forget loss = −2/β · logsigmoid(β · (r(refusal) − r(answer))), r = log p_θ − log p_ref,
with log-probs summed per answer, the reference being the frozen original; + alpha · NLL_retain.
The 2/β scale follows open-unlearning's DPO (NPO is this loss without the preferred term).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch, UnlearnExample, collate
from lethe.unlearn.idk import IDK
from lethe.unlearn.losses import logits_of, sequence_logprob


@register_method("dpo_idk")
class DPOIDK(IDK):
    needs_reference = True

    def answer_texts(self, example: UnlearnExample) -> list[str]:
        return list(self.config.idk_answers)

    def forget_batch(self, examples: Sequence[UnlearnExample]) -> dict[str, Batch]:
        return {
            "preferred": collate(self.alternatives(examples), self.pad_token_id),
            "rejected": collate(examples, self.pad_token_id),
        }

    def log_ratio(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        logp, _ = sequence_logprob(logits_of(model, batch), batch["labels"])
        with torch.no_grad():
            reference_logp, _ = sequence_logprob(logits_of(self.reference, batch), batch["labels"])
        return logp - reference_logp

    def forget_loss(self, model: torch.nn.Module, forget: dict[str, Batch]) -> torch.Tensor:
        margin = self.log_ratio(model, forget["preferred"]) - self.log_ratio(model, forget["rejected"])
        beta = self.config.beta
        return (-2.0 / beta * F.logsigmoid(beta * margin)).mean()
