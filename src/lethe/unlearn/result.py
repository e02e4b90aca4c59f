"""What an unlearning run returns: the model, its history, and which documents it touched."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import PreTrainedModel

from lethe.train.progress import ProgressEvent
from lethe.unlearn.progress import QuickMetrics


@dataclass(frozen=True)
class BatchDraw:
    """The documents of one optimizer step: what the ledger records as its exposures."""

    step: int
    forget_document_ids: tuple[int, ...] = ()
    retain_document_ids: tuple[int, ...] = ()


@dataclass
class UnlearnResult:
    """The outcome of `run_unlearning`."""

    model: PreTrainedModel
    """The unlearned model: full weights (a LoRA adapter is already merged into them)."""
    method: str
    steps: int
    """Optimizer steps done."""
    wall_time: float
    """Seconds from the start of the run to the returned model (merge included)."""
    history: list[ProgressEvent] = field(default_factory=list)
    """One record per step, as the callback saw them."""
    draws: list[BatchDraw] = field(default_factory=list)
    """Per step, the forget and retain document ids trained on."""
    stop_reason: str | None = None
    """Why the run stopped before its planned steps (`forget_loss_target`,
    `forget_accuracy_target`, `retain_accuracy_floor`), or `None` if it ran them all."""
    initial_metrics: QuickMetrics | None = None
    """Quick metrics before the first step (when `eval_every` > 0)."""
    monitor_seconds: float = 0.0
    """Of `wall_time`, the seconds spent on the quick metrics. They only watch (no gradient,
    no random draw), so a run with `eval_every=0` takes the same steps to the same weights in
    `wall_time - monitor_seconds`."""

    @property
    def final_metrics(self) -> QuickMetrics | None:
        """The last quick metrics of the run."""
        for record in reversed(self.history):
            if record.metrics is not None:
                return record.metrics
        return self.initial_metrics

    def exposures(self) -> list[tuple[int, int]]:
        """(step, document id) for every example trained on, forget and retain alike."""
        return [
            (draw.step, document_id)
            for draw in self.draws
            for document_id in (*draw.forget_document_ids, *draw.retain_document_ids)
        ]
