"""`lethe bench synth` end to end on a small world with a nano model: exact replay is the reference."""

from __future__ import annotations

from pathlib import Path

import torch

from lethe.bench.synth import SynthBenchConfig, run_synth_bench
from lethe.workspace import Workspace

torch.set_num_threads(1)


def test_synth_bench_with_exact_replay_as_reference(tmp_path) -> None:
    ws = Workspace(home=tmp_path / "home").init()
    config = SynthBenchConfig(
        entities=10,
        forget_entities=1,
        preset="nano",
        slices=2,
        epochs=1,
        vocab_size=600,
        methods=["grad_ascent", "exact"],
        unlearn_epochs=1,
        eval_items=4,
        max_new_tokens=8,
        bf16=False,
    )
    result = run_synth_bench(ws, config)
    rows = {row["model"]: row for row in result["rows"]}
    assert set(rows) == {"target", "exact", "grad_ascent"}  # `exact` is the reference, not run twice
    assert rows["exact"]["role"] == "reference" and rows["exact"]["forget_quality"] == 1.0
    assert "forget_quality" in rows["grad_ascent"] and rows["grad_ascent"]["model_utility"] is not None
    assert "mia_auc_loss" in rows["grad_ascent"]  # against the never-trained (holdout) entities
    stages = {s["stage"]: s["status"] for s in result["stages"]}
    assert stages["exact replay"] == "computed" and stages["generate world"] == "computed"
    assert len(result["forgotten_entities"]) == 1
    bench_ws = Workspace.from_env(result["workspace"])
    replayed = bench_ws.ledger.resolve_version(result["models"]["exact"]["version_id"], allow_tainted=True)
    assert replayed.kind == "replay"
    # the replayed version never saw the forgotten documents; the target did
    forget_ids = bench_ws.ledger.collection_ids(f"synth/entity/{result['forgotten_entities'][0]}")
    target_id = result["models"]["target"]["version_id"]
    assert bench_ws.ledger.documents_seen(target_id, candidates=forget_ids)
    assert not bench_ws.ledger.documents_seen(replayed.id, candidates=forget_ids)
    robustness = result["robustness"]  # every model under the same attacks, rows in the bench ledger
    assert robustness["roles"] == {"target": "target", "exact": "exact", "grad_ascent": "grad_ascent"}
    for probe in ("relearning", "quantisation", "paraphrase", "extraction"):
        for by_model in robustness["probes"][probe].values():
            assert set(by_model) == {"target", "exact", "grad_ascent"}
    assert set(robustness["probes"]["quantisation"]) == {"int8", "int4"}
    stored = bench_ws.ledger.evaluations(version_id=target_id, benchmark="robustness")
    assert {row.split for row in stored} >= {"quantisation/int4", "relearning/forget_k50", "paraphrase/rephrased"}
    out = Path(result["out_dir"])
    assert (out / "robustness.png").stat().st_size > 10_000
    assert "## Robustness" in (out / "results.md").read_text()
    assert run_synth_bench(ws, config)["cache"] == "hit"
