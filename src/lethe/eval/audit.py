"""The audit of a forget request: what changed, judged against exact retraining when possible.

`build_audit` compares models directly (no ledger): the version before the request, the
version after it and, when one exists, the *exact reference* (replay from the ledger without
the forgotten documents). On the forget documents, a sample of the retain documents and the
never-trained holdout documents it reports

* the standard suite (`lethe.eval.suite`) for every model, and the change after - before;
* the distance of the approximate model to the exact reference in those metrics, and TOFU's
  forget quality of the approximate model *against the exact one* (KS p-value of the forget
  truth ratios: high = indistinguishable from retraining);
* membership-inference AUCs forget vs holdout (and ROC points of the LOSS attack, for plots);
* the forget-set truth ratios (for histograms), and sample questions about the forgotten
  documents with the greedy answers of each model;
* the loss curve of the unlearning run, when its progress history is given.

The result is JSON-ready. It runs *before* the documents are erased (`lethe.forget.audit`
loads the versions and documents from the ledger and calls it between unlearning and publishing): afterwards the ledger no longer holds their content.
Note that the samples quote forgotten questions and answers; `AuditConfig.samples = 0` leaves
them out where the audit itself must not hold forgotten text.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lethe.eval import mia, tofu_math
from lethe.eval.suite import (
    HOLDOUT,
    SuiteConfig,
    SuiteResult,
    run_suite,
)

BENCHMARK = "audit"
HEADLINE = (
    "loss",
    "token_accuracy",
    "exact_match",
    "rouge_l_recall",
    "answer_probability",
    "truth_ratio_stat",
    "mia_auc_loss",
    "mia_auc_min_k_plus_plus",
    "exact_memorisation",
    "verbatim_rouge",
)
"""The metrics the rendered audit and the before/after plots show first."""


@dataclass
class AuditConfig:
    """How an audit samples and scores."""

    suite: SuiteConfig = field(default_factory=lambda: SuiteConfig(max_items=64, max_new_tokens=64))
    """The suite run on every model (items per split, answer length, ...)."""
    retain_documents: int = 200
    """Retain documents drawn (seeded) from what the base version trained on, before the
    suite's own per-split sampling."""
    samples: int = 5
    """Sample questions about the forgotten documents shown with each model's answer."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _changes(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        split: {
            m: after[split][m] - before[split][m]
            for m in after[split]
            if m in before.get(split, {}) and not m.endswith("items")
        }
        for split in after
    }


def _roc_dict(curve: mia.RocCurve) -> dict[str, Any]:
    return {"fpr": [round(x, 5) for x in curve.fpr], "tpr": [round(x, 5) for x in curve.tpr], "auc": curve.auc}


def _forget_ratios(result: SuiteResult) -> np.ndarray:
    split = result.splits.get("forget")
    return split.qa.truth_ratios if split is not None and split.qa is not None else np.empty(0)


def _samples(results: dict[str, SuiteResult], count: int) -> list[dict[str, Any]]:
    forget = {label: r.splits.get("forget") for label, r in results.items()}
    first = next(iter(forget.values()))
    if first is None or count <= 0:
        return []
    out: list[dict[str, Any]] = []
    if first.qa is not None and first.qa.generations is not None:
        for index, item in enumerate(first.qa.items[:count]):
            row = {"document_id": item.document_id, "key": item.key, "question": item.question, "answer": item.answer}
            for label, split in forget.items():
                row[label] = split.qa.generations[index] if split and split.qa and split.qa.generations else None
            out.append(row)
    elif first.text is not None and first.text.continuations is not None:
        for index, item in enumerate(first.text.items[:count]):
            row = {"document_id": item.document_id, "key": item.key, "question": item.text[:160] + "…", "answer": None}
            for label, split in forget.items():
                row[label] = (
                    split.text.continuations[index] if split and split.text and split.text.continuations else None
                )
            out.append(row)
    return out


def compact_history(history: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Progress records reduced to step, loss and the quick forget / retain metrics."""
    out = []
    for record in history or []:
        if not isinstance(record, dict) or "step" not in record:
            continue
        row: dict[str, Any] = {
            "step": record["step"],
            "losses": {k: v for k, v in (record.get("losses") or {}).items() if isinstance(v, (int, float))},
        }
        if record.get("metrics"):
            row["metrics"] = {k: v for k, v in record["metrics"].items() if isinstance(v, (int, float))}
        out.append(row)
    return out


