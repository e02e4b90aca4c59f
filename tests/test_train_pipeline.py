"""`train` and `update`: versions, provenance through shuffling, determinism, failures."""

from pathlib import Path

import pytest
import torch

from lethe.errors import InputError
from lethe.train import train, update
from lethe.train.progress import ProgressEvent
from train_helpers import FAST, make_workspace, qa_records, weights

torch.set_num_threads(1)


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path, n_qa=16, n_text=2)


def test_train_in_slices_records_exactly_what_each_version_saw(ws):
    events: list[ProgressEvent] = []
    versions = train(
        ws, data=["qa", "text"], preset_or_path="nano", slices=2, config=FAST, lineage="lin", callback=events.append
    )
    ledger = ws.ledger
    assert [v.slice_index for v in versions] == [0, 1]
    assert all(v.status == "published" and v.kind == "pretrain" for v in versions)
    assert ledger.aliases()["latest"] == versions[-1].id
    assert versions[1].parent_id == versions[0].id
    plan = ledger.slices(versions[0].lineage_id)
    assert len(plan) == 2 and plan[0][0].config["slice_seed"] != plan[1][0].config["slice_seed"]
    # Each version saw exactly the documents of its slices, by the exposures of real steps.
    assert ledger.documents_seen(versions[0].id) == plan[0][1]
    assert ledger.documents_seen(versions[1].id) == sorted(plan[0][1] + plan[1][1])
    doc = plan[1][1][0]
    assert [v.id for v in ledger.versions_that_saw(doc)] == [versions[1].id]
    assert ledger.exposure_count(versions[0].run_id) > 0
    # Steps are numbered through the run; a version covers its run up to its last step.
    run = ledger.run(versions[0].run_id)
    steps = [s["steps"] for s in run.metrics["slices"]]
    assert ledger.coverage(versions[0].id) == {run.id: steps[0]}
    assert ledger.coverage(versions[1].id) == {run.id: steps[0] + steps[1]}
    assert run.status == "succeeded" and run.seed == 0 and run.world_size == 1
    assert run.effective_batch == FAST.batch_size
    assert run.environment["libraries"]["torch"] and "git_commit" in run.environment
    assert [c.slice_index for c in ledger.checkpoints(versions[0].lineage_id)] == [0, 1]
    kinds = [e.kind for e in events]
    assert kinds[0] == "slice_start" and "step" in kinds and kinds[-1] == "published"
    step = next(e for e in events if e.kind == "step")
    assert step.loss > 0 and step.tokens_per_second > 0
    assert not (ws.checkpoints_dir() / "lin" / "resume").exists()


def test_exposures_follow_documents_not_batch_positions(ws):
    versions = train(ws, data="qa", preset_or_path="nano", config=FAST.replace(batch_size=3))
    rows = ws.ledger.exposures(run_id=versions[0].run_id, limit=10_000)
    by_step: dict[int, set] = {}
    for row in rows:
        by_step.setdefault(row.step, set()).add(row.document_id)
    assert all(1 <= len(docs) <= 3 for docs in by_step.values())
    # Every epoch reshuffles, so step k of epoch 1 and of epoch 2 hold different documents.
    per_epoch = len(by_step) // FAST.epochs
    assert any(by_step[k] != by_step[k + per_epoch] for k in range(1, per_epoch + 1))
    docs = ws.ledger.collection_ids("qa")
    for doc in docs:  # each document appears once per epoch
        assert sum(doc in d for d in by_step.values()) == FAST.epochs


def test_same_seed_same_weights_other_seed_other_weights(ws):
    a = train(ws, data="qa", preset_or_path="nano", config=FAST, seed=3)
    b = train(ws, data="qa", preset_or_path="nano", config=FAST, seed=3)
    c = train(ws, data="qa", preset_or_path="nano", config=FAST, seed=4)
    assert a[0].weights_sha256 == b[0].weights_sha256 != c[0].weights_sha256


def test_sft_learns_only_answers_and_loss_falls(ws):
    versions = train(ws, data="qa", preset_or_path="nano", task="sft", config=FAST.replace(epochs=6, lr=1e-2))
    losses = [s["final_loss"] for s in ws.ledger.run(versions[0].run_id).metrics["slices"]]
    assert versions[0].kind == "pretrain" and losses[0] < 5.0
    with pytest.raises(InputError, match="sft"):
        train(ws, data="text", preset_or_path="nano", task="sft", config=FAST)


def test_update_trains_new_documents_on_top_of_latest(ws):
    first = train(ws, data="qa", preset_or_path="nano", config=FAST, lineage="weekly")
    report = ws.ledger.add_documents(qa_records(4, prefix="week2-"), source="week2", collection="week2")
    ws.ledger.create_collection("qa", report.document_ids)
    [new] = update(ws, data="qa", epochs=1)
    ledger = ws.ledger
    assert new.kind == "update" and new.parent_id == first[0].id and new.slice_index == 1
    assert ledger.aliases()["latest"] == new.id
    fresh = set(ledger.collection_ids("week2"))
    plan = ledger.slices(new.lineage_id)
    assert set(plan[1][1]) == fresh  # only what the latest version had not seen
    assert set(ledger.documents_seen(new.id)) == set(ledger.collection_ids("qa"))
    assert ledger.coverage(new.id) == {
        **ledger.coverage(first[0].id),
        new.run_id: ledger.run(new.run_id).metrics["global_step"],
    }
    assert ledger.run(new.run_id).parent_version_id == first[0].id
    assert not torch.equal(weights(Path(new.path))["lm_head.weight"], weights(Path(first[0].path))["lm_head.weight"])
    with pytest.raises(InputError, match="nothing new"):
        update(ws, data="week2")


def test_failed_run_is_marked_failed_and_publishes_nothing(ws):
    [before] = train(ws, data="qa", preset_or_path="nano", config=FAST, lineage="good")

    def explode(event):
        if event.kind == "step" and event.slice_index == 1 and event.step == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        train(ws, data="qa", preset_or_path="nano", slices=2, config=FAST, lineage="bad", callback=explode)
    ledger = ws.ledger
    assert ledger.aliases()["latest"] == before.id
    bad = ledger.lineage("bad")
    versions = [v for v in ledger.list_versions() if v.lineage_id == bad.id]
    assert [v.status for v in versions] == ["candidate"]  # slice 0 finished, never published
    run = ledger.run(versions[0].run_id)
    assert run.status == "failed" and "power cut" in run.error
