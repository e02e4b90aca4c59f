"""Run the robustness probes on several models under the same attacks, and store the rows.

`run_robustness({"after": candidate, "reference": exact, "before": target}, context)` gives

    {"config": {...}, "labels": [...],
     "probes": {probe: {variant: {label: {metric: value}}}},
     "seconds": {probe: s}}

and `evaluation_rows(result, label)` is one model's part as ``{"<probe>/<variant>": metrics}``,
what `Ledger.add_evaluations(version, BENCHMARK, ...)` stores like any evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lethe.eval.robustness.base import ProbeContext, get_probe, list_probes

BENCHMARK = "robustness"
HEADLINE = {
    "relearning": "token_accuracy",
    "quantisation": "token_accuracy",
    "paraphrase": "token_accuracy",
    "indirect": "answer_recall",
    "extraction": "extraction_rate",
}
"""The metric of each probe the report's chart shows (higher = more of the forget set back)."""


def run_robustness(
    models: dict[str, Any], context: ProbeContext, *, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Every selected probe on every model (label -> model), the same attack for each."""
    names = list(context.config.probes) if context.config.probes is not None else list_probes()
    result: dict[str, Any] = {"config": context.config.to_dict(), "labels": list(models), "probes": {}, "seconds": {}}
    for name in names:
        probe = get_probe(name)()
        started = time.perf_counter()
        per_variant: dict[str, dict[str, dict[str, float]]] = {}
        for label, model in models.items():
            if progress is not None:
                progress(f"robustness: {name} on {label}")
            for variant, metrics in probe.run(model, context).items():
                per_variant.setdefault(variant, {})[label] = metrics
        result["probes"][name] = per_variant
        result["seconds"][name] = round(time.perf_counter() - started, 3)
    return result


def evaluation_rows(result: dict[str, Any], label: str) -> dict[str, dict[str, float]]:
    """One model's metrics as evaluation splits ``<probe>/<variant>``."""
    return {
        f"{probe}/{variant}": by_label[label]
        for probe, variants in (result or {}).get("probes", {}).items()
        for variant, by_label in variants.items()
        if by_label.get(label)
    }


def headline_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per probe variant: its headline metric for every model (for tables and plots)."""
    rows = []
    for probe, variants in (result or {}).get("probes", {}).items():
        metric = HEADLINE.get(probe, "token_accuracy")
        for variant, by_label in variants.items():
            row = {"probe": probe, "variant": variant, "metric": metric}
            row.update({label: metrics.get(metric) for label, metrics in by_label.items()})
            rows.append(row)
    return rows
