"""Model-based scoring: per-token log-probabilities of answers, and greedy generation.

Works with any Hugging Face causal LM (`model(input_ids, attention_mask).logits`) and its
tokenizer, on whatever device the model's parameters are on. A prompt and its answer are
tokenised separately (the prompt with the tokenizer's special tokens, e.g. BOS; the answer
without) and concatenated, so the boundary between them is exact; only answer tokens are
scored. Log-probabilities are natural logs computed in float32 from the logits.

The output layer runs only on the positions that predict answer tokens (a 49k-token
vocabulary makes it a fifth of a small model's work per position, and the log-softmax over it
more), and always in float32. With ``bf16`` the rest of the model runs under bfloat16
autocast (about 2.5x the float32 matmul rate on a CPU with AVX512-BF16): for a pretrained base,
whose weights are cast once per call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lethe.errors import InputError, Where
from lethe.eval.memorisation import exact_memorisation, extraction_strength


@dataclass(frozen=True)
class TokenScores:
    """What the model thinks of each answer token y_t, given the prompt and y_<t."""

    token_ids: np.ndarray  # (n,) int64: the answer's tokens y_1..y_n
    logprobs: np.ndarray  # (n,) float64: log p(y_t | prompt, y_<t)
    greedy_ids: np.ndarray  # (n,) int64: argmax_v p(v | prompt, y_<t) (teacher-forced)
    vocab_mean: np.ndarray  # (n,) float64: E_{v~p}[log p(v | ...)] (minus the entropy)
    vocab_std: np.ndarray  # (n,) float64: the standard deviation of log p(v | ...) for v~p

    @property
    def loss(self) -> float:
        """Average negative log-likelihood per answer token."""
        return float(-self.logprobs.mean())


def pad_id_of(tokenizer: Any) -> int:
    """The id to pad `tokenizer`'s sequences with (its pad token, else end of sequence)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0  # any id works: padded positions are masked out and never read


def encode_pairs(
    tokenizer: Any, prompts: Sequence[str], answers: Sequence[str], add_eos: bool = False
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of each prompt (with special tokens) and answer (without; + EOS if asked)."""
    if len(prompts) != len(answers):
        raise InputError(f"{len(prompts)} prompts but {len(answers)} answers", Where(field="answers"))
    prompt_ids = [list(tokenizer(p, add_special_tokens=True)["input_ids"]) for p in prompts]
    answer_ids = [list(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    if add_eos:
        if tokenizer.eos_token_id is None:
            raise InputError("the tokenizer has no EOS token", Where(field="add_eos"))
        answer_ids = [ids + [int(tokenizer.eos_token_id)] for ids in answer_ids]
    return prompt_ids, answer_ids


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def inference_autocast(model: torch.nn.Module, bf16: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on the model's device when `bf16`, else nothing. One region around a
    whole evaluation keeps the weights' bf16 copies cached for all its forward passes."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(_device(model).type, dtype=torch.bfloat16)


def _split_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(decoder, output layer) when the model's logits are just the output layer applied to the
    decoder's last hidden state (Llama and its kin); None where the model does more (a logit
    soft-cap) or does not say."""
    try:
        decoder, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    config = getattr(model, "config", None)
    if decoder is None or head is None or getattr(config, "final_logit_softcapping", None):
        return None
    return decoder, head


def position_logits(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int
) -> torch.Tensor:
    """float32 logits of positions `start`..`stop - 1` only: the output layer (outside any
    autocast) on those positions' hidden states."""
    split = _split_head(model)
    if split is None:
        return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, start:stop].float()
    decoder, head = split
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    hidden = hidden[:, start:stop]
    with torch.autocast(hidden.device.type, enabled=False):
        return head(hidden.to(head.weight.dtype)).float()


