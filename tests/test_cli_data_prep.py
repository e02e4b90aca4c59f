"""`lethe data synth` and `lethe data curate` through the CLI, on a real ledger."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.workspace import Workspace

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("initialized_workspace")  # every command but init needs one


def run(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_synth_is_deterministic_and_idempotent():
    first = json.loads(run("data", "synth", "--entities", "12", "--seed", "5", "--json"))
    assert first["added"] == first["documents"] > 12 * 10
    again = json.loads(run("data", "synth", "--entities", "12", "--seed", "5", "--json"))
    assert again["added"] == 0 and again["unchanged"] == first["documents"]
    ledger = Workspace.from_env().ledger
    train = set(ledger.collection_ids("synth/qa")) | set(ledger.collection_ids("synth/articles"))
    holdout = set(ledger.collection_ids("synth/holdout"))
    assert holdout and not (train & holdout)


def test_curate_records_every_decision_and_cleans_into_revisions(shared_data):
    run("data", "add", str(shared_data / "wiki" / "enwiki-2015"), "--source", "wiki", "--collection", "wiki")
    report = json.loads(run("data", "curate", "wiki", "--json"))
    assert report["dropped"] == 32 and report["kept"] == 616
    ledger = Workspace.from_env().ledger
    curated = ledger.documents(ledger.collection_ids("wiki/curated"))
    assert len(curated) == 616
    assert not any("()" in d.content for d in curated)
    drops = ledger.events(kind="curation.drop", limit=1000)
    assert len(drops) == 32 and all(e.data["reason"] == "near-empty" for e in drops)
    cleaned = [d for d in curated if d.revision == 2]
    assert 0 < len(cleaned) <= report["cleaned"]  # a cleaned page is a new revision (one per page)
    assert all(ledger.document(d.parent_id).content != d.content for d in cleaned)


def test_ledger_check_reports_ok_then_names_a_tampered_weight_file(tmp_path):
    from lethe.data.tokenizer import train_tokenizer
    from lethe.model.io import save_version
    from lethe.model.presets import build_model

    ws = Workspace.from_env().init()
    tokenizer = train_tokenizer(["alpha beta gamma delta"] * 50, vocab_size=300)
    model = build_model("nano", len(tokenizer))
    path = ws.path("models", "m1")
    digest = save_version(model, tokenizer, path)
    ws.ledger.register_version(kind="pretrain", path=str(path), weights_sha256=digest)
    assert json.loads(run("ledger", "check", "--json"))["ok"] is True
    weights = next(path.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = runner.invoke(app, ["ledger", "check", "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.output)["problems"]
    assert [(p["check"], p["table"]) for p in problems] == [("weights", "model_versions")]
