"""`lethe bench synth | tofu --tune METHODS`: each method tuned on calibration subjects, then
run with its chosen settings on the real forget set, and the goal table of issue #12.

The calibration subjects are other trained entities (synth) or authors (TOFU) than the
forgotten ones, drawn seeded; their exact answer is a stage like any other (a replay of the
target's lineage without them for synth, a model trained without them for TOFU, as TOFU's
reference is a retrained model), cached by the bench cache and recorded as the ledger's
tuning calibration. The studies (`lethe.forget.tuning`) live in the bench ledger, so
`lethe --home <bench workspace> tune ls` shows them. Each tuned method becomes a model
`<method>+tuned` of the benchmark: evaluated, attacked and plotted like the others.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lethe.bench.cache import config_hash
from lethe.bench.runner import BenchContext, examples_for, model_path, unlearn_stage
from lethe.errors import InputError, Where

TUNED = "+tuned"


def choose_subjects(candidates: dict[str, list[int]], k: int, seed: int) -> list[str]:
    """`k` calibration subjects drawn (seeded) from `candidates` (subject -> trained ids)."""
    names = sorted(name for name, ids in candidates.items() if ids)
    if k < 1 or k >= len(names):
        raise InputError(
            f"--calibration {k}: choose between 1 and {len(names) - 1} of the {len(names)} other trained subjects",
            Where(field="calibration"),
        )
    return sorted(random.Random(f"calibration-{seed}").sample(names, k))


def bench_tune(
    ctx: BenchContext,
    *,
    methods: list[str],
    target: dict[str, Any],
    subjects: dict[str, list[int]],
    forget_ids: list[int],
    retain_ids: list[int],
    calibration: int,
    exact_without: Callable[[list[int]], dict[str, Any]],
    unlearn_settings: dict[str, Any],
    train_settings: dict[str, Any],
    eval_config: Any,
    key_material: dict[str, Any],
    settings: Any,
    seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Tune every method; returns ({"<method>+tuned": unlearned model record}, tuning part
    of the results: calibration, one study summary per method)."""
    from lethe.data.tokenizer import load_tokenizer
    from lethe.eval.tofu import TofuEvalConfig
    from lethe.forget.tuning import TuningProblem, exact_reference, tune_method
    from lethe.train.config import TrainConfig

    ledger = ctx.ledger
    forgotten = set(forget_ids)
    others = {name: ids for name, ids in subjects.items() if not set(ids) & forgotten}
    chosen = choose_subjects(others, calibration, seed)
    calibration_ids = sorted({i for name in chosen for i in others[name]})
    assert not set(calibration_ids) & forgotten  # disjoint from the real request, by construction
    ctx.progress(
        f"calibration subjects (not the forgotten ones): {', '.join(chosen)} ({len(calibration_ids)} documents)"
    )
    exact = exact_without(calibration_ids)
    row = ledger.tuning_calibration(target["version_id"], calibration_ids)
    if row is None:
        row = ledger.add_tuning_calibration(
            version_id=target["version_id"],
            subjects=chosen,
            document_ids=calibration_ids,
            exact_version_id=exact["version_id"],
            seconds=exact["seconds"],
            meta={"benchmark": True},
        )
    tokenizer = load_tokenizer(model_path(ctx, target))
    train_config = TrainConfig.from_dict(train_settings)
    calibration_docs = ledger.documents(calibration_ids)
    kept_retain = [i for i in retain_ids if i not in set(calibration_ids)]
    sample = list(kept_retain)
    random.Random(seed).shuffle(sample)
    retain_docs = ledger.documents(sorted(sample[:2000]))
    qa_retain = [d for d in retain_docs if d.kind == "qa"]
    trial_eval = TofuEvalConfig(
        **{**eval_config.to_dict(), "max_items": min(eval_config.max_items or 100, 60), "max_new_tokens": 48}
    )
    problem = TuningProblem(
        target_path=model_path(ctx, target),
        exact_path=model_path(ctx, exact),
        exact_seconds=exact["seconds"],
        forget_examples=examples_for(calibration_docs, tokenizer, train_config),
        retain_examples=examples_for(retain_docs, tokenizer, train_config),
        forget_documents=[d for d in calibration_docs if d.kind == "qa"],
        retain_documents=qa_retain,
        eval_config=trial_eval,
        examples_of=lambda documents, t: examples_for(documents, t, train_config),
        fixed={k: v for k, v in unlearn_settings.items() if k not in ("lr", "epochs", "retain_batch_size")},
        subjects=chosen,
    )
    started = time.perf_counter()
    reference = exact_reference(problem, settings)
    reference_seconds = time.perf_counter() - started
    studies, models = {}, {}
    for method in methods:
        name = "bench-" + config_hash({"method": method, "calibration": row.id, **key_material})[:12] + f"-{method}"
        summary = tune_method(
            ledger,
            method,
            problem,
            settings,
            study_name=name,
            calibration_id=row.id,
            lineage_id=target.get("lineage_id"),
            progress=ctx.progress,
            reference=reference,
        )
        studies[method] = summary
        ctx.stages.append(
            {"stage": f"tune {method}", "status": "computed", "seconds": summary["tuning_seconds"], "key": name}
        )
        if summary["best"] is None:
            continue
        tuned = {**unlearn_settings, **summary["best"]["params"]}
        models[method + TUNED] = unlearn_stage(
            ctx, method, target, forget_ids, retain_ids, tuned, train_settings, key_material
        )
    part = {
        "calibration": {
            "subjects": chosen,
            "documents": len(calibration_ids),
            "disjoint_from_forget_set": not set(calibration_ids) & forgotten,
            "exact_seconds": exact["seconds"],
            "reference_eval_seconds": reference_seconds,
        },
        "settings": {k: v for k, v in vars(settings).items()},
        "studies": studies,
    }
    return models, part


