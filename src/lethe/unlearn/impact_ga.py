"""Gradient ascent weighted per token by token impact: push down only what was memorised.

Each forget example carries `token_weights` aligned with its labels, e.g. the token's
log-probability under the model minus under a reference that never saw the document;
negative weights are clipped to 0 (a token the model finds no likelier than the reference
is left alone). forget loss = Σ w_t · log p_θ(y_t) / (label tokens), so a zero-weight token
contributes no gradient at all; + alpha · NLL_retain.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lethe.errors import InputError, Where
from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch, UnlearnExample
from lethe.unlearn.grad_diff import GradDiff
from lethe.unlearn.losses import logits_of, token_logprobs


@register_method("impact_ga")
class ImpactGA(GradDiff):
    needs_token_weights = True

    def prepare_forget(self, examples: Sequence[UnlearnExample]) -> list[UnlearnExample]:
        for index, example in enumerate(examples):
            if example.get("token_weights") is None:
                raise InputError(
                    "impact_ga needs token_weights for every forget example (compute token impact first)",
                    Where(field=f"forget[{index}].token_weights"),
                )
        return list(examples)

    def forget_loss(self, model: torch.nn.Module, forget: Batch) -> torch.Tensor:
        logp, mask = token_logprobs(logits_of(model, forget), forget["labels"])
        weights = forget["token_weights"][:, 1:].clamp(min=0) * mask
        return (weights * logp).sum() / mask.sum().clamp(min=1)
