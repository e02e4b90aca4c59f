"""Exact unlearning: replay training from the last checkpoint that never saw the forget set.

Replay lives with the trainer and the ledger, not in the shared loop, so this method only
holds its place in the registry: `run` hands everything to `config.replay_fn`, which the
forget-request orchestration injects (restore the checkpoint before the first slice exposing
a forget document, retrain the later slices without them, same seeds and hyperparameters)
and which returns an `UnlearnResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lethe.errors import InputError, Where
from lethe.unlearn.base import Losses, UnlearnMethod, register_method
from lethe.unlearn.batches import Example
from lethe.unlearn.result import UnlearnResult


@register_method("exact")
class ExactReplay(UnlearnMethod):
    replaces_loop = True

    def run(
        self,
        model: torch.nn.Module,
        forget_examples: Sequence[Example],
        retain_examples: Sequence[Example],
        **keywords: Any,
    ) -> UnlearnResult:
        if self.config.replay_fn is None:
            raise InputError(
                "exact unlearning replays training from the ledger; it runs through a forget "
                "request (no replay_fn was given)",
                Where(field="replay_fn"),
            )
        return self.config.replay_fn(model, self.tokenizer, forget_examples, retain_examples, self.config, **keywords)

    def loss(self, model: torch.nn.Module, forget: Any, retain: Any) -> Losses:
        raise InputError("exact unlearning has no loss: it retrains without the forget set")
