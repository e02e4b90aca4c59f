"""Data augmentation: train the forget questions toward other answers, keep the retain set.

Each forget example gets alternatives: its own prompt with a refusal from
`config.idk_answers` ("I don't know.", …), or with its `perturbed_answers` (plausible wrong
answers, as TOFU ships them) per `config.idk_source`. Every step draws one alternative per
example at random (seeded); loss = gamma · NLL(alternative) + alpha · NLL_retain.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lethe.errors import InputError, Where
from lethe.unlearn.base import register_method
from lethe.unlearn.batches import Batch, UnlearnExample, collate, with_answer
from lethe.unlearn.grad_diff import GradDiff
from lethe.unlearn.losses import logits_of, mean_nll


@register_method("idk")
class IDK(GradDiff):
    def answer_texts(self, example: UnlearnExample) -> list[str]:
        source, perturbed = self.config.idk_source, list(example.get("perturbed_answers") or [])
        if source == "perturbed" and not perturbed:
            raise InputError(
                "idk_source='perturbed' but a forget example has no perturbed_answers",
                Where(field=f"documents.{example['document_id']}"),
            )
        if source == "templates" or not perturbed:
            return list(self.config.idk_answers)
        return perturbed

    def prepare_forget(self, examples: Sequence[UnlearnExample]) -> list[UnlearnExample]:
        special = set(getattr(self.tokenizer, "all_special_ids", []))
        prepared = []
        for example in examples:
            alternatives = [
                with_answer(example, self.tokenizer(text, add_special_tokens=False)["input_ids"], special)
                for text in self.answer_texts(example)
            ]
            prepared.append({**example, "alternatives": alternatives})
        return prepared

    def alternatives(self, examples: Sequence[UnlearnExample]) -> list[UnlearnExample]:
        """One alternative per example, drawn from the method's seeded generator."""
        picks = []
        for example in examples:
            choices = example["alternatives"]
            picks.append(choices[int(torch.randint(len(choices), (1,), generator=self.generator))])
        return picks

    def forget_batch(self, examples: Sequence[UnlearnExample]) -> Batch:
        return collate(self.alternatives(examples), self.pad_token_id)

    def forget_loss(self, model: torch.nn.Module, forget: Batch) -> torch.Tensor:
        return mean_nll(logits_of(model, forget), forget["labels"])
