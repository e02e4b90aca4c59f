"""Recompute TOFU's published statistics from its eval logs with lethe's own metric code.

A TOFU eval log (locuslab/tofu, `eval_results/ds_size300/eval_log_aggregated.json`) is one JSON
object with four splits, each mapping metric name -> {item index -> value}:

| key in the log                      | lethe split   | probability                 |
|-------------------------------------|---------------|-----------------------------|
| `eval_log.json`                     | retain        | mean exp(-avg_gt_loss)      |
| `eval_real_author_wo_options.json`  | real_authors  | normalised over the options |
| `eval_real_world_wo_options.json`   | world_facts   | normalised over the options |
| `eval_log_forget.json`              | forget        | mean exp(-avg_gt_loss)      |

Fields used: `avg_gt_loss`, `avg_paraphrased_loss`, `average_perturb_loss` (per-token NLLs),
`generated_text` ([prompt, generation, ground truth]) and, for checking only and when present,
the stored `rougeL_recall` and `truth_ratio`. ROUGE-L recall is recomputed from the generations; the
truth ratios, forget quality and model utility come from `lethe.eval.tofu_math`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lethe.errors import InputError, Where
from lethe.eval import tofu_math
from lethe.eval.text import rouge_l_recall

SPLITS: dict[str, str] = {
    "eval_log.json": "retain",
    "eval_real_author_wo_options.json": "real_authors",
    "eval_real_world_wo_options.json": "world_facts",
    "eval_log_forget.json": "forget",
}
UTILITY_SPLITS = ("retain", "real_authors", "world_facts")
OPTION_SPLITS = frozenset({"real_authors", "world_facts"})
_FIELDS = ("avg_gt_loss", "avg_paraphrased_loss", "average_perturb_loss", "generated_text")


@dataclass(frozen=True)
class SplitStats:
    """TOFU's three numbers for one split, plus how lethe's recomputation compares."""

    items: int
    probability: float
    rouge_l_recall: float
    truth_ratio: float  # mean(max(0, 1-R)), or mean(min(R, 1/R)) on the forget split
    # The checks below are None when the log does not store the field.
    rouge_l_recall_stored: float | None  # mean of the log's own rougeL_recall
    rouge_max_abs_diff: float | None  # over items: |lethe ROUGE-L recall - stored recall|
    truth_ratio_max_rel_diff: float | None  # over items: |R - stored R| / stored R


def load_tofu_log(path: Path) -> dict[str, dict[str, Any]]:
    """Read an aggregated TOFU eval log, checking that the four splits and fields are there."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            log = json.load(handle)
    except FileNotFoundError:
        raise InputError("no such file", Where(path=path)) from None
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON: {error.msg}", Where(path=path, line=error.lineno)) from None
    if not isinstance(log, dict):
        raise InputError("a TOFU eval log is a JSON object", Where(path=path))
    for key in SPLITS:
        if not isinstance(log.get(key), dict):
            raise InputError("missing split of a TOFU eval log", Where(path=path, field=key))
        for field in _FIELDS:
            if not isinstance(log[key].get(field), dict) or not log[key][field]:
                raise InputError("missing or empty field", Where(path=path, field=f"{key}.{field}"))
    return log


def _column(split_log: dict[str, Any], field: str, path: Path, key: str) -> list[Any]:
    values = split_log.get(field)
    if not isinstance(values, dict):
        raise InputError("missing field", Where(path=path, field=f"{key}.{field}"))
    try:
        return [values[index] for index in sorted(values, key=int)]
    except ValueError:
        raise InputError("item indices must be integers", Where(path=path, field=f"{key}.{field}")) from None


def _floats(split_log: dict[str, Any], field: str, path: Path, key: str) -> np.ndarray:
    """A field as a float array: one number per item, or equally long lists of numbers."""
    rows = _column(split_log, field, path, key)
    if len({len(row) if isinstance(row, list) else -1 for row in rows}) != 1:
        raise InputError("rows of unequal length", Where(path=path, field=f"{key}.{field}"))
    try:
        return np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("expected numbers", Where(path=path, field=f"{key}.{field}")) from None


