"""What each optimizer step trains on, and at which learning rate: training and unlearning alike.

Both are pure functions of the run (its examples, its seed, its config), never of what ran
before: a replayed slice, a resumed slice and a slice trained fresh take the same steps. The
batches do not depend on the number of processes either, unless an epoch's last batch is too
small to give each one an example.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lethe.errors import InputError
from lethe.train.slices import derive_seed


def epoch_batches(n_examples: int, batch_size: int, seed: int, epoch: int, world_size: int = 1) -> list[list[int]]:
    """Example indices of the steps of one epoch: a seeded permutation cut into batches.

    A last batch too small to give every process an example joins the batch before it.
    """
    order = np.random.default_rng(derive_seed(seed, "epoch", epoch)).permutation(n_examples).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n_examples, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < world_size:
        batches[-2].extend(batches.pop())
    return batches


def batch_plan(n_examples: int, batch_size: int, epochs: int, seed: int, world_size: int = 1) -> list[list[int]]:
    """Example indices of every step of `epochs` epochs (`epoch_batches` one after another)."""
    if n_examples < world_size:
        raise InputError(f"{n_examples} examples cannot feed {world_size} processes")
    return [
        batch for epoch in range(epochs) for batch in epoch_batches(n_examples, batch_size, seed, epoch, world_size)
    ]


def batch_stream(n_examples: int, batch_size: int, seed: int, world_size: int = 1) -> Iterator[list[int]]:
    """`batch_plan` without an end: epoch after epoch, for runs counted in steps."""
    if n_examples < world_size:
        raise InputError(f"{n_examples} examples cannot feed {world_size} processes")
    for epoch in itertools.count():
        yield from epoch_batches(n_examples, batch_size, seed, epoch, world_size)


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


@dataclass
class WarmupConstant:
    """LR multiplier for `LambdaLR`: linear warm-up over `warmup_steps`, then constant."""

    warmup_steps: int = 0

    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
