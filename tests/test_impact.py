"""Token impact on a trained nano lineage: stored, complete, and shown."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lethe.cli import app
from lethe.data.synth_ingest import ingest_synthetic_world
from lethe.eval.impact import compute_impacts
from lethe.ledger.integrity import check
from lethe.train.pipeline import train
from lethe.workspace import Workspace


def test_impact_is_positive_for_trained_documents_and_passes_the_integrity_check():
    ws = Workspace.from_env().init()
    ingest_synthetic_world(ws.ledger, entities=5, seed=2, holdout_fraction=0.2)
    versions = train(
        ws, data="synth/qa", preset_or_path="nano", slices=2, epochs=6, batch_size=16, seq_len=96, lr=3e-3, seed=0
    )
    result = compute_impacts(ws, versions[-1].name, top_k=5)
    seen = ws.ledger.documents_seen(versions[-1].id)
    assert result["documents"] == len(seen) and result["slices"] == 2
    impacts = ws.ledger.token_impacts(version_id=versions[-1].id)
    # training raised the log-probability of what it trained on, relative to the references
    assert sum(r.score for r in impacts) / len(impacts) > 0.5
    assert all(len(r.top_tokens) == 5 and r.top_tokens[0]["impact"] >= r.top_tokens[-1]["impact"] for r in impacts)
    assert {r.reference_version_id for r in impacts} == {None, versions[0].id}  # base init, then slice-0 checkpoint
    assert check(ws.ledger) == []
    runner = CliRunner()
    shown = runner.invoke(app, ["impact", "show", str(impacts[0].document_id), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["top_tokens"][0]["token"]
    text = runner.invoke(app, ["impact", "show", str(impacts[0].document_id)])
    assert text.exit_code == 0 and "mean impact" in text.output
