"""Progress reports of a training job, for whatever shows them (a rich bar, a log, a test).

The library never draws anything: it calls `callback(event)` with a `ProgressEvent` on the
main process, and the CLI turns events into a progress bar. A callback that raises stops the
run, which is then marked failed (tests use this to interrupt a run at a chosen step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """One moment of a training job."""

    kind: str
    """`slice_start`, `step`, `slice_end` or `published`."""
    slice_index: int
    """The lineage's slice being trained."""
    slice_position: int
    """Which of this job's slices it is (0-based), out of `slices_total`."""
    slices_total: int
    step: int = 0
    """Steps done in this slice."""
    steps_total: int = 0
    """Steps of this slice."""
    first_step: int = 0
    """Steps of this slice already done before this process started on it (a resume)."""
    global_step: int = 0
    """Steps done in the run (the step numbers recorded in exposures)."""
    loss: float | None = None
    """Mean loss per label token of the last step."""
    lr: float | None = None
    tokens_per_second: float | None = None
    """Non-padding tokens processed per second since the slice (or resume) started."""
    elapsed: float = 0.0
    """Seconds since the slice (or resume) started."""
    version: str | None = None
    """Name of the version registered (`slice_end`, `published`)."""
    run_kind: str = "train"
    """The job's kind, `train`, `update` or `replay`: what a progress label should call it."""

    @property
    def eta(self) -> float | None:
        """Seconds left in this slice at the current pace."""
        done = self.step - self.first_step
        if self.kind != "step" or done <= 0:
            return None
        return self.elapsed / done * (self.steps_total - self.step)


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(_event: ProgressEvent) -> None:
    """The default callback: report nothing."""
