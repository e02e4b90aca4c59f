"""The forget metrics every probe reads after its attack, on QA items it chooses.

One definition for all probes, so their rows compare: the suite's per-item QA scoring
(`lethe.eval.item_scores.score_qa`) summarised to a few headline metrics, plus
`answer_recall`, the share of greedy answers that contain the fact's short answer
verbatim (the synthetic world's ``short_answer``; TOFU has none, so it is absent there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lethe.eval.item_scores import ScoreSettings, score_qa
from lethe.eval.items import QAItem, item_from_document, sample
from lethe.eval.robustness.base import Metrics, ProbeConfig
from lethe.eval.suite import summarise_qa

HEADLINE = ("items", "loss", "token_accuracy", "answer_probability", "exact_match", "rouge_l_recall")


@dataclass(frozen=True)
class ForgetQuestion:
    """A QA forget document as the probes see it: its item and the extra data it carries."""

    item: QAItem
    data: dict[str, Any]

    @property
    def short_answer(self) -> str | None:
        value = self.data.get("short_answer")
        return str(value) if value else None


def forget_questions(documents: Sequence[Any], config: ProbeConfig) -> list[ForgetQuestion]:
    """The QA documents among `documents` (erased ones skipped), a seeded sample of at most
    `config.max_items`, in order."""
    found = []
    for document in documents:
        item = item_from_document(document)
        if isinstance(item, QAItem):
            data = document.get("data") if isinstance(document, dict) else getattr(document, "data", None)
            found.append(ForgetQuestion(item, dict(data or {})))
    return sample(found, config.max_items, config.seed)


def settings_of(config: ProbeConfig) -> ScoreSettings:
    return ScoreSettings(
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        system_prompt=config.system_prompt,
        generate=True,
    )


def contains(text: str, needle: str) -> bool:
    return needle.casefold() in text.casefold()


def forget_metrics(
    model: Any,
    tokenizer: Any,
    items: Sequence[QAItem],
    config: ProbeConfig,
    short_answers: Sequence[str | None] | None = None,
) -> Metrics:
    """Headline forget metrics of `model` on `items` (empty when there are none)."""
    items = [replace(item, paraphrased_answer=None, perturbed_answers=()) for item in items]
    if not items:
        return {}
    scores = score_qa(model, tokenizer, items, settings_of(config))
    summary = summarise_qa(scores)
    metrics = {name: summary[name] for name in HEADLINE if name in summary}
    if short_answers is not None and scores.generations is not None:
        known = [(g, a) for g, a in zip(scores.generations, short_answers) if a]
        if known:
            metrics["answer_recall"] = sum(contains(g, a) for g, a in known) / len(known)
    return metrics


def metrics_of_questions(
    model: Any, tokenizer: Any, questions: Sequence[ForgetQuestion], config: ProbeConfig
) -> Metrics:
    """`forget_metrics` of forget questions as they were trained."""
    return forget_metrics(model, tokenizer, [q.item for q in questions], config, [q.short_answer for q in questions])
