"""Relearning: a few fine-tuning steps, then the forget metrics on what the attacker lacks.

Łucki et al. (2024) and Deeb & Roger (2024) restore most of what approximate unlearning
removed with a handful of optimizer steps, on unrelated data or on a small part of the
forgotten set itself. For each step count k (`ProbeConfig.relearn_steps`, 10 and 50) a copy
of the model is fine-tuned (AdamW at `relearn_lr`, next-token loss on answers, encoded as in
training, through the shared unlearning loop's `retain_ft`) on

* ``retain_k<k>``: retain documents (the attacker has unrelated data only);
* ``forget_k<k>``: a seeded `relearn_forget_share` of the forget documents (at least one);

and both are read on the *rest* of the forget set, the part neither attack trained on, so
the numbers measure knowledge coming back rather than memorising the attack's own data.
An exactly retrained model relearns only what those documents themselves teach: that is
the range a candidate should stay in.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from lethe.eval.robustness.base import Metrics, Probe, ProbeContext, register_probe
from lethe.eval.robustness.measure import forget_questions, metrics_of_questions


def attack_split(documents: list[Any], share: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(the attacker's forget documents, the rest): a seeded `share`, at least one, of the QA
    documents; both sides non-empty when there are two or more."""
    qa = [d for d in documents if (d.get("kind") if isinstance(d, dict) else getattr(d, "kind", None)) == "qa"]
    if len(qa) < 2:
        return [], qa
    count = min(len(qa) - 1, max(1, round(len(qa) * share)))
    chosen = set(random.Random(seed).sample(range(len(qa)), count))
    return [d for i, d in enumerate(qa) if i in chosen], [d for i, d in enumerate(qa) if i not in chosen]


def relearn(model: Any, tokenizer: Any, examples: list[dict[str, Any]], steps: int, context: ProbeContext) -> Any:
    """A fine-tuned copy of `model`: `steps` AdamW steps of next-token loss on `examples`."""
    from lethe.unlearn import UnlearnConfig, run_unlearning

    config = context.config
    settings = UnlearnConfig(
        steps=steps,
        lr=config.relearn_lr,
        retain_batch_size=config.relearn_batch_size,
        seed=config.seed,
        eval_every=0,
    )
    attacker = copy.deepcopy(model).requires_grad_(True)  # a model loaded for scoring may be frozen
    return run_unlearning("retain_ft", attacker, tokenizer, [], examples, settings).model


@register_probe("relearning")
class Relearning(Probe):
    description = "k fine-tuning steps on retain data or on 10% of the forget set, then the rest of it"

    def run(self, model: Any, context: ProbeContext) -> dict[str, Metrics]:
        config = context.config
        attacker, rest = attack_split(context.forget, config.relearn_forget_share, config.seed)
        questions = forget_questions(rest, config)
        if not questions:
            return {}
        sources = {"retain": context.examples(context.retain), "forget": context.examples(attacker)}
        out: dict[str, Metrics] = {}
        for source, examples in sources.items():
            if not examples:
                continue
            for steps in config.relearn_steps:
                attacked = relearn(model, context.tokenizer, examples, steps, context)
                out[f"{source}_k{steps}"] = metrics_of_questions(attacked, context.tokenizer, questions, config)
        return out
