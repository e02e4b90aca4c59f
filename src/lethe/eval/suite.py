"""The standard evaluation suite of one model version on forget / retain / holdout sets.

For QA documents, per split (averages over the sampled items):

| metric | definition |
|---|---|
| `loss` | mean over items of the answer's mean token cross-entropy (nats) given the question |
| `token_accuracy` | teacher-forced: fraction of answer tokens equal to the argmax prediction |
| `extraction_strength` | 1 - (shortest answer prefix after which greedy decoding is exact) / length |
| `answer_probability` | mean exp(-loss): TOFU's length-normalised probability |
| `normalised_probability` | p(answer) / (p(answer) + sum p(perturbed)), items with perturbed answers |
| `exact_match`, `token_precision`, `token_recall`, `token_f1` | SQuAD-style, greedy answer vs answer |
| `rouge_l_recall` | TOFU's ROUGE-L recall of the greedy answer |
| `truth_ratio_stat` | mean max(0, 1 - R), R = P(perturbed)/P(paraphrased) (TOFU's utility form) |
| `truth_ratio_forget_stat` | mean min(R, 1/R) (TOFU's forget-set form; 1 = indifferent) |
| `mia_auc_<attack>` | ROC AUC of this split (members) vs the holdout split (non-members), for the LOSS, zlib, Min-K% and Min-K%++ scores; 1 = fully identifiable |

For text documents: `text_loss`, `exact_memorisation`, `text_extraction_strength`,
`verbatim_rouge` (ROUGE-L F1 of the greedy continuation) on the continuation after a
prefix, and `text_mia_auc_<attack>`.

It must be fast on a CPU: each split is a seeded sample of at most `max_items` items, forward
passes and generation are batched, greedy answers are capped at `max_new_tokens` (TOFU's
protocol uses 200; short synthetic answers need ~48).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from lethe.errors import InputError, Where
from lethe.eval import mia, tofu_math
from lethe.eval.item_scores import QAScores, ScoreSettings, TextScores, score_qa, score_text
from lethe.eval.items import split_items

BENCHMARK = "suite"
HOLDOUT = "holdout"
ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


@dataclass
class SuiteConfig:
    """How the standard suite samples and scores (recorded with every stored evaluation)."""

    max_items: int | None = 100
    """Items per split and kind (QA, text): a seeded sample when a split has more."""
    seed: int = 0
    """Seed of the per-split samples."""
    max_new_tokens: int = 64
    """Longest greedy answer, in tokens (TOFU's protocol: 200)."""
    batch_size: int = 16
    """Sequences per forward pass and per generation batch."""
    min_k: float = 0.2
    """The k of Min-K% and Min-K%++ (fraction of lowest-scoring tokens)."""
    system_prompt: str | None = None
    """System turn before each question: the one the model was trained with."""
    generate: bool = True
    """Generate greedy answers (exact match, F1, ROUGE); off = forward passes only."""
    text_prefix_tokens: int = 32
    """Tokens of a text document given as the prompt."""
    text_target_tokens: int = 48
    """Tokens of its continuation that memorisation is measured on."""
    answer_end: bool = True
    """Score QA answers with their closing token (end of turn, else EOS), as TOFU and
    open-unlearning do; False scores the answer text only."""
    bf16: bool = False
    """Run the models under bfloat16 autocast, output layer in float32 (audits turn it on for
    versions fine-tuned from a pretrained base)."""

    def replace(self, **changes: Any) -> SuiteConfig:
        """A copy with the given fields changed; `None` values mean "keep"."""
        values = asdict(self)
        values.update({k: v for k, v in changes.items() if v is not None})
        return SuiteConfig(**values)

    def settings(self) -> ScoreSettings:
        names = {f.name for f in fields(ScoreSettings)}
        return ScoreSettings(**{k: v for k, v in asdict(self).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SplitResult:
    """The per-item scores of one split, and its summary metrics."""

    qa: QAScores | None = None
    text: TextScores | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class SuiteResult:
    """`metrics` is `{split: {metric: value}}`, ready for `Ledger.add_evaluations`."""

    splits: dict[str, SplitResult]
    config: SuiteConfig
    seconds: float = 0.0

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return {name: split.metrics for name, split in self.splits.items()}

    def meta(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "seconds": round(self.seconds, 3),
            "counts": {name: split.counts for name, split in self.splits.items()},
        }


def _mean(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None


def summarise_qa(scores: QAScores) -> dict[str, float]:
    """The split-level QA metrics of per-item scores (see the module docstring)."""
    out: dict[str, float | None] = {
        "items": float(len(scores.items)),
        "loss": _mean(scores.loss),
        "token_accuracy": _mean(scores.token_accuracy),
        "extraction_strength": _mean(scores.extraction_strength),
        "answer_probability": tofu_math.answer_probability(scores.loss) if len(scores.loss) else None,
        "normalised_probability": _mean(scores.normalised_probability),
    }
    for name, values in scores.overlap.items():
        out[name] = _mean(values)
    ratios = scores.truth_ratios
    if ratios.size:
        out["truth_ratio_stat"] = tofu_math.truth_ratio_stat(ratios)
        out["truth_ratio_forget_stat"] = tofu_math.truth_ratio_forget_stat(ratios)
    return {k: v for k, v in out.items() if v is not None}


def summarise_text(scores: TextScores) -> dict[str, float]:
    """The split-level memorisation metrics of text items."""
    out = {
        "text_items": float(len(scores.items)),
        "text_loss": _mean(scores.loss),
        "exact_memorisation": _mean(scores.exact_memorisation),
        "text_extraction_strength": _mean(scores.extraction_strength),
        "verbatim_rouge": _mean(scores.verbatim_rouge),
    }
    return {k: v for k, v in out.items() if v is not None}


def membership_aucs(
    members: dict[str, list[float]], non_members: dict[str, list[float]], prefix: str = "mia_auc_"
) -> dict[str, float]:
    """AUC per attack of members vs non-members (attacks both sides scored)."""
    return {
        f"{prefix}{attack}": mia.membership_auc(members[attack], non_members[attack])
        for attack in ATTACKS
        if members.get(attack) and non_members.get(attack)
    }


def run_suite(
    model: Any, tokenizer: Any, splits: dict[str, Any], config: SuiteConfig | None = None, *, holdout: str = HOLDOUT
) -> SuiteResult:
    """Score `{split name: documents}` (ledger rows or dicts) and summarise each split.

    The split named `holdout` (never trained) provides the non-members of the membership
    AUCs of every other split. Splits are sampled independently with the same seed.
    """
    config = config or SuiteConfig()
    settings = config.settings()
    started = time.perf_counter()
    results: dict[str, SplitResult] = {}
    for name, documents in splits.items():
        items = split_items(documents, config.max_items, config.seed)
        split = SplitResult(
            counts={
                "qa": len(items.qa),
                "text": len(items.text),
                "qa_total": items.total_qa,
                "text_total": items.total_text,
                "erased": items.erased,
            }
        )
        if items.qa:
            split.qa = score_qa(model, tokenizer, items.qa, settings)
            split.metrics.update(summarise_qa(split.qa))
        if items.text:
            split.text = score_text(model, tokenizer, items.text, settings)
            split.metrics.update(summarise_text(split.text))
        results[name] = split
    reference = results.get(holdout)
    if reference is not None:
        for name, split in results.items():
            if name == holdout:
                continue
            if split.qa is not None and reference.qa is not None:
                split.metrics.update(membership_aucs(split.qa.mia, reference.qa.mia))
            if split.text is not None and reference.text is not None:
                split.metrics.update(membership_aucs(split.text.mia, reference.text.mia, "text_mia_auc_"))
    return SuiteResult(splits=results, config=config, seconds=time.perf_counter() - started)


# ------------------------------------------------------------------------ one model version


def version_path(workspace: Any, version: Any) -> Path:
    """The directory of a version's weights (relative paths are under the workspace home)."""
    path = Path(version.path)
    return path if path.is_absolute() else Path(workspace.home) / path


def default_splits(ledger: Any, version: Any) -> dict[str, str | list[int]]:
    """Splits when none are named: the documents the version trained on as `retain`, and the
    never-trained documents of every collection named like `*holdout*` as `holdout`."""
    seen = ledger.documents_seen(version.id)
    splits: dict[str, str | list[int]] = {"retain": seen}
    known, seen_set = set(), set(seen)
    for collection, _ in ledger.collections():
        if "holdout" in collection.name:
            known.update(i for i in ledger.collection_ids(collection.name) if i not in seen_set)
    if known:
        splits[HOLDOUT] = sorted(known)
    return splits


def load_split_documents(ledger: Any, spec: str | list[int]) -> list[Any]:
    """The documents of a collection name or a list of document ids."""
    ids = ledger.collection_ids(spec) if isinstance(spec, str) else list(spec)
    return ledger.documents(ids) if ids else []


def evaluate_version(
    workspace: Any,
    version_ref: str | int,
    *,
    forget: str | None = None,
    retain: str | None = None,
    holdout: str | None = None,
    config: SuiteConfig | None = None,
    store: bool = True,
    allow_tainted: bool = False,
    request_id: int | None = None,
) -> dict[str, Any]:
    """Run the suite on a model version over ledger collections; store it as benchmark `suite`.

    Returns JSON-ready `{version, version_id, benchmark, metrics: {split: {metric: value}},
    collections, meta}`. An eval run is recorded in the ledger with the config and timing.
    """
    from lethe.model.io import load_version

    config = config or SuiteConfig()
    ledger = workspace.ledger
    version = ledger.resolve_version(version_ref, allow_tainted=allow_tainted)
    named = {k: v for k, v in (("forget", forget), ("retain", retain), (HOLDOUT, holdout)) if v}
    specs: dict[str, str | list[int]] = dict(named) if named else default_splits(ledger, version)
    if not specs:
        raise InputError("nothing to evaluate: name --forget, --retain or --holdout", Where(field="splits"))
    documents = {name: load_split_documents(ledger, spec) for name, spec in specs.items()}
    if not any(documents.values()):
        raise InputError(
            f"no documents to evaluate {version.name} on (splits: {', '.join(specs)}); name collections "
            "with --forget, --retain or --holdout",
            Where(field="splits"),
        )
    model, tokenizer = load_version(version_path(workspace, version))
    described = {name: spec if isinstance(spec, str) else f"{len(spec)} documents" for name, spec in specs.items()}
    run_id = ledger.start_run(
        "eval",
        parent_version_id=version.id,
        lineage_id=version.lineage_id,
        config={"benchmark": BENCHMARK, "splits": described, **config.to_dict()},
        seed=config.seed,
    )
    try:
        result = run_suite(model, tokenizer, documents, config)
    except BaseException as error:
        ledger.finish_run(run_id, "failed", error=str(error))
        raise
    meta = {**result.meta(), "collections": described}
    ledger.finish_run(run_id, metrics={"seconds": result.seconds})
    if store:
        ledger.add_evaluations(version.id, BENCHMARK, result.metrics, run_id=run_id, request_id=request_id, meta=meta)
    return {
        "version": version.name,
        "version_id": version.id,
        "benchmark": BENCHMARK,
        "run_id": run_id,
        "stored": store,
        "metrics": result.metrics,
        "collections": described,
        "meta": meta,
    }


def render_suite(result: dict[str, Any]) -> Any:
    """A rich Table of an `evaluate_version` result: one row per metric, one column per split."""
    from rich.table import Table

    metrics: dict[str, dict[str, float]] = result["metrics"]
    table = Table(title=f"{result['version']}: {result['benchmark']} ({result['meta'].get('seconds', 0):.1f} s)")
    table.add_column("metric")
    for split in metrics:
        table.add_column(f"{split}\n{result['collections'].get(split, '')}", justify="right")
    names = list(dict.fromkeys(name for values in metrics.values() for name in values))
    for name in names:
        cells = []
        for values in metrics.values():
            value = values.get(name)
            cells.append("" if value is None else (f"{value:.0f}" if name.endswith("items") else f"{value:.4f}"))
        table.add_row(name, *cells)
    return table
