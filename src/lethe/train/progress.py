"""Progress of long work — training jobs and unlearning runs — for whatever shows it.

The library never draws anything: it calls `callback(event)` with a `ProgressEvent`, the one
event type of every run (the step engine emits the `step` and `unlearn` ones), and the CLI
turns events into a progress bar, the UI into a live plot. A callback that raises stops the
run, which is then marked failed (tests use this to interrupt a run at a chosen step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """One moment of a training job or an unlearning run."""

    kind: str = "step"
    """`slice_start`, `step`, `slice_end` or `published` (a training job), `unlearn` (a step
    of an unlearning run)."""
    slice_index: int = 0
    """The lineage's slice being trained."""
    slice_position: int = 0
    """Which of this job's slices it is (0-based), out of `slices_total`."""
    slices_total: int = 0
    step: int = 0
    """Steps done (in this slice, for a training job)."""
    steps_total: int = 0
    """Steps planned (of this slice); an unlearning run may stop earlier."""
    first_step: int = 0
    """Steps already done before this process started on them (a resume)."""
    global_step: int = 0
    """Steps done in the run (the step numbers recorded in exposures)."""
    losses: dict[str, float] = field(default_factory=dict)
    """The step's loss (`loss`: for training the mean per label token) and any named parts
    (`forget`, `retain`, `kl`, …)."""
    lr: float | None = None
    tokens_per_second: float | None = None
    """Non-padding tokens processed per second since the slice (or resume) started."""
    elapsed: float = 0.0
    """Seconds since the slice (or run, or resume) started."""
    metrics: Any = None
    """Quick measurements taken after the step (unlearning: `QuickMetrics` every `eval_every`
    steps and at the last)."""
    version: str | None = None
    """Name of the version registered (`slice_end`, `published`)."""

    @property
    def loss(self) -> float | None:
        """The step's loss (mean per label token of a training step)."""
        return self.losses.get("loss")

    @property
    def eta(self) -> float | None:
        """Seconds left at the current pace."""
        done = self.step - self.first_step
        if self.kind not in ("step", "unlearn") or done <= 0:
            return None
        return self.elapsed / done * (self.steps_total - self.step)


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(_event: ProgressEvent) -> None:
    """The default callback: report nothing."""
