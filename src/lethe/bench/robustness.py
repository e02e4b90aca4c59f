"""The robustness suite inside `lethe bench tofu | synth`: every model under the same attacks.

Each model (the target, the reference — retain model or exact replay — and every method's
candidate) is attacked on its own, with the same seed, so each is one cached stage; rows go
to the bench ledger as benchmark ``robustness`` like any evaluation. The result has the
shape `run_robustness` returns (``probes: {probe: {variant: {label: metrics}}}``) plus
``roles``, and `robustness.png` is its grouped bar chart.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lethe.bench.runner import BenchContext, material, model_path


def robustness_stage(
    ctx: BenchContext,
    models: dict[str, dict[str, Any]],
    forget: list[Any],
    retain: list[Any],
    train_settings: dict[str, Any],
    key_material: dict[str, Any],
    roles: dict[str, str],
    config: Any = None,
) -> dict[str, Any]:
    """Run (or reuse) the probes on every model; returns the combined result."""
    from lethe.eval.robustness import BENCHMARK, ProbeConfig, ProbeContext, evaluation_rows, run_robustness
    from lethe.eval.robustness.base import default_examples
    from lethe.model.io import load_version
    from lethe.train.config import TrainConfig

    config = config or ProbeConfig()
    combined: dict[str, Any] = {"config": config.to_dict(), "labels": list(models), "probes": {}, "roles": roles}
    train_config = TrainConfig.from_dict(train_settings)
    for label, model in models.items():
        mat = material(
            "eval",
            probe="robustness",
            model=model["version_id"],
            path=model["path"],
            config=config.to_dict(),
            forget=sorted(d.id for d in forget),
            retain=sorted(d.id for d in retain),
            train=train_settings,
            **key_material,
        )
        record = ctx.cached("eval", f"robustness {label}", mat)
        if record is None:
            started = time.perf_counter()
            loaded, tokenizer = load_version(model_path(ctx, model))
            context = ProbeContext(
                tokenizer,
                forget,
                retain,
                examples_of=lambda documents, t=tokenizer: default_examples(documents, t, train_config),
                config=config,
            )
            result = run_robustness({label: loaded}, context)
            ctx.ledger.add_evaluations(
                model["version_id"], BENCHMARK, evaluation_rows(result, label), meta={"label": label}
            )
            record = ctx.computed(
                "eval",
                f"robustness {label}",
                mat,
                {"probes": result["probes"], "seconds": time.perf_counter() - started},
            )
        for probe, variants in record["probes"].items():
            for variant, by_label in variants.items():
                combined["probes"].setdefault(probe, {}).setdefault(variant, {}).update(by_label)
    return combined


def save_robustness_figure(out: Path, result: dict[str, Any], title: str) -> str:
    from lethe.report.plots import save_png
    from lethe.report.robustness import robustness_figure

    return str(save_png(robustness_figure(result, title=title), out / "robustness.png"))


def bench_robustness(
    ctx: BenchContext,
    out: Path,
    models: dict[str, dict[str, Any]],
    forget: list[Any],
    retain: list[Any],
    train_settings: dict[str, Any],
    key_material: dict[str, Any],
    reference_label: str,
    title: str,
    *,
    retain_sample: int = 200,
    seed: int = 0,
    probes: list[str] | None = None,
) -> dict[str, Any]:
    """The benchmark's robustness part: ``{"robustness": result}`` for its results, and the
    chart `robustness.png` in `out`."""
    import random

    qa_retain = [d for d in retain if d.kind == "qa"]
    if len(qa_retain) > retain_sample:
        qa_retain = sorted(random.Random(seed).sample(qa_retain, retain_sample), key=lambda d: d.id)
    roles = {label: label for label in models} | {"target": "target", reference_label: "exact"}
    from lethe.eval.robustness import ProbeConfig

    config = ProbeConfig(probes=tuple(probes)) if probes else None
    result = robustness_stage(
        ctx, models, [d for d in forget if d.kind == "qa"], qa_retain, train_settings, key_material, roles, config
    )
    out.mkdir(parents=True, exist_ok=True)
    result["figure"] = save_robustness_figure(out, result, f"{title}: forget set under attack")
    return {"robustness": result}
