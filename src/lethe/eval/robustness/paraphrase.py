"""Paraphrase: the forget questions asked in words training never used.

TOFU ships one rephrasing per question (``paraphrased_question``); the synthetic world writes
two of its own per question from templates no training question uses
(``paraphrased_questions``, `lethe.data.synth_probes`). A model that only learned to stop
answering the benchmark's phrasing still answers these. The answers scored are the
documents' own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lethe.eval.robustness.base import Metrics, Probe, ProbeContext, register_probe
from lethe.eval.robustness.measure import ForgetQuestion, forget_metrics, forget_questions


def paraphrases(question: ForgetQuestion) -> list[str]:
    """Every rephrasing of a question its document carries (TOFU's and the world's)."""
    found = [question.data.get("paraphrased_question"), *(question.data.get("paraphrased_questions") or [])]
    return [str(q) for q in found if q and str(q).strip() != question.item.question]


@register_probe("paraphrase")
class Paraphrase(Probe):
    description = "the forget questions rephrased (TOFU's paraphrased_question; the world's own templates)"

    def run(self, model: Any, context: ProbeContext) -> dict[str, Metrics]:
        items, short_answers = [], []
        for question in forget_questions(context.forget, context.config):
            for text in paraphrases(question):
                items.append(replace(question.item, question=text))
                short_answers.append(question.short_answer)
        if not items:
            return {}
        return {"rephrased": forget_metrics(model, context.tokenizer, items, context.config, short_answers)}
