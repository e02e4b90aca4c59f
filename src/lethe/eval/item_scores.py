"""Per-item scores of one model on QA and text items: what every summary is computed from.

`score_qa` returns, for each question, the answer's token log-probabilities (loss, token
accuracy, extraction strength, membership scores), the losses of the paraphrased and
perturbed answers (truth ratio, option-normalised probability) and the greedy answer with its
overlap metrics. `score_text` does the same for a text's continuation after a prefix. Both
batch the forward passes and the generation, processing items sorted by length so that
padding stays small, and return results in the items' order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lethe.eval import mia, text
from lethe.eval.items import QAItem, TextItem, answer_ids, question_prompt_ids, stop_id
from lethe.eval.memorisation import exact_memorisation, extraction_strength, verbatim_rouge
from lethe.eval.scoring import pad_id_of


@dataclass
class ScoreSettings:
    """How items are scored (a subset of `SuiteConfig`)."""

    max_new_tokens: int = 64
    batch_size: int = 16
    min_k: float = 0.2
    system_prompt: str | None = None
    generate: bool = True
    text_prefix_tokens: int = 32
    text_target_tokens: int = 48
    answer_end: bool = True
    """Score each answer with the token that ends it (end of turn, else EOS), as TOFU and
    open-unlearning do; False scores the answer's text tokens only (lethe before 2026-12)."""
    bf16: bool = False
    """Run the model under bfloat16 autocast (its output layer stays float32): for pretrained
    bases, about twice as fast on a CPU with AVX512-BF16; log-probabilities move by ~1e-2."""


@dataclass
class QAScores:
    """Per-item numbers for a list of QA items (arrays aligned with `items`)."""

    items: list[QAItem]
    loss: np.ndarray
    token_accuracy: np.ndarray
    extraction_strength: np.ndarray
    mia: dict[str, list[float]]
    """Membership scores per attack (higher = more likely a member), see `lethe.eval.mia`."""
    generations: list[str] | None = None
    overlap: dict[str, np.ndarray] = field(default_factory=dict)
    """exact_match, token_precision, token_recall, token_f1, rouge_l_recall per item."""
    paraphrased_loss: np.ndarray | None = None
    """Loss of the paraphrased answer; where an item has perturbed answers but no paraphrase,
    the answer's own loss (TOFU's convention on real authors and world facts); else NaN."""
    perturbed_loss: np.ndarray | None = None
    """Mean loss over the perturbed answers (NaN where an item has none)."""
    normalised_probability: np.ndarray | None = None
    """p(answer) / (p(answer) + sum_j p(perturbed_j)), length-normalised (NaN without perturbed)."""

    @property
    def truth_ratios(self) -> np.ndarray:
        """R = exp(loss(paraphrased) - mean loss(perturbed)) of the items that have both."""
        if self.paraphrased_loss is None or self.perturbed_loss is None:
            return np.empty(0)
        keep = np.isfinite(self.paraphrased_loss) & np.isfinite(self.perturbed_loss)
        return np.exp(self.paraphrased_loss[keep] - self.perturbed_loss[keep])


@dataclass
class TextScores:
    """Per-item numbers for the continuation of text items after their prefix."""

    items: list[TextItem]
    loss: np.ndarray
    exact_memorisation: np.ndarray
    extraction_strength: np.ndarray
    mia: dict[str, list[float]]
    verbatim_rouge: np.ndarray | None = None
    continuations: list[str] | None = None


def _by_length(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: lengths[i])


def _score_sorted(
    model: Any, prompts: list[list[int]], targets: list[list[int]], batch_size: int, pad_id: int, bf16: bool = False
) -> list:
    """`score_token_ids` over length-sorted items, returned in the original order."""
    from lethe.eval.scoring import score_token_ids

    order = _by_length([len(p) + len(t) for p, t in zip(prompts, targets)])
    scored = score_token_ids(
        model, [prompts[i] for i in order], [targets[i] for i in order], batch_size, pad_id, bf16=bf16
    )
    result: list = [None] * len(order)
    for position, index in enumerate(order):
        result[index] = scored[position]
    return result


def _generate_sorted(
    model: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    pad_id: int,
    eos_id: int | None,
    batch_size: int,
    bf16: bool = False,
) -> list[list[int]]:
    from lethe.eval.scoring import greedy_generate_ids

    order = _by_length([len(p) for p in prompts])
    generated = greedy_generate_ids(
        model, [prompts[i] for i in order], max_new_tokens, pad_id, eos_id, batch_size, bf16=bf16
    )
    result: list[list[int]] = [[] for _ in order]
    for position, index in enumerate(order):
        result[index] = generated[position]
    return result


def _nonempty(ids: list[int], tokenizer: Any) -> list[int]:
    # An empty answer cannot be scored; one EOS token stands in (only for degenerate data).
    return ids if ids else [int(tokenizer.eos_token_id or 0)]


