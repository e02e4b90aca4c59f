"""Indirect (multi-hop) questions: a forgotten fact reached without naming its entity.

The synthetic world describes an entity through another entity's relation to it ("When was
the founder of the Nuvar Guild born?", `lethe.data.synth_probes`) and stores those questions,
with their answers, in the forgotten fact's own document (``indirect_questions``), so they
are erased with it. `answer_recall` (the fact's short answer in the greedy reply) is the
number to read: the phrasing of the scored answer is the world's, not the model's. TOFU has
no such questions; the probe then reports nothing.
"""

from __future__ import annotations

from typing import Any

from lethe.eval.items import QAItem
from lethe.eval.robustness.base import Metrics, Probe, ProbeContext, register_probe
from lethe.eval.robustness.measure import forget_metrics, forget_questions


@register_probe("indirect")
class Indirect(Probe):
    description = "multi-hop questions naming the entity through a relation"

    def run(self, model: Any, context: ProbeContext) -> dict[str, Metrics]:
        items, short_answers = [], []
        for question in forget_questions(context.forget, context.config):
            for hop in question.data.get("indirect_questions") or []:
                if hop.get("question") and hop.get("answer"):
                    items.append(
                        QAItem(str(hop["question"]), str(hop["answer"]), document_id=question.item.document_id)
                    )
                    short_answers.append(question.short_answer)
        if not items:
            return {}
        items, short_answers = items[: context.config.max_items], short_answers[: context.config.max_items]
        return {"multi_hop": forget_metrics(model, context.tokenizer, items, context.config, short_answers)}