@torch.no_grad()
def score_token_ids(
    model: torch.nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    answer_ids: Sequence[Sequence[int]],
    batch_size: int = 8,
    pad_id: int = 0,
    *,
    bf16: bool = False,
) -> list[TokenScores]:
    """Score answer tokens after their prompt tokens, in right-padded batches (`bf16`: the
    model under bfloat16 autocast, its output layer in float32)."""
    if len(prompt_ids) != len(answer_ids):
        raise InputError(f"{len(prompt_ids)} prompts but {len(answer_ids)} answers")
    for index, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
        if not prompt:
            raise InputError(
                "the prompt has no tokens: nothing predicts the first answer token",
                Where(field=f"prompts[{index}]"),
            )
        if not answer:
            raise InputError("the answer has no tokens", Where(field=f"answers[{index}]"))
    if batch_size < 1:
        raise InputError("batch_size must be at least 1", Where(field="batch_size"))
    was_training = model.training
    model.eval()
    device = _device(model)
    results: list[TokenScores] = []
    try:
        with inference_autocast(model, bf16):
            for start in range(0, len(prompt_ids), batch_size):
                prompts = prompt_ids[start : start + batch_size]
                batch = [list(p) + list(a) for p, a in zip(prompts, answer_ids[start : start + batch_size])]
                width = max(len(ids) for ids in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, ids in enumerate(batch):
                    input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                    attention_mask[row, : len(ids)] = 1
                # logits at position t predict the token at t + 1: the first answer token is
                # predicted at the last prompt position, the last one at the sequence's end - 2
                first = min(len(p) for p in prompts) - 1
                logits = position_logits(model, input_ids.to(device), attention_mask.to(device), first, width - 1)
                for row in range(len(batch)):
                    n_prompt = len(prompt_ids[start + row])
                    n_answer = len(answer_ids[start + row])
                    rows = logits[row, n_prompt - 1 - first : n_prompt + n_answer - 1 - first]
                    log_probs = torch.log_softmax(rows, -1)
                    results.append(_token_scores(log_probs, input_ids[row, n_prompt : n_prompt + n_answer]))
    finally:
        model.train(was_training)
    return results


def _token_scores(log_probs: torch.Tensor, targets: torch.Tensor) -> TokenScores:
    targets = targets.to(log_probs.device)
    probs = log_probs.exp()
    finite = probs > 0  # where p underflows to 0, p * log p is 0 (not 0 * -inf = nan)
    mean = torch.where(finite, probs * log_probs, 0.0).sum(-1)
    var = torch.where(finite, probs * (log_probs - mean[:, None]) ** 2, 0.0).sum(-1)
    return TokenScores(
        token_ids=targets.cpu().numpy().astype(np.int64),
        logprobs=log_probs.gather(-1, targets[:, None])[:, 0].double().cpu().numpy(),
        greedy_ids=log_probs.argmax(-1).cpu().numpy().astype(np.int64),
        vocab_mean=mean.double().cpu().numpy(),
        vocab_std=var.clamp_min(0).sqrt().double().cpu().numpy(),
    )


def token_logprobs(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 8,
    add_eos: bool = False,
) -> list[TokenScores]:
    """Per-sample `TokenScores` of each answer given its prompt (the prompt is not scored)."""
    prompt_ids, answer_ids = encode_pairs(tokenizer, prompts, answers, add_eos)
    return score_token_ids(model, prompt_ids, answer_ids, batch_size, pad_id_of(tokenizer))


def teacher_forced_accuracy(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 8,
) -> list[float]:
    """Per sample, the fraction of answer tokens the greedy prediction gets right (exact
    memorisation) under teacher forcing."""
    scores = token_logprobs(model, tokenizer, prompts, answers, batch_size)
    return [exact_memorisation(s.greedy_ids, s.token_ids) for s in scores]


def answer_extraction_strength(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 8,
) -> list[float]:
    """Per sample, the extraction strength of the answer (see `lethe.eval.memorisation`)."""
    scores = token_logprobs(model, tokenizer, prompts, answers, batch_size)
    return [extraction_strength(s.greedy_ids, s.token_ids) for s in scores]


@torch.no_grad()
def greedy_generate_ids(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    pad_id: int,
    eos_id: int | None,
    batch_size: int = 8,
    *,
    bf16: bool = False,
) -> list[list[int]]:
    """Greedy continuations (token ids, cut before the first EOS) of left-padded prompts
    (`bf16`: under bfloat16 autocast)."""
    if max_new_tokens < 1 or batch_size < 1:
        raise InputError("max_new_tokens and batch_size must be at least 1")
    if any(len(ids) == 0 for ids in prompt_ids):
        raise InputError("a prompt has no tokens", Where(field="prompt"))
    was_training = model.training
    model.eval()
    device = _device(model)
    outputs: list[list[int]] = []
    try:
        with inference_autocast(model, bf16):
            for start in range(0, len(prompt_ids), batch_size):
                batch = [list(ids) for ids in prompt_ids[start : start + batch_size]]
                width = max(len(ids) for ids in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, ids in enumerate(batch):
                    input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                    attention_mask[row, width - len(ids) :] = 1
                generated = model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention_mask.to(device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad_id,
                    eos_token_id=eos_id,
                )
                for row in generated[:, width:].tolist():
                    outputs.append(row[: row.index(eos_id)] if eos_id in row else row)
    finally:
        model.train(was_training)
    return outputs


def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    batch_size: int = 8,
) -> list[str]:
    """Greedy continuation text of each prompt (batched, left-padded, stopping at EOS)."""
    prompt_ids = [list(tokenizer(p, add_special_tokens=True)["input_ids"]) for p in prompts]
    eos_id = tokenizer.eos_token_id
    ids = greedy_generate_ids(
        model,
        prompt_ids,
        max_new_tokens,
        pad_id_of(tokenizer),
        None if eos_id is None else int(eos_id),
        batch_size,
    )
    return [tokenizer.decode(row, skip_special_tokens=True) for row in ids]
