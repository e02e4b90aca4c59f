"""Sharpness-aware minimisation (Foret et al. 2021) around any loss-based method.

With `sam_rho` > 0 each step's loss is taken at the weights moved uphill by ρ along the
normalised gradient, θ + ρ·g/‖g‖, so the step descends the worst loss in a ρ-ball: the
solution sits in a flat basin. Fan et al. (2025) report that unlearning found this way
resists relearning attacks. It costs a second forward and backward pass per step.

The perturbed loss is computed with `torch.func.functional_call` on the perturbed
parameters θ + ε (ε detached), so backpropagating it gives ∇L(θ + ε) on θ itself: the
shared loop steps the optimizer exactly as without SAM, and the method's own `loss` is
unchanged (hooks on its modules, reference models and all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call

from lethe.unlearn.base import Losses, UnlearnMethod


class _LossOf(torch.nn.Module):
    """A method's own loss as a module holding the model, so its parameters can be swapped."""

    def __init__(self, loss: Callable[..., Losses], model: torch.nn.Module):
        super().__init__()
        self.loss = loss
        self.model = model

    def forward(self, forget: Any, retain: Any) -> Losses:
        return self.loss(self.model, forget, retain)


def sharpness_aware(method: UnlearnMethod) -> UnlearnMethod:
    """`method` with its loss replaced by the SAM loss at radius `method.config.sam_rho`."""
    plain_loss = method.loss
    rho = method.config.sam_rho

    def loss(model: torch.nn.Module, forget: Any, retain: Any) -> Losses:
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        first = plain_loss(model, forget, retain)["loss"]
        grads = torch.autograd.grad(first, [p for _, p in named], allow_unused=True)
        norm = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None)).clamp(min=1e-12)
        moved = {
            f"model.{name}": p + (rho * g.detach() / norm if g is not None else 0.0)
            for (name, p), g in zip(named, grads)
        }
        losses = functional_call(_LossOf(plain_loss, model), moved, (forget, retain), strict=False)
        return {**losses, "sam_unperturbed": first.detach()}

    method.loss = loss  # type: ignore[method-assign]
    return method