def goal_rows(result: dict[str, Any], exact_seconds: float, utility_key: str) -> list[dict[str, Any]]:
    """Per tuned method: forget quality vs exact, utility as a fraction of exact's, wall time
    as a fraction of the exact replay's, tuning cost and the requests that amortise it, and
    the relearning / quantisation probes against the exact model's."""
    tuning = result.get("tuning") or {}
    rows = {row["model"]: row for row in result["rows"]}
    reference = next(row for row in result["rows"] if row["role"] == "reference")
    probes = (result.get("robustness") or {}).get("probes", {})
    reference_label = reference["model"]
    out = []
    for method, study in (tuning.get("studies") or {}).items():
        label = method + TUNED
        row = rows.get(label)
        if row is None:
            continue
        untuned = rows.get(method, {})
        utility = row.get(utility_key)
        exact_utility = reference.get(utility_key)
        seconds = row.get("unlearn_seconds") or 0.0
        saved = exact_seconds - seconds
        cost = study["tuning_seconds"] + (tuning["calibration"]["exact_seconds"] or 0.0)
        gaps = {}
        for probe in ("relearning", "quantisation"):
            for variant, by_label in probes.get(probe, {}).items():
                mine, exact = by_label.get(label, {}), by_label.get(reference_label, {})
                if "token_accuracy" in mine and "token_accuracy" in exact:
                    gaps[f"{probe}/{variant}"] = mine["token_accuracy"] - exact["token_accuracy"]
        margin = (tuning.get("settings") or {}).get("robustness_margin", 0.05)
        fraction = utility / exact_utility if utility is not None and exact_utility else None
        checks = {
            "forget_quality": (row.get("forget_quality") or 0) >= 0.9,
            "utility": fraction is not None and fraction >= 0.97,
            "time": exact_seconds > 0 and seconds <= 0.1 * exact_seconds,
            "robustness": bool(gaps) and max(gaps.values()) <= margin,
        }
        out.append(
            {
                "method": method,
                "trials": len(study["trials"]),
                "pruned": sum(t["state"] == "pruned" for t in study["trials"]),
                "params": (study.get("best") or {}).get("params"),
                "calibration_forget_quality": (study.get("best") or {}).get("forget_quality"),
                "forget_quality": row.get("forget_quality"),
                "untuned_forget_quality": untuned.get("forget_quality"),
                "utility_fraction": fraction,
                "untuned_utility_fraction": (
                    untuned.get(utility_key) / exact_utility if untuned.get(utility_key) and exact_utility else None
                ),
                "seconds": seconds,
                "time_fraction": seconds / exact_seconds if exact_seconds else None,
                "exact_seconds": exact_seconds,
                "tuning_seconds": cost,
                "amortised_after": (cost / saved) if saved > 0 else None,
                "probe_gap_max": max(gaps.values()) if gaps else None,
                "probe_gaps": gaps,
                "checks": checks,
                "goal_met": all(checks.values()),
            }
        )
    return out


def save_pareto(out: Path, tuning: dict[str, Any], title: str) -> str:
    from lethe.report.plots import save_png
    from lethe.report.tuning import pareto_figure

    return str(save_png(pareto_figure(list(tuning["studies"].values()), title=title), out / "pareto.png"))


def finish_tuning(out: Path, result: dict[str, Any], exact_seconds: float, utility_key: str, title: str) -> None:
    """Add the goal table and the Pareto chart to a finished benchmark's results (rewritten)."""
    from lethe.bench.output import write_results

    tuning = result.get("tuning")
    if not tuning:
        return
    tuning["utility_key"] = utility_key
    tuning["goal"] = goal_rows(result, exact_seconds, utility_key)
    tuning["figure"] = save_pareto(out, tuning, f"{title}: tuning against the exact answer")
    result["plots"] = [*result.get("plots", []), tuning["figure"]]
    result["files"] = write_results(out, result)


def tune_settings(config: Any) -> Any:
    """The `TuneSettings` of a benchmark configuration's tune_* fields."""
    from lethe.forget.tuning import TuneSettings

    return TuneSettings(
        trials=config.tune_trials,
        budget=config.tune_budget,
        utility_fraction=config.tune_utility_fraction,
        seed=config.seed,
        finalists=config.tune_finalists,
    )
