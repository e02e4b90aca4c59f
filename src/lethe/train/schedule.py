"""What each optimizer step trains on, and at which learning rate: training and unlearning alike.

Both are pure functions of the run (its examples, its seed, its config), never of what ran
before: a replayed slice, a resumed slice and a slice trained fresh take the same steps. The
batches do not depend on the number of processes either: each process takes its share of
every planned batch (`process_share`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lethe.train.slices import derive_seed


def epoch_batches(n_examples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Example indices of the steps of one epoch: a seeded permutation cut into batches."""
    order = np.random.default_rng(derive_seed(seed, "epoch", epoch)).permutation(n_examples).tolist()
    return [order[i : i + batch_size] for i in range(0, n_examples, batch_size)]


def batch_plan(n_examples: int, batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """Example indices of every step of `epochs` epochs (`epoch_batches` one after another)."""
    return [batch for epoch in range(epochs) for batch in epoch_batches(n_examples, batch_size, seed, epoch)]


def batch_stream(n_examples: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """`batch_plan` without an end: epoch after epoch, for runs counted in steps."""
    for epoch in itertools.count():
        yield from epoch_batches(n_examples, batch_size, seed, epoch)


@dataclass(frozen=True)
class Share:
    """One process's rows of a planned batch (`process_share`)."""

    rows: list[int]
    """Positions in the batch this process computes the loss of."""
    stand_in: bool = False
    """True when the batch has fewer rows than there are processes and this process got
    none of its own: `rows` is then one row of the batch, computed only so that this
    process takes part in the step's gradient all-reduce like the others."""


def process_share(batch: Sequence[int], rank: int, world_size: int) -> Share:
    """The rows of `batch` process `rank` of `world_size` trains on: every world_size-th
    from its rank, so the processes together cover the batch exactly once.

    The plan never depends on the number of processes, so a batch (an epoch's last) may
    have fewer rows than there are processes. A process left without rows gets row
    ``rank % len(batch)`` as a `stand_in`: DistributedDataParallel needs every process in
    every step's all-reduce. What the stand-in counts for is the caller's rule: training
    gives it zero loss weight (its gradients are then exactly the one-process ones, since a
    step's loss is normalised by the whole step's label count), unlearning counts it like
    any row (its losses are means over each process's rows, so a batch of one row computed
    by every process is that row's gradient, as with one process).
    """
    mine = list(batch[rank::world_size])
    if mine or not batch:
        return Share(mine)
    return Share([batch[rank % len(batch)]], stand_in=True)


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
