"""Fine-tune on the retain set only, so the forget set fades as the weights move on."""

from __future__ import annotations

from typing import Any

import torch

from lethe.unlearn.base import Losses, UnlearnMethod, register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.losses import logits_of, mean_nll


@register_method("retain_ft")
class RetainFinetune(UnlearnMethod):
    uses_forget = False

    def loss(self, model: torch.nn.Module, forget: Any, retain: Batch | None) -> Losses:
        retain_loss = mean_nll(logits_of(model, retain), retain["labels"])
        return {"loss": retain_loss, "retain": retain_loss.detach()}
