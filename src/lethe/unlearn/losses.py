"""Token-level quantities every method is built from, computed from logits and labels.

Labels are unshifted (Hugging Face convention): position t's logits predict label t+1.
Losses are taken here rather than from ``model(...).loss`` so that every method and metric
uses one definition (mean over label tokens of the batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lethe.data.chat_format import IGNORE_INDEX
from lethe.unlearn.batches import Batch, model_inputs


def logits_of(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return model(**model_inputs(batch)).logits.float()


def labelled_logits(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits from the position before the batch's first label on, and the labels cut alike:
    the same losses and accuracies as `logits_of` with `batch["labels"]`, without running the
    output layer (a fifth of a 49k-vocabulary model's work) on the prompts."""
    labels = batch["labels"]
    labelled = torch.nonzero((labels != IGNORE_INDEX).any(0))
    first = max(int(labelled[0]) - 1, 0) if len(labelled) else 0
    keep = labels.shape[1] - first
    return model(**model_inputs(batch), logits_to_keep=keep).logits.float(), labels[:, first:]


def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits and targets aligned for next-token prediction, and the mask of real targets."""
    logits = logits[:, :-1, :]
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    return logits, targets.clamp(min=0), mask


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each label token, shape (batch, seq-1), and the label mask."""
    logits, targets, mask = shifted(logits, labels)
    logp = torch.gather(F.log_softmax(logits, dim=-1), -1, targets.unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each sequence's labels, and its number of label tokens."""
    logp, mask = token_logprobs(logits, labels)
    return logp.sum(-1), mask.sum(-1)


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood per label token over the whole batch."""
    logp, mask = token_logprobs(logits, labels)
    return -logp.sum() / mask.sum().clamp(min=1)


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Teacher-forced argmax hits and label-token count."""
    logits, targets, mask = shifted(logits, labels)
    hits = (logits.argmax(-1) == targets) & mask
    return int(hits.sum()), int(mask.sum())


def masked_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """KL(teacher ‖ student) per position, averaged over positions where `mask` is set.

    Scaled by temperature² so gradients keep their size as the temperature changes.
    """
    student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    per_position = F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)
    mask = mask.to(per_position.dtype)
    return (per_position * mask).sum() / mask.sum().clamp(min=1) * temperature**2