def _split_stats(split_log: dict[str, Any], split: str, path: Path, key: str) -> tuple[SplitStats, np.ndarray]:
    """The statistics of one split and its per-item truth ratios R."""
    gt_loss = _floats(split_log, "avg_gt_loss", path, key)
    paraphrased = _floats(split_log, "avg_paraphrased_loss", path, key)
    perturbed = _floats(split_log, "average_perturb_loss", path, key)
    ratios = tofu_math.truth_ratio(paraphrased, perturbed)
    if gt_loss.shape != ratios.shape:
        raise InputError("fields cover different numbers of items", Where(path=path, field=key))

    if split in OPTION_SPLITS:
        probability = tofu_math.normalised_answer_probability(gt_loss, perturbed)
    else:
        probability = tofu_math.answer_probability(gt_loss)
    if split == "forget":
        truth_stat = tofu_math.truth_ratio_forget_stat(ratios)
    else:
        truth_stat = tofu_math.truth_ratio_stat(ratios)

    generations = _column(split_log, "generated_text", path, key)
    if len(generations) != ratios.size or any(
        not isinstance(g, list) or len(g) != 3 or not all(isinstance(t, str) for t in g) for g in generations
    ):
        raise InputError(
            "expected one [prompt, generation, answer] of strings per item",
            Where(path=path, field=f"{key}.generated_text"),
        )
    rouge = np.array([rouge_l_recall(generation, answer) for _, generation, answer in generations])

    # The stored ROUGE-L recall and truth ratios only serve as a check of lethe's numbers.
    rouge_stored = rouge_diff = ratio_diff = None
    if "rougeL_recall" in split_log:
        stored = _floats(split_log, "rougeL_recall", path, key)
        if stored.shape == rouge.shape:
            rouge_stored = float(stored.mean())
            rouge_diff = float(np.max(np.abs(rouge - stored)))
    if "truth_ratio" in split_log:
        stored = _floats(split_log, "truth_ratio", path, key)
        if stored.shape == ratios.shape and np.all(stored > 0):
            ratio_diff = float(np.max(np.abs(ratios - stored) / stored))

    stats = SplitStats(
        items=int(gt_loss.size),
        probability=probability,
        rouge_l_recall=float(rouge.mean()),
        truth_ratio=truth_stat,
        rouge_l_recall_stored=rouge_stored,
        rouge_max_abs_diff=rouge_diff,
        truth_ratio_max_rel_diff=ratio_diff,
    )
    return stats, ratios


def _model_summary(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    log = load_tofu_log(path)
    splits: dict[str, SplitStats] = {}
    forget_ratios = np.empty(0)
    for key, split in SPLITS.items():
        splits[split], ratios = _split_stats(log[key], split, path, key)
        if split == "forget":
            forget_ratios = ratios
    utility = tofu_math.model_utility(
        value
        for split in UTILITY_SPLITS
        for value in (
            splits[split].probability,
            splits[split].rouge_l_recall,
            splits[split].truth_ratio,
        )
    )
    summary = {
        "path": str(path),
        "model_utility": utility,
        "splits": {split: asdict(stats) for split, stats in splits.items()},
    }
    return summary, forget_ratios


def recompute_tofu_logs(full_path: Path, retain_path: Path) -> dict[str, Any]:
    """TOFU's table for a model's eval log (`full_path`) against a retain-only model's log.

    The first log may be any model judged against retraining (the model fine-tuned on all of
    TOFU, or an unlearned one). Returns plain JSON-ready data: per model the split statistics
    and model utility, and the forget quality (KS p-value and statistic) of the first model.
    """
    full, full_ratios = _model_summary(Path(full_path))
    retain, retain_ratios = _model_summary(Path(retain_path))
    ks = tofu_math.forget_quality_test(full_ratios, retain_ratios)
    return {
        "full": full,
        "retain": retain,
        "forget_quality": ks.pvalue,
        "ks_statistic": ks.statistic,
    }


def tofu_logs_command(full: Path, retain: Path) -> dict[str, Any]:
    """What `lethe eval tofu-logs FULL RETAIN` computes (print it with `render_tofu_logs`)."""
    return recompute_tofu_logs(full, retain)


def render_tofu_logs(result: dict[str, Any]) -> Any:
    """A rich Table of a `recompute_tofu_logs` result: one column per model."""
    from rich.table import Table

    table = Table(title=f"TOFU (forget quality {result['forget_quality']:.3g}, KS D = {result['ks_statistic']:.3f})")
    table.add_column("metric")
    models = ("full", "retain")
    for model in models:
        table.add_column(f"{model}: {Path(result[model]['path']).name}", justify="right")
    table.add_row("model utility", *(f"{result[m]['model_utility']:.4f}" for m in models))
    rows = (("probability", "prob."), ("rouge_l_recall", "ROUGE-L"), ("truth_ratio", "truth ratio"))
    for split in SPLITS.values():
        for field, label in rows:
            table.add_row(f"{label} {split}", *(f"{result[m]['splits'][split][field]:.4f}" for m in models))
    return table
