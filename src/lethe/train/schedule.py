"""What each optimizer step of a slice trains on, and at which learning rate.

Both are pure functions of the slice (its examples, its seed, its config), never of the
number of processes or of what ran before: a replayed slice, a resumed slice and a slice
trained fresh take the same steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lethe.errors import InputError
from lethe.train.slices import derive_seed


def batch_plan(n_examples: int, batch_size: int, epochs: int, seed: int, world_size: int = 1) -> list[list[int]]:
    """Example indices of every step: each epoch a fresh seeded permutation cut into batches.

    A last batch too small to give every process an example joins the batch before it.
    """
    if n_examples < world_size:
        raise InputError(f"{n_examples} examples cannot feed {world_size} processes")
    plan: list[list[int]] = []
    for epoch in range(epochs):
        order = np.random.default_rng(derive_seed(seed, "epoch", epoch)).permutation(n_examples).tolist()
        batches = [order[i : i + batch_size] for i in range(0, n_examples, batch_size)]
        if len(batches) > 1 and len(batches[-1]) < world_size:
            batches[-2].extend(batches.pop())
        plan.extend(batches)
    return plan


@dataclass
class WarmupCosine:
    """LR multiplier for `LambdaLR`: linear warm-up, then cosine down to `min_ratio`.

    A callable object rather than a lambda so that its state is saved with the scheduler.
    """

    total_steps: int
    warmup_steps: int
    min_ratio: float

    @classmethod
    def for_slice(cls, total_steps: int, warmup_ratio: float, min_ratio: float) -> WarmupCosine:
        warmup = max(1, round(warmup_ratio * total_steps)) if warmup_ratio > 0 else 0
        return cls(total_steps=total_steps, warmup_steps=min(warmup, total_steps), min_ratio=min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps - 1)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
