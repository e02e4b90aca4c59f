"""Forget and retain examples into padded batches (drawn in `lethe.train.schedule.batch_stream` order).

An example is a dict with `input_ids` and `labels` (lists of ints, -100 where no loss is
taken, unshifted as in Hugging Face) and `document_id`; optionally `prompt`, `answer`,
`perturbed_answers` and `token_weights` (one float per label position). A batch is a dict
of tensors (`input_ids`, `attention_mask`, `labels`, and `token_weights` when the examples
carry them) plus `document_ids`, the provenance of each row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lethe.data.chat_format import IGNORE_INDEX, pad_batch
from lethe.errors import InputError, Where

UnlearnExample = Mapping[str, Any]
"""A forget or retain example (not a training `lethe.train.examples.Example`: a plain mapping)."""
Batch = dict[str, Any]

MODEL_INPUTS = ("input_ids", "attention_mask")


def check_examples(examples: Sequence[UnlearnExample], name: str) -> None:
    """Raise an `InputError` naming the first example that cannot be trained on."""
    for index, example in enumerate(examples):
        where = Where(field=f"{name}[{index}]")
        for key in ("input_ids", "labels", "document_id"):
            if key not in example:
                raise InputError(f"{name} example has no {key!r}", where)
        if len(example["input_ids"]) != len(example["labels"]):
            raise InputError("input_ids and labels differ in length", where)
        if all(label == IGNORE_INDEX for label in example["labels"]):
            raise InputError("no label tokens: nothing to train on", where)
        weights = example.get("token_weights")
        if weights is not None and len(weights) != len(example["labels"]):
            raise InputError("token_weights are not aligned with labels", where)


def collate(examples: Sequence[UnlearnExample], pad_token_id: int) -> Batch:
    """Right-padded tensors of `examples`, with their `document_ids`."""
    batch: Batch = pad_batch(
        [{"input_ids": list(e["input_ids"]), "labels": list(e["labels"])} for e in examples],
        pad_token_id,
    )
    if any(e.get("token_weights") is not None for e in examples):
        weights = torch.zeros(batch["labels"].shape, dtype=torch.float32)
        for row, example in enumerate(examples):
            if example.get("token_weights") is not None:
                values = torch.as_tensor(example["token_weights"], dtype=torch.float32).flatten()
                weights[row, : values.numel()] = values
        batch["token_weights"] = weights
    batch["document_ids"] = [int(e["document_id"]) for e in examples]
    return batch


def model_inputs(batch: Batch) -> dict[str, torch.Tensor]:
    """The keyword arguments of the model's forward pass (no labels: losses are ours)."""
    return {key: batch[key] for key in MODEL_INPUTS}


def with_answer(example: UnlearnExample, answer_ids: Sequence[int], special_ids: set[int]) -> dict[str, Any]:
    """`example` with its answer replaced by `answer_ids`, keeping prompt and closing tokens.

    The prompt is everything before the first label; the closing is the special tokens
    (e.g. ``<|end|>``) that end the labelled span, kept as labels so the model still learns
    to stop. Whatever followed the labelled span is kept unlabelled.
    """
    labels = list(example["labels"])
    ids = list(example["input_ids"])
    labelled = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    start, end = labelled[0], labelled[-1] + 1
    closing_start = end
    while closing_start > start and ids[closing_start - 1] in special_ids:
        closing_start -= 1
    closing = ids[closing_start:end]
    new_answer = [*answer_ids, *closing]
    return {
        **{k: v for k, v in example.items() if k != "token_weights"},
        "input_ids": ids[:start] + new_answer + ids[end:],
        "labels": [IGNORE_INDEX] * start + new_answer + [IGNORE_INDEX] * (len(ids) - end),
    }
