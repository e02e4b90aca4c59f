"""The `UnlearnMethod` base class and the registry that finds methods by name.

A method is a small class that says which batches it needs and overrides one loss; the
shared loop (`lethe.unlearn.loop`, over the step engine `lethe.train.steps`) does everything
else: drawing forget and retain batches, stepping the optimizer, progress, cancellation,
early stopping, LoRA and the merge, devices and processes. Adding a method is one new file
with ``@register_method("name")`` and one test. The loop imports this module, never the
other way round.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import torch

from lethe.registry import Registry
from lethe.unlearn.batches import Batch, UnlearnExample, collate
from lethe.unlearn.config import UnlearnConfig

Losses = dict[str, torch.Tensor]
"""The step's total under ``"loss"`` (what is backpropagated) and named parts for the log."""

METHODS: Registry[type[UnlearnMethod]] = Registry(
    "unlearning method", plural="methods", package="lethe.unlearn", field="method"
)
"""Every module of `lethe.unlearn` is imported on the first lookup, so a method is one new file."""
M = TypeVar("M", bound="type[UnlearnMethod]")


class UnlearnMethod:
    """One way of removing the forget set's influence. Subclasses override `loss`.

    Hooks, all optional: `uses_forget` / `uses_retain` (which batches the loop draws),
    `needs_reference` (the loop provides `self.reference`, a frozen copy of the original
    model), `model_to_train` (train another model than the one given, e.g. a student),
    `setup` / `teardown` (around the steps), `forget_batch` (how drawn forget examples become
    the batch `loss` receives) and `place` (move the method's own models to the training
    device).
    """

    name: ClassVar[str] = ""
    uses_forget: bool = True
    uses_retain: bool = True
    needs_reference: ClassVar[bool] = False
    needs_token_weights: ClassVar[bool] = False
    """The forget examples must carry per-token weights (token impact); whoever runs the
    method computes them first (`lethe.eval.impact.token_weights_for`)."""

    def __init__(self, config: UnlearnConfig, tokenizer: Any, *, pad_token_id: int = 0):
        self.config = config
        self.tokenizer = tokenizer
        self.pad_token_id = pad_token_id
        self.reference: torch.nn.Module | None = None
        self.generator = torch.Generator().manual_seed(config.seed + 2)
        """For the method's own random choices (e.g. which refusal an example gets)."""

    # ----------------------------------------------------------------- the one loss
    def loss(self, model: torch.nn.Module, forget: Any, retain: Batch | None) -> Losses:
        raise NotImplementedError

    # ----------------------------------------------------------------- hooks
    def prepare_forget(self, examples: Sequence[UnlearnExample]) -> list[UnlearnExample]:
        """The forget examples as this method trains on them (checked, possibly extended)."""
        return list(examples)

    def forget_batch(self, examples: Sequence[UnlearnExample]) -> Any:
        return collate(examples, self.pad_token_id)

    def model_to_train(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def setup(self, model: torch.nn.Module) -> None:
        """Called with the model that will be trained (LoRA-wrapped if asked) before step 1."""

    def teardown(self, model: torch.nn.Module) -> None:
        """Called after the last step, before any merge, even when the run fails."""

    def place(self, device: torch.device) -> None:
        """Move the models the method keeps (the reference, a teacher) to `device`."""
        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                value.to(device)


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: make an `UnlearnMethod` subclass available as `name`."""

    def register(cls: M) -> M:
        METHODS.add(name, cls)
        cls.name = name
        return cls

    return register


def get_method(name: str) -> type[UnlearnMethod]:
    """The method registered as `name`, or an `InputError` listing the known ones."""
    return METHODS.get(name)


def list_methods() -> list[str]:
    """Names of the registered methods, sorted."""
    return METHODS.names()


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` in eval mode with no parameter requiring gradients."""
    reference = copy.deepcopy(model)
    reference.eval()
    reference.requires_grad_(False)
    return reference
