"""TOFU's evaluation of a model against the model retrained without the forget set.

The protocol of Maini et al. 2024 (numbers as `lethe.eval.tofu_math` defines them), on four
splits of QA documents:

| split | probability | ROUGE-L recall | truth ratio |
|---|---|---|---|
| forget | mean exp(-loss) | greedy answer (up to 200 tokens) | mean min(R, 1/R) |
| retain | mean exp(-loss) | greedy answer | mean max(0, 1 - R) |
| real_authors, world_facts | p(answer) normalised over the perturbed options | greedy answer | mean max(0, 1 - R) |

Model utility is the harmonic mean of the 9 numbers on retain, real_authors and world_facts;
forget quality is the KS-test p-value between the forget-set truth ratios of the model and of
the retain model, on the same items. With a `holdout` split (never-trained authors of the same
distribution; DESIGN.md §7) the membership AUCs forget vs holdout and MUSE's PrivLeak against
the retain model are added.

The retain split is evaluated on the items that have paraphrased and perturbed answers (TOFU's
`retain_perturbed` rows), so its truth ratio is defined.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lethe.errors import InputError, Where
from lethe.eval import mia, tofu_math
from lethe.eval.item_scores import QAScores, ScoreSettings, score_qa
from lethe.eval.items import QAItem, item_from_document, sample
from lethe.eval.suite import ATTACKS, membership_aucs

BENCHMARK = "tofu"
UTILITY_SPLITS = ("retain", "real_authors", "world_facts")
OPTION_SPLITS = frozenset({"real_authors", "world_facts"})
SPLITS = ("forget", "retain", "real_authors", "world_facts")


@dataclass
class TofuEvalConfig:
    """How the TOFU evaluation samples and generates."""

    max_items: int | None = 100
    """Items per split (a seeded sample; the same items for every model compared)."""
    seed: int = 0
    max_new_tokens: int = 200
    """TOFU generates up to 200 new tokens."""
    batch_size: int = 16
    min_k: float = 0.2
    system_prompt: str | None = None
    answer_end: bool = True
    """Score answers with their closing token, as TOFU's labels include it."""
    bf16: bool = False
    """bfloat16 autocast (output layer in float32), as open-unlearning evaluates in bf16."""

    def settings(self) -> ScoreSettings:
        return ScoreSettings(
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            min_k=self.min_k,
            system_prompt=self.system_prompt,
            generate=True,
            answer_end=self.answer_end,
            bf16=self.bf16,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TofuEvaluation:
    """One model's TOFU scores: per split the per-item scores and TOFU's three numbers."""

    scores: dict[str, QAScores]
    numbers: dict[str, dict[str, float]]
    model_utility: float | None
    holdout: QAScores | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def forget_ratios(self) -> np.ndarray:
        return self.scores["forget"].truth_ratios if "forget" in self.scores else np.empty(0)


def tofu_items(documents: list[Any], split: str, max_items: int | None, seed: int) -> list[QAItem]:
    """The QA items of a split, sampled; retain keeps only items with truth-ratio variants."""
    items = [item for item in map(item_from_document, documents) if isinstance(item, QAItem)]
    if split == "retain":
        with_variants = [i for i in items if i.paraphrased_answer and i.perturbed_answers]
        items = with_variants or items
    return sample(items, max_items, seed)


def split_numbers(split: str, scores: QAScores) -> dict[str, float]:
    """TOFU's probability, ROUGE-L recall and truth-ratio statistic of one split."""
    if split in OPTION_SPLITS:
        normalised = scores.normalised_probability
        finite = normalised[np.isfinite(normalised)] if normalised is not None else np.empty(0)
        probability = float(finite.mean()) if finite.size else float(np.mean(np.exp(-scores.loss)))
    else:
        probability = tofu_math.answer_probability(scores.loss)
    numbers = {"probability": probability, "rouge_l_recall": float(np.mean(scores.overlap["rouge_l_recall"]))}
    ratios = scores.truth_ratios
    if ratios.size:
        stat = tofu_math.truth_ratio_forget_stat if split == "forget" else tofu_math.truth_ratio_stat
        numbers["truth_ratio"] = stat(ratios)
    numbers["loss"] = float(np.mean(scores.loss))
    numbers["exact_match"] = float(np.mean(scores.overlap["exact_match"]))
    numbers["items"] = float(len(scores.items))
    return numbers


def utility_of(numbers: dict[str, dict[str, float]]) -> float | None:
    """Harmonic mean of the 9 numbers: probability, ROUGE-L and truth ratio on each utility
    split present (retain is required; a benchmark without real authors and world facts, such
    as the synthetic world, gets the 3 retain numbers). None without a retain truth ratio."""
    if "truth_ratio" not in numbers.get("retain", {}):
        return None
    values = []
    for split in UTILITY_SPLITS:
        if split in numbers and "truth_ratio" in numbers[split]:
            values += [numbers[split][k] for k in ("probability", "rouge_l_recall", "truth_ratio")]
    return tofu_math.model_utility(values)


def evaluate_tofu(
    model: Any, tokenizer: Any, splits: dict[str, list[Any]], config: TofuEvalConfig | None = None
) -> TofuEvaluation:
    """Score a model on TOFU splits (`forget`, `retain`, `real_authors`, `world_facts`, and
    optionally `holdout`: documents of never-trained authors)."""
    config = config or TofuEvalConfig()
    unknown = set(splits) - set(SPLITS) - {"holdout"}
    if unknown:
        raise InputError(
            f"unknown TOFU splits {sorted(unknown)} (expected {SPLITS} and holdout)", Where(field="splits")
        )
    settings = config.settings()
    scores: dict[str, QAScores] = {}
    for split in SPLITS:
        if split in splits:
            items = tofu_items(splits[split], split, config.max_items, config.seed)
            if items:
                scores[split] = score_qa(model, tokenizer, items, settings)
    holdout = None
    if splits.get("holdout"):
        items = tofu_items(splits["holdout"], "holdout", config.max_items, config.seed)
        holdout = score_qa(model, tokenizer, items, ScoreSettings(**{**asdict(settings), "generate": False}))
    numbers = {split: split_numbers(split, s) for split, s in scores.items()}
    evaluation = TofuEvaluation(scores=scores, numbers=numbers, model_utility=utility_of(numbers), holdout=holdout)
    if holdout is not None and "forget" in scores:
        evaluation.extra.update(membership_aucs(scores["forget"].mia, holdout.mia))
    return evaluation


def evaluation_record(evaluation: TofuEvaluation, samples: int = 5) -> dict[str, Any]:
    """A JSON-ready record of an evaluation: TOFU's numbers, model utility, the forget truth
    ratios and the membership scores (what comparisons and plots need), and sample answers."""
    forget = evaluation.scores.get("forget")
    record: dict[str, Any] = {
        "numbers": evaluation.numbers,
        "model_utility": evaluation.model_utility,
        "extra": evaluation.extra,
        "forget_truth_ratios": [float(r) for r in evaluation.forget_ratios()],
        "mia": {},
        "samples": [],
    }
    if forget is not None:
        record["mia"]["forget"] = forget.mia
        record["samples"] = [
            {
                "question": item.question,
                "answer": item.answer,
                "generation": forget.generations[i] if forget.generations else None,
            }
            for i, item in enumerate(forget.items[:samples])
        ]
    if evaluation.holdout is not None:
        record["mia"]["holdout"] = evaluation.holdout.mia
    return record


def compare_records(record: dict[str, Any], retain: dict[str, Any]) -> dict[str, float]:
    """Forget quality (KS p-value and statistic) and PrivLeak per attack of an evaluation record
    against the retain model's record (on the same forget items)."""
    out: dict[str, float] = {}
    mine, theirs = np.asarray(record["forget_truth_ratios"]), np.asarray(retain["forget_truth_ratios"])
    if mine.size and theirs.size:
        ks = tofu_math.forget_quality_test(mine, theirs)
        out["forget_quality"], out["ks_statistic"] = ks.pvalue, ks.statistic
    for attack in ATTACKS:
        auc, reference = record["extra"].get(f"mia_auc_{attack}"), retain["extra"].get(f"mia_auc_{attack}")
        if auc is not None and reference is not None and reference < 1.0:
            out[f"privleak_{attack}"] = mia.privleak(auc, reference)
    return out


def compare_to_retain(evaluation: TofuEvaluation, retain: TofuEvaluation) -> dict[str, float]:
    """Forget quality (KS p-value and statistic) and PrivLeak per attack, against the retain model."""
    return compare_records(evaluation_record(evaluation, 0), evaluation_record(retain, 0))


def tofu_results(evaluation: TofuEvaluation, retain: TofuEvaluation | None = None) -> dict[str, dict[str, float]]:
    """`{split: {metric: value}}` for the ledger: TOFU's numbers per split, and a `summary` split
    with model utility, forget quality, membership AUCs and PrivLeak."""
    results = {split: dict(numbers) for split, numbers in evaluation.numbers.items()}
    summary: dict[str, float] = dict(evaluation.extra)
    if evaluation.model_utility is not None:
        summary["model_utility"] = evaluation.model_utility
    if retain is not None:
        summary.update(compare_to_retain(evaluation, retain))
    results["summary"] = summary
    return results


def roc_curves(evaluation: TofuEvaluation) -> dict[str, mia.RocCurve]:
    """ROC curve per attack of forget (members) vs holdout (non-members), for plots."""
    if evaluation.holdout is None or "forget" not in evaluation.scores:
        return {}
    members, others = evaluation.scores["forget"].mia, evaluation.holdout.mia
    return {a: mia.roc_points(members[a], others[a]) for a in ATTACKS if members.get(a) and others.get(a)}
