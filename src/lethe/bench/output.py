"""A benchmark's results: one row per model, written as JSON, Markdown and CSV, with plots.

Rows come from evaluation records (`lethe.eval.tofu.evaluation_record`) compared with the
reference model's record (the retain model, or the exact replay): forget quality, model
utility, TOFU's per-split numbers, membership AUCs and PrivLeak, and the unlearning cost.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from lethe.eval.tofu import compare_records
from lethe.eval.tofu_math import model_utility
from lethe.report import plots
from lethe.report.robustness import robustness_markdown

COLUMNS = (
    ("model", "model"),
    ("role", "role"),
    ("forget_quality", "forget quality"),
    ("model_utility", "model utility"),
    ("retain_utility", "retain utility"),
    ("forget_rouge_l_recall", "forget ROUGE-L"),
    ("forget_probability", "forget prob."),
    ("forget_truth_ratio", "forget TR"),
    ("forget_exact_match", "forget EM"),
    ("retain_rouge_l_recall", "retain ROUGE-L"),
    ("retain_probability", "retain prob."),
    ("retain_exact_match", "retain EM"),
    ("real_authors_rouge_l_recall", "real auth. ROUGE-L"),
    ("world_facts_rouge_l_recall", "world facts ROUGE-L"),
    ("mia_auc_loss", "MIA AUC loss"),
    ("mia_auc_min_k_plus_plus", "MIA AUC Min-K%++"),
    ("privleak_loss", "PrivLeak loss (%)"),
    ("unlearn_seconds", "unlearn s"),
    ("steps", "steps"),
    ("eval_seconds", "eval s"),
)


def model_row(
    label: str, role: str, record: dict[str, Any], reference: dict[str, Any] | None, model: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The table row of one model."""
    row: dict[str, Any] = {"model": label, "role": role, "model_utility": record.get("model_utility")}
    for split, numbers in (record.get("numbers") or {}).items():
        for name, value in numbers.items():
            if name != "items":
                row[f"{split}_{name}"] = value
    retain = (record.get("numbers") or {}).get("retain", {})
    if all(retain.get(k) is not None for k in ("probability", "rouge_l_recall", "truth_ratio")):
        # TOFU's utility without real authors and world facts, which a model trained from
        # scratch on TOFU alone cannot know (their ROUGE-L ~0 pulls the 9-number mean to ~0)
        row["retain_utility"] = model_utility([retain["probability"], retain["rouge_l_recall"], retain["truth_ratio"]])
    row.update({k: v for k, v in (record.get("extra") or {}).items()})
    if reference is not None:
        if reference is record:
            row["forget_quality"] = 1.0
        else:
            row.update(compare_records(record, reference))
    row["eval_seconds"] = record.get("seconds")
    if model is not None and role == "method":
        row["unlearn_seconds"] = model.get("seconds")
        row["steps"] = model.get("steps")
    return row


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
            return f"{value:.2e}"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown(rows: list[dict[str, Any]], columns: tuple = COLUMNS) -> str:
    present = [(k, h) for k, h in columns if any(r.get(k) is not None for r in rows)]
    lines = [
        "| " + " | ".join(h for _, h in present) + " |",
        "|" + "|".join("---" if k in ("model", "role") else "---:" for k, _ in present) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(k)) for k, _ in present) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in keys})
    return buffer.getvalue()


def make_plots(
    out: Path,
    rows: list[dict[str, Any]],
    records: dict[str, dict[str, Any]],
    models: dict[str, dict[str, Any]],
    reference_label: str,
    title: str,
) -> list[str]:
    """tradeoff, truth-ratio histograms, ROC, loss curves and metric bars; returns file names."""
    from lethe.eval.mia import roc_points

    written = []
    methods = [r for r in rows if r["role"] == "method"]
    target = next((r for r in rows if r["role"] == "target"), None)
    reference = next((r for r in rows if r["role"] == "reference"), None)
    for key, name, suffix in (
        ("model_utility", "model utility (9 numbers)", ""),
        ("retain_utility", "retain utility (3 numbers)", "_retain"),
    ):
        if not any(r.get(key) is not None for r in rows):
            continue
        fig = plots.tradeoff(
            [
                {"method": r["model"], "forget_quality": r.get("forget_quality"), "model_utility": r.get(key)}
                for r in methods
            ],
            retain=reference and {"model_utility": reference.get(key), "forget_quality": 1.0},
            target=target and {"model_utility": target.get(key), "forget_quality": target.get("forget_quality")},
            title=f"{title}: forget quality vs {name}",
            utility_label=name,
        )
        written.append(plots.save_png(fig, out / f"tradeoff{suffix}.png").name)
    ratios = {label: rec.get("forget_truth_ratios") or [] for label, rec in records.items()}
    written.append(
        plots.save_png(
            plots.truth_ratio_histograms(ratios, title=f"{title}: forget-set truth ratios"), out / "truth_ratios.png"
        ).name
    )
    curves = {}
    for label, rec in records.items():
        mia = rec.get("mia") or {}
        if mia.get("forget", {}).get("loss") and mia.get("holdout", {}).get("loss"):
            curves[label] = roc_points(mia["forget"]["loss"], mia["holdout"]["loss"])
    if curves:
        written.append(
            plots.save_png(
                plots.roc(curves, title=f"{title}: MIA (LOSS) forget vs never-trained"), out / "mia_roc.png"
            ).name
        )
    histories = {label: m.get("history") for label, m in models.items() if m.get("history")}
    if histories:
        written.append(plots.save_png(plots.loss_curves(histories, title=title), out / "loss_curves.png").name)
    for split in ("forget", "retain"):
        keys = [f"{split}_{k}" for k in ("probability", "rouge_l_recall", "truth_ratio", "exact_match", "loss")]
        if split == "forget":
            keys += ["mia_auc_loss"]
        series = {r["model"]: {k.removeprefix(f"{split}_"): r.get(k) for k in keys} for r in rows}
        written.append(
            plots.save_png(plots.metric_bars(series, title=f"{title}: {split} set"), out / f"bars_{split}.png").name
        )
    return written


def write_results(out: Path, result: dict[str, Any]) -> dict[str, str]:
    """results.json, results.md, results.csv in `out`; returns their paths. The files name no
    machine's directories: paths under the user's workspace (`result["home"]`) are written as
    `$LETHE_HOME/...`, under the working directory relative to it (`portable_paths`)."""
    from lethe.workspace import portable_paths

    files = {kind: str(out / f"results.{kind}") for kind in ("json", "md", "csv")}
    result = portable_paths({**result, "files": files}, home=result.get("home"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    (out / "results.md").write_text(render_markdown(result), encoding="utf-8")
    (out / "results.csv").write_text(csv_text(result["rows"]), encoding="utf-8")
    return files


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# {result['benchmark']} benchmark",
        "",
        (
            f"configuration hash `{result['config_hash']}` · code `{result['code_version']}` · "
            f"finished {result.get('finished_at', '?')} · total {result.get('total_seconds', 0):.0f} s"
        ),
        "",
        markdown(result["rows"]),
        "",
        *robustness_markdown(result.get("robustness"), fmt),
        "## Stages (wall time)",
        "",
        "| stage | status | seconds |",
        "|---|---|---:|",
    ]
    for stage in result.get("stages", []):
        lines.append(f"| {stage['stage']} | {stage['status']} | {stage['seconds']:.1f} |")
    lines += ["", "## Configuration", "", "```json", json.dumps(result["config"], indent=2, default=str), "```", ""]
    return "\n".join(lines)