def score_qa(model: Any, tokenizer: Any, items: Sequence[QAItem], settings: ScoreSettings) -> QAScores:
    """Score every QA item: answer log-probabilities, variants and (if asked) greedy answers."""
    items = list(items)
    pad = pad_id_of(tokenizer)
    prompts = [question_prompt_ids(tokenizer, it.question, settings.system_prompt) for it in items]
    answers = [_nonempty(answer_ids(tokenizer, it.answer, end=settings.answer_end), tokenizer) for it in items]
    scores = _score_sorted(model, prompts, answers, settings.batch_size, pad, settings.bf16)
    loss = np.array([s.loss for s in scores])
    result = QAScores(
        items=items,
        loss=loss,
        token_accuracy=np.array([exact_memorisation(s.greedy_ids, s.token_ids) for s in scores]),
        extraction_strength=np.array([extraction_strength(s.greedy_ids, s.token_ids) for s in scores]),
        mia=mia.attack_scores(
            [s.logprobs for s in scores],
            [it.answer for it in items],
            [s.vocab_mean for s in scores],
            [s.vocab_std for s in scores],
            k=settings.min_k,
        ),
    )
    _score_variants(model, tokenizer, items, prompts, loss, settings, pad, result)
    if settings.generate and items:
        ids = _generate_sorted(
            model, prompts, settings.max_new_tokens, pad, stop_id(tokenizer), settings.batch_size, settings.bf16
        )
        result.generations = [tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]
        metrics = ("exact_match", "token_precision", "token_recall", "token_f1", "rouge_l_recall")
        result.overlap = {
            name: np.array([getattr(text, name)(g, it.answer) for g, it in zip(result.generations, items)])
            for name in metrics
        }
    return result


def _score_variants(
    model: Any,
    tokenizer: Any,
    items: list[QAItem],
    prompts: list[list[int]],
    loss: np.ndarray,
    settings: ScoreSettings,
    pad: int,
    result: QAScores,
) -> None:
    """Losses of paraphrased and perturbed answers (one batched pass over all variants)."""
    owners: list[tuple[int, str]] = []  # (item index, "para" | "pert")
    var_prompts: list[list[int]] = []
    var_answers: list[list[int]] = []
    for index, item in enumerate(items):
        variants = ([("para", item.paraphrased_answer)] if item.paraphrased_answer else []) + [
            ("pert", p) for p in item.perturbed_answers
        ]
        for kind, answer in variants:
            owners.append((index, kind))
            var_prompts.append(prompts[index])
            var_answers.append(_nonempty(answer_ids(tokenizer, answer, end=settings.answer_end), tokenizer))
    if not owners:
        return
    scored = _score_sorted(model, var_prompts, var_answers, settings.batch_size, pad, settings.bf16)
    paraphrased = np.full(len(items), np.nan)
    perturbed: list[list[float]] = [[] for _ in items]
    for (index, kind), score in zip(owners, scored):
        if kind == "para":
            paraphrased[index] = score.loss
        else:
            perturbed[index].append(score.loss)
    no_paraphrase = np.isnan(paraphrased) & np.array([bool(p) for p in perturbed])
    paraphrased[no_paraphrase] = loss[no_paraphrase]
    result.paraphrased_loss = paraphrased
    result.perturbed_loss = np.array([np.mean(p) if p else np.nan for p in perturbed])
    normalised = np.full(len(items), np.nan)
    for index, losses in enumerate(perturbed):
        if losses:
            p_answer = np.exp(-loss[index])
            normalised[index] = p_answer / (p_answer + np.exp(-np.asarray(losses)).sum())
    result.normalised_probability = normalised


def _text_split(tokenizer: Any, item: TextItem, settings: ScoreSettings) -> tuple[list[int], list[int]]:
    """(prefix ids with BOS, target ids): the target is the continuation memorisation is read on."""
    body = list(tokenizer(item.text, add_special_tokens=False)["input_ids"])
    prefix_len = min(settings.text_prefix_tokens, max(1, len(body) // 2))
    bos = [int(tokenizer.bos_token_id)] if tokenizer.bos_token_id is not None else []
    prefix = bos + body[:prefix_len]
    target = body[prefix_len : prefix_len + settings.text_target_tokens]
    return prefix, _nonempty(target, tokenizer)


def score_text(model: Any, tokenizer: Any, items: Sequence[TextItem], settings: ScoreSettings) -> TextScores:
    """Memorisation of each text's continuation: loss, exact memorisation, ES, verbatim ROUGE."""
    items = list(items)
    pad = pad_id_of(tokenizer)
    pairs = [_text_split(tokenizer, it, settings) for it in items]
    prefixes, targets = [p for p, _ in pairs], [t for _, t in pairs]
    scores = _score_sorted(model, prefixes, targets, settings.batch_size, pad, settings.bf16)
    target_texts = [tokenizer.decode(t, skip_special_tokens=True) for t in targets]
    result = TextScores(
        items=items,
        loss=np.array([s.loss for s in scores]),
        exact_memorisation=np.array([exact_memorisation(s.greedy_ids, s.token_ids) for s in scores]),
        extraction_strength=np.array([extraction_strength(s.greedy_ids, s.token_ids) for s in scores]),
        mia=mia.attack_scores(
            [s.logprobs for s in scores],
            target_texts,
            [s.vocab_mean for s in scores],
            [s.vocab_std for s in scores],
            k=settings.min_k,
        ),
    )
    if settings.generate and items:
        eos = tokenizer.eos_token_id
        ids = _generate_sorted(
            model,
            prefixes,
            settings.text_target_tokens,
            pad,
            None if eos is None else int(eos),
            settings.batch_size,
            settings.bf16,
        )
        result.continuations = [tokenizer.decode(row, skip_special_tokens=True) for row in ids]
        result.verbatim_rouge = np.array([verbatim_rouge(c, t) for c, t in zip(result.continuations, target_texts)])
    return result