def build_audit(
    before_model: Any,
    after_model: Any,
    tokenizer: Any,
    *,
    forget: list[Any],
    retain: list[Any],
    holdout: list[Any] | None = None,
    reference_model: Any = None,
    history: list[dict[str, Any]] | None = None,
    config: AuditConfig | None = None,
    info: dict[str, Any] | None = None,
    tokenizers: dict[str, Any] | None = None,
    general: list[Any] | None = None,
) -> dict[str, Any]:
    """The audit of one forget operation, from the models and the document sets (JSON-ready).

    `general`: general-knowledge QA (`lethe.eval.general`) for a model fine-tuned from a
    pretrained base, scored before and after like any split.

    `forget`, `retain`, `holdout`: documents (ledger rows or dicts); `reference_model`: the
    exact-replay model if there is one; `info`: request and version descriptions copied in;
    `tokenizers`: a model's own tokenizer by label (`before`, `after`, `reference`) where it is
    not `tokenizer` (a retokenized replay). Per-token losses then count different tokens:
    compare such models on the answer-level metrics.
    """
    config = config or AuditConfig()
    started = time.perf_counter()
    splits = {"forget": forget, "retain": retain}
    if holdout:
        splits[HOLDOUT] = holdout
    if general:
        splits["general"] = general
    models = {"before": before_model, "after": after_model}
    if reference_model is not None:
        models["reference"] = reference_model
    own = tokenizers or {}
    results = {
        label: run_suite(model, own.get(label, tokenizer), splits, config.suite) for label, model in models.items()
    }
    metrics = {label: result.metrics for label, result in results.items()}
    audit: dict[str, Any] = {
        **(info or {}),
        "config": config.to_dict(),
        "counts": results["before"].meta()["counts"],
        "metrics": metrics,
        "changes": _changes(metrics["after"], metrics["before"]),
        "reference_comparison": None,
    }
    ratios = {label: _forget_ratios(result) for label, result in results.items()}
    audit["truth_ratios"] = {label: [round(float(r), 6) for r in values] for label, values in ratios.items()}
    if "reference" in results:
        distance = {
            split: {m: abs(v) for m, v in values.items()}
            for split, values in _changes(metrics["after"], metrics["reference"]).items()
        }
        headline = [d for split in distance.values() for m, d in split.items() if m in HEADLINE]
        comparison: dict[str, Any] = {
            "distance": distance,
            "mean_abs_distance": float(np.mean(headline)) if headline else None,
        }
        if ratios["after"].size and ratios["reference"].size:
            ks = tofu_math.forget_quality_test(ratios["after"], ratios["reference"])
            comparison["forget_quality_vs_reference"] = ks.pvalue
            comparison["ks_statistic"] = ks.statistic
        audit["reference_comparison"] = comparison
    audit["mia"] = _mia_section(results)
    audit["samples"] = _samples(results, config.samples)
    audit["history"] = compact_history(history)
    audit["seconds"] = round(time.perf_counter() - started, 3)
    return audit


def _mia_section(results: dict[str, SuiteResult]) -> dict[str, Any]:
    section: dict[str, Any] = {"aucs": {}, "roc": {}}
    for label, result in results.items():
        forget, holdout = result.splits.get("forget"), result.splits.get(HOLDOUT)
        section["aucs"][label] = {
            k[len("mia_auc_") :]: v for k, v in (forget.metrics if forget else {}).items() if k.startswith("mia_auc_")
        }
        if forget and holdout and forget.qa is not None and holdout.qa is not None:
            section["roc"][label] = _roc_dict(mia.roc_points(forget.qa.mia["loss"], holdout.qa.mia["loss"]))
    if "reference" in results:
        after, reference = section["aucs"].get("after", {}), section["aucs"].get("reference", {})
        section["privleak"] = {
            a: mia.privleak(after[a], reference[a]) for a in after if a in reference and reference[a] < 1.0
        }
    return section


REDACTED = "[erased]"


def redact_tokenizer_leak(leak: dict[str, Any] | None) -> dict[str, Any] | None:
    """A tokenizer leak record without its examples: the merges only the forgotten texts use
    are pieces of those texts (names, rare words)."""
    if not leak or not leak.get("examples"):
        return leak
    return {**leak, "examples": [REDACTED] * len(leak["examples"])}


def redact_samples(audit: dict[str, Any] | None) -> dict[str, Any] | None:
    """The audit with the forgotten documents' text removed from its samples (and from the
    tokenizer leak's examples), for after erasure.

    The sample questions, answers and model outputs quote the documents being forgotten; once
    they are erased, the ledger must not keep them in an audit either. Each sample keeps its
    document id and, per model, the token F1 and ROUGE-L recall of its output against the
    (now erased) answer, computed here before the text goes.
    """
    from lethe.eval.text import rouge_l_recall, token_f1

    if audit and audit.get("tokenizer"):
        audit = {**audit, "tokenizer": redact_tokenizer_leak(audit["tokenizer"])}
    if not audit or not audit.get("samples") or audit.get("samples_redacted"):
        return audit
    redacted = []
    for sample in audit["samples"]:
        row = {
            "document_id": sample.get("document_id"),
            "key": sample.get("key"),
            "question": REDACTED,
            "answer": REDACTED,
        }
        for label, output in sample.items():
            if label in ("document_id", "key", "question", "answer"):
                continue
            if isinstance(output, str) and sample.get("answer"):
                row[f"{label}_token_f1"] = token_f1(output, sample["answer"])
                row[f"{label}_rouge_l_recall"] = rouge_l_recall(output, sample["answer"])
            row[label] = REDACTED if output is not None else None
        redacted.append(row)
    return {**audit, "samples": redacted, "samples_redacted": True}
