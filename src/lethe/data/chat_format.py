"""Turning documents into token ids: QA as chat turns, text as pretraining windows.

Labels follow the Hugging Face convention: same length as ``input_ids`` (the model shifts
them), with ``-100`` wherever no loss is taken (prompt, system and user turns, padding).
"""

from __future__ import annotations

import re
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


def has_generation_markers(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template marks assistant tokens with a ``{% generation %}`` block."""
    return re.search(r"\{%-?\s*generation\s*-?%\}", tokenizer.chat_template or "") is not None


def _render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant reply in it.

    Real chat templates (ChatML, Llama 3, ...) carry no ``{% generation %}`` block, so a
    reply is found by rendering the conversation up to it twice: with the generation prompt
    (everything before the reply) and with the reply (everything up to its end-of-turn).
    The difference is the reply and its closing marker; trailing whitespace the template
    adds after the marker is left out, so the model learns to stop, not to print a newline.
    """
    if not tokenizer.chat_template:
        raise InputError(
            "the tokenizer has no chat template, so a conversation cannot be rendered; "
            "use a chat model's tokenizer or one trained with lethe",
            Where(field="chat_template"),
        )
    full = _render(tokenizer, messages, generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True)
        through = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (through.startswith(before) and full.startswith(through)):
            raise InputError(
                "the chat template does not render a conversation as a prefix of its continuation, "
                "so the assistant tokens cannot be found",
                Where(field="chat_template"),
            )
        end = len(through.rstrip())
        if end > len(before):
            spans.append((len(before), end))
    return full, spans


def _assistant_mask(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> tuple[list[int], list[bool]]:
    """Token ids of the rendered conversation, and which of them belong to an assistant reply."""
    if has_generation_markers(tokenizer):
        encoded = tokenizer.apply_chat_template(
            list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        return list(encoded["input_ids"]), [bool(k) for k in encoded["assistant_masks"]]
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [any(lo <= start < hi for lo, hi in spans) for start, _ in encoded["offset_mapping"]]
    return list(encoded["input_ids"]), mask


def encode_sft(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], max_len: int) -> Encoded:
    """Token ids of a conversation, with labels only on the assistant turns.

    Each assistant turn's end-of-turn marker (``<|end|>``, ``<|im_end|>``, ...) is a label
    too, so the model learns to stop. Templates with a ``{% generation %}`` block (lethe's own)
    mark the reply themselves; any other template is rendered with and without each reply
    (`assistant_spans`). Sequences longer than `max_len` are cut at the end; if no assistant
    token survives the cut, that is an error rather than a silent no-op example.
    """
    ids, mask = _assistant_mask(tokenizer, messages)
    input_ids, mask = ids[:max_len], mask[:max_len]
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
