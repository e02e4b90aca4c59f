"""Training with provenance: slices, checkpoints, resume, weekly updates and exact replay.

`train`, `update`, `replay` and `resume` (in `lethe.train.pipeline`) are the whole public
API; `TrainConfig` holds the hyperparameters and `ProgressEvent` is what progress callbacks
receive. Importing this package is cheap; torch loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ProgressEvent", "TrainConfig", "replay", "resume", "train", "update"]

if TYPE_CHECKING:
    from lethe.train.config import TrainConfig
    from lethe.train.pipeline import replay, resume, train, update
    from lethe.train.progress import ProgressEvent


def __getattr__(name: str):
    if name in ("train", "update", "replay", "resume"):
        from lethe.train import pipeline

        return getattr(pipeline, name)
    if name == "TrainConfig":
        from lethe.train.config import TrainConfig

        return TrainConfig
    if name == "ProgressEvent":
        from lethe.train.progress import ProgressEvent

        return ProgressEvent
    raise AttributeError(name)
