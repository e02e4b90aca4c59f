"""Stable slices: `lethe forget --method exact` equals training a fresh workspace without the
documents, bit for bit, through the CLI (workspace A trains then forgets; workspace B forgets
the same documents before any model exists, then trains with the same settings)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from lethe.cli import app
from lethe.workspace import Workspace
from train_helpers import qa_records

TRAIN = ["train", "--preset", "nano", "--data", "qa", "--slices", "3", "--epochs", "2", "--batch-size", "4"]
TRAIN += ["--seq-len", "64", "--lr", "3e-3", "--seed", "5", "--json"]


@pytest.fixture(autouse=True)
def deterministic():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def cli(home, *args) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def data_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [{"id": r.external_id, **r.data} for r in qa_records(24)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def latest_sha(home) -> str:
    versions = json.loads(cli(home, "versions", "--json"))
    return next(v for v in versions if "latest" in v["aliases"])["weights_sha256"]


def middle_slice_keys(home, count=2) -> list[str]:
    """Keys of documents in the second of three slices: replay restores the first checkpoint
    and retrains the rest, so the third slice's documents must not have moved."""
    ledger = Workspace(home=home).ledger
    plan = [ids for _, ids in ledger.slices(ledger.lineages()[0].id)]
    assert all(plan)
    return [d.key for d in ledger.documents(plan[1][:count])]


def ingest(home, data):
    cli(home, "init")
    cli(home, "data", "add", str(data), "--source", "people", "--collection", "qa")


def test_exact_forget_equals_fresh_training_without_the_documents(tmp_path):
    data = data_file(tmp_path)
    # one tokenizer for both, trained outside either workspace (without --retokenize a
    # workspace's own tokenizer keeps what it learned from the documents: see the next test)
    scratch = tmp_path / "scratch"
    ingest(scratch, data)
    tokenizer = json.loads(cli(scratch, "tokenizer", "train", "--vocab-size", "400", "--json"))["path"]

    a, b = tmp_path / "a", tmp_path / "b"
    ingest(a, data)
    cli(a, *TRAIN, "--tokenizer", tokenizer)
    forgotten = middle_slice_keys(a)
    before = latest_sha(a)
    out = json.loads(cli(a, "forget", "--docs", ",".join(forgotten), "--method", "exact", "--json"))
    assert out["status"] == "succeeded" and out["trained_documents"] == 2
    replayed = Workspace(home=a).ledger.resolve_version("latest")
    assert replayed.kind == "replay" and replayed.slice_index == 2 and latest_sha(a) != before

    ingest(b, data)
    erased = json.loads(cli(b, "forget", "--docs", ",".join(forgotten), "--json"))
    assert erased["status"] == "succeeded" and erased["version"] is None and erased["trained_documents"] == 0
    assert all(Workspace(home=b).ledger.document(key).forgotten_at for key in forgotten)
    cli(b, *TRAIN, "--tokenizer", tokenizer)
    assert latest_sha(b) == latest_sha(a)


def test_retokenized_forget_equals_fresh_training_with_a_fresh_tokenizer(tmp_path):
    data = data_file(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    ingest(a, data)
    cli(a, "tokenizer", "train", "--vocab-size", "400")
    cli(a, *TRAIN)
    forgotten = middle_slice_keys(a)
    out = json.loads(cli(a, "forget", "--docs", ",".join(forgotten), "--method", "exact", "--retokenize", "--json"))
    assert out["status"] == "succeeded"

    ingest(b, data)
    cli(b, "forget", "--docs", ",".join(forgotten))
    cli(b, "tokenizer", "train", "--vocab-size", "400")
    cli(b, *TRAIN)
    assert latest_sha(b) == latest_sha(a)


def test_a_lineage_planned_by_the_old_shuffle_keeps_replaying_from_its_recorded_plan(tmp_path):
    from sqlalchemy import update

    from lethe.ledger.schema import Lineage
    from lethe.train import replay, train
    from lethe.train.slices import lineage_planner, plan_slices
    from train_helpers import FAST, make_workspace

    ws = make_workspace(tmp_path, n_qa=18)
    docs = ws.ledger.documents(ws.ledger.collection_ids("qa"))
    old_plan = plan_slices([(d.id, d.key) for d in docs], 3, 5, planner="shuffle")
    original = train(ws, data="qa", preset_or_path="nano", config=FAST, seed=5, lineage="old", slice_plan=old_plan)
    with ws.ledger.transaction() as s:  # as a lineage trained before `slice_plan` was recorded
        config = {k: v for k, v in ws.ledger.lineage("old").config.items() if k != "slice_plan"}
        s.execute(update(Lineage).where(Lineage.name == "old").values(config=config))
    assert lineage_planner(ws.ledger.lineage("old").config) == "shuffle"
    forgotten = old_plan[1][:2]
    replayed = replay(ws, "old", forgotten)
    assert [v.slice_index for v in replayed] == [1, 2] and replayed[0].parent_id == original[0].id
    fresh = train(
        ws,
        data="qa",
        preset_or_path="nano",
        config=FAST,
        seed=5,
        lineage="fresh",
        slice_plan=[[d for d in ids if d not in forgotten] for ids in old_plan],
    )
    assert replayed[-1].weights_sha256 == fresh[-1].weights_sha256
