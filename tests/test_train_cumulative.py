"""SISA-style cumulative slices: slice i trains on the documents of slices 0..i, everywhere."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lethe.cli import app
from lethe.train import replay, resume, train, update
from train_helpers import FAST, make_workspace, qa_records, weights

torch.set_num_threads(1)
CUMULATIVE = FAST.replace(cumulative=True)


@pytest.fixture
def ws(tmp_path):
    torch.use_deterministic_algorithms(True)
    yield make_workspace(tmp_path, n_qa=12)
    torch.use_deterministic_algorithms(False)


def _plan(ws, version) -> list[list[int]]:
    return [ids for _, ids in ws.ledger.slices(version.lineage_id)]


def _trained_on(ws, run_id: int, after_step: int = 0) -> set[int]:
    """Documents of the run's exposures after `after_step`."""
    return {e.document_id for e in ws.ledger.exposures(run_id=run_id, limit=100_000) if e.step > after_step}


def _identical(a, b) -> bool:
    wa, wb = weights(Path(a.path)), weights(Path(b.path))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_cumulative_replay_equals_fresh_cumulative_training_without_the_documents(ws):
    original = train(ws, data="qa", preset_or_path="nano", slices=3, config=CUMULATIVE, seed=5, lineage="orig")
    plan = _plan(ws, original[0])
    forgotten = plan[1][:2]
    replayed = replay(ws, "orig", forgotten)  # reads `cumulative` from the ledger's slice configs
    assert [v.slice_index for v in replayed] == [1, 2] and replayed[0].parent_id == original[0].id
    fresh = train(
        ws,
        data="qa",
        preset_or_path="nano",
        config=CUMULATIVE,
        seed=5,
        lineage="fresh",
        slice_plan=[plan[0], [d for d in plan[1] if d not in forgotten], plan[2]],
    )
    assert _identical(replayed[0], fresh[1]) and _identical(replayed[1], fresh[2])
    assert not _identical(replayed[-1], original[-1])
    assert _trained_on(ws, replayed[-1].run_id) == set(plan[0] + plan[1] + plan[2]) - set(forgotten)


@pytest.mark.parametrize("cumulative", [True, False])
def test_slice_two_trains_on_slice_zero_documents_only_when_cumulative(ws, cumulative):
    versions = train(ws, data="qa", preset_or_path="nano", slices=3, config=FAST.replace(cumulative=cumulative))
    plan = _plan(ws, versions[0])
    assert not set(plan[0]) & set(plan[2]) and sum(map(len, plan)) == 12  # the plan keeps each slice's own
    assert all(sl.config["cumulative"] is cumulative for sl, _ in ws.ledger.slices(versions[0].lineage_id))
    steps = [s["steps"] for s in ws.ledger.run(versions[0].run_id).metrics["slices"]]
    slice_two = _trained_on(ws, versions[0].run_id, after_step=steps[0] + steps[1])
    assert set(plan[2]) <= slice_two
    assert (set(plan[0]) <= slice_two) if cumulative else not (set(plan[0]) & slice_two)


def test_update_of_a_cumulative_lineage_trains_on_old_and_new_documents(ws):
    first = train(ws, data="qa", preset_or_path="nano", slices=2, config=CUMULATIVE, lineage="weekly")
    new_ids = ws.ledger.add_documents(qa_records(3, prefix="week2-"), source="week2", collection="week2").document_ids
    [new] = update(ws, data="week2", epochs=1)
    plan = _plan(ws, new)
    assert new.parent_id == first[-1].id and plan[2] == sorted(new_ids)  # the slice records only the new
    old = set(plan[0] + plan[1])
    assert _trained_on(ws, new.run_id) == old | set(new_ids)
    assert set(ws.ledger.documents_seen(new.id)) == old | set(new_ids)


def test_forgetting_a_first_slice_document_replays_every_slice_without_it(ws):
    original = train(ws, data="qa", preset_or_path="nano", slices=3, config=CUMULATIVE, lineage="orig")
    plan = _plan(ws, original[0])
    gone = plan[0][0]
    ws.ledger.erase([gone], reason="request")
    replayed = replay(ws, "orig", [gone])
    assert [v.slice_index for v in replayed] == [0, 1, 2] and replayed[0].parent_id is None
    saw = {v.id for v in ws.ledger.versions_that_saw(gone)}
    assert {v.id for v in original} <= saw and not saw & {v.id for v in replayed}
    steps = [s["steps"] for s in ws.ledger.run(replayed[-1].run_id).metrics["slices"]]
    slice_two = _trained_on(ws, replayed[-1].run_id, after_step=steps[0] + steps[1])
    assert slice_two == set(plan[0] + plan[1] + plan[2]) - {gone}  # still rehearses slice 0, without it


def test_resume_of_a_cumulative_training_keeps_the_cumulative_sets(ws):
    reference = train(ws, data="qa", preset_or_path="nano", slices=2, config=CUMULATIVE, lineage="ref")

    def crash(event):
        if event.kind == "step" and event.slice_index == 1 and event.step == 4:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train(ws, data="qa", preset_or_path="nano", slices=2, config=CUMULATIVE, lineage="job", callback=crash)
    resumed = resume(ws, lineage="job")
    assert _identical(resumed[-1], reference[-1])
    assert _trained_on(ws, resumed[-1].run_id) == set(ws.ledger.collection_ids("qa"))


def test_cli_train_cumulative_records_the_flag(ws):
    result = CliRunner().invoke(
        app,
        [
            "--home",
            str(ws.home),
            "train",
            "--preset",
            "nano",
            "--data",
            "qa",
            "--slices",
            "2",
            "--batch-size",
            "4",
            "--seq-len",
            "64",
            "--cumulative",
            "--lineage",
            "cli",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 2
    assert all(sl.config["cumulative"] is True for sl, _ in ws.ledger.slices(ws.ledger.lineage("cli").id))
