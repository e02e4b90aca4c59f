"""`lethe bench synth | tofu --tune METHODS`: each method tuned on calibration subjects, then
run with its chosen settings on the real forget set, and the goal table of issue #12.

The calibration subjects are other trained entities (synth) or authors (TOFU) than the
forgotten ones, drawn seeded and matched to the request: for each forgotten subject one of the
same kind (`person/…`, `place/…`) with the nearest number of documents, so a calibration draw
forgets what the request forgets, in the same amount. With `draws` > 1 there are several such
draws, disjoint, each with its own exact answer, and every trial is judged on all of them
pooled (`lethe.forget.tuning.run_draws`). Their exact answer is a stage like any other (a replay of the
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


def kind_of(subject: str) -> str:
    """`person/0007` -> `person`; `author/12` -> `author`."""
    return subject.rsplit("/", 1)[0] if "/" in subject else ""


def choose_subjects(
    candidates: dict[str, list[int]],
    k: int,
    seed: int,
    *,
    request: dict[str, list[int]] | None = None,
    draws: int = 1,
) -> list[list[str]]:
    """`draws` disjoint calibration draws of `k` subjects each from `candidates` (subject ->
    trained ids), seeded. With `request` (the forgotten subjects and their ids) the i-th
    subject of a draw matches the request's i-th (cycling): the same kind, and among those the
    nearest document count (ties broken by the seeded shuffle); without it, drawn uniformly."""
    names = sorted(name for name, ids in candidates.items() if ids)
    if draws < 1:
        raise InputError("--calibration-draws must be at least 1", Where(field="calibration_draws"))
    if k < 1 or k * draws >= len(names):
        raise InputError(
            f"--calibration {k} x {draws} draw(s): choose fewer than the {len(names)} other trained subjects",
            Where(field="calibration"),
        )
    rng = random.Random(f"calibration-{seed}")
    if not request:
        picked = rng.sample(names, k * draws)
        return [sorted(picked[d * k : (d + 1) * k]) for d in range(draws)]
    order = list(names)
    rng.shuffle(order)  # the tie-break among equally near subjects
    templates = sorted(request)
    taken: set[str] = set()
    out = []
    for _ in range(draws):
        chosen = []
        for i in range(k):
            template = templates[i % len(templates)]
            size = len(request[template])
            same_kind = [n for n in order if n not in taken and kind_of(n) == kind_of(template)]
            if not same_kind:
                raise InputError(
                    f"--calibration {k} x {draws} draw(s): no trained {kind_of(template) or 'subject'} is left to "
                    f"match {template} (fewer draws or subjects)",
                    Where(field="calibration"),
                )
            best = min(same_kind, key=lambda n: abs(len(candidates[n]) - size))  # first of the nearest: seeded
            taken.add(best)
            chosen.append(best)
        out.append(sorted(chosen))
    return out


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
    request: dict[str, list[int]] | None = None,
    draws: int = 1,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Tune every method; returns ({"<method>+tuned": unlearned model record}, tuning part
    of the results: calibration, one study summary per method). `request` (forgotten subject
    -> ids) makes the draws match it in kind and size; `draws` calibration draws are pooled."""
    from lethe.data.tokenizer import load_tokenizer
    from lethe.eval.tofu import TofuEvalConfig
    from lethe.forget.tuning import TRIAL_PROTOCOL, TuningProblem, exact_references, tune_method, warm_start
    from lethe.forget.tuning_space import space_signature, start_point
    from lethe.train.config import TrainConfig

    ledger = ctx.ledger
    forgotten = set(forget_ids)
    others = {name: ids for name, ids in subjects.items() if not set(ids) & forgotten}
    chosen_draws = choose_subjects(others, calibration, seed, request=request, draws=draws)
    draw_ids = [sorted({i for name in chosen for i in others[name]}) for chosen in chosen_draws]
    all_ids = sorted({i for ids in draw_ids for i in ids})
    assert not set(all_ids) & forgotten  # disjoint from the real request, by construction
    for d, (chosen, ids) in enumerate(zip(chosen_draws, draw_ids, strict=True)):
        ctx.progress(
            f"calibration draw {d + 1}/{len(chosen_draws)} (not the forgotten subjects): {', '.join(chosen)} "
            f"({len(ids)} documents"
            + (f"; the request: {', '.join(sorted(request))}, {len(forget_ids)} documents)" if request else ")")
        )
    tokenizer = load_tokenizer(model_path(ctx, target))
    train_config = TrainConfig.from_dict(train_settings)
    sample = [i for i in retain_ids if i not in set(all_ids)]  # retained by every draw's exact answer
    random.Random(seed).shuffle(sample)
    retain_docs = ledger.documents(sorted(sample[:2000]))
    qa_retain = [d for d in retain_docs if d.kind == "qa"]
    retain_examples = examples_for(retain_docs, tokenizer, train_config)
    trial_eval = TofuEvalConfig(
        **{**eval_config.to_dict(), "max_items": min(eval_config.max_items or 100, 60), "max_new_tokens": 48}
    )
    fixed = {k: v for k, v in unlearn_settings.items() if k not in ("lr", "epochs", "retain_batch_size")}
    problems, rows = [], []
    for chosen, ids in zip(chosen_draws, draw_ids, strict=True):
        exact = exact_without(ids)
        row = ledger.tuning_calibration(target["version_id"], ids)
        if row is None:
            row = ledger.add_tuning_calibration(
                version_id=target["version_id"],
                subjects=chosen,
                document_ids=ids,
                exact_version_id=exact["version_id"],
                seconds=exact["seconds"],
                meta={"benchmark": True},
            )
        rows.append(row)
        docs = ledger.documents(ids)
        problems.append(
            TuningProblem(
                target_path=model_path(ctx, target),
                exact_path=model_path(ctx, exact),
                exact_seconds=exact["seconds"],
                forget_examples=examples_for(docs, tokenizer, train_config),
                retain_examples=retain_examples,
                forget_documents=[d for d in docs if d.kind == "qa"],
                retain_documents=qa_retain,
                eval_config=trial_eval,
                examples_of=lambda documents, t: examples_for(documents, t, train_config),
                fixed=fixed,
                subjects=chosen,
            )
        )
    started = time.perf_counter()
    references = exact_references(problems, settings)
    reference_seconds = time.perf_counter() - started
    studies, models = {}, {}
    calibration_key = [row.id for row in rows]
    for method in methods:
        name = (
            "bench-"
            + config_hash(
                {
                    "method": method,
                    "space": space_signature(method, fixed),
                    "protocol": TRIAL_PROTOCOL,
                    "calibration": calibration_key[0] if draws == 1 else calibration_key,
                    **({} if settings.objective == "pooled" else {"objective": settings.objective}),
                    **key_material,
                }
            )[:12]
            + f"-{method}"
        )
        began = time.perf_counter()
        summary = tune_method(
            ledger,
            method,
            problems,
            settings,
            study_name=name,
            calibration_id=rows[0].id,
            lineage_id=target.get("lineage_id"),
            progress=ctx.progress,
            reference=references,
            start=start_point(unlearn_settings),
            warm=warm_start(
                ledger,
                method,
                rows[0].id,
                name,
                [asked[1] for asked in space_signature(method, fixed)],
                settings,
            ),
        )
        summary["wall_seconds"] = round(time.perf_counter() - began, 2)  # trials, their evaluations, the probes
        studies[method] = summary
        ctx.stages.append(
            {"stage": f"tune {method}", "status": "computed", "seconds": summary["wall_seconds"], "key": name}
        )
        if summary["best"] is None:
            continue
        tuned = {**unlearn_settings, **summary["best"]["params"]}
        models[method + TUNED] = unlearn_stage(
            ctx, method, target, forget_ids, retain_ids, tuned, train_settings, key_material
        )
    part = {
        "calibration": {
            "subjects": [s for chosen in chosen_draws for s in chosen],
            "documents": len(all_ids),
            "qa_items": sum(len(p.forget_documents) for p in problems),
            "disjoint_from_forget_set": not set(all_ids) & forgotten,
            "exact_seconds": sum(p.exact_seconds for p in problems),
            "reference_eval_seconds": reference_seconds,
            "matched_to_request": bool(request),
            "request": {name: len(ids) for name, ids in sorted((request or {}).items())},
            "draws": [
                {
                    "subjects": chosen,
                    "documents": len(ids),
                    "qa_items": len(p.forget_documents),
                    "exact_seconds": p.exact_seconds,
                    "sizes": {n: len(others[n]) for n in chosen},
                }
                for chosen, ids, p in zip(chosen_draws, draw_ids, problems, strict=True)
            ],
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
        study_seconds = study.get("wall_seconds", study["tuning_seconds"])  # older results: unlearning time only
        cost = study_seconds + (tuning["calibration"]["exact_seconds"] or 0.0)
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
                "slow": sum(t["state"] == "slow" for t in study["trials"]),
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
    """The `TuneSettings` of a benchmark configuration's tune_* fields. `--no-robustness`
    also leaves out the tuner's own attacks (on the exact model and on the finalists)."""
    from lethe.forget.tuning import TuneSettings

    return TuneSettings(
        robustness=bool(getattr(config, "robustness", True)),
        trials=config.tune_trials,
        budget=config.tune_budget,
        utility_fraction=config.tune_utility_fraction,
        seed=config.seed,
        finalists=config.tune_finalists,
        time_fraction=getattr(config, "tune_time_fraction", None),
        objective=getattr(config, "tune_objective", "pooled"),
    )
