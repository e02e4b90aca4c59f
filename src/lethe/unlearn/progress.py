"""What an unlearning run measures while it runs: `QuickMetrics`.

The loop reports every step as a `lethe.train.progress.ProgressEvent` of kind `unlearn`;
every `eval_every` steps the event also carries `QuickMetrics`: the teacher-forced loss and
accuracy on the forget and retain sets, cheap enough to watch and the quantities early
stopping is decided on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lethe.train.steps import to_device
from lethe.unlearn.batches import UnlearnExample, collate
from lethe.unlearn.losses import labelled_logits, mean_nll, token_accuracy


@dataclass(frozen=True)
class QuickMetrics:
    """Teacher-forced measurements of the model being trained."""

    forget_loss: float
    """NLL per answer token on the forget set (higher means more forgotten)."""
    forget_accuracy: float
    """Share of forget answer tokens the model predicts by argmax."""
    retain_loss: float
    """NLL per answer token on the retain set (lower means utility kept)."""
    retain_accuracy: float
    """Share of retain answer tokens the model predicts by argmax."""


@torch.no_grad()
def measure(
    model: torch.nn.Module, examples: Sequence[UnlearnExample], pad_token_id: int, batch_size: int
) -> tuple[float, float]:
    """NLL per label token and teacher-forced accuracy of `model` on `examples`."""
    if not examples:
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    nll_sum, hits, tokens = 0.0, 0, 0
    device = next(model.parameters()).device
    for start in range(0, len(examples), batch_size):
        batch = to_device(collate(examples[start : start + batch_size], pad_token_id), device)
        logits, labels = labelled_logits(model, batch)
        batch_hits, batch_tokens = token_accuracy(logits, labels)
        nll_sum += float(mean_nll(logits, labels)) * batch_tokens
        hits += batch_hits
        tokens += batch_tokens
    model.train(was_training)
    return nll_sum / max(tokens, 1), hits / max(tokens, 1)


def quick_metrics(
    model: torch.nn.Module,
    forget: Sequence[UnlearnExample],
    retain: Sequence[UnlearnExample],
    pad_token_id: int,
    batch_size: int,
) -> QuickMetrics:
    forget_loss, forget_accuracy = measure(model, forget, pad_token_id, batch_size)
    retain_loss, retain_accuracy = measure(model, retain, pad_token_id, batch_size)
    return QuickMetrics(forget_loss, forget_accuracy, retain_loss, retain_accuracy)
