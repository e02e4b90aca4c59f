"""Representation misdirection for unlearning (RMU; Li et al. 2024, the WMDP paper).

On forget data the hidden states a chosen decoder layer outputs are pulled towards a fixed
random direction scaled by `steering_coeff`, which scrambles everything computed from them;
on retain data they are held to the frozen original model's at the same layer:

    loss = gamma · ‖h_θ(forget) − c·u‖² + alpha · ‖h_θ(retain) − h_ref(retain)‖²

(squared errors averaged over the hidden size, then over answer tokens, then over rows; u a
seeded uniform-random unit vector). `rmu_layer` chooses the layer (default: the middle one).
Follows open-unlearning's RMU with its TOFU setting of training every weight.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F

from lethe.data.chat_format import IGNORE_INDEX
from lethe.errors import InputError, Where
from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch, model_inputs
from lethe.unlearn.grad_diff import GradDiff


def decoder_layer(model: torch.nn.Module, index: int | None) -> torch.nn.Module:
    """The `index`-th decoder layer of a (possibly LoRA-wrapped) causal LM; `None` = the middle."""
    layers = [(name, module) for name, module in model.named_modules() if re.fullmatch(r"(?:.*\.)?layers\.\d+", name)]
    if not layers:
        raise InputError("rmu needs a model with decoder layers (…layers.N)", Where(field="rmu_layer"))
    chosen = len(layers) // 2 if index is None else index
    if not 0 <= chosen < len(layers):
        raise InputError(
            f"rmu_layer={index} is out of range: the model has {len(layers)} layers", Where(field="rmu_layer")
        )
    return layers[chosen][1]


def layer_output(model: torch.nn.Module, layer: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The hidden states `layer` outputs when `model` reads `batch` (the forward runs to the end)."""
    captured: list[torch.Tensor] = []

    def keep(_module: Any, _inputs: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = layer.register_forward_hook(keep)
    try:
        model(**model_inputs(batch))
    finally:
        handle.remove()
    return captured[0].float()


def activation_distance(hidden: torch.Tensor, target: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hidden size, averaged over each row's answer tokens, then rows."""
    mask = (labels != IGNORE_INDEX).to(hidden.dtype)
    per_token = F.mse_loss(hidden, target.expand_as(hidden), reduction="none").mean(-1)
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()


@register_method("rmu")
class RMU(GradDiff):
    needs_reference = True

    def setup(self, model: torch.nn.Module) -> None:
        self.layer = decoder_layer(model, self.config.rmu_layer)
        self.reference_layer = decoder_layer(self.reference, self.config.rmu_layer)
        hidden = model.config.hidden_size if hasattr(model, "config") else self.layer.hidden_size
        direction = torch.rand(1, 1, int(hidden), generator=self.generator)
        self.control = direction / direction.norm() * self.config.steering_coeff

    def forget_loss(self, model: torch.nn.Module, forget: Batch) -> torch.Tensor:
        hidden = layer_output(model, self.layer, forget)
        return activation_distance(hidden, self.control.to(hidden.device), forget["labels"])

    def retain_loss(self, model: torch.nn.Module, retain: Batch) -> torch.Tensor:
        hidden = layer_output(model, self.layer, retain)
        with torch.no_grad():
            reference = layer_output(self.reference, self.reference_layer, retain)
        return activation_distance(hidden, reference, retain["labels"])
