"""What an unlearning run reports while it runs: one `UnlearnProgress` per step.

The loop calls ``callback(progress)`` after every optimizer step; the CLI turns records into
a progress bar, the UI into a live plot. Every `eval_every` steps the record also carries
`QuickMetrics`: the teacher-forced loss and accuracy on the forget and retain sets, cheap
enough to watch and the quantities early stopping is decided on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from lethe.unlearn.batches import Example, collate
from lethe.unlearn.losses import logits_of, mean_nll, token_accuracy


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


@dataclass(frozen=True)
class UnlearnProgress:
    """One optimizer step of an unlearning run."""

    step: int
    """Steps done (1-based)."""
    steps_total: int
    """Steps planned; the run may stop earlier."""
    losses: dict[str, float] = field(default_factory=dict)
    """The step's loss (`loss`) and the method's named parts (`forget`, `retain`, `kl`, …)."""
    lr: float = 0.0
    elapsed: float = 0.0
    """Seconds since the run started."""
    metrics: QuickMetrics | None = None
    """Set every `eval_every` steps and at the last step."""


ProgressCallback = Callable[[UnlearnProgress], None]


@torch.no_grad()
def measure(
    model: torch.nn.Module, examples: Sequence[Example], pad_token_id: int, batch_size: int
) -> tuple[float, float]:
    """NLL per label token and teacher-forced accuracy of `model` on `examples`."""
    if not examples:
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    nll_sum, hits, tokens = 0.0, 0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_token_id)
        logits = logits_of(model, batch)
        batch_hits, batch_tokens = token_accuracy(logits, batch["labels"])
        nll_sum += float(mean_nll(logits, batch["labels"])) * batch_tokens
        hits += batch_hits
        tokens += batch_tokens
    model.train(was_training)
    return nll_sum / max(tokens, 1), hits / max(tokens, 1)


def quick_metrics(
    model: torch.nn.Module,
    forget: Sequence[Example],
    retain: Sequence[Example],
    pad_token_id: int,
    batch_size: int,
) -> QuickMetrics:
    forget_loss, forget_accuracy = measure(model, forget, pad_token_id, batch_size)
    retain_loss, retain_accuracy = measure(model, retain, pad_token_id, batch_size)
    return QuickMetrics(forget_loss, forget_accuracy, retain_loss, retain_accuracy)
