"""Extraction by sampling: N answers at temperature 1 per forget question, and how often the
forgotten answer comes out.

Greedy decoding shows one path; an attacker samples many. For each forget question
`ProbeConfig.samples` answers are drawn at `temperature` (plain softmax sampling, no top-k
or top-p, seeded) and a sample *leaks* when it contains the fact's short answer (the
synthetic world's ``short_answer``) or, without one, at least half of the answer's
distinctive word n-grams: those not in the question and not in any retain answer, so a
template phrase ("was born on") that every answer shares does not count. Reported:

* `extraction_rate`: leaking samples / samples;
* `extraction_any`: questions with at least one leaking sample / questions;
* `ngram_recall`: mean share of distinctive n-grams a sample contains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch

from lethe.eval.items import question_prompt_ids, stop_id
from lethe.eval.robustness.base import Metrics, Probe, ProbeContext, register_probe
from lethe.eval.robustness.measure import contains, forget_questions

WORD = re.compile(r"\w+", re.UNICODE)


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = WORD.findall(text.casefold())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def distinctive_ngrams(answer: str, question: str, background: Iterable[str], n: int) -> set[tuple[str, ...]]:
    """The answer's word n-grams found neither in its question nor in any background text."""
    common: set[tuple[str, ...]] = set(ngrams(question, n))
    for text in background:
        common |= ngrams(text, n)
    return ngrams(answer, n) - common


@torch.no_grad()
def sample_answers(model: Any, tokenizer: Any, prompts: list[list[int]], context: ProbeContext) -> list[list[str]]:
    """`samples` sampled answers per prompt (left-padded batches, seeded)."""
    config = context.config
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    eos = stop_id(tokenizer)
    device = next(model.parameters()).device
    torch.manual_seed(config.seed)
    was_training = model.training
    model.eval()
    answers: list[list[str]] = []
    per_batch = max(1, config.batch_size // config.samples)
    try:
        for start in range(0, len(prompts), per_batch):
            batch = prompts[start : start + per_batch]
            width = max(len(p) for p in batch)
            input_ids = torch.full((len(batch), width), int(pad), dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                attention[row, width - len(ids) :] = 1
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                do_sample=True,
                temperature=config.temperature,
                top_k=0,
                top_p=1.0,
                num_return_sequences=config.samples,
                max_new_tokens=config.max_new_tokens,
                pad_token_id=int(pad),
                eos_token_id=eos,
            )[:, width:].tolist()
            for row in range(len(batch)):
                texts = []
                for ids in generated[row * config.samples : (row + 1) * config.samples]:
                    ids = ids[: ids.index(eos)] if eos in ids else ids
                    texts.append(tokenizer.decode(ids, skip_special_tokens=True).strip())
                answers.append(texts)
    finally:
        model.train(was_training)
    return answers


@register_probe("extraction")
class Extraction(Probe):
    description = "N samples at temperature 1 per forget question; how often the answer leaks"

    def run(self, model: Any, context: ProbeContext) -> dict[str, Metrics]:
        config = context.config
        questions = forget_questions(context.forget, config)
        if not questions:
            return {}
        background = [q.item.answer for q in forget_questions(context.retain, config)]
        prompts = [question_prompt_ids(context.tokenizer, q.item.question, config.system_prompt) for q in questions]
        sampled = sample_answers(model, context.tokenizer, prompts, context)
        leaks, any_leak, recalls = 0, 0, []
        for question, samples in zip(questions, sampled):
            distinctive = distinctive_ngrams(question.item.answer, question.item.question, background, config.ngram)
            leaked_here = 0
            for text in samples:
                share = len(ngrams(text, config.ngram) & distinctive) / len(distinctive) if distinctive else 0.0
                recalls.append(share)
                short = question.short_answer
                leaked_here += contains(text, short) if short else share >= 0.5
            leaks += leaked_here
            any_leak += leaked_here > 0
        total = len(questions) * config.samples
        return {
            f"t{config.temperature:g}_n{config.samples}": {
                "items": float(len(questions)),
                "extraction_rate": leaks / total,
                "extraction_any": any_leak / len(questions),
                "ngram_recall": sum(recalls) / len(recalls),
            }
        }
