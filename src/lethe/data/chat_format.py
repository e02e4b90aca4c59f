"""Turning documents into token ids: QA as chat turns, text as pretraining windows.

Labels follow the Hugging Face convention: same length as ``input_ids`` (the model shifts
them), with ``-100`` wherever no loss is taken (prompt, system and user turns, padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import torch
from transformers import PreTrainedTokenizerBase

from lethe.errors import InputError, Where

IGNORE_INDEX = -100
"""Label value that `torch.nn.functional.cross_entropy` skips."""

Message = dict[str, str]


class Encoded(TypedDict):
    """One training sequence."""

    input_ids: list[int]
    labels: list[int]


def format_qa(question: str, answer: str, *, system: str | None = None) -> list[Message]:
    """A question and its answer as chat messages (optionally after a system prompt)."""
    messages: list[Message] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": question})
    messages.append({"role": "assistant", "content": answer})
    return messages


def _require_generation_markers(tokenizer: PreTrainedTokenizerBase) -> None:
    template = tokenizer.chat_template or ""
    if "{% generation %}" not in template and "{%- generation %}" not in template:
        raise InputError(
            "the tokenizer's chat template has no {% generation %} block, so assistant "
            "tokens cannot be told apart; train the tokenizer with lethe",
            Where(field="chat_template"),
        )


def encode_sft(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], max_len: int) -> Encoded:
    """Token ids of a conversation, with labels only on the assistant turns.

    Each assistant turn's closing ``<|end|>`` is a label too, so the model learns to stop.
    Sequences longer than `max_len` are cut at the end; if no assistant token survives the
    cut, that is an error rather than a silent no-op example.
    """
    _require_generation_markers(tokenizer)
    encoded = tokenizer.apply_chat_template(
        list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    input_ids = list(encoded["input_ids"])[:max_len]
    mask = list(encoded["assistant_masks"])[:max_len]
    labels = [tok if keep else IGNORE_INDEX for tok, keep in zip(input_ids, mask)]
    if all(label == IGNORE_INDEX for label in labels):
        has_assistant = any(m.get("role") == "assistant" for m in messages)
        reason = (
            f"the prompt alone is longer than max_len={max_len}"
            if has_assistant
            else "there is no assistant turn to learn from"
        )
        raise InputError(f"no tokens to train on: {reason}", Where(field="messages"))
    return {"input_ids": input_ids, "labels": labels}


def encode_text(
    tokenizer: PreTrainedTokenizerBase, text: str, max_len: int, *, stride: int | None = None
) -> list[Encoded]:
    """A document as pretraining windows: ``<|bos|> text <|eos|>`` cut into `max_len` pieces.

    `stride` is the step between window starts (default `max_len`: no overlap; smaller
    values overlap so that every window but the first has context). Windows too short to
    predict anything (fewer than two tokens) are dropped.
    """
    if max_len < 2:
        raise InputError(f"max_len must be at least 2, got {max_len}", Where(field="max_len"))
    step = stride or max_len
    if not 0 < step <= max_len:
        raise InputError(f"stride must be in 1..{max_len}, got {stride}", Where(field="stride"))
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = [tokenizer.bos_token_id, *body, tokenizer.eos_token_id]
    windows: list[Encoded] = []
    for start in range(0, len(ids), step):
        window = ids[start : start + max_len]
        if len(window) < 2:
            break
        labels = list(window)
        if start > 0 and step < max_len:
            # Overlapping tokens were already predicted by the previous window.
            overlap = max_len - step
            labels[:overlap] = [IGNORE_INDEX] * min(overlap, len(labels))
        windows.append({"input_ids": window, "labels": labels})
        if start + max_len >= len(ids):
            break
    return windows


def encode_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> list[int]:
    """Token ids of a conversation so far, ending with the assistant's opening token."""
    encoded = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True, add_generation_prompt=True)
    return list(encoded["input_ids"])


def pad_batch(examples: Sequence[Encoded], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of encoded examples into ``input_ids``, ``attention_mask``, ``labels``."""
    if not examples:
        raise InputError("cannot pad an empty batch")
    width = max(len(example["input_ids"]) for example in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        input_ids[row, :n] = torch.tensor(example["input_ids"], dtype=torch.long)
        labels[row, :n] = torch.tensor(example["labels"], dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
